"""Groups by id (verl's ``uid``): any order gives what consecutive groups give."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sas_core
from sas_core import reference


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 6),
    st.integers(2, 8),
    st.integers(0, 2**32 - 1),
)
def test_shuffled_ids_equal_consecutive_groups(groups, size, seed):
    rng = np.random.default_rng(seed)
    rewards = rng.integers(0, 3, groups * size).astype(np.float64)
    want = reference.grpo_advantages(rewards.tolist(), size)
    perm = rng.permutation(rewards.size)
    ids = np.repeat([f"uid-{g}" for g in range(groups)], size)[perm]
    got = sas_core.grpo_advantages(rewards[perm], group_ids=ids)
    np.testing.assert_allclose(got, np.asarray(want)[perm], rtol=1e-12, atol=1e-12)


def test_padded_call_with_group_ids_matches_consecutive():
    torch = pytest.importorskip("torch")
    seg = sas_core.StepSegmenter([b"a", b"b", b"\n\n"])
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 3, (8, 12), generator=g)
    lp = -torch.rand(8, 12, generator=g, dtype=torch.float64)
    mask = torch.ones(8, 12, dtype=torch.bool)
    rewards = torch.tensor([1.0, 0, 0, 1, 1, 1, 0, 0])
    want, _ = sas_core.sas_advantages(ids, lp, mask, rewards, 4, seg)
    perm = torch.tensor([3, 6, 0, 5, 1, 7, 2, 4])
    uid = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])[perm]
    got, _ = sas_core.sas_advantages(
        ids[perm], lp[perm], mask[perm], rewards[perm], None, seg, group_ids=uid
    )
    torch.testing.assert_close(got, want[perm])


def test_group_ids_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"^group_ids: group 'b' has 1 rollout"):
        sas_core.grpo_advantages([1.0, 0.0, 1.0], group_ids=["a", "a", "b"])
    with pytest.raises(ValueError, match=r"^group_ids: need 3 ids"):
        sas_core.grpo_advantages([1.0, 0.0, 1.0], group_ids=["a", "a"])
    with pytest.raises(TypeError, match=r"^group_size: give exactly one"):
        sas_core.grpo_advantages([1.0, 0.0], 2, group_ids=["a", "a"])
    with pytest.raises(TypeError, match=r"^group_size: give exactly one"):
        sas_core.grpo_advantages([1.0, 0.0])
