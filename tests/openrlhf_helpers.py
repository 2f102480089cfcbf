"""Real OpenRLHF ``Experience`` batches and what sas_core.reference makes of them.

Shared by the OpenRLHF tests (driver side and inside Ray actors). Rollouts are built the
way OpenRLHF's samples generator builds them: ``sequences`` = prompt + response token
ids, right-padded; ``action_mask`` (B, T-1) set where ``sequences[:, 1:]`` is a response
token; per-token log-probs (B, T-1) aligned with it.
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import torch

from sas_core._core import unit_key
from sas_core.demo.task import sample_problem, solution
from sas_core.demo.tiny import build_tokenizer

import padded_reference

GROUP = 4  # rollouts per prompt


def tokenizer():
    return build_tokenizer()


def save_pretrained(path: Path, extra_rows: int = 8) -> Path:
    """The char tokenizer and a Qwen2 config with padded embedding rows (ids past the
    tokenizer's end are valid policy outputs), as OpenRLHF loads a model folder."""
    from transformers import Qwen2Config

    tok = tokenizer()
    tok.save_pretrained(path)
    Qwen2Config(
        vocab_size=len(tok) + extra_rows,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=32,
    ).save_pretrained(path)
    rng = random.Random(0)
    with open(path / "prompts.jsonl", "w") as f:
        for _ in range(8):
            p = sample_problem(rng)
            f.write(json.dumps({"input": p.prompt, "answer": p.answer}) + "\n")
    return path


def _response_ids(tok: Any, rng: random.Random, vocab_rows: int) -> list[int]:
    """A worked solution (blank-line steps), sometimes cut, sometimes with random ids."""
    text = solution(sample_problem(rng), rng, hesitation=rng.choice([0.0, 0.5, 1.0]))
    ids = tok(text, add_special_tokens=False)["input_ids"]
    if rng.random() < 0.3:
        ids = ids[: rng.randint(0, len(ids))]  # truncated, possibly empty
    if rng.random() < 0.3:
        ids = [rng.randrange(vocab_rows) if rng.random() < 0.3 else i for i in ids]
    return ids


def make_experiences(
    seed: int,
    *,
    n_prompts: int = 3,
    micro_batch: int = 4,
    vocab_rows: int | None = None,
    with_rollout_logprobs: bool = True,
    with_truncated: bool = True,
    with_kl: bool = False,
) -> list[Any]:
    """``Experience`` micro-batches of ``n_prompts`` x ``GROUP`` rollouts in shuffled
    order (``index`` = position in prompt order), as OpenRLHF's ``make_experience``
    leaves them before advantages."""
    from openrlhf.trainer.ppo_utils.experience import Experience

    tok = tokenizer()
    rows = vocab_rows or len(tok)
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    samples = []
    for i in range(n_prompts * GROUP):
        prompt = tok(sample_problem(rng).prompt, add_special_tokens=False)["input_ids"]
        response = _response_ids(tok, rng, rows)
        seq = torch.tensor(prompt + response, dtype=torch.long)
        action = torch.zeros(len(seq) - 1, dtype=torch.bool)
        action[len(prompt) - 1 :] = True
        score = float(rng.random() < 0.5)
        truncated = rng.random() < 0.4
        n = len(seq) - 1
        logp = -torch.rand(n, generator=gen, dtype=torch.float32) * 4
        samples.append(
            dict(
                index=i,
                sequences=seq,
                length=len(seq),
                action_mask=action,
                action_log_probs=logp,
                rollout_log_probs=logp + 0.01 * torch.randn(n, generator=gen),
                kl=(0.05 * torch.rand(n, generator=gen)) if with_kl else torch.zeros(n),
                score=score,
                # raw rewards may carry shaping the verifier score does not
                reward=score - 0.25 * float(truncated),
                truncated=truncated,
            )
        )
    rng.shuffle(samples)
    exps = []
    for start in range(0, len(samples), micro_batch):
        chunk = samples[start : start + micro_batch]
        width = max(len(s["sequences"]) for s in chunk)

        def padded(key: str, length: int, chunk=chunk) -> torch.Tensor:
            """The chunk's ``key`` rows, right-padded with 0 to ``length`` and stacked."""
            rows = [s[key] for s in chunk]
            return torch.stack([torch.nn.functional.pad(t, (0, length - len(t))) for t in rows])

        def scalars(key: str, chunk=chunk) -> torch.Tensor:
            return torch.tensor([s[key] for s in chunk])

        exps.append(
            Experience(
                sequences=padded("sequences", width),
                attention_mask=(torch.arange(width) < scalars("length")[:, None]).long(),
                action_mask=padded("action_mask", width - 1),
                action_log_probs=padded("action_log_probs", width - 1),
                rollout_log_probs=(
                    padded("rollout_log_probs", width - 1) if with_rollout_logprobs else None
                ),
                kl=padded("kl", width - 1),
                rewards=scalars("reward"),
                scores=scalars("score"),
                truncated=scalars("truncated") if with_truncated else None,
                response_length=torch.tensor([int(s["action_mask"].sum()) for s in chunk]),
                index=[s["index"] for s in chunk],
                info={"reward": scalars("reward")},
            )
        )
    return exps


def reference_keep(exp: Any, options: Any, token_bytes: list[bytes], rows: int, seed: int):
    """(B, T-1) keep mask of one experience by sas_core.reference."""
    source = exp.rollout_log_probs if options.logprobs == "rollout" else exp.action_log_probs
    correct = [float(s) > options.correct_threshold for s in exp.scores.reshape(-1)]
    keep = padded_reference.keep_mask(
        token_bytes,
        exp.sequences[:, 1:],
        source,
        exp.action_mask,
        correct,
        vocab_size=rows,
        ratio=options.ratio,
        mode=options.mode,
        selection=options.selection,
        granularity=options.granularity,
        seed=seed,
    )
    if options.shield == "truncated":
        for r in range(len(exp.sequences)):
            if not correct[r] and not bool(exp.truncated[r]):
                keep[r] = True  # spared: a failed rollout that was not cut off
    return keep


def expected_sas(base: list[Any], options: Any, token_bytes: list[bytes], rows: int, call: int):
    """Advantages SAS should give: OpenRLHF's group_norm advantages (``base``, computed
    by the unpatched code) times the reference keep mask."""
    out = []
    for j, exp in enumerate(base):
        keep = reference_keep(exp, options, token_bytes, rows, unit_key(options.seed, call, j))
        out.append(torch.where(keep, exp.advantages, torch.zeros_like(exp.advantages)))
    return out


def clone(experiences: list[Any]) -> list[Any]:
    return copy.deepcopy(experiences)


def probe_trainer(trainer: Any, experiences: list[Any]) -> dict[str, Any]:
    """Runs inside the ``PPOTrainer`` actor (``__ray_call__``): its experience maker's
    advantages for ``experiences``, and whether SAS is installed in that process."""
    import os

    from sas_core.integrations.openrlhf.estimator import is_installed

    installed = is_installed()
    maker = trainer.experience_maker
    out = maker.compute_advantages_and_returns(experiences) if installed else []
    return {
        "pid": os.getpid(),
        "installed": installed,
        "estimator": maker.advantage_estimator,
        "advantages": [e.advantages for e in out],
        "info": [{k: v for k, v in e.info.items() if k.startswith("sas/")} for e in out],
    }


# What every Ray process of the tests needs: the test helpers on the path, and the same
# CPU-only import shims installed before it unpickles anything.
RUNTIME_ENV = {
    "env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parent)},
    "worker_process_setup_hook": "openrlhf_cpu_shims.install",
}


def trainer_argv(model_dir: Path, estimator: str, *extra: str) -> list[str]:
    """A train_ppo_ray command line for the tiny local model and prompts."""
    return [
        "--algo.advantage.estimator", estimator,
        "--actor.model_name_or_path", str(model_dir),
        "--data.prompt_dataset", str(model_dir / "prompts.jsonl"),
        "--data.input_key", "input",
        "--data.label_key", "answer",
        "--rollout.n_samples_per_prompt", str(GROUP),
        "--rollout.batch_size", "2",
        "--train.batch_size", "8",
        "--algo.kl.use_loss",
        "--algo.advantage.sas.ratio", "0.5",
        *extra,
    ]  # fmt: skip


def trainer_actor(args: Any, kind: str = "sync") -> Any:
    """OpenRLHF's trainer actor that computes advantages: ``PPOTrainer``, created as
    train_ppo_ray.train() creates it, or the async mode's ``TrainingActor``, as
    ``PPOTrainerAsync`` creates it (here without model groups, vLLM engines or queues:
    only the experience maker is used)."""
    from openrlhf.utils import get_strategy

    pretrain, strategy = args.actor.model_name_or_path, get_strategy(args)
    groups = (None, None, None, None, None)  # actor, critic, reward, reference, vLLM
    if kind == "async":
        from openrlhf.trainer.ppo_trainer_async import TrainingActor

        return TrainingActor.remote(
            pretrain, strategy, *groups, vllm_lock=None, rollout_queue=None, rollout_slots=None
        )
    from openrlhf.trainer.ppo_trainer import PPOTrainer

    return PPOTrainer.remote(
        pretrain, strategy, *groups,
        do_sample=True, max_len=256, max_new_tokens=128, temperature=0.6, top_p=1.0,
    )  # fmt: skip
