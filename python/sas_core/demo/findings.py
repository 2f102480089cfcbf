"""Where the gain comes from, read from saved units: the tables the README's design-3
reading quotes, recomputed from ``runs/seed{N}-{arm}.json`` files alone.

- Pass@1 at 2L by chain length, per arm (step 0 and the late mean, averaged over seeds);
- which steps SAS zeroed, by step role (careful, shortcut, hesitation, answer, and
  ``other``: text the task's roles do not cover), in correct rollouts and in failed ones
  (the shield), early and late, pooled over seeds: each role's share of the zeroed
  steps and the rate at which that role's steps were zeroed;
- the noise the design-3 reading sets its figures against: G4's margin and its standard
  error over seeds, each arm's late spread with and without its linear trend, and the
  binomial spread of one evaluation (50 problems x 4 samples);
- the paired differences of an exploratory extension, against chosen arms.

``python -m sas_core.demo.findings FOLDER[:arm,arm] ...`` prints them as Markdown; a unit
found in two folders is an error (nothing is silently preferred).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from statistics import mean, stdev

from sas_core._cli_args import COUNT, OneLineParser
from sas_core.demo.console import parse_seeds
from sas_core.demo.verdict import late_evaluations, mean_or_none, paired_metric, summarize

ROLES = ("careful", "shortcut", "hesitation", "answer", "other")
PHASES = ("early", "late")
OUTCOMES = ("correct", "failed")

Units = dict[str, dict[int, dict]]  # arm -> seed -> the saved unit


def load_units(*folders: Path | str) -> Units:
    """Every ``runs/seed{N}-{arm}.json`` under the folders; a folder written
    ``FOLDER:arm,arm`` gives only those arms. A folder without units, or the same (arm,
    seed) twice, is a ValueError naming the folder or both files."""
    units: Units = {}
    where: dict[tuple[str, int], Path] = {}
    for spec in folders:
        folder, _, only = str(spec).partition(":")
        arms = set(only.split(",")) if only else None
        paths = sorted(Path(folder).glob("runs/seed*-*.json"))
        if not paths:
            raise ValueError(f"{folder}: no runs/seed*-*.json units")
        for path in paths:
            unit = json.loads(path.read_text())
            if arms is not None and unit["arm"] not in arms:
                continue
            key = (unit["arm"], int(unit["seed"]))
            if key in where:
                raise ValueError(f"unit {key[0]} seed {key[1]} in both {where[key]} and {path}")
            where[key] = path
            units.setdefault(key[0], {})[key[1]] = unit
    return units


def pass1_by_length(units: Units) -> dict[str, dict[int, dict[str, float]]]:
    """``{arm: {terms: {"step0": .., "late": ..}}}``: Pass@1 at 2L on the held-out
    problems of each chain length, at step 0 and as the late mean, averaged over seeds."""
    out: dict[str, dict[int, dict[str, float]]] = {}
    for arm, by_seed in units.items():
        terms = sorted({int(t) for u in by_seed.values() for t in u["curve"][0]["pass1_by_terms"]})
        out[arm] = {}
        for t in terms:
            step0 = [u["curve"][0]["pass1_by_terms"][str(t)] for u in by_seed.values()]
            late = [
                mean(r["pass1_by_terms"][str(t)] for r in late_evaluations(u["curve"]))
                for u in by_seed.values()
            ]
            out[arm][t] = {"step0": mean(step0), "late": mean(late)}
    return out


def roles(units: Units) -> dict[str, dict[str, dict[str, dict[str, dict[str, float]]]]]:
    """``{arm: {phase: {outcome: {role: {"zeroed", "steps", "rate", "share"}}}}}`` for
    the arms that zeroed any step, counts pooled over seeds. ``rate`` = zeroed / steps of
    that role; ``share`` = the role's part of all zeroed steps of that outcome.
    """
    out: dict = {}
    for arm, by_seed in units.items():
        pooled: dict = {}
        for phase in PHASES:
            pooled[phase] = {}
            for outcome in OUTCOMES:
                zeroed: dict[str, int] = {}
                steps: dict[str, int] = {}
                for unit in by_seed.values():
                    diag = unit["diagnostics"][phase]
                    for role, n in diag[f"zeroed_steps_{outcome}"].items():
                        zeroed[role] = zeroed.get(role, 0) + n
                    for role, n in diag[f"all_steps_{outcome}"].items():
                        steps[role] = steps.get(role, 0) + n
                total = sum(zeroed.values())
                pooled[phase][outcome] = {
                    role: {
                        "zeroed": zeroed.get(role, 0),
                        "steps": steps.get(role, 0),
                        "rate": zeroed.get(role, 0) / steps[role] if steps.get(role) else None,
                        "share": zeroed.get(role, 0) / total if total else None,
                    }
                    for role in ROLES
                }
        if any(
            cell["zeroed"]
            for phase in pooled.values()
            for outcome in phase.values()
            for cell in outcome.values()
        ):
            out[arm] = pooled
    return out


def detrended_spread(curve: list[dict]) -> float:
    """The late Pass@1's standard deviation around its least-squares line over steps
    (the population form, as ``late_pass1_std``): spread that a trend does not explain."""
    late = late_evaluations(curve)
    x = [r["step"] for r in late]
    y = [r["pass1_2L"] for r in late]
    mx, my = mean(x), mean(y)
    sxx = sum((a - mx) ** 2 for a in x)
    slope = sum((a - mx) * (b - my) for a, b in zip(x, y)) / sxx if sxx else 0.0
    return math.sqrt(mean((b - my - slope * (a - mx)) ** 2 for a, b in zip(x, y)))


def binomial_spread(p: float, samples: int) -> float:
    """The standard deviation of one evaluation's Pass@1 from sampling alone."""
    return math.sqrt(p * (1 - p) / samples)


