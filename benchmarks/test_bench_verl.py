"""What SAS adds to verl's advantage step: verl 0.9's own ``compute_advantage`` on the
paper's batch (1024 rollouts, about 3,000 response tokens each, right-padded as verl
holds them), grpo against sas. Runs in the verl venv (``make test-verl``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from workload import workload

verl = pytest.importorskip("verl")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from omegaconf import OmegaConf  # noqa: E402
from verl.trainer.ppo import ray_trainer as rt  # noqa: E402
from verl_helpers import check_first_rows, workload_batch  # noqa: E402

from sas_core.integrations.verl import estimator  # noqa: E402
from sas_core.qwen import qwen2_encoding  # noqa: E402

CONFIG = OmegaConf.create({"norm_adv_by_std_in_grpo": True, "sas": {"ratio": 0.3}})


@pytest.fixture(scope="module")
def data(request):
    w = workload("paper")
    if request.config.getoption("benchmark_disable"):
        w = w.subsample(128)  # an untimed run only checks the result
    seg = estimator.bind(qwen2_encoding(), 151_936)
    return workload_batch(w), seg


@pytest.mark.parametrize("adv_estimator", ["grpo", "sas"])
def test_verl_compute_advantage(benchmark, data, adv_estimator):
    batch, seg = data
    grpo = rt.compute_advantage(batch, adv_estimator="grpo", config=CONFIG).batch["advantages"]
    grpo = grpo.clone()
    out = rt.compute_advantage(batch, adv_estimator=adv_estimator, config=CONFIG)
    if adv_estimator == "sas":  # checked against the reference before timing
        check_first_rows(seg, batch, out.batch["advantages"], grpo)
    benchmark.group = "verl-compute-advantage-paper"
    benchmark.extra_info["tokens"] = int(batch.batch["response_mask"].sum())
    benchmark.pedantic(
        rt.compute_advantage,
        args=(batch,),
        kwargs={"adv_estimator": adv_estimator, "config": CONFIG},
        rounds=5,
    )
