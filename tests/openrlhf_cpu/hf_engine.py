"""The engine behind the stand-in ``vllm`` package: Hugging Face ``generate`` on the CPU.

OpenRLHF 0.11's ``RolloutRayActor`` (``trainer/ray/vllm_engine.py``) builds
``vllm.AsyncLLMEngine.from_engine_args(vllm.AsyncEngineArgs(**kwargs))`` and then uses:
``is_sleeping``; the async generator ``generate(TokensPrompt, SamplingParams,
request_id)`` whose last output's ``outputs[0]`` has ``token_ids``, ``text``,
``finish_reason`` and ``logprobs`` (``utils/agent.py``); ``output_processor
.get_num_unfinished_requests()``; ``collective_rpc`` with the methods of OpenRLHF's
``WorkerWrap`` that the non-colocated weight sync calls (``init_process_group``,
``update_weight``); ``reset_prefix_cache``, ``sleep``, ``wake_up``,
``pause_generation``, ``resume_generation``. :class:`HFEngine` implements these and
nothing else: any other attribute raises, so a call this harness does not cover fails
loudly.

Log-probs are those of the sampling distribution (logits / temperature, vLLM's
``processed_logprobs`` with top-k and top-p off). Hugging Face's ``generate`` would
otherwise apply the model's default ``top_k=50``: its samples would then come from a
distribution the trainer does not score, and OpenRLHF's importance-sampling correction
would filter every token.

The weight sync (``update_weight``) goes over :class:`GlooBroadcastGroup`, a gloo
process group of its own (a ``TCPStore`` rendezvous) in place of vLLM's
``StatelessProcessGroup`` + ``PyNcclCommunicator``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
import zlib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch

# With this set, the engine records each completed weight sync (a digest of its weights)
# in ``<dir>/engine-sync-<pid>-<n>.json``.
CAPTURE_ENV = "SAS_OPENRLHF_CPU_CAPTURE"
# With this set, the engine reports each token's log-prob lowered by a seeded uniform
# draw in [0, SKEW_SPAN) (the tokens sampled are unchanged): the engine's and the
# actor's log-probs then rank steps differently, so a test can tell which of the two
# SAS used. A smooth change (a higher temperature) is not enough: a random-init model's
# step means are close and keep their order under it on some runs. The span keeps every
# token's importance ratio inside OpenRLHF's default correction band (0.5, 5.0).
SKEW_ENV = "SAS_OPENRLHF_CPU_SKEW_ROLLOUT_LOGPROBS"
SKEW_SPAN = 1.5


def weights_digest(named: list[tuple[str, torch.Tensor]]) -> str:
    """A digest of named tensors' bytes, in name order."""
    h = hashlib.sha256()
    for name, tensor in sorted(named, key=lambda item: item[0]):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class GlooBroadcastGroup:
    """A world of ``world_size`` processes over gloo, apart from ``torch.distributed``'s
    default group (the trainer's DeepSpeed world): OpenRLHF's weight-sync group between
    DeepSpeed rank 0 (rank 0 here) and the engines."""

    def __init__(self, host: str, port: int, rank: int, world_size: int) -> None:
        import torch.distributed as dist

        timeout = timedelta(seconds=300)
        store = dist.TCPStore(host, port, world_size, rank == 0, timeout=timeout)
        self.store = store  # the master's store must outlive the group
        self.rank = rank
        self.group = dist.ProcessGroupGloo(
            dist.PrefixStore("sas-weight-sync", store), rank, world_size
        )

    def broadcast(self, tensor: torch.Tensor, src: int = 0, stream: Any = None) -> None:
        """Broadcasts ``tensor`` in place (as raw bytes: gloo lacks some dtypes)."""
        import torch.distributed as dist

        if not tensor.is_contiguous():
            raise ValueError("weight sync: broadcast needs a contiguous tensor")
        raw = tensor.view(-1).view(torch.uint8)
        opts = dist.BroadcastOptions()
        opts.rootRank = src
        self.group.broadcast([raw], opts).wait()


@dataclass
class Logprob:
    logprob: float


@dataclass
class CompletionOutput:
    index: int
    token_ids: list[int]
    text: str
    finish_reason: str
    logprobs: list[dict[int, Logprob]] | None = None
    cumulative_logprob: float | None = None


@dataclass
class RequestOutput:
    request_id: str
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput]
    finished: bool = True


@dataclass
class _OutputProcessor:
    unfinished: int = 0

    def get_num_unfinished_requests(self) -> int:
        return self.unfinished


@dataclass
class EngineArgs:
    """The keyword arguments OpenRLHF passes (``model``, ``dtype``, ``seed``, ...)."""

    kwargs: dict[str, Any] = field(default_factory=dict)


