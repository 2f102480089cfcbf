"""The bad-input matrix: every public call x every argument x every kind of bad (or
unusual) value. Each case must end in one of two ways:

- a result equal to the reference's on the same values (``sas_core.reference`` on plain
  Python lists), or
- a ``ValueError``/``TypeError`` whose message starts with the argument's name (a
  mismatch between two arguments names both before the colon).

Anything else (another exception class, a message naming another argument or none, a
result where the reference refuses the input, a result that differs) fails its case.
The counts of both outcomes are printed at the end of the run (``-s``) and stated in the
README's contract.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import sas_core
from sas_core import reference

torch = pytest.importorskip("torch")

VOCAB = [b"a", b"\n", b".\n\n", b" b"]
SEG = sas_core.StepSegmenter(VOCAB)
# Values exactly representable in float16 and bfloat16, so those dtypes keep them.
LPS = [-1.0, -2.0, -0.5, -1.0, -0.25, -4.0, -1.5, -0.75]
IDS = [0, 2, 3, 0, 2, 3, 1, 2]
CU = [0, 4, 8]
CORRECT = [True, False]
OUTCOMES: collections.Counter = collections.Counter()


# ---------------------------------------------------------------------------- values
def _plain(x: Any) -> Any:
    """What the reference reads: plain Python values (a tensor's, an array's)."""
    if isinstance(x, torch.Tensor):
        if x.device.type == "meta":
            raise ValueError("meta")
        x = x.detach().cpu()
        x = x.float() if x.dtype == torch.bfloat16 else x
        x = x.numpy()
    if isinstance(x, np.ndarray):
        if x.dtype.kind in "OUS" or x.dtype.kind == "c":
            raise ValueError("not numbers")
        return x.astype(np.float64 if x.dtype.kind == "f" else x.dtype.newbyteorder("=")).tolist()
    if isinstance(x, (list, tuple)):
        return list(x)
    raise ValueError("not an array")


def _mutators(x: Any) -> dict[str, Callable[[], Any]]:
    """Bad or unusual forms of the good array ``x`` (numpy), by name."""
    a = np.asarray(x)
    out: dict[str, Callable[[], Any]] = {
        "none": lambda: None,
        "string": lambda: "abc",
        "list": lambda: a.tolist(),
        "object": lambda: np.array([*a.ravel().tolist()[:-1], "x"], dtype=object).reshape(a.shape),
        "complex": lambda: a.astype(np.complex128),
        "bool": lambda: a.astype(bool),
        "float16": lambda: a.astype(np.float16),
        "bfloat16": lambda: torch.from_numpy(a.astype(np.float32)).to(torch.bfloat16),
        "big-endian": lambda: a.astype(a.dtype.newbyteorder(">")),
        "strided": lambda: np.repeat(a, 2, axis=-1)[..., ::2],
        "negative-stride": lambda: a[..., ::-1].copy()[..., ::-1],
        "empty": lambda: a[..., :0],
        "short": lambda: a[..., :-1],
        "extra-dim": lambda: a[None],
        "tensor": lambda: torch.from_numpy(a.copy()),
        "meta": lambda: torch.empty(a.shape, device="meta"),
    }
    if a.ndim == 2:
        out["column-major"] = lambda: np.asfortranarray(a)
        out["zero-width"] = lambda: a[:, :0]
    if a.dtype.kind == "f":
        out["huge"] = lambda: a * 1e300
        out["nan"] = lambda: np.where(np.arange(a.size).reshape(a.shape) == 1, np.nan, a)
        out["inf"] = lambda: np.where(np.arange(a.size).reshape(a.shape) == 1, -np.inf, a)
        out["requires-grad"] = lambda: torch.from_numpy(a.copy()).requires_grad_()
        out["long-double"] = lambda: a.astype(np.longdouble)
    if a.dtype.kind in "iu":
        out["uint64-huge"] = lambda: np.full(a.shape, 2**63 + 5, dtype=np.uint64)
        out["negative"] = lambda: -a - 1
        out["int8"] = lambda: a.astype(np.int8)
    return out


SCALARS: dict[str, Any] = {
    "none": None,
    "string": "0.3",
    "bool": True,
    "nan": float("nan"),
    "inf": float("inf"),
    "negative": -1,
    "huge-int": 10**400,
    "above-one": 1.5,
    "complex": 1j,
    "numpy-int": np.int64(3),
    "tensor-int": torch.tensor(3),
    "tensor-float": torch.tensor(3.0),
}


# ----------------------------------------------------------------------------- calls
@dataclass
class Call:
    name: str
    run: Callable[..., Any]  # run(**args) -> result
    oracle: Callable[..., Any]  # oracle(**plain args) -> expected result (or raises)
    args: dict[str, Any]
    scalars: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()  # arrays for which None means "not given"


def _steps(ids: list, cu: list) -> list:
    return reference.segment(VOCAB, ids, cu)


def _ref_keep(step_ids, logprobs, cu_seqlens, correct, ratio=0.3):
    if any(not math.isfinite(v) for v in logprobs):
        raise ValueError("non-finite")
    return reference.keep_mask(step_ids, logprobs, cu_seqlens, correct, ratio=ratio)


def _ref_padded(response_ids, logprobs, action_mask, correct, ratio=0.3):
    flat_ids, flat_lps, cu = [], [], [0]
    for ids, lps, mask in zip(response_ids, logprobs, action_mask, strict=True):
        if len(ids) != len(lps) or len(ids) != len(mask):
            raise ValueError("shape")
        flat_ids += [i for i, m in zip(ids, mask) if m]
        flat_lps += [v for v, m in zip(lps, mask) if m]
        cu.append(len(flat_ids))
    flat = _ref_keep(_steps(flat_ids, cu), flat_lps, cu, correct, ratio)
    keep = np.ones((len(response_ids), len(response_ids[0])), dtype=bool)
    keep[np.asarray(action_mask, dtype=bool)] = flat
    return keep


# A packed action mask with a hole in rollout 0 (two turns) and one at the end of rollout 1.
MASK = [1, 1, 0, 1, 1, 1, 1, 0]


def _ref_masked_steps(token_ids, cu_seqlens, action_mask=None):
    """Step ids with an action mask: off the mask -1, each run of the mask a turn."""
    if action_mask is None:
        return _steps(token_ids, cu_seqlens)
    if len(action_mask) != len(token_ids) or any(m not in (0, 1) for m in action_mask):
        raise ValueError("action_mask")
    out = [-1] * len(token_ids)
    for lo, hi in zip(cu_seqlens[:-1], cu_seqlens[1:]):
        on = [p for p in range(lo, hi) if action_mask[p]]
        starts = [k for k in range(1, len(on)) if on[k] != on[k - 1] + 1]
        ids = [token_ids[p] for p in on]
        for p, step in zip(on, reference.segment(VOCAB, ids, [0, len(on)], turn_starts=starts)):
            out[p] = step
    return out


def _padded(x: list) -> np.ndarray:
    return np.asarray(x).reshape(2, 4)


STEPS = _steps(IDS, CU)
PADDED = {
    "response_ids": _padded(IDS),
    "logprobs": _padded(LPS),
    "action_mask": np.array([[1, 1, 1, 1], [1, 1, 1, 0]], dtype=bool),
    "correct": np.array(CORRECT),
}
REWARDS = np.array([1.0, 0.0, 0.5, 0.25])


def _tensors(args: dict) -> dict:
    return {k: torch.from_numpy(np.asarray(v).copy()) for k, v in args.items()}


def _torch_padded_oracle(response_ids, logprobs, action_mask, correct, ratio=0.3, adv=None):
    keep = _ref_padded(response_ids, logprobs, action_mask, correct, ratio)
    if adv is None:
        return keep
    return np.where(keep & np.asarray(action_mask, bool), np.asarray(adv)[:, None], 0.0)


def _grpo_oracle(rewards, group_size=2, eps=1e-6):
    if not all(math.isfinite(r) for r in rewards):
        raise ValueError("non-finite")
    return reference.grpo_advantages(rewards, group_size, eps)


def _flags(values, name, *, mask=False):
    """The rule for flags: bools, or the integers 0 and 1; for masks, also the floats
    0.0 and 1.0."""
    flat = np.asarray(values, dtype=object).reshape(-1).tolist()
    kinds = (int, float) if mask else (int,)
    if not all(type(v) is bool or (type(v) in kinds and v in (0, 1)) for v in flat):
        raise ValueError(f"{name}: not flags")
    return [bool(v) for v in flat]


def _count(value, name, *, tensor=False, bits=64):
    """An integer in [0, 2**bits): Python's or numpy's (with ``tensor``, also a
    one-element integer tensor)."""
    if tensor and isinstance(value, torch.Tensor):
        if value.numel() != 1 or value.dtype.is_floating_point or value.dtype == torch.bool:
            raise ValueError(f"{name}: not a count")
        value = int(value.item())
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name}: not a count")
    if not 0 <= int(value) < 2**bits:
        raise ValueError(f"{name}: not a count")
    return int(value)


def _batch_step_oracle(
    response_ids, logprobs, action_mask, advantages, scores, truncated=None, window=None,
    call=0, index=0, seed=None,
):  # fmt: skip
    """sas_batch_step's result by the reference (shield "all": the truncation, given as
    flags or a window, only feeds statistics, but must be readable)."""
    _flags(action_mask, "action_mask", mask=True)
    for name, value in (("call", call), ("index", index)):
        _count(value, name)
    if seed is not None:
        _count(seed, "seed")
    if window is not None:
        _count(window, "window", tensor=True, bits=63)
    if truncated is not None:
        _flags(truncated, "truncated")
    flat = np.asarray(scores, dtype=object).reshape(-1).tolist()
    if not all(isinstance(v, bool | int | float) for v in flat):
        raise ValueError("scores: not numbers")
    correct = [float(v) > 0.5 for v in flat]  # NaN: failed
    keep = _ref_padded(response_ids, logprobs, action_mask, correct)
    adv = np.asarray(advantages, dtype=np.float64)
    if adv.ndim == 1:
        if not np.isfinite(adv).all():
            raise ValueError("advantages: not finite")
        return np.where(keep & np.asarray(action_mask, bool), adv[:, None], 0.0)
    return np.where(keep, adv, 0.0)


def _batch_step(**a):
    from sas_core.torch_api import sas_batch_step

    args = [a.pop(k) for k in ("response_ids", "logprobs", "action_mask", "advantages", "scores")]
    return sas_batch_step(*args[:5], SEG, sas_core.SASOptions(), **a).advantages


BATCH = {
    **{k: v for k, v in _tensors(PADDED).items() if k != "correct"},
    "advantages": torch.tensor([0.5, -1.0], dtype=torch.float64),
    "scores": torch.tensor([1.0, 0.0]),
}


CALLS = [
    Call(
        "select_steps",
        lambda ratio=0.3, **a: sas_core.select_steps(**a, ratio=ratio).keep,
        _ref_keep,
        {
            "step_ids": np.array(STEPS, np.int32),
            "logprobs": np.array(LPS),
            "cu_seqlens": np.array(CU),
            "correct": np.array(CORRECT),
        },
        ("ratio",),
    ),
    Call(
        "StepSegmenter.segment",
        lambda **a: SEG.segment(**a),
        lambda token_ids, cu_seqlens: _steps(token_ids, cu_seqlens),
        {"token_ids": np.array(IDS), "cu_seqlens": np.array(CU)},
    ),
    Call(
        "StepSegmenter.select_steps",
        lambda ratio=0.3, **a: SEG.select_steps(**a, ratio=ratio).keep,
        lambda token_ids, logprobs, cu_seqlens, correct, ratio=0.3: _ref_keep(
            _steps(token_ids, cu_seqlens), logprobs, cu_seqlens, correct, ratio
        ),
        {
            "token_ids": np.array(IDS),
            "logprobs": np.array(LPS),
            "cu_seqlens": np.array(CU),
            "correct": np.array(CORRECT),
        },
        ("ratio",),
    ),
    Call(
        "StepSegmenter.segment[action_mask]",
        lambda **a: SEG.segment(**a),
        _ref_masked_steps,
        {
            "token_ids": np.array(IDS),
            "cu_seqlens": np.array(CU),
            "action_mask": np.array(MASK, bool),
        },
        optional=("action_mask",),
    ),
    Call(
        "StepSegmenter.select_steps[action_mask]",
        lambda ratio=0.3, **a: SEG.select_steps(**a, ratio=ratio).keep,
        lambda token_ids, logprobs, cu_seqlens, correct, action_mask=None, ratio=0.3: _ref_keep(
            _ref_masked_steps(token_ids, cu_seqlens, action_mask),
            logprobs,
            cu_seqlens,
            correct,
            ratio,
        ),
        {
            "token_ids": np.array(IDS),
            "logprobs": np.array(LPS),
            "cu_seqlens": np.array(CU),
            "correct": np.array(CORRECT),
            "action_mask": np.array(MASK, bool),
        },
        ("ratio",),
        optional=("action_mask",),
    ),
    Call(
        "step_confidences",
        lambda **a: sas_core.step_confidences(**a).values,
        lambda step_ids, logprobs, cu_seqlens: (
            [
                v
                for lo, hi in zip(cu_seqlens[:-1], cu_seqlens[1:])
                for _, v in sorted(
                    reference.step_confidences(step_ids[lo:hi], logprobs[lo:hi]).items()
                )
            ]
            if all(math.isfinite(v) for v in logprobs)
            else (_ for _ in ()).throw(ValueError("non-finite"))
        ),
        {
            "step_ids": np.array(STEPS, np.int32),
            "logprobs": np.array(LPS),
            "cu_seqlens": np.array(CU),
        },
    ),
    Call(
        "grpo_advantages",
        lambda group_size=2, eps=1e-6, **a: sas_core.grpo_advantages(
            **a, group_size=group_size, eps=eps
        ),
        _grpo_oracle,
        {"rewards": REWARDS},
        ("group_size", "eps"),
    ),
    Call(
        "token_advantages",
        lambda **a: sas_core.token_advantages(**a),
        lambda rollout_advantages, keep, cu_seqlens: [
            float(np.float32(a)) * k
            for a, lo, hi in zip(rollout_advantages, cu_seqlens[:-1], cu_seqlens[1:])
            for k in keep[lo:hi]
        ],
        {
            "rollout_advantages": np.array([0.5, -1.0]),
            "keep": np.array([1, 0, 1, 1] * 2, bool),
            "cu_seqlens": np.array(CU),
        },
    ),
    Call(
        "sas_advantages",
        lambda group_size=2, **a: sas_core.sas_advantages(
            **a, group_size=group_size, segmenter=SEG
        )[0],
        lambda rewards, group_size=2, **a: _torch_padded_oracle(
            **a, correct=[r > 0.5 for r in rewards], adv=_grpo_oracle(rewards, group_size)
        ),
        {
            "response_ids": torch.from_numpy(np.tile(PADDED["response_ids"], (2, 1))),
            "logprobs": torch.from_numpy(np.tile(PADDED["logprobs"], (2, 1))),
            "action_mask": torch.from_numpy(np.tile(PADDED["action_mask"], (2, 1))),
            "rewards": torch.from_numpy(REWARDS.copy()),
        },
        ("group_size",),
    ),
    Call(
        "sas_advantages[numpy]",
        lambda group_size=2, **a: sas_core.sas_advantages(
            **a, group_size=group_size, segmenter=SEG
        )[0],
        lambda rewards, group_size=2, **a: _torch_padded_oracle(
            **a, correct=[r > 0.5 for r in rewards], adv=_grpo_oracle(rewards, group_size)
        ),
        {
            "response_ids": np.tile(PADDED["response_ids"], (2, 1)),
            "logprobs": np.tile(PADDED["logprobs"], (2, 1)),
            "action_mask": np.tile(PADDED["action_mask"], (2, 1)),
            "rewards": REWARDS.copy(),
        },
        ("group_size",),
    ),
    Call(
        "sas_batch_step",
        _batch_step,
        _batch_step_oracle,
        {**BATCH, "truncated": torch.tensor([False, True])},
        ("call", "index", "seed"),
        ("truncated",),
    ),
    Call(
        "sas_batch_step[window]",
        _batch_step,
        _batch_step_oracle,
        dict(BATCH),
        ("window",),
    ),
    Call(
        "sas_batch_step[token advantages]",
        _batch_step,
        _batch_step_oracle,
        {**BATCH, "advantages": torch.tensor([[0.5, 1.0, -2.0, 0.25], [-1.0, 0.5, 3.0, 7.0]])},
    ),
]


def _cases():
    for call in CALLS:
        for arg, good in call.args.items():
            good_np = good.numpy() if isinstance(good, torch.Tensor) else good
            for kind in _mutators(good_np):
                yield pytest.param(call, arg, kind, id=f"{call.name}-{arg}-{kind}")
        for arg in call.scalars:
            for kind in SCALARS:
                yield pytest.param(call, arg, f"scalar:{kind}", id=f"{call.name}-{arg}-{kind}")


def _value(call: Call, arg: str, kind: str) -> Any:
    if kind.startswith("scalar:"):
        return SCALARS[kind.split(":", 1)[1]]
    good = call.args[arg]
    as_tensor = isinstance(good, torch.Tensor)
    value = _mutators(good.numpy() if as_tensor else good)[kind]()
    # The torch calls take tensors: the same bad values, as a tensor where torch can hold
    # them (numpy's layouts and byte orders are numpy-only).
    numeric = isinstance(value, np.ndarray) and value.dtype.kind in "biuf"
    if as_tensor and numeric and value.dtype.isnative and value.dtype != np.longdouble:
        value = torch.from_numpy(np.ascontiguousarray(value))
    return value


def _plain_args(call: Call, args: dict) -> dict:
    return {
        k: v if k in call.scalars or (k in call.optional and v is None) else _plain(v)
        for k, v in args.items()
    }


def _equal(got: Any, want: Any) -> bool:
    """Equal, after rounding the reference to the result's dtype (advantages come back
    in the log-probs' dtype: float16 log-probs give float16 advantages)."""
    if isinstance(got, torch.Tensor):
        if got.dtype.is_floating_point:
            want = torch.as_tensor(np.asarray(want, dtype=np.float64)).to(got.dtype)
            want = want.double().numpy()
        got = got.detach().cpu().double().numpy() if got.dtype != torch.bool else got.numpy()
    got = np.asarray(got)
    want = np.asarray(want)
    if got.shape != want.shape:
        return False
    if got.dtype == bool or want.dtype == bool:
        return bool((got.astype(bool) == want.astype(bool)).all())
    # NaN where the reference has NaN: a value passed through (per-token advantages)
    return bool(
        np.allclose(
            got.astype(np.float64), want.astype(np.float64), rtol=1e-6, atol=0, equal_nan=True
        )
    )


