"""Multi-turn rollouts: a hole in the action mask (tool output, an observation) ends a
turn, each turn is segmented on its own, and off-mask tokens are in no step. The padded
calls against ``sas_core.reference`` (``turn_starts``) on random holes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import sas_core
from sas_core import reference
from sas_core.segmenter import StepSegmenter

from padded_reference import keep_mask as reference_keep
from padded_reference import turn_starts
from strategies import options_st

# Newline shapes on both sides of a gap, and a reasoning end (id 6) in any turn.
VOCAB = [b"a", b" b", b".\n\n", b"\n", b"\n\nc", b"x\n\ny", b"</think>", b"\n\n"]
THINK_END = 6


def _batch(seed: int, rows: int, width: int, hole_rate: float):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, len(VOCAB), (rows, width))
    lps = (-rng.random((rows, width)) * 5).astype(np.float32)
    mask = rng.random((rows, width)) >= hole_rate
    return ids, lps, mask


@given(
    st.integers(0, 2**32 - 1),
    st.integers(1, 6),
    st.integers(1, 40),
    st.sampled_from([0.0, 0.1, 0.3, 0.6]),
    options_st,
)
def test_padded_keep_mask_matches_reference_on_random_holes(seed, rows, width, holes, options):
    ids, lps, mask = _batch(seed, rows, width, holes)
    correct = np.random.default_rng(seed + 1).random(rows) < 0.5
    seg = StepSegmenter(VOCAB, think_end_ids=[THINK_END])
    # rewards 1, 2, 4, ... in one group: every GRPO advantage is non-zero, so a zero on
    # a response token is a selected one
    out = None
    if rows > 1:
        out, _ = sas_core.sas_advantages(
            ids, lps, mask, 2.0 ** np.arange(rows), rows, seg, correct=correct, **options
        )
    want = reference_keep(
        VOCAB, torch.from_numpy(ids), torch.from_numpy(lps), torch.from_numpy(mask),
        correct.tolist(), think_end_ids=[THINK_END], **options,
    )  # fmt: skip
    keep = seg._table.sas_padded(ids, lps, mask, correct, sas_core.SASOptions(**options))[0]
    np.testing.assert_array_equal(keep, want.numpy())
    assert keep[~mask].all(), "an off-mask token was selected"
    if out is not None:
        np.testing.assert_array_equal(~(mask & (out == 0)), want.numpy())


def test_a_step_never_spans_a_gap_and_each_turn_is_ranked():
    """The issue's two-turn example: one step per turn, no blank line at either seam of
    the observation. Read as one text it is one step and ratio 0.5 zeroes nothing; read
    turn by turn it is two steps and the weaker turn of a correct rollout is zeroed."""
    seg = StepSegmenter(VOCAB)
    # turn 1: "a b" (confident), observation "a a" off the mask, turn 2: " b a" (weak)
    ids = np.array([[0, 1, 0, 0, 1, 0]])
    lps = np.array([[-0.1, -0.1, 0.0, 0.0, -3.0, -3.0]], np.float32)
    mask = np.array([[True, True, False, False, True, True]])
    keep, units, selected, zeroed, tokens, _ = seg._table.sas_padded(
        ids, lps, mask, np.array([True]), sas_core.SASOptions(ratio=0.5)
    )
    assert units.tolist() == [2] and selected.tolist() == [1] and zeroed.tolist() == [2]
    assert keep.tolist() == [[True, True, True, True, False, False]]
    assert tokens.tolist() == [4]
    # the same tokens without the hole: one step, nothing selected at ratio 0.5
    one = seg._table.sas_padded(
        ids[:, [0, 1, 4, 5]], lps[:, [0, 1, 4, 5]], mask[:, [0, 1, 4, 5]], np.array([True]),
        sas_core.SASOptions(ratio=0.5),
    )  # fmt: skip
    assert one[1].tolist() == [1] and one[2].tolist() == [0]


def test_each_turn_has_its_own_reasoning_region():
    """With a reasoning end in turn 1, turn 2's reasoning is in steps again (and the
    reference says the same)."""
    seg = StepSegmenter(VOCAB, think_end_ids=[THINK_END])
    ids = np.array([[0, THINK_END, 0, 0, 0, 2, 0]])
    mask = np.array([[True, True, True, False, True, True, True]])
    lps = -np.arange(1, 8, dtype=np.float64)[None, :]
    want = reference.segment(
        VOCAB, ids[mask].tolist(), [0, int(mask.sum())], think_end_ids=[THINK_END],
        turn_starts=[3],
    )  # fmt: skip
    assert want == [0, -1, -1, 1, 1, 2]
    _, units, *_ = seg._table.sas_padded(ids, lps, mask, np.array([True]), sas_core.SASOptions())
    assert units.tolist() == [3]


@given(
    st.integers(0, 2**32 - 1),
    st.integers(1, 5),
    st.integers(1, 30),
    st.sampled_from([0.0, 0.1, 0.3, 0.6]),
    options_st,
)
def test_packed_calls_with_an_action_mask_equal_padded(seed, rows, width, holes, options):
    """Packed rows with ``action_mask`` give the padded kernel's keep mask (fused and
    two-call paths), step -1 off the mask, and the reference's steps on it."""
    ids, lps, mask = _batch(seed, rows, width, holes)
    correct = np.random.default_rng(seed + 1).random(rows) < 0.5
    seg = StepSegmenter(VOCAB, think_end_ids=[THINK_END])
    cu = np.arange(rows + 1) * width
    flat_ids, flat_lps, flat_mask = ids.reshape(-1), lps.reshape(-1), mask.reshape(-1)
    padded = seg._table.sas_padded(ids, lps, mask, correct, sas_core.SASOptions(**options))
    fused = seg.select_steps(flat_ids, flat_lps, cu, correct, action_mask=flat_mask, **options)
    np.testing.assert_array_equal(fused.keep.reshape(rows, width), padded[0])
    assert fused.n_units.tolist() == padded[1].tolist()
    steps = seg.segment(flat_ids, cu, action_mask=flat_mask)
    assert (steps[~flat_mask] == -1).all()
    want = reference.segment(
        VOCAB, ids[mask].tolist(), [0, *np.cumsum(mask.sum(1)).tolist()],
        think_end_ids=[THINK_END], turn_starts=turn_starts(torch.from_numpy(mask)),
    )  # fmt: skip
    assert steps[flat_mask].tolist() == want
    if (options["selection"], options["granularity"]) != ("random", "token"):
        # (random tokens are keyed by their position: in the padded and fused calls the
        # position among the action tokens, on step ids the position in the rollout)
        two = sas_core.select_steps(steps, flat_lps, cu, correct, **options)
        np.testing.assert_array_equal(two.keep, fused.keep)
    # without a mask the same rows are one turn each, as before
    plain = seg.segment(flat_ids, cu)
    assert plain.tolist() == reference.segment(
        VOCAB, flat_ids.tolist(), cu.tolist(), think_end_ids=[THINK_END]
    )


