"""The design-3 reading's tables (``sas_core.demo.findings``) on saved units whose
answers are worked out by hand below."""

from __future__ import annotations

import json
import math

import pytest

from sas_core.demo import findings

ZERO_ROLES = {"careful": 0, "shortcut": 0, "hesitation": 0, "answer": 0, "other": 0}


def _row(step: int, pass1: float, by_terms: dict[str, float], entropy=None) -> dict:
    return {
        "step": step,
        "pass1_2L": pass1,
        "acc_L": 0.5,
        "length": 90.0,
        "pass1_by_terms": by_terms,
        "entropy": entropy,
    }


def _diag(zeroed_correct=None, all_correct=None, zeroed_failed=None, all_failed=None) -> dict:
    return {
        "zeroed_steps_correct": {**ZERO_ROLES, **(zeroed_correct or {})},
        "all_steps_correct": {**ZERO_ROLES, **(all_correct or {})},
        "zeroed_steps_failed": {**ZERO_ROLES, **(zeroed_failed or {})},
        "all_steps_failed": {**ZERO_ROLES, **(all_failed or {})},
    }


def _save(folder, arm: str, seed: int, curve: list[dict], early=None, late=None) -> None:
    runs = folder / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    unit = {
        "arm": arm,
        "seed": seed,
        "curve": curve,
        "diagnostics": {"early": early or _diag(), "late": late or _diag()},
    }
    (runs / f"seed{seed}-{arm}.json").write_text(json.dumps(unit))


@pytest.fixture
def folders(tmp_path):
    """grpo and sas on seeds 0-2 in one folder, a new arm in another (late = steps 10, 20)."""
    old, new = tmp_path / "old", tmp_path / "new"
    # grpo: late Pass@1 per seed 0.6, 0.5, 0.7; terms "5" step 0 0.5/0.7/0.6, late 0.7/0.5/0.6
    for seed, (p0, p10, p20), (t0, t10, t20) in (
        (0, (0.6, 0.5, 0.7), (0.5, 0.6, 0.8)),
        (1, (0.6, 0.4, 0.6), (0.7, 0.4, 0.6)),
        (2, (0.6, 0.7, 0.7), (0.6, 0.6, 0.6)),
    ):
        curve = [_row(0, p0, {"5": t0}), _row(10, p10, {"5": t10}, 0.2),
                 _row(20, p20, {"5": t20}, 0.1)]  # fmt: skip
        _save(old, "grpo", seed, curve)
    # sas: late means 0.7, 0.7, 1.0 -> sas - grpo = +0.1, +0.2, +0.3; zeros pooled below
    for seed, late in ((0, 0.7), (1, 0.7), (2, 1.0)):
        curve = [_row(0, 0.6, {"5": 0.6}), _row(10, late, {"5": 1.0}),
                 _row(20, late, {"5": 1.0})]  # fmt: skip
        _save(
            old,
            "sas",
            seed,
            curve,
            late=_diag(
                zeroed_correct={"careful": 1, "hesitation": 2},
                all_correct={"careful": 10, "hesitation": 2, "answer": 3},
                zeroed_failed={"answer": 1},
                all_failed={"careful": 4, "answer": 2},
            ),
        )
    # the new arm: late means 0.65, 0.45, 0.75 -> new - grpo = +0.05, -0.05, +0.05
    for seed, late in ((0, 0.65), (1, 0.45), (2, 0.75)):
        _save(new, "new", seed, [_row(0, 0.6, {"5": 0.6}), _row(10, late, {"5": 0.5}),
                                 _row(20, late, {"5": 0.5})])  # fmt: skip
    return old, new


def test_pass1_by_length_averages_step0_and_the_late_mean_over_seeds(folders):
    units = findings.load_units(*folders)
    table = findings.pass1_by_length(units)
    # grpo, 5 terms: step 0 (0.5 + 0.7 + 0.6) / 3; late ((0.6+0.8)/2 + (0.4+0.6)/2 + 0.6) / 3
    assert table["grpo"][5]["step0"] == pytest.approx(0.6)
    assert table["grpo"][5]["late"] == pytest.approx((0.7 + 0.5 + 0.6) / 3)
    assert table["sas"][5] == pytest.approx({"step0": 0.6, "late": 1.0})
    assert table["new"][5] == pytest.approx({"step0": 0.6, "late": 0.5})


def test_roles_pool_counts_over_seeds_and_skip_arms_that_zero_nothing(folders):
    table = findings.roles(findings.load_units(*folders))
    assert set(table) == {"sas"}  # grpo and the new arm zeroed no step
    correct = table["sas"]["late"]["correct"]
    # 3 seeds x (1 careful + 2 hesitation) zeroed = 9; careful 3 of 30 steps
    assert correct["careful"] == {"zeroed": 3, "steps": 30, "rate": 0.1, "share": 3 / 9}
    assert correct["hesitation"] == {"zeroed": 6, "steps": 6, "rate": 1.0, "share": 6 / 9}
    assert correct["answer"] == {"zeroed": 0, "steps": 9, "rate": 0.0, "share": 0.0}
    assert correct["shortcut"]["rate"] is None  # no shortcut step at all
    failed = table["sas"]["late"]["failed"]
    assert failed["answer"] == {"zeroed": 3, "steps": 6, "rate": 0.5, "share": 1.0}
    assert table["sas"]["early"]["correct"]["careful"]["share"] is None  # nothing zeroed


