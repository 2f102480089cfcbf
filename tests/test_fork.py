"""The extension stays usable in a forked child (Ray and DataLoader workers fork)."""

from __future__ import annotations

import multiprocessing as mp
import os
import sys

import numpy as np
import pytest

import sas_core


def _batch():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1000, 3000, size=48)  # big enough to use the thread pool
    cu = np.concatenate([[0], np.cumsum(lengths)])
    ids = rng.integers(0, 151_936, size=int(cu[-1]))
    lps = -rng.random(ids.size).astype(np.float32)
    correct = rng.random(lengths.size) < 0.5
    return ids, cu, lps, correct


def _compute(seg, ids, cu, lps, correct):
    steps = seg.segment(ids, cu, num_threads=2)
    return steps, sas_core.select_steps(steps, lps, cu, correct, num_threads=2).keep


def _child(seg, expected, queue):
    steps, keep = _compute(seg, *_batch())
    queue.put(bool(np.array_equal(steps, expected[0]) and np.array_equal(keep, expected[1])))


@pytest.mark.skipif(sys.platform == "win32" or not hasattr(os, "fork"), reason="needs fork")
def test_pool_works_in_forked_child(qwen_segmenter):
    expected = _compute(qwen_segmenter, *_batch())  # the parent's pool now exists
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child, args=(qwen_segmenter, expected, queue))
    child.start()
    child.join(timeout=60)
    if child.is_alive():
        child.kill()
        pytest.fail("forked child deadlocked in the thread pool")
    assert child.exitcode == 0
    assert queue.get(timeout=5) is True
    # The parent's pool still works after the fork.
    again = _compute(qwen_segmenter, *_batch())
    assert np.array_equal(again[1], expected[1])
