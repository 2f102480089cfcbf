"""Step confidences as a public result: the number SAS ranks steps by.

A step's confidence is the mean log-prob of its tokens, summed in the contract's fixed
order (the j-th token of a step goes to lane j mod 4, lanes summed in token order, total
(l0 + l1) + (l2 + l3)), so the values are bit for bit the ones the Rust core ranks.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from sas_core import _arrays

__all__ = ["StepConfidences", "step_confidences"]


class StepConfidences(NamedTuple):
    """values: (S,) float64, the confidence of every step of every rollout, rollout by
    rollout, step 0 first; cu_steps: (B+1,) int64 boundaries of each rollout's steps in
    ``values`` (steps of rollout b are ``values[cu_steps[b]:cu_steps[b + 1]]``)."""

    values: np.ndarray
    cu_steps: np.ndarray


def step_confidences(step_ids: Any, logprobs: Any, cu_seqlens: Any) -> StepConfidences:
    """Confidences of the steps of a packed batch (tokens with step -1 are outside every
    step and not counted).

    Args:
        step_ids: (N,) step id per token (from :meth:`StepSegmenter.segment`).
        logprobs: (N,) per-token log-probs of the rollout policy (finite).
        cu_seqlens: (B+1,) rollout boundaries.
    """
    sid = _arrays.int_array(step_ids, "step_ids").astype(np.int64)
    lp = _arrays.float_array(logprobs, "logprobs").astype(np.float64)
    cu = _arrays.cu_seqlens_array(cu_seqlens)
    lengths = np.diff(cu)
    if cu.size == 0 or cu[0] != 0 or (lengths < 0).any():
        raise ValueError("cu_seqlens: must start at 0 and be non-decreasing")
    if sid.size != int(cu[-1]):
        raise ValueError(
            f"step_ids, cu_seqlens: step_ids has {sid.size} entries but cu_seqlens ends at "
            f"{int(cu[-1])} (the token count)"
        )
    if lp.size != sid.size:
        raise ValueError(f"logprobs, step_ids: {lp.size} log-probs for {sid.size} step ids")
    if sid.size and sid.min() < -1:
        raise ValueError("step_ids: must be -1 or a step index")
    rollout = np.repeat(np.arange(lengths.size), lengths)
    # As the core's keep_mask: a rollout of T tokens has at most T steps (ids 0..T-1);
    # a larger id would size the result by it (10**7 values for a 19-token rollout).
    beyond = np.flatnonzero(sid >= lengths[rollout]) if sid.size else []
    if len(beyond):
        i = int(beyond[0])
        raise ValueError(
            f"step_ids: must be -1 or in [0, rollout length {int(lengths[rollout[i]])}), "
            f"got {int(sid[i])} at position {i}"
        )
    if not np.isfinite(lp).all():
        raise ValueError("logprobs: must be finite")
    n_steps = np.zeros(lengths.size, dtype=np.int64)
    inside = sid >= 0
    np.maximum.at(n_steps, rollout[inside], sid[inside] + 1)
    cu_steps = np.concatenate([[0], np.cumsum(n_steps)]).astype(np.int64)
    g = cu_steps[rollout[inside]] + sid[inside]  # global step index of each token
    lps = lp[inside]
    order = np.argsort(g, kind="stable")  # tokens of a step, in token order
    first = np.searchsorted(g[order], g[order], side="left")
    ordinal = np.empty_like(g)
    ordinal[order] = np.arange(g.size) - first
    lanes = np.zeros((int(cu_steps[-1]), 4))
    np.add.at(lanes, (g, ordinal % 4), lps)  # unbuffered: token order within each lane
    counts = np.bincount(g, minlength=lanes.shape[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        values = ((lanes[:, 0] + lanes[:, 1]) + (lanes[:, 2] + lanes[:, 3])) / counts
    return StepConfidences(values, cu_steps)
