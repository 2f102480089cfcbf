"""``sas`` as an advantage estimator of OpenRLHF's ``RemoteExperienceMaker``.

OpenRLHF 0.11 computes advantages in ``RemoteExperienceMaker.compute_advantages_and_returns``
inside the ``PPOTrainer`` (or async ``TrainingActor``) Ray actor. :func:`install` wraps
that method in the current process; :class:`~.options.SASOptions` calls it when it is
unpickled, so every actor that receives OpenRLHF's ``args`` has it.

For ``--algo.advantage.estimator sas`` the wrapper runs OpenRLHF's own code path as
``group_norm`` (GRPO, after its length penalties and KL reward shaping), then multiplies
each experience's (B, A) advantages by the SAS keep mask: the response tokens
``sequences[:, 1:]`` under ``action_mask``, ranked by the chosen log-probs, correctness
from the raw verifier ``scores``. Any other estimator runs OpenRLHF's code unchanged.
"""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Sequence
from typing import Any

import torch

from sas_core._core import unit_key
from sas_core.integrations.openrlhf.compat import check_openrlhf_version
from sas_core.integrations.openrlhf.options import SASOptions
from sas_core.segmenter import StepSegmenter
from sas_core.stats import warn_nonfinite_once
from sas_core.torch_api import sas_batch_step

__all__ = ["ESTIMATOR", "apply_sas", "experience_seed", "install", "is_installed"]

ESTIMATOR = "sas"
# SAS comes on top of this estimator's advantages (GRPO's group normalisation).
BASE_ESTIMATOR = "group_norm"

_install_lock = threading.Lock()
_MARK = "__sas_core_original__"


def experience_seed(seed: int, call: int, index: int) -> int:
    """Seed of random selection for the ``index``-th experience of the ``call``-th
    advantage computation: distinct draws per training step and micro-batch (what
    :func:`sas_batch_step` derives from ``call`` and ``index``)."""
    return unit_key(seed, call, index)


def _ranking_logprobs(exp: Any, options: SASOptions) -> torch.Tensor:
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
    options: SASOptions,
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


class _View:
    """Reads through to ``target`` except for the attributes given (no mutation)."""

    def __init__(self, target: Any, **overrides: Any) -> None:
        self.__dict__["_target"] = target
        self.__dict__.update(overrides)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_target"], name)


def _as_base_estimator(maker: Any) -> _View:
    """The experience maker as OpenRLHF's ``group_norm`` sees it, sharing everything
    else. A copy of ``args`` rather than a temporary edit: the trainer's ``args`` are
    shared with other threads of the actor."""
    args = copy.copy(maker.strategy.args)
    args.algo = copy.copy(args.algo)
    args.algo.advantage = copy.copy(args.algo.advantage)
    args.algo.advantage.estimator = BASE_ESTIMATOR
    args.algo.advantage.gamma = 1.0  # what OpenRLHF itself enforces for group_norm
    return _View(
        maker,
        strategy=_View(maker.strategy, args=args),
        advantage_estimator=BASE_ESTIMATOR,
    )


def _segmenter(maker: Any, options: SASOptions) -> StepSegmenter:
    seg = maker.__dict__.get("_sas_segmenter")
    if seg is None:
        # Sized to the actor's embedding rows: ids the policy can sample.
        actor = getattr(maker.strategy.args, "actor", None)
        seg = StepSegmenter.for_model(
            maker.tokenizer,
            getattr(actor, "model_name_or_path", None),
            think_end=options.think_end,
        )
        maker._sas_segmenter = seg
    return seg


def _options(maker: Any) -> SASOptions:
    options = getattr(maker.strategy.args.algo.advantage, "sas", None)
    if not isinstance(options, SASOptions):
        raise RuntimeError(
            "advantage estimator 'sas' needs its options in args.algo.advantage.sas: "
            "start training with `sas-openrlhf-train` (or "
            "`python -m sas_core.integrations.openrlhf`), not openrlhf.cli.train_ppo_ray"
        )
    return options


def _wrap(original: Any) -> Any:
    @functools.wraps(original)
    @torch.no_grad()
    def compute_advantages_and_returns(self: Any, experiences: list[Any], **kwargs: Any):
        if self.advantage_estimator != ESTIMATOR:
            return original(self, experiences, **kwargs)
        options = _options(self)
        # Correctness from the verifier's raw score; without one, the reward as it
        # arrived (before OpenRLHF's length penalties, which the original applies).
        scores = [
            (e.scores if e.scores is not None else e.rewards).detach().clone() for e in experiences
        ]
        experiences = original(_as_base_estimator(self), experiences, **kwargs)
        call = self.__dict__.get("_sas_calls", 0)
        self._sas_calls = call + 1
        bad = apply_sas(experiences, scores, options, _segmenter(self, options), call=call)
        warn_nonfinite_once(self, bad)
        return experiences

    setattr(compute_advantages_and_returns, _MARK, original)
    return compute_advantages_and_returns


def is_installed() -> bool:
    """Whether this process's ``RemoteExperienceMaker`` has the SAS estimator."""
    import sys

    module = sys.modules.get("openrlhf.trainer.ppo_utils.experience_maker")
    if module is None:
        return False
    method = module.RemoteExperienceMaker.compute_advantages_and_returns
    return hasattr(method, _MARK)


def install() -> None:
    """Registers ``sas`` with this process's OpenRLHF experience maker (idempotent).

    Raises :class:`~.compat.UnsupportedOpenRLHF` for an OpenRLHF release whose internals
    this integration does not know.
    """
    check_openrlhf_version()
    from openrlhf.trainer.ppo_utils.experience_maker import RemoteExperienceMaker

    with _install_lock:
        method = RemoteExperienceMaker.compute_advantages_and_returns
        if not hasattr(method, _MARK):
            RemoteExperienceMaker.compute_advantages_and_returns = _wrap(method)
