"""Keep masks and advantages over packed batches (numpy in, numpy out).

Torch tensors are accepted too; results then come back as tensors on the device of the
first tensor argument.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from sas_core import _arrays, _core
from sas_core.options import SASOptions, finite, keyword_options

__all__ = [
    "StepSelection",
    "grpo_advantages",
    "select_steps",
    "token_advantages",
]


class StepSelection(NamedTuple):
    """What :func:`select_steps` chose.

    keep: (N,) bool, False on the tokens of selected steps.
    n_units: (B,) uint32, steps (or in-step tokens at token granularity) per rollout.
    n_selected: (B,) uint32, units selected per rollout (0 where ``mode`` spares it).
    """

    keep: Any
    n_units: Any
    n_selected: Any


def _torch_device(*xs: Any) -> Any:
    for x in xs:
        if _arrays.is_torch(x):
            return x.device
    return None


def _back(a: np.ndarray, device: Any) -> Any:
    if device is None:
        return a
    import torch

    return torch.from_numpy(a).to(device)


@keyword_options()
def select_steps(
    step_ids: Any,
    logprobs: Any,
    cu_seqlens: Any,
    correct: Any,
    *,
    options: SASOptions,
    num_threads: int | None = None,
) -> StepSelection:
    """Selects the steps whose advantage SAS zeroes.

    Args:
        step_ids: (N,) int, step id per token (-1: outside every step), as from
            :meth:`StepSegmenter.segment`.
        logprobs: (N,) float32/float64, log-prob of each token under the rollout policy.
        cu_seqlens: (B+1,) int, rollout boundaries in the packed arrays.
        correct: (B,) bool, whether each rollout was verified correct.
        ratio, mode, selection, granularity, seed, nonfinite: the options, by name
            (:class:`~sas_core.options.SASOptions` lists their defaults and meanings).
            ``nonfinite="keep"``: a rollout with a NaN/inf log-prob gets no unit
            selected (its tokens all kept), the others are selected as without it.
        num_threads: threads for the Rust core (default: ``SAS_CORE_NUM_THREADS`` or
            all CPUs); the result does not depend on it.
    """
    device = _torch_device(step_ids, logprobs, cu_seqlens, correct)
    sid = _arrays.step_ids_array(step_ids)
    lps = _arrays.float_array(logprobs, "logprobs")
    cu = _arrays.cu_seqlens_array(cu_seqlens)
    keep, n_units, n_selected = _core.keep_mask(
        sid, lps, cu, _arrays.bool_array(correct, "correct"), options,
        _arrays.threads_value(num_threads),
    )  # fmt: skip
    return StepSelection(_back(keep, device), _back(n_units, device), _back(n_selected, device))


def grpo_advantages(
    rewards: Any, group_size: int | None = None, *, group_ids: Any = None, eps: float = 1e-6
) -> Any:
    """(B,) float64 GRPO advantages: (R - mean) / (std + eps) within each group.

    Groups are either ``group_size`` consecutive rollouts, or given by ``group_ids``:
    one prompt id per rollout (ints or strings, any order, as verl's ``uid``). std is
    unbiased (torch's default), so every group needs at least 2 rollouts.
    """
    return _back(
        grpo_checked(reward_array(rewards), group_size, group_ids, eps), _torch_device(rewards)
    )


def grpo_checked(r: np.ndarray, group_size: Any, group_ids: Any, eps: Any) -> np.ndarray:
    """:func:`grpo_advantages` of rewards already read by :func:`reward_array`."""
    eps = finite(eps, "eps")
    if eps <= 0:  # eps = 0 divides 0 by 0 in a group of equal rewards
        raise ValueError(f"eps: must be > 0, got {eps}")
    if (group_size is None) == (group_ids is None):
        raise TypeError("group_size: give exactly one of group_size and group_ids")
    if group_ids is None:
        group_size = _arrays.count_value(group_size, "group_size", low=1)
        out = _core.grpo_advantages(r, eps, group_size=group_size)
    else:
        out = _grouped(r, group_ids, eps)
    if not np.isfinite(out).all():
        raise ValueError(
            "rewards: too large for GRPO in float64 (a group's mean or std overflows); rescale them"
        )
    return out


def reward_array(rewards: Any) -> np.ndarray:
    """(B,) float64 rewards: real numbers or bools (complex, NaN, inf refused)."""
    r = _arrays.to_numpy(rewards, "rewards")
    if r.dtype.kind not in "fiub":
        raise TypeError(f"rewards: must be real numbers, got dtype {r.dtype}")
    r = np.ascontiguousarray(r, dtype=np.float64)
    if not np.isfinite(r).all():
        raise ValueError(f"rewards: must be finite, got {r[~np.isfinite(r)][0]}")
    if r.size and np.abs(r).max() > MAX_REWARD:
        raise ValueError(
            f"rewards: |reward| must be <= {MAX_REWARD:g} (GRPO squares deviations in "
            f"float64), got {np.abs(r).max():.3g}"
        )
    return r


# Squares of reward deviations stay finite in float64 for any batch below 10**7 rows.
MAX_REWARD = 1e150


def _grouped(r: np.ndarray, group_ids: Any, eps: float) -> np.ndarray:
    ids = _arrays.to_numpy(group_ids, "group_ids")  # tensors (any device) and sequences
    if ids.shape != r.shape:
        raise ValueError(f"group_ids: need {r.size} ids, one per rollout, got shape {ids.shape}")
    if ids.dtype.kind == "O":
        kinds = {type(x) for x in ids.tolist()}
        if not (kinds <= {int} or kinds <= {str}):
            raise TypeError(
                "group_ids: must be all integers or all strings, got "
                + ", ".join(sorted(k.__name__ for k in kinds))
            )
    elif ids.dtype.kind not in "iuUS":
        raise TypeError(f"group_ids: must be integers or strings, got dtype {ids.dtype}")
    _, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    if r.size and counts.min() < 2:
        lone = ids[np.flatnonzero(counts[inverse] < 2)[0]].item()
        raise ValueError(f"group_ids: group {lone!r} has 1 rollout; GRPO needs >= 2")
    # The ids become dense group indices here; the formula is the Rust core's, the one
    # that consecutive groups use too.
    return _core.grpo_advantages(r, eps, groups=inverse.astype(np.uint32).reshape(-1))


def token_advantages(rollout_advantages: Any, keep: Any, cu_seqlens: Any) -> np.ndarray:
    """(N,) float32: each rollout's advantage broadcast to its tokens, times ``keep``.

    ``rollout_advantages`` must be finite reals (tensors of any float dtype, with or
    without grad, are read as values)."""
    adv = _arrays.real_array(rollout_advantages, "rollout_advantages")
    _arrays.representable(adv, np.float32, "rollout_advantages")
    if adv.ndim != 1:
        raise ValueError(f"rollout_advantages: must be 1-D (B,), got shape {adv.shape}")
    return _core.token_advantages(
        adv.astype(np.float32),
        _arrays.bool_array(keep, "keep"),
        _arrays.cu_seqlens_array(cu_seqlens),
    )
