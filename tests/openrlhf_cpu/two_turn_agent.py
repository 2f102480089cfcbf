"""A two-turn agent for OpenRLHF's agent mode (``--train.agent_func_path``), loaded by
OpenRLHF's rollout actor: a model turn, a fixed observation from the environment, then
a second model turn. OpenRLHF's own ``MultiTurnAgentExecutor`` runs it: the model's
turns become ``action_ranges`` (so ``action_mask`` has a hole at the observation), and
with ``--algo.advantage.is_correction_level`` set the observation's tokens get a rollout
log-prob placeholder of 0.0.

Test code: the shape of a tool-using rollout without a tool-calling model. The
observation has no blank line at either seam, so only the mask's hole separates the
turns. The score is a stand-in verifier (the responses' length parity), as in the verl
loop's two-turn agent: cut by the observation, the demo policy's answers rarely land,
and a group of failures only would give GRPO nothing to normalise.
"""

from __future__ import annotations

import torch
from openrlhf.utils.agent import AgentInstanceBase, MultiTurnAgentExecutor

OBSERVATION = " note 42 "
# The first turn's token budget; OpenRLHF gives each turn what is left of max_len.
FIRST_TURN = 24


class TwoTurnAgent(AgentInstanceBase):
    def __init__(self, *args, **kwargs) -> None:
        self.actions: list[str] = []

    async def step(self, state_dict: dict, **kwargs) -> dict:
        self.actions.append(state_dict["action_text"])
        done = len(self.actions) == 2
        score = float(len("".join(self.actions)) % 2) if done else 0.0
        return {
            "rewards": torch.tensor(score),
            "scores": torch.tensor(score),
            "environment_feedback": "" if done else OBSERVATION,
            "done": done,
        }


class _FirstTurnBudget:
    """The rollout actor, with the first ``generate`` capped at ``FIRST_TURN`` tokens
    (``MultiTurnAgentExecutor`` sets each turn's ``max_tokens`` itself, to the rest of
    the window, which the first turn would use up)."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.turns = 0

    async def generate(self, prompt_token_ids, sampling_params, multi_modal_data=None):
        if self.turns == 0:
            sampling_params.max_tokens = min(sampling_params.max_tokens, FIRST_TURN)
        self.turns += 1
        return await self.engine.generate(
            prompt_token_ids, sampling_params, multi_modal_data=multi_modal_data
        )


class AgentExecutor(MultiTurnAgentExecutor):
    def __init__(self) -> None:
        super().__init__(TwoTurnAgent)

    async def execute(self, prompt, label, sampling_params, max_length, hf_tokenizer,
                      llm_engine, images=None):  # fmt: skip
        return await super().execute(
            prompt, label, sampling_params, max_length, hf_tokenizer,
            _FirstTurnBudget(llm_engine), images=images,
        )  # fmt: skip
