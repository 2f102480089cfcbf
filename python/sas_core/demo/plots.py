"""The demo's figures: curves per arm with seed bands, and the diagnostics."""

from __future__ import annotations

from pathlib import Path

import numpy as np

COLORS = {
    "grpo": "tab:red",
    "sas": "tab:blue",
    "sas-correct": "tab:cyan",
    "sas-failed": "tab:green",
    "sas-random": "tab:gray",
    "sas-token": "tab:purple",
    "grpo-masktrunc": "tab:orange",
    "grpo-2L": "black",
}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _band(curves_by_seed: dict, key: str):
    seeds = list(curves_by_seed.values())
    steps = [r["step"] for r in seeds[0]]
    values = np.array(
        [[np.nan if r.get(key) is None else r[key] for r in c] for c in seeds], dtype=float
    )
    return steps, np.nanmean(values, 0), np.nanmin(values, 0), np.nanmax(values, 0)


def curves(result: dict, path: Path) -> None:
    """Pass@1 at 2L, accuracy under L, length, entropy: mean over seeds, min-max band."""
    plt = _plt()
    panels = [
        ("pass1_2L", "sampled Pass@1 at 2L (primary)"),
        ("acc_L", "accuracy under the window L"),
        ("length", "mean length at 2L (tokens)"),
        ("entropy", "policy entropy (train batch)"),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.9))
    for ax, (key, title) in zip(axes, panels):
        for arm, by_seed in result["curves"].items():
            steps, mid, lo, hi = _band(by_seed, key)
            color = COLORS.get(arm)
            ax.plot(steps, mid, marker="o", ms=3, label=f"{arm} ({len(by_seed)})", color=color)
            if len(by_seed) > 1:
                ax.fill_between(steps, lo, hi, color=color, alpha=0.12)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("RL step")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    cfg = result["config"]
    fig.suptitle(
        f"SAS vs GRPO, window L = {cfg['rl']['limit']} tokens, evaluated at 2L; "
        f"seeds {cfg['seeds'][0]}-{cfg['seeds'][-1]} (band: min-max over seeds)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def diagnostics(result: dict, path: Path) -> None:
    """What SAS zeroes (correct rollouts) and shields (failed ones), by true step role,
    against the roles' base rates; the truncated-but-sound share over training."""
    plt = _plt()
    roles = ["careful", "shortcut", "hesitation", "answer", "other"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.9))
    sas = result["diagnostics"].get("sas", {})
    for ax, outcome, verb in ((axes[0], "correct", "zeroed"), (axes[1], "failed", "shielded")):
        zeroed = np.zeros(len(roles))
        total = np.zeros(len(roles))
        for d in sas.values():
            for ph in ("early", "late"):
                zeroed += [d[ph][f"zeroed_steps_{outcome}"][r] for r in roles]
                total += [d[ph][f"all_steps_{outcome}"][r] for r in roles]
        x = np.arange(len(roles))
        ax.bar(x - 0.2, zeroed / max(zeroed.sum(), 1), 0.4, label=f"{verb} by SAS")
        ax.bar(x + 0.2, total / max(total.sum(), 1), 0.4, label="all steps")
        ax.set_xticks(x, roles, fontsize=8)
        ax.set_title(f"steps SAS {verb} in {outcome} rollouts (share)", fontsize=10)
        ax.legend(fontsize=8)
    ax = axes[2]
    for arm, by_seed in result["diagnostics"].items():
        if ARM_IS_L.get(arm, True):
            vals = [
                [
                    d[ph]["truncated_sound_share_of_failed_in_mixed_groups"]
                    for ph in ("early", "late")
                ]
                for d in by_seed.values()
            ]
            arr = np.array([[np.nan if v is None else v for v in row] for row in vals], float)
            ax.plot([0, 1], np.nanmean(arr, 0), marker="o", label=arm, color=COLORS.get(arm))
    ax.set_xticks([0, 1], ["first half", "second half"])
    ax.set_title("truncated-but-sound share of failed rollouts (mixed groups)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


ARM_IS_L = {"grpo-2L": False}
