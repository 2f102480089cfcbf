"""Fixtures of the benchmark suite: the Qwen2 vocabulary, tables, and workloads."""

from __future__ import annotations

import pytest
import vectorised_numpy
import vectorised_torch
from workload import workload

import sas_core
from sas_core.qwen import QWEN2_EMBEDDING_ROWS, qwen2_encoding
from sas_core.token_bytes import tokenizer_token_bytes

THINK_END_ID = 151_649


@pytest.fixture(scope="session")
def token_bytes():
    return tokenizer_token_bytes(qwen2_encoding())


@pytest.fixture(scope="session")
def segmenter(token_bytes):
    return sas_core.StepSegmenter(
        token_bytes, vocab_size=QWEN2_EMBEDDING_ROWS, think_end_ids=[THINK_END_ID]
    )


@pytest.fixture(scope="session")
def np_table(token_bytes):
    return vectorised_numpy.NumpyTable(token_bytes, QWEN2_EMBEDDING_ROWS, [THINK_END_ID])


@pytest.fixture(scope="session")
def torch_table(np_table):
    return vectorised_torch.TorchTable(np_table)


@pytest.fixture(params=["small", "paper", "large"])
def size(request):
    if request.param == "large" and request.config.getoption("benchmark_disable"):
        pytest.skip("the 4096 x 8192 batch runs only with benchmarks enabled (make bench)")
    return request.param


@pytest.fixture
def wl(size):
    return workload(size)
