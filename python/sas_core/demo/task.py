"""The synthetic task: chained additions solved in blank-line-separated steps.

A problem is ``"3+4+2="``; a worked solution adds left to right, one step per partial
sum, and ends in ``\\boxed{answer}``::

    3+4=7

    7+2=9

    \\boxed{9}

Verbose solutions re-check steps ("check 3+4=7"): the self-doubt that lengthens
reasoning without changing the answer, which makes many correct traces longer than the
RL completion limit.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

BOXED = re.compile(r"\\boxed\{([^{}]*)\}")


@dataclass(frozen=True)
class Problem:
    operands: tuple[int, ...]

    @property
    def prompt(self) -> str:
        return "+".join(map(str, self.operands)) + "="

    @property
    def answer(self) -> int:
        return sum(self.operands)


def sample_problem(rng: random.Random, min_terms: int = 3, max_terms: int = 4) -> Problem:
    n = rng.randint(min_terms, max_terms)
    return Problem(tuple(rng.randint(1, 9) for _ in range(n)))


def solution(problem: Problem, rng: random.Random, recheck: float) -> str:
    """A worked solution; each step is followed by a re-check with probability ``recheck``."""
    steps = []
    total = problem.operands[0]
    for x in problem.operands[1:]:
        step = f"{total}+{x}={total + x}"
        steps.append(step)
        if rng.random() < recheck:
            steps.append(f"check {step}")
        total += x
    steps.append(f"\\boxed{{{total}}}")
    return "\n\n".join(steps)


def boxed_answer(text: str) -> str | None:
    """The content of the last ``\\boxed{}``, or None."""
    found = BOXED.findall(text)
    return found[-1].strip() if found else None


def is_correct(completion: str, answer: int | str) -> bool:
    return boxed_answer(completion) == str(answer)