def test_packed_action_mask_is_checked_by_name():
    seg = StepSegmenter(VOCAB)
    with pytest.raises(ValueError, match=r"^action_mask, cu_seqlens"):
        seg.segment([0, 0, 0], [0, 3], action_mask=[True, False])
    with pytest.raises(TypeError, match=r"^action_mask"):
        seg.segment([0, 0], [0, 2], action_mask=[0.5, 1.0])


def test_a_bad_token_after_a_hole_is_named_by_its_column():
    """An out-of-vocabulary id or a NaN log-prob after a hole is named where the caller
    holds it (a padded row's column; a packed rollout's position in the batch), not by
    its index among the masked-in tokens (which is 2 here, and 1 in the second row)."""
    seg = StepSegmenter(VOCAB)
    bad = len(VOCAB)  # one past the table
    ids = np.array([[0, 1, 0, 0, bad, 0], [0, 0, 0, 0, 0, 0]])
    lps = np.full(ids.shape, -1.0, np.float32)
    mask = np.array([[1, 0, 0, 1, 1, 1], [0, 0, 1, 0, 1, 1]], bool)
    rewards = np.array([1.0, 0.0])
    oov = rf"token id {bad} at position"
    with pytest.raises(ValueError, match=rf"^response_ids: row 0: {oov} 4 "):
        sas_core.sas_advantages(ids, lps, mask, rewards, 2, seg)
    cu, flat, flat_mask = np.array([0, 6, 12]), ids.reshape(-1), mask.reshape(-1)
    with pytest.raises(ValueError, match=rf"^token_ids: {oov} 4 "):
        seg.segment(flat, cu, action_mask=flat_mask)
    with pytest.raises(ValueError, match=rf"^token_ids: {oov} 4 "):
        seg.select_steps(flat, lps.reshape(-1), cu, [True, False], action_mask=flat_mask)
    ids[0, 4], lps[1, 4] = 0, np.nan
    nan = "must be finite, got NaN at position"
    for options in ({}, {"granularity": "token"}):
        with pytest.raises(ValueError, match=rf"^logprobs: row 1: {nan} 4$"):
            sas_core.sas_advantages(ids, lps, mask, rewards, 2, seg, nonfinite="raise", **options)
        with pytest.raises(ValueError, match=rf"^logprobs: {nan} 10$"):
            seg.select_steps(
                ids.reshape(-1), lps.reshape(-1), cu, [True, False],
                action_mask=flat_mask, nonfinite="raise", **options,
            )  # fmt: skip
