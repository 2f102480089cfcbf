"""A stand-in ``vllm`` for OpenRLHF 0.11's CPU loop in the tests (never shipped).

It exists only on the path of the CPU harness (``tests/openrlhf_cpu``) and only where
the real vLLM is not installed: it provides the names OpenRLHF imports and an engine
backed by Hugging Face ``generate`` (``hf_engine.HFEngine``). Anything else raises.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from hf_engine import EngineArgs, HFEngine

# OpenRLHF checks the version: > 0.8.5 for its async engine, > 0.10.0 for
# ``logprobs_mode``; >= 0.16 skips its NCCL environment tweak (no NCCL here).
__version__ = "0.29.0"


@dataclass
class SamplingParams:
    """The fields OpenRLHF's samples generator sets."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    max_tokens: int | None = 16
    min_tokens: int = 0
    skip_special_tokens: bool = True
    logprobs: int | None = None

    def clone(self) -> SamplingParams:
        return copy.deepcopy(self)


def AsyncEngineArgs(*args: Any, **kwargs: Any) -> EngineArgs:
    if args:
        raise TypeError("hf engine: AsyncEngineArgs takes keyword arguments only")
    return EngineArgs(dict(kwargs))


class AsyncLLMEngine:
    @staticmethod
    def from_engine_args(engine_args: EngineArgs) -> HFEngine:
        return HFEngine(engine_args.kwargs)


class LLM:
    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        raise NotImplementedError("hf engine: vllm.LLM is not part of the stand-in")
