"""``sas-core bench``: step segmentation and selection, pure Python against numpy and Rust.

One batch shaped like the paper's training step (``rollouts`` responses of up to 4,096
tokens of DeepScaleR's Qwen2 vocabulary, a blank-line step every 40-80 tokens), four
implementations of the same contract (and, on 1 thread, the Rust segmenter under the
other step rules, ``delimiter="line"`` and boundary tokens: rows "rust line" and "rust
boundaries", to read beside the default's "rust, 1 thread"):

- the pure-Python reference (``sas_core.reference``, the tests' oracle), timed on the
  first ``REFERENCE_ROLLOUTS`` rollouts (it is slow) and compared per token;
- vectorised numpy (``sas_core.tools.numpy_mask``: prefix sums over a per-vocabulary
  table, one ``lexsort`` for the selection);
- the Rust core on 1 thread and on all threads.

Before anything is timed, every implementation's step ids and keep mask are checked
equal to the reference's on the reference's rollouts, and numpy's and the Rust core's
equal to each other on the whole batch. Each timing is the fastest of at least ``repeat``
calls and, for the fast contenders, of as many more as fit in ``MIN_SECONDS``: the Rust
core takes about a millisecond on the default batch, and the best of three such calls on
a shared machine is mostly the scheduler's noise.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np

REFERENCE_ROLLOUTS = 8
DEFAULT_ROLLOUTS = 256
MIN_SECONDS = 0.25  # per contender: a lower bound on the time spent calling it
MAX_CALLS = 1000


def _best(fn: Callable[[], Any], repeat: int) -> tuple[float, int]:
    """The fastest call's seconds and the number of calls timed."""
    best, calls, spent = float("inf"), 0, 0.0
    while calls < repeat or (spent < MIN_SECONDS and calls < MAX_CALLS):
        start = time.perf_counter()
        fn()
        took = time.perf_counter() - start
        best, calls, spent = min(best, took), calls + 1, spent + took
    return best, calls


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# Host bytes per token slot of the batch at its peak: ids, log-probs, step ids, masks and
# the numpy contender's temporaries (measured: about 40; rounded up).
BYTES_PER_TOKEN = 64
MAX_LEN = 4096


def _check_memory(rollouts: int) -> None:
    """Refuses a batch that would not fit in the memory free now (a MemoryError, or the
    kernel's OOM killer, half-way through building it)."""
    import os

    need = rollouts * MAX_LEN * BYTES_PER_TOKEN
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):  # not on Linux: no bound known
        return
    if need > free:
        raise ValueError(
            f"rollouts: {rollouts} rollouts of up to {MAX_LEN} tokens need about "
            f"{need / 2**30:.1f} GiB; {free / 2**30:.1f} GiB are free"
        )


