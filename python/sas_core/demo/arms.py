"""The compared arms and the RL setting, stated once (no heavy imports: the CLI reads
them to build its options).

The RL setting (design 3): group of 8 rollouts per prompt at T 1, 8 prompts per
generation, each generation used for two optimisation steps (``num_iterations=2``, so
the rollout log-probs differ from the current policy and PPO's clipping at 0.2 can
act), no KL penalty (``beta=0``, TRL's default), constant lr 3e-5, TRL's default
``dapo`` loss (token mean over the batch: SAS's zeroed tokens stay in its denominator,
so SAS also shrinks the step; the random-selection arm with the same k separates that),
fp32 throughout (TRL 1.16 turns bf16 on whenever fp16 is off, on CPU too, unless told
otherwise), and a reward that, like the held-out evaluation, counts an answer only in a
completion that ended (end-of-sequence token generated).

Design 2 trained at lr 1e-4 with 4 prompts per generation: at that rate Adam moves every
weight by about lr per step whatever the signal, and random rewards wrecked the policy
within 10 steps; every arm, GRPO at 2L included, lost Pass@1 (README, design 3).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sas_core.demo.task import MAX_TERMS, MIN_TERMS


@dataclass(frozen=True)
class Arm:
    """One compared run: the trainer, its SAS options and its window."""

    trainer: str  # "grpo" or "sas"
    sas: dict = field(default_factory=dict)
    window: int = 1  # completion limit, in multiples of the training window L
    mask_truncated: bool = False  # TRL's mask_truncated_completions
    about: str = ""


ARMS: dict[str, Arm] = {
    "grpo": Arm("grpo", about="GRPO at L"),
    "sas": Arm("sas", about="SAS at L (r 0.3, both modes: the paper's method)"),
    "sas-correct": Arm("sas", {"mode": "correct"}, about="SAS, only-correct rollouts"),
    "sas-failed": Arm("sas", {"mode": "failed"}, about="SAS, only-failed rollouts"),
    "sas-random": Arm("sas", {"selection": "random"}, about="random steps, same k"),
    "sas-token": Arm("sas", {"granularity": "token"}, about="SAS on tokens, not steps"),
    "grpo-masktrunc": Arm(
        "grpo", mask_truncated=True, about="GRPO, truncated rollouts out of the loss (TRL)"
    ),
    "grpo-2L": Arm("grpo", window=2, about="GRPO trained at 2L: no truncation"),
}
DEFAULT_ARMS = ("grpo", "sas")
# `sas-core demo` with no run options: GRPO and SAS on seed 0 in design 3's regime, for
# this many steps, so that the warm-up and both arms fit in 10 minutes on 2 cores.
DEFAULT_DEMO_STEPS = 100
# The pilot that fixes the RL regime runs only these (never SAS), on its own seeds.
PILOT_ARMS = {"grpo", "grpo-2L"}
PILOT_SEEDS = (100, 101)
# The multi-seed run's horizon if the pilot's gates also hold on its curves cut here
# (README, design 3: a 300-step multi-seed run would not fit in about 2.5 hours).
PILOT_SHORT_HORIZON = 200


@dataclass
class RLConfig:
    steps: int = 300  # optimisation steps
    limit: int = 96  # the training window L (tokens)
    num_generations: int = 8
    prompts_per_step: int = 8
    num_iterations: int = 2
    learning_rate: float = 3e-5
    temperature: float = 1.0
    eval_every: int = 20
    eval_samples: int = 4
    precision: str = "fp32"  # "fp32" or "bf16" (TRL's bf16 autocast, design 1-2's setting)
    reward_needs_eos: bool = True  # the training reward counts only ended completions
    seed: int = 0
    min_terms: int = MIN_TERMS
    max_terms: int = MAX_TERMS
