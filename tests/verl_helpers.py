"""verl ``DataProto`` batches and legacy trainers built on CPU, shared by the verl tests
(driver side and inside a Ray actor) and the benchmark."""

from __future__ import annotations

import contextlib
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


def right_padded(rows: list, width: int | None = None, dtype=torch.long):
    """(B, width) right-padded rows (cut to ``width``; default the longest) and the
    int64 mask of their real positions."""
    width = width or max(map(len, rows))
    out = torch.zeros((len(rows), width), dtype=dtype)
    mask = torch.zeros((len(rows), width), dtype=torch.int64)
    for i, row in enumerate(rows):
        row = torch.as_tensor(row[:width], dtype=dtype)
        out[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return out, mask


def legacy_batch(responses, mask, old_log_probs, scores, uid, rewards=None) -> DataProto:
    """The ``DataProto`` the legacy trainer hands ``compute_advantage`` after rewards
    (``token_level_rewards``: the scores unless KL-shaped ``rewards`` are given)."""
    return DataProto.from_dict(
        tensors={
            "responses": responses,
            "response_mask": mask,
            "old_log_probs": old_log_probs,
            "token_level_scores": scores,
            "token_level_rewards": scores.clone() if rewards is None else rewards,
        },
        non_tensors={"uid": np.asarray(uid, dtype=object)},
    )


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
    responses, mask = right_padded(rows, width)
    b, width = responses.shape
    gen = torch.Generator().manual_seed(seed)
    old = torch.where(mask.bool(), -torch.rand((b, width), generator=gen) * 3, 0.0)
    scores = torch.zeros((b, width))
    correct = torch.tensor(rng.random(b) < 0.5)
    last = mask.sum(1) - 1
    scores[torch.arange(b), last] = correct.float()
    rewards = scores - (0.01 * torch.rand((b, width), generator=gen) * mask if kl else 0.0)
    uid = [f"p{(i * 7) % n_prompts}" for i in range(b)]
    return legacy_batch(responses, mask, old, scores, uid, rewards), correct


def workload_batch(w: Any) -> DataProto:
    """A benchmark workload (``benchmarks/workload.py``) as the legacy trainer holds it:
    right-padded responses, verifier scores on the last token, uids by group."""
    cu = w.cu_seqlens.tolist()
    spans = [slice(lo, hi) for lo, hi in zip(cu[:-1], cu[1:])]
    ids, mask = right_padded([torch.from_numpy(w.token_ids[s]) for s in spans])
    old, _ = right_padded([torch.from_numpy(w.logprobs[s]) for s in spans], dtype=torch.float32)
    scores = torch.zeros(old.shape)
    scores[torch.arange(w.n_rollouts), mask.sum(1) - 1] = torch.as_tensor(w.rewards).float()
    uid = [f"p{i // w.group_size}" for i in range(w.n_rollouts)]
    return legacy_batch(ids, mask, old, scores, uid)


def check_first_rows(seg: Any, data: Any, advantages: torch.Tensor, grpo: torch.Tensor) -> None:
    """A benchmark's check before timing: the first 16 rows of the sas advantages of
    ``data`` (default options, the last call) are GRPO's times the reference keep mask."""
    from sas_core.integrations.verl import estimator

    rows = slice(0, 16)
    batch = data.batch
    keep = padded_reference.keep_mask(
        list(seg.token_bytes),
        batch["responses"][rows],
        batch["old_log_probs"][rows],
        batch["response_mask"][rows],
        (batch["token_level_scores"][rows].sum(-1) > 0.5).tolist(),
        vocab_size=seg.vocab_size,
        ratio=0.3,
        mode="both",
        selection="confidence",
        granularity="step",
        seed=reference.unit_key(0, estimator.calls() - 1, 0),
    )
    assert (~keep & batch["response_mask"][rows].bool()).any()
    assert torch.equal(advantages[rows], torch.where(keep, grpo[rows], 0.0))


def algorithm_config(**sas):
    from omegaconf import OmegaConf

    algo = {"adv_estimator": "sas", "gamma": 1.0, "lam": 1.0, "norm_adv_by_std_in_grpo": True}
    if sas:
        algo["sas"] = sas
    return OmegaConf.create(algo)


def tiny_model_dir(path: Any, extra_rows: int = 9) -> tuple[Any, int]:
    """A model directory verl can read on CPU: the demo's one-character tokenizer and a
    tiny Qwen2 config with ``extra_rows`` padding rows in its embedding (no weights).
    Returns the tokenizer and the row count."""
    from transformers import Qwen2Config

    from sas_core.demo.tiny import build_tokenizer

    tok = build_tokenizer()
    tok.save_pretrained(path)
    rows = len(tok) + extra_rows
    Qwen2Config(
        vocab_size=rows, hidden_size=8, num_attention_heads=2, architectures=["Qwen2ForCausalLM"]
    ).save_pretrained(path)
    return tok, rows


def text_batch(tok: Any, n: int = 8):
    """A legacy-layout ``DataProto`` of ``n`` demo solutions (with hesitation steps) in
    ``tok``'s ids, two prompts, alternately correct; returns it and ``correct``."""
    import random

    from sas_core.demo.task import sample_problem, solution

    rng = random.Random(0)
    texts = [solution(sample_problem(rng), rng, hesitation=0.5) for _ in range(n)]
    responses, mask = right_padded([tok(t, add_special_tokens=False)["input_ids"] for t in texts])
    gen = torch.Generator().manual_seed(1)
    correct = torch.tensor([True, False] * (n // 2))
    scores = torch.zeros(responses.shape)
    scores[torch.arange(n), mask.sum(1) - 1] = correct.float()
    old = torch.where(mask.bool(), -torch.rand(responses.shape, generator=gen), 0.0)
    uid = [f"p{i % 2}" for i in range(n)]
    return legacy_batch(responses, mask, old, scores, uid), correct


def expected(token_bytes, data, correct, call: int, vocab_size=QWEN2_EMBEDDING_ROWS, **options):
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
        token_bytes,
        data.batch["responses"],
        data.batch["old_log_probs"],
        data.batch["response_mask"],
        correct.tolist(),
        vocab_size=vocab_size,
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


@contextlib.contextmanager
def running_queue(num_cpus: int = 3):
    """Ray and verl's TransferQueue, as ``TaskRunnerV1.run`` starts them (the queue's
    controller and storage unit take a logical CPU each; one is left for an actor)."""
    import os
    import sys

    import ray
    import transfer_queue as tq

    # Workers inherit the driver's environment: no runtime_env (its agent is slow to start).
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    try:
        tq.init(v1_config([]).transfer_queue)
        try:
            yield
        finally:
            tq.close()
    finally:
        ray.shutdown()


def v1_config(overrides: list[str]) -> Any:
    """verl's Hydra config for the V1 trainer on CPU, one TransferQueue storage unit
    (verl's default of 8 asks Ray for 9 CPUs)."""
    from sas_core.integrations.verl.dry_run import compose

    return compose(
        [
            "trainer.use_v1=True",
            "trainer.device=cpu",
            "data.train_batch_size=3",
            f"actor_rollout_ref.rollout.n={GROUP}",
            "transfer_queue.backend.SimpleStorage.num_data_storage_units=1",
            *overrides,
        ]
    )


def put_v1_batch(data: Any, partition_id: str = "train", outputs: int = 1) -> Any:
    """Writes a legacy-layout ``DataProto`` into the running TransferQueue as verl's V1
    agent loop does (``v1/agent_loop_tq.py``): one row per output, jagged per-token
    fields cut to the response length, key ``{uid}_{session_id}_{index}``. Returns
    the ``KVBatchMeta`` the trainer steps on."""
    import transfer_queue as tq
    from verl.utils.tensordict_utils import list_of_dict_to_tensordict

    batch, uids = data.batch, data.non_tensor_batch["uid"]
    lengths = batch["response_mask"].sum(-1).tolist()
    sessions: dict[str, int] = {}
    keys, rows = [], []
    for i, (uid, n) in enumerate(zip(uids, lengths)):
        session = sessions[uid] = sessions.get(uid, -1) + 1
        index = i % outputs  # outputs > 1: sessions with several outputs
        keys.append(f"{uid}_{session}_{index}")
        rows.append(
            {
                "uid": str(uid),
                "prompts": torch.ones(3, dtype=torch.long),
                "responses": batch["responses"][i, :n],
                "response_mask": batch["response_mask"][i, :n],
                "rm_scores": batch["token_level_scores"][i, :n],
                "old_log_probs": batch["old_log_probs"][i, :n],
            }
        )
    return tq.kv_batch_put(
        keys=keys,
        partition_id=partition_id,
        fields=list_of_dict_to_tensordict(rows),
        tags=[{"status": "success"} for _ in keys],
    )


def v1_advantage_step(trainer: Any, data: Any, multiple: int = 1, eos: int = 151643):
    """The V1 trainer's advantage step on ``data`` as the agent loop stored it;
    ``multiple`` > 1: first padded by verl's own ``upsample_batch_to_divisible_size``
    (with ``eos``, Qwen2's), as ``_balance_batch`` pads for data parallelism. Returns
    the real rows' advantages and the step's metrics."""
    import transfer_queue as tq
    from verl.trainer.ppo.padding_utils import upsample_batch_to_divisible_size

    meta = upsample_batch_to_divisible_size(put_v1_batch(data), multiple, eos_token_id=eos)
    metrics: dict = {}
    trainer._compute_advantage(meta, metrics)
    advantages = get_v1_advantages(meta)
    tq.kv_clear(keys=meta.keys, partition_id=meta.partition_id)
    rows = len(data)
    assert not advantages[rows:].any()  # verl's padding samples: no advantage
    return advantages[:rows], metrics


def get_v1_advantages(meta: Any) -> torch.Tensor:
    """The advantages the V1 step wrote back, right-padded with zeros."""
    import transfer_queue as tq

    got = tq.kv_batch_get(
        keys=meta.keys, partition_id=meta.partition_id, select_fields=["advantages"]
    )
    adv = got["advantages"]
    return adv.to_padded_tensor(padding=0.0) if adv.is_nested else adv
