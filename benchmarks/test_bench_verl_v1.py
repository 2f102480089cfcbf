"""What SAS adds to the advantage step of verl 0.9's V1 trainer (its default): the V1
trainer's own ``PPOTrainer._compute_advantage`` over a running TransferQueue (Ray and
ZMQ SimpleStorage on this machine) on the paper's batch, grpo against sas. sas adds one
fetch of the response ids from the queue and the step selection. Runs in the verl venv
(``make test-verl``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from workload import workload

pytest.importorskip("verl")
pytest.importorskip("transfer_queue")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from verl_helpers import (
    check_first_rows,
    get_v1_advantages,
    put_v1_batch,
    running_queue,
    v1_config,
    workload_batch,
)

from sas_core.integrations.verl import estimator
from sas_core.qwen import qwen2_encoding


@pytest.fixture(scope="module")
def stored(request):
    w = workload("paper")
    if request.config.getoption("benchmark_disable"):
        w = w.subsample(128)  # an untimed run only checks the result
    with running_queue():
        data = workload_batch(w)
        yield data, put_v1_batch(data), estimator.bind(qwen2_encoding(), 151_936)


def _trainer(adv_estimator: str):
    from verl.trainer.ppo.v1 import get_trainer_cls

    return get_trainer_cls("sync")(config=v1_config([f"algorithm.adv_estimator={adv_estimator}"]))


@pytest.mark.parametrize("adv_estimator", ["grpo", "sas"])
def test_verl_v1_compute_advantage(benchmark, stored, adv_estimator):
    data, meta, seg = stored
    trainer = _trainer(adv_estimator)
    _trainer("grpo")._compute_advantage(meta, {})
    grpo = get_v1_advantages(meta).clone()
    trainer._compute_advantage(meta, {})
    if adv_estimator == "sas":  # checked against the reference before timing
        check_first_rows(seg, data, get_v1_advantages(meta), grpo)
    benchmark.group = "verl-v1-compute-advantage-paper"
    benchmark.extra_info["tokens"] = int(data.batch["response_mask"].sum())
    benchmark.pedantic(trainer._compute_advantage, args=(meta, {}), rounds=5)
