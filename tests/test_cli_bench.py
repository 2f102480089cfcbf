"""``sas-core bench``: the agreement check runs before any timing, the table and JSON hold
every implementation, and a user's bad value is one line. Speed itself is not asserted
(it is measured, not tested)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from sas_core.tools import bench, numpy_mask

IMPLEMENTATIONS = ["pure Python", "numpy", "rust, 1 thread"]


def _cli(*args: str, threads: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "SAS_CORE_NUM_THREADS": threads} if threads else None
    return subprocess.run(
        [sys.executable, "-m", "sas_core", "bench", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


@pytest.mark.parametrize("threads", ["1", "2"])
def test_json_has_every_implementation_and_their_agreement(threads):
    proc = _cli("--rollouts", "12", "--repeat", "1", "--json", threads=threads)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["batch"]["rollouts"] == 12
    assert out["batch"]["reference_rollouts"] == bench.REFERENCE_ROLLOUTS
    assert 0 < out["batch"]["reference_tokens"] < out["batch"]["tokens"]
    assert all(out["agreement"].values()) and len(out["agreement"]) == 7
    assert {"rust segment, line", "rust segment, boundaries"} <= set(out["agreement"])
    by_rule = [r["implementation"] for r in out["results"] if r["task"] == "segment by rule"]
    assert by_rule == ["pure Python, line", "rust line", "rust boundaries"]
    for task in ("segment", "segment + select"):
        rows = [r for r in out["results"] if r["task"] == task]
        names = [r["implementation"] for r in rows]
        # the row on all threads only where that is more than one
        pool = [] if threads == "1" else [f"rust, {threads} threads"]
        assert names == IMPLEMENTATIONS + pool
        assert rows[0]["speedup_vs_python"] == 1.0
        for r in rows:
            assert r["ns_per_token"] > 0 and r["calls"] >= 1
            assert r["tokens_per_second"] == pytest.approx(r["tokens"] / r["seconds"])
            assert r["speedup_vs_python"] == pytest.approx(
                rows[0]["ns_per_token"] / r["ns_per_token"]
            )
    assert out["machine"]["cpu_count"] >= 1 and out["machine"]["numpy"] == np.__version__


@pytest.mark.parametrize("threads", ["1", "2"])
def test_table_is_readable(threads):
    proc = _cli("--rollouts", "8", "--repeat", "1", threads=threads)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("sas-core bench: 8 rollouts")
    assert lines[1].startswith("timing: the fastest of >= 1 calls")
    assert lines[3].startswith("agreement: all implementations")
    body = [ln for ln in lines if ln.startswith(("segment ", "segment + select"))]
    assert len(body) == (9 if threads == "1" else 11)
    assert max(map(len, lines)) <= 120  # not a 220-column pytest-benchmark table


def test_a_disagreeing_implementation_stops_the_bench(monkeypatch):
    def wrong(table, ids, cu):
        out = original(table, ids, cu).copy()
        out[len(out) // 2] += 1
        return out

    original = numpy_mask.segment
    monkeypatch.setattr(numpy_mask, "segment", wrong)
    with pytest.raises(RuntimeError, match=r"numpy segment.*nothing timed"):
        bench.run(4, repeat=1)


@pytest.mark.parametrize(
    ("args", "named"), [(["--rollouts", "0"], "rollouts"), (["--repeat", "0"], "repeat")]
)
def test_bad_value_is_one_line(args, named):
    proc = _cli(*args)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and named in proc.stderr
    assert "Traceback" not in proc.stderr


def test_fast_contenders_are_called_until_the_minimum_time(monkeypatch):
    monkeypatch.setattr(bench, "MIN_SECONDS", 0.1)
    best, calls = bench._best(lambda: time.sleep(0.001), 3)
    assert 3 < calls <= 101 and best >= 0.001  # 0.1 s of >= 1 ms calls, more than 3
    best, calls = bench._best(lambda: time.sleep(0.04), 3)
    assert calls == 3 and best >= 0.04  # three calls already pass the minimum


def test_calls_are_capped(monkeypatch):
    monkeypatch.setattr(bench, "MAX_CALLS", 7)
    _, calls = bench._best(lambda: None, 2)
    assert calls == 7
