"""A CPU harness for verl 0.9's own trainer, loaded in every verl process through
``VERL_USE_EXTERNAL_MODULES=verl_cpu_harness`` (with ``VERL_PLATFORM=cpu``).

Stock verl 0.9 has no CPU platform, no CPU FSDP engine and only server-based GPU rollout
backends (vLLM, SGLang, TensorRT-LLM). This module fills those gaps through verl's public
registries, so that ``python -m verl.trainer.main_ppo`` runs generation, reward, old
log-prob, advantage, actor update and weight sync on a CPU:

- a ``cpu`` platform (``PlatformRegistry``): device calls go to the CPU, the collective
  backend is gloo;
- verl builds its process-group backend as ``"cpu:gloo,<device>:<backend>"``, which
  names gloo twice on a CPU; ``torch.distributed.init_process_group`` is wrapped to
  give it plain ``gloo``;
- an ``hf`` rollout backend: a Ray actor around ``transformers``' ``generate`` that
  returns token ids and their log-probs (``RolloutReplicaRegistry``), and a
  ``BaseRollout`` adapter in the training worker that pushes the actor's weights to it
  on verl's default ``naive`` (colocated) weight-sync path.

It is test code, kept with the tests and not shipped: it refuses verl releases other
than 0.9.x, whose internals it was written against. The FSDP2 engine is selected for
the CPU with verl's own ``VERL_ENGINE_DEVICE=cuda`` switch (set by the caller).
"""

from __future__ import annotations

import asyncio
import os
import threading
import zlib
from contextlib import contextmanager
from typing import Any

import torch
import verl

if not verl.__version__.startswith("0.9."):
    raise ImportError(f"verl_cpu_harness is written for verl 0.9.x; found verl {verl.__version__}")

from verl.plugin.platform.platform_base import PlatformBase
from verl.plugin.platform.platform_manager import PlatformRegistry

SERVER_NAME = "sas_cpu_hf_rollout_server_{rank}"
# With this set, the server reports each token's log-prob lowered by a seeded uniform
# draw in [0, SKEW_SPAN): rollout and old log-probs then rank steps differently, so a
# test can tell which of the two SAS used (a higher temperature, a smooth change, keeps
# a random-init model's close step means in order on some runs). The tokens sampled are
# unchanged.
SKEW_ENV = "SAS_VERL_CPU_SKEW_ROLLOUT_LOGPROBS"
SKEW_SPAN = 1.5


class _CPUDevice:
    """What verl calls on ``get_torch_device()``: the CUDA module's API, on the CPU.

    An unknown attribute raises, so a verl call this harness does not cover fails
    loudly instead of doing nothing."""

    @staticmethod
    def is_available() -> bool:
        return True

    @staticmethod
    def current_device() -> str:
        return "cpu"

    @staticmethod
    def device_count() -> int:
        return 1

    @staticmethod
    def set_device(_index) -> None:
        return None

    @staticmethod
    def synchronize(_index=None) -> None:
        return None

    @staticmethod
    def empty_cache() -> None:
        return None

    @staticmethod
    def manual_seed(seed: int) -> None:
        torch.manual_seed(seed)

    @staticmethod
    def manual_seed_all(seed: int) -> None:
        torch.manual_seed(seed)

    @staticmethod
    def get_rng_state(*_args, **_kwargs):
        return torch.get_rng_state()

    @staticmethod
    def set_rng_state(state, *_args, **_kwargs) -> None:
        torch.set_rng_state(state)

    @staticmethod
    def memory_allocated(*_args, **_kwargs) -> int:
        return 0

    memory_reserved = max_memory_allocated = max_memory_reserved = memory_allocated

    @staticmethod
    def reset_peak_memory_stats(*_args, **_kwargs) -> None:
        return None

    @staticmethod
    def mem_get_info(*_args, **_kwargs) -> tuple[int, int]:
        pages, size = os.sysconf("SC_AVPHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        total = os.sysconf("SC_PHYS_PAGES") * size
        return pages * size, total

    @staticmethod
    def get_device_name(*_args, **_kwargs) -> str:
        return "CPU"  # verl's FLOPs table then reports an unknown device (MFU 0)

    def __getattr__(self, name: str):
        raise AttributeError(f"verl_cpu_harness: the CPU device has no {name!r}")


@PlatformRegistry.register(platform="cpu")
class PlatformCPU(PlatformBase):
    """verl's device abstraction on the CPU (selected with ``VERL_PLATFORM=cpu``)."""

    _device = _CPUDevice()

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self):
        return self._device

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check=False) -> bool:
        return True

    # verl moves tensors with ``.to(get_device_id())``: an index would mean a GPU.
    def current_device(self) -> str:
        return "cpu"

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        return None

    def synchronize(self, device_index: int | None = None) -> None:
        return None

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        return None

    def empty_cache(self) -> None:
        return None

    def get_device_capability(self, device_index: int = 0):
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        return "CUDA_VISIBLE_DEVICES"

    @contextmanager
    def nvtx_range(self, msg: str):
        yield

    def profiler_start(self) -> None:
        return None

    def profiler_stop(self) -> None:
        return None

    # Ray places verl's workers on logical GPUs (``ray_init.num_gpus``), one per worker.
    def ray_resource_name(self) -> str:
        return "GPU"

    def ray_noset_envvars(self) -> list[str]:
        return []

    def is_ipc_supported(self) -> bool:
        return False

    def cudart(self) -> Any:
        return None


