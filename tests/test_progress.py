"""Progress in a log: plain lines at a modest rate when the output is not a terminal."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys

import pytest

from sas_core.progress import PlainLines, progress

LINE = re.compile(r"^\[\s*\d+s\] (?P<what>.+): (?P<done>\d+)/(?P<total>\d+)(?P<extra>.*)$")


def _parsed(text: str) -> list[tuple[int, int, str]]:
    out = []
    for line in text.splitlines():
        m = LINE.match(line)
        assert m, line
        out.append((int(m["done"]), int(m["total"]), m["extra"]))
    return out


def test_rate_limited_lines_keep_the_start_and_the_end():
    stream = io.StringIO()
    lines = PlainLines("work", 100, stream=stream, every=3600.0)
    lines.line()
    for _ in range(100):
        lines.advance()
    assert [(d, t) for d, t, _ in _parsed(stream.getvalue())] == [(0, 100), (100, 100)]


def test_every_advance_is_a_line_when_the_interval_is_zero():
    stream = io.StringIO()
    lines = PlainLines("work", 3, figure=lambda: "acc 0.5", stream=stream, every=0.0)
    for n in (1, 1, 1):
        lines.advance(n)
    assert _parsed(stream.getvalue()) == [
        (1, 3, "  acc 0.5"),
        (2, 3, "  acc 0.5"),
        (3, 3, "  acc 0.5"),
    ]


def test_progress_writes_plain_lines_to_stderr_when_not_a_terminal(capsys):
    with progress("items", 4) as advance:
        for _ in range(4):
            advance()
    err = capsys.readouterr()
    assert err.out == ""
    assert [(d, t) for d, t, _ in _parsed(err.err)] == [(0, 4), (4, 4)]
    with progress("items", 4, disabled=True) as advance:
        advance(4)
    assert capsys.readouterr().err == ""


def test_audit_command_in_a_pipe_logs_progress_and_keeps_stdout_json(tmp_path):
    pytest.importorskip("math_verify")
    rows = [
        {"prompt": "p", "response": "so \\boxed{4}", "label": "4"},
        {"prompt": "p", "response": "so \\boxed{5}", "label": "4"},
        {"prompt": "p", "response": "long " * 30 + "\\boxed{4}", "label": "4"},
    ]
    path = tmp_path / "rollouts.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    proc = subprocess.run(
        [sys.executable, "-m", "sas_core.cli", "audit-truncation", str(path), "--budgets", "8"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["correct_at_full_length"] == 2
    lines = [ln for ln in proc.stderr.splitlines() if "verifying rollouts" in ln]
    assert [(d, t) for d, t, _ in _parsed("\n".join(lines))] == [(0, 3), (3, 3)]
    assert "\x1b[" not in proc.stderr  # no terminal control codes in a log