@pytest.mark.parametrize(("call", "arg", "kind"), list(_cases()))
def test_bad_input_matrix(call: Call, arg: str, kind: str):
    args = {**call.args, arg: _value(call, arg, kind)}
    try:
        got = call.run(**args)
    except (ValueError, TypeError) as e:
        # The message starts with the argument's name; a mismatch between two arguments
        # names both ("logprobs, response_ids: shapes differ ..."): either may be wrong.
        message = str(e)
        named = message.split(": ", 1)[0].split(", ") if ": " in message else []
        assert arg in named, f"{type(e).__name__} names {named or 'nothing'}: {message}"
        OUTCOMES["error naming the argument"] += 1
        return
    try:
        want = call.oracle(**_plain_args(call, args))
    except Exception as e:  # the reference cannot score it: the call had to refuse it
        pytest.fail(f"accepted an input the reference refuses ({type(e).__name__}: {e})")
    assert _equal(got, want), f"{got!r} != reference {want!r}"
    OUTCOMES["equal to the reference"] += 1


# --------------------------------------------------------------------------- options
OPTION_VALUES: dict[str, Any] = {
    **SCALARS,
    "list": [0.3],
    "dict": {},
    "word": "both",
    "zero": 0,
    "half": 0.5,
}


def _option_classes():
    from sas_core.integrations.openrlhf.options import SASOptions as OpenRLHFOptions
    from sas_core.integrations.verl.options import PREFIX, VerlSASOptions

    return [
        ("SASOptions", sas_core.SASOptions, ""),
        ("OpenRLHF", OpenRLHFOptions, ""),
        ("verl", VerlSASOptions, PREFIX),
    ]


