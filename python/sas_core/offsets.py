"""Step segmentation from decoded text and character offsets.

For callers that hold each response's text and the tokenizer's offset mapping
(``return_offsets_mapping=True``) rather than token ids. Newlines are one character and
one byte, so the byte rules of :class:`StepSegmenter` apply to characters unchanged and
both give the same steps for the same response.
"""

from __future__ import annotations

import bisect
import numbers
import re
from collections.abc import Sequence

import numpy as np

__all__ = ["segment_offsets"]

_DELIMITER = re.compile(r"\n{2,}")


def _span(span: object, i: int) -> tuple[int, int]:
    """A (start, end) pair of integers (not bools, floats or strings)."""
    if isinstance(span, str | bytes) or not hasattr(span, "__len__") or len(span) != 2:
        raise ValueError(f"offsets: span {i} must be a (start, end) pair, got {span!r}")
    start, end = span[0], span[1]
    for v in (start, end):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"offsets: span {i} must hold integers, got {span!r}")
    return int(start), int(end)


def _segment_one(text: str, spans: Sequence[tuple[int, int]], think_end: str | None) -> list[int]:
    runs = [(m.start(), m.end()) for m in _DELIMITER.finditer(text)]
    starts = [s for s, _ in runs]
    ends = [e for _, e in runs]
    cut = text.find(think_end) if think_end else -1

    def in_delimiter(p: int) -> bool:
        k = bisect.bisect_right(starts, p) - 1
        return k >= 0 and p < ends[k]

    steps: list[int] = []
    seen: dict[int, int] = {}
    for i, span in enumerate(spans):
        start, end = _span(span, i)
        if not 0 <= start <= end <= len(text):
            raise ValueError(f"offsets: span {i} ({start}, {end}) is outside the text")
        if cut >= 0 and start >= cut:
            steps.append(-1)
            continue
        if start == end:
            # No characters: the step of the character before it.
            raw = bisect.bisect_left(ends, start)
        else:
            anchor = next((p for p in range(start, end) if not in_delimiter(p)), None)
            # Runs ending at or before the anchor; a span of delimiter characters is
            # anchored at its first character, inside its own run.
            raw = bisect.bisect_right(ends, start if anchor is None else anchor)
        steps.append(seen.setdefault(raw, len(seen)))
    return steps


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
        if isinstance(spans, str | bytes) or not hasattr(spans, "__iter__"):
            raise TypeError(f"offsets: text {i} needs a sequence of spans, got {spans!r}")
        out.append(np.asarray(_segment_one(text, spans, think_end), dtype=np.int32))
    return out