def test_detrended_spread_removes_the_line_and_binomial_spread():
    line = [_row(0, 0.1, {}), _row(10, 0.5, {}), _row(20, 0.6, {}), _row(30, 0.7, {})]
    assert findings.detrended_spread(line) == pytest.approx(0.0, abs=1e-12)
    # late = steps 20, 30, 40 (>= 40 / 2): y 0.5, 0.7, 0.6 around the line 0.6 + 0.005 (x - 30)
    bumpy = [_row(0, 0.1, {}), _row(20, 0.5, {}), _row(30, 0.7, {}), _row(40, 0.6, {})]
    assert findings.detrended_spread(bumpy) == pytest.approx(math.sqrt(0.005))
    assert findings.binomial_spread(0.5, 100) == pytest.approx(0.05)


def test_noise_g4_margin_and_spreads(folders):
    out = findings.noise(findings.load_units(*folders), samples=100)
    # grpo: last minus step 0 = +0.1, 0.0, +0.1
    g4 = out["g4_last_minus_step0"]
    assert g4["mean"] == pytest.approx(0.2 / 3)
    assert g4["se"] == pytest.approx(math.sqrt(1 / 300) / math.sqrt(3))
    grpo = out["arms"]["grpo"]
    assert grpo["late_pass1"] == pytest.approx(0.6)
    # late spreads (population sd of two points): 0.1, 0.1, 0.0
    assert grpo["late_spread"] == pytest.approx(0.2 / 3)
    assert grpo["binomial_spread"] == pytest.approx(math.sqrt(0.24 / 100))
    assert grpo["late_entropy"] == pytest.approx(0.15)
    assert out["arms"]["sas"]["late_entropy"] is None


def test_comparisons_pair_seeds_across_folders(folders):
    got = findings.comparisons(findings.load_units(*folders), ["new"], ["grpo", "sas"])
    half = 4.303 * 0.1 / math.sqrt(3)  # t(0.975, 2) x sd 0.1 / sqrt(3)
    sas_grpo = findings.comparisons(findings.load_units(*folders), ["sas"], ["grpo"])
    assert sas_grpo["sas - grpo"]["mean"] == pytest.approx(0.2)
    assert sas_grpo["sas - grpo"]["ci95"] == pytest.approx([0.2 - half, 0.2 + half])
    assert got["new - grpo"]["mean"] == pytest.approx(0.05 / 3)
    assert got["new - grpo"]["positive"] == 2
    # new - sas: -0.05, -0.25, -0.25
    assert got["new - sas"]["mean"] == pytest.approx(-0.55 / 3)
    assert got["new - sas"]["seeds"] == [0, 1, 2]


def test_markdown_and_cli(folders, capsys):
    old, new = folders
    assert findings.main([str(old), str(new), "--extension", "new", "--samples", "100"]) == 0
    text = capsys.readouterr().out
    assert "| new - grpo | 3 | +0.017 |" in text
    assert "| 5 | 0.60 -> 0.60 |" in text  # grpo's column comes first
    assert "| sas | late | correct | 33% (10%) |" in text
    assert "G4's margin (grpo, last minus step 0, 3 seeds): +0.067" in text
    assert findings.main([str(old), "--seeds", "0,1"]) == 0
    assert "3 seeds" not in capsys.readouterr().out


def test_a_unit_in_two_folders_is_refused(folders, tmp_path):
    old, _ = folders
    twin = tmp_path / "twin"
    (twin / "runs").mkdir(parents=True)
    (twin / "runs" / "seed1-grpo.json").write_text((old / "runs" / "seed1-grpo.json").read_text())
    with pytest.raises(ValueError, match="unit grpo seed 1 in both"):
        findings.load_units(old, twin)
    # FOLDER:arms reads only those arms, so the twin's grpo can stand in for old's
    units = findings.load_units(f"{old}:sas", twin)
    assert set(units) == {"sas", "grpo"} and set(units["grpo"]) == {1}


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--seeds", ""], "--seeds"),
        (["--seeds", "x"], "--seeds"),
        (["--seeds", "-1"], "--seeds"),
        (["--seeds", "0-"], "--seeds"),
        (["--seeds", "3-1,0"], "--seeds"),
        (["--samples", "0"], "--samples"),
        (["--samples", "-5"], "--samples"),
        (["--samples", "nan"], "--samples"),
        (["--samples", "inf"], "--samples"),
        (["--samples", "2.5"], "--samples"),
        (["--samples", "true"], "--samples"),
    ],
)
def test_cli_bad_options_are_one_line_naming_the_option(folders, capsys, extra, named):
    old, _ = folders
    with pytest.raises(SystemExit) as stop:
        findings.main([str(old), *extra])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and named in err


def test_cli_folder_without_units_is_one_line_naming_it(folders, tmp_path, capsys):
    old, _ = folders
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit) as stop:
        findings.main([str(old), str(empty)])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and f"{empty}: no runs/" in err
    with pytest.raises(ValueError, match="no runs/seed"):
        findings.load_units(tmp_path / "missing")


def test_cli_seed_ranges_as_the_demo_reads_them(folders, capsys):
    old, _ = folders
    assert findings.main([str(old), "--seeds", "0-1"]) == 0
    assert "G4's margin (grpo, last minus step 0, 2 seeds)" in capsys.readouterr().out
