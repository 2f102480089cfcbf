"""The SAS options on OpenRLHF's command line: :class:`OpenRLHFSASOptions`.

The options live under ``--algo.advantage.sas.*`` (OpenRLHF 0.11's dotted style), so
after OpenRLHF's ``hierarchize`` they sit at ``args.algo.advantage.sas``. OpenRLHF
pickles ``args`` into every Ray actor it starts; how unpickling them there installs the
estimator is ``estimator.py``'s business, not this module's.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sas_core import options as core_options
from sas_core.options import GRANULARITIES, MODES, NONFINITE, SELECTIONS, SHIELDS, NonFinite

__all__ = [
    "LOGPROB_SOURCES",
    "PREFIX",
    "SHIELDS",
    "OpenRLHFSASOptions",
    "SASOptions",
    "add_sas_arguments",
]

PREFIX = "algo.advantage.sas"
LOGPROB_SOURCES = ("action", "rollout")


@dataclass(frozen=True)
class OpenRLHFSASOptions(core_options.SASOptions):
    """SAS settings of one OpenRLHF run: :class:`sas_core.options.SASOptions` plus the
    source of the ranking log-probs, ``logprobs`` (see ``add_sas_arguments``)."""

    nonfinite: NonFinite = "keep"  # a long run survives one bad rollout (warned once)
    logprobs: str = "action"

    def __post_init__(self) -> None:
        super().__post_init__()
        core_options.choice(self.logprobs, "logprobs", LOGPROB_SOURCES)


SASOptions = OpenRLHFSASOptions
"""The name this class had before 0.1 settled on one options class per framework."""


def _checked(
    convert: Callable[[str], Any], kind: str, valid: Callable[[Any], bool], rule: str
) -> Callable[[str], Any]:
    """An argparse ``type=``: ``convert``, then ``valid``, with messages argparse prints
    after the option's name."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {kind}, got {text!r}") from None
        if not valid(value):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text}")
        return value

    return parse


_ratio = _checked(float, "a number in [0, 1]", lambda v: 0.0 <= v <= 1.0, "in [0, 1]")
_finite = _checked(float, "a number", math.isfinite, "finite")
_seed = _checked(int, "an integer", lambda v: v >= 0, ">= 0")


def add_sas_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds ``--algo.advantage.sas.*`` (and flat ``--sas_*`` aliases) to ``parser``."""
    group = parser.add_argument_group(
        "SAS (sas-core)", "Step-level Advantage Selection, with --algo.advantage.estimator sas"
    )

    def add(name: str, **kwargs: Any) -> None:
        group.add_argument(f"--{PREFIX}.{name}", f"--sas_{name}", dest=f"{PREFIX}.{name}", **kwargs)

    defaults = OpenRLHFSASOptions()
    add(
        "ratio",
        type=_ratio,
        default=defaults.ratio,
        help="fraction r of each rollout's steps whose advantage is zeroed (default 0.3)",
    )
    add(
        "mode",
        choices=MODES,
        default=defaults.mode,
        help="rollouts that get zeros: both (paper), correct, failed",
    )
    add(
        "selection",
        choices=SELECTIONS,
        default=defaults.selection,
        help="confidence: lowest-confidence steps of correct and highest of failed rollouts "
        "(paper); random: an ablation",
    )
    add(
        "granularity",
        choices=GRANULARITIES,
        default=defaults.granularity,
        help="rank blank-line steps (paper) or single tokens",
    )
    add(
        "correct_threshold",
        type=_finite,
        default=defaults.correct_threshold,
        help="a rollout is correct when its verifier score (the experience's `scores`) "
        "exceeds this (default 0.5)",
    )
    add(
        "logprobs",
        choices=LOGPROB_SOURCES,
        default=defaults.logprobs,
        help="log-probs that rank the steps: action = the actor's recomputed pre-update "
        "log-probs (default; the authors' release ranks with these); rollout = the inference "
        "engine's sampling log-probs (vLLM's; OpenRLHF records them only with "
        "--algo.advantage.is_correction_level token|seq)",
    )
    add(
        "shield",
        choices=SHIELDS,
        default=defaults.shield,
        help="failed rollouts whose most confident steps are shielded: all (paper) or only "
        "truncated ones (finish_reason == length)",
    )
    add(
        "nonfinite",
        choices=NONFINITE,
        default=defaults.nonfinite,
        help="a rollout with NaN/inf log-probs: keep its GRPO advantage (default; warned "
        "once, counted in sas/nonfinite_rollouts) or raise",
    )
    add(
        "think_end",
        default=defaults.think_end,
        help="token text that ends the reasoning region (e.g. '</think>'); steps stop there",
    )
    add(
        "seed",
        type=_seed,
        default=None,
        help="seed of random selection (default: --train.seed)",
    )
