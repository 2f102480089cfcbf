"""OpenRLHF ``--reward.remote_url`` function for the demo task (loaded by OpenRLHF in
its rollout actors). ``scores``: 1 when the last ``\\boxed{}`` of the response holds the
answer, else 0 (a response cut before its answer scores 0); ``rewards``: the score plus
a 0.1 format bonus for a closed ``\\boxed{}``, so that GRPO normalises the rewards while
SAS reads correctness from the scores."""

from __future__ import annotations

import torch

from sas_core.demo.task import boxed_answer, is_correct


def reward_func(queries: list[str], prompts: list[str], labels: list[str], **_kwargs) -> dict:
    scores, rewards = [], []
    for query, prompt, label in zip(queries, prompts, labels, strict=True):
        response = query[len(prompt) :] if query.startswith(prompt) else query
        score = 1.0 if is_correct(response, str(label)) else 0.0
        scores.append(score)
        rewards.append(score + (0.1 if boxed_answer(response) is not None else 0.0))
    return {"rewards": torch.tensor(rewards), "scores": torch.tensor(scores), "extra_logs": {}}
