"""The SAS options, stated once: their types, allowed values, defaults and checks.

Every entry point (the core API, TRL, OpenRLHF, verl, the CLI) takes its options
through :class:`SASOptions`, so a value means the same and fails the same way
everywhere. The Rust core parses the option strings into its own enums at the
boundary (``_core.pyi`` types them with these ``Literal`` types).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, get_args

__all__ = [
    "GRANULARITIES",
    "MODES",
    "NONFINITE",
    "SELECTIONS",
    "SHIELDS",
    "Granularity",
    "Mode",
    "NonFinite",
    "SASOptions",
    "SelectionRule",
    "Shield",
]

Mode = Literal["both", "correct", "failed"]
"""Which rollouts may get zeros: both (the paper), only correct, only failed ones."""
SelectionRule = Literal["confidence", "random"]
"""confidence: lowest-confidence steps of correct, highest of failed rollouts (the
paper); random: k random steps (an ablation), reproducible from the seed."""
Granularity = Literal["step", "token"]
"""Rank blank-line steps (the paper) or single tokens."""
NonFinite = Literal["raise", "keep"]
"""A rollout with NaN/inf log-probs: raise, or keep its whole advantage (no step zeroed)."""
Shield = Literal["all", "truncated"]
"""Failed rollouts whose most confident steps are shielded: all (the paper), or only
the truncated ones."""

MODES: tuple[str, ...] = get_args(Mode)
SELECTIONS: tuple[str, ...] = get_args(SelectionRule)
GRANULARITIES: tuple[str, ...] = get_args(Granularity)
NONFINITE: tuple[str, ...] = get_args(NonFinite)
SHIELDS: tuple[str, ...] = get_args(Shield)

_MAX_SEED = 2**64 - 1


def choice(value: Any, name: str, allowed: tuple[str, ...]) -> str:
    """``value`` if it is one of ``allowed``; errors name the option."""
    if not isinstance(value, str):
        raise TypeError(f"{name}: must be a string, got {type(value).__name__}")
    if value not in allowed:
        raise ValueError(f"{name}: must be one of {allowed}, got {value!r}")
    return value


def as_float(value: numbers.Real, name: str) -> float:
    """``float(value)``; an integer too large for a float is a ValueError naming it."""
    try:
        return float(value)
    except OverflowError:
        raise ValueError(
            f"{name}: must be within the float64 range, got an integer of "
            f"{int(value).bit_length()} bits"
        ) from None


def ratio_value(ratio: Any) -> float:
    if isinstance(ratio, bool) or not isinstance(ratio, numbers.Real):
        raise TypeError(f"ratio: must be a real number, got {type(ratio).__name__}")
    r = as_float(ratio, "ratio")
    if not 0.0 <= r <= 1.0:  # also rejects NaN
        raise ValueError(f"ratio: must be in [0, 1], got {ratio}")
    return r


def seed_value(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed: must be an integer, got {type(seed).__name__}")
    if not 0 <= int(seed) <= _MAX_SEED:
        raise ValueError(f"seed: must be in [0, 2**64), got {seed}")
    return int(seed)


def finite_value(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: must be a real number, got {value!r}")
    x = as_float(value, name)
    if not math.isfinite(x):
        raise ValueError(f"{name}: must be finite, got {value}")
    return x


@dataclass(frozen=True)
class SASOptions:
    """The options of SAS, validated on construction (errors name the option).

    ratio: fraction r of each rollout's steps whose advantage is zeroed, in [0, 1].
    mode, selection, granularity: see :data:`Mode`, :data:`SelectionRule`,
        :data:`Granularity`.
    seed: seed of random selection, in [0, 2**64).
    correct_threshold: a rollout is correct when its verifier score exceeds this.
    nonfinite: see :data:`NonFinite`; the library default is "raise", the framework
        integrations default to "keep" (a long run survives one bad rollout).
    shield: see :data:`Shield`.
    think_end: token text that ends the reasoning region (e.g. ``"</think>"``).
    """

    ratio: float = 0.3
    mode: Mode = "both"
    selection: SelectionRule = "confidence"
    granularity: Granularity = "step"
    seed: int = 0
    correct_threshold: float = 0.5
    nonfinite: NonFinite = "raise"
    shield: Shield = "all"
    think_end: str | None = None

    def __new__(cls, *args: Any, **kwargs: Any) -> SASOptions:
        # Before the generated __init__, whose TypeError would not start with the name.
        known = cls.names()
        for key in kwargs:
            if key not in known:
                raise TypeError(f"{key}: unknown SAS option; known: {', '.join(sorted(known))}")
        return super().__new__(cls)

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: store the normalised values
        set_(self, "ratio", ratio_value(self.ratio))
        choice(self.mode, "mode", MODES)
        choice(self.selection, "selection", SELECTIONS)
        choice(self.granularity, "granularity", GRANULARITIES)
        set_(self, "seed", seed_value(self.seed))
        set_(self, "correct_threshold", finite_value(self.correct_threshold, "correct_threshold"))
        choice(self.nonfinite, "nonfinite", NONFINITE)
        choice(self.shield, "shield", SHIELDS)
        if self.think_end is not None and not isinstance(self.think_end, str):
            raise TypeError(f"think_end: must be a string or None, got {self.think_end!r}")

    def replace(self, **changes: Any) -> SASOptions:
        """A copy with ``changes`` applied (and validated)."""
        return type(self)(**{**asdict(self), **changes})

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_mapping(cls, values: Any, *, prefix: str = "") -> SASOptions:
        """From a mapping (a dict, an OmegaConf node); unknown keys are refused by name
        (``prefix`` + key), missing ones take the defaults."""
        known = set(cls.names())
        if values is not None and not callable(getattr(values, "items", None)):
            raise TypeError(
                f"{prefix or 'options'}: expected a mapping of SAS options, "
                f"got {type(values).__name__}"
            )
        items = dict(values.items()) if values is not None else {}
        unknown = sorted(set(items) - known)
        if unknown:
            raise ValueError(
                f"{prefix}{unknown[0]}: unknown SAS option; known: {', '.join(sorted(known))}"
            )
        try:
            return cls(**items)
        except (TypeError, ValueError) as e:
            raise type(e)(f"{prefix}{e}") from None
