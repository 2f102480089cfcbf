"""Under ``ray job submit``: the job's driver parses the command line with the launcher,
and SAS is active in OpenRLHF's PPOTrainer actor although the driver never installed it
(the estimator travels inside the pickled args)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from openrlhf_cpu_shims import require_openrlhf

require_openrlhf()

import openrlhf_helpers as h  # noqa: E402

TESTS = Path(__file__).resolve().parent
RAY = str(Path(sys.executable).with_name("ray"))


PORTS = (
    "port", "dashboard-port", "dashboard-agent-listen-port", "dashboard-agent-grpc-port",
    "metrics-export-port", "runtime-env-agent-port", "ray-client-server-port",
    "node-manager-port", "object-manager-port",
)  # fmt: skip


def _free_ports(n: int) -> list[int]:
    """n distinct free ports: all held open while they are chosen, so none repeats."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def _start_head(log: Path) -> tuple[subprocess.Popen, dict[str, int]] | None:
    """One `ray start --head` on fresh ports, its output in ``log``: the head and its
    ports once its job API answers, or None when `ray start` exited first (a port
    taken by another process between choosing it and Ray binding it ends it so)."""
    ports = dict(zip(PORTS, _free_ports(len(PORTS))))
    start = [
        RAY,
        "start",
        "--head",
        "--block",
        *(f"--{name}={port}" for name, port in ports.items()),
        "--dashboard-host=127.0.0.1",
        "--num-cpus=2",
        "--disable-usage-stats",
    ]
    with log.open("ab") as out:
        head = subprocess.Popen(start, stdout=out, stderr=out, start_new_session=True)
    url = f"http://127.0.0.1:{ports['dashboard-port']}/api/version"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # the job API answers once the head is up
        try:
            with urllib.request.urlopen(url, timeout=2):
                return head, ports
        except OSError:
            if head.poll() is not None:
                _stop_cluster_processes(ports["port"], ports["node-manager-port"])
                return None
            time.sleep(0.5)
    _stop_head(head, ports)
    raise AssertionError(f"no Ray head answered in 120 s; its output:\n{log.read_text()[-3000:]}")


def _stop_head(head: subprocess.Popen, ports: dict[str, int]) -> None:
    os.killpg(head.pid, signal.SIGTERM)
    try:
        head.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(head.pid, signal.SIGKILL)
        head.wait(timeout=30)
    _stop_cluster_processes(ports["port"], ports["node-manager-port"])


@pytest.fixture
def ray_head(tmp_path):
    """A Ray head of this test's own: every port it listens on is free, and it is stopped
    by ending its own process group, not by `ray stop` (which stops every Ray cluster on
    the machine: a second test run's too). A head that exits at start is tried again on
    other ports, three times in all; its output is kept for the failure's message."""
    log = tmp_path / "ray-head.log"
    for _ in range(3):
        started = _start_head(log)
        if started is not None:
            break
    else:
        raise AssertionError(f"`ray start` exited 3 times; its output:\n{log.read_text()[-3000:]}")
    head, ports = started
    try:
        yield f"http://127.0.0.1:{ports['dashboard-port']}"
    finally:
        _stop_head(head, ports)


def _stop_cluster_processes(*ports: int) -> None:
    """Ray's daemons that outlive their `ray start` (GCS, raylet, dashboard, ...) are
    found by this head's own ports on their command lines and ended, so that a later
    ``ray.init()`` in this process starts a cluster of its own instead of joining this
    one. Other clusters on the machine are left alone."""
    import psutil

    marks = [str(p) for p in ports]
    ours = []
    for proc in psutil.process_iter(["cmdline"]):
        line = " ".join(proc.info["cmdline"] or [])
        if "ray" in line and any(f"={m}" in line or f":{m}" in line for m in marks):
            ours.append(proc)
    for proc in ours:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(ours, timeout=30)
    # `ray start` records its address for later ray.init() calls to join (as `ray stop`
    # does, forget it when it is this head's).
    current = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
    if current.exists() and current.read_text().strip().endswith(f":{ports[0]}"):
        current.unlink()


@pytest.mark.parametrize("entry", ["launcher", "openrlhf-cli"])
def test_sas_is_active_in_the_actor_of_a_submitted_job(ray_head, tmp_path, entry):
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
        entry,
        str(out),
        *argv,
    ]
    done = subprocess.run(job, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    got = json.loads(out.read_text())
    assert got == {**got, "driver_installed": False, "actor_installed": True, "estimator": "sas"}
    assert got["zeroed"] > 0
