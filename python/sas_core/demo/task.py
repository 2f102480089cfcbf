"""The synthetic task: chained additions solved in blank-line-separated steps.

A problem is ``"3+4+2="``; a worked solution adds left to right, one step per partial
sum, and ends in ``\\boxed{answer}``::

    3+4=7

    7+2=9

    \\boxed{9}

Verbose solutions add self-doubt after some steps ("wait, is 3+4=8? no, 3+4=7"): a
step that questions the last result with a random wrong value and then confirms it. It
lengthens the reasoning without changing the answer, so many correct verbose traces do
not fit the RL completion limit; and its random number makes it a low-confidence step,
as hesitation is in real reasoning traces.
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


def solution(problem: Problem, rng: random.Random, doubt: float) -> str:
    """A worked solution; each step is followed by self-doubt with probability ``doubt``."""
    steps = []
    total = problem.operands[0]
    for x in problem.operands[1:]:
        step = f"{total}+{x}={total + x}"
        steps.append(step)
        if rng.random() < doubt:
            wrong = total + x + rng.choice([-2, -1, 1, 2])
            steps.append(f"wait, is {total}+{x}={wrong}? no, {step}")
        total += x
    steps.append(f"\\boxed{{{total}}}")
    return "\n\n".join(steps)


def boxed_answer(text: str) -> str | None:
    """The content of the last ``\\boxed{}``, or None."""
    found = BOXED.findall(text)
    return found[-1].strip() if found else None


def is_correct(completion: str, answer: int | str) -> bool:
    return boxed_answer(completion) == str(answer)
