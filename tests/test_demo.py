"""The demo: task ground truth, diagnostics against it, gates and verdict, and
`sas-core demo --quick` end to end (deterministic, plain progress lines in a pipe)."""

from __future__ import annotations

import json
import math
import random
import re
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

pytest.importorskip("trl")

import sas_core
from sas_core.cli import main
from sas_core.demo.diagnostics import RolloutRecorder, auc, confidence_auc, roles_of, token_steps
from sas_core.demo.task import (
    LABELS,
    Problem,
    Role,
    boxed_answer,
    is_correct,
    sample_problem,
    solution,
    step_truths,
    truncated_but_sound,
)
from sas_core.demo.tiny import build_tokenizer
from sas_core.demo.verdict import (
    design_checks,
    g4_gate,
    gates,
    paired,
    pilot_reading,
    summarize,
    t975,
    verdict,
)


def _steps(text: str) -> list[str]:
    return [s.strip() for s in text.split("\n\n")]


def test_solutions_are_blank_line_steps_with_known_roles():
    rng = random.Random(0)
    tok = build_tokenizer()
    seg = sas_core.StepSegmenter.from_tokenizer(tok)
    for _ in range(300):
        p = sample_problem(rng)
        text = solution(p, rng, shortcut=0.4, hesitation=0.4, shortcut_error=0.0)
        assert is_correct(text, p.answer)
        truths = step_truths(p, _steps(text))
        assert all(t.sound for t in truths)
        roles = Counter(t.role for t in truths)
        # every term but the first is added once: by a careful step or half a shortcut
        assert roles[Role.CAREFUL] + 2 * roles[Role.SHORTCUT] == p.terms - 1
        assert roles[Role.ANSWER] == 1 and roles[Role.OTHER] == 0
        assert roles[Role.HESITATION] == text.count("wait")
        # the tokenizer round-trips, and SAS's segmenter finds the same steps
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == text
        assert seg.segment(ids, [0, len(ids)]).max() + 1 == len(truths)


def test_wrong_shortcuts_make_the_rest_unsound():
    rng = random.Random(1)
    seen = 0
    for _ in range(200):
        p = sample_problem(rng, 4, 10)
        text = solution(p, rng, shortcut=1.0, hesitation=0.0, shortcut_error=1.0)
        truths = step_truths(p, _steps(text))
        first_bad = next(i for i, t in enumerate(truths) if t.role is Role.SHORTCUT)
        assert not truths[first_bad].sound
        assert not any(t.sound for t in truths[first_bad:])  # even when errors cancel
        seen += 1
    assert seen == 200


def test_step_truths_catch_wrong_label_operand_and_sum():
    p = Problem((3, 4, 2))
    assert [t.sound for t in step_truths(p, ["B 3+4=7", "C 7+2=9", "\\boxed{9}"])] == [1, 1, 1]
    assert not step_truths(p, ["C 3+4=7"])[0].sound  # wrong label
    assert not step_truths(p, ["B 3+5=8"])[0].sound  # wrong operand
    assert not step_truths(p, ["B 3+4=8"])[0].sound  # wrong sum
    assert not step_truths(p, ["B 3+4=7", "\\boxed{7}"])[1].sound  # answer before the end
    assert step_truths(p, ["wait, 8?"])[0].role is Role.HESITATION
    assert step_truths(p, ["B 3+4"])[0].role is Role.OTHER


def test_truncated_but_sound_labels():
    p = Problem((3, 4, 2, 5))
    full = "B 3+4=7\n\nwait, 6?\n\nC 7+2=9\n\nD 9+5=14\n\n\\boxed{14}"
    for cut in range(len(full)):
        prefix = full[:cut]
        complete = prefix.split("\n\n")[:-1]
        expected = bool(complete) and "\\boxed{14}" not in prefix
        assert truncated_but_sound(p, prefix, finished=False) == expected, prefix
    assert not truncated_but_sound(p, full, finished=True)
    wrong = "B 3+4=7\n\nC 7+2=10\n\nD 10+5=15\n\n\\bo"
    assert not truncated_but_sound(p, wrong, finished=False)
    assert truncated_but_sound(p, wrong[: wrong.index("C")], finished=False)


