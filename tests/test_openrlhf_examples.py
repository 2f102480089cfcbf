"""The paper-run example: its command line parses with the installed OpenRLHF (dry run)
and carries the paper's settings; the data preparation on a local copy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from openrlhf_cpu_shims import require_openrlhf

require_openrlhf()

from sas_core.integrations.openrlhf import reward_func_path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "integrations" / "openrlhf"
TESTS = ROOT / "tests"


def _dry_run(run: str, *extra: str) -> dict:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHON": sys.executable,
        "SAS_OPENRLHF_DRY_RUN": "1",
    }
    env.pop("PYTHONPATH", None)  # no test shims: the dry run works without vLLM by itself
    env.pop("WANDB_API_KEY", None)
    done = subprocess.run(
        ["bash", str(EXAMPLE / "train_deepscaler_4k.sh"), run, *extra],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    lines = out.splitlines()  # the dry run of OpenRLHF's own module, through sas-core's hook
    assert lines[0] == "# OpenRLHF's openrlhf.cli.train_ppo_ray (with sas registered) would run as:"
    assert lines[1].startswith("# python -m openrlhf.cli.train_ppo_ray --actor.model_name_or_path")
    assert "--algo.advantage.estimator" in lines[1]
    return json.loads("\n".join(lines[2:]))


@pytest.mark.parametrize(("run", "estimator"), [("sas", "sas"), ("grpo", "group_norm")])
def test_paper_settings(run, estimator):
    a = _dry_run(run)
    assert a["algo.advantage.estimator"] == estimator
    assert a["actor.model_name_or_path"] == "agentica-org/DeepScaleR-1.5B-Preview"
    assert a["rollout.n_samples_per_prompt"] == 8
    assert a["rollout.batch_size"] == 128
    assert a["actor.adam.lr"] == 1e-6
    assert a["rollout.temperature"] == 0.6
    assert a["rollout.max_new_tokens"] == 4096
    assert a["data.max_len"] >= 4096 + 512  # room for the prompt
    assert a["reward.remote_url"] == reward_func_path()
    assert a["data.label_key"] == "answer"
    # OpenRLHF's step count: prompts x samples / train batch x episodes
    steps = (
        a["data.max_samples"]
        * a["rollout.n_samples_per_prompt"]
        // a["train.batch_size"]
        * a["train.num_episodes"]
    )
    assert steps == 500
    # one optimiser step per rollout batch (on-policy, as the paper's GRPO)
    assert a["train.batch_size"] == a["rollout.batch_size"] * a["rollout.n_samples_per_prompt"]
    # OpenRLHF's colocate_all requirement, and the documented 8 GPUs
    assert a["actor.num_gpus_per_node"] * a["actor.num_nodes"] == 8
    assert a["vllm.num_engines"] * a["vllm.tensor_parallel_size"] == 8
    sas = {k.rsplit(".", 1)[1]: v for k, v in a.items() if k.startswith("algo.advantage.sas.")}
    assert sas["ratio"] == 0.3 and sas["mode"] == "both" and sas["selection"] == "confidence"
    assert sas["logprobs"] == "action" and sas["shield"] == "all"


def test_extra_arguments_pass_through_and_bad_run_names_fail():
    a = _dry_run("sas", "--algo.advantage.sas.shield", "truncated")
    assert a["algo.advantage.sas.shield"] == "truncated"
    done = subprocess.run(
        ["bash", str(EXAMPLE / "train_deepscaler_4k.sh"), "ppo"], capture_output=True, text=True
    )
    assert done.returncode == 2 and "usage" in done.stderr


def test_prepare_data_from_a_local_copy(tmp_path):
    src = tmp_path / "src.jsonl"
    rows = [{"problem": "What is $1+1$? ", "answer": "2"}, {"problem": "x", "answer": 3}]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "data" / "train.jsonl"
    script = EXAMPLE / "prepare_deepscaler_data.py"
    done = subprocess.run(
        [sys.executable, str(script), str(out), "--source", str(src)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert got[0]["prompt"].startswith("What is $1+1$? Let's think step by step")
    assert got[0]["prompt"].endswith("within \\boxed{}.")
    assert [g["answer"] for g in got] == ["2", "3"]
