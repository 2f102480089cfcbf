"""The demo's driver: the warm-up, the arms (one process per core), the report.

One warmed-up model (``base_seed``) is the starting point of every run, as one released
checkpoint (DeepScaleR-1.5B-Preview) is in the paper; the RL seeds vary sampling, the
prompts and the held-out set. Work is split into units written to files as they
finish, so a long multi-seed run can be resumed and read while it goes:
``bases/seed{N}.pt`` + ``bases/seed{N}.json`` (the warmed-up model and its audit),
``runs/seed{N}-{arm}.json`` (one arm's curve and diagnostics). ``demo.json`` is rebuilt
from whatever units exist.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import platform
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sas_core.demo.arms import ARMS, DEFAULT_ARMS, PILOT_ARMS, PILOT_SHORT_HORIZON, RLConfig
from sas_core.demo.task import stratified_problems


@dataclass
class DemoConfig:
    seeds: list[int] = field(default_factory=lambda: [0])  # RL seeds
    base_seed: int = 0  # the warm-up's seed: one base model for every run
    arms: list[str] = field(default_factory=lambda: list(DEFAULT_ARMS))
    ablation_seeds: int = 5  # arms beyond the default run on the first this many seeds
    jobs: int = 2
    hidden: int = 128
    layers: int = 2
    sft_steps: int = 800
    sft_batch: int = 64
    sft_lr: float = 3e-3
    eval_per_length: int = 5  # held-out problems per chain length
    audit_samples: int = 4
    rl: RLConfig = field(default_factory=RLConfig)

    @classmethod
    def quick(cls, seed: int = 0) -> DemoConfig:
        """Minutes become seconds: for the test suite."""
        return cls(
            seeds=[seed],
            base_seed=seed,
            jobs=1,
            hidden=32,
            layers=1,
            sft_steps=20,
            sft_batch=16,
            eval_per_length=1,
            audit_samples=2,
            rl=RLConfig(
                steps=4, eval_every=2, prompts_per_step=2, eval_samples=2, limit=24, seed=seed
            ),
        )

    def units(self) -> list[tuple[int, str]]:
        """(seed, arm) pairs: default arms on every seed, the others on the first
        ``ablation_seeds`` seeds."""
        out = []
        for i, seed in enumerate(self.seeds):
            for arm in self.arms:
                if arm in DEFAULT_ARMS or i < self.ablation_seeds:
                    out.append((seed, arm))
        return out


def _eval_problems(cfg: DemoConfig, seed: int):
    return stratified_problems(
        random.Random(10_000 + seed), cfg.eval_per_length, cfg.rl.min_terms, cfg.rl.max_terms
    )


def _rl_config(cfg: DemoConfig, seed: int) -> RLConfig:
    return RLConfig(**{**asdict(cfg.rl), "seed": seed})


def warm_up(cfg: DemoConfig, seed: int, out_dir: Path, tick=None) -> dict:
    """SFT of a fresh model from ``seed``, then the truncation audit on the held-out set
    of RL seed ``seed``; saved to bases/."""
    import torch

    from sas_core.demo.heldout import truncation_audit
    from sas_core.demo.sft import supervised_warmup
    from sas_core.demo.tiny import build_model, build_tokenizer

    path = out_dir / "bases" / f"seed{seed}.json"
    if path.exists():
        return json.loads(path.read_text())
    started = time.time()
    torch.manual_seed(seed)
    tokenizer = build_tokenizer()
    model = build_model(tokenizer, hidden=cfg.hidden, layers=cfg.layers, seed=seed)
    supervised_warmup(
        model,
        tokenizer,
        steps=cfg.sft_steps,
        batch_size=cfg.sft_batch,
        lr=cfg.sft_lr,
        terms=(cfg.rl.min_terms, cfg.rl.max_terms),
        seed=seed,
        on_step=(lambda step, loss: tick(step + 1, {"loss": loss})) if tick else None,
    )
    audit = truncation_audit(
        model,
        tokenizer,
        _eval_problems(cfg, seed),
        limit=cfg.rl.limit,
        samples=cfg.audit_samples,
        seed=seed,
    )
    audit["seconds"] = time.time() - started
    # The warm-up's float sums depend on the thread count (and the CPU): record it, as
    # the figures of every run from this base do.
    audit["threads"] = torch.get_num_threads()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path.with_suffix(".pt"))
    path.write_text(json.dumps(audit, indent=2))
    return audit


def run_arm(cfg: DemoConfig, seed: int, arm: str, out_dir: Path, tick=None) -> dict:
    """One arm of one seed from the saved warm-up; saved to runs/."""
    import torch

    from sas_core.demo.rl import post_train
    from sas_core.demo.tiny import build_model, build_tokenizer

    path = out_dir / "runs" / f"seed{seed}-{arm}.json"
    if path.exists():
        return json.loads(path.read_text())
    started = time.time()
    tokenizer = build_tokenizer()
    model = build_model(tokenizer, hidden=cfg.hidden, layers=cfg.layers, seed=seed)
    model.load_state_dict(torch.load(out_dir / "bases" / f"seed{cfg.base_seed}.pt"))
    model.eval()
    result = post_train(
        arm, model, tokenizer, _eval_problems(cfg, seed), _rl_config(cfg, seed), tick
    )
    result.update(seed=seed, arm=arm, seconds=time.time() - started)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    return result


# Worker processes: one per core, one torch thread each, reporting progress on a queue.
_QUEUE = None


def _init_worker(queue, threads: int) -> None:
    _quiet_third_party()
    import torch

    global _QUEUE
    _QUEUE = queue
    torch.set_num_threads(threads)


def _label(kind: str, seed: int, arm: str | None) -> str:
    return f"seed {seed} {arm}" if kind == "arm" else f"seed {seed} warm-up"


def _unit(args: tuple) -> tuple[str, int, str]:
    kind, cfg, seed, arm, out_dir = args
    task = _label(kind, seed, arm)

    def tick(step: int, row: dict | None) -> None:
        _QUEUE.put((task, step, row))

    if kind == "warm":
        warm_up(cfg, seed, out_dir, tick)
    else:
        run_arm(cfg, seed, arm, out_dir, tick)
    _QUEUE.put((task, None, None))
    return kind, seed, arm


def _quiet_third_party() -> None:
    """The demo reports its own progress; third-party warnings (deprecations, optional
    kernels, accelerator detection) would drown it. Called before torch is imported."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DS_ACCELERATOR", "cpu")  # the demo runs on CPU by design
    for name in ("transformers", "trl", "datasets", "accelerate", "bitsandbytes", "DeepSpeed"):
        logging.getLogger(name).setLevel(logging.ERROR)


