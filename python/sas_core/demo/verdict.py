"""Summaries, validity gates, paired statistics over seeds, and the pre-registered verdict.

Everything here was fixed (and written in the README) before the multi-seed run:

- Primary metric: the second-half mean of sampled Pass@1 at 2L (evaluations at steps
  >= half the budget), per run.
- Gates, checked before any comparison: G1 step-confidence AUC (necessary vs redundant
  steps) of the warmed-up policy >= 0.8 (mean over seeds); G2 truncated-but-sound
  rollouts >= 10% of the failed rollouts in mixed groups (the ones GRPO pushes down) in
  the second half of GRPO training (pooled over seeds); G3 GRPO trained at L is worse
  (mean paired difference of the primary metric, GRPO-2L minus GRPO, > 0) or less stable
  (higher mean late spread) at 2L than GRPO trained at 2L.
- Design 3 adds two gates (a failed one also gives "inconclusive"): D2 GRPO-2L does not
  degrade (its late Pass@1 at 2L, mean over seeds, >= its step-0 value - 0.03); G4 GRPO
  at L shows the paper's phenomenon: the seed-mean Pass@1 at 2L rises above its step-0
  value at some evaluation, and its late mean sits below that peak or its late spread is
  higher than GRPO-2L's. D1 stays a design check outside the verdict.
- "reproduces": every gate passes, the 95% CI of SAS minus GRPO (paired over >= 10
  seeds) lies above 0, SAS's late spread is not higher than GRPO's, its late length is
  within +10% of GRPO's, and SAS is above the only-correct, random and token ablations
  (mean paired difference > 0).
- "refutes": every gate passes and the CI lies below 0, or straddles 0 with an upper
  bound below +0.02 (an effect the size of the paper's +2.2 points is excluded).
- Otherwise "inconclusive" (a failed gate always gives "inconclusive").
"""

from __future__ import annotations

import math
from statistics import mean, stdev

G1_AUC = 0.8
G2_SHARE = 0.10
D1_SHARE = 0.5  # design check: most SAS training rollouts have k = floor(0.3 n) >= 2
D2_DROP = -0.03  # GRPO-2L's late Pass@1 minus its step-0 value must be at least this
REFUTE_UPPER = 0.02
LENGTH_TOLERANCE = 1.10
MIN_PRIMARY_SEEDS = 10
ABLATIONS_ABOVE = ("sas-correct", "sas-random", "sas-token")

# Two-sided 95% quantiles of Student's t, df 1..30 (beyond: 1.96 is within 2%).
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
         2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
         2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]  # fmt: skip


def t975(df: int) -> float:
    return _T975[df - 1] if df <= len(_T975) else 1.96


def late_evaluations(curve: list[dict]) -> list[dict]:
    """The "late" evaluations the primary metric averages: steps >= half the budget."""
    last = curve[-1]["step"]
    return [r for r in curve if r["step"] >= last / 2 and r["step"] > 0]


def summarize(curve: list[dict]) -> dict:
    """Per-run figures over :func:`late_evaluations`."""
    late = late_evaluations(curve)
    p = [r["pass1_2L"] for r in late]
    m = mean(p)
    first = curve[0]["pass1_2L"] if curve[0]["step"] == 0 else None
    return {
        "step0_pass1": first,
        "late_pass1_mean": m,
        "late_pass1_std": math.sqrt(sum((x - m) ** 2 for x in p) / len(p)),
        "late_pass1_min": min(p),
        "final_pass1": curve[-1]["pass1_2L"],
        "late_acc_L_mean": mean(r["acc_L"] for r in late),
        "late_length_mean": mean(r["length"] for r in late),
        "final_length": curve[-1]["length"],
        "late_entropy_mean": mean_or_none([r.get("entropy") for r in late]),
        "late_clip_ratio_mean": mean_or_none([r.get("clip_ratio") for r in late]),
    }


def mean_or_none(values) -> float | None:
    values = [v for v in values if v is not None]
    return mean(values) if values else None


def paired(diffs: list[float]) -> dict:
    """Mean of paired differences with a 95% t-interval over seeds."""
    n = len(diffs)
    m = mean(diffs) if diffs else float("nan")
    if n < 2:
        return {"n": n, "mean": m, "ci95": [None, None], "positive": sum(d > 0 for d in diffs)}
    half = t975(n - 1) * stdev(diffs) / math.sqrt(n)
    return {
        "n": n,
        "mean": m,
        "ci95": [m - half, m + half],
        "positive": sum(d > 0 for d in diffs),
    }


