"""The SAS keep mask from token ids and log-probs: every contender on the same batch.

Each test first checks that its contender returns exactly the Rust core's mask, then
times it. ``extra_info["tokens"]`` holds the tokens processed per call, so results
compare per token (the pure-Python reference runs on the first 8 rollouts only).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import vectorised_numpy
import vectorised_torch

import sas_core
from sas_core import reference

REFERENCE_ROLLOUTS = 8


def _rust_mask(segmenter, w, threads=None):
    return segmenter.select_steps(
        w.token_ids, w.logprobs, w.cu_seqlens, w.correct, num_threads=threads
    ).keep


def _run(benchmark, size, w, fn, rounds=None):
    benchmark.group = f"mask-{size}"
    benchmark.extra_info["tokens"] = w.n_tokens
    benchmark.extra_info["rollouts"] = w.n_rollouts
    if rounds is None:
        return benchmark(fn)
    return benchmark.pedantic(fn, rounds=rounds, iterations=1)


def test_reference_python(benchmark, segmenter, token_bytes, size, wl):
    w = wl.subsample(min(REFERENCE_ROLLOUTS, wl.n_rollouts))
    ids, lps, cu, correct = w.as_lists()

    def run():
        steps = reference.segment(
            token_bytes, ids, cu, vocab_size=segmenter.vocab_size, think_end_ids=[151_649]
        )
        return reference.keep_mask(steps, lps, cu, correct)

    assert run() == _rust_mask(segmenter, w).tolist()
    _run(benchmark, size, w, run, rounds=3)


def test_vectorised_numpy(benchmark, segmenter, np_table, size, wl):
    def run():
        return vectorised_numpy.sas_mask(
            np_table, wl.token_ids, wl.logprobs, wl.cu_seqlens, wl.correct
        )

    assert np.array_equal(run(), _rust_mask(segmenter, wl))
    _run(benchmark, size, wl, run)


def test_vectorised_torch_cpu(benchmark, segmenter, torch_table, size, wl):
    t = torch.from_numpy
    args = (t(wl.token_ids), t(wl.logprobs), t(wl.cu_seqlens), t(wl.correct))

    def run():
        return vectorised_torch.sas_mask(torch_table, *args)

    assert np.array_equal(run().numpy(), _rust_mask(segmenter, wl))
    _run(benchmark, size, wl, run)


@pytest.mark.parametrize("threads", [1, None], ids=["1-thread", "all-threads"])
def test_rust(benchmark, segmenter, size, wl, threads):
    """The public fused call: StepSegmenter.select_steps (segment + select)."""
    want = _rust_mask(segmenter, wl, 1)
    assert np.array_equal(_rust_mask(segmenter, wl, threads), want)
    benchmark.extra_info["threads"] = threads or sas_core.default_num_threads()
    _run(benchmark, size, wl, lambda: _rust_mask(segmenter, wl, threads))


def test_rust_two_calls(benchmark, segmenter, size, wl):
    """segment() then keep_mask(): the same mask through a per-token step-id array."""

    def run():
        steps = segmenter.segment(wl.token_ids, wl.cu_seqlens, num_threads=1)
        return sas_core.select_steps(
            steps, wl.logprobs, wl.cu_seqlens, wl.correct, num_threads=1
        ).keep

    assert np.array_equal(run(), _rust_mask(segmenter, wl))
    _run(benchmark, size, wl, run)


def test_copy_floor(benchmark, size, wl):
    """The floor: copying the same input and output bytes (ids, log-probs, mask)."""
    ids, lps = np.empty_like(wl.token_ids), np.empty_like(wl.logprobs)
    mask_src = np.ones(wl.n_tokens, dtype=bool)
    mask = np.empty_like(mask_src)

    def run():
        np.copyto(ids, wl.token_ids)
        np.copyto(lps, wl.logprobs)
        np.copyto(mask, mask_src)

    run()
    assert np.array_equal(ids, wl.token_ids) and np.array_equal(lps, wl.logprobs)
    _run(benchmark, size, wl, run)
