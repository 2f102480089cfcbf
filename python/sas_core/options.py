"""The SAS options, written once: each option's name, type, default, allowed values,
check and help text.

:class:`SASOptions` is the schema. Everything else derives from it: the keyword
arguments of the public calls (:func:`keyword_options`), OpenRLHF's flags, verl's
``algorithm.sas.*`` keys and TRL's config fields (:func:`schema` lists the options
with their help). An option is checked when its object is built (a trainer builds it
once, at start) and once more by the Rust core, which parses the option strings into its
own enums at the boundary (``_core.pyi`` types them with these ``Literal`` types).

Adding an option: one field here (with :func:`option`), plus the Rust core if the
kernel reads it.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
import typing
from collections.abc import Callable
from dataclasses import MISSING, Field, asdict, dataclass, field, fields
from typing import Any, Literal, NamedTuple, get_args, get_origin

__all__ = [
    "SEGMENTER_OPTIONS",
    "SELECT_OPTIONS",
    "Delimiter",
    "Granularity",
    "Mode",
    "NonFinite",
    "Option",
    "SASOptions",
    "SelectionRule",
    "Shield",
    "keyword_options",
    "option",
    "schema",
    "trainer_default",
]

Mode = Literal["both", "correct", "failed"]
SelectionRule = Literal["confidence", "random"]
Granularity = Literal["step", "token"]
NonFinite = Literal["raise", "keep"]
Shield = Literal["all", "truncated"]
Delimiter = Literal["blank_line", "line"]

_MAX_SEED = 2**64 - 1


def _real(value: Any, name: str) -> float:
    """``float(value)`` of a real number (not a bool); an integer too large for a float
    is a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: must be a real number, got {value!r}")
    try:
        return float(value)
    except OverflowError:
        raise ValueError(
            f"{name}: must be within the float64 range, got an integer of "
            f"{int(value).bit_length()} bits"
        ) from None


def fraction(value: Any, name: str) -> float:
    r = _real(value, name)
    if not 0.0 <= r <= 1.0:  # also rejects NaN
        raise ValueError(f"{name}: must be in [0, 1], got {value}")
    return r


def finite(value: Any, name: str) -> float:
    x = _real(value, name)
    if not math.isfinite(x):
        raise ValueError(f"{name}: must be finite, got {value}")
    return x


def seed_value(value: Any, name: str = "seed") -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: must be an integer, got {type(value).__name__}")
    if not 0 <= int(value) <= _MAX_SEED:
        raise ValueError(f"{name}: must be in [0, 2**64), got {value}")
    return int(value)


def text_or_none(value: Any, name: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name}: must be a string or None, got {value!r}")
    return value


def choice(allowed: tuple[str, ...]) -> Callable[[Any, str], str]:
    def check(value: Any, name: str) -> str:
        if not isinstance(value, str):
            raise TypeError(f"{name}: must be a string, got {type(value).__name__}")
        if value not in allowed:
            raise ValueError(f"{name}: must be one of {allowed}, got {value!r}")
        return value

    return check


_UNSET = object()


def option(
    default: Any,
    help: str,
    check: Callable[[Any, str], Any] | None = None,
    *,
    trainer: Any = _UNSET,
) -> Any:
    """A field of the schema: its default, its help text (flags, config fields and docs
    print it), its check (``check(value, name)`` returns the normalised value or raises
    naming the option; options typed ``Literal[...]`` are checked against their values
    without one) and, where a training run wants another, its ``trainer`` default."""
    trainer = default if trainer is _UNSET else trainer
    return field(default=default, metadata={"help": help, "check": check, "trainer": trainer})


def trainer_default(name: str) -> Any:
    """Option ``name`` of :class:`SASOptions` at its trainer default: the field a
    framework's options class (OpenRLHF's, verl's) declares."""
    base = SASOptions.__dataclass_fields__[name]
    return field(default=base.metadata["trainer"], metadata=base.metadata)


