"""The public padded call against the Rust kernel alone, on the paper's batch and on
the largest batch of a published recipe.

* ``paper``: 1,024 rollouts x 4,096 slots (DeepScaleR at 4K: 128 prompts x 8).
* ``dapo``: 8,192 rollouts x 20,480 slots (DAPO-32B: 512 prompts x 16 rollouts, 20K
  responses; 1.7e8 slots), only with benchmarks enabled (``make bench``).

Each batch is timed three ways (median of 15 calls, of 5 on the DAPO batch), all
threads of the machine: ``kernel``, the binding's
``sas_padded`` on ready numpy arrays (segmentation and selection, the keep mask only:
the floor of every padded call); ``batch_step``, :func:`sas_batch_step` as a trainer
calls it (float32 per-rollout advantages, truncation flags, the ``sas/*``
statistics); and ``sas_advantages`` (GRPO from rewards, then the same). The report
(``benchmarks/report.py``) gives each call's ratio to the kernel.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from workload import make_workload

import sas_core
from sas_core import SASOptions
from sas_core.torch_api import sas_batch_step

SHAPES = {"paper": (1024, 4096), "dapo": (8192, 20480)}


@pytest.fixture(scope="module", params=list(SHAPES))
def batch(request):
    """(name, ids, log-probs, mask, rewards, group size): a right-padded batch whose
    longest rollout fills the width."""
    name = request.param
    if name == "dapo" and request.config.getoption("benchmark_disable"):
        pytest.skip("the 8192 x 20480 batch runs only with benchmarks enabled (make bench)")
    rows, width = SHAPES[name]
    w = make_workload(name, rows, width, mean_len=int(width * 0.7), group_size=8)
    ids, lps, mask, rewards = w.padded()
    pad = width - ids.shape[1]  # to the full width, as a trainer pads to its window
    ids, lps, mask = (torch.nn.functional.pad(t, (0, pad)) for t in (ids, lps, mask))
    return name, ids, lps, mask, rewards, w.group_size


def _run(benchmark, name, fn, ids):
    benchmark.group = f"padded-{name}"
    benchmark.extra_info["padded_shape"] = list(ids.shape)
    benchmark.extra_info["tokens"] = ids.numel()  # slots
    # this shared 2-core machine varies by 10-30% from call to call: the median of many
    benchmark.pedantic(fn, rounds=15 if name == "paper" else 5, iterations=1, warmup_rounds=1)


def test_kernel(benchmark, segmenter, batch):
    name, ids, lps, mask, rewards, _ = batch
    arrays = (ids.numpy(), lps.numpy(), mask.numpy(), (rewards > 0.5).numpy())
    keep = segmenter._table.sas_padded(*arrays, SASOptions())[0]
    assert (~keep).any()
    _run(benchmark, name, lambda: segmenter._table.sas_padded(*arrays, SASOptions()), ids)


def test_batch_step(benchmark, segmenter, batch):
    name, ids, lps, mask, rewards, g = batch
    adv = sas_core.grpo_advantages(rewards, g).float()
    truncated = mask[:, -1]
    options = SASOptions()

    def run():
        return sas_batch_step(ids, lps, mask, adv, rewards, segmenter, options, truncated=truncated)

    step = run()
    # the kernel's keep mask, the advantages written from it
    keep = segmenter._table.sas_padded(
        ids.numpy(), lps.numpy(), mask.numpy(), (rewards > 0.5).numpy(), SASOptions()
    )[0]
    assert np.array_equal(step.keep.numpy(), keep)
    assert torch.equal(step.advantages, torch.where(step.keep & mask, adv[:, None], 0.0))
    _run(benchmark, name, run, ids)


def test_sas_advantages(benchmark, segmenter, batch):
    name, ids, lps, mask, rewards, g = batch

    def run():
        return sas_core.sas_advantages(ids, lps, mask, rewards, g, segmenter)

    adv, stats = run()
    assert stats["sas/zeroed_token_frac"] > 0 and adv.dtype == lps.dtype
    _run(benchmark, name, run, ids)