def _option_cases():
    for label, cls, prefix in _option_classes():
        for name in cls.names():
            for kind in OPTION_VALUES:
                yield pytest.param(cls, prefix, name, kind, id=f"{label}-{name}-{kind}")
        yield pytest.param(cls, prefix, "ration", "half", id=f"{label}-unknown-key")


@pytest.mark.parametrize(("cls", "prefix", "name", "kind"), list(_option_cases()))
def test_option_matrix(cls, prefix, name, kind):
    """Every option of every framework's options class: a value is taken as given or
    refused with a ValueError/TypeError that starts with the option's (full) name."""
    value = OPTION_VALUES[kind]
    try:
        opts = cls.from_mapping({name: value}, prefix=prefix)
    except (ValueError, TypeError) as e:
        assert str(e).startswith(f"{prefix}{name}:"), str(e)
        OUTCOMES["error naming the argument"] += 1
        return
    got = getattr(opts, name)
    assert (got == value and type(got) is type(value)) or float(got) == float(value)
    OUTCOMES["option taken as given"] += 1


def test_matrix_outcomes_summary():
    """Runs last in this module: the counts (meaningful when the whole module ran)."""
    total = sum(OUTCOMES.values())
    print(f"\nbad-input matrix: {total} cases: {dict(OUTCOMES)}")
    if total:
        assert set(OUTCOMES) <= {
            "error naming the argument",
            "equal to the reference",
            "option taken as given",
        }
