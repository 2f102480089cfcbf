"""Packed batches shaped like the paper's training step, on the real Qwen2 vocabulary.

The paper's step: 128 prompts x 8 rollouts = 1024 responses of up to 4096 tokens. Token
ids are drawn from Qwen2 ids whose bytes hold no newline, with a blank-line step break
(one of Qwen2's real delimiter tokens) every 40-80 tokens; log-probs are uniform in
[-8, 0]; half the rollouts are correct.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

import numpy as np

from sas_core.qwen import QWEN2_EMBEDDING_ROWS, qwen2_encoding

# Qwen2 tokens that end a step, as the tokenizer emits them.
DELIMITER_TEXTS = [".\n\n", "\n\n", ":\n\n", " \n\n", "\n\n\n"]


@dataclass(frozen=True)
class Workload:
    name: str
    token_ids: np.ndarray  # (N,) int64
    logprobs: np.ndarray  # (N,) float32
    cu_seqlens: np.ndarray  # (B+1,) int64
    correct: np.ndarray  # (B,) bool
    rewards: np.ndarray  # (B,) float32
    group_size: int

    @property
    def n_tokens(self) -> int:
        return int(self.cu_seqlens[-1])

    @property
    def n_rollouts(self) -> int:
        return self.cu_seqlens.size - 1

    def as_lists(self) -> tuple[list[int], list[float], list[int], list[bool]]:
        """Token ids, float64 log-probs, ``cu_seqlens`` and ``correct`` as Python lists
        (what the pure-Python reference takes)."""
        return (
            self.token_ids.tolist(),
            self.logprobs.astype(np.float64).tolist(),
            self.cu_seqlens.tolist(),
            self.correct.tolist(),
        )

    def padded(self) -> tuple[Any, Any, Any, Any]:
        """(B, A) torch ids (int64), log-probs (float32) and mask (bool), right-padded to
        the longest rollout, and (B,) rewards: the batch as a trainer holds it."""
        import torch

        lengths = np.diff(self.cu_seqlens)
        b, a = lengths.size, int(lengths.max(initial=1))
        mask = torch.arange(a)[None, :] < torch.from_numpy(lengths)[:, None]
        ids = torch.zeros((b, a), dtype=torch.long)
        lps = torch.zeros((b, a), dtype=torch.float32)
        ids[mask] = torch.from_numpy(self.token_ids)
        lps[mask] = torch.from_numpy(self.logprobs)
        return ids, lps, mask, torch.from_numpy(self.rewards)

    def subsample(self, n_rollouts: int) -> Workload:
        """The first ``n_rollouts`` rollouts (for slow contenders)."""
        end = int(self.cu_seqlens[n_rollouts])
        return Workload(
            f"{self.name}[:{n_rollouts}]",
            self.token_ids[:end],
            self.logprobs[:end],
            self.cu_seqlens[: n_rollouts + 1],
            self.correct[:n_rollouts],
            self.rewards[:n_rollouts],
            self.group_size,
        )


@lru_cache(maxsize=1)
def _vocab_pools() -> tuple[np.ndarray, np.ndarray]:
    enc = qwen2_encoding()
    n = enc.n_vocab - 22  # the BPE ranks, without the added special tokens
    plain = np.array([i for i in range(n) if b"\n" not in enc.decode_single_token_bytes(i)])
    delims = np.array([enc.encode(t)[0] for t in DELIMITER_TEXTS])
    assert all(len(enc.encode(t)) == 1 for t in DELIMITER_TEXTS)
    return plain, delims


def make_workload(
    name: str, n_rollouts: int, max_len: int, mean_len: int, group_size: int = 8, seed: int = 0
) -> Workload:
    rng = np.random.default_rng(seed)
    plain, delims = _vocab_pools()
    # Lengths: a beta distribution scaled to max_len with the requested mean.
    a = 4.0
    b = a * (max_len / mean_len - 1.0)
    lengths = np.maximum(1, (rng.beta(a, b, size=n_rollouts) * max_len).astype(np.int64))
    cu = np.zeros(n_rollouts + 1, dtype=np.int64)
    np.cumsum(lengths, out=cu[1:])
    n = int(cu[-1])
    ids = plain[rng.integers(0, plain.size, size=n)]
    # A delimiter every 40-80 tokens, restarting the spacing in each rollout.
    gaps = rng.integers(40, 81, size=n // 40 + n_rollouts)
    breaks = np.cumsum(gaps)
    breaks = breaks[breaks < n]
    ids[breaks] = delims[rng.integers(0, delims.size, size=breaks.size)]
    logprobs = (-8.0 * rng.random(n)).astype(np.float32)
    correct = rng.random(n_rollouts) < 0.5
    assert ids.max() < QWEN2_EMBEDDING_ROWS
    return Workload(
        name, ids.astype(np.int64), logprobs, cu, correct, correct.astype(np.float32), group_size
    )


SIZES = {
    "small": dict(n_rollouts=8, max_len=512, mean_len=380),
    "paper": dict(n_rollouts=1024, max_len=4096, mean_len=3000),
    "large": dict(n_rollouts=4096, max_len=8192, mean_len=6000),
}


@cache
def workload(size: str) -> Workload:
    return make_workload(size, **SIZES[size])
