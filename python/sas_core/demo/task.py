"""The synthetic task: chained additions of 5-14 labelled terms, solved in blank-line steps.

A problem is ``"A3B4C2D5="``: each term carries a letter, so the next term to add is
found by label (the letter after the last one used), which a two-layer model learns
reliably. A solution adds left to right and ends in ``\\boxed{answer}``. Three kinds of
step exist, so that the demo knows every step's role:

- **careful**: one addition, ``C 7+2=9``. Always right in the warm-up data. One step
  per term makes long chains long: a careful solution fits the RL window L = 96 tokens
  up to about 8 terms, and 2L up to 14. Every solution has at least 5 steps and most
  have 7 or more, so SAS's k = floor(0.3 n) is 2 or more for most rollouts.
- **shortcut**: two additions merged, ``CD 7+2+5=14``. Shorter, but wrong in
  ``SHORTCUT_ERROR`` of the warm-up data (compressed reasoning is less reliable), so a
  policy that compresses to fit the window loses accuracy.
- **hesitation**: ``wait, 15?`` after a step, a random wrong value of the running total.
  Redundant (it changes nothing) and short, with low mean log-prob (its number is a
  guess), as hesitation is in real traces.

The answer step ``\\boxed{14}`` closes a solution. A careful solution of a long chain is
sound reasoning that only a long rollout contains: cut at the window, it is scored as a
failure although every step in it is right (``truncated_but_sound``).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from enum import Enum

BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
CAREFUL = re.compile(r"^([A-Z]) (\d+)\+(\d+)=(\d+)$")
SHORTCUT = re.compile(r"^([A-Z])([A-Z]) (\d+)\+(\d+)\+(\d+)=(\d+)$")
LABELS = "ABCDEFGHIJKLMN"
HESITATION = re.compile(r"^wait, \d+\?$")
ANSWER = re.compile(r"^\\boxed\{(\d+)\}$")

MIN_TERMS, MAX_TERMS = 5, 14
SHORTCUT_ERROR = 0.1  # share of wrong merged steps in the warm-up data


class Role(str, Enum):
    """What a step does; the first two are necessary work, hesitation is redundant."""

    CAREFUL = "careful"
    SHORTCUT = "shortcut"
    HESITATION = "hesitation"
    ANSWER = "answer"
    OTHER = "other"  # malformed or cut off


@dataclass(frozen=True)
class Problem:
    operands: tuple[int, ...]

    @property
    def prompt(self) -> str:
        return "".join(f"{LABELS[i]}{x}" for i, x in enumerate(self.operands)) + "="

    @property
    def answer(self) -> int:
        return sum(self.operands)

    @property
    def terms(self) -> int:
        return len(self.operands)


def sample_problem(
    rng: random.Random, min_terms: int = MIN_TERMS, max_terms: int = MAX_TERMS
) -> Problem:
    n = rng.randint(min_terms, max_terms)
    return Problem(tuple(rng.randint(1, 9) for _ in range(n)))


def stratified_problems(
    rng: random.Random, per_length: int, min_terms: int = MIN_TERMS, max_terms: int = MAX_TERMS
) -> list[Problem]:
    """``per_length`` problems of every chain length (held-out evaluation)."""
    return [
        Problem(tuple(rng.randint(1, 9) for _ in range(n)))
        for n in range(min_terms, max_terms + 1)
        for _ in range(per_length)
    ]


def solution(
    problem: Problem,
    rng: random.Random,
    *,
    shortcut: float = 0.3,
    hesitation: float = 0.3,
    shortcut_error: float = SHORTCUT_ERROR,
) -> str:
    """A worked solution: each move merges two terms with probability ``shortcut``
    (wrong with probability ``shortcut_error``), and is followed by a hesitation with
    probability ``hesitation``."""
    ops = problem.operands
    steps = []
    total, i = ops[0], 1
    while i < len(ops):
        if i + 1 < len(ops) and rng.random() < shortcut:
            x, y = ops[i], ops[i + 1]
            result = total + x + y
            if rng.random() < shortcut_error:
                result += rng.choice([-2, -1, 1, 2])
            steps.append(f"{LABELS[i]}{LABELS[i + 1]} {total}+{x}+{y}={result}")
            total, i = result, i + 2
        else:
            steps.append(f"{LABELS[i]} {total}+{ops[i]}={total + ops[i]}")
            total, i = total + ops[i], i + 1
        if rng.random() < hesitation:
            steps.append(f"wait, {max(total + rng.choice([-3, -2, -1, 1, 2, 3]), 0)}?")
    steps.append(f"\\boxed{{{total}}}")
    return "\n\n".join(steps)


def boxed_answer(text: str) -> str | None:
    """The content of the last ``\\boxed{}``, or None."""
    found = BOXED.findall(text)
    return found[-1].strip() if found else None


def is_correct(completion: str, answer: int | str) -> bool:
    return boxed_answer(completion) == str(answer)


@dataclass(frozen=True)
class StepTruth:
    """A step's ground truth: its role and whether it is right so far."""

    role: Role
    sound: bool  # careful/shortcut: consistent with the problem and arithmetically right


def step_truths(problem: Problem, steps: list[str]) -> list[StepTruth]:
    """Roles of a completion's steps (its text split at blank lines, stripped).

    A careful or shortcut step is sound when its left side is the true running total
    and the next operand(s) of the problem, and its result is their sum; the running
    total then advances. Anything after an unsound step is not sound.
    """
    ops = problem.operands
    total, i, ok = ops[0], 1, True
    out = []
    for text in steps:
        if m := CAREFUL.match(text):
            label, (a, x, s) = m[1], map(int, m.groups()[1:])
            ok = ok and i < len(ops) and label == LABELS[i]
            ok = ok and (a, x, s) == (total, ops[i], total + ops[i])
            out.append(StepTruth(Role.CAREFUL, ok))
            if ok:
                total, i = s, i + 1
        elif m := SHORTCUT.match(text):
            labels, (a, x, y, s) = m[1] + m[2], map(int, m.groups()[2:])
            ok = ok and i + 1 < len(ops) and labels == LABELS[i : i + 2]
            ok = ok and (a, x, y) == (total, ops[i], ops[i + 1])
            ok = ok and s == a + x + y
            out.append(StepTruth(Role.SHORTCUT, ok))
            if ok:
                total, i = s, i + 2
        elif HESITATION.match(text):
            out.append(StepTruth(Role.HESITATION, ok))
        elif m := ANSWER.match(text):
            out.append(StepTruth(Role.ANSWER, ok and i == len(ops) and int(m[1]) == total))
        else:
            ok = False
            out.append(StepTruth(Role.OTHER, False))
    return out


def truncated_but_sound(problem: Problem, completion: str, finished: bool) -> bool:
    """A rollout cut off by the window whose complete steps are all sound: a failure to
    the verifier, sound reasoning in truth. The last, partial step is not judged."""
    if finished or boxed_answer(completion) is not None:
        return False
    steps = [s.strip() for s in completion.split("\n\n")]
    complete = steps[:-1]
    return bool(complete) and all(t.sound for t in step_truths(problem, complete))
