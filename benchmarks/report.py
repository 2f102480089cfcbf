"""Turns a pytest-benchmark JSON into the tables of benchmarks/README.md.

    python benchmarks/report.py .benchmarks/latest.json

Per-token medians make the pure-Python reference (timed on a subsample) comparable.
"""

from __future__ import annotations

import json
import platform
import sys

PAPER_STEP_SECONDS = 279.0  # the paper's GRPO step, before SAS added 17%

NAMES = {
    "test_reference_python": "pure-Python reference",
    "test_vectorised_numpy": "vectorised numpy",
    "test_vectorised_torch_cpu": "vectorised torch (CPU)",
    "test_rust[1-thread]": "sas-core, 1 thread",
    "test_rust[all-threads]": "sas-core, all threads",
    "test_rust_two_calls": "sas-core, segment() + select_steps(), 1 thread",
    "test_copy_floor": "floor: copy ids + log-probs + mask",
    "test_sas_advantages_end_to_end": "sas_advantages end to end (all threads)",
}


def _key(bench: dict) -> tuple[str, str]:
    base = bench["name"].split("[")[0]
    params = bench.get("params") or {}
    if "threads" in params:
        base += "[1-thread]" if params["threads"] == 1 else "[all-threads]"
    return base, params.get("size", "")


def load(path: str) -> dict[str, dict[str, dict]]:
    with open(path) as f:
        data = json.load(f)
    out: dict[str, dict[str, dict]] = {}
    for b in data["benchmarks"]:
        group = b.get("group") or ""
        if group.startswith("padded-"):  # test_bench_padded: per batch shape
            shape = "x".join(map(str, b["extra_info"]["padded_shape"]))
            out.setdefault("padded", {}).setdefault(shape, {})[b["name"].split("[")[0]] = b
            continue
        base, size = _key(b)
        median = b["stats"]["median"]
        tokens = b["extra_info"]["tokens"]
        out.setdefault(size, {})[base] = {
            "median": median,
            "per_token": median / tokens,
            "tokens": tokens,
        }
    return {"results": out, "machine": data.get("machine_info", {})}


def table(results: dict[str, dict[str, dict]]) -> str:
    lines = []
    for size in ("small", "paper", "large"):
        rows = results.get(size)
        if not rows:
            continue
        lines.append(f"\n**{size}** ({rows['test_copy_floor']['tokens']:,} tokens)\n")
        lines.append("| contender | median | ns / token |")
        lines.append("|---|---:|---:|")
        for base, name in NAMES.items():
            if base in rows:
                r = rows[base]
                full = rows["test_copy_floor"]["tokens"]
                note = f" ({r['tokens']:,} tokens)" if r["tokens"] != full else ""
                ms, ns = r["median"] * 1e3, r["per_token"] * 1e9
                lines.append(f"| {name}{note} | {ms:.2f} ms | {ns:.2f} |")
        lines.append("")
        rust1 = rows["test_rust[1-thread]"]["per_token"]
        ratios = [
            ("reference / Rust (per token)", rows["test_reference_python"]["per_token"] / rust1),
            (
                "best vectorised / Rust",
                min(
                    rows["test_vectorised_numpy"]["per_token"],
                    rows["test_vectorised_torch_cpu"]["per_token"],
                )
                / rust1,
            ),
            ("Rust 1 thread / floor", rust1 / rows["test_copy_floor"]["per_token"]),
            ("1 thread / all threads", rust1 / rows["test_rust[all-threads]"]["per_token"]),
        ]
        if "test_sas_advantages_end_to_end" in rows:
            e2e = rows["test_sas_advantages_end_to_end"]["median"]
            ratios.append(("end to end / paper's 279 s step", e2e / PAPER_STEP_SECONDS))
        lines.append("| ratio | value |")
        lines.append("|---|---:|")
        for name, v in ratios:
            lines.append(f"| {name} | {v:.3g}{'' if 'paper' in name else 'x'} |")
    return "\n".join(lines)


PADDED = {
    "test_kernel": "kernel (`sas_padded`, keep mask only)",
    "test_batch_step": "`sas_batch_step` (float32 per-rollout advantages)",
    "test_sas_advantages": "`sas_advantages` (GRPO from rewards)",
}


def padded_table(shapes: dict[str, dict[str, dict]]) -> str:
    """The public padded calls against the kernel, per batch shape."""
    lines = []
    for shape, rows in shapes.items():
        kernel = rows["test_kernel"]["stats"]["median"]
        lines.append(f"\n**{shape}**\n")
        lines.append("| call | median | / kernel |")
        lines.append("|---|---:|---:|")
        for base, name in PADDED.items():
            if base in rows:
                median = rows[base]["stats"]["median"]
                lines.append(f"| {name} | {median * 1e3:.1f} ms | {median / kernel:.2f}x |")
    return "\n".join(lines)


def main() -> None:
    data = load(sys.argv[1])
    m = data["machine"]
    print(
        f"Machine: {m.get('cpu', {}).get('brand_raw', platform.processor())}, "
        f"{m.get('cpu', {}).get('count', '?')} CPUs, Python {m.get('python_version', '?')}"
    )
    print(table(data["results"]))
    if "padded" in data["results"]:
        print(padded_table(data["results"]["padded"]))


if __name__ == "__main__":
    main()
