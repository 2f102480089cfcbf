"""What the toy can measure exactly, since it knows every step's role.

- The share of failed rollouts that are truncated but sound (the mislabelling SAS's
  shield is for), over training.
- Which kinds of step SAS zeroes in correct rollouts and shields in failed ones.
- How well step confidence (mean token log-prob) tells redundant steps (hesitation)
  from necessary ones (careful and shortcut additions): the AUC, the toy's analogue of
  the paper's nDCG 0.90 against a process reward model.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from sas_core.demo.task import Problem, Role, is_correct, step_truths, truncated_but_sound

NECESSARY = (Role.CAREFUL, Role.SHORTCUT)


def token_steps(text_per_token: list[str]) -> list[tuple[int, int]]:
    """``[start, end)`` token spans of the blank-line steps of a completion whose tokens
    decode to ``text_per_token`` (one character each in the demo): a run of two or more
    newlines ends the step it follows, as in the SAS contract."""
    text = "".join(text_per_token)
    spans, start, i = [], 0, 0
    while i < len(text):
        if text[i] == "\n":
            j = i
            while j < len(text) and text[j] == "\n":
                j += 1
            if j - i >= 2:
                spans.append((start, j))
                start = j
            i = j
        else:
            i += 1
    if start < len(text):
        spans.append((start, len(text)))
    return spans


def roles_of(problem: Problem, text_per_token: list[str]) -> list[tuple[int, int, Role]]:
    """Token spans and ground-truth roles of a completion's steps."""
    spans = token_steps(text_per_token)
    steps = ["".join(text_per_token[a:b]).strip() for a, b in spans]
    return [(a, b, t.role) for (a, b), t in zip(spans, step_truths(problem, steps))]


def auc(negatives: list[float], positives: list[float]) -> float:
    """P(a positive scores above a negative), ties counting half (Mann-Whitney U)."""
    if not negatives or not positives:
        return float("nan")
    neg, pos = np.asarray(negatives, float), np.asarray(positives, float)
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (pos.size * neg.size))


def confidence_auc(
    problems: list[Problem], texts_per_token: list[list[str]], logprobs: list[np.ndarray]
) -> dict[str, float]:
    """AUC of step confidence for necessary (positive) vs redundant steps, over all
    complete steps of the given completions, plus the mean confidence per role."""
    by_role: dict[Role, list[float]] = {r: [] for r in Role}
    for problem, toks, lp in zip(problems, texts_per_token, logprobs):
        for a, b, role in roles_of(problem, toks):
            if b > a:
                by_role[role].append(float(np.mean(lp[a:b])))
    necessary = by_role[Role.CAREFUL] + by_role[Role.SHORTCUT]
    out = {"auc": auc(by_role[Role.HESITATION], necessary)}
    for role, values in by_role.items():
        out[f"mean_confidence_{role.value}"] = float(np.mean(values)) if values else float("nan")
        out[f"steps_{role.value}"] = len(values)
    return out


@dataclass
class RolloutRecorder:
    """Accumulates, per training batch, the truncation labels and (for SAS arms) the
    roles of zeroed steps. One per run; ``phase(step)`` splits first and second half."""

    total_steps: int
    failed: Counter = field(default_factory=Counter)
    truncated_sound: Counter = field(default_factory=Counter)
    truncated: Counter = field(default_factory=Counter)
    rollouts: Counter = field(default_factory=Counter)
    # the same, over failed rollouts of mixed groups (some correct): the ones GRPO pushes down
    failed_mixed: Counter = field(default_factory=Counter)
    truncated_sound_mixed: Counter = field(default_factory=Counter)
    # (phase, "correct"|"failed", role) -> zeroed steps; (phase, outcome, role) -> all steps
    zeroed: Counter = field(default_factory=Counter)
    steps: Counter = field(default_factory=Counter)
    # blank-line steps of every rollout, and rollouts where SAS's k = floor(0.3 n) >= 2
    rollout_steps: Counter = field(default_factory=Counter)
    k_two_or_more: Counter = field(default_factory=Counter)

    def phase(self, step: int) -> str:
        return "late" if step >= self.total_steps / 2 else "early"

    def batch_outcomes(
        self,
        step: int,
        problems: list[Problem],
        texts: list[str],
        finished: list[bool],
        group_size: int,
    ) -> None:
        """Labels of one generation batch (groups of ``group_size`` consecutive rows)."""
        ph = self.phase(step)
        ok = [done and is_correct(t, p.answer) for p, t, done in zip(problems, texts, finished)]
        for start in range(0, len(ok), group_size):
            group = range(start, min(start + group_size, len(ok)))
            mixed = any(ok[i] for i in group)
            for i in group:
                self.rollouts[ph] += 1
                n = len(token_steps(list(texts[i])))
                self.rollout_steps[ph] += n
                self.k_two_or_more[ph] += math.floor(0.3 * n + 1e-9) >= 2  # as the core
                if ok[i]:
                    continue
                sound = truncated_but_sound(problems[i], texts[i], finished[i])
                self.failed[ph] += 1
                self.truncated[ph] += not finished[i]
                self.truncated_sound[ph] += sound
                self.failed_mixed[ph] += mixed
                self.truncated_sound_mixed[ph] += mixed and sound

    def batch_selection(
        self,
        step: int,
        problems: list[Problem],
        texts_per_token: list[list[str]],
        zeroed: list[np.ndarray],
        correct: list[bool],
    ) -> None:
        """Roles of the steps SAS zeroed (a step counts as zeroed when any of its tokens
        is) in the rollouts whose advantage was not zero."""
        ph = self.phase(step)
        for problem, toks, z, ok in zip(problems, texts_per_token, zeroed, correct):
            outcome = "correct" if ok else "failed"
            for a, b, role in roles_of(problem, toks):
                self.steps[(ph, outcome, role.value)] += 1
                if z[a:b].any():
                    self.zeroed[(ph, outcome, role.value)] += 1

    def summary(self) -> dict:
        out: dict = {}
        for ph in ("early", "late"):
            failed = self.failed[ph]
            n = self.rollouts[ph]
            out[ph] = {
                "rollouts": n,
                "steps_per_rollout": self.rollout_steps[ph] / n if n else None,
                "k_two_or_more_share": self.k_two_or_more[ph] / n if n else None,
                "failed": failed,
                "truncated_share_of_failed": self.truncated[ph] / failed if failed else None,
                "truncated_sound_share_of_failed": (
                    self.truncated_sound[ph] / failed if failed else None
                ),
                "failed_in_mixed_groups": self.failed_mixed[ph],
                "truncated_sound_share_of_failed_in_mixed_groups": (
                    self.truncated_sound_mixed[ph] / self.failed_mixed[ph]
                    if self.failed_mixed[ph]
                    else None
                ),
            }
            for outcome in ("correct", "failed"):
                zeroed = {r.value: self.zeroed[(ph, outcome, r.value)] for r in Role}
                total = {r.value: self.steps[(ph, outcome, r.value)] for r in Role}
                out[ph][f"zeroed_steps_{outcome}"] = zeroed
                out[ph][f"all_steps_{outcome}"] = total
        return out
