"""The compared arms and the RL setting, stated once (no heavy imports: the CLI reads
them to build its options).

The RL setting: group of 8 rollouts per prompt at T 1, 4 prompts per generation, each
generation used for two optimisation steps (``num_iterations=2``, so the rollout
log-probs differ from the current policy and PPO's clipping at 0.2 can act), no KL
penalty (``beta=0``, TRL's default), constant lr, TRL's default ``dapo`` loss (token
mean over the batch: SAS's zeroed tokens stay in its denominator, so SAS also shrinks
the step; the random-selection arm with the same k separates that).
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


@dataclass
class RLConfig:
    steps: int = 200  # optimisation steps
    limit: int = 96  # the training window L (tokens)
    num_generations: int = 8
    prompts_per_step: int = 4
    num_iterations: int = 2
    learning_rate: float = 1e-4
    temperature: float = 1.0
    eval_every: int = 10
    eval_samples: int = 4
    seed: int = 0
    min_terms: int = MIN_TERMS
    max_terms: int = MAX_TERMS
