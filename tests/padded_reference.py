"""sas_core.reference on padded (B, A) batches: each row's masked tokens, packed in order.

The oracle side of the tests of every padded entry point (``sas_advantages``,
``sas_token_selection``, the TRL and OpenRLHF integrations).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from sas_core import reference


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
        token_bytes, flat_ids, cu, vocab_size=vocab_size, think_end_ids=think_end_ids
    )
    flat = reference.keep_mask(steps, flat_lps, cu, list(correct), **options)
    keep = torch.ones(ids.shape, dtype=torch.bool)
    keep[mask.bool()] = torch.tensor(flat, dtype=torch.bool)
    return keep