def paired_metric(runs: dict, a: str, b: str, key: str = "late_pass1_mean") -> dict:
    """``a`` minus ``b`` over the seeds where both ran; ``runs[arm][seed]`` = summary."""
    seeds = sorted(set(runs.get(a, {})) & set(runs.get(b, {})))
    out = paired([runs[a][s][key] - runs[b][s][key] for s in seeds])
    out["seeds"] = seeds
    return out


def _gate(value: float | None, threshold: float, passed: bool | None) -> dict:
    return {"value": value, "threshold": threshold, "passed": passed}


def mean_curve(by_seed: dict) -> list[tuple[int, float]]:
    """(step, mean Pass@1 at 2L over seeds) at the evaluations every seed made."""
    steps = sorted(set.intersection(*({r["step"] for r in c} for c in by_seed.values())))
    rows = [{r["step"]: r["pass1_2L"] for r in c} for c in by_seed.values()]
    return [(t, mean(row[t] for row in rows)) for t in steps]


def g4_gate(curves: dict, runs: dict) -> dict:
    """G4: GRPO at L rises above its step-0 Pass@1 at 2L at some evaluation (seed-mean
    curve), and then its late mean sits below that peak or its late spread is higher
    than GRPO-2L's (mean over the seeds both ran). The value is the rise, peak minus
    step 0."""
    by_seed = curves.get("grpo") or {}
    points = mean_curve(by_seed) if by_seed else []
    if not points or points[0][0] != 0 or len(points) < 2:
        out = _gate(None, 0.0, None)
        out["note"] = "needs grpo curves with a step-0 evaluation"
        return out
    step0 = points[0][1]
    peak_step, peak = max(points[1:], key=lambda p: p[1])
    late = mean(runs["grpo"][s]["late_pass1_mean"] for s in by_seed)
    std_l = std_2l = None
    if runs.get("grpo-2L"):
        seeds = sorted(set(runs["grpo"]) & set(runs["grpo-2L"]))
        if seeds:
            std_l = mean(runs["grpo"][s]["late_pass1_std"] for s in seeds)
            std_2l = mean(runs["grpo-2L"][s]["late_pass1_std"] for s in seeds)
    rises = peak > step0
    falls_back = late < peak
    noisier = std_l is not None and std_l > std_2l
    out = _gate(peak - step0, 0.0, rises and (falls_back or noisier))
    out.update(
        step0=step0,
        peak=peak,
        peak_step=peak_step,
        late_mean=late,
        late_std_grpo=std_l,
        late_std_grpo_2L=std_2l,
        seeds=len(by_seed),
    )
    return out


def d2_check(runs: dict) -> dict:
    """D2: GRPO trained at 2L does not degrade: its late Pass@1 at 2L minus its step-0
    value (means over seeds) >= -0.03."""
    by_seed = {s: r for s, r in (runs.get("grpo-2L") or {}).items() if r["step0_pass1"] is not None}
    if not by_seed:
        out = _gate(None, D2_DROP, None)
        out["note"] = "needs the grpo-2L arm with a step-0 evaluation"
        return out
    step0 = mean(r["step0_pass1"] for r in by_seed.values())
    late = mean(r["late_pass1_mean"] for r in by_seed.values())
    out = _gate(late - step0, D2_DROP, late - step0 >= D2_DROP)
    out.update(step0=step0, late_mean=late, seeds=len(by_seed))
    return out


def gates(base_audits: dict, runs: dict, diagnostics: dict, curves: dict | None = None) -> dict:
    """G1-G4 from what the seeds produced; a gate whose arm is missing is None."""
    aucs = [
        a["confidence_auc"]
        for a in base_audits.values()
        if a["confidence_auc"] == a["confidence_auc"]
    ]
    g1 = mean(aucs) if aucs else None
    failed = sound = 0
    for d in diagnostics.get("grpo", {}).values():
        failed += d["late"]["failed_in_mixed_groups"]
        share = d["late"]["truncated_sound_share_of_failed_in_mixed_groups"] or 0.0
        sound += share * d["late"]["failed_in_mixed_groups"]
    g2 = sound / failed if failed else None
    if runs.get("grpo-2L") and runs.get("grpo"):
        diff = paired_metric(runs, "grpo-2L", "grpo")
        seeds = diff["seeds"]
        std_l = mean(runs["grpo"][s]["late_pass1_std"] for s in seeds)
        std_2l = mean(runs["grpo-2L"][s]["late_pass1_std"] for s in seeds)
        g3 = _gate(diff["mean"], 0.0, diff["mean"] > 0 or std_l > std_2l)
        g3["late_std_grpo"], g3["late_std_grpo_2L"], g3["seeds"] = std_l, std_2l, len(seeds)
    else:
        g3 = _gate(None, 0.0, None)
        g3["note"] = "needs the grpo-2L arm (sas-core demo --full)"
    return {
        "G1": _gate(g1, G1_AUC, None if g1 is None else g1 >= G1_AUC),
        "G2": _gate(g2, G2_SHARE, None if g2 is None else g2 >= G2_SHARE),
        "G3": g3,
        "G4": g4_gate(curves or {}, runs),
    }


