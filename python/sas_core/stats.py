"""SAS's statistics, one set of names for every integration.

Per rollout first (:func:`rollout_stats`: what OpenRLHF stores per sample and averages
when it logs), then per batch (:func:`batch_stats`: what TRL and verl log), so that a
name means the same number in every framework's logs:

- ``sas/zeroed_token_frac``: share of a rollout's response tokens whose advantage SAS
  zeroed (mean over rollouts).
- ``sas/steps``: steps per rollout (in-step tokens at token granularity).
- ``sas/zeroed_steps``: zeroed steps per rollout.
- ``sas/zeroed_steps_correct`` / ``sas/zeroed_steps_failed``: zeroed steps of a rollout
  if it is correct / failed, else 0; divide by ``sas/correct`` (resp. its complement)
  for the mean per correct (failed) rollout.
- ``sas/correct``: share of rollouts verified correct.
- ``sas/truncated_failed``: share of rollouts cut at the length limit and failed (only
  where the framework records truncation).
- ``sas/nonfinite_rollouts``: rollouts whose log-probs held NaN/inf and which kept
  their whole advantage (``nonfinite="keep"``); a count per batch (OpenRLHF, which
  averages per-sample values, logs it as the share of rollouts).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

__all__ = ["NAMES", "batch_stats", "rollout_stats", "warn_nonfinite_once"]

NAMES = (
    "sas/zeroed_token_frac",
    "sas/steps",
    "sas/zeroed_steps",
    "sas/zeroed_steps_correct",
    "sas/zeroed_steps_failed",
    "sas/correct",
    "sas/truncated_failed",
    "sas/nonfinite_rollouts",
)


def rollout_stats(
    n_units: np.ndarray,
    n_selected: np.ndarray,
    n_zeroed: np.ndarray,
    n_tokens: np.ndarray,
    correct: np.ndarray,
    nonfinite: np.ndarray | None = None,
    truncated: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """(B,) float64 per rollout under each name (``sas/truncated_failed`` only when
    ``truncated`` is given). ``n_tokens`` counts each rollout's response tokens."""
    c = np.asarray(correct, dtype=bool)
    sel = np.asarray(n_selected, dtype=np.float64)
    tokens = np.maximum(np.asarray(n_tokens, dtype=np.float64), 1.0)
    out = {
        "sas/zeroed_token_frac": np.asarray(n_zeroed, dtype=np.float64) / tokens,
        "sas/steps": np.asarray(n_units, dtype=np.float64),
        "sas/zeroed_steps": sel,
        "sas/zeroed_steps_correct": np.where(c, sel, 0.0),
        "sas/zeroed_steps_failed": np.where(c, 0.0, sel),
        "sas/correct": c.astype(np.float64),
        "sas/nonfinite_rollouts": (
            np.zeros(c.shape) if nonfinite is None else np.asarray(nonfinite, dtype=np.float64)
        ),
    }
    if truncated is not None:
        out["sas/truncated_failed"] = (np.asarray(truncated, dtype=bool) & ~c).astype(np.float64)
    return out


def batch_stats(per_rollout: dict[str, np.ndarray]) -> dict[str, float]:
    """The batch's value of each statistic: the mean over rollouts, except
    ``sas/nonfinite_rollouts``, a count."""
    # sum / size, not ndarray.mean: this runs once per statistic on every training batch,
    # and mean's dispatch costs more than the sum of a few thousand values.
    values = {
        name: (
            float(np.add.reduce(v)) / (1 if name == "sas/nonfinite_rollouts" else v.size)
            if v.size
            else 0.0
        )
        for name, v in per_rollout.items()
    }
    return values


def warn_nonfinite_once(run: Any, count: int) -> None:
    """One ``RuntimeWarning`` per training run (``run`` carries the flag) the first time
    rollouts had NaN/inf log-probs and kept their advantage (``nonfinite="keep"``)."""
    if count and not getattr(run, "_sas_warned_nonfinite", False):
        run._sas_warned_nonfinite = True
        warnings.warn(
            f"SAS: {count} rollout(s) had NaN/inf log-probs; they keep their GRPO advantage "
            "(counted in sas/nonfinite_rollouts; warned once)",
            RuntimeWarning,
            stacklevel=3,
        )
