"""The demo's main function: warm-up, truncation audit, GRPO and SAS runs, report."""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from sas_core.demo.audit import truncation_audit
from sas_core.demo.rl import RLConfig, evaluate, post_train
from sas_core.demo.sft import supervised_warmup
from sas_core.demo.task import sample_problem
from sas_core.demo.tiny import build_model, build_tokenizer

# The compared runs: (trainer, SAS options). "sas" is the paper's default; "sas-failed"
# its ablation that only shields failed rollouts (mode="failed").
RUNS: dict[str, tuple[str, dict | None]] = {
    "grpo": ("grpo", None),
    "sas": ("sas", {}),
    "sas-failed": ("sas", {"mode": "failed"}),
}


@dataclass
class DemoConfig:
    seed: int = 0
    hidden: int = 128
    layers: int = 2
    sft_steps: int = 400
    sft_batch: int = 64
    doubt: float = 0.5
    eval_problems: int = 128
    long_budget: int = 150
    rl: RLConfig = field(default_factory=RLConfig)

    @classmethod
    def quick(cls, seed: int = 0) -> DemoConfig:
        """Minutes become seconds: for the test suite."""
        return cls(
            seed=seed,
            hidden=32,
            layers=1,
            sft_steps=20,
            sft_batch=16,
            eval_problems=16,
            rl=RLConfig(steps=3, eval_every=1, prompts_per_step=2, seed=seed),
        )


def run_demo(cfg: DemoConfig, out_dir: Path, progress=None) -> dict:
    """Runs everything and writes ``demo.json`` and ``demo.png`` into ``out_dir``.

    ``progress(task, advance)`` reports work done: task is "sft" or a key of ``RUNS``.
    """
    torch.manual_seed(cfg.seed)
    started = time.time()
    cfg.rl.seed = cfg.seed
    tokenizer = build_tokenizer()
    model = build_model(tokenizer, hidden=cfg.hidden, layers=cfg.layers, seed=cfg.seed)
    tick = progress or (lambda task, advance=1: None)
    supervised_warmup(
        model,
        tokenizer,
        steps=cfg.sft_steps,
        batch_size=cfg.sft_batch,
        doubt=cfg.doubt,
        terms=(cfg.rl.min_terms, cfg.rl.max_terms),
        seed=cfg.seed,
        on_step=lambda step, loss: tick("sft"),
    )
    rng = random.Random(10_000 + cfg.seed)
    eval_set = [
        sample_problem(rng, cfg.rl.min_terms, cfg.rl.max_terms) for _ in range(cfg.eval_problems)
    ]
    limit = cfg.rl.max_completion_length
    audit = truncation_audit(
        model, tokenizer, eval_set, long_budget=cfg.long_budget, short_budget=limit, seed=cfg.seed
    )
    base = {
        "long": evaluate(model, tokenizer, eval_set, cfg.long_budget),
        "short": evaluate(model, tokenizer, eval_set, limit),
    }
    curves = {}
    for run, (method, options) in RUNS.items():
        curves[run] = post_train(
            method,
            model,
            tokenizer,
            eval_set,
            cfg.rl,
            on_step=lambda step, r=run: tick(r),
            sas_options=options,
        )
    result = {
        "summary": {run: summarize(curve) for run, curve in curves.items()},
        "config": asdict(cfg),
        "truncation_audit": audit,
        "base_model": base,
        "curves": curves,
        "final": {m: curves[m][-1] for m in curves},
        "seconds": time.time() - started,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "demo.json").write_text(json.dumps(result, indent=2))
    plot(result, out_dir / "demo.png")
    return result


def summarize(curve: list[dict[str, float]]) -> dict[str, float]:
    """Final accuracy and length, and the accuracy's mean, spread and minimum over the
    second half of training (its stability)."""
    last = curve[-1]["step"]
    late = [r["accuracy"] for r in curve if r["step"] >= last / 2]
    mean = sum(late) / len(late)
    return {
        "final_accuracy": curve[-1]["accuracy"],
        "final_length": curve[-1]["length"],
        "late_accuracy_mean": mean,
        "late_accuracy_std": (sum((a - mean) ** 2 for a in late) / len(late)) ** 0.5,
        "late_accuracy_min": min(late),
    }


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    panels = [
        ("accuracy", "accuracy under the limit (greedy)"),
        ("length", "mean completion length (tokens)"),
        ("entropy", "policy entropy (train batch)"),
    ]
    colors = {"grpo": "tab:red", "sas": "tab:blue", "sas-failed": "tab:green"}
    for ax, (key, title) in zip(axes, panels):
        for method, curve in result["curves"].items():
            xs = [r["step"] for r in curve if r[key] == r[key]]  # skip NaN
            ys = [r[key] for r in curve if r[key] == r[key]]
            ax.plot(xs, ys, marker="o", ms=3, label=method.upper(), color=colors[method])
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("RL step")
        ax.grid(alpha=0.3)
    axes[0].axhline(
        result["base_model"]["long"]["accuracy"], ls="--", c="gray", lw=1, label="base, long budget"
    )
    axes[0].legend(fontsize=8)
    cfg = result["config"]
    lost = 100 * result["truncation_audit"]["correct_long_failing_when_cut"]
    fig.suptitle(
        f"GRPO vs SAS, completion limit {cfg['rl']['max_completion_length']} tokens, "
        f"seed {cfg['seed']}; {lost:.0f}% of correct long traces fail once cut",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