def _plain_gloo() -> None:
    """verl asks for ``"cpu:gloo,cpu:gloo"`` on a CPU platform; torch wants ``gloo``."""
    import torch.distributed as dist

    if getattr(dist.init_process_group, "_sas_cpu_harness", False):
        return
    original = dist.init_process_group

    def init_process_group(*args, **kwargs):
        backend = kwargs.get("backend")
        if isinstance(backend, str) and set(backend.split(",")) == {"cpu:gloo"}:
            kwargs["backend"] = "gloo"
        return original(*args, **kwargs)

    init_process_group._sas_cpu_harness = True
    dist.init_process_group = init_process_group


_plain_gloo()


def _no_trl_value_head() -> None:
    """verl 0.9.1 patches TRL's ``AutoModelForCausalLMWithValueHead`` whenever TRL is
    importable, from ``trl.experimental.ppo`` or ``trl``; TRL 1.16 (in the test venv,
    not in the ``[verl]`` extra) has it in neither, so model building fails. The patch
    only matters for TRL's value-head models, which verl's actor does not use."""
    from verl.models.transformers import monkey_patch

    monkey_patch.is_trl_available = lambda: False


_no_trl_value_head()


def _plain_text_turns() -> None:
    """verl picks the agent loop's turn-boundary rules from ``config.json``'s
    ``model_type``: ``qwen2`` gets Qwen's ChatML rules, which need ``<|im_end|>``. The
    test model is a Qwen2 with a character tokenizer and a plain-text template, so it
    gets verl's default rules, as any model type verl does not list."""
    from verl.utils.tokenizer import continuous_token_wiring

    continuous_token_wiring._MODEL_TYPE_TO_FAMILY.pop("qwen2", None)


_plain_text_turns()


# ---------------------------------------------------------------------------------------
# The ``hf`` rollout backend
# ---------------------------------------------------------------------------------------


