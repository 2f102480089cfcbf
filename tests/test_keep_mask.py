"""Rust selection against the pure-Python reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import sas_core
from sas_core import reference

from strategies import options_st, steps_batch


@given(steps_batch(), options_st)
def test_keep_mask_matches_reference(batch, options):
    step_ids, logprobs, cu, correct = batch
    expected = reference.keep_mask(
        step_ids.tolist(), logprobs.tolist(), cu.tolist(), correct.tolist(), **options
    )
    got = sas_core.select_steps(step_ids, logprobs, cu, correct, **options).keep
    assert got.dtype == np.bool_
    assert got.tolist() == expected


@given(steps_batch(), options_st)
def test_float32_logprobs_match_reference_on_the_same_values(batch, options):
    step_ids, logprobs, cu, correct = batch
    lp32 = logprobs.astype(np.float32)
    expected = reference.keep_mask(
        step_ids.tolist(),
        lp32.astype(np.float64).tolist(),
        cu.tolist(),
        correct.tolist(),
        **options,
    )
    assert sas_core.select_steps(step_ids, lp32, cu, correct, **options).keep.tolist() == expected


@given(steps_batch(), options_st)
def test_counts_follow_the_contract(batch, options):
    step_ids, logprobs, cu, correct = batch
    sel = sas_core.select_steps(step_ids, logprobs, cu, correct, **options)
    for b in range(cu.size - 1):
        steps = step_ids[cu[b] : cu[b + 1]]
        in_step = steps[steps >= 0]
        n = len(set(in_step.tolist())) if options["granularity"] == "step" else in_step.size
        assert sel.n_units[b] == n
        applies = options["mode"] == "both" or (options["mode"] == "correct") == correct[b]
        k = min(n, math.floor(options["ratio"] * n + 1e-9)) if applies else 0
        assert sel.n_selected[b] == k
        dropped = ~sel.keep[cu[b] : cu[b + 1]]
        if options["granularity"] == "step":
            assert len(set(steps[dropped].tolist())) == k
        else:
            assert dropped.sum() == k
        assert not (dropped & (steps < 0)).any()


def test_confidence_picks_the_right_steps_by_hand():
    # One correct and one failed rollout with the same four steps:
    # confidences -1.0, -3.0, -2.0, -0.5 (step 1 has two tokens, mean -3).
    steps = np.array([0, 1, 1, 2, 3] * 2, dtype=np.int32)
    lps = np.array([-1.0, -2.0, -4.0, -2.0, -0.5] * 2)
    keep = sas_core.select_steps(steps, lps, [0, 5, 10], [True, False], ratio=0.5).keep
    # Correct: the two least confident steps (1 and 2) are zeroed.
    assert keep[:5].tolist() == [True, False, False, False, True]
    # Failed: the two most confident steps (3 and 0) are zeroed.
    assert keep[5:].tolist() == [False, True, True, True, False]


def test_ratio_tolerance_selects_three_of_ten():
    steps = np.arange(10, dtype=np.int32)
    lps = -np.arange(10, dtype=np.float64)
    keep = sas_core.select_steps(steps, lps, [0, 10], [True], ratio=0.3).keep
    assert (~keep).sum() == 3 and keep[:7].all()


def test_random_selection_is_reproducible_and_seeded():
    rng = np.random.default_rng(1)
    steps = np.repeat(np.arange(50, dtype=np.int32), 4)
    lps = -rng.random(steps.size)
    a = sas_core.select_steps(steps, lps, [0, steps.size], [True], selection="random", seed=7).keep
    b = sas_core.select_steps(steps, lps, [0, steps.size], [True], selection="random", seed=7).keep
    c = sas_core.select_steps(steps, lps, [0, steps.size], [True], selection="random", seed=8).keep
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert (~a).sum() == 15 * 4


@pytest.mark.parametrize("threads", [1, 2, 4, 16])
def test_thread_count_does_not_change_mask(threads):
    rng = np.random.default_rng(3)
    lengths = rng.integers(0, 4000, size=128)
    cu = np.concatenate([[0], np.cumsum(lengths)])
    steps = np.concatenate([np.sort(rng.integers(0, max(n // 50, 1), size=n)) for n in lengths])
    steps = steps.astype(np.int32)
    lps = -rng.random(steps.size).astype(np.float32) * 8
    correct = rng.random(lengths.size) < 0.5
    for selection in ("confidence", "random"):
        one = sas_core.select_steps(
            steps, lps, cu, correct, selection=selection, num_threads=1
        ).keep
        many = sas_core.select_steps(
            steps, lps, cu, correct, selection=selection, num_threads=threads
        ).keep
        assert np.array_equal(one, many)


@given(steps_batch(max_rollouts=8), st.integers(0, 2**32 - 1))
def test_token_advantages_match_reference(batch, seed):
    step_ids, logprobs, cu, _ = batch
    b = cu.size - 1
    assume(b > 0 and b % 2 == 0)  # groups of two rollouts
    rewards = np.random.default_rng(seed).random(b).round(1)
    want = reference.sas_token_advantages(
        step_ids.tolist(), logprobs.tolist(), cu.tolist(), rewards.tolist(), 2
    )
    keep = sas_core.select_steps(step_ids, logprobs, cu, rewards > 0.5).keep
    got = sas_core.token_advantages(sas_core.grpo_advantages(rewards, 2), keep, cu)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@given(steps_batch(), options_st, st.data())
def test_nonfinite_keep_on_packed_batches_spares_only_the_rollouts_hit(batch, options, data):
    # Selection is per rollout: under nonfinite="keep" a rollout with a NaN/inf log-prob
    # keeps every token, and every other rollout is what the reference gives.
    step_ids, logprobs, cu, correct = batch
    assume(cu[-1] > 0)
    hits = data.draw(st.lists(st.integers(0, int(cu[-1]) - 1), min_size=1, max_size=3))
    bad = logprobs.copy()
    bad[hits] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    rows = {int(np.searchsorted(cu, i, side="right")) - 1 for i in hits}
    clean = np.where(np.isfinite(bad), bad, 0.0)
    want = np.array(reference.keep_mask(
        step_ids.tolist(), clean.tolist(), cu.tolist(), correct.tolist(), **options
    ))  # fmt: skip
    for r in rows:
        want[cu[r] : cu[r + 1]] = True
    sel = sas_core.select_steps(step_ids, bad, cu, correct, nonfinite="keep", **options)
    assert sel.keep.tolist() == want.tolist()
    assert all(sel.n_selected[r] == 0 for r in rows)
    kept = sas_core.select_steps(step_ids, bad, cu, correct, nonfinite="keep", **options)
    assert kept.keep.tolist() == want.tolist()
    with pytest.raises(ValueError, match=r"^logprobs"):
        sas_core.select_steps(step_ids, bad, cu, correct, **options)  # "raise", the default
    with pytest.raises(ValueError, match=r"^nonfinite: must be one of"):
        sas_core.select_steps(step_ids, bad, cu, correct, nonfinite="skip")
