"""Worst latency of ``MathVerifier.score`` under load: 8 calling threads, the default 2
workers, a 3 s comparison timeout, a mix of right answers, wrong ones and LaTeX that
sympy would grind on for minutes. Without ``call_timeout`` a call also waits for a free
worker; with it, the whole call is bounded.

    python benchmarks/reward_latency.py [--items 48] [--call-timeout 6]
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor

from sas_core.math_reward import MathVerifier, VerifierError

SLOW = "\\boxed{9^{9^{9^{9^{9}}}}}"
ITEMS = [(SLOW, "1"), ("\\boxed{4}", "4"), ("\\boxed{\\frac{1}{2}}", "0.5"), ("\\boxed{5}", "4")]


def measure(items: int, call_timeout: float | None) -> dict:
    v = MathVerifier(timeout=3.0, workers=2, call_timeout=call_timeout)
    v.score("\\boxed{1}", "1")  # one worker started, as in a warm run
    work = [ITEMS[i % len(ITEMS)] for i in range(items)]

    def timed(item: tuple[str, str]) -> tuple[float, str]:
        t = time.monotonic()
        try:
            outcome = str(v.score(*item))
        except VerifierError:
            outcome = "VerifierError"
        return time.monotonic() - t, outcome

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(timed, work))
    finally:
        v.close()
    latencies = sorted(r[0] for r in results)
    outcomes: dict[str, int] = {}
    for _, o in results:
        outcomes[o] = outcomes.get(o, 0) + 1
    return {
        "call_timeout": call_timeout,
        "items": items,
        "worst_s": round(latencies[-1], 2),
        "median_s": round(latencies[len(latencies) // 2], 2),
        "outcomes": outcomes,
        "counts": v.counts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=48)
    parser.add_argument("--call-timeout", type=float, default=6.0)
    args = parser.parse_args()
    for bound in (None, args.call_timeout):
        print(json.dumps(measure(args.items, bound)))


if __name__ == "__main__":
    main()
