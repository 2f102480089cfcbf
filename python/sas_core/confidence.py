"""Step confidences as a public result: the number SAS ranks steps by.

A step's confidence is the mean log-prob of its tokens, summed by the Rust core in the
contract's fixed order (the j-th token of a step goes to lane j mod 4, lanes summed in
token order, total (l0 + l1) + (l2 + l3)): the values the ranking uses, bit for bit.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from sas_core import _arrays, _core

__all__ = ["StepConfidences", "step_confidences"]


class StepConfidences(NamedTuple):
    """values: (S,) float64, the confidence of every step of every rollout, rollout by
    rollout, step 0 first; cu_steps: (B+1,) int64 boundaries of each rollout's steps in
    ``values`` (steps of rollout b are ``values[cu_steps[b]:cu_steps[b + 1]]``)."""

    values: np.ndarray
    cu_steps: np.ndarray


def step_confidences(
    step_ids: Any, logprobs: Any, cu_seqlens: Any, *, num_threads: int | None = None
) -> StepConfidences:
    """Confidences of the steps of a packed batch (tokens with step -1 are outside every
    step and not counted; a step id with no token gets NaN).

    Args:
        step_ids: (N,) step id per token (from :meth:`StepSegmenter.segment`), -1 or in
            [0, rollout length).
        logprobs: (N,) per-token log-probs of the rollout policy (finite).
        cu_seqlens: (B+1,) rollout boundaries.
        num_threads: threads for the Rust core; the result does not depend on it.
    """
    values, cu_steps = _core.step_confidences(
        _arrays.step_ids_array(step_ids),
        _arrays.float_array(logprobs, "logprobs"),
        _arrays.cu_seqlens_array(cu_seqlens),
        _arrays.threads_value(num_threads),
    )
    return StepConfidences(values, cu_steps)
