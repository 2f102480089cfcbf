"""How many correct long traces become verifier failures when cut to the RL limit."""

from __future__ import annotations

import torch

from sas_core.audit import Rollout, audit_truncation
from sas_core.demo.task import Problem, is_correct


@torch.no_grad()
def truncation_audit(
    model,
    tokenizer,
    problems: list[Problem],
    *,
    long_budget: int,
    short_budget: int,
    samples: int = 4,
    seed: int = 0,
) -> dict[str, float]:
    """Samples ``samples`` traces per problem with a long budget, keeps the correct ones
    and re-verifies them cut to ``short_budget`` tokens (the paper: about 29% of correct
    8K traces fail once cut to 4K)."""
    torch.manual_seed(seed)
    model.eval()
    prompts = [p.prompt for p in problems for _ in range(samples)]
    answers = [p.answer for p in problems for _ in range(samples)]
    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    out = model.generate(
        **enc,
        max_new_tokens=long_budget,
        do_sample=True,
        temperature=1.0,
        top_k=0,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    completions = out[:, enc["input_ids"].shape[1] :]
    pad = tokenizer.pad_token_id
    rollouts = [
        Rollout(prompt, "", str(answer), tuple(t for t in row.tolist() if t != pad))
        for prompt, answer, row in zip(prompts, answers, completions)
    ]
    report = audit_truncation(
        rollouts,
        [short_budget],
        encode=lambda text: tokenizer(text, add_special_tokens=False)["input_ids"],
        decode=lambda ids: tokenizer.decode(list(ids), skip_special_tokens=True),
        score=lambda text, label: float(is_correct(text, label)),
    )
    return {
        "traces": report["responses"],
        "accuracy_long": report["correct_at_full_length"] / report["responses"],
        "mean_length_long": report["mean_tokens"],
        "correct_long_failing_when_cut": report["budgets"][str(short_budget)]["share_of_correct"],
    }
