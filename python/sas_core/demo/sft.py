"""Supervised warm-up on worked solutions of mixed style (plain torch)."""

from __future__ import annotations

import random
from collections.abc import Callable

import torch

from sas_core.demo.task import MAX_TERMS, MIN_TERMS, sample_problem, solution


def sft_batch(tokenizer, rng: random.Random, size: int, terms: tuple[int, int], **style: float):
    """Prompt + solution + eos, with the loss on the solution tokens only."""
    rows, masks = [], []
    for _ in range(size):
        p = sample_problem(rng, *terms)
        prompt = tokenizer(p.prompt, add_special_tokens=False)["input_ids"]
        sol = tokenizer(solution(p, rng, **style), add_special_tokens=False)["input_ids"]
        rows.append(prompt + sol + [tokenizer.eos_token_id])
        masks.append([0] * len(prompt) + [1] * (len(sol) + 1))
    width = max(map(len, rows))
    ids = torch.full((size, width), tokenizer.pad_token_id)
    loss_mask = torch.zeros((size, width))
    attn = torch.zeros((size, width), dtype=torch.long)
    for i, (r, m) in enumerate(zip(rows, masks)):
        ids[i, : len(r)] = torch.tensor(r)
        loss_mask[i, : len(m)] = torch.tensor(m, dtype=torch.float)
        attn[i, : len(r)] = 1
    return ids, attn, loss_mask


def supervised_warmup(
    model,
    tokenizer,
    *,
    steps: int,
    batch_size: int = 64,
    lr: float = 3e-3,
    terms: tuple[int, int] = (MIN_TERMS, MAX_TERMS),
    style: dict[str, float] | None = None,
    seed: int = 0,
    on_step: Callable[[int, float], None] | None = None,
) -> float:
    """Trains ``model`` in place; returns the last loss."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1))
    model.train()
    loss_value = float("nan")
    for step in range(steps):
        ids, attn, loss_mask = sft_batch(tokenizer, rng, batch_size, terms, **(style or {}))
        logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1]
        target = ids[:, 1:]
        nll = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), target.reshape(-1), reduction="none"
        ).view_as(target)
        m = loss_mask[:, 1:]
        loss = (nll * m).sum() / m.sum()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        loss_value = loss.item()
        if on_step:
            on_step(step, loss_value)
    model.eval()
    return loss_value
