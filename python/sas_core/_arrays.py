"""Argument normalisation shared by the public functions.

Turns numpy arrays, torch tensors and sequences into the contiguous 1-D numpy arrays the
Rust core reads zero-copy, copying only when the dtype or layout requires it, and raises
``TypeError``/``ValueError`` that name the argument.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np

from sas_core import _core

_INT_KINDS = "iu"


def is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "device")


def check_device(x: Any, name: str) -> None:
    """Tensors without data (``meta``) cannot be read."""
    if is_torch(x) and x.device.type == "meta":
        raise TypeError(f"{name}: a 'meta' tensor has no data to read")


def to_numpy(x: Any, name: str) -> np.ndarray:
    """A 1-D numpy view of ``x`` (:func:`host_array`, which moves a tensor to the CPU)."""
    a = host_array(x, name)
    if a.ndim != 1:
        raise ValueError(f"{name}: must be 1-D, got shape {a.shape}")
    return a


def c_order(x: Any) -> Any:
    """A numpy array in C order (a copy only when it is not already); anything else as
    given, for the extension to reject with its own message naming the argument."""
    if isinstance(x, np.ndarray) and not x.flags.c_contiguous:
        return np.ascontiguousarray(x)
    return x


def int_array(x: Any, name: str, *, allow_int32: bool = True) -> np.ndarray:
    """int64 array, or int32 where ``allow_int32`` (other integer dtypes are cast to int64)."""
    a = to_numpy(x, name)
    if a.dtype == np.int64 or (allow_int32 and a.dtype == np.int32):
        return np.ascontiguousarray(a)
    if a.size == 0:
        return np.zeros(0, dtype=np.int64)
    if a.dtype.kind not in _INT_KINDS:
        raise TypeError(f"{name}: must hold integers, got dtype {a.dtype}")
    if a.dtype == np.uint64 and a.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{name}: value {a.max()} is out of range")
    return np.ascontiguousarray(a, dtype=np.int64)


def float_array(x: Any, name: str) -> np.ndarray:
    """Native float32 or float64 array: float16 is widened to float32; any other layout
    of 8 bytes or more (big-endian float64, long double) becomes native float64, so a
    float64 value is never rounded to float32."""
    a = to_numpy(x, name)
    if a.dtype in (np.float32, np.float64) and a.dtype.isnative:
        return np.ascontiguousarray(a)
    if a.size == 0:
        return np.zeros(0, dtype=np.float32)
    if a.dtype.kind != "f":
        raise TypeError(f"{name}: must hold floats, got dtype {a.dtype}")
    wide = np.float64 if a.dtype.itemsize >= 8 else np.float32
    return np.ascontiguousarray(a, dtype=wide)


def real_array(x: Any, name: str) -> np.ndarray:
    """Finite float64 values (per-rollout advantages): integers are accepted; bool,
    complex, NaN and inf are not."""
    a = to_numpy(x, name)
    if a.dtype.kind not in "iuf":
        raise TypeError(f"{name}: must hold real numbers, got dtype {a.dtype}")
    a = np.ascontiguousarray(a, dtype=np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: must be finite, got {a[~np.isfinite(a)][0]}")
    return a


def representable(a: np.ndarray, dtype: Any, name: str) -> None:
    """Values that the output dtype cannot hold (1e300 in float32 would become inf) are a
    ValueError naming the argument, never a non-finite output."""
    limit = float(np.finfo(dtype).max)
    if a.size and float(np.abs(a).max()) > limit:
        raise ValueError(
            f"{name}: {float(np.abs(a).max()):.3g} is out of the range of the output dtype "
            f"{np.dtype(dtype).name} (|value| <= {limit:.3g})"
        )


def _zero_one(a: np.ndarray, name: str, what: str, *, floats: bool = False) -> np.ndarray:
    """Flags and masks, one rule for every layout: bools, or integers that are all 0 or 1
    (with ``floats``, as masks: also floats that are all exactly 0.0 or 1.0). NaN, inf,
    -1, 2, 0.5, complex and strings are refused, naming the argument."""
    if a.dtype == np.bool_:
        return np.ascontiguousarray(a)
    if a.size == 0:
        return np.zeros(a.shape, dtype=np.bool_)
    numeric = a.dtype.kind in _INT_KINDS or (floats and a.dtype.kind == "f")
    if not numeric:
        raise TypeError(f"{name}: must be {what}, got dtype {a.dtype}")
    ok = (a == 0) | (a == 1)
    if not ok.all():
        raise TypeError(f"{name}: must be {what}, got the value {a[~ok].ravel()[0]}")
    return a.astype(np.bool_)


def bool_array(x: Any, name: str) -> np.ndarray:
    """bool array; integer arrays of 0/1 are accepted."""
    return _zero_one(to_numpy(x, name), name, "booleans")


def host_array(x: Any, name: str) -> np.ndarray:
    """A host numpy copy or view of a tensor, array or sequence of any shape: ``meta``
    tensors are refused, bfloat16/float16 tensors widened to float32, anything numpy
    cannot read refused, each naming the argument."""
    if is_torch(x):
        check_device(x, name)
        x = x.detach()
        if x.dtype.is_floating_point and x.element_size() < 4:
            x = x.float()
        x = x.cpu().numpy()
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name}: cannot be read as an array ({e})") from None


MASK_RULE = "booleans (or 0/1)"


def mask_array(x: Any, name: str) -> np.ndarray:
    """A host bool mask (a padded batch's ``action_mask``), by :func:`_zero_one`: bools,
    or 0/1 integers or floats (frameworks keep masks as float tensors too)."""
    return _zero_one(host_array(x, name), name, MASK_RULE, floats=True)


def flags_array(x: Any, name: str) -> np.ndarray:
    """Flat bool flags from any shape (e.g. a trainer's ``truncated``), by the rule of
    :func:`bool_array`."""
    return _zero_one(host_array(x, name), name, "booleans").reshape(-1)


def scores_array(x: Any, name: str) -> np.ndarray:
    """Flat float64 real numbers from any shape (raw verifier scores: bools and integers
    are read as numbers; NaN is kept, it is never above a threshold)."""
    a = host_array(x, name)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name}: must be real numbers, got dtype {a.dtype}")
    return a.astype(np.float64).reshape(-1)


def length_value(value: Any, name: str) -> int:
    """A length >= 0: a Python or numpy integer, or a one-element integer tensor."""
    if is_torch(value):
        import torch

        check_device(value, name)
        dtype = value.dtype
        integer = not (dtype.is_floating_point or dtype.is_complex or dtype == torch.bool)
        if value.numel() == 1 and integer:
            value = int(value.item())
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: must be a length (an integer >= 0), got {value!r}")
    if not 0 <= int(value) < 2**63:
        raise ValueError(f"{name}: must be a length >= 0, got {value}")
    return int(value)


def step_ids_array(x: Any) -> np.ndarray:
    """int32 step ids (-1: outside every step), as the core reads them; other integer
    dtypes are narrowed when their values fit."""
    sid = int_array(x, "step_ids", allow_int32=True)
    if sid.dtype != np.int32:
        info = np.iinfo(np.int32)
        if sid.size and (sid.min() < -1 or sid.max() > info.max):
            raise ValueError("step_ids: must be -1 or a step index that fits in int32")
        sid = sid.astype(np.int32)
    return sid


def cu_seqlens_array(x: Any) -> np.ndarray:
    return int_array(x, "cu_seqlens", allow_int32=False)


MAX_THREADS: int = _core.MAX_THREADS  # the Rust core's bound (parallel::MAX_THREADS)


_warned_env: set[str] = set()


def default_num_threads() -> int:
    """The thread count a call without ``num_threads`` uses: ``SAS_CORE_NUM_THREADS``
    (at most MAX_THREADS) or the CPUs this process may use. The core reads and parses the
    variable; when it is set but not used as written (not a positive integer, or above
    MAX_THREADS) its note is warned once per value."""
    n, note = _core.default_num_threads()
    if note is not None and note not in _warned_env:
        _warned_env.add(note)
        warnings.warn(note, RuntimeWarning, stacklevel=3)
    return n


def threads_value(num_threads: Any) -> int | None:
    if num_threads is None:
        default_num_threads()  # warns about a misread SAS_CORE_NUM_THREADS
        return None
    if isinstance(num_threads, bool) or not isinstance(num_threads, numbers.Integral):
        raise TypeError(f"num_threads: must be a positive integer or None, got {num_threads!r}")
    if not 1 <= num_threads <= MAX_THREADS:
        raise ValueError(f"num_threads: must be in [1, {MAX_THREADS}], got {num_threads}")
    return int(num_threads)


def count_value(value: Any, name: str, low: int = 0, *, bits: int = 63) -> int:
    """A Python or numpy integer in [low, 2**bits)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: must be an integer, got {value!r}")
    if not low <= int(value) < 2**bits:
        raise ValueError(f"{name}: must be in [{low}, 2**{bits}), got {value}")
    return int(value)


def ids_value(values: Any, name: str) -> list[int]:
    """A list of token ids: integers (not bools, floats or a string's characters)."""
    if isinstance(values, str | bytes) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name}: must be a list of integer token ids, got {values!r}")
    return [count_value(v, name) for v in values]


def padded_numpy(
    response_ids: Any, logprobs: Any, action_mask: Any, correct: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """The numpy arrays of a padded (B, A) batch, checked (errors name the argument) and
    in the dtypes and C order the core reads: int32/int64 ids (other integers widened),
    float32/float64 log-probs (float16 widened, other float64 layouts made native), a
    bool mask (0/1 integers accepted), (B,) bool ``correct`` (None: not checked)."""
    arrays = {"response_ids": response_ids, "logprobs": logprobs, "action_mask": action_mask}
    for name, a in arrays.items():
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name}: must be a 2-D numpy array, got {type(a).__name__}")
        if a.ndim != 2:
            raise ValueError(f"{name}: must be 2-D (B, A), got shape {a.shape}")
    shape = response_ids.shape
    for name in ("logprobs", "action_mask"):
        if arrays[name].shape != shape:
            raise ValueError(
                f"{name}, response_ids: shapes differ, {arrays[name].shape} and {shape}"
            )
    ids = response_ids
    if ids.dtype.kind not in _INT_KINDS:
        raise TypeError(f"response_ids: must hold integers, got dtype {ids.dtype}")
    if ids.dtype not in (np.int32, np.int64) or not ids.dtype.isnative:
        if ids.dtype == np.uint64 and ids.size and ids.max() > np.iinfo(np.int64).max:
            raise ValueError(f"response_ids: value {ids.max()} is out of range")
        ids = ids.astype(np.int64)
    lp = logprobs
    if lp.dtype.kind != "f":
        raise TypeError(f"logprobs: must hold floats, got dtype {lp.dtype}")
    if lp.dtype not in (np.float32, np.float64) or not lp.dtype.isnative:
        lp = lp.astype(np.float64 if lp.dtype.itemsize >= 8 else np.float32)
    mask = _zero_one(action_mask, "action_mask", MASK_RULE, floats=True)
    if correct is None:
        return c_order(ids), c_order(lp), c_order(mask), None
    ok = bool_array(correct, "correct")
    if ok.shape != (shape[0],):
        raise ValueError(f"correct: must have shape ({shape[0]},), one per row, got {ok.shape}")
    return c_order(ids), c_order(lp), c_order(mask), c_order(ok)
