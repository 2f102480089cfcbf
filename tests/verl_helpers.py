"""verl ``DataProto`` batches and legacy trainers built on CPU, shared by the verl tests
(driver side and inside a Ray actor) and the benchmark."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from verl import DataProto
from verl.trainer.ppo import core_algos

from sas_core import reference
from sas_core.qwen import QWEN2_EMBEDDING_ROWS

import padded_reference

GROUP = 4
TEXTS = [
    "Let x = 2.\n\nThen 2x = 4.\n\nCheck: 4/2 = 2.\n\nSo \\boxed{4}.",
    "Hmm.\n\nWait, maybe 5?\n\nNo.\n\n\\boxed{5}",
    "A single step without a blank line, \\boxed{3}",
    "Step one.\n\nStep two.\n\nStep three.\n\nStep four.\n\nStep five.\n\nStep six.\n\n",
    "First,\n\nsecond,\n\nthird",
]


def make_batch(qwen, seed: int, n_prompts: int = 3, width: int | None = None, kl: bool = False):
    """A legacy-trainer ``DataProto`` after rewards: right-padded responses, prompt
    uids in shuffled (non-consecutive) order, scores on the last response token."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n_prompts * GROUP):
        ids = qwen.encode(TEXTS[rng.integers(len(TEXTS))])
        if rng.random() < 0.3:  # padding-row ids the policy can sample
            ids = [*ids, int(rng.integers(qwen.n_vocab, QWEN2_EMBEDDING_ROWS))]
        if rng.random() < 0.3:
            ids = ids[: int(rng.integers(1, len(ids) + 1))]
        rows.append(ids)
    width = width or max(map(len, rows))
    b = len(rows)
    responses = torch.zeros((b, width), dtype=torch.long)
    mask = torch.zeros((b, width), dtype=torch.int64)
    for i, ids in enumerate(rows):
        ids = ids[:width]
        responses[i, : len(ids)] = torch.tensor(ids)
        mask[i, : len(ids)] = 1
    gen = torch.Generator().manual_seed(seed)
    old = torch.where(mask.bool(), -torch.rand((b, width), generator=gen) * 3, 0.0)
    scores = torch.zeros((b, width))
    correct = torch.tensor(rng.random(b) < 0.5)
    last = mask.sum(1) - 1
    scores[torch.arange(b), last] = correct.float()
    rewards = scores - (0.01 * torch.rand((b, width), generator=gen) * mask if kl else 0.0)
    uid = np.array([f"p{(i * 7) % n_prompts}" for i in range(b)], dtype=object)
    data = DataProto.from_dict(
        tensors={
            "responses": responses,
            "response_mask": mask,
            "old_log_probs": old,
            "token_level_scores": scores,
            "token_level_rewards": rewards,
        },
        non_tensors={"uid": uid},
    )
    return data, correct


def algorithm_config(**sas):
    from omegaconf import OmegaConf

    algo = {"adv_estimator": "sas", "gamma": 1.0, "lam": 1.0, "norm_adv_by_std_in_grpo": True}
    if sas:
        algo["sas"] = sas
    return OmegaConf.create(algo)


def expected(qwen_token_bytes, data, correct, call: int, **options):
    """verl's GRPO (by uid) spread over tokens, times the reference keep mask."""
    grpo, _ = core_algos.compute_grpo_outcome_advantage(
        token_level_rewards=data.batch["token_level_rewards"],
        response_mask=data.batch["response_mask"],
        index=data.non_tensor_batch["uid"],
    )
    opts = {"ratio": 0.3, "mode": "both", "selection": "confidence", "granularity": "step"}
    opts.update(options)
    seed = opts.pop("seed", 0)
    keep = padded_reference.keep_mask(
        qwen_token_bytes,
        data.batch["responses"],
        data.batch["old_log_probs"],
        data.batch["response_mask"],
        correct.tolist(),
        vocab_size=QWEN2_EMBEDDING_ROWS,
        seed=reference.unit_key(seed, call, 0),
        **opts,
    )
    return torch.where(keep, grpo, torch.zeros_like(grpo))


def build_trainer(tokenizer: Any, overrides: list[str]) -> Any:
    """verl's legacy ``RayPPOTrainer``, built as ``TaskRunner`` builds it, minus the
    worker groups (never started here): tiny in-memory datasets, CPU."""
    from verl.trainer.ppo import ray_trainer as rt
    from verl.trainer.ppo.utils import Role

    from sas_core.integrations.verl.dry_run import compose

    cfg = compose(
        [
            "trainer.use_v1=False",
            "trainer.device=cpu",
            "data.train_batch_size=2",
            "data.val_batch_size=2",
            "actor_rollout_ref.rollout.n=4",
            *overrides,
        ]
    )
    ds = [{"x": torch.tensor([1])} for _ in range(4)]
    return rt.RayPPOTrainer(
        cfg,
        tokenizer,
        {Role.ActorRollout: object},
        object(),
        train_dataset=ds,
        val_dataset=ds,
        collate_fn=lambda b: b,
        device_name="cpu",
    )


def advantage_step(trainer: Any, batch: Any) -> Any:
    """The call ``RayPPOTrainer.fit`` makes (verl 0.9.1, ray_trainer.py)."""
    from verl.trainer.ppo import ray_trainer as rt

    algo = trainer.config.algorithm
    return rt.compute_advantage(
        batch,
        adv_estimator=algo.adv_estimator,
        gamma=algo.gamma,
        lam=algo.lam,
        num_repeat=trainer.config.actor_rollout_ref.rollout.n,
        norm_adv_by_std_in_grpo=algo.get("norm_adv_by_std_in_grpo", True),
        config=algo,
    )