def test_token_steps_match_sas_segmentation():
    tok = build_tokenizer()
    seg = sas_core.StepSegmenter.from_tokenizer(tok)
    rng = random.Random(2)
    for _ in range(100):
        p = sample_problem(rng)
        text = solution(p, rng)
        cut = text[: rng.randint(1, len(text))] + "\n" * rng.randint(0, 3)
        ids = tok(cut, add_special_tokens=False)["input_ids"]
        chars = tok.convert_ids_to_tokens(ids)
        steps = seg.segment(ids, [0, len(ids)])
        spans = token_steps(chars)
        expected = np.concatenate([np.full(b - a, i) for i, (a, b) in enumerate(spans)])
        np.testing.assert_array_equal(steps, expected)


def test_auc_against_pairwise_count():
    rng = np.random.default_rng(0)
    for _ in range(50):
        neg = rng.integers(0, 5, rng.integers(1, 9)).tolist()
        pos = rng.integers(0, 5, rng.integers(1, 9)).tolist()
        pairs = [(1.0 if q > n else 0.5 if q == n else 0.0) for q in pos for n in neg]
        assert auc(neg, pos) == pytest.approx(sum(pairs) / len(pairs))
    assert auc([0.0], [1.0]) == 1.0 and auc([1.0], [0.0]) == 0.0
    assert math.isnan(auc([], [1.0]))


def test_confidence_auc_reads_roles_from_the_text():
    p = Problem((3, 4, 2))
    text = "B 3+4=7\n\nwait, 6?\n\nC 7+2=9\n\n\\boxed{9}"
    chars = list(text)
    spans = roles_of(p, chars)
    assert [r for _, _, r in spans] == [Role.CAREFUL, Role.HESITATION, Role.CAREFUL, Role.ANSWER]
    # hesitation tokens at -2, the rest at -0.1: perfectly separated
    lp = np.full(len(chars), -0.1)
    a, b, _ = spans[1]
    lp[a:b] = -2.0
    out = confidence_auc([p], [chars], [lp])
    assert out["auc"] == 1.0 and out["steps_hesitation"] == 1 and out["steps_careful"] == 2
    assert confidence_auc([p], [chars], [-lp])["auc"] == 0.0


def test_recorder_counts_against_hand_labels():
    p = Problem((3, 4, 2, 5))
    full = "B 3+4=7\n\nwait, 6?\n\nC 7+2=9\n\nD 9+5=14\n\n\\boxed{14}"
    texts = [
        full,  # correct
        full[:20],  # truncated, sound
        "B 3+4=8\n\nC 8+2=10\n\nD 1",  # truncated, unsound
        "B 3+4=7\n\n\\boxed{7}",  # finished, wrong
        "B 3+4=7\n\nC 7",  # an all-failed group: truncated, sound
        "B 3+4=7\n\nC 7",
    ]
    finished = [True, False, False, True, False, False]
    rec = RolloutRecorder(total_steps=10)
    rec.batch_outcomes(7, [p] * 6, texts, finished, group_size=4)
    late = rec.summary()["late"]
    assert late["rollouts"] == 6 and late["failed"] == 5
    assert late["truncated_share_of_failed"] == pytest.approx(4 / 5)
    assert late["truncated_sound_share_of_failed"] == pytest.approx(3 / 5)
    assert late["failed_in_mixed_groups"] == 3
    assert late["truncated_sound_share_of_failed_in_mixed_groups"] == pytest.approx(1 / 3)
    assert rec.summary()["early"]["rollouts"] == 0
    assert late["steps_per_rollout"] == pytest.approx((5 + 3 + 3 + 2 + 2 + 2) / 6)
    assert late["k_two_or_more_share"] == 0.0  # k = floor(0.3 n) >= 2 needs 7 steps

    chars = list(full)
    zeroed = np.zeros(len(chars), bool)
    a, _, _ = roles_of(p, chars)[1]
    zeroed[a + 1] = True  # one token of the hesitation step
    rec.batch_selection(2, [p], [chars], [zeroed], [True])
    early = rec.summary()["early"]
    assert early["zeroed_steps_correct"]["hesitation"] == 1
    assert sum(early["zeroed_steps_correct"].values()) == 1
    assert early["all_steps_correct"] == {
        "careful": 3, "shortcut": 0, "hesitation": 1, "answer": 1, "other": 0
    }  # fmt: skip