class HFRolloutServer:
    """One rollout server: a causal LM from the actor's checkpoint, sampling one request
    at a time with ``generate`` and returning ids and per-token log-probs under the
    sampling distribution (logits / temperature, as verl's actor scores them)."""

    def __init__(self, config, model_config):
        from transformers import AutoModelForCausalLM

        self.config = config
        self.skew = bool(os.environ.get(SKEW_ENV))
        # A DictConfig (actor_rollout_ref.model) in hybrid mode, a dataclass otherwise.
        get = model_config.get if hasattr(model_config, "get") else model_config.__dict__.get
        path = get("local_path", None) or get("path", None)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        self.model.eval()
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.model.config.eos_token_id
        self.eos_ids = set(_as_list(eos)) if eos is not None else set()
        self.pad_id = self.model.config.pad_token_id
        self.lock = threading.Lock()
        # The step whose weights the server holds; verl's V1 trainer reads it back from
        # every response (``extra_fields``), as vLLM's server reports it.
        self.global_steps = None
        # Sampling is seeded per request from (weights' step, prompt, how many times that
        # prompt was asked at this step), so a run is reproducible whatever order the
        # agent loop's concurrent requests arrive in.
        self.asked: dict[tuple, int] = {}

    def ready(self) -> bool:
        return True

    def load_weights(self, state: dict[str, torch.Tensor], global_steps=None) -> int:
        with self.lock:
            if global_steps is not None:
                self.global_steps = global_steps
            _missing, unexpected = self.model.load_state_dict(state, strict=False)
            unexpected = [k for k in unexpected if k]
            if unexpected:
                raise KeyError(f"hf rollout: unknown weights {unexpected[:5]}")
            print(f"hf rollout: weights of step {global_steps} loaded ({len(state)} tensors)")
            return len(state)

    async def generate(self, request_id=None, prompt_ids=None, sampling_params=None, **_kwargs):
        return await asyncio.to_thread(
            self._generate, list(prompt_ids), dict(sampling_params or {})
        )

    def _generate(self, prompt_ids: list[int], params: dict):
        from verl.workers.rollout.replica import TokenOutput

        cfg = self.config
        max_tokens = params.pop("max_tokens", params.pop("max_new_tokens", None))
        room = cfg.prompt_length + cfg.response_length - len(prompt_ids)
        max_tokens = min(cfg.response_length, room) if max_tokens is None else min(max_tokens, room)
        max_tokens = max(1, max_tokens)
        temperature = float(params.get("temperature", 1.0))
        top_p = float(params.get("top_p", 1.0))
        top_k = int(params.get("top_k", -1))
        greedy = temperature <= 0
        with self.lock, torch.no_grad():
            key = (self.global_steps, tuple(prompt_ids))
            self.asked[key] = self.asked.get(key, 0) + 1
            torch.manual_seed(zlib.crc32(repr((*key, self.asked[key])).encode()))
            ids = torch.tensor([prompt_ids], dtype=torch.long)
            out = self.model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                do_sample=not greedy,
                temperature=None if greedy else temperature,
                top_p=None if greedy else top_p,
                top_k=None if greedy or top_k <= 0 else top_k,
                max_new_tokens=max_tokens,
                eos_token_id=sorted(self.eos_ids) or None,
                pad_token_id=self.pad_id,
                output_scores=False,
                return_dict_in_generate=True,
            )
            response = out.sequences[0, ids.shape[1] :].tolist()
            # Drop anything after the first end token (generate pads finished rows).
            for i, tok in enumerate(response):
                if tok in self.eos_ids:
                    response = response[: i + 1]
                    break
            full = torch.tensor([prompt_ids + response], dtype=torch.long)
            logits = self.model(full).logits[0, len(prompt_ids) - 1 : -1].float()
            if not greedy:
                logits = logits / temperature
            logp = torch.log_softmax(logits, dim=-1)
            log_probs = logp.gather(1, torch.tensor(response)[:, None])[:, 0]
            if self.skew:
                gen = torch.Generator().manual_seed(zlib.crc32(repr(response).encode()))
                log_probs = log_probs - SKEW_SPAN * torch.rand(len(response), generator=gen)
            log_probs = log_probs.tolist()
        return TokenOutput(
            token_ids=response,
            log_probs=log_probs,
            stop_reason="completed",
            extra_fields={"global_steps": self.global_steps},
        )

    # The replica lifecycle verl drives; a CPU model has no memory to release.
    async def wake_up(self):
        return None

    async def sleep(self):
        return None

    async def abort_all_requests(self, reject_request: bool = False):
        return None

    async def resume_generation(self):
        return None

    async def clear_kv_cache(self):
        return None

    async def release_kv_cache(self):
        return None

    async def resume_kv_cache(self):
        return None

    async def start_profile(self, **_kwargs):
        return None

    async def stop_profile(self):
        return None


def _full(tensor: torch.Tensor) -> torch.Tensor:
    """The whole tensor: FSDP2 holds parameters as DTensors (a collective on every rank)."""
    return tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor


def _as_list(value) -> list[int]:
    return list(value) if isinstance(value, (list, tuple, set)) else [int(value)]


def _replica_class():
    import ray
    from verl.workers.rollout.replica import RolloutReplica

    class HFRolloutReplica(RolloutReplica):
        """One ``HFRolloutServer`` per replica (a CPU world of one rank)."""

        async def launch_servers(self):
            server = (
                ray.remote(HFRolloutServer)
                .options(
                    name=SERVER_NAME.format(rank=self.replica_rank),
                    num_cpus=0,
                    max_concurrency=self.max_concurrency,
                )
                .remote(self.config, self.model_config)
            )
            await server.ready.remote()
            self.servers = [server]
            self._server_handle = server
            self._server_address = f"hf-rollout-{self.replica_rank}"

    return HFRolloutReplica