def noise(units: Units, samples: int) -> dict:
    """G4's margin (last minus step-0 Pass@1 of ``grpo``, per seed) with its standard
    error over seeds, and per arm the late spread, its detrended form and the binomial
    spread of one evaluation at the arm's late mean."""
    out: dict = {"arms": {}}
    grpo = units.get("grpo", {})
    if len(grpo) >= 2:
        rise = [u["curve"][-1]["pass1_2L"] - u["curve"][0]["pass1_2L"] for u in grpo.values()]
        out["g4_last_minus_step0"] = {
            "mean": mean(rise),
            "se": stdev(rise) / math.sqrt(len(rise)),
            "seeds": len(rise),
        }
    for arm, by_seed in units.items():
        summaries = [summarize(u["curve"]) for u in by_seed.values()]
        late_mean = mean(s["late_pass1_mean"] for s in summaries)
        out["arms"][arm] = {
            "seeds": len(summaries),
            "late_pass1": late_mean,
            "late_spread": mean(s["late_pass1_std"] for s in summaries),
            "late_spread_detrended": mean(detrended_spread(u["curve"]) for u in by_seed.values()),
            "binomial_spread": binomial_spread(late_mean, samples),
            "late_entropy": mean_or_none(s["late_entropy_mean"] for s in summaries),
        }
    return out


def comparisons(units: Units, arms: list[str], against: list[str]) -> dict[str, dict]:
    """``"{a} - {b}"`` -> paired late Pass@1 at 2L (95% t-interval) over shared seeds."""
    runs = {a: {s: summarize(u["curve"]) for s, u in by.items()} for a, by in units.items()}
    return {
        f"{a} - {b}": paired_metric(runs, a, b)
        for a in arms
        for b in against
        if a != b and a in runs and b in runs
    }


def _f(x: float | None, fmt: str = ".3f") -> str:
    return "-" if x is None else format(x, fmt)


def markdown(units: Units, samples: int, extension: list[str], against: list[str]) -> str:
    """The tables, as the README and ``docs/`` carry them."""
    lines: list[str] = []
    if extension:
        lines += ["| paired difference, late Pass@1 at 2L | seeds | mean | 95% CI | seeds > 0 |",
                  "|---|---:|---:|---|---:|"]  # fmt: skip
        for name, p in comparisons(units, extension, against).items():
            lo, hi = p["ci95"]
            ci = "-" if lo is None else f"[{lo:+.3f}, {hi:+.3f}]"
            lines.append(f"| {name} | {p['n']} | {p['mean']:+.3f} | {ci} | {p['positive']} |")
        lines.append("")
    by_length = pass1_by_length(units)
    arms = list(by_length)
    terms = sorted({t for table in by_length.values() for t in table})
    lines += ["| chain length (terms) | " + " | ".join(arms) + " |",
              "|---:|" + "---:|" * len(arms)]  # fmt: skip
    for t in terms:
        cells = [
            f"{_f(by_length[a][t]['step0'], '.2f')} -> {_f(by_length[a][t]['late'], '.2f')}"
            if t in by_length[a]
            else "-"
            for a in arms
        ]
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    lines.append("")
    lines += ["| arm | phase | outcome | " + " | ".join(f"{r}: share (rate)" for r in ROLES)
              + " |", "|---|---|---|" + "---:|" * len(ROLES)]  # fmt: skip
    for arm, table in roles(units).items():
        for phase in PHASES:
            for outcome in OUTCOMES:
                cells = [
                    f"{_f(c['share'], '.0%')} ({_f(c['rate'], '.0%')})"
                    for c in (table[phase][outcome][r] for r in ROLES)
                ]
                lines.append(f"| {arm} | {phase} | {outcome} | " + " | ".join(cells) + " |")
    lines.append("")
    n = noise(units, samples)
    g4 = n.get("g4_last_minus_step0")
    if g4:
        lines.append(
            f"G4's margin (grpo, last minus step 0, {g4['seeds']} seeds): "
            f"{g4['mean']:+.3f}, standard error {g4['se']:.3f}"
        )
        lines.append("")
    lines += ["| arm | seeds | late Pass@1 | late spread | detrended | binomial | late entropy |",
              "|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for arm, a in n["arms"].items():
        lines.append(
            f"| {arm} | {a['seeds']} | {a['late_pass1']:.3f} | {a['late_spread']:.4f} | "
            f"{a['late_spread_detrended']:.4f} | {a['binomial_spread']:.4f} | "
            f"{_f(a['late_entropy'])} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Mistakes (an option's value, a folder without units) are one line, exit 2."""
    parser = OneLineParser(prog="python -m sas_core.demo.findings")
    parser.add_argument(
        "folders", nargs="+", help="demo output folders; FOLDER:arm,arm reads only those arms"
    )
    parser.add_argument("--seeds", help="only these seeds, e.g. 0-4 or 0,3,5")
    parser.add_argument("--extension", nargs="*", default=[], help="arms to compare")
    parser.add_argument("--against", nargs="*", default=["grpo", "sas"])
    parser.add_argument(
        "--samples", type=COUNT, default=200, help="held-out samples per evaluation"
    )
    args = parser.parse_args(argv)
    try:
        units = load_units(*args.folders)
        keep = None if args.seeds is None else set(parse_seeds(args.seeds))
    except ValueError as e:
        parser.error(str(e))
    if keep is not None:
        units = {a: {s: u for s, u in by.items() if s in keep} for a, by in units.items()}
    print(markdown(units, args.samples, args.extension, args.against), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
