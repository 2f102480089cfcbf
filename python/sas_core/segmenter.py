"""Step segmentation of packed responses from token ids."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from sas_core import _arrays, _core
from sas_core.masks import Selection, _back, _torch_device, option_args
from sas_core.token_bytes import tokenizer_token_bytes

__all__ = ["StepSegmenter"]


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
            and all after it get step id -1 (outside every step).
    """

    def __init__(
        self,
        token_bytes: Sequence[bytes],
        *,
        vocab_size: int | None = None,
        think_end_ids: Iterable[int] = (),
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
        self._table = _core.StepTable(self.token_bytes, vocab_size, list(self.think_end_ids))

    @classmethod
    def from_tokenizer(
        cls,
        tok: Any,
        *,
        vocab_size: int | None = None,
        think_end: str | Sequence[str] | None = None,
        think_end_ids: Iterable[int] = (),
    ) -> StepSegmenter:
        """Builds the byte table of ``tok``.

        ``tok`` may be a ``transformers`` tokenizer (fast or slow), a
        ``tokenizers.Tokenizer``, a ``tiktoken.Encoding`` or a
        ``sentencepiece.SentencePieceProcessor``. ``think_end`` names reasoning-end
        tokens by their text (e.g. ``"</think>"``), looked up in the vocabulary.
        """
        token_bytes = tokenizer_token_bytes(tok)
        ids = list(think_end_ids)
        names = [think_end] if isinstance(think_end, str) else list(think_end or ())
        for name in names:
            matches = [i for i, b in enumerate(token_bytes) if b == name.encode("utf-8")]
            if not matches:
                raise ValueError(f"think_end: {name!r} is not a single token of this vocabulary")
            ids.extend(matches)
        return cls(token_bytes, vocab_size=vocab_size, think_end_ids=ids)

    @property
    def vocab_size(self) -> int:
        return self._table.vocab_size

    def __repr__(self) -> str:
        return (
            f"StepSegmenter(entries={len(self.token_bytes)}, vocab_size={self.vocab_size}, "
            f"think_end_ids={list(self.think_end_ids)})"
        )

    def segment_with_counts(
        self, token_ids: Any, cu_seqlens: Any, *, num_threads: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(step ids (N,) int32, steps per rollout (B,) uint32)."""
        return self._table.segment(
            _arrays.int_array(token_ids, "token_ids"),
            _arrays.cu_seqlens_array(cu_seqlens),
            _arrays.threads_value(num_threads),
        )

    def segment(self, token_ids: Any, cu_seqlens: Any, *, num_threads: int | None = None) -> Any:
        """Step id per token of a packed batch.

        Args:
            token_ids: (N,) int32/int64 response token ids of all rollouts, end to end.
            cu_seqlens: (B+1,) int rollout boundaries: 0, then cumulative lengths.
            num_threads: threads for the Rust core; the result does not depend on it.

        Returns:
            (N,) int32 step ids, 0..n-1 within each rollout, -1 after a reasoning-end
            token. A torch tensor on ``token_ids``' device when given a tensor.
        """
        steps, _ = self.segment_with_counts(token_ids, cu_seqlens, num_threads=num_threads)
        if _arrays.is_torch(token_ids):
            import torch

            return torch.from_numpy(steps).to(token_ids.device)
        return steps

    def select_steps(
        self,
        token_ids: Any,
        logprobs: Any,
        cu_seqlens: Any,
        correct: Any,
        *,
        ratio: float = 0.3,
        mode: str = "both",
        selection: str = "confidence",
        granularity: str = "step",
        seed: int = 0,
        num_threads: int | None = None,
    ) -> Selection:
        """Segments and selects in one fused pass: ``select_steps(segment(ids), ...)``.

        Same arguments as :func:`sas_core.select_steps`, with token ids instead of step
        ids. Step ids never leave the Rust core (no batch-sized intermediate array).
        """
        keep, n_units, n_selected = self._table.sas_mask(
            _arrays.int_array(token_ids, "token_ids"),
            _arrays.float_array(logprobs, "logprobs"),
            _arrays.cu_seqlens_array(cu_seqlens),
            _arrays.bool_array(correct, "correct"),
            *option_args(ratio, mode, selection, granularity, seed),
            _arrays.threads_value(num_threads),
        )
        device = _torch_device(token_ids, logprobs, cu_seqlens, correct)
        return Selection(_back(keep, device), _back(n_units, device), _back(n_selected, device))