def run(rollouts: int = DEFAULT_ROLLOUTS, *, repeat: int = 3, seed: int = 0) -> dict:
    """Time every implementation on one batch; a dict of results (see ``--json``)."""
    import sas_core
    from sas_core import reference
    from sas_core.qwen import QWEN2_EMBEDDING_ROWS, THINK_END, qwen2_encoding
    from sas_core.token_bytes import tokenizer_token_bytes
    from sas_core.tools import numpy_mask
    from sas_core.tools.workload import make_workload

    if isinstance(rollouts, bool) or not isinstance(rollouts, int) or rollouts < 1:
        raise ValueError(f"rollouts: must be an int >= 1, got {rollouts!r}")
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        raise ValueError(f"repeat: must be an int >= 1, got {repeat!r}")
    _check_memory(rollouts)
    enc = qwen2_encoding()
    think_end = [enc.encode_single_token(THINK_END)]
    token_bytes = tokenizer_token_bytes(enc)
    segmenter = sas_core.StepSegmenter(
        token_bytes, vocab_size=QWEN2_EMBEDDING_ROWS, think_end_ids=think_end
    )
    table = numpy_mask.NumpyTable(token_bytes, QWEN2_EMBEDDING_ROWS, think_end)
    w = make_workload("bench", rollouts, max_len=MAX_LEN, mean_len=3000, seed=seed)
    small = w.subsample(min(REFERENCE_ROLLOUTS, w.n_rollouts))
    ids, lps, cu, correct = small.as_lists()

    def py_segment():
        return reference.segment(
            token_bytes, ids, cu, vocab_size=QWEN2_EMBEDDING_ROWS, think_end_ids=think_end
        )

    # The other step rules (README, multi-turn and code rollouts): a step per line, and
    # blank lines plus boundary tokens (Qwen2's end-of-turn and end-of-tool-call tokens).
    ends = [i for i, b in enumerate(token_bytes) if b in (b"<|im_end|>", b"</tool_call>")]
    rules = {
        "line": {"delimiter": "line"},
        "boundaries": {"boundary_ids": ends},
    }
    by_rule = {
        rule: sas_core.StepSegmenter(
            token_bytes, vocab_size=QWEN2_EMBEDDING_ROWS, think_end_ids=think_end, **kw
        )
        for rule, kw in rules.items()
    }

    def py_segment_rule(rule):
        return reference.segment(
            token_bytes, ids, cu, vocab_size=QWEN2_EMBEDDING_ROWS, think_end_ids=think_end,
            **rules[rule],
        )  # fmt: skip

    def rs_segment_rule(rule, threads=1, x=w):
        return by_rule[rule].segment(x.token_ids, x.cu_seqlens, num_threads=threads)

    def py_select():
        return reference.keep_mask(py_segment(), lps, cu, correct)

    def np_segment(x=w):
        return numpy_mask.segment(table, x.token_ids, x.cu_seqlens)

    def np_select(x=w):
        return numpy_mask.sas_mask(table, x.token_ids, x.logprobs, x.cu_seqlens, x.correct)

    def rs_segment(threads, x=w):
        return segmenter.segment(x.token_ids, x.cu_seqlens, num_threads=threads)

    def rs_select(threads, x=w):
        return segmenter.select_steps(
            x.token_ids, x.logprobs, x.cu_seqlens, x.correct, num_threads=threads
        ).keep

    # Agreement first: a contender that disagrees is a bug, not a speed.
    want_steps, want_keep = py_segment(), py_select()
    checks = {
        "numpy segment": np_segment(small).tolist() == want_steps,
        "numpy select": np_select(small).tolist() == want_keep,
        "rust segment": rs_segment(1, small).tolist() == want_steps,
        "rust select": rs_select(1, small).tolist() == want_keep,
        **{
            f"rust segment, {rule}": rs_segment_rule(rule, 1, small).tolist()
            == py_segment_rule(rule)
            for rule in rules
        },
        "numpy = rust, whole batch": bool(
            np.array_equal(np_segment(), rs_segment(None))
            and np.array_equal(np_select(), rs_select(None))
        ),
    }
    failed = [name for name, ok in checks.items() if not ok]
    if failed:
        raise RuntimeError(f"bench: implementations disagree ({', '.join(failed)}); nothing timed")

    threads = sas_core.default_num_threads()

    def pool(call):
        """The row on all threads, where that is more than the 1-thread row."""
        return [(f"rust, {threads} threads", w.n_tokens, call)] if threads > 1 else []

    rows = []
    for task, contenders in (
        (
            "segment",
            [
                ("pure Python", small.n_tokens, py_segment),
                ("numpy", w.n_tokens, np_segment),
                ("rust, 1 thread", w.n_tokens, lambda: rs_segment(1)),
                *pool(lambda: rs_segment(None)),
            ],
        ),
        (
            "segment + select",
            [
                ("pure Python", small.n_tokens, py_select),
                ("numpy", w.n_tokens, np_select),
                ("rust, 1 thread", w.n_tokens, lambda: rs_select(1)),
                *pool(lambda: rs_select(None)),
            ],
        ),
        (
            "segment by rule",
            [
                ("pure Python, line", small.n_tokens, lambda: py_segment_rule("line")),
                *(
                    (f"rust {rule}", w.n_tokens, lambda r=rule: rs_segment_rule(r))
                    for rule in rules
                ),
            ],
        ),
    ):
        base = None
        for name, tokens, fn in contenders:
            seconds, calls = _best(fn, repeat)
            ns = seconds / tokens * 1e9
            base = base or ns
            rows.append(
                {
                    "task": task,
                    "implementation": name,
                    "tokens": tokens,
                    "seconds": seconds,
                    "calls": calls,
                    "ns_per_token": ns,
                    "speedup_vs_python": base / ns,
                    "tokens_per_second": tokens / seconds,
                }
            )
    return {
        "batch": {
            "rollouts": w.n_rollouts,
            "tokens": w.n_tokens,
            "reference_rollouts": small.n_rollouts,
            "reference_tokens": small.n_tokens,
            "seed": seed,
            "repeat": repeat,
            "min_seconds": MIN_SECONDS,
        },
        "agreement": checks,
        "results": rows,
        "machine": {
            "cpu": _cpu_name(),
            "cpu_count": os.cpu_count(),
            "threads": threads,
            "python": platform.python_version(),
            "sas_core": sas_core.__version__,
            "numpy": np.__version__,
        },
    }


def table(result: dict) -> str:
    """The result as a table a person reads at a glance."""
    b, m = result["batch"], result["machine"]
    lines = [
        f"sas-core bench: {b['rollouts']} rollouts, {b['tokens']:,} tokens of DeepScaleR's "
        "Qwen2 vocabulary",
        f"timing: the fastest of >= {b['repeat']} calls and >= {b['min_seconds']:g} s per "
        f"implementation; pure Python on the first {b['reference_rollouts']} rollouts "
        f"({b['reference_tokens']:,} tokens)",
        f"machine: {m['cpu']}, {m['cpu_count']} CPUs; Python {m['python']}, "
        f"sas-core {m['sas_core']}, numpy {m['numpy']}",
        "agreement: all implementations give the reference's steps and mask",
        "",
        f"{'task':<18}{'implementation':<18}{'ns/token':>10}{'speed-up':>10}{'tokens/s':>14}"
        f"{'calls':>7}",
    ]
    for r in result["results"]:
        lines.append(
            f"{r['task']:<18}{r['implementation']:<18}{r['ns_per_token']:>10.1f}"
            f"{r['speedup_vs_python']:>9.0f}x{r['tokens_per_second']:>14,.0f}{r['calls']:>7}"
        )
    return "\n".join(lines)
