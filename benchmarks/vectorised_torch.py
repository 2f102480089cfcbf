"""The same vectorised SAS mask in torch (CPU): the other competitor of the Rust core."""

from __future__ import annotations

import torch


class TorchTable:
    def __init__(self, np_table):
        t = torch.from_numpy
        self.mixed = t(np_table.mixed)
        self.lead = t(np_table.lead)
        self.trail = t(np_table.trail)
        self.nl = t(np_table.nl)
        self.inner = t(np_table.inner)
        self.think_end = t(np_table.think_end)


def segment(table: TorchTable, ids: torch.Tensor, cu: torch.Tensor) -> torch.Tensor:
    n = ids.numel()
    lengths = cu.diff()
    rollout = torch.repeat_interleave(torch.arange(lengths.numel()), lengths)
    start = cu[:-1][rollout]
    idx = torch.arange(n)

    mixed = table.mixed[ids]
    nl = table.nl[ids]
    s_incl = nl.cumsum(0)
    s_excl = s_incl - nl
    last = torch.where(mixed, idx, -1).cummax(0).values
    prev = torch.cat([torch.tensor([-1]), last[:-1]])
    has_prev = prev >= start
    prev_c = prev.clamp(min=0)
    open_before = torch.where(
        has_prev,
        table.trail[ids[prev_c]] + s_excl - s_incl[prev_c],
        s_excl - s_excl[start],
    )
    closes = mixed & (open_before + table.lead[ids] >= 2)
    inc = torch.where(mixed, closes.long() + table.inner[ids], 0)
    c_excl = inc.cumsum(0) - inc
    raw = c_excl - c_excl[start] + closes.long()

    change = torch.ones(n, dtype=torch.long)
    change[1:] = (raw[1:] != raw[:-1]).long()
    change[idx == start] = 0
    cc = change.cumsum(0)
    steps = (cc - cc[start]).int()

    te = table.think_end[ids].long()
    te_c = te.cumsum(0)
    steps[(te_c - (te_c - te)[start]) > 0] = -1
    return steps


def keep_mask(steps, logprobs, cu, correct, ratio: float = 0.3) -> torch.Tensor:
    lengths = cu.diff()
    b = lengths.numel()
    rollout = torch.repeat_interleave(torch.arange(b), lengths)
    valid = steps >= 0
    n_steps = torch.zeros(b, dtype=torch.long).scatter_reduce(
        0, rollout[valid], steps[valid].long() + 1, reduce="amax"
    )
    total = int(n_steps.sum())
    offset = torch.cat([torch.zeros(1, dtype=torch.long), n_steps.cumsum(0)[:-1]])
    g = offset[rollout] + steps
    gv = g[valid]
    # The contract's lane sum (see vectorised_numpy.keep_mask).
    new_run = torch.ones(gv.numel(), dtype=torch.bool)
    new_run[1:] = gv[1:] != gv[:-1]
    run_start = torch.nonzero(new_run).flatten()
    ordinal = torch.arange(gv.numel()) - run_start[new_run.long().cumsum(0) - 1]
    lanes = (
        torch.zeros(total * 4, dtype=torch.float64)
        .index_add_(0, gv * 4 + ordinal % 4, logprobs[valid].double())
        .view(total, 4)
    )
    sums = (lanes[:, 0] + lanes[:, 1]) + (lanes[:, 2] + lanes[:, 3])
    counts = torch.bincount(gv, minlength=total)
    mean = sums / counts.clamp(min=1)

    step_rollout = torch.repeat_interleave(torch.arange(b), n_steps)
    key = torch.where(correct[step_rollout], mean, -mean)
    # Lexicographic (rollout, key, step): stable sort by key, then stably by rollout.
    by_key = torch.sort(key, stable=True).indices
    order = by_key[torch.sort(step_rollout[by_key], stable=True).indices]
    rank = torch.empty_like(order)
    rank[order] = torch.arange(total) - offset[step_rollout[order]]
    k = torch.floor(ratio * n_steps.double() + 1e-9).long()
    selected = rank < k[step_rollout]
    return ~(valid & selected[torch.where(valid, g, 0)])


def sas_mask(table, ids, logprobs, cu, correct, ratio=0.3):
    return keep_mask(segment(table, ids, cu), logprobs, cu, correct, ratio)
