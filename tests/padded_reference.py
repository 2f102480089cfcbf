"""sas_core.reference on padded (B, A) batches: each row's masked tokens, packed in order,
each maximal run of them a turn.

The oracle side of the tests of every padded entry point (``sas_advantages``,
``sas_batch_step``, the TRL, OpenRLHF and verl integrations).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

from sas_core import reference


def random_batch(
    rng: np.random.Generator, vocab_size: int, b: int, max_len: int, left_pad: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, A) ids, float32 log-probs and bool mask of ``b`` rollouts of random lengths in
    [0, max_len], padded on the left or the right."""
    lengths = rng.integers(0, max_len + 1, size=b)
    a = max(int(lengths.max(initial=0)), 1)
    ids = torch.full((b, a), 0, dtype=torch.long)
    lps = torch.zeros((b, a), dtype=torch.float32)
    mask = torch.zeros((b, a), dtype=torch.bool)
    for i, n in enumerate(lengths):
        cols = slice(a - n, a) if left_pad else slice(0, n)
        ids[i, cols] = torch.from_numpy(rng.integers(0, vocab_size, size=n))
        lps[i, cols] = torch.from_numpy(-rng.random(n).astype(np.float32) * 6)
        mask[i, cols] = True
    return ids, lps, mask


def pack(
    ids: torch.Tensor, values: torch.Tensor, mask: torch.Tensor
) -> tuple[list[int], list[float], list[int]]:
    """Token ids, values (as float64) and cu_seqlens of the masked tokens, row by row."""
    flat_ids: list[int] = []
    flat_values: list[float] = []
    cu = [0]
    for i in range(ids.shape[0]):
        m = mask[i].bool()
        flat_ids += ids[i][m].tolist()
        flat_values += values[i][m].double().tolist()
        cu.append(len(flat_ids))
    return flat_ids, flat_values, cu


def turn_starts(mask: torch.Tensor) -> list[int]:
    """Positions, in :func:`pack`'s arrays, of the masked tokens that open a new turn
    (a masked column after an unmasked one, other than a row's first)."""
    starts: list[int] = []
    pos = 0
    for row in mask.bool().tolist():
        first = True
        for j, m in enumerate(row):
            if m:
                if not first and not row[j - 1]:
                    starts.append(pos)
                first = False
                pos += 1
    return starts


def keep_mask(
    token_bytes: Sequence[bytes],
    ids: torch.Tensor,
    logprobs: torch.Tensor,
    mask: torch.Tensor,
    correct: Sequence[bool],
    *,
    vocab_size: int | None = None,
    think_end_ids: Iterable[int] = (),
    **options,
) -> torch.Tensor:
    """(B, A) bool: the reference keep mask on the masked tokens, True elsewhere."""
    flat_ids, flat_lps, cu = pack(ids, logprobs, mask)
    steps = reference.segment(
        token_bytes, flat_ids, cu, vocab_size=vocab_size, think_end_ids=think_end_ids,
        turn_starts=turn_starts(mask),
    )  # fmt: skip
    flat = reference.keep_mask(steps, flat_lps, cu, list(correct), **options)
    keep = torch.ones(ids.shape, dtype=torch.bool)
    keep[mask.bool()] = torch.tensor(flat, dtype=torch.bool)
    return keep