def design_checks(diagnostics: dict, runs: dict | None = None) -> dict:
    """D1 (reported beside the gates, not part of the verdict): the share of the SAS
    arm's training rollouts, all seeds and the whole run, with k = floor(0.3 n) >= 2,
    and their mean steps."""
    rollouts = steps = two = 0.0
    for d in diagnostics.get("sas", {}).values():
        for ph in ("early", "late"):
            n = d[ph]["rollouts"]
            if n and d[ph].get("k_two_or_more_share") is not None:
                rollouts += n
                steps += d[ph]["steps_per_rollout"] * n
                two += d[ph]["k_two_or_more_share"] * n
    share = two / rollouts if rollouts else None
    d1 = _gate(share, D1_SHARE, None if share is None else share >= D1_SHARE)
    d1["steps_per_rollout"] = steps / rollouts if rollouts else None
    return {"D1": d1, "D2": d2_check(runs or {})}


# Design checks whose failure makes the verdict inconclusive, as a failed gate does.
VERDICT_CHECKS = ("D2",)


def verdict(gate_results: dict, runs: dict, checks: dict | None = None) -> dict:
    """The pre-registered reading (see the module doc)."""
    primary = paired_metric(runs, "sas", "grpo")
    out = {"primary": primary, "criteria": {}}
    if primary["n"] < MIN_PRIMARY_SEEDS:
        out["reading"] = (
            f"not judged: {primary['n']} paired seeds, the verdict needs {MIN_PRIMARY_SEEDS}"
        )
        return out
    gates_ok = all(g["passed"] for g in gate_results.values()) and all(
        (checks or {}).get(name, {"passed": True})["passed"] for name in VERDICT_CHECKS
    )
    lo, hi = primary["ci95"]
    seeds = primary["seeds"]
    std_sas = mean(runs["sas"][s]["late_pass1_std"] for s in seeds)
    std_grpo = mean(runs["grpo"][s]["late_pass1_std"] for s in seeds)
    len_sas = mean(runs["sas"][s]["late_length_mean"] for s in seeds)
    len_grpo = mean(runs["grpo"][s]["late_length_mean"] for s in seeds)
    above = {
        abl: paired_metric(runs, "sas", abl)["mean"] > 0 if runs.get(abl) else None
        for abl in ABLATIONS_ABOVE
    }
    crit = {
        "gates_pass": gates_ok,
        "ci_above_0": lo > 0,
        "spread_not_higher": std_sas <= std_grpo,
        "length_within_10pct": len_sas <= LENGTH_TOLERANCE * len_grpo,
        "above_ablations": above,
        "ci_below_0": hi < 0,
        "ci_upper_below_refute_bound": hi < REFUTE_UPPER,
    }
    out["criteria"] = crit
    if (
        gates_ok
        and lo > 0
        and crit["spread_not_higher"]
        and crit["length_within_10pct"]
        and all(v is True for v in above.values())
    ):
        out["reading"] = "reproduces"
    elif gates_ok and (hi < 0 or (lo <= 0 <= hi and hi < REFUTE_UPPER)):
        out["reading"] = "refutes"
    else:
        out["reading"] = "inconclusive"
    return out


# What the pilot (grpo and grpo-2L only, on seeds disjoint from the result seeds) reads:
# the gates that need no SAS run. Any of them failing means the multi-seed run is not
# spent on this regime.
PILOT_READS = ("G2", "G3", "G4", "D2")


def pilot_reading(gate_results: dict, checks: dict) -> dict:
    """Go / no-go for the multi-seed run from the pilot's gates (never from SAS)."""
    read = {name: (gate_results.get(name) or checks.get(name)) for name in PILOT_READS}
    failed = [name for name, g in read.items() if g is None or g["passed"] is not True]
    return {"reads": read, "failed": failed, "go": not failed}
