"""Post-training the warmed-up model with TRL: plain GRPO, or SAS (``SASGRPOTrainer``)."""

from __future__ import annotations

import copy
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from sas_core.demo.task import Problem, is_correct, sample_problem


def accuracy(completions: list[str], answer: list[int], **_: object) -> list[float]:
    """The verifier: 1 when the last \\boxed{} holds the right sum."""
    return [1.0 if is_correct(c, a) else 0.0 for c, a in zip(completions, answer)]


@torch.no_grad()
def evaluate(model, tokenizer, problems: list[Problem], max_new_tokens: int) -> dict[str, float]:
    """Greedy accuracy and mean completion length (tokens) under the completion limit."""
    was_training = model.training
    model.eval()
    enc = tokenizer(
        [p.prompt for p in problems], return_tensors="pt", padding=True, add_special_tokens=False
    )
    out = model.generate(
        **enc,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    completions = out[:, enc["input_ids"].shape[1] :]
    lengths = (completions != tokenizer.pad_token_id).sum(dim=1).float()
    texts = tokenizer.batch_decode(completions, skip_special_tokens=True)
    correct = [is_correct(t, p.answer) for t, p in zip(texts, problems)]
    model.train(was_training)
    return {"accuracy": sum(correct) / len(problems), "length": lengths.mean().item()}


@dataclass
class RLConfig:
    steps: int = 120
    max_completion_length: int = 56
    num_generations: int = 8
    prompts_per_step: int = 4
    learning_rate: float = 1e-4
    temperature: float = 1.0
    eval_every: int = 10
    seed: int = 0
    min_terms: int = 3
    max_terms: int = 4
    sas: dict = field(default_factory=dict)


def post_train(
    method: str,
    base_model,
    tokenizer,
    eval_problems: list[Problem],
    cfg: RLConfig,
    on_step: Callable[[int], None] | None = None,
    sas_options: dict | None = None,
) -> list[dict[str, float]]:
    """Runs GRPO (``method='grpo'``) or SAS (``'sas'``, options ``cfg.sas`` plus
    ``sas_options``) from a copy of ``base_model``.

    Returns the curve: one row per evaluation (step, accuracy, length, entropy).
    """
    from datasets import Dataset
    from transformers import PrinterCallback, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from sas_core.integrations.trl import SASGRPOConfig, SASGRPOTrainer

    model = copy.deepcopy(base_model)
    rng = random.Random(cfg.seed + 1)
    n_prompts = cfg.steps * cfg.prompts_per_step
    problems = [sample_problem(rng, cfg.min_terms, cfg.max_terms) for _ in range(n_prompts)]
    dataset = Dataset.from_dict(
        {"prompt": [p.prompt for p in problems], "answer": [p.answer for p in problems]}
    )
    common = dict(
        output_dir=tempfile.mkdtemp(prefix=f"sas-demo-{method}-"),
        per_device_train_batch_size=cfg.prompts_per_step * cfg.num_generations,
        num_generations=cfg.num_generations,
        max_completion_length=cfg.max_completion_length,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type="constant",
        temperature=cfg.temperature,
        beta=0.0,
        max_steps=cfg.steps,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=cfg.seed,
        data_seed=cfg.seed,
        disable_tqdm=True,
        log_level="error",
        shuffle_dataset=False,
    )
    if method == "sas":
        options = {**cfg.sas, **(sas_options or {})}
        args = SASGRPOConfig(**common, correctness_reward="accuracy", **options)
        trainer_cls = SASGRPOTrainer
    elif method == "grpo":
        args = GRPOConfig(**common)
        trainer_cls = GRPOTrainer
    else:
        raise ValueError(f"method: must be 'grpo' or 'sas', got {method!r}")

    curve: list[dict[str, float]] = []

    def record(step: int, trainer_state) -> None:
        row = {"step": step, **evaluate(model, tokenizer, eval_problems, cfg.max_completion_length)}
        logs = [h for h in trainer_state.log_history if "entropy" in h]
        row["entropy"] = logs[-1]["entropy"] if logs else float("nan")
        row["train_reward"] = logs[-1].get("reward", float("nan")) if logs else float("nan")
        curve.append(row)

    class Progress(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step % cfg.eval_every == 0 or state.global_step == cfg.steps:
                record(state.global_step, state)
            if on_step:
                on_step(state.global_step)

    trainer = trainer_cls(
        model=model,
        reward_funcs=[accuracy],
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[Progress()],
    )
    trainer.remove_callback(PrinterCallback)  # the demo shows its own progress
    curve.append(
        {
            "step": 0,
            **evaluate(model, tokenizer, eval_problems, cfg.max_completion_length),
            "entropy": float("nan"),
            "train_reward": float("nan"),
        }
    )
    trainer.train()
    return curve
