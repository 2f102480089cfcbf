"""GRPO advantages against the reference and torch's own statistics."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

import sas_core
from sas_core import reference

rewards_st = st.integers(2, 8).flatmap(
    lambda g: st.tuples(
        st.just(g),
        st.integers(0, 6).flatmap(
            lambda n: st.lists(
                st.one_of(st.sampled_from([0.0, 1.0]), st.floats(-5, 5)),
                min_size=n * g,
                max_size=n * g,
            )
        ),
    )
)


@given(rewards_st)
def test_grpo_matches_reference_and_torch(case):
    g, rewards = case
    got = sas_core.grpo_advantages(np.asarray(rewards), g)
    np.testing.assert_allclose(got, reference.grpo_advantages(rewards, g), rtol=1e-9, atol=1e-9)
    if rewards:
        r = torch.tensor(rewards, dtype=torch.float64).view(-1, g)
        want = (r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) + 1e-6)
        np.testing.assert_allclose(got, want.flatten().numpy(), rtol=1e-7, atol=1e-7)


def test_torch_in_torch_out():
    r = torch.tensor([1.0, 0.0, 0.0, 1.0])
    out = sas_core.grpo_advantages(r, 2)
    assert isinstance(out, torch.Tensor) and out.device == r.device
    assert torch.all(out[[0, 3]] > 0) and torch.all(out[[1, 2]] < 0)
