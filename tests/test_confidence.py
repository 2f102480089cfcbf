"""Step confidences: bit for bit the reference's four-lane means, per rollout."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sas_core
from sas_core import reference


@st.composite
def packed_steps(draw):
    b = draw(st.integers(0, 6))
    sids, lps, cu = [], [], [0]
    for _ in range(b):
        n = draw(st.integers(0, 30))
        steps = sorted(draw(st.lists(st.integers(0, 5), min_size=n, max_size=n)))
        # renumber 0..k-1 (segmentation's contract), then maybe a think-end tail of -1
        ranks = {s: i for i, s in enumerate(sorted(set(steps)))}
        steps = [ranks[s] for s in steps]
        tail = draw(st.integers(0, 3)) if steps else 0
        sids += steps + [-1] * tail
        lps += draw(
            st.lists(
                st.floats(-50, 0, allow_nan=False, width=64),
                min_size=len(steps) + tail,
                max_size=len(steps) + tail,
            )
        )
        cu.append(len(sids))
    return np.array(sids, np.int64), np.array(lps, np.float64), np.array(cu, np.int64)


@settings(max_examples=300, deadline=None)
@given(packed_steps())
def test_equal_to_the_reference_bit_for_bit(batch):
    sids, lps, cu = batch
    got = sas_core.step_confidences(sids, lps, cu)
    assert got.cu_steps[0] == 0 and got.cu_steps.size == cu.size
    for r in range(cu.size - 1):
        a, b = cu[r], cu[r + 1]
        want = reference.step_confidences(sids[a:b].tolist(), lps[a:b].tolist())
        mine = got.values[got.cu_steps[r] : got.cu_steps[r + 1]]
        assert mine.tolist() == [want[s] for s in range(len(want))]


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match=r"^logprobs: must be finite"):
        sas_core.step_confidences([0, 0], [0.0, np.nan], [0, 2])
    with pytest.raises(
        ValueError, match=r"^logprobs, cu_seqlens: has 1 entries but cu_seqlens ends at 2"
    ):
        sas_core.step_confidences([0, 0], [0.0], [0, 2])
    with pytest.raises(ValueError, match=r"^cu_seqlens"):
        sas_core.step_confidences([0, 0], [0.0, 0.0], [1, 2])
