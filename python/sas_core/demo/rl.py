"""Post-training the warmed-up model with TRL: one arm (``sas_core.demo.arms``) per call.

Every arm starts from the same warmed-up model, sees the same prompts in the same order
and has the same budget; the held-out evaluation runs every ``eval_every`` steps.
"""

from __future__ import annotations

import copy
import random
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from sas_core.demo.arms import ARMS, RLConfig
from sas_core.demo.diagnostics import RolloutRecorder
from sas_core.demo.heldout import evaluate
from sas_core.demo.task import Problem, is_correct, sample_problem


def accuracy(completions: list[str], answer: list[int], **_: object) -> list[float]:
    """The verifier: 1 when the last \\boxed{} holds the right sum."""
    return [1.0 if is_correct(c, a) else 0.0 for c, a in zip(completions, answer)]


def ended_accuracy(eos_token_id: int) -> Callable[..., list[float]]:
    """The verifier as the held-out evaluation applies it: 1 only when the completion
    ended (TRL's ``completion_ids`` hold the end-of-sequence token) and its last
    \\boxed{} holds the right sum. A completion cut at the window scores 0 even when it
    wrote the right answer before the cut."""

    def accuracy(
        completions: list[str], answer: list[int], completion_ids: list[list[int]], **_: object
    ) -> list[float]:
        return [
            1.0 if eos_token_id in ids and is_correct(c, a) else 0.0
            for c, a, ids in zip(completions, answer, completion_ids)
        ]

    return accuracy  # TRL logs a reward under its function's __name__: "accuracy"


class _Recording:
    """Mixin: hands each generation batch to the run's ``RolloutRecorder``."""

    demo_recorder: RolloutRecorder
    demo_tokenizer: Any

    def _generate_and_score_completions(self, inputs):
        out = super()._generate_and_score_completions(inputs)
        step = self.state.global_step
        problems = [Problem(tuple(x["operands"])) for x in inputs]
        ids, mask = out["completion_ids"], out["completion_mask"].bool()
        eos = self.demo_tokenizer.eos_token_id
        toks, finished = [], []
        for row, m in zip(ids.tolist(), mask.tolist()):
            body = [t for t, keep in zip(row, m) if keep]
            finished.append(eos in body)
            toks.append(self.demo_tokenizer.convert_ids_to_tokens([t for t in body if t != eos]))
        texts = ["".join(t) for t in toks]
        self.demo_recorder.batch_outcomes(
            step, problems, texts, finished, self.args.num_generations
        )
        adv = out["advantages"]
        if adv.dim() == 2:  # SAS: per-token advantages; zeros on kept rollouts = selected
            rows = [i for i in range(adv.size(0)) if adv[i][mask[i]].abs().max() > 0]
            zeroed = [(adv[i][mask[i]] == 0).numpy()[: len(toks[i])] for i in rows]
            correct = [finished[i] and is_correct(texts[i], problems[i].answer) for i in rows]
            self.demo_recorder.batch_selection(
                step, [problems[i] for i in rows], [toks[i] for i in rows], zeroed, correct
            )
        return out