def test_design_check_d1_counts_rollouts_with_two_or_more_selected_steps():
    p = Problem((1, 1))
    texts = ["\n\n".join(["x"] * n) for n in (6, 7, 10)]  # k = 1, 2, 3
    rec = RolloutRecorder(total_steps=10)
    rec.batch_outcomes(1, [p] * 3, texts, [True] * 3, group_size=3)
    early = rec.summary()["early"]
    assert early["k_two_or_more_share"] == pytest.approx(2 / 3)
    assert early["steps_per_rollout"] == pytest.approx(23 / 3)
    # pooled over seeds and halves, weighted by rollouts; only the SAS arm counts
    other = RolloutRecorder(total_steps=10)
    other.batch_outcomes(8, [p], ["x"], [True], group_size=1)  # late: 1 step, k = 0
    d1 = design_checks(
        {"sas": {0: rec.summary(), 1: other.summary()}, "grpo": {0: other.summary()}}
    )["D1"]
    assert d1["value"] == pytest.approx(2 / 4) and d1["passed"] is True
    assert d1["steps_per_rollout"] == pytest.approx((23 + 1) / 4)
    assert design_checks({})["D1"]["passed"] is None


def _t_cdf(t: float, df: int) -> float:
    """Student's t CDF for t > 0 via the regularised incomplete beta function."""
    mpmath = pytest.importorskip("mpmath")  # installed with sympy (math-verify)
    x = df / (df + t * t)
    return float(1 - 0.5 * mpmath.betainc(df / 2, 0.5, 0, x, regularized=True))


def test_paired_interval_uses_student_t():
    for df in range(1, 31):
        assert _t_cdf(t975(df), df) == pytest.approx(0.975, abs=5e-5)  # 3-decimal table
    rng = np.random.default_rng(3)
    d = rng.normal(0.01, 0.02, 10).tolist()
    out = paired(d)
    half = 2.2621571628 * np.std(d, ddof=1) / np.sqrt(10)  # t(0.975, 9)
    assert out["ci95"] == pytest.approx([np.mean(d) - half, np.mean(d) + half], abs=1e-4)
    assert out["positive"] == sum(x > 0 for x in d)


def _curve(values, length=50.0):
    return [
        {"step": 10 * i, "pass1_2L": v, "acc_L": v / 2, "length": length, "entropy": 0.5}
        for i, v in enumerate(values)
    ]


def test_summary_uses_the_second_half():
    s = summarize(_curve([0.1, 0.2, 0.3, 0.4, 0.5]))  # steps 0..40: late = 20, 30, 40
    assert s["late_pass1_mean"] == pytest.approx(0.4)
    assert s["late_pass1_min"] == pytest.approx(0.3)
    assert s["final_pass1"] == 0.5
    assert s["late_pass1_std"] == pytest.approx(np.std([0.3, 0.4, 0.5]))


