"""``sas-core demo``: arguments, progress (live bars in a terminal, plain lines in a
log), and the printed report."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from sas_core._cli_args import COUNT, SEED, integer, real
from sas_core.demo.arms import (
    ARMS,
    DEFAULT_ARMS,
    DEFAULT_DEMO_STEPS,
    PILOT_ARMS,
    PILOT_SEEDS,
)
from sas_core.demo.run import DemoConfig, run_demo


def add_arguments(demo: argparse.ArgumentParser) -> None:
    demo.add_argument("--seed", type=SEED, default=0, help="the seed of a single run")
    demo.add_argument("--seeds", help="several RL seeds, e.g. 0-9 or 0,3,5 (multi-seed run)")
    demo.add_argument("--base-seed", type=SEED, default=0, help="the warm-up's seed")
    demo.add_argument(
        "--full", action="store_true", help=f"every arm: {', '.join(ARMS)} (default: grpo, sas)"
    )
    demo.add_argument("--arms", nargs="+", choices=list(ARMS), help="the arms to run")
    demo.add_argument(
        "--ablation-seeds",
        type=integer(0, 2**31 - 1),
        default=5,
        help="arms other than grpo and sas run on the first this many seeds",
    )
    demo.add_argument(
        "--jobs", type=integer(1, 256), help="worker processes (default: one per core)"
    )
    demo.add_argument("--steps", type=COUNT, help="RL optimisation steps per run")
    demo.add_argument("--sft-steps", type=integer(0, 2**31 - 1), help="supervised warm-up steps")
    demo.add_argument("--hidden", type=integer(8, 4096, multiple=8), help="model width")
    demo.add_argument("--layers", type=integer(1, 64), help="model depth")
    demo.add_argument("--limit", type=integer(1, 4096), help="the training window L (tokens)")
    demo.add_argument("--lr", type=real(0, 1, open_low=True), help="RL learning rate")
    demo.add_argument("--prompts-per-step", type=integer(1, 1024), help="prompts per generation")
    demo.add_argument("--eval-every", type=COUNT, help="held-out evaluation every this many steps")
    demo.add_argument(
        "--pilot",
        action="store_true",
        help="the regime pilot: grpo and grpo-2L only, on seeds 100-101; reads the gates "
        "that need no SAS run (G2, G3, G4, D2)",
    )
    demo.add_argument("--out", default="sas-demo-out", help="folder for demo.json and figures")
    demo.add_argument("--quick", action="store_true", help="a seconds-long run for tests")
    demo.add_argument("--no-progress", action="store_true", help="no progress output")


def parse_seeds(text: str) -> list[int]:
    """``0-9`` or ``0,3,5`` (or both); a mistake is a ValueError naming ``--seeds``, which
    the command line prints as one line (exit 2)."""
    mistake = ValueError(f"--seeds: expected e.g. 0-9 or 0,3,5, got {text!r}")
    seeds: list[int] = []
    for part in text.split(","):
        lo, dash, hi = part.partition("-")
        try:
            # "0-" is a range without its end: SEED("") refuses it
            first, last = SEED(lo), SEED(hi) if dash else SEED(lo)
        except argparse.ArgumentTypeError:
            raise mistake from None
        if last < first:  # "3-1": an empty range is a typo, not "no seeds"
            raise mistake
        seeds.extend(range(first, last + 1))
    return seeds  # every part gave at least one seed


def config_from(args: argparse.Namespace) -> DemoConfig:
    import os

    seeds_given = args.seeds is not None  # "" is a mistake, not "no seeds given"
    if args.pilot and (args.full or args.arms or seeds_given):
        raise ValueError(
            "--pilot: runs grpo and grpo-2L on seeds 100-101; drop --full/--arms/--seeds"
        )
    default_seeds = ",".join(map(str, PILOT_SEEDS)) if args.pilot else None
    if seeds_given:
        seeds = parse_seeds(args.seeds)
    else:
        seeds = parse_seeds(default_seeds) if args.pilot else [args.seed]
    cfg = DemoConfig.quick(seeds[0]) if args.quick else DemoConfig()
    cfg.seeds = seeds
    cfg.base_seed = args.base_seed if not args.quick else seeds[0]
    if args.pilot:
        cfg.arms = sorted(PILOT_ARMS)
    else:
        cfg.arms = args.arms or (list(ARMS) if args.full else list(DEFAULT_ARMS))
    cfg.ablation_seeds = len(seeds) if args.pilot else args.ablation_seeds
    if args.jobs is not None:
        cfg.jobs = args.jobs
    elif not args.quick:
        cfg.jobs = os.cpu_count() or 1
    for name in ("hidden", "layers", "sft_steps"):
        if getattr(args, name) is not None:
            setattr(cfg, name, getattr(args, name))
    if args.steps is not None:
        cfg.rl.steps = args.steps
    elif not (args.quick or args.full or seeds_given or args.pilot or args.arms):
        cfg.rl.steps = DEFAULT_DEMO_STEPS  # the default run fits in 10 minutes
    for flag, name in (
        ("limit", "limit"),
        ("lr", "learning_rate"),
        ("prompts_per_step", "prompts_per_step"),
        ("eval_every", "eval_every"),
    ):
        if getattr(args, flag) is not None:
            setattr(cfg.rl, name, getattr(args, flag))
    return cfg


class PlainProgress:
    """Progress as plain lines, for logs: a task's start and end, and at most one line
    every ``every`` seconds per task, with its latest figure."""

    def __init__(self, totals: dict[str, int], stream=sys.stdout, every: float = 30.0):
        self.totals, self.stream, self.every = totals, stream, every
        self.started = time.time()
        self.last: dict[str, float] = {}

    def __call__(self, task: str, step: int | None, row: dict | None) -> None:
        now = time.time()
        elapsed = f"{now - self.started:6.0f}s"
        if step is None:
            print(f"[{elapsed}] {task}: done", file=self.stream, flush=True)
            return
        figure = ""
        if row and "pass1_2L" in row:
            figure = f"  Pass@1 at 2L {row['pass1_2L']:.3f}, length {row['length']:.1f}"
        elif row and "loss" in row:
            figure = f"  loss {row['loss']:.3f}"
        first = task not in self.last
        if first or (figure and "Pass" in figure) or now - self.last[task] >= self.every:
            total = self.totals.get(task.split(" ", 2)[-1], 0)
            print(f"[{elapsed}] {task}: step {step}/{total}{figure}", file=self.stream, flush=True)
            self.last[task] = now


def run(args: argparse.Namespace) -> int:
    from sas_core.demo.run import _quiet_third_party

    _quiet_third_party()
    cfg = config_from(args)
    out = Path(args.out)
    totals = {"warm-up": cfg.sft_steps, **{a: cfg.rl.steps for a in cfg.arms}}
    if args.no_progress:
        result = run_demo(cfg, out)
    elif sys.stderr.isatty():
        result = _with_bars(cfg, out, totals)
    else:
        result = run_demo(cfg, out, progress=PlainProgress(totals))
    print_report(result, out)
    return 0


def _with_bars(cfg: DemoConfig, out: Path, totals: dict[str, int]) -> dict:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as progress:
        tasks: dict[str, int] = {}

        def tick(task: str, step: int | None, row: dict | None) -> None:
            if task not in tasks:
                total = totals.get(task.split(" ", 2)[-1], 1)
                tasks[task] = progress.add_task(task, total=total)
            if step is None:
                progress.update(tasks[task], completed=progress.tasks[tasks[task]].total)
            else:
                progress.update(tasks[task], completed=step)

        return run_demo(cfg, out, progress=tick)


def _fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def print_report(result: dict, out: Path) -> None:
    from statistics import mean

    from rich.console import Console
    from rich.table import Table

    console = Console(width=120)
    cfg = result["config"]
    gates = Table(title="validity gates (checked before any comparison)")
    for col in ("gate", "value", "threshold", "passed"):
        gates.add_column(col)
    about = {
        "G1": "step-confidence AUC, redundant vs necessary (warmed-up policy)",
        "G2": "truncated-but-sound share of failed rollouts, 2nd half of GRPO",
        "G3": "Pass@1 at 2L: GRPO trained at 2L minus GRPO trained at L",
        "G4": "GRPO at L: rise of Pass@1 at 2L above step 0 (then falls back or noisier)",
        "D2": "GRPO-2L does not degrade: late Pass@1 at 2L minus step 0",
    }
    checks = result.get("design_checks", {})
    in_verdict = {k: v for k, v in checks.items() if k == "D2"}
    for name, g in {**result["gates"], **in_verdict}.items():
        gates.add_row(f"{name}: {about[name]}", _fmt(g["value"]), _fmt(g["threshold"], 2),
                      "-" if g["passed"] is None else str(g["passed"]))  # fmt: skip
    console.print(gates)
    d1 = checks.get("D1")
    if d1 and d1["value"] is not None:
        console.print(
            f"design check D1 (not part of the verdict): {d1['value']:.1%} of SAS's training "
            f"rollouts have k = floor(0.3 n) >= 2 (threshold {d1['threshold']:.0%}, "
            f"{'passed' if d1['passed'] else 'NOT passed'}); "
            f"{d1['steps_per_rollout']:.1f} steps per rollout"
        )

    table = Table(title=f"arms (window L = {cfg['rl']['limit']}, evaluated at 2L; mean over seeds)")
    for col in ("arm", "seeds", "late Pass@1 2L", "final Pass@1 2L", "late acc. under L",
                "late length", "late spread"):  # fmt: skip
        table.add_column(col, justify="left" if col == "arm" else "right")
    for arm, by_seed in result["summary"].items():
        s = list(by_seed.values())
        table.add_row(
            arm,
            str(len(s)),
            _fmt(mean(x["late_pass1_mean"] for x in s)),
            _fmt(mean(x["final_pass1"] for x in s)),
            _fmt(mean(x["late_acc_L_mean"] for x in s)),
            _fmt(mean(x["late_length_mean"] for x in s), 1),
            _fmt(mean(x["late_pass1_std"] for x in s)),
        )
    console.print(table)

    pairs = Table(title="paired differences of late Pass@1 at 2L (95% CI over seeds)")
    for col in ("comparison", "seeds", "mean", "95% CI", "seeds > 0"):
        pairs.add_column(col)
    for name, p in result["comparisons"].items():
        lo, hi = p["ci95"]
        ci = "-" if lo is None else f"[{lo:+.3f}, {hi:+.3f}]"
        pairs.add_row(name, str(p["n"]), _fmt(p["mean"]), ci, str(p["positive"]))
    console.print(pairs)

    audits = result["base_audits"].values()
    lost = [a["correct_2L_failing_when_cut"] for a in audits]
    if lost:
        print(
            f"warmed-up policy: {100 * mean(lost):.1f}% of correct 2L traces fail once cut to L "
            "(the paper: about 29% of correct 8K traces at 4K)"
        )
    training = result.get("training", {})
    if training:
        print(
            f"trained in {training['precision']} at lr {training['learning_rate']:g}; the reward "
            + ("needs" if training["reward_needs_eos"] else "does not need")
            + " the end-of-sequence token"
        )
    for key in ("pilot", "pilot_cut"):
        pilot = result.get(key)
        if pilot is not None:
            failed = ", ".join(pilot["failed"]) or "none"
            print(
                f"pilot read at {pilot['steps']} steps: gates failed: {failed} -> "
                + ("go" if pilot["go"] else "no go")
            )
    print(f"verdict: {result['verdict']['reading']}")
    print(f"wrote {out / 'demo.json'}, {out / 'demo.png'}, {out / 'diagnostics.png'} "
          f"in {result['seconds']:.0f} s")  # fmt: skip
