"""Python overhead per call of the padded entry points, against the Rust kernel alone.

    python benchmarks/call_overhead.py [--repeat N] [--json]

For three padded batches (8 rollouts of 16 tokens, where a call is almost all
overhead; the paper's group of 8 rollouts; the paper's batch of 1024), times the median
of N calls of:

* ``kernel``: ``StepTable.sas_padded`` (``keep_mask_padded`` before #30) on ready
  numpy arrays, the keep mask only (the Rust core, 1 thread), the floor of every
  padded call;
* ``sas_advantages`` (the public padded call, here on torch tensors) and
  ``sas_batch_step`` (the step every trainer integration takes), 1 thread; before #30
  also ``sas_token_selection`` (the keep mask alone; gone since, ``sas_batch_step``
  returns it).

The overhead of a call is its median minus the kernel's. ``--json`` prints the numbers.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

import sas_core
from sas_core.options import SASOptions
from sas_core.qwen import QWEN2_EMBEDDING_ROWS, qwen2_encoding
from sas_core.token_bytes import tokenizer_token_bytes
from sas_core.tools.workload import make_workload, workload

try:
    from sas_core.torch_api import sas_batch_step
except ImportError:  # sas-core before #22: for the "before" figures
    sas_batch_step = None


def _median(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def kernel_call(seg, ids, lps, mask, correct):
    """The binding on ready arrays, options as the installed binding takes them."""
    arrays = (ids.numpy(), lps.numpy(), mask.numpy(), correct.numpy())
    options = SASOptions()
    table = seg._table
    if hasattr(table, "sas_padded"):  # since #30
        return lambda: table.sas_padded(*arrays, options, num_threads=1)
    try:  # one options object (this project's binding since #22)
        table.keep_mask_padded(*arrays, options, 1)
        return lambda: table.keep_mask_padded(*arrays, options, 1)
    except TypeError:  # the positional options of earlier bindings
        args = (options.ratio, options.mode, options.selection, options.granularity, 0)
        return lambda: table.keep_mask_padded(*arrays, *args, 1)


def _calls(seg, w) -> dict:
    ids, lps, mask, rewards = w.padded()
    correct = torch.from_numpy(w.correct)
    adv = torch.randn(ids.shape)
    opts = SASOptions()
    calls = {"kernel": kernel_call(seg, ids, lps, mask, correct)}
    if hasattr(sas_core, "sas_token_selection"):  # before #30
        calls["sas_token_selection"] = lambda: sas_core.sas_token_selection(
            ids, lps, mask, correct, seg, num_threads=1
        )
    calls["sas_advantages"] = lambda: sas_core.sas_advantages(
        ids, lps, mask, rewards, w.group_size, seg, num_threads=1
    )
    if sas_batch_step is not None:
        calls["sas_batch_step"] = lambda: sas_batch_step(
            ids, lps, mask, adv, rewards, seg, opts, num_threads=1
        )
    return calls


def measure(repeat: int) -> dict:
    seg = sas_core.StepSegmenter(
        tokenizer_token_bytes(qwen2_encoding()), vocab_size=QWEN2_EMBEDDING_ROWS
    )
    batches = {
        "8 x 16 tokens": make_workload("tiny", 8, 16, 12),
        "8 rollouts (paper group)": workload("paper").subsample(8),
        "1024 rollouts (paper batch)": workload("paper"),
    }
    out = {}
    for name, w in batches.items():
        calls = _calls(seg, w)
        reps = max(3, repeat // 50) if w.n_rollouts > 100 else repeat
        times = {call: _median(fn, reps) for call, fn in calls.items()}
        out[name] = {
            "tokens": w.n_tokens,
            "median_us": {k: v * 1e6 for k, v in times.items()},
            "overhead_us": {
                k: (v - times["kernel"]) * 1e6 for k, v in times.items() if k != "kernel"
            },
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=500)
    parser.add_argument("--json", action="store_true")
    opts = parser.parse_args()
    torch.set_num_threads(1)
    result = measure(opts.repeat)
    if opts.json:
        print(json.dumps(result, indent=1))
        return
    print(f"python {platform.python_version()}, torch {torch.__version__}, 1 thread")
    for name, r in result.items():
        print(f"{name} ({r['tokens']:,} tokens): kernel {r['median_us']['kernel']:.1f} us")
        for call, over in r["overhead_us"].items():
            print(f"  {call}: {r['median_us'][call]:.1f} us, overhead {over:.1f} us")


if __name__ == "__main__":
    main()