def _runs(delta, seeds=10, noise=0.01, ablation=-0.05):
    rng = np.random.default_rng(0)
    runs = {"grpo": {}, "sas": {}, "grpo-2L": {}}
    for abl in ("sas-correct", "sas-random", "sas-token"):
        runs[abl] = {}
    for s in range(seeds):
        base = 0.5 + 0.1 * rng.random()
        runs["grpo"][s] = summarize(_curve([base] * 5))
        runs["sas"][s] = summarize(_curve([base + delta + noise * rng.standard_normal()] * 5))
        runs["grpo-2L"][s] = summarize(_curve([base + 0.1] * 5))
        for abl in ("sas-correct", "sas-random", "sas-token"):
            runs[abl][s] = summarize(_curve([base + delta + ablation] * 5))
    return runs


def _gates(passed=True):
    g = {"value": 1.0, "threshold": 0.5, "passed": passed}
    return {"G1": g, "G2": g, "G3": g, "G4": g}


def test_d2_gate_on_synthetic_curves():
    # grpo-2L starts at 0.6 on both seeds; late (steps 20-40) means 0.58 and 0.56.
    runs = {"grpo-2L": {0: summarize(_curve([0.6, 0.7, 0.6, 0.56, 0.58])),
                        1: summarize(_curve([0.6, 0.6, 0.55, 0.56, 0.57]))}}  # fmt: skip
    d2 = design_checks({}, runs)["D2"]
    assert d2["step0"] == pytest.approx(0.6)
    assert d2["late_mean"] == pytest.approx((0.58 + 0.56) / 2)
    assert d2["value"] == pytest.approx(-0.03) and d2["passed"] is True  # at the bound
    worse = {"grpo-2L": {0: summarize(_curve([0.6, 0.5, 0.5, 0.5, 0.5]))}}
    assert design_checks({}, worse)["D2"]["passed"] is False
    assert design_checks({}, {})["D2"]["passed"] is None


def test_g4_gate_on_synthetic_curves():
    # Seed-mean curve 0.5, 0.6, 0.55, 0.5, 0.45: rises to 0.6 at step 10, late mean
    # (steps 20-40) 0.5 sits below it.
    a, b = [0.5, 0.7, 0.6, 0.5, 0.4], [0.5, 0.5, 0.5, 0.5, 0.5]
    curves = {"grpo": {0: _curve(a), 1: _curve(b)}}
    runs = {"grpo": {s: summarize(c) for s, c in curves["grpo"].items()}}
    g4 = g4_gate(curves, runs)
    assert g4["step0"] == pytest.approx(0.5) and g4["peak"] == pytest.approx(0.6)
    assert g4["peak_step"] == 10 and g4["late_mean"] == pytest.approx(0.5)
    assert g4["value"] == pytest.approx(0.1) and g4["passed"] is True
    # Never above step 0: fails, whatever the spread.
    flat = {"grpo": {0: _curve([0.6, 0.5, 0.4, 0.5, 0.6])}}
    runs_flat = {"grpo": {0: summarize(flat["grpo"][0])}}
    assert g4_gate(flat, runs_flat)["passed"] is False
    # Rises, and the late mean sits at the peak (0.7): passes only when GRPO at L is
    # noisier late than GRPO-2L.
    up = {"grpo": {0: _curve([0.5, 0.6, 0.8, 0.6, 0.7]), 1: _curve([0.5, 0.6, 0.6, 0.8, 0.7])}}
    runs_up = {
        "grpo": {s: summarize(c) for s, c in up["grpo"].items()},
        "grpo-2L": {s: summarize(_curve([0.5, 0.6, 0.7, 0.7, 0.7])) for s in (0, 1)},
    }
    g4 = g4_gate(up, runs_up)
    assert g4["peak"] == pytest.approx(0.7) and g4["late_mean"] == pytest.approx(0.7)
    assert g4["late_std_grpo"] > 0 == g4["late_std_grpo_2L"] and g4["passed"] is True
    runs_up["grpo-2L"] = {s: summarize(_curve([0.5, 0.9, 0.5, 0.9, 0.5])) for s in (0, 1)}
    assert g4_gate(up, runs_up)["passed"] is False  # GRPO-2L noisier: no phenomenon


