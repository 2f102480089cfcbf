"""``algorithm.sas.*``: the SAS options of a verl run (Hydra: ``+algorithm.sas.ratio=0.3``,
the ``+`` because verl's own config has no ``sas`` node). The keys are the fields of
:class:`VerlSASOptions`, i.e. the options' schema (:func:`sas_core.options.schema`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sas_core.options import NonFinite, SASOptions, option, trainer_default

__all__ = ["PREFIX", "VerlSASOptions"]

PREFIX = "algorithm.sas."


@dataclass(frozen=True)
class VerlSASOptions(SASOptions):
    """:class:`sas_core.options.SASOptions` plus the source of the ranking log-probs."""

    nonfinite: NonFinite = trainer_default("nonfinite")
    logprobs: Literal["old", "rollout"] = option(
        "old",
        "log-probs that rank the steps: old = the actor's recomputed pre-update log-probs "
        "(old_log_probs; the authors' release ranks with these); rollout = the inference "
        "engine's sampling log-probs (rollout_log_probs, recorded with "
        "actor_rollout_ref.rollout.calculate_log_probs)",
    )

    @classmethod
    def from_algorithm(cls, algorithm: Any) -> VerlSASOptions:
        """From verl's ``config.algorithm`` (a DictConfig, a dataclass or a dict):
        its ``sas`` node, missing keys at their defaults; errors name the full key."""
        if isinstance(algorithm, str | bytes | int | float | list | tuple | set):
            raise TypeError(
                "algorithm: must be verl's config.algorithm (a mapping or a config object), "
                f"got {algorithm!r}"
            )
        node = _get(algorithm, "sas")
        if node is not None and not hasattr(node, "items"):
            raise TypeError(f"{PREFIX[:-1]}: must be a mapping of SAS options, got {node!r}")
        return cls.from_mapping(node, prefix=PREFIX)


def _get(config: Any, key: str) -> Any:
    if config is None:
        return None
    if hasattr(config, "get"):
        return config.get(key)
    return getattr(config, key, None)
