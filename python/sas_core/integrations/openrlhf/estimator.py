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

import numpy as np
import torch

from sas_core.integrations.openrlhf.compat import check_openrlhf_version
from sas_core.integrations.openrlhf.options import SASOptions
from sas_core.reference import unit_key
from sas_core.segmenter import StepSegmenter
from sas_core.torch_api import sas_token_selection

__all__ = ["ESTIMATOR", "apply_sas", "experience_seed", "install", "is_installed"]

ESTIMATOR = "sas"
# SAS comes on top of this estimator's advantages (GRPO's group normalisation).
BASE_ESTIMATOR = "group_norm"
STAT_KEYS = (
    "sas/zeroed_token_frac",
    "sas/steps",
    "sas/zeroed_steps_correct",
    "sas/zeroed_steps_failed",
    "sas/correct",
    "sas/truncated_failed",
)

_install_lock = threading.Lock()
_MARK = "__sas_core_original__"


def experience_seed(seed: int, call: int, index: int) -> int:
    """Seed of random selection for the ``index``-th experience of the ``call``-th
    advantage computation: distinct draws per training step and micro-batch."""
    return unit_key(seed, call, index)


def _correct(scores: torch.Tensor, b: int, threshold: float) -> torch.Tensor:
    flat = scores.detach().reshape(-1).float().cpu()
    if flat.numel() != b:
        raise ValueError(
            f"scores: expected one verifier score per rollout ({b}), got {flat.numel()}"
        )
    return torch.nan_to_num(flat, nan=float("-inf")) > threshold


def apply_sas(
    experiences: Sequence[Any],
    scores: Sequence[torch.Tensor],
    options: SASOptions,
    segmenter: StepSegmenter,
    *,
    call: int = 0,
) -> None:
    """Zeroes the advantages of the selected steps of each experience, in place.

    Args:
        experiences: OpenRLHF ``Experience`` batches whose ``advantages`` (B, A) are set.
        scores: per experience, (B,) raw verifier scores that decide correctness.
        options: the run's SAS options.
        segmenter: the tokenizer's step segmenter.
        call: index of this advantage computation (varies random selection).

    Adds per-sample statistics to each ``experience.info`` (OpenRLHF averages them over
    samples when it logs): ``sas/zeroed_token_frac`` (share of the response's tokens
    zeroed), ``sas/steps`` (steps in the response; in-step tokens at token granularity),
    ``sas/zeroed_steps_correct`` / ``sas/zeroed_steps_failed`` (zeroed steps if the rollout
    is correct / failed, else 0: divide by the mean of ``sas/correct`` for a per-rollout
    mean), ``sas/correct`` and ``sas/truncated_failed`` (truncated and failed).
    """
    for j, (exp, score) in enumerate(zip(experiences, scores, strict=True)):
        mask = exp.action_mask.bool()
        b = mask.shape[0]
        if options.logprobs == "rollout":
            logprobs = exp.rollout_log_probs
            if logprobs is None:
                raise ValueError(
                    "logprobs: --algo.advantage.sas.logprobs rollout needs vLLM's log-probs, "
                    "which OpenRLHF records only with --algo.advantage.is_correction_level "
                    "token|seq"
                )
        else:
            logprobs = exp.action_log_probs
        correct = _correct(score, b, options.correct_threshold)
        truncated = (
            exp.truncated.detach().reshape(-1).bool().cpu()
            if exp.truncated is not None
            else torch.zeros(b, dtype=torch.bool)
        )
        picked = sas_token_selection(
            exp.sequences[:, 1:],
            logprobs.float(),
            mask,
            correct,
            segmenter,
            ratio=options.ratio,
            mode=options.mode,
            selection=options.selection,
            granularity=options.granularity,
            seed=experience_seed(options.seed, call, j),
        )
        keep = picked.keep
        n_selected = picked.n_selected.astype(np.float64)
        n_zeroed = picked.n_zeroed.astype(np.float64)
        if options.shield == "truncated":
            if exp.truncated is None:
                raise ValueError(
                    "shield: 'truncated' needs the experience's `truncated` flags, which "
                    "this OpenRLHF rollout did not record"
                )
            spared = (~correct & ~truncated).numpy()
            keep[torch.from_numpy(spared).to(keep.device)] = True
            n_selected[spared] = 0.0
            n_zeroed[spared] = 0.0

        adv = exp.advantages
        exp.advantages = torch.where(keep.to(adv.device), adv, torch.zeros_like(adv))

        n_tokens = mask.sum(dim=1).cpu().double().clamp(min=1).numpy()
        c = correct.numpy()
        stats = {
            "sas/zeroed_token_frac": n_zeroed / n_tokens,
            "sas/steps": picked.n_units.astype(np.float64),
            "sas/zeroed_steps_correct": np.where(c, n_selected, 0.0),
            "sas/zeroed_steps_failed": np.where(c, 0.0, n_selected),
            "sas/correct": c.astype(np.float64),
            "sas/truncated_failed": (truncated.numpy() & ~c).astype(np.float64),
        }
        for key, value in stats.items():
            exp.info[key] = torch.from_numpy(value).float()


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


def _model_vocab_rows(args: Any) -> int:
    """Embedding rows of the actor (ids the policy can sample), 0 when unknown."""
    path = getattr(getattr(args, "actor", None), "model_name_or_path", None)
    if not path:
        return 0
    try:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(path)
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        return int(getattr(text, "vocab_size", 0) or 0)
    except Exception:  # offline, custom code, ...: the tokenizer's size will do
        return 0


def _segmenter(maker: Any, options: SASOptions) -> StepSegmenter:
    seg = maker.__dict__.get("_sas_segmenter")
    if seg is None:
        seg = StepSegmenter.from_tokenizer(maker.tokenizer, think_end=options.think_end)
        rows = _model_vocab_rows(maker.strategy.args)
        if rows > seg.vocab_size:  # padded embedding rows: ids the tokenizer never emits
            seg = StepSegmenter(seg.token_bytes, vocab_size=rows, think_end_ids=seg.think_end_ids)
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
        apply_sas(experiences, scores, options, _segmenter(self, options), call=call)
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