def test_d2_and_g4_count_in_the_verdict():
    runs = _runs(0.05)
    assert verdict(_gates(), runs, {"D2": {"passed": True}})["reading"] == "reproduces"
    assert verdict(_gates(), runs, {"D2": {"passed": False}})["reading"] == "inconclusive"
    failed_g4 = {**_gates(), "G4": {"value": 0.0, "threshold": 0.0, "passed": False}}
    assert verdict(failed_g4, runs)["reading"] == "inconclusive"


def test_verdict_readings():
    assert verdict(_gates(), _runs(0.05))["reading"] == "reproduces"
    assert verdict(_gates(), _runs(-0.05))["reading"] == "refutes"
    assert verdict(_gates(), _runs(0.0, noise=0.001))["reading"] == "refutes"  # small upper
    assert verdict(_gates(), _runs(0.0, noise=0.1))["reading"] == "inconclusive"
    assert verdict(_gates(False), _runs(0.05))["reading"] == "inconclusive"
    assert verdict(_gates(), _runs(0.05, ablation=0.01))["reading"] == "inconclusive"
    assert verdict(_gates(), _runs(0.05, seeds=5))["reading"].startswith("not judged")


def test_gates_from_units():
    audits = {0: {"confidence_auc": 0.9}, 1: {"confidence_auc": 0.7}}
    late = {"failed_in_mixed_groups": 10, "truncated_sound_share_of_failed_in_mixed_groups": 0.2}
    diags = {"grpo": {0: {"late": late}, 1: {"late": {**late, "failed_in_mixed_groups": 30,
             "truncated_sound_share_of_failed_in_mixed_groups": 0.0}}}}  # fmt: skip
    g = gates(audits, _runs(0.0, seeds=2), diags)
    assert g["G1"]["value"] == pytest.approx(0.8) and g["G1"]["passed"] is True
    assert g["G2"]["value"] == pytest.approx(2 / 40) and g["G2"]["passed"] is False
    assert g["G3"]["value"] == pytest.approx(0.1) and g["G3"]["passed"] is True
    no_2l = {k: v for k, v in _runs(0.0, seeds=2).items() if k != "grpo-2L"}
    assert gates(audits, no_2l, diags)["G3"]["passed"] is None


def test_pilot_reading_is_reproducible_from_saved_curves(tmp_path, monkeypatch):
    """The pilot's go / no-go is a function of its saved units: rebuilt from the curves
    on disk it equals what demo.json says (at its horizon and cut at the shorter one),
    and it never reads a SAS arm."""
    from sas_core.demo import run as demo_run

    monkeypatch.setattr(demo_run, "PILOT_SHORT_HORIZON", 2)  # quick runs have 4 steps
    out = tmp_path / "pilot"
    assert main(["demo", "--quick", "--pilot", "--no-progress", "--out", str(out)]) == 0
    demo_json = json.loads((out / "demo.json").read_text())
    assert set(demo_json["curves"]) == {"grpo", "grpo-2L"}
    assert sorted(demo_json["curves"]["grpo"]) == ["100", "101"]
    units = {}
    for path in sorted((out / "runs").glob("*.json")):
        unit = json.loads(path.read_text())
        units.setdefault(unit["arm"], {})[unit["seed"]] = unit
    audit = json.loads((out / "bases" / "seed100.json").read_text())
    diags = {a: {s: u["diagnostics"] for s, u in by.items()} for a, by in units.items()}
    for key, horizon in (("pilot", 4), ("pilot_cut", 2)):
        curves = {
            a: {s: [r for r in u["curve"] if r["step"] <= horizon] for s, u in by.items()}
            for a, by in units.items()
        }
        runs = {a: {s: summarize(c) for s, c in by.items()} for a, by in curves.items()}
        again = pilot_reading(gates({100: audit}, runs, diags, curves), design_checks(diags, runs))
        saved = json.loads(json.dumps(demo_json[key]))
        assert saved.pop("steps") == horizon
        assert again == saved
        assert set(again["reads"]) == {"G2", "G3", "G4", "D2"}
        assert again["go"] is (not again["failed"])


