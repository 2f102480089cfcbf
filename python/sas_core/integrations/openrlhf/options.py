"""The SAS options on OpenRLHF's command line: :class:`OpenRLHFSASOptions`.

The options live under ``--algo.advantage.sas.*`` (OpenRLHF 0.11's dotted style; each
also as ``--sas_<name>``), so after OpenRLHF's ``hierarchize`` they sit at
``args.algo.advantage.sas``. The flags are generated from the options' schema
(:func:`sas_core.options.schema`): argparse converts each value to its type, and the
options object built from them checks it once (``cli_patch``). OpenRLHF pickles
``args`` into every Ray actor it starts; how unpickling them there installs the
estimator is ``estimator.py``'s business, not this module's.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Literal

from sas_core.options import NonFinite, Option, SASOptions, option, schema, trainer_default

__all__ = ["PREFIX", "OpenRLHFSASOptions", "add_sas_arguments"]

PREFIX = "algo.advantage.sas"


@dataclass(frozen=True)
class OpenRLHFSASOptions(SASOptions):
    """SAS settings of one OpenRLHF run: :class:`sas_core.options.SASOptions` plus the
    source of the ranking log-probs, ``logprobs``."""

    nonfinite: NonFinite = trainer_default("nonfinite")
    logprobs: Literal["action", "rollout"] = option(
        "action",
        "log-probs that rank the steps: action = the actor's recomputed pre-update log-probs "
        "(the authors' release ranks with these); rollout = the inference engine's sampling "
        "log-probs (vLLM's; OpenRLHF records them only with "
        "--algo.advantage.is_correction_level token|seq)",
    )


# What differs on this command line from the schema: the seed follows --train.seed.
_SEED_HELP = "seed of random selection (default: --train.seed)"


def _parse(opt: Option) -> Any:
    """argparse's ``type=`` of an option: the conversion only (the options object checks
    the value); a text that is not of the type is argparse's usual error."""
    if opt.type is float:
        return float
    if opt.type is int:
        return int
    return str


def add_sas_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds ``--algo.advantage.sas.<name>`` and ``--sas_<name>`` for every option."""
    group = parser.add_argument_group(
        "SAS (sas-core)", "Step-level Advantage Selection, with --algo.advantage.estimator sas"
    )
    for opt in schema(OpenRLHFSASOptions):
        seed = opt.name == "seed"
        group.add_argument(
            f"--{PREFIX}.{opt.name}",
            f"--sas_{opt.name}",
            dest=f"{PREFIX}.{opt.name}",
            type=_parse(opt),
            default=None if seed else opt.default,
            metavar="{" + ",".join(opt.choices) + "}" if opt.choices else None,
            help=_SEED_HELP if seed else f"{opt.help} (default {opt.default})",
        )
