"""Pass@k and AES against their definitions."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sas_core.tools.metrics import aes, pass_at_k


@given(
    st.integers(1, 12).flatmap(
        lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))
    )
)
def test_pass_at_k_is_the_chance_a_random_k_subset_holds_a_correct_sample(case):
    n, c, k = case
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    hit = sum(any(samples[i] for i in s) for s in subsets) / len(subsets)
    assert math.isclose(pass_at_k(n, c, k), hit, rel_tol=1e-12, abs_tol=1e-12)


def test_pass_at_1_is_the_mean():
    assert pass_at_k(16, 4, 1) == pytest.approx(0.25)


def test_aes_by_the_definition():
    # SAS in the paper's terms: 33% fewer tokens, accuracy up from 0.40 to 0.42.
    assert aes(0.42, 670, 0.40, 1000) == pytest.approx(0.33 + 3 * 0.05)
    # Accuracy down 10%: the penalty weight gamma applies.
    assert aes(0.36, 500, 0.40, 1000) == pytest.approx(0.5 - 5 * 0.1)
    assert aes(0.40, 1000, 0.40, 1000) == 0.0
    assert aes(0.44, 1000, 0.40, 1000, beta=1.0) == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("args", "exc", "arg"),
    [
        ((5, 6, 1), ValueError, "c"),
        ((5, 1, 0), ValueError, "k"),
        ((5, 1, 6), ValueError, "k"),
        ((5.0, 1, 1), TypeError, "n"),
    ],
)
def test_pass_at_k_rejects(args, exc, arg):
    with pytest.raises(exc, match=rf"^{arg}: "):
        pass_at_k(*args)


def test_aes_rejects_empty_baseline():
    with pytest.raises(ValueError, match=r"^base_tokens"):
        aes(0.5, 10, 0.5, 0)
    with pytest.raises(ValueError, match=r"^base_acc"):
        aes(0.5, 10, 0.0, 10)
