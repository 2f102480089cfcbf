"""How many correct long traces become verifier failures when cut to the RL limit."""

from __future__ import annotations

import torch

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
    long_texts = tokenizer.batch_decode(completions, skip_special_tokens=True)
    short_texts = tokenizer.batch_decode(completions[:, :short_budget], skip_special_tokens=True)
    correct_long = [is_correct(t, a) for t, a in zip(long_texts, answers)]
    lost = [c and not is_correct(s, a) for c, s, a in zip(correct_long, short_texts, answers)]
    lengths = (completions != tokenizer.pad_token_id).sum(dim=1).float()
    n_correct = sum(correct_long)
    return {
        "traces": len(prompts),
        "accuracy_long": n_correct / len(prompts),
        "accuracy_short": sum(is_correct(s, a) for s, a in zip(short_texts, answers))
        / len(prompts),
        "mean_length_long": lengths.mean().item(),
        "correct_long_failing_when_cut": sum(lost) / max(n_correct, 1),
    }