class HFEngine:
    """A causal LM from ``model`` in ``dtype``, sampling one request at a time."""

    def __init__(self, kwargs: dict[str, Any]) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.path = kwargs["model"]
        self.seed = int(kwargs.get("seed", 0))
        dtype = kwargs.get("dtype", "bfloat16")
        self.dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
        self.model = AutoModelForCausalLM.from_pretrained(self.path, dtype=self.dtype)
        self.model.eval()
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        eos = self.model.generation_config.eos_token_id
        eos = self.model.config.eos_token_id if eos is None else eos
        self.eos_ids = sorted({int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])})
        self.lock = threading.Lock()
        self.output_processor = _OutputProcessor()
        self.syncs = 0  # completed weight syncs: sampling seeds change with the weights
        self.asked: dict[tuple, int] = {}
        self.group: GlooBroadcastGroup | None = None
        self.skew = os.environ.get(SKEW_ENV) == "1"

    # -- what RolloutRayActor calls ----------------------------------------------------

    async def is_sleeping(self) -> bool:
        return False

    async def sleep(self, level: int = 1) -> None:
        return None

    async def wake_up(self, tags: list[str] | None = None) -> None:
        return None

    async def reset_prefix_cache(self) -> None:
        return None

    async def pause_generation(self, mode: str = "keep") -> None:
        return None

    async def resume_generation(self) -> None:
        return None

    async def generate(self, prompt: dict, sampling_params: Any, request_id: str):
        self.output_processor.unfinished += 1
        try:
            output = await asyncio.to_thread(
                self._generate, list(prompt["prompt_token_ids"]), sampling_params, request_id
            )
        finally:
            self.output_processor.unfinished -= 1
        yield output

    async def collective_rpc(self, method: str, args: tuple = (), kwargs: dict | None = None):
        if method not in ("init_process_group", "update_weight"):
            raise NotImplementedError(f"hf engine: collective_rpc {method!r}")
        result = await asyncio.to_thread(getattr(self, f"_{method}"), *args, **(kwargs or {}))
        return [result]  # one worker

    # -- generation --------------------------------------------------------------------

    def _generate(self, prompt_ids: list[int], params: Any, request_id: str) -> RequestOutput:
        temperature = float(params.temperature)
        greedy = temperature <= 0
        top_p = float(params.top_p)
        if int(params.top_k) > 0 or top_p < 1.0:
            raise NotImplementedError("hf engine: top_k and top_p are not supported")
        max_tokens = int(params.max_tokens)
        with self.lock, torch.no_grad():
            # Seeded per request from the weights, the prompt and how many times it was
            # asked: a run is reproducible whatever order the requests arrive in.
            key = (self.seed, self.syncs, tuple(prompt_ids))
            self.asked[key] = self.asked.get(key, 0) + 1
            torch.manual_seed(zlib.crc32(repr((*key, self.asked[key])).encode()))
            ids = torch.tensor([prompt_ids], dtype=torch.long)
            out = self.model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                do_sample=not greedy,
                temperature=None if greedy else temperature,
                top_k=None if greedy else 0,
                top_p=None if greedy else 1.0,
                max_new_tokens=max_tokens,
                min_new_tokens=int(getattr(params, "min_tokens", 0) or 0),
                eos_token_id=self.eos_ids,
                pad_token_id=self.model.config.pad_token_id,
            )
            response = out[0, ids.shape[1] :].tolist()
            finish = "length"
            for i, tok in enumerate(response):  # generate pads after the end token
                if tok in self.eos_ids:
                    response, finish = response[: i + 1], "stop"
                    break
            logprobs = None
            if params.logprobs is not None:
                full = torch.tensor([prompt_ids + response], dtype=torch.long)
                logits = self.model(full).logits[0, len(prompt_ids) - 1 : -1].float()
                if not greedy:
                    logits = logits / temperature
                logp = torch.log_softmax(logits, dim=-1)
                chosen = logp.gather(1, torch.tensor(response)[:, None])[:, 0]
                if self.skew:
                    gen = torch.Generator().manual_seed(zlib.crc32(repr(response).encode()))
                    chosen = chosen - SKEW_SPAN * torch.rand(len(response), generator=gen)
                chosen = chosen.tolist()
                logprobs = [{t: Logprob(lp)} for t, lp in zip(response, chosen, strict=True)]
        text = self.tokenizer.decode(response, skip_special_tokens=params.skip_special_tokens)
        return RequestOutput(
            request_id, prompt_ids, [CompletionOutput(0, response, text, finish, logprobs)]
        )

    # -- weight sync (OpenRLHF's WorkerWrap methods) -----------------------------------

    def _init_process_group(
        self, master_address, master_port, rank_offset, world_size, group_name, backend, use_ray
    ) -> None:
        if use_ray:
            raise NotImplementedError("hf engine: --vllm.sync_with_ray")
        # One worker per engine (tensor parallel size 1): its rank is the offset.
        self.group = GlooBroadcastGroup(master_address, master_port, rank_offset, world_size)

    def _update_weight(self, name: str, dtype, shape, empty_cache: bool = False) -> None:
        if self.group is None:
            raise RuntimeError("hf engine: update_weight before init_process_group")
        params = dict(self.model.named_parameters())
        if name not in params:
            raise KeyError(f"hf engine: unknown weight {name!r}")
        if dtype != self.dtype:
            raise TypeError(f"hf engine: weight {name} is {dtype}, the engine holds {self.dtype}")
        weight = torch.empty(tuple(shape), dtype=dtype)
        self.group.broadcast(weight, src=0)
        with self.lock, torch.no_grad():
            params[name].copy_(weight)
            if empty_cache:  # OpenRLHF sets it on the last weight of a sync
                self.syncs += 1
                self._record_sync()

    def _record_sync(self) -> None:
        directory = os.environ.get(CAPTURE_ENV)
        if not directory:
            return
        digest = weights_digest(list(self.model.named_parameters()))
        path = Path(directory) / f"engine-sync-{os.getpid()}-{self.syncs}.json"
        path.write_text(json.dumps({"sync": self.syncs, "digest": digest}))
        print(f"hf engine: weight sync {self.syncs} loaded", flush=True)

    def __getattr__(self, name: str):
        raise AttributeError(f"hf engine: the stand-in vLLM engine has no {name!r}")
