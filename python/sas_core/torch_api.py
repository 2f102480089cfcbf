"""The padded calls: (B, A) rollouts in, SAS advantages out.

:func:`sas_advantages` is the one padded call (numpy arrays or torch tensors: GRPO from
the rewards, then step selection); :func:`sas_batch_step` is the one step every trainer
integration takes after its own advantages. Both hand the padded arrays to the Rust
core, which reads them in place and writes the advantages in its pass over each row.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from sas_core import _arrays
from sas_core._core import unit_key
from sas_core.masks import grpo_checked, reward_array
from sas_core.options import SELECT_OPTIONS, SASOptions, keyword_options, seed_value
from sas_core.stats import batch_stats, rollout_stats

if TYPE_CHECKING:
    import torch

    from sas_core.segmenter import StepSegmenter

__all__ = ["BatchStep", "sas_advantages", "sas_batch_step"]


def _check_2d(name: str, t: Any, shape: tuple[int, ...] | None) -> None:
    if not _arrays.is_torch(t):
        raise TypeError(f"{name}: must be a torch.Tensor, got {type(t).__name__}")
    _arrays.check_device(t, name)
    if t.dim() != 2:
        raise ValueError(f"{name}: must have shape (B, A), got {tuple(t.shape)}")
    if shape is not None and tuple(t.shape) != shape:
        raise ValueError(f"{name}, response_ids: shapes differ, {tuple(t.shape)} and {shape}")


@keyword_options(*SELECT_OPTIONS, "correct_threshold")
def sas_advantages(
    response_ids: Any,
    logprobs: Any,
    action_mask: Any,
    rewards: Any,
    group_size: int | None,
    segmenter: StepSegmenter,
    *,
    group_ids: Any = None,
    correct: Any = None,
    eps: float = 1e-6,
    options: SASOptions,
    num_threads: int | None = None,
) -> tuple[Any, dict[str, float]]:
    """Per-token SAS advantages from padded rollouts: GRPO, then step selection.

    Args:
        response_ids: (B, A) int token ids of the responses.
        logprobs: (B, A) float per-token log-probs under the rollout policy.
        action_mask: (B, A) bool (or 0/1), set on response tokens (any padding side,
            holes allowed).
        rewards: (B,) float per-rollout rewards; rollouts of one prompt are consecutive,
            ``group_size`` of them, or grouped by ``group_ids``.
        group_size: rollouts per prompt (>= 2), or None with ``group_ids``.
        segmenter: the tokenizer's :class:`StepSegmenter`.
        group_ids: (B,) prompt id of each rollout (any order, as verl's ``uid``).
        correct: (B,) bool, overrides ``correct_threshold`` (e.g. raw verifier scores
            when ``rewards`` carry shaping); by default a rollout is correct when its
            reward exceeds ``correct_threshold``.
        ratio, mode, selection, granularity, seed, nonfinite, num_threads: see
            :func:`sas_core.select_steps`.
        eps: GRPO's std epsilon.

    The arrays are all numpy arrays (numpy only, no torch needed) or all torch tensors
    (any device: the result comes back on ``logprobs``' device).

    Returns:
        advantages: (B, A), ``logprobs``' dtype; the rollout's GRPO advantage on its
            kept response tokens, 0 on the selected steps and off the mask.
        stats: the batch's ``sas/...`` statistics (:mod:`sas_core.stats`, the names
            every integration logs), e.g. ``sas/zeroed_token_frac``, ``sas/steps``,
            ``sas/nonfinite_rollouts`` (rollouts left unselected for NaN/inf log-probs
            under ``nonfinite="keep"``).
    """
    from sas_core.segmenter import StepSegmenter

    if not isinstance(segmenter, StepSegmenter):
        raise TypeError(f"segmenter: must be a StepSegmenter, got {type(segmenter).__name__}")
    # numpy arrays or torch tensors: the layout of most of the three (the odd one out is
    # named by the checks of the other)
    if sum(map(_arrays.is_torch, (response_ids, logprobs, action_mask))) < 2:
        return _numpy_advantages(
            response_ids, logprobs, action_mask, rewards, group_size, segmenter, group_ids,
            correct, eps, options, num_threads,
        )  # fmt: skip
    shape = _check_padded(response_ids, logprobs, action_mask)
    b = shape[0]
    if not _arrays.is_torch(rewards) or tuple(rewards.shape) != (b,):
        raise ValueError(f"rewards: must be a tensor of shape ({b},), one reward per rollout")
    reward_np = reward_array(rewards)
    if correct is None:
        correct = reward_np > options.correct_threshold
    rollout_adv = grpo_checked(reward_np, group_size, group_ids, eps)
    return _token_advantages(
        shape, response_ids, logprobs, action_mask, rollout_adv, correct, segmenter, options,
        num_threads,
    )  # fmt: skip


def _numpy_advantages(
    response_ids: np.ndarray,
    logprobs: Any,
    action_mask: Any,
    rewards: Any,
    group_size: int | None,
    segmenter: StepSegmenter,
    group_ids: Any,
    correct: Any,
    eps: float,
    options: SASOptions,
    num_threads: int | None,
) -> tuple[np.ndarray, dict[str, float]]:
    """:func:`sas_advantages` on numpy arrays (no torch)."""
    ids, lps, mask, _ = _arrays.padded_numpy(response_ids, logprobs, action_mask, None)
    b = ids.shape[0]
    reward_np = _one_per_rollout("rewards", reward_array(rewards), b)
    if correct is None:
        correct = reward_np > options.correct_threshold
    ok = _one_per_rollout("correct", _arrays.bool_array(correct, "correct"), b)
    adv = grpo_checked(reward_np, group_size, group_ids, eps)
    _arrays.representable(adv, lps.dtype, "rewards")
    out = np.empty(mask.shape, dtype=lps.dtype)
    picked = segmenter._select_padded(
        ids, lps, mask, ok, options, num_threads, adv.astype(lps.dtype), out
    )
    _, n_units, n_selected, n_zeroed, tokens, bad_rows = picked
    stats = rollout_stats(n_units, n_selected, n_zeroed, tokens, ok, bad_rows)
    return out, batch_stats(stats)


class _Selection(NamedTuple):
    """What the core chose on a padded batch: (B, A) keep (False exactly on the response
    tokens of the selected steps), and per rollout the units, selected units, zeroed
    tokens, response tokens and whether it was left unselected for NaN/inf log-probs."""

    keep: np.ndarray
    n_units: np.ndarray
    n_selected: np.ndarray
    n_zeroed: np.ndarray
    n_tokens: np.ndarray
    nonfinite: np.ndarray


def _check_padded(
    response_ids: torch.Tensor, logprobs: torch.Tensor, action_mask: torch.Tensor
) -> tuple[int, ...]:
    import torch

    _check_2d("response_ids", response_ids, None)
    shape = tuple(response_ids.shape)
    _check_2d("logprobs", logprobs, shape)
    _check_2d("action_mask", action_mask, shape)
    if not logprobs.dtype.is_floating_point:
        raise TypeError(f"logprobs: must be a float tensor, got {logprobs.dtype}")
    ids_dtype = response_ids.dtype
    if ids_dtype.is_floating_point or ids_dtype.is_complex or ids_dtype == torch.bool:
        raise TypeError(f"response_ids: must be an integer tensor, got {response_ids.dtype}")
    return shape


def _numpy_dtype(dtype: Any) -> Any:
    """The numpy float type whose range is that of a torch float dtype (bfloat16's range
    is float32's)."""
    import torch

    return {torch.float64: np.float64, torch.float16: np.float16}.get(dtype, np.float32)


def _mask_array(action_mask: torch.Tensor) -> np.ndarray:
    """The host bool mask: the one rule of every layout (bools, or 0/1 integers or
    floats)."""
    return _arrays.mask_array(action_mask, "action_mask")


def _padded_core(
    response_ids: torch.Tensor,
    logprobs: torch.Tensor,
    mask: np.ndarray,
    correct: np.ndarray,
    segmenter: StepSegmenter,
    options: SASOptions,
    num_threads: int | None,
    advantages: np.ndarray | None = None,
    spare: np.ndarray | None = None,
) -> tuple[_Selection, np.ndarray | None]:
    """The core's selection on the CPU arrays of the tensors (read in place: zero-copy
    for CPU tensors of int32/int64 ids and float32/float64 log-probs).

    With ``advantages`` (a (B,) or (B, A) numpy array of float32 or float64: the
    output's dtype, so a float64 advantage is never rounded through float32) the core
    also writes the SAS advantages into a new (B, A) array of that dtype, returned
    second (else None). ``spare``: (B,) bool, rollouts left unselected (a shield).

    ``options.nonfinite == "keep"``: a rollout whose log-probs hold NaN or inf on its
    response tokens gets no unit selected (its advantage stands, as GRPO's would).
    Selection is per rollout, so the others are exactly what they would be without it.
    ``"raise"``: the core raises.
    """
    import torch

    from sas_core.segmenter import StepSegmenter

    if not isinstance(segmenter, StepSegmenter):
        raise TypeError(f"segmenter: must be a StepSegmenter, got {type(segmenter).__name__}")
    ids = response_ids.detach()
    if ids.dtype not in (torch.int32, torch.int64):
        ids = ids.long()
    lp = logprobs.detach()
    if lp.element_size() < 4:
        lp = lp.float()
    out = None if advantages is None else np.empty(mask.shape, dtype=advantages.dtype)
    picked = _Selection(
        *segmenter._select_padded(
            ids.cpu().numpy(), lp.cpu().numpy(), mask, correct, options, num_threads,
            advantages, out, spare,
        )
    )  # fmt: skip
    return picked, out


# The output dtypes the core writes; the others (bfloat16, float16) are computed in torch.
_KERNEL_DTYPES = {"torch.float32": np.float32, "torch.float64": np.float64}


def _kernel_dtype(dtype: Any) -> Any:
    """The numpy dtype the core writes advantages of ``dtype`` in, or None."""
    return _KERNEL_DTYPES.get(str(dtype))


def _one_per_rollout(name: str, arr: np.ndarray, b: int) -> np.ndarray:
    if arr.shape != (b,):
        raise ValueError(f"{name}: must have shape ({b},), got {arr.shape}")
    return arr


def _token_advantages(
    shape: tuple[int, ...],
    response_ids: torch.Tensor,
    logprobs: torch.Tensor,
    action_mask: torch.Tensor,
    rollout_advantages: np.ndarray,
    correct: Any,
    segmenter: StepSegmenter,
    options: SASOptions,
    num_threads: int | None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """:func:`sas_advantages` on checked tensors: (B,) float64 advantages spread over
    the kept response tokens, in ``logprobs``' dtype and on its device."""
    import torch

    adv = _one_per_rollout("rollout_advantages", rollout_advantages, shape[0])
    _arrays.representable(adv, _numpy_dtype(logprobs.dtype), "rewards")
    correct_np = _one_per_rollout("correct", _arrays.bool_array(correct, "correct"), shape[0])
    mask = _mask_array(action_mask)
    dtype, device = logprobs.dtype, logprobs.device
    written = _kernel_dtype(dtype)  # the core writes float32/float64 advantages itself
    picked, out_np = _padded_core(
        response_ids, logprobs, mask, correct_np, segmenter, options, num_threads,
        None if written is None else adv.astype(written),
    )  # fmt: skip
    if out_np is not None:
        out = torch.from_numpy(out_np).to(device)
    else:
        per_rollout = torch.from_numpy(adv).to(device=device, dtype=dtype)[:, None]
        out = torch.from_numpy(picked.keep & mask).to(device=device, dtype=dtype) * per_rollout
    stats = rollout_stats(
        picked.n_units, picked.n_selected, picked.n_zeroed, picked.n_tokens, correct_np,
        picked.nonfinite,
    )  # fmt: skip
    return out, batch_stats(stats)


class BatchStep(NamedTuple):
    """What :func:`sas_batch_step` did to one padded batch.

    advantages: (B, A), the input's dtype and device, the selected steps zeroed.
    keep: (B, A) bool on that device, False exactly on the selected response tokens.
    per_rollout: (B,) float64 per ``sas/...`` statistic (:func:`sas_core.stats.rollout_stats`;
        ``sas/truncated_failed`` when the truncation is known).
    nonfinite_rollouts: rollouts left unselected for NaN/inf log-probs (``nonfinite="keep"``).
    """

    advantages: Any
    keep: Any
    per_rollout: dict[str, np.ndarray]
    nonfinite_rollouts: int

    def stats(self, rows: np.ndarray | None = None) -> dict[str, float]:
        """The batch's ``sas/...`` statistics, over ``rows`` ((B,) bool) or all rollouts."""
        if rows is None:
            return batch_stats(self.per_rollout)
        return batch_stats({name: v[rows] for name, v in self.per_rollout.items()})


def _check_advantages(advantages: Any, shape: tuple[int, ...]) -> None:
    """A real float tensor with data, (B, A) or (B,); per-rollout values finite (they
    are spread over the response tokens, and 0 is written everywhere else)."""
    b = shape[0]
    if not _arrays.is_torch(advantages):
        raise TypeError(f"advantages: must be a torch.Tensor, got {type(advantages).__name__}")
    _arrays.check_device(advantages, "advantages")
    if not advantages.dtype.is_floating_point:
        raise TypeError(f"advantages: must be a real float tensor, got {advantages.dtype}")
    if tuple(advantages.shape) not in (shape, (b,)):
        raise ValueError(
            f"advantages: must be a tensor of shape {shape} or ({b},), got "
            f"{tuple(advantages.shape)}"
        )
    if advantages.dim() == 1 and not bool(advantages.isfinite().all()):
        bad = advantages[~advantages.isfinite()][0].item()
        raise ValueError(f"advantages: per-rollout advantages must be finite, got {bad}")


def sas_batch_step(
    response_ids: torch.Tensor,
    logprobs: torch.Tensor,
    action_mask: torch.Tensor,
    advantages: torch.Tensor,
    scores: Any,
    segmenter: StepSegmenter,
    options: SASOptions,
    *,
    truncated: Any = None,
    window: int | None = None,
    call: int = 0,
    index: int = 0,
    seed: int | None = None,
    num_threads: int | None = None,
) -> BatchStep:
    """SAS on one padded batch of a trainer: the step every integration (TRL, OpenRLHF,
    verl) takes after its own GRPO advantages.

    Args:
        response_ids: (B, A) int token ids; logprobs: (B, A) float log-probs that rank
            the steps; action_mask: (B, A) set on response tokens (any padding side).
        advantages: (B, A) per-token advantages (returned with the selected steps
            zeroed, everything else as given), or (B,) per-rollout advantages (spread
            over the response tokens, 0 off the mask and on the selected steps).
        scores: B raw verifier scores (any shape of B elements); a rollout is correct
            when its score exceeds ``options.correct_threshold`` (NaN: failed).
        options: the run's :class:`~sas_core.options.SASOptions` (ratio, mode, selection,
            granularity, seed, nonfinite, shield, correct_threshold).
        truncated: B bools, the rollouts cut by the length limit; or ``window``: the
            response length limit, a rollout with that many response tokens was cut.
            ``options.shield == "truncated"`` needs one of them: only truncated failed
            rollouts get steps zeroed. With either, ``sas/truncated_failed`` is counted.
        call, index: this advantage computation and this batch within it (integers in
            [0, 2**64)): random selection draws from ``unit_key(options.seed, call,
            index)``, unless ``seed`` gives this batch's seed itself.

    Every argument is read strictly, as the other calls read it: ``truncated`` holds
    bools or 0/1 integers, ``action_mask`` also 0/1 floats; ``scores`` real numbers (NaN: failed);
    ``advantages`` a real float tensor with data (per-rollout advantages finite);
    ``window`` an integer length (a Python, numpy or one-element tensor integer). Each
    bad value is a ``ValueError``/``TypeError`` whose message starts with its name.

    Each input is checked once and copied to the host once (the Rust core reads the
    host arrays in place); the returned advantages are computed on their own device.
    """
    import torch

    if not isinstance(options, SASOptions):
        raise TypeError(f"options: must be a SASOptions, got {type(options).__name__}")
    shape = _check_padded(response_ids, logprobs, action_mask)
    b = shape[0]
    _check_advantages(advantages, shape)
    # the core's u64 seeds and counters
    call = _arrays.count_value(call, "call", bits=64)
    index = _arrays.count_value(index, "index", bits=64)
    if seed is not None:
        seed = seed_value(seed)
    raw = _arrays.scores_array(scores, "scores")
    if raw.shape != (b,):
        raise ValueError(f"scores: expected one verifier score per rollout ({b}), got {raw.size}")
    correct = np.nan_to_num(raw, nan=-np.inf) > options.correct_threshold
    mask = _mask_array(action_mask)
    if truncated is not None and window is not None:
        raise ValueError("truncated, window: give the truncation one way, not both")
    if truncated is not None:
        cut = _one_per_rollout("truncated", _arrays.flags_array(truncated, "truncated"), b)
    elif window is not None:
        cut = mask.sum(axis=1) >= _arrays.length_value(window, "window")
    else:
        cut = None
    if options.shield == "truncated" and cut is None:
        raise ValueError(
            "shield: 'truncated' needs each rollout's truncation (`truncated` flags or the "
            "`window`), which this batch did not bring"
        )
    # This batch's seed, already in range: a copy of the checked options, not re-checked.
    seeded = copy.copy(options)
    object.__setattr__(
        seeded, "seed", unit_key(options.seed, call, index) if seed is None else seed
    )
    # Only truncated failures may get zeros: the others are spared in the core.
    spare = ~correct & ~cut if options.shield == "truncated" else None
    # The core writes float32/float64 advantages in its pass over each row; others
    # (bfloat16, float16) are written here from the keep mask.
    written = _kernel_dtype(advantages.dtype)
    adv_np = None if written is None else advantages.detach().cpu().numpy()
    picked, out_np = _padded_core(
        response_ids, logprobs, mask, correct, segmenter, seeded, num_threads, adv_np, spare
    )
    device = advantages.device
    keep = torch.from_numpy(picked.keep).to(device)
    if out_np is not None:
        out = torch.from_numpy(out_np).to(device)
    elif advantages.dim() == 1:
        on = torch.from_numpy(picked.keep & mask).to(device=device, dtype=advantages.dtype)
        out = on * advantages[:, None]
    else:
        out = torch.where(keep, advantages, torch.zeros_like(advantages))
    per_rollout = rollout_stats(
        picked.n_units, picked.n_selected, picked.n_zeroed, picked.n_tokens, correct,
        picked.nonfinite, cut,
    )  # fmt: skip
    return BatchStep(out, keep, per_rollout, int(picked.nonfinite.sum()))
