"""Under ``ray job submit``: the job's driver parses the command line with the launcher,
and SAS is active in OpenRLHF's PPOTrainer actor although the driver never installed it
(the estimator travels inside the pickled args)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from openrlhf_cpu_shims import require_openrlhf

require_openrlhf()

import openrlhf_helpers as h  # noqa: E402

TESTS = Path(__file__).resolve().parent
RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_head(tmp_path):
    port, dashboard = _free_port(), _free_port()
    start = [
        RAY,
        "start",
        "--head",
        f"--port={port}",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dashboard}",
        "--num-cpus=2",
        "--disable-usage-stats",
    ]
    subprocess.run(start, check=True, capture_output=True, timeout=120)
    try:
        yield f"http://127.0.0.1:{dashboard}"
    finally:
        subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=120)


def test_sas_is_active_in_the_actor_of_a_submitted_job(ray_head, tmp_path):
    model = h.save_pretrained(tmp_path / "model")
    out = tmp_path / "out.json"
    argv = h.trainer_argv(model, "sas")
    job = [
        RAY,
        "job",
        "submit",
        "--address",
        ray_head,
        "--runtime-env-json",
        json.dumps(h.RUNTIME_ENV),
        "--",
        sys.executable,
        str(TESTS / "openrlhf_job_entry.py"),
        str(out),
        *argv,
    ]
    done = subprocess.run(job, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    got = json.loads(out.read_text())
    assert got == {**got, "driver_installed": False, "actor_installed": True, "estimator": "sas"}
    assert got["zeroed"] > 0
