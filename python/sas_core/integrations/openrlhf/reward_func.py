"""Math-answer reward for OpenRLHF's remote reward option, scored with math-verify.

Pass this file's path to OpenRLHF (0.11: ``--reward.remote_url``, before:
``--remote_rm_url``) together with ``--data.label_key`` naming the answer column:

    --reward.remote_url "$(python -m sas_core.integrations.openrlhf.reward_func)"

(run as a module, this file prints its own path).

OpenRLHF loads it inside its vLLM engine actors and calls ``reward_func`` from worker
threads. A response scores 1 when the content of its last ``\\boxed{}`` equals the label
under math-verify, else 0; a response without a closed ``\\boxed{}`` (e.g. cut off by
the context window) scores 0. Each comparison runs in a killable worker process with a
hard timeout (``SAS_REWARD_TIMEOUT`` seconds, default 5; ``SAS_REWARD_WORKERS``
processes, default 4), so adversarial LaTeX can neither hang nor crash the trainer, in
any thread (math-verify's own timeout uses signals, main thread only).
"""

from __future__ import annotations

import os
from typing import Any

import torch

from sas_core.math_reward import MathVerifier, last_boxed, shared_verifier

__all__ = ["reward_func", "split_response"]


def _verifier() -> tuple[MathVerifier, float]:
    """The process's shared verifier and this call's timeout. The timeout is passed on
    every call: the shared verifier keeps the timeout it was created with, so a later
    ``SAS_REWARD_TIMEOUT`` would otherwise be ignored (a 2 s setting ran at 30 s)."""
    timeout = float(os.environ.get("SAS_REWARD_TIMEOUT", "5"))
    return shared_verifier(
        timeout=timeout, workers=int(os.environ.get("SAS_REWARD_WORKERS", "4"))
    ), timeout


def split_response(query: str, prompt: str) -> str:
    """The response part of OpenRLHF's ``query`` (decoded prompt + response).

    The prompt is cut off so that a ``\\boxed{}`` in the instruction ("put the final
    answer within \\boxed{}") is never taken for the answer.
    """
    if prompt:
        at = query.rfind(prompt)
        if at >= 0:
            return query[at + len(prompt) :]
    return query


def reward_func(queries: list[str], prompts: list[str], labels: list[Any], **_: Any) -> dict:
    """OpenRLHF's reward-function interface.

    Returns ``rewards`` and ``scores`` (float32 tensors of shape (len(queries),), 1.0 for a
    verified answer) and ``extra_logs`` with ``boxed`` (whether the response has a closed
    ``\\boxed{}``).
    """
    verifier, timeout = _verifier()
    scores, boxed = [], []
    for query, prompt, label in zip(queries, prompts, labels, strict=True):
        response = split_response(str(query), str(prompt or ""))
        boxed.append(float(last_boxed(response) is not None))
        scores.append(
            0.0 if label is None else verifier.score(response, str(label), timeout=timeout)
        )
    values = torch.tensor(scores, dtype=torch.float32)
    return {
        "rewards": values,
        "scores": values.clone(),
        "extra_logs": {"boxed": torch.tensor(boxed, dtype=torch.float32)},
    }


if __name__ == "__main__":
    print(os.path.abspath(__file__))
