"""SAS on OpenRLHF's experiences: the batch adapter of the ``sas`` estimator.

It pulls each ``Experience``'s tensors out (response ids ``sequences[:, 1:]``, the
ranking log-probs, ``action_mask``, ``advantages``, the raw verifier ``scores``, the
``truncated`` flags) and hands them to :func:`sas_core.torch_api.sas_batch_step`, then
writes the advantages and the ``sas/*`` statistics back. Patching OpenRLHF is
``estimator.py``'s job.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from sas_core.integrations.openrlhf.options import OpenRLHFSASOptions
from sas_core.segmenter import StepSegmenter
from sas_core.torch_api import sas_batch_step

__all__ = ["apply_sas"]


def _ranking_logprobs(exp: Any, options: OpenRLHFSASOptions) -> torch.Tensor:
    if options.logprobs == "action":
        return exp.action_log_probs
    if exp.rollout_log_probs is None:
        raise ValueError(
            "logprobs: --algo.advantage.sas.logprobs rollout needs vLLM's log-probs, "
            "which OpenRLHF records only with --algo.advantage.is_correction_level token|seq"
        )
    return exp.rollout_log_probs


def apply_sas(
    experiences: Sequence[Any],
    scores: Sequence[torch.Tensor],
    options: OpenRLHFSASOptions,
    segmenter: StepSegmenter,
    *,
    call: int = 0,
) -> int:
    """Zeroes the advantages of the selected steps of each experience, in place: one
    :func:`sas_core.torch_api.sas_batch_step` per experience, on its response tokens
    ``sequences[:, 1:]`` under ``action_mask`` (``truncated``: OpenRLHF's
    ``finish_reason == "length"`` flags, when the rollout recorded them).

    Args:
        experiences: OpenRLHF ``Experience`` batches whose ``advantages`` (B, A) are set.
        scores: per experience, B raw verifier scores that decide correctness.
        options: the run's SAS options.
        segmenter: the tokenizer's step segmenter.
        call: index of this advantage computation (varies random selection).

    Adds the per-sample ``sas/...`` statistics of :mod:`sas_core.stats` to each
    ``experience.info`` (OpenRLHF averages them over samples when it logs). Returns the
    number of rollouts left unselected for NaN/inf log-probs (``nonfinite="keep"``).
    """
    nonfinite = 0
    for j, (exp, score) in enumerate(zip(experiences, scores, strict=True)):
        step = sas_batch_step(
            exp.sequences[:, 1:],
            _ranking_logprobs(exp, options),
            exp.action_mask,
            exp.advantages,
            score,
            segmenter,
            options,
            truncated=exp.truncated,
            call=call,
            index=j,
        )
        exp.advantages = step.advantages
        for key, value in step.per_rollout.items():
            exp.info[key] = torch.from_numpy(value).float()
        nonfinite += step.nonfinite_rollouts
    return nonfinite