def _demo(tmp_path, name, *extra):
    out = tmp_path / name
    assert main(["demo", "--quick", "--no-progress", "--out", str(out), *extra]) == 0
    return json.loads((out / "demo.json").read_text()), out


def test_quick_demo_end_to_end_and_deterministic(tmp_path, capsys):
    first, out = _demo(tmp_path, "a")
    printed = capsys.readouterr().out
    assert "validity gates" in printed and "verdict: not judged" in printed
    for png in ("demo.png", "diagnostics.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(first["gates"]) == {"G1", "G2", "G3", "G4"}
    assert set(first["design_checks"]) == {"D1", "D2"}
    assert first["design_checks"]["D2"]["passed"] is None  # no grpo-2L arm
    # The precision and reward the trainers ran with, read back from their arguments.
    training = first["training"]
    assert training["precision"] == "fp32" and training["reward_needs_eos"] is True
    assert set(training["trainer_args"]) == {"seed0-grpo", "seed0-sas"}
    for args in training["trainer_args"].values():
        assert args["bf16"] is False and args["fp16"] is False
        assert args["learning_rate"] == training["learning_rate"] == 3e-5
        assert args["reward"] == "sas_core.demo.rl.ended_accuracy.<locals>.accuracy"
        assert args["mask_truncated_completions"] is False
    assert training["trainer_args"]["seed0-grpo"]["sas_mode"] is None
    assert training["trainer_args"]["seed0-sas"]["sas_mode"] == "both"
    assert "trained in fp32 at lr 3e-05" in printed
    for name in ("G1", "G2"):
        g = first["gates"][name]
        assert isinstance(g["threshold"], float)
        if g["value"] is None:  # the seconds-long model may sample no step of a kind
            assert g["passed"] is None
        else:
            assert g["passed"] is (g["value"] >= g["threshold"])
    assert first["gates"]["G3"]["passed"] is None  # no grpo-2L arm in the default run
    d1 = first["design_checks"]["D1"]
    assert 0.0 <= d1["value"] <= 1.0 and d1["passed"] is (d1["value"] >= 0.5)
    env = first["environment"]
    for key in ("torch", "trl", "transformers", "sas_core", "python", "cpu", "threads_per_process"):
        assert env[key]
    import torch

    # the quick run warms up inline, in this process's torch threads
    assert first["base_audits"]["0"]["threads"] == torch.get_num_threads()
    cfg = first["config"]
    assert set(first["curves"]) == {"grpo", "sas"}
    for arm, by_seed in first["curves"].items():
        curve = by_seed["0"]
        assert [r["step"] for r in curve] == list(range(0, cfg["rl"]["steps"] + 1, 2))
        for row in curve:
            assert 0.0 <= row["acc_L"] <= row["pass1_2L"] <= 1.0
            assert 0 < row["length"] <= 2 * cfg["rl"]["limit"]
        summary = first["summary"][arm]["0"]
        assert summary["final_pass1"] == curve[-1]["pass1_2L"]
    sas = first["diagnostics"]["sas"]["0"]
    for ph in ("early", "late"):
        for outcome in ("correct", "failed"):
            z, a = sas[ph][f"zeroed_steps_{outcome}"], sas[ph][f"all_steps_{outcome}"]
            assert all(z[r] <= a[r] for r in z)
    assert first["diagnostics"]["sas"]["0"]["early"]["rollouts"] > 0
    second, _ = _demo(tmp_path, "b")
    for r in (first, second):
        r.pop("seconds")
        for unit in r["base_audits"].values():
            unit.pop("seconds")
    assert first == second  # same seed, same numbers


def test_extension_arms_configure_the_trainers_as_named(tmp_path):
    """design 3's extension: grpo-masktrunc runs TRL's GRPOTrainer with
    mask_truncated_completions on; sas-failed runs SAS with zeros only in failed
    rollouts. Both read back from the trainers' own arguments."""
    result, _ = _demo(tmp_path, "ext", "--arms", "sas-failed", "grpo-masktrunc")
    args = result["training"]["trainer_args"]
    assert args["seed0-grpo-masktrunc"]["mask_truncated_completions"] is True
    assert args["seed0-grpo-masktrunc"]["sas_mode"] is None
    assert args["seed0-sas-failed"]["mask_truncated_completions"] is False
    assert args["seed0-sas-failed"]["sas_mode"] == "failed"
    assert {"sas-failed - grpo", "grpo-masktrunc - grpo"} <= set(result["comparisons"])


def test_demo_resumes_from_units_on_disk(tmp_path):
    first, out = _demo(tmp_path, "a")
    unit = out / "runs" / "seed0-sas.json"
    stamp = unit.stat().st_mtime_ns
    second, _ = _demo(tmp_path, "a")
    assert unit.stat().st_mtime_ns == stamp  # not rerun
    assert second["summary"] == first["summary"]


def test_quick_demo_prints_plain_progress_lines_to_a_pipe(tmp_path):
    out = tmp_path / "pipe"
    proc = subprocess.run(
        [sys.executable, "-m", "sas_core.cli", "demo", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert any(re.match(r"^\[\s*\d+s\] seed 0 warm-up: step \d+/20", ln) for ln in lines)
    assert any(re.match(r"^\[\s*\d+s\] seed 0 sas: step \d+/4  Pass@1 at 2L", ln) for ln in lines)
    assert any(ln.endswith("seed 0 grpo: done") for ln in lines)
    assert "\x1b[" not in proc.stdout.split("validity gates")[0]  # no terminal bars
    assert "Warning" not in proc.stderr


def test_verifier():
    assert boxed_answer("a\n\n\\boxed{12}") == "12"
    assert boxed_answer("\\boxed{1} then \\boxed{ 7 }") == "7"
    assert boxed_answer("no box") is None
    assert not is_correct("B 3+4=7\n\nC 7+2=9\n\n\\boxed{", 9)  # cut before the answer
    assert Problem((3, 4, 2)).prompt == "A3B4C2=" and Problem((3, 4, 2)).answer == 9
    assert LABELS.startswith("ABC")


def test_segment_command(capsys):
    assert main(["segment", "One.\n\nTwo.\n\n\nThree</think>\n\nafter"]) == 0
    steps = json.loads(capsys.readouterr().out)
    assert [s["step"] for s in steps] == [0, 1, 2, -1]
    assert re.sub(r"\s", "", steps[2]["text"]) == "Three"


def test_default_demo_runs_design_3_for_the_default_steps_and_the_rest_as_configured():
    import argparse

    from sas_core.demo.arms import DEFAULT_DEMO_STEPS, RLConfig
    from sas_core.demo.console import add_arguments, config_from

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    default = config_from(parser.parse_args([]))
    assert default.arms == ["grpo", "sas"] and default.seeds == [0]
    assert default.rl.steps == DEFAULT_DEMO_STEPS < RLConfig().steps
    rl = default.rl
    assert (rl.learning_rate, rl.prompts_per_step, rl.precision, rl.reward_needs_eos) == (
        3e-5,
        8,
        "fp32",
        True,
    )
    full = config_from(parser.parse_args(["--full", "--seeds", "0-9"]))
    assert full.rl.steps == RLConfig().steps
    assert config_from(parser.parse_args(["--steps", "7"])).rl.steps == 7
    pilot = config_from(parser.parse_args(["--pilot"]))
    assert pilot.seeds == [100, 101] and set(pilot.arms) == {"grpo", "grpo-2L"}
    assert pilot.rl.steps == RLConfig().steps
