"""Step segmentation from decoded text and character offsets.

For callers that hold each response's text and the tokenizer's offset mapping
(``return_offsets_mapping=True``) rather than token ids. The rule runs in the Rust core
(``sas_core::text``), the token-id segmenter's rule read on characters: a newline is one
character and one byte, so both give the same steps for the same response.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from sas_core import _core

__all__ = ["segment_offsets"]


def _spans(spans: Any, i: int) -> np.ndarray:
    """(T, 2) int64 spans of text ``i``: an integer numpy array, or a sequence of
    (start, end) pairs of integers (not bools, floats or strings)."""
    if isinstance(spans, np.ndarray):
        if spans.dtype.kind not in "iu" or (spans.size and spans.shape[-1:] != (2,)):
            raise TypeError(
                f"offsets: text {i} needs a (T, 2) integer array, got {spans.dtype} {spans.shape}"
            )
        return np.ascontiguousarray(spans, dtype=np.int64).reshape(-1, 2)
    if isinstance(spans, str | bytes) or not hasattr(spans, "__iter__"):
        raise TypeError(f"offsets: text {i} needs a sequence of spans, got {spans!r}")
    pairs = []
    for k, span in enumerate(spans):
        if isinstance(span, str | bytes) or not hasattr(span, "__len__") or len(span) != 2:
            raise ValueError(f"offsets: span {k} must be a (start, end) pair, got {span!r}")
        for v in span:
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise TypeError(f"offsets: span {k} must hold integers, got {span!r}")
        pairs.append((int(span[0]), int(span[1])))
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def segment_offsets(
    texts: Sequence[str],
    offsets: Sequence[Sequence[tuple[int, int]]],
    *,
    think_end: str | None = None,
) -> list[np.ndarray]:
    """Step id per token of each response, from its text and character spans.

    Args:
        texts: the decoded response texts.
        offsets: for each text, one ``(start, end)`` character span per token.
        think_end: text that ends the reasoning region (e.g. ``"</think>"``): tokens
            starting at or after its first occurrence get step id -1.

    Returns:
        One (T_i,) int32 array per response.
    """
    if isinstance(texts, str):
        raise TypeError("texts: must be a sequence of strings, not one string")
    for name, value in (("texts", texts), ("offsets", offsets)):
        if not hasattr(value, "__len__") or isinstance(value, (str, bytes)):
            raise TypeError(f"{name}: must be a sequence, got {type(value).__name__}")
    if think_end is not None and not isinstance(think_end, str):
        raise TypeError(f"think_end: must be a string or None, got {type(think_end).__name__}")
    if len(texts) != len(offsets):
        raise ValueError(f"offsets: {len(offsets)} span lists for {len(texts)} texts")
    out = []
    for i, (text, spans) in enumerate(zip(texts, offsets)):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}]: must be a string, got {type(text).__name__}")
        out.append(_core.segment_text(text, _spans(spans, i), think_end))
    return out
