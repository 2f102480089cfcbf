"""verl's ``custom_reward_function`` around :mod:`sas_core.math_reward`:

    reward.custom_reward_function.path=$(python -m sas_core.integrations.verl.reward)
    reward.custom_reward_function.name=compute_score

(verl 0.9's trainers read ``reward.custom_reward_function``; the top-level
``custom_reward_function`` of older releases is accepted by its config but never read,
so the reward falls back to verl's built-in scorers.)

math-verify on the last ``\\boxed{}`` of the response against the label, in the
process's shared killable verifier (bounded time, safe in verl's reward threads).
Running this module prints the path of this file.
"""

from __future__ import annotations

from typing import Any

from sas_core.math_reward import math_verify_score

__all__ = ["compute_score"]


def compute_score(
    data_source: Any, solution_str: str, ground_truth: Any, extra_info: Any = None, **_: Any
) -> float:
    """1.0 when the response's final answer matches ``ground_truth``, else 0.0."""
    return math_verify_score(solution_str, str(ground_truth))


if __name__ == "__main__":
    print(__file__)
