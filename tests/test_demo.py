"""The demo: task, verifier, and `sas-core demo --quick` end to end (deterministic)."""

from __future__ import annotations

import json
import random
import re

import pytest

pytest.importorskip("trl")

import sas_core
from sas_core.cli import main
from sas_core.demo.task import Problem, boxed_answer, is_correct, sample_problem, solution
from sas_core.demo.tiny import build_tokenizer


def test_solutions_are_blank_line_steps_ending_in_the_answer():
    rng = random.Random(0)
    tok = build_tokenizer()
    seg = sas_core.StepSegmenter.from_tokenizer(tok)
    for _ in range(200):
        p = sample_problem(rng)
        text = solution(p, rng, doubt=0.5)
        assert is_correct(text, p.answer)
        steps = text.split("\n\n")
        doubts = [s for s in steps if s.startswith("wait")]
        assert len(steps) == len(p.operands) + len(doubts)  # n-1 sums, the box, the doubts
        # The tokenizer round-trips the text, and the segmenter finds the same steps.
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == text
        assert seg.segment(ids, [0, len(ids)]).max() + 1 == len(steps)


def test_verifier():
    assert boxed_answer("a\n\n\\boxed{12}") == "12"
    assert boxed_answer("\\boxed{1} then \\boxed{ 7 }") == "7"
    assert boxed_answer("no box") is None
    assert is_correct("\\boxed{9}", 9) and not is_correct("\\boxed{8}", 9)
    assert not is_correct("3+4=7\n\n7+2=9\n\n\\boxed{", 9)  # truncated before the answer
    assert Problem((3, 4, 2)).prompt == "3+4+2=" and Problem((3, 4, 2)).answer == 9


def _demo(tmp_path, name):
    out = tmp_path / name
    assert main(["demo", "--quick", "--no-progress", "--out", str(out)]) == 0
    return json.loads((out / "demo.json").read_text()), out


def test_quick_demo_end_to_end_and_deterministic(tmp_path, capsys):
    first, out = _demo(tmp_path, "a")
    printed = capsys.readouterr().out
    assert "correct long traces that fail once cut" in printed
    assert (out / "demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    steps = first["config"]["rl"]["steps"]
    assert set(first["curves"]) == {"grpo", "sas", "sas-failed"}
    for method in first["curves"]:
        curve = first["curves"][method]
        assert [r["step"] for r in curve] == list(range(steps + 1))
        for row in curve:
            assert 0.0 <= row["accuracy"] <= 1.0 and row["length"] > 0
    for run, summary in first["summary"].items():
        curve = first["curves"][run]
        assert summary["final_accuracy"] == curve[-1]["accuracy"]
        late = [r["accuracy"] for r in curve if r["step"] >= steps / 2]
        assert summary["late_accuracy_min"] == min(late)
        assert summary["late_accuracy_std"] >= 0.0
    audit = first["truncation_audit"]
    assert 0.0 <= audit["correct_long_failing_when_cut"] <= 1.0
    second, _ = _demo(tmp_path, "b")
    first.pop("seconds"), second.pop("seconds")
    assert first == second  # same seed, same numbers


def test_segment_command(capsys):
    assert main(["segment", "One.\n\nTwo.\n\n\nThree</think>\n\nafter"]) == 0
    steps = json.loads(capsys.readouterr().out)
    assert [s["step"] for s in steps] == [0, 1, 2, -1]
    assert re.sub(r"\s", "", steps[2]["text"]) == "Three"
