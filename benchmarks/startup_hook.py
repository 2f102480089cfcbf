"""What the wheel's interpreter-start hook (``sas_core_openrlhf_hook.pth``) costs.

    python benchmarks/startup_hook.py [--python PATH] [--runs N]

Runs ``PATH -X importtime -c pass`` N times with the hook on and N times with it off
(``SAS_CORE_OPENRLHF_HOOK=0`` still imports the hook module: the .pth line runs, only
the finder is not registered), and prints, as medians:

* the hook module's own line of ``-X importtime`` (self and cumulative microseconds);
* the sum of the cumulative times of all top-level imports at start, with the hook and
  without the hook module's cumulative time;
* each other ``.pth``-imported module's cumulative time, for scale;
* the modules the hook module imports for the first time (none: ``os`` and ``sys`` are
  loaded before any .pth line runs), and whether numpy, torch or sas_core are loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

HOOK = "_sas_core_openrlhf_hook"


def importtime(python: str, env: dict[str, str]) -> list[tuple[int, int, int, str]]:
    """(self µs, cumulative µs, depth, module) per line of ``-X importtime``."""
    done = subprocess.run(
        [python, "-X", "importtime", "-c", "pass"],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name = line[len("import time:") :].split("|")
        depth = (len(name) - len(name.lstrip())) // 2
        rows.append((int(self_us), int(cumulative_us), depth, name.strip()))
    return rows


def _imported_under(rows: list[tuple[int, int, int, str]], name: str) -> list[str]:
    """Modules first imported while ``name`` was importing (``-X importtime`` prints a
    module's line after its children's, one level deeper)."""
    at = next(i for i, r in enumerate(rows) if r[3] == name)
    under = []
    for r in reversed(rows[:at]):
        if r[2] <= rows[at][2]:
            break
        under.append(r[3])
    return under


def _children_of_site(rows: list[tuple[int, int, int, str]]) -> list[tuple[str, int]]:
    """Direct imports of ``site``, with their cumulative µs."""
    at = next(i for i, r in enumerate(rows) if r[3] == "site" and r[2] == 0)
    children = []
    for r in reversed(rows[:at]):
        if r[2] == 0:
            break
        if r[2] == 1:
            children.append((r[3], r[1]))
    return children


def modules_at_start(python: str, env: dict[str, str]) -> set[str]:
    code = "import sys, json; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, env=env)
    return set(json.loads(done.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--runs", type=int, default=30)
    opts = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "SAS_CORE_OPENRLHF_HOOK"}
    hook_self, hook_cum, total, total_without = [], [], [], []
    others: dict[str, list[int]] = {}
    for _ in range(opts.runs):
        rows = importtime(opts.python, env)
        top = [r for r in rows if r[2] == 0]
        mine = [r for r in rows if r[3] == HOOK]  # under `site`, which runs the .pth lines
        if not mine:
            raise SystemExit(f"{HOOK} is not imported at start by {opts.python}")
        for name, cum in _children_of_site(rows):
            if name != HOOK:
                others.setdefault(name, []).append(cum)
        hook_self.append(mine[0][0])
        hook_cum.append(mine[0][1])
        total.append(sum(r[1] for r in top))
        total_without.append(total[-1] - mine[0][1])
    on = modules_at_start(opts.python, env)
    first_by_hook = _imported_under(rows, HOOK)
    version = subprocess.run(
        [opts.python, "-c", "import platform; print(platform.python_version())"],
        capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    print(f"python {version}, {opts.runs} runs of -X importtime -c pass (medians), "
          f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r}")  # fmt: skip
    print(f"hook module: self {statistics.median(hook_self):.0f} us, "
          f"cumulative {statistics.median(hook_cum):.0f} us")  # fmt: skip
    print(f"all top-level imports at start: {statistics.median(total):.0f} us with the hook, "
          f"{statistics.median(total_without):.0f} us without its line")  # fmt: skip
    print("other modules imported by site (.pth lines, sitecustomize), cumulative us:")
    for name, cum in sorted(others.items()):
        print(f"  {name}: {statistics.median(cum):.0f}")
    print(f"modules first imported by the hook module: {first_by_hook or 'none'}")
    heavy = sorted(m for m in on if m.split(".")[0] in ("numpy", "torch", "sas_core"))
    print(f"numpy / torch / sas_core imported at start: {heavy or 'none'}")


if __name__ == "__main__":
    main()
