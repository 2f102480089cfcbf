"""``sas`` as an advantage estimator of OpenRLHF's ``RemoteExperienceMaker``: the
version gate and the patch (the batch adapter is ``batch.py``).

OpenRLHF 0.11 computes advantages in ``RemoteExperienceMaker.compute_advantages_and_returns``
inside the ``PPOTrainer`` (or async ``TrainingActor``) Ray actor. :func:`install` wraps
that method in the current process. This module also registers how an
:class:`~.options.OpenRLHFSASOptions` pickles (``copyreg``): unpickling one calls
:func:`install`, so every actor that receives OpenRLHF's ``args`` has the estimator
(the driver imports this module through ``cli_patch`` before it pickles them).

For ``--algo.advantage.estimator sas`` the wrapper runs OpenRLHF's own code path as
``group_norm`` (GRPO, after its length penalties and KL reward shaping), then multiplies
each experience's (B, A) advantages by the SAS keep mask: the response tokens
``sequences[:, 1:]`` under ``action_mask``, ranked by the chosen log-probs, correctness
from the raw verifier ``scores``. Any other estimator runs OpenRLHF's code unchanged.
"""

from __future__ import annotations

import copy
import copyreg
import functools
import sys
import threading
from dataclasses import asdict
from typing import Any

import torch

from sas_core.integrations._patching import is_patched, mark, patch_attr
from sas_core.integrations.openrlhf.batch import apply_sas
from sas_core.integrations.openrlhf.compat import check_openrlhf_version
from sas_core.integrations.openrlhf.options import OpenRLHFSASOptions
from sas_core.segmenter import StepSegmenter
from sas_core.stats import warn_nonfinite_once

__all__ = ["ESTIMATOR", "install", "is_installed"]

ESTIMATOR = "sas"
# SAS comes on top of this estimator's advantages (GRPO's group normalisation).
BASE_ESTIMATOR = "group_norm"

_install_lock = threading.Lock()


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


def _segmenter(maker: Any, options: OpenRLHFSASOptions) -> StepSegmenter:
    seg = maker.__dict__.get("_sas_segmenter")
    if seg is None:
        # Sized to the actor's embedding rows: ids the policy can sample.
        actor = getattr(maker.strategy.args, "actor", None)
        seg = StepSegmenter.for_model(
            maker.tokenizer,
            getattr(actor, "model_name_or_path", None),
            **options.segmenter_options(),
        )
        maker._sas_segmenter = seg
    return seg


def _options(maker: Any) -> OpenRLHFSASOptions:
    options = getattr(maker.strategy.args.algo.advantage, "sas", None)
    if not isinstance(options, OpenRLHFSASOptions):
        raise RuntimeError(
            "advantage estimator 'sas' needs its options in args.algo.advantage.sas: "
            "start training with `python -m openrlhf.cli.train_ppo_ray` where sas-core's "
            "start-up hook is on, or with `sas-openrlhf-train`"
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

    return mark(compute_advantages_and_returns, original)


def is_installed() -> bool:
    """Whether this process's ``RemoteExperienceMaker`` has the SAS estimator."""
    module = sys.modules.get("openrlhf.trainer.ppo_utils.experience_maker")
    if module is None:
        return False
    return is_patched(module.RemoteExperienceMaker.compute_advantages_and_returns)


def install() -> None:
    """Registers ``sas`` with this process's OpenRLHF experience maker (idempotent).

    Raises :class:`~.compat.UnsupportedOpenRLHF` for an OpenRLHF release whose internals
    this integration does not know.
    """
    check_openrlhf_version()
    from openrlhf.trainer.ppo_utils.experience_maker import RemoteExperienceMaker

    with _install_lock:
        patch_attr(RemoteExperienceMaker, "compute_advantages_and_returns", _wrap)


def _restore_options(fields: dict[str, Any]) -> OpenRLHFSASOptions:
    """Unpickling in a Ray actor: the estimator first, before OpenRLHF's trainer builds
    its experience maker, then the options, as the driver checked them (not again)."""
    install()
    options = object.__new__(OpenRLHFSASOptions)
    for name, value in fields.items():
        object.__setattr__(options, name, value)
    return options


def _reduce_options(options: OpenRLHFSASOptions) -> tuple[Any, tuple[dict[str, Any]]]:
    return (_restore_options, (asdict(options),))


copyreg.pickle(OpenRLHFSASOptions, _reduce_options)