def run_demo(
    cfg: DemoConfig,
    out_dir: Path,
    progress: Callable[[str, int | None, dict | None], None] | None = None,
) -> dict:
    """Runs every missing unit, then writes ``demo.json`` and the figures.

    ``progress(task, step, row)`` reports work: ``step`` None when a task ends.
    """
    _quiet_third_party()
    _claim(out_dir, cfg)
    tick = progress or (lambda task, step, row: None)
    started = time.time()
    warm = [("warm", cfg, cfg.base_seed, None, out_dir)]
    arms = [("arm", cfg, s, a, out_dir) for s, a in cfg.units()]
    if cfg.jobs <= 1:
        for unit in warm + arms:
            _run_inline(unit, tick)
    else:
        # Warm-ups first (their models feed every arm), spread over the cores; a single
        # warm-up gets them all as torch threads.
        threads = max(1, cfg.jobs // len(warm)) if len(warm) < cfg.jobs else 1
        _pool_run(warm, min(cfg.jobs, len(warm)), threads, tick)
        _pool_run(arms, cfg.jobs, 1, tick)
    return report(cfg, out_dir, time.time() - started)


def _design(cfg: DemoConfig) -> dict:
    """What the saved units depend on (not which seeds or arms, nor how many jobs)."""
    return {k: v for k, v in asdict(cfg).items() if k not in ("seeds", "arms", "jobs")}


def _claim(out_dir: Path, cfg: DemoConfig) -> None:
    """Units on disk are reused only by a run of the same design."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "design.json"
    design = _design(cfg)
    if path.exists() and json.loads(path.read_text()) != design:
        raise SystemExit(
            f"--out {out_dir}: holds units of another configuration (design.json); "
            "choose another folder"
        )
    path.write_text(json.dumps(design, indent=2))


def _run_inline(unit: tuple, tick) -> None:
    kind, cfg, seed, arm, out_dir = unit
    task = _label(kind, seed, arm)
    fn = warm_up if kind == "warm" else (lambda c, s, o, t: run_arm(c, s, arm, o, t))
    fn(cfg, seed, out_dir, lambda step, row: tick(task, step, row))
    tick(task, None, None)


def _pool_run(units: list, jobs: int, threads: int, tick) -> None:
    ctx = mp.get_context("spawn")
    queue = ctx.Manager().Queue()
    with ctx.Pool(jobs, initializer=_init_worker, initargs=(queue, threads)) as pool:
        pending = pool.map_async(_unit, units, chunksize=1)
        while not (pending.ready() and queue.empty()):
            try:
                task, step, row = queue.get(timeout=0.5)
            except Exception:
                continue
            tick(task, step, row)
        pending.get()  # re-raises a worker's exception


def environment(threads: int) -> dict:
    """Versions and machine facts, so any figure can be traced to what produced it."""
    from sas_core.environment import cpu_model, package_version

    return {
        **{
            name.replace("-", "_"): package_version(name)
            for name in ("sas-core", "torch", "trl", "transformers", "numpy")
        },
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads_per_process": threads,
        "platform": platform.platform(),
    }


def report(cfg: DemoConfig, out_dir: Path, seconds: float) -> dict:
    """``demo.json`` and the figures from every unit on disk for this configuration."""
    from sas_core.demo import plots
    from sas_core.demo.verdict import (
        design_checks,
        gates,
        paired_metric,
        pilot_reading,
        summarize,
        verdict,
    )

    audits = {}
    path = out_dir / "bases" / f"seed{cfg.base_seed}.json"
    if path.exists():
        audits[cfg.base_seed] = json.loads(path.read_text())
    curves: dict[str, dict[int, list]] = {}
    diags: dict[str, dict[int, dict]] = {}
    for seed, arm in cfg.units():
        path = out_dir / "runs" / f"seed{seed}-{arm}.json"
        if path.exists():
            unit = json.loads(path.read_text())
            curves.setdefault(arm, {})[seed] = unit["curve"]
            diags.setdefault(arm, {})[seed] = unit["diagnostics"]
    runs = {arm: {s: summarize(c) for s, c in by_seed.items()} for arm, by_seed in curves.items()}
    gate_results = gates(audits, runs, diags, curves)
    checks = design_checks(diags, runs)
    comparisons = {
        f"{a} - {b}": paired_metric(runs, a, b)
        for a, b in [("sas", "grpo")]
        + [(arm, "grpo") for arm in curves if arm not in ("sas", "grpo")]
        + [("sas", arm) for arm in curves if arm not in ("sas", "grpo")]
    }
    result = {
        "gates": gate_results,
        "design_checks": checks,
        "verdict": verdict(gate_results, runs, checks),
        "training": _training(cfg, out_dir),
        "comparisons": comparisons,
        "environment": environment(1 if cfg.jobs > 1 else _threads()),
        "config": asdict(cfg),
        "arms": {a: ARMS[a].about for a in curves},
        "base_audits": {str(s): a for s, a in audits.items()},
        "summary": {a: {str(s): v for s, v in by_seed.items()} for a, by_seed in runs.items()},
        "diagnostics": {a: {str(s): v for s, v in d.items()} for a, d in diags.items()},
        "curves": {a: {str(s): c for s, c in by_seed.items()} for a, by_seed in curves.items()},
        "seconds": seconds,
    }
    if set(curves) <= PILOT_ARMS:
        result["pilot"] = pilot_reading(gate_results, checks)
        result["pilot"]["steps"] = cfg.rl.steps
        short = PILOT_SHORT_HORIZON
        if short < cfg.rl.steps:  # the same curves read as a shorter run would be
            cut = {a: {s: [r for r in c if r["step"] <= short] for s, c in by.items()}
                   for a, by in curves.items()}  # fmt: skip
            cut_runs = {a: {s: summarize(c) for s, c in by.items()} for a, by in cut.items()}
            cut_gates = gates(audits, cut_runs, diags, cut)  # G2: the recorder's own halves
            result["pilot_cut"] = pilot_reading(cut_gates, design_checks(diags, cut_runs))
            result["pilot_cut"]["steps"] = short
    (out_dir / "demo.json").write_text(json.dumps(result, indent=2))
    plots.curves(result, out_dir / "demo.png")
    plots.diagnostics(result, out_dir / "diagnostics.png")
    return result


def _training(cfg: DemoConfig, out_dir: Path) -> dict:
    """The precision, learning rate and reward the runs trained with: as configured, and
    as the trainers' own arguments recorded them (every unit on disk)."""
    recorded = {}
    for seed, arm in cfg.units():
        path = out_dir / "runs" / f"seed{seed}-{arm}.json"
        if path.exists():
            args = json.loads(path.read_text()).get("trainer_args")
            if args is not None:
                recorded[f"seed{seed}-{arm}"] = args
    return {
        "precision": cfg.rl.precision,
        "learning_rate": cfg.rl.learning_rate,
        "reward_needs_eos": cfg.rl.reward_needs_eos,
        "trainer_args": recorded,
    }


def _threads() -> int:
    import torch

    return torch.get_num_threads()