@dataclass(frozen=True)
class SASOptions:
    """The options of SAS, checked on construction (errors name the option).

    A framework's options class (OpenRLHF's, verl's) subclasses it to add the source of
    its ranking log-probs; :func:`schema` lists the options of any of them.
    """

    ratio: float = option(
        0.3, "fraction r of each rollout's steps whose advantage is zeroed, in [0, 1]", fraction
    )
    mode: Mode = option("both", "rollouts that get zeros: both (the paper), correct, failed")
    selection: SelectionRule = option(
        "confidence",
        "confidence: lowest-confidence steps of correct and highest of failed rollouts (the "
        "paper); random: random steps (an ablation), reproducible from the seed",
    )
    granularity: Granularity = option("step", "rank blank-line steps (the paper) or single tokens")
    seed: int = option(0, "seed of random selection, in [0, 2**64)", seed_value)
    correct_threshold: float = option(
        0.5, "a rollout is correct when its verifier score exceeds this", finite
    )
    nonfinite: NonFinite = option(
        "raise",
        "a rollout with NaN/inf log-probs: raise, or keep its whole advantage (no step "
        "zeroed; counted in sas/nonfinite_rollouts; warned once per run)",
        trainer="keep",  # a long training run survives one bad rollout
    )
    shield: Shield = option(
        "all",
        "failed rollouts whose most confident steps are shielded: all (the paper) or only "
        "the truncated ones",
    )
    think_end: str | None = option(
        None,
        "token text that ends the reasoning region (e.g. '</think>'); steps stop there",
        text_or_none,
    )
    delimiter: Delimiter = option(
        "blank_line",
        "where a step ends: blank_line (a run of two or more newlines, the paper) or line "
        "(any newline: a step per line, for code)",
    )
    boundary_tokens: str | None = option(
        None,
        "token texts after which a step ends too, comma-separated (e.g. "
        "'</tool_call>,<|im_end|>'), each a single token of the vocabulary",
        text_or_none,
    )

    def __new__(cls, *args: Any, **kwargs: Any) -> SASOptions:
        # Before the generated __init__, whose TypeError would not start with the name.
        known = cls.names()
        for key in kwargs:
            if key not in known:
                raise TypeError(f"{key}: unknown SAS option; known: {', '.join(sorted(known))}")
        return super().__new__(cls)

    def __post_init__(self) -> None:
        for opt in schema(type(self)):
            value = opt.check(getattr(self, opt.name), opt.name)
            object.__setattr__(self, opt.name, value)  # frozen: store the normalised value

    def segmenter_options(self) -> dict[str, Any]:
        """The options that build the segmenter (``StepSegmenter.for_model``'s keywords)."""
        return {name: getattr(self, name) for name in SEGMENTER_OPTIONS}

    def replace(self, **changes: Any) -> SASOptions:
        """A copy with ``changes`` applied (and checked)."""
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


class Option(NamedTuple):
    """One option of the schema, as the generators read it."""

    name: str
    type: Any  # the annotation, resolved (e.g. ``Literal["both", ...]``, ``float``)
    default: Any
    choices: tuple[str, ...] | None  # a Literal's values
    help: str
    check: Callable[[Any, str], Any]
    trainer_default: Any  # the default of a training run's options


@functools.cache
def schema(cls: type[SASOptions] = SASOptions) -> tuple[Option, ...]:
    """The options of ``cls`` (:class:`SASOptions` or a framework's subclass), in order."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in fields(cls):
        hint = hints[f.name]
        choices = get_args(hint) if get_origin(hint) is Literal else None
        check = f.metadata.get("check") or (choice(choices) if choices else None)
        if check is None:
            raise TypeError(f"{cls.__name__}.{f.name}: an option needs a check or Literal type")
        default = _default(f)
        trainer = f.metadata.get("trainer", default)
        out.append(Option(f.name, hint, default, choices, f.metadata["help"], check, trainer))
    return tuple(out)


def _default(f: Field) -> Any:
    return None if f.default is MISSING else f.default


SEGMENTER_OPTIONS = ("think_end", "delimiter", "boundary_tokens")
"""The options read when the segmenter is built, from the tokenizer."""

SELECT_OPTIONS = ("ratio", "mode", "selection", "granularity", "seed", "nonfinite")
"""The options a selection call reads (the others belong to a trainer step)."""


def keyword_options(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Gives a public call keyword arguments ``names`` with the schema's defaults.

    The decorated function takes ``options`` (a :class:`SASOptions`) where its keyword
    block would be; the call users see takes the options by name instead, builds the
    object (errors name the option) and passes it. ``help()`` shows the generated
    signature."""
    names = names or SELECT_OPTIONS
    by_name = {opt.name: opt for opt in schema()}

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(fn)
        params = [p for p in sig.parameters.values() if p.name != "options"]
        at = next(i for i, p in enumerate(params) if p.kind is p.KEYWORD_ONLY)
        params[at:at] = [
            inspect.Parameter(
                n,
                inspect.Parameter.KEYWORD_ONLY,
                default=by_name[n].default,
                annotation=by_name[n].type,
            )
            for n in names
        ]

        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            values = {n: kwargs.pop(n) for n in names if n in kwargs}
            return fn(*args, options=SASOptions(**values), **kwargs)

        call.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        return call

    return wrap
