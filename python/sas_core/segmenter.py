"""Step segmentation of packed responses from token ids."""

from __future__ import annotations

import numbers
import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from sas_core import _arrays, _core
from sas_core.masks import StepSelection, _back, _torch_device
from sas_core.options import Delimiter, SASOptions, keyword_options
from sas_core.token_bytes import tokenizer_token_bytes

__all__ = ["StepSegmenter", "model_vocab_rows"]


class StepSegmenter:
    """Splits responses into steps at blank lines, straight from token ids.

    Built once per tokenizer from the bytes of every vocabulary entry; segmenting then
    costs one table look-up per token, in Rust, without decoding.

    Args:
        token_bytes: the bytes of each token id, index = id.
        vocab_size: ids accepted (default ``len(token_bytes)``). Set it to the model's
            embedding rows (e.g. 151,936 for Qwen2) to accept padding ids, which segment
            as tokens with no bytes.
        think_end_ids: ids that end the reasoning region (e.g. ``</think>``): that token
            and all after it (in its turn) get step id -1 (outside every step).
        delimiter: where a step ends: ``"blank_line"`` (a run of two or more newlines,
            the paper's rule) or ``"line"`` (any newline: a step per line, for code).
        boundary_ids: ids after which a step ends too (e.g. ``</tool_call>``).
    """

    def __init__(
        self,
        token_bytes: Sequence[bytes],
        *,
        vocab_size: int | None = None,
        think_end_ids: Iterable[int] = (),
        delimiter: Delimiter = "blank_line",
        boundary_ids: Iterable[int] = (),
    ) -> None:
        if isinstance(token_bytes, bytes | str) or not hasattr(token_bytes, "__iter__"):
            raise TypeError(
                f"token_bytes: must be a sequence of bytes, one per token id, got "
                f"{type(token_bytes).__name__}"
            )
        self.token_bytes: tuple[bytes, ...] = tuple(token_bytes)
        if vocab_size is not None:
            vocab_size = _arrays.count_value(vocab_size, "vocab_size")
        self.think_end_ids: tuple[int, ...] = tuple(
            _arrays.ids_value(think_end_ids, "think_end_ids")
        )
        self.delimiter: Delimiter = SASOptions(delimiter=delimiter).delimiter
        self.boundary_ids: tuple[int, ...] = tuple(_arrays.ids_value(boundary_ids, "boundary_ids"))
        self._table = _core.StepTable(
            self.token_bytes, vocab_size, list(self.think_end_ids), self.delimiter,
            list(self.boundary_ids),
        )  # fmt: skip

    @classmethod
    def from_tokenizer(
        cls,
        tok: Any,
        *,
        vocab_size: int | None = None,
        think_end: str | Sequence[str] | None = None,
        think_end_ids: Iterable[int] = (),
        delimiter: Delimiter = "blank_line",
        boundary_tokens: str | Sequence[str] | None = None,
    ) -> StepSegmenter:
        """Builds the byte table of ``tok``.

        ``tok`` may be a ``transformers`` tokenizer (fast or slow), a
        ``tokenizers.Tokenizer``, a ``tiktoken.Encoding`` or a
        ``sentencepiece.SentencePieceProcessor``. ``think_end`` names reasoning-end
        tokens by their text (e.g. ``"</think>"``), ``boundary_tokens`` the tokens after
        which a step ends (e.g. ``"</tool_call>"``; a string is split at commas), each
        looked up in the vocabulary. ``delimiter``: ``"blank_line"`` or ``"line"``.
        """
        token_bytes = tokenizer_token_bytes(tok)
        ids = list(think_end_ids) + _token_ids(token_bytes, think_end, "think_end")
        if isinstance(boundary_tokens, str):
            boundary_tokens = [t for t in boundary_tokens.split(",") if t]
        return cls(
            token_bytes, vocab_size=vocab_size, think_end_ids=ids, delimiter=delimiter,
            boundary_ids=_token_ids(token_bytes, boundary_tokens, "boundary_tokens"),
        )  # fmt: skip

    @classmethod
    def for_model(
        cls,
        tok: Any,
        model: Any = None,
        *,
        think_end: str | Sequence[str] | None = None,
        delimiter: Delimiter = "blank_line",
        boundary_tokens: str | Sequence[str] | None = None,
    ) -> StepSegmenter:
        """:meth:`from_tokenizer`, sized to accept every id the model can sample.

        Models often have more embedding rows than the tokenizer has entries (Qwen2:
        151,936 rows for 151,665 tokens); a sampled padding id must segment (as a token
        with no bytes), not fail. ``model`` is a model, its config, a config's
        ``vocab_size`` as an int, or a name/path that ``transformers.AutoConfig`` reads
        (locally); None or an unreadable one leaves the tokenizer's size. The keywords
        are :meth:`SASOptions.segmenter_options`.
        """
        seg = cls.from_tokenizer(
            tok, think_end=think_end, delimiter=delimiter, boundary_tokens=boundary_tokens
        )
        rows = model_vocab_rows(model)
        if rows > seg.vocab_size:
            seg = cls(
                seg.token_bytes, vocab_size=rows, think_end_ids=seg.think_end_ids,
                delimiter=seg.delimiter, boundary_ids=seg.boundary_ids,
            )  # fmt: skip
        return seg

    @property
    def vocab_size(self) -> int:
        return self._table.vocab_size

    def __repr__(self) -> str:
        return (
            f"StepSegmenter(entries={len(self.token_bytes)}, vocab_size={self.vocab_size}, "
            f"think_end_ids={list(self.think_end_ids)}, delimiter={self.delimiter!r}, "
            f"boundary_ids={list(self.boundary_ids)})"
        )

    def _select_padded(
        self,
        response_ids: np.ndarray,
        logprobs: np.ndarray,
        action_mask: np.ndarray,
        correct: np.ndarray,
        options: SASOptions,
        num_threads: int | None,
        advantages: np.ndarray | None = None,
        out: np.ndarray | None = None,
        spare: np.ndarray | None = None,
    ) -> tuple[np.ndarray, ...]:
        """Segments and selects every row of a padded (B, A) batch (the padded calls of
        :mod:`sas_core.torch_api`): checked numpy arrays of the core's dtypes (int32/int64
        ids, float32/float64 log-probs, bool mask and ``correct``), which the Rust core
        reads in place (C order), with the options object as built.

        Returns the keep mask (B, A), False exactly on the response tokens of the
        selected units, and per row the units, the selected units, the tokens those
        cover, the response tokens, and whether the row was left unselected for NaN/inf
        log-probs. Errors name the row.

        ``options.nonfinite == "keep"``: a row whose response log-probs hold NaN or inf
        gets no unit selected (its advantage stands, as GRPO's would); selection is per
        row, so the others are what they would be without it. ``"raise"``: the core
        raises, naming the row.

        ``advantages`` ((B,) per row or (B, A) per token, float32/float64) and ``out``
        ((B, A), C order, the same dtype): the core also writes the SAS advantages into
        ``out`` in its pass over each row (per row: the row's value on its kept response
        tokens, 0 elsewhere; per token: as given, 0 on the selected tokens). ``spare``:
        (B,) bool, rows left unselected (e.g. failed rollouts that were not truncated)."""
        return self._table.sas_padded(
            _arrays.c_order(response_ids), _arrays.c_order(logprobs),
            _arrays.c_order(action_mask), _arrays.c_order(correct), options,
            spare=spare,
            advantages=None if advantages is None else _arrays.c_order(advantages), out=out,
            num_threads=_arrays.threads_value(num_threads),
        )  # fmt: skip

    def segment_with_counts(
        self,
        token_ids: Any,
        cu_seqlens: Any,
        *,
        action_mask: Any = None,
        num_threads: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(step ids (N,) int32, steps per rollout (B,) uint32)."""
        return self._table.segment(
            _arrays.int_array(token_ids, "token_ids"),
            _arrays.cu_seqlens_array(cu_seqlens),
            _mask_or_none(action_mask),
            _arrays.threads_value(num_threads),
        )

    def segment(
        self,
        token_ids: Any,
        cu_seqlens: Any,
        *,
        action_mask: Any = None,
        num_threads: int | None = None,
    ) -> Any:
        """Step id per token of a packed batch.

        Args:
            token_ids: (N,) int32/int64 response token ids of all rollouts, end to end.
            cu_seqlens: (B+1,) int rollout boundaries: 0, then cumulative lengths.
            action_mask: (N,) bool, False on tokens the model did not write (tool output,
                observations): they get step -1, and each maximal run of action tokens
                is a turn, segmented on its own (README, the contract: *Turns*). None:
                every token is the model's, each rollout one turn.
            num_threads: threads for the Rust core; the result does not depend on it.

        Returns:
            (N,) int32 step ids, 0..n-1 within each rollout, -1 after a reasoning-end
            token (of its turn) and off the mask. A torch tensor (on the first tensor
            argument's device) when any argument is one.
        """
        steps, _ = self.segment_with_counts(
            token_ids, cu_seqlens, action_mask=action_mask, num_threads=num_threads
        )
        return _back(steps, _torch_device(token_ids, cu_seqlens, action_mask))

    @keyword_options()
    def select_steps(
        self,
        token_ids: Any,
        logprobs: Any,
        cu_seqlens: Any,
        correct: Any,
        *,
        action_mask: Any = None,
        options: SASOptions,
        num_threads: int | None = None,
    ) -> StepSelection:
        """Segments and selects in one fused pass: ``select_steps(segment(ids), ...)``.

        Same arguments as :func:`sas_core.select_steps`, with token ids instead of step
        ids, and ``action_mask`` as in :meth:`segment` (tokens off it are kept). Step
        ids never leave the Rust core (no batch-sized intermediate array).
        """
        keep, n_units, n_selected = self._table.sas_mask(
            _arrays.int_array(token_ids, "token_ids"),
            _arrays.float_array(logprobs, "logprobs"),
            _arrays.cu_seqlens_array(cu_seqlens),
            _arrays.bool_array(correct, "correct"),
            options,
            _mask_or_none(action_mask),
            _arrays.threads_value(num_threads),
        )
        device = _torch_device(token_ids, logprobs, cu_seqlens, correct, action_mask)
        return StepSelection(_back(keep, device), _back(n_units, device), _back(n_selected, device))


def _token_ids(token_bytes: Sequence[bytes], names: Any, arg: str) -> list[int]:
    """The ids of the tokens whose text is one of ``names`` (a text or a list of them)."""
    names = [names] if isinstance(names, str) else names
    if names is None:
        return []
    if isinstance(names, bytes) or not hasattr(names, "__iter__"):
        raise TypeError(f"{arg}: must be a token's text or a list of them, got {names!r}")
    names = list(names)
    if not all(isinstance(n, str) for n in names):
        raise TypeError(f"{arg}: must be a token's text or a list of them, got {names!r}")
    ids = []
    for name in names:
        matches = [i for i, b in enumerate(token_bytes) if b == name.encode("utf-8")]
        if not matches:
            raise ValueError(f"{arg}: {name!r} is not a single token of this vocabulary")
        ids.extend(matches)
    return ids


def _mask_or_none(action_mask: Any) -> np.ndarray | None:
    """A packed (N,) action mask as bools (0/1 integers and floats accepted), or None."""
    if action_mask is None:
        return None
    mask = _arrays.mask_array(action_mask, "action_mask")
    if mask.ndim != 1:
        raise ValueError(f"action_mask: must be 1-D (N,), one flag per token, got {mask.shape}")
    return mask


def model_vocab_rows(model: Any) -> int:
    """Embedding rows of ``model`` (see :meth:`StepSegmenter.for_model`), 0 if unknown."""
    if model is None:
        return 0
    if isinstance(model, numbers.Integral) and not isinstance(model, bool):
        # the core's bound on a vocabulary (ids are int32 there)
        if not 0 <= int(model) <= 2**31 - 1:
            raise ValueError(f"model: embedding rows must be in [0, 2**31 - 1], got {model}")
        return int(model)
    if isinstance(model, str | os.PathLike):
        try:
            from transformers import AutoConfig

            model = AutoConfig.from_pretrained(os.fspath(model), local_files_only=True)
        except Exception:  # offline, custom code, ...: the tokenizer's size will do
            return 0
    config = getattr(model, "config", model)
    if hasattr(config, "get_text_config"):  # multimodal configs nest the text model's
        config = config.get_text_config()
    rows = getattr(config, "vocab_size", None)
    return int(rows) if isinstance(rows, numbers.Integral) and not isinstance(rows, bool) else 0
