"""The fused path (StepSegmenter.select_steps) against segment + select and the reference."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import sas_core
from sas_core import reference

from strategies import logprob_st, options_st, vocab_and_batch


@given(vocab_and_batch(), options_st, st.data())
def test_fused_matches_reference(case, options, data):
    vocab, ids, cu = case
    think = data.draw(st.lists(st.integers(0, len(vocab) - 1), max_size=1))
    n = ids.size
    lps = np.asarray(data.draw(st.lists(logprob_st, min_size=n, max_size=n)), dtype=np.float64)
    correct = np.asarray(
        data.draw(st.lists(st.booleans(), min_size=cu.size - 1, max_size=cu.size - 1)), bool
    )
    seg = sas_core.StepSegmenter(vocab, think_end_ids=think)
    steps = reference.segment(vocab, ids.tolist(), cu.tolist(), think_end_ids=think)
    want = reference.keep_mask(steps, lps.tolist(), cu.tolist(), correct.tolist(), **options)
    fused = seg.select_steps(ids, lps, cu, correct, **options)
    assert fused.keep.tolist() == want
    two_step = sas_core.select_steps(seg.segment(ids, cu), lps, cu, correct, **options)
    for a, b in zip(fused, two_step):
        assert np.array_equal(a, b)


@given(st.data())
def test_unordered_step_ids_match_reference(data):
    """keep_mask accepts any step numbering, not only the segmenter's ordered one."""
    n = data.draw(st.integers(0, 40))
    steps = data.draw(st.lists(st.integers(-1, max(n - 1, 0)), min_size=n, max_size=n))
    lps = data.draw(st.lists(logprob_st, min_size=n, max_size=n))
    correct = data.draw(st.booleans())
    options = data.draw(options_st)
    want = reference.keep_mask(steps, lps, [0, n], [correct], **options)
    got = sas_core.select_steps(
        np.asarray(steps, np.int32), np.asarray(lps), [0, n], [correct], **options
    ).keep
    assert got.tolist() == want


@given(vocab_and_batch(), options_st, st.data())
def test_fused_nonfinite_keep_equals_the_two_step_path(case, options, data):
    vocab, ids, cu = case
    n = ids.size
    if n == 0:
        return
    lps = np.asarray(data.draw(st.lists(logprob_st, min_size=n, max_size=n)), dtype=np.float64)
    lps[data.draw(st.integers(0, n - 1))] = np.nan
    correct = np.ones(cu.size - 1, bool)
    seg = sas_core.StepSegmenter(vocab)
    fused = seg.select_steps(ids, lps, cu, correct, nonfinite="keep", **options)
    two_step = sas_core.select_steps(
        seg.segment(ids, cu), lps, cu, correct, nonfinite="keep", **options
    )
    for a, b in zip(fused, two_step):
        assert np.array_equal(a, b)
    row = int(np.searchsorted(cu, int(np.flatnonzero(np.isnan(lps))[0]), side="right")) - 1
    assert fused.keep[cu[row] : cu[row + 1]].all() and fused.n_selected[row] == 0