def post_train(
    arm_name: str,
    base_model,
    tokenizer,
    eval_problems: list[Problem],
    cfg: RLConfig,
    on_step: Callable[[int, dict | None], None] | None = None,
) -> dict:
    """Runs one arm from a copy of ``base_model``.

    Returns ``{"curve": [...], "diagnostics": {...}}``; the curve has one row per
    evaluation (step, pass1_2L, acc_L, length, entropy, train_reward, clip_ratio, ...).
    ``on_step(step, row)`` is called after every optimisation step (row: the evaluation
    just made, or None).
    """
    from datasets import Dataset
    from transformers import PrinterCallback, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from sas_core.integrations.trl import SASGRPOConfig, SASGRPOTrainer

    arm = ARMS[arm_name]
    model = copy.deepcopy(base_model)
    rng = random.Random(cfg.seed + 1)
    generations = -(-cfg.steps // cfg.num_iterations)
    problems = [
        sample_problem(rng, cfg.min_terms, cfg.max_terms)
        for _ in range(generations * cfg.prompts_per_step)
    ]
    dataset = Dataset.from_dict(
        {
            "prompt": [p.prompt for p in problems],
            "answer": [p.answer for p in problems],
            "operands": [list(p.operands) for p in problems],
        }
    )
    common = dict(
        output_dir=tempfile.mkdtemp(prefix=f"sas-demo-{arm_name}-"),
        per_device_train_batch_size=cfg.prompts_per_step * cfg.num_generations,
        num_generations=cfg.num_generations,
        num_iterations=cfg.num_iterations,
        max_completion_length=cfg.limit * arm.window,
        mask_truncated_completions=arm.mask_truncated,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type="constant",
        temperature=cfg.temperature,
        top_k=0,
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
        # TRL 1.16 sets bf16=True whenever fp16 is off (on CPU too): say which, always.
        bf16=cfg.precision == "bf16",
        fp16=False,
    )
    if arm.trainer == "sas":
        args = SASGRPOConfig(**common, correctness_reward="accuracy", **arm.sas)
        base_cls = SASGRPOTrainer
    else:
        args = GRPOConfig(**common)
        base_cls = GRPOTrainer
    trainer_cls = type(f"Demo{base_cls.__name__}", (_Recording, base_cls), {})
    recorder = RolloutRecorder(total_steps=cfg.steps)

    curve: list[dict] = []

    def record(step: int, log_history: list[dict]) -> dict:
        row = {
            "step": step,
            **evaluate(
                model,
                tokenizer,
                eval_problems,
                limit=cfg.limit,
                samples=cfg.eval_samples,
                seed=cfg.seed * 1000 + step,
            ),
        }
        logs = [h for h in log_history if "entropy" in h][-cfg.eval_every :]
        for key, name in (
            ("entropy", "entropy"),
            ("reward", "train_reward"),
            ("clip_ratio/region_mean", "clip_ratio"),
            ("sas/zeroed_token_frac", "sas_frac_tokens_zeroed"),
            ("sas/steps", "sas_steps_per_rollout"),
        ):
            values = [h[key] for h in logs if key in h]
            row[name] = float(np.mean(values)) if values else None
        curve.append(row)
        return row

    class Progress(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            row = None
            if state.global_step % cfg.eval_every == 0 or state.global_step == cfg.steps:
                row = record(state.global_step, state.log_history)
            if on_step:
                on_step(state.global_step, row)

    reward = ended_accuracy(tokenizer.eos_token_id) if cfg.reward_needs_eos else accuracy
    trainer = trainer_cls(
        model=model,
        reward_funcs=[reward],
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[Progress()],
    )
    trainer.demo_recorder = recorder
    trainer.demo_tokenizer = tokenizer
    trainer.remove_callback(PrinterCallback)  # the demo shows its own progress
    record(0, [])
    torch.manual_seed(cfg.seed)
    trainer.train()
    return {
        "curve": curve,
        "diagnostics": recorder.summary(),
        # Read back from the trainer, so the record says what it trained with.
        "trainer_args": {
            "bf16": bool(trainer.args.bf16),
            "fp16": bool(trainer.args.fp16),
            "learning_rate": trainer.args.learning_rate,
            "per_device_train_batch_size": trainer.args.per_device_train_batch_size,
            "num_generations": trainer.args.num_generations,
            "max_completion_length": trainer.args.max_completion_length,
            "mask_truncated_completions": bool(trainer.args.mask_truncated_completions),
            # Which rollouts SAS may zero (None: plain GRPO), as the trainer holds it.
            "sas_mode": trainer.args.mode if arm.trainer == "sas" else None,
            "reward": f"{reward.__module__}.{reward.__qualname__}",
        },
    }
