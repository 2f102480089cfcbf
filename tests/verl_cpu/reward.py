"""verl ``custom_reward_function`` for the demo task: 1 when the last ``\\boxed{}``
holds the answer, else 0 (a response cut before its answer scores 0)."""

from __future__ import annotations

from sas_core.demo.task import is_correct


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **_kwargs) -> float:
    return 1.0 if is_correct(solution_str, ground_truth) else 0.0


def response_parity(data_source, solution_str, ground_truth, extra_info=None, **_kwargs) -> float:
    """A stand-in verifier with a mix of passes and failures from any policy (the two-turn
    agent's responses, cut by an observation, rarely reach their answer)."""
    return float(len(solution_str) % 2)
