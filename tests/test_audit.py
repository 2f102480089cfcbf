"""audit-truncation: the share of correct long responses lost when cut, from JSONL."""

from __future__ import annotations

import json

import pytest

from sas_core.cli import main
from sas_core.demo.task import is_correct
from sas_core.qwen import qwen2_encoding
from sas_core.tools.audit import Rollout, audit_truncation, load_rollouts

pytest.importorskip("math_verify")


def _codec():
    enc = qwen2_encoding()
    return (lambda t: enc.encode(t, allowed_special="all")), enc.decode


def test_counts_against_hand_computed_cuts():
    encode, decode = _codec()
    early = "The sum is \\boxed{7}." + " More words here." * 10  # answer in the first tokens
    late = "Let me think. " * 30 + "So \\boxed{7}."  # answer near the end
    wrong = "\\boxed{8}"
    rollouts = [Rollout("p", early, "7"), Rollout("p", late, "7"), Rollout("p", wrong, "7")]
    n_late = len(encode(late))
    budget = n_late // 2
    report = audit_truncation(
        rollouts,
        [budget, n_late],
        encode=encode,
        decode=decode,
        score=lambda t, label: float(is_correct(t, label)),
    )
    assert report["responses"] == 3 and report["correct_at_full_length"] == 2
    cut = report["budgets"][str(budget)]
    assert cut["correct_failing_when_cut"] == 1 and cut["share_of_correct"] == 0.5
    # The late answer ends at its last token: (n_late - budget) / budget past the cut.
    past = (n_late - budget) / budget
    bucket = next(k for k, v in cut["lost_by_answer_position"].items() if v == 1)
    lo = int(bucket.split()[1].split("-")[0].rstrip("+%")) / 100
    assert lo <= past
    assert report["budgets"][str(n_late)]["correct_failing_when_cut"] == 0


def test_cli_on_jsonl_with_and_without_token_ids(tmp_path, capsys):
    encode, _ = _codec()
    rows = [
        {"prompt": "1+1", "response": "Two.\n\n\\boxed{2}", "label": "2"},
        {"prompt": "1+1", "response": "Hmm. " * 40 + "\\boxed{2}", "label": 2},
        {
            "prompt": "1+1",
            "response": "ignored",
            "label": "2",
            "token_ids": encode("Hmm. " * 40 + "\\boxed{2}"),
        },
    ]
    path = tmp_path / "rollouts.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "report.json"
    assert (
        main(
            [
                "audit-truncation",
                str(path),
                "--budgets",
                "10",
                "200",
                "--no-progress",
                "--out",
                str(out),
                "--timeout",
                "20",
            ]
        )
        == 0
    )
    report = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == report
    assert report["correct_at_full_length"] == 3
    assert report["budgets"]["10"]["correct_failing_when_cut"] == 2
    assert report["budgets"]["200"]["correct_failing_when_cut"] == 0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "line 2: not valid JSON"),
        ('["a"]', "line 2: expected a JSON object"),
        ('{"prompt": "p", "response": "r"}', "line 2: missing or non-text field 'label'"),
        (
            '{"prompt": "p", "response": "r", "label": "1", "token_ids": [1, -2]}',
            "line 2: token_ids",
        ),
    ],
)
def test_bad_files_name_the_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "p", "response": "r", "label": "1"}\n' + line + "\n")
    with pytest.raises(ValueError, match=message):
        load_rollouts(path)


def test_budgets_must_be_positive():
    encode, decode = _codec()
    with pytest.raises(ValueError, match="budgets"):
        audit_truncation([], [0], encode=encode, decode=decode, score=lambda t, label: 1.0)


def _audit_cli(path, *extra, tty: bool):
    """``sas-core audit-truncation`` in a subprocess, its stdout a pipe or a terminal."""
    import os
    import pty
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "sas_core", "audit-truncation", str(path), "--budgets", "10"]
    cmd += ["200", "--no-progress", "--timeout", "20", *extra]
    if not tty:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    leader, follower = pty.openpty()
    proc = subprocess.Popen(cmd, stdout=follower, stderr=subprocess.DEVNULL)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed: the process exited
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=120)
    os.close(leader)
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_cli_summary_on_a_terminal_json_when_piped_or_asked(tmp_path):
    rows = [
        {"prompt": "1+1", "response": "Two.\n\n\\boxed{2}", "label": "2"},
        {"prompt": "1+1", "response": "Hmm. " * 40 + "\\boxed{2}", "label": "2"},
        {"prompt": "1+1", "response": "\\boxed{3}", "label": "2"},
    ]
    path = tmp_path / "rollouts.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    piped = json.loads(_audit_cli(path, tty=False))
    assert piped["responses"] == 3 and piped["correct_at_full_length"] == 2
    lost = piped["budgets"]["10"]["correct_failing_when_cut"]
    assert lost == 1 and piped["budgets"]["200"]["correct_failing_when_cut"] == 0
    assert json.loads(_audit_cli(path, "--json", tty=True)) == piped
    text = _audit_cli(path, tty=True)
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    lines = text.strip().splitlines()
    assert lines[0].startswith("3 responses, 2 correct at full length")
    assert lines[1].startswith("Cut to 10 tokens: 1 of the 2 correct responses fail (50.0%).")
    assert "past the cut: 1 " in lines[1]
    assert lines[2] == "Cut to 200 tokens: 0 of the 2 correct responses fail (0.0%)."
