"""What SAS adds to verl's advantage step: verl 0.9's own ``compute_advantage`` on the
paper's batch (1024 rollouts, about 3,000 response tokens each, right-padded as verl
holds them), grpo against sas. Runs in the verl venv (``make test-verl``)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from workload import workload

verl = pytest.importorskip("verl")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from omegaconf import OmegaConf  # noqa: E402
from verl import DataProto  # noqa: E402
from verl.trainer.ppo import ray_trainer as rt  # noqa: E402

from sas_core import reference  # noqa: E402
from sas_core.integrations.verl import estimator  # noqa: E402
from sas_core.qwen import qwen2_encoding  # noqa: E402

import padded_reference  # noqa: E402

CONFIG = OmegaConf.create({"norm_adv_by_std_in_grpo": True, "sas": {"ratio": 0.3}})


def _data(w) -> DataProto:
    b = w.n_rollouts
    lengths = (w.cu_seqlens[1:] - w.cu_seqlens[:-1]).tolist()
    width = max(lengths)
    ids = torch.zeros((b, width), dtype=torch.long)
    mask = torch.zeros((b, width), dtype=torch.int64)
    old = torch.zeros((b, width))
    scores = torch.zeros((b, width))
    for i, n in enumerate(lengths):
        lo = int(w.cu_seqlens[i])
        ids[i, :n] = torch.from_numpy(w.token_ids[lo : lo + n])
        old[i, :n] = torch.from_numpy(w.logprobs[lo : lo + n])
        mask[i, :n] = 1
        scores[i, n - 1] = float(w.rewards[i])
    uid = np.array([f"p{i // w.group_size}" for i in range(b)], dtype=object)
    return DataProto.from_dict(
        tensors={
            "responses": ids,
            "response_mask": mask,
            "old_log_probs": old,
            "token_level_scores": scores,
            "token_level_rewards": scores.clone(),
        },
        non_tensors={"uid": uid},
    )


@pytest.fixture(scope="module")
def data(request):
    w = workload("paper")
    if request.config.getoption("benchmark_disable"):
        w = w.subsample(128)  # an untimed run only checks the result
    seg = estimator.bind(qwen2_encoding(), 151_936)
    return _data(w), seg


@pytest.mark.parametrize("adv_estimator", ["grpo", "sas"])
def test_verl_compute_advantage(benchmark, data, adv_estimator):
    batch, seg = data
    grpo = rt.compute_advantage(batch, adv_estimator="grpo", config=CONFIG).batch["advantages"]
    grpo = grpo.clone()
    out = rt.compute_advantage(batch, adv_estimator=adv_estimator, config=CONFIG)
    if adv_estimator == "sas":  # checked against the reference before timing
        rows = slice(0, 16)
        keep = padded_reference.keep_mask(
            list(seg.token_bytes),
            batch.batch["responses"][rows],
            batch.batch["old_log_probs"][rows],
            batch.batch["response_mask"][rows],
            (batch.batch["token_level_scores"][rows].sum(-1) > 0.5).tolist(),
            vocab_size=seg.vocab_size,
            ratio=0.3,
            mode="both",
            selection="confidence",
            granularity="step",
            seed=reference.unit_key(0, estimator._RUN.calls - 1, 0),
        )
        assert (~keep & batch.batch["response_mask"][rows].bool()).any()
        assert torch.equal(out.batch["advantages"][rows], torch.where(keep, grpo[rows], 0.0))
    benchmark.group = "verl-compute-advantage-paper"
    benchmark.extra_info["tokens"] = int(batch.batch["response_mask"].sum())
    benchmark.pedantic(
        rt.compute_advantage,
        args=(batch,),
        kwargs={"adv_estimator": adv_estimator, "config": CONFIG},
        rounds=5,
    )
