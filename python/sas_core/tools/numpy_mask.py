"""The best vectorised numpy SAS mask we could write: the Rust core's competitor (timed by
``sas-core bench`` and the benchmark suite).

Same contract as the core (default options: step granularity, confidence selection,
both modes), for segmenter output (each step one contiguous run of tokens).
Segmentation runs the core's two-number state machine as prefix sums over a
per-vocabulary table; selection sorts all steps of the batch once with ``lexsort``.
A benchmark contender, never a code path: no production module imports it (a test
checks).
"""

from __future__ import annotations

import numpy as np


class NumpyTable:
    """Per-vocabulary arrays (index = token id), saturated like the core's table."""

    def __init__(self, token_bytes, vocab_size: int, think_end_ids=()):
        n = vocab_size
        self.mixed = np.zeros(n, dtype=bool)
        self.lead = np.zeros(n, dtype=np.int64)  # leading newlines (mixed tokens)
        self.trail = np.zeros(n, dtype=np.int64)
        self.nl = np.zeros(n, dtype=np.int64)  # length of a newline-only token
        self.inner = np.zeros(n, dtype=np.int64)
        self.think_end = np.zeros(n, dtype=bool)
        self.think_end[list(think_end_ids)] = True
        for i, tok in enumerate(token_bytes):
            body = tok.strip(b"\n")
            if not body:
                self.nl[i] = min(len(tok), 2)
                continue
            self.mixed[i] = True
            self.lead[i] = min(len(tok) - len(tok.lstrip(b"\n")), 2)
            self.trail[i] = min(len(tok) - len(tok.rstrip(b"\n")), 2)
            if b"\n\n" in body:
                # Maximal runs of >= 2 newlines inside the body (between other bytes).
                runs, r = 0, 0
                for ch in body:
                    if ch == 10:
                        r += 1
                    else:
                        runs += r >= 2
                        r = 0
                self.inner[i] = runs


def segment(table: NumpyTable, ids: np.ndarray, cu: np.ndarray) -> np.ndarray:
    n = ids.size
    lengths = np.diff(cu)
    rollout = np.repeat(np.arange(lengths.size), lengths)
    start = cu[:-1][rollout]  # first position of each token's rollout
    idx = np.arange(n)

    mixed = table.mixed[ids]
    nl = table.nl[ids]
    s_incl = np.cumsum(nl)
    s_excl = s_incl - nl
    # Last mixed token strictly before each token, if inside the same rollout.
    last = np.maximum.accumulate(np.where(mixed, idx, -1))
    prev = np.concatenate([[-1], last[:-1]])
    has_prev = prev >= start
    prev_c = np.maximum(prev, 0)
    open_before = np.where(
        has_prev,
        table.trail[ids[prev_c]] + s_excl - s_incl[prev_c],
        s_excl - s_excl[start],
    )
    closes = mixed & (open_before + table.lead[ids] >= 2)
    inc = np.where(mixed, closes + table.inner[ids], 0)
    c_excl = np.cumsum(inc) - inc
    raw = c_excl - c_excl[start] + closes

    change = np.ones(n, dtype=np.int64)
    change[1:] = raw[1:] != raw[:-1]
    change[idx == start] = 0
    cc = np.cumsum(change)
    steps = (cc - cc[start]).astype(np.int32)

    te = table.think_end[ids].astype(np.int64)
    te_c = np.cumsum(te)
    after = (te_c - (te_c - te)[start]) > 0
    steps[after] = -1
    return steps


def keep_mask(
    steps: np.ndarray, logprobs: np.ndarray, cu: np.ndarray, correct: np.ndarray, ratio: float = 0.3
) -> np.ndarray:
    lengths = np.diff(cu)
    b = lengths.size
    rollout = np.repeat(np.arange(b), lengths)
    valid = steps >= 0
    # Steps per rollout: step ids are consecutive from 0, so n = max + 1.
    n_steps = np.zeros(b, dtype=np.int64)
    np.maximum.at(n_steps, rollout[valid], steps[valid].astype(np.int64) + 1)
    offset = np.concatenate([[0], np.cumsum(n_steps)[:-1]])
    g = offset[rollout] + steps
    total = int(n_steps.sum())
    # The contract's lane sum: the j-th token of a step goes to lane j % 4, summed in
    # token order (bincount accumulates sequentially), total (l0 + l1) + (l2 + l3).
    gv = g[valid]
    new_run = np.ones(gv.size, dtype=bool)
    new_run[1:] = gv[1:] != gv[:-1]
    run_start = np.flatnonzero(new_run)
    ordinal = np.arange(gv.size) - run_start[np.cumsum(new_run) - 1]
    lanes = np.bincount(
        gv * 4 + ordinal % 4, weights=logprobs[valid].astype(np.float64), minlength=total * 4
    ).reshape(total, 4)
    sums = (lanes[:, 0] + lanes[:, 1]) + (lanes[:, 2] + lanes[:, 3])
    counts = np.bincount(gv, minlength=total)
    mean = sums / np.maximum(counts, 1)

    step_rollout = np.repeat(np.arange(b), n_steps)
    step_index = np.arange(step_rollout.size) - offset[step_rollout]
    key = np.where(correct[step_rollout], mean, -mean)
    order = np.lexsort((step_index, key, step_rollout))
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size) - offset[step_rollout[order]]
    k = np.floor(ratio * n_steps + 1e-9).astype(np.int64)
    selected = rank < k[step_rollout]
    return ~(valid & selected[np.where(valid, g, 0)])


def sas_mask(table, ids, logprobs, cu, correct, ratio=0.3):
    return keep_mask(segment(table, ids, cu), logprobs, cu, correct, ratio)
