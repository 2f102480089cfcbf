"""Held-out evaluation as the paper's: sampled Pass@1 past the training window.

The paper samples 16 answers per problem at T 0.6, top-p 0.95, with an 8K budget, twice
its 4K training window. Here: ``samples`` answers per problem at T 0.6, top-p 0.95, with
``2 * limit`` tokens, on problems stratified by chain length. One generation gives both
figures: a sample that is correct and ends within ``limit`` tokens is also correct under
the training window (sampling is causal, so cutting the long sample is generating short).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import torch

from sas_core.demo.diagnostics import confidence_auc
from sas_core.demo.task import Problem, is_correct


@dataclass(frozen=True)
class Sample:
    problem: Problem
    ids: tuple[int, ...]  # completion tokens, eos included when generated
    finished: bool
    text: str
    tokens: tuple[str, ...]  # the text of each token (one character each here)

    @property
    def correct(self) -> bool:
        return self.finished and is_correct(self.text, self.problem.answer)


@torch.no_grad()
def sample(
    model,
    tokenizer,
    problems: list[Problem],
    *,
    samples: int,
    max_new_tokens: int,
    temperature: float,
    top_p: float = 1.0,
    seed: int = 0,
) -> list[Sample]:
    """``samples`` completions of each problem (problem-major order)."""
    was_training = model.training
    model.eval()
    torch.manual_seed(seed)
    prompts = [p.prompt for p in problems for _ in range(samples)]
    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    out = model.generate(
        **enc,
        max_new_tokens=max_new_tokens,
        do_sample=True,
        temperature=temperature,
        top_p=top_p,
        top_k=0,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model.train(was_training)
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    result = []
    for i, row in enumerate(out[:, enc["input_ids"].shape[1] :].tolist()):
        ids = []
        for t in row:
            if t == pad:
                break
            ids.append(t)
            if t == eos:
                break
        body = [t for t in ids if t != eos]
        tokens = tuple(tokenizer.convert_ids_to_tokens(body))
        result.append(
            Sample(problems[i // samples], tuple(ids), eos in ids, "".join(tokens), tokens)
        )
    return result


@torch.no_grad()
def completion_logprobs(model, tokenizer, batch: list[Sample]) -> list[np.ndarray]:
    """Per-token log-probs of each completion's text tokens under ``model`` at T 1 (the
    rollout policy's confidence, as SAS reads it)."""
    was_training = model.training
    model.eval()
    rows, starts = [], []
    for s in batch:
        prompt = tokenizer(s.problem.prompt, add_special_tokens=False)["input_ids"]
        body = [t for t in s.ids if t != tokenizer.eos_token_id]
        rows.append(prompt + body)
        starts.append(len(prompt))
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), tokenizer.pad_token_id)
    attn = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        attn[i, : len(r)] = 1
    logp = torch.log_softmax(model(input_ids=ids, attention_mask=attn).logits[:, :-1].float(), -1)
    taken = logp.gather(-1, ids[:, 1:, None])[..., 0]
    model.train(was_training)
    return [taken[i, starts[i] - 1 : len(r) - 1].numpy() for i, r in enumerate(rows)]


def _confidence(model, tokenizer, batch: list[Sample]) -> dict:
    """Step-confidence AUC (and means per role) of ``batch`` under ``model``."""
    return confidence_auc(
        [s.problem for s in batch],
        [list(s.tokens) for s in batch],
        completion_logprobs(model, tokenizer, batch),
    )


def evaluate(
    model,
    tokenizer,
    problems: list[Problem],
    *,
    limit: int,
    samples: int = 4,
    temperature: float = 0.6,
    top_p: float = 0.95,
    seed: int = 0,
) -> dict:
    """Pass@1 at ``2 * limit`` (the primary metric), accuracy under ``limit``, mean
    length (tokens, at ``2 * limit``), Pass@1 per chain length, and the confidence AUC
    of the sampled steps."""
    batch = sample(
        model,
        tokenizer,
        problems,
        samples=samples,
        max_new_tokens=2 * limit,
        temperature=temperature,
        top_p=top_p,
        seed=seed,
    )
    by_terms: dict[int, list[bool]] = defaultdict(list)
    for s in batch:
        by_terms[s.problem.terms].append(s.correct)
    conf = _confidence(model, tokenizer, batch)
    return {
        "pass1_2L": float(np.mean([s.correct for s in batch])),
        "acc_L": float(np.mean([s.correct and len(s.ids) <= limit for s in batch])),
        "length": float(np.mean([len(s.ids) for s in batch])),
        "finished_2L": float(np.mean([s.finished for s in batch])),
        "pass1_by_terms": {n: float(np.mean(v)) for n, v in sorted(by_terms.items())},
        "confidence_auc": conf["auc"],
    }


def truncation_audit(
    model, tokenizer, problems: list[Problem], *, limit: int, samples: int = 4, seed: int = 0
) -> dict:
    """The warmed-up policy's rollouts (T 1, as in RL) at ``2 * limit``: how many correct
    ones fail once cut to ``limit`` (the paper: about 29% of correct 8K traces at 4K),
    and the confidence AUC of their steps (gate G1)."""
    batch = sample(
        model,
        tokenizer,
        problems,
        samples=samples,
        max_new_tokens=2 * limit,
        temperature=1.0,
        seed=seed,
    )
    correct = [s for s in batch if s.correct]
    lost = [s for s in correct if len(s.ids) > limit]
    conf = _confidence(model, tokenizer, batch)
    return {
        "rollouts": len(batch),
        "accuracy_2L": len(correct) / len(batch),
        "mean_length_2L": float(np.mean([len(s.ids) for s in batch])),
        "correct_2L_failing_when_cut": len(lost) / len(correct) if correct else float("nan"),
        **{f"confidence_{k}": v for k, v in conf.items()},
    }