def _adapter_class():
    from verl.workers.rollout.base import BaseRollout

    class HFServerAdapter(BaseRollout):
        """The training worker's end of the ``hf`` rollout: sends the actor's weights to
        its replica's server on verl's ``naive`` weight sync."""

        def __init__(self, config, model_config, device_mesh, *args, **kwargs):
            super().__init__(config, model_config, device_mesh)
            rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
            world = (
                self.config.tensor_model_parallel_size
                * self.config.data_parallel_size
                * self.config.pipeline_model_parallel_size
            )
            self.replica_rank = rank // world
            self.is_leader = rank % world == 0

        async def resume(self, tags: list[str]):
            return None

        async def release(self):
            return None

        async def update_weights(self, weights, wire_format: str = "named_tensors", **kwargs):
            import ray

            if wire_format != "named_tensors":
                raise NotImplementedError(f"hf rollout: wire format {wire_format!r}")
            state = {}
            for name, tensor in weights:
                state[name] = _full(tensor).detach().to("cpu", copy=True)
            if self.is_leader:
                server = ray.get_actor(SERVER_NAME.format(rank=self.replica_rank))
                await server.load_weights.remote(state, kwargs.get("global_steps"))

    return HFServerAdapter


def _register_rollout() -> None:
    from verl.workers.rollout import base
    from verl.workers.rollout.replica import RolloutReplicaRegistry

    base._ROLLOUT_REGISTRY[("hf", "async")] = f"{__name__}.HFServerAdapter"
    RolloutReplicaRegistry.register("hf", _replica_class)


def __getattr__(name: str):
    # ``get_rollout_class`` imports ``HFServerAdapter`` by name, after verl is loaded.
    if name == "HFServerAdapter":
        cls = _adapter_class()
        globals()[name] = cls
        return cls
    raise AttributeError(name)


_register_rollout()


# ---------------------------------------------------------------------------------------
# Capture of what the actor update receives (for the tests)
# ---------------------------------------------------------------------------------------

CAPTURE_ENV = "SAS_VERL_CPU_CAPTURE"


def _capture_actor_updates() -> None:
    """With ``SAS_VERL_CPU_CAPTURE=<dir>``, each actor update in the training worker saves
    the batch it was given (advantages included) to ``<dir>/update-<pid>-<n>.pt``,
    before it trains on it."""
    directory = os.environ.get(CAPTURE_ENV)
    if not directory:
        return
    import functools
    import itertools

    from verl.workers import engine_workers

    # ``ActorRolloutRefWorker.update_actor`` gets a TransferQueue ``BatchMeta`` on the V1
    # trainer; the ``TrainingWorker`` it calls gets the batch itself on both trainers.
    worker = engine_workers.TrainingWorker
    original = worker.train_mini_batch
    counter = itertools.count()

    @functools.wraps(original)  # keeps verl's dispatch attributes
    def train_mini_batch(self, data, *args, **kwargs):
        path = os.path.join(directory, f"update-{os.getpid()}-{next(counter)}.pt")
        captured = _plain(data)
        before = _parameters(self.engine.module)
        out = original(self, data, *args, **kwargs)
        after = _parameters(self.engine.module)
        captured["sas_cpu_param_change"] = max(
            float((a - b).abs().max()) for a, b in zip(after, before, strict=True)
        )
        torch.save(captured, path)
        return out

    worker.train_mini_batch = train_mini_batch


def _parameters(module) -> list[torch.Tensor]:
    """The module's parameters as plain tensors."""
    return [_full(p).detach().clone() for p in module.parameters()]


def _plain(data) -> dict:
    """A TensorDict as a dict of padded tensors and plain values (nested tensors padded
    with 0 on the right, their lengths kept under ``<key>.lengths``)."""
    out = {}
    for key in list(data.keys()):
        value = data[key]
        if isinstance(value, torch.Tensor) and value.is_nested:
            rows = list(value.unbind())
            out[f"{key}.lengths"] = torch.tensor([len(r) for r in rows])
            out[key] = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)
        elif isinstance(value, torch.Tensor):
            out[key] = value.clone()
        else:
            out[key] = getattr(value, "data", value)
    return out


_capture_actor_updates()
