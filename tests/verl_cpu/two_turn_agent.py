"""A two-turn agent loop for verl's CPU loop, registered through verl's public
``register`` (loaded in every verl process with ``VERL_USE_EXTERNAL_MODULES``): a model
turn, a fixed observation from the environment (``response_mask`` 0, log-prob 0.0, no
blank line at either seam, no tool parser), then a second model turn. Selected with
``actor_rollout_ref.rollout.agent.default_agent_loop=sas_two_turn_agent``.

Test code: the shape of verl's tool agent loop's output (model tokens 1, tool output 0)
without a tool-calling model.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from verl.experimental.agent_loop.agent_loop import AgentLoopBase, AgentLoopOutput, register

NAME = "sas_two_turn_agent"
OBSERVATION = " note 42 "
# The first turn's share of the response window; the observation and turn 2 take the rest.
FIRST_TURN = 24


@register(NAME)
class TwoTurnAgentLoop(AgentLoopBase):
    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        prompt_ids = await self.ct_build_initial_tokens(list(kwargs["raw_prompt"]))
        observation = self.tokenizer.encode(OBSERVATION, add_special_tokens=False)
        limit = self.rollout_config.response_length
        ids: list[int] = []
        mask: list[int] = []
        logprobs: list[float] = []
        outputs = []
        for turn, budget in enumerate((FIRST_TURN, limit - FIRST_TURN - len(observation))):
            if turn:
                ids += observation
                mask += [0] * len(observation)
                logprobs += [0.0] * len(observation)  # a placeholder: the model wrote none
            out = await self.server_manager.generate(
                request_id=uuid4().hex,
                prompt_ids=prompt_ids + ids,
                sampling_params={**sampling_params, "max_tokens": budget},
            )
            outputs.append(out)
            ids += out.token_ids
            mask += [1] * len(out.token_ids)
            logprobs += list(out.log_probs or [0.0] * len(out.token_ids))
        return AgentLoopOutput(
            prompt_ids=prompt_ids,
            response_ids=ids[:limit],
            response_mask=mask[:limit],
            response_logprobs=logprobs[:limit],
            num_turns=4,
            metrics={"num_preempted": -1},
            # the weight versions the session spans (V1 reads them), as one turn reports
            extra_fields={
                **outputs[0].extra_fields,
                "max_global_steps": outputs[-1].extra_fields.get("max_global_steps"),
                "turn_scores": [],
                "tool_rewards": [],
            },
        )
