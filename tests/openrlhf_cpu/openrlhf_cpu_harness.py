"""A CPU harness for OpenRLHF 0.11's own ``train_ppo_ray``, for the tests.

Loaded into every process of a run (the driver and each Ray worker) by
``sitecustomize.py`` beside it, with this folder on ``PYTHONPATH``; OpenRLHF's files
are not edited and nothing of it is forked. What stock OpenRLHF 0.11.2 needs a GPU for,
and what stands in here (file references are to OpenRLHF 0.11.2):

- vLLM, imported at module level (``trainer/ray/vllm_engine.py``,
  ``samples_generator.py``, ``ppo_actor.py``): the stand-in ``vllm`` package beside
  this file, whose engine is Hugging Face ``generate`` (``hf_engine.py``);
- the NCCL weight sync (``utils/distributed_util.py``: vLLM's ``StatelessProcessGroup``
  + ``PyNcclCommunicator``): a gloo group of its own (``hf_engine.GlooBroadcastGroup``);
- ``torch.cuda`` calls (``set_device``, ``synchronize``, ``empty_cache``,
  ``current_stream``, ``current_device`` used as a device): the CPU, below;
- ``init_device_mesh("cuda", ...)`` (``utils/deepspeed/deepspeed.py``): a CPU mesh;
  the replay buffer's ``cuda:<n>`` target device (``replay_buffer.py``): the CPU;
- DeepSpeed's FusedAdam (a CUDA build): ``torch_adam`` in the optimizer config;
  DeepSpeed itself runs on its CPU accelerator over gloo (``DS_ACCELERATOR=cpu``, set
  by the caller), without the shared-memory collective it would compile on start
  (``deepspeed/comm/torch.py``);
- flash-attn's CUDA module (``models/ring_attn_utils.py``): sas-core's import
  placeholder; its Triton cross-entropy (``models/utils.py``) is hidden, so OpenRLHF
  takes its own PyTorch fallback;
- Ray's GPUs: ``ray.init`` in the driver declares logical GPUs
  (``SAS_OPENRLHF_CPU_GPUS``), on which OpenRLHF places its workers, one each.

With ``SAS_OPENRLHF_CPU_CAPTURE=<dir>``, every actor update (``ActorPPOTrainer
.training_step``) saves the experience it received, advantages included, before it
trains on it; each weight sync records a digest of the weights sent (DeepSpeed rank 0)
and of those the engine then holds; and the experience maker records the per-token KL
penalty it is given (dropped before the actor sees the experience).

It refuses OpenRLHF releases other than 0.11.x, whose internals it was written against.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.abc
import importlib.metadata
import itertools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

SUPPORTED = "0.11."
CAPTURE_ENV = "SAS_OPENRLHF_CPU_CAPTURE"
GPUS_ENV = "SAS_OPENRLHF_CPU_GPUS"


def _check_version() -> None:
    version = importlib.metadata.version("openrlhf")
    if not version.startswith(SUPPORTED):
        raise ImportError(
            f"openrlhf_cpu_harness is written for OpenRLHF {SUPPORTED}x; found {version}"
        )


# ---------------------------------------------------------------------------------------
# torch.cuda on the CPU
# ---------------------------------------------------------------------------------------


def _cpu_cuda() -> None:
    """The ``torch.cuda`` calls OpenRLHF makes unconditionally, answered on the CPU.
    ``torch.cuda.is_available()`` stays False, so nothing else takes a CUDA path."""
    cuda = torch.cuda
    cuda.current_device = lambda: "cpu"  # used as a device: ``.to(...)``, ``device=``
    cuda.set_device = lambda *_a, **_k: None
    cuda.synchronize = lambda *_a, **_k: None
    cuda.empty_cache = lambda *_a, **_k: None
    cuda.current_stream = lambda *_a, **_k: None  # passed to the weight-sync broadcast


@contextlib.contextmanager
def _device_index_zero():
    """``torch.cuda.current_device()`` as an index, for code that formats ``cuda:<n>``."""
    saved = torch.cuda.current_device
    torch.cuda.current_device = lambda: 0
    try:
        yield
    finally:
        torch.cuda.current_device = saved


# ---------------------------------------------------------------------------------------
# Patches applied when an OpenRLHF module is loaded
# ---------------------------------------------------------------------------------------


def _patch_openrlhf(module) -> None:
    _check_version()


def _patch_deepspeed_strategy(module) -> None:
    original_mesh = module.init_device_mesh

    def init_device_mesh(device_type, *args, **kwargs):
        return original_mesh("cpu" if device_type == "cuda" else device_type, *args, **kwargs)

    module.init_device_mesh = init_device_mesh

    strategy = module.DeepspeedStrategy
    original_config = strategy.get_ds_train_config

    @functools.wraps(original_config)
    def get_ds_train_config(self, *args, **kwargs):
        config = original_config(self, *args, **kwargs)
        optimizer = config.get("optimizer")
        if optimizer is not None:  # FusedAdam needs CUDA; torch's Adam does not
            optimizer.setdefault("params", {})["torch_adam"] = True
        return config

    strategy.get_ds_train_config = get_ds_train_config


def _patch_deepspeed_comm(module) -> None:
    """DeepSpeed's CPU backend builds a shared-memory collective (C++, on the fly, with
    ninja) on start; without it (``None``, as where it cannot build) it uses gloo."""
    module.build_shm_op = lambda: None


def _patch_replay_buffer(module) -> None:
    buffer = module.NaiveReplayBuffer
    original = buffer.__init__

    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        with _device_index_zero():
            original(self, *args, **kwargs)
        self.target_device = torch.device("cpu")

    buffer.__init__ = __init__


_SYNCS = itertools.count(1)
_STEP = [1]  # the training step this process is in: 1 + the weight syncs it has made


def _patch_ppo_actor(module) -> None:
    directory = os.environ.get(CAPTURE_ENV)
    if not directory:
        return
    trainer = module.ActorPPOTrainer
    counter = itertools.count()

    original_step = trainer.training_step

    @functools.wraps(original_step)
    def training_step(self, experience, *args, **kwargs):
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        path = Path(directory) / f"update-{rank}-{os.getpid()}-{next(counter)}.pt"
        torch.save({"step": _STEP[0], **_experience_dict(experience, rank)}, path)
        return original_step(self, experience, *args, **kwargs)

    trainer.training_step = training_step

    original_sync = trainer.broadcast_to_vllm

    @functools.wraps(original_sync)
    def broadcast_to_vllm(self, *args, **kwargs):
        out = original_sync(self, *args, **kwargs)
        n = next(_SYNCS)
        _STEP[0] = n + 1
        if torch.distributed.get_rank() == 0:
            from hf_engine import weights_digest

            named = [(k, p.data) for k, p in self.actor.model.module.named_parameters()]
            path = Path(directory) / f"actor-sync-{os.getpid()}-{n}.json"
            path.write_text(json.dumps({"sync": n, "digest": weights_digest(named)}))
        return out

    trainer.broadcast_to_vllm = broadcast_to_vllm


def _patch_experience_maker(module) -> None:
    """Records each rollout's per-token KL penalty (``experience.kl``) as the experience
    maker receives it, before advantages (which drop it): the tests rebuild the reward
    with a KL penalty from it. The advantages themselves are captured at the actor."""
    directory = os.environ.get(CAPTURE_ENV)
    if not directory:
        return
    maker = module.RemoteExperienceMaker
    original = maker.compute_advantages_and_returns
    counter = itertools.count()

    @functools.wraps(original)
    def compute_advantages_and_returns(self, experiences, *args, **kwargs):
        rows = []
        for exp in experiences:
            if exp.kl is None:
                continue
            for i in range(len(exp.sequences)):
                tokens = exp.sequences[i][exp.attention_mask[i].bool()].tolist()
                rows.append((tokens, exp.kl[i][exp.action_mask[i].bool()].float().cpu().clone()))
        path = Path(directory) / f"kl-{os.getpid()}-{next(counter)}.pt"
        torch.save(rows, path)
        return original(self, experiences, *args, **kwargs)

    maker.compute_advantages_and_returns = compute_advantages_and_returns


def _experience_dict(experience, rank: int) -> dict[str, Any]:
    """An ``Experience`` as plain tensors and values (on the CPU, detached)."""
    from dataclasses import fields

    out: dict[str, Any] = {"rank": rank}
    for f in fields(experience):
        value = getattr(experience, f.name)
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().clone()
        elif isinstance(value, dict):
            value = {
                k: v.detach().cpu().clone() if isinstance(v, torch.Tensor) else v
                for k, v in value.items()
            }
        elif f.name in ("images", "mm_train_inputs"):
            continue
        out[f.name] = value
    return out


# ---------------------------------------------------------------------------------------
# Ray: logical GPUs for the driver's own cluster
# ---------------------------------------------------------------------------------------


def _patch_ray(ray) -> None:
    """OpenRLHF's ``train()`` starts Ray itself when it is not up; every worker it
    places asks for a GPU. A cluster this process starts gets logical ones."""
    original = ray.init

    @functools.wraps(original)
    def init(*args, **kwargs):
        joins = args or kwargs.get("address") or os.environ.get("RAY_ADDRESS")
        if not joins:
            kwargs.setdefault("num_gpus", int(os.environ.get(GPUS_ENV, "2")))
            kwargs.setdefault("num_cpus", 8)
            kwargs.setdefault("include_dashboard", False)
        return original(*args, **kwargs)

    ray.init = init


PATCHES: dict[str, Callable] = {
    "ray": _patch_ray,
    "openrlhf": _patch_openrlhf,
    "openrlhf.utils.deepspeed.deepspeed": _patch_deepspeed_strategy,
    "openrlhf.trainer.ppo_utils.replay_buffer": _patch_replay_buffer,
    "deepspeed.comm.torch": _patch_deepspeed_comm,
    "openrlhf.trainer.ray.ppo_actor": _patch_ppo_actor,
    "openrlhf.trainer.ppo_utils.experience_maker": _patch_experience_maker,
}


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, loader, patch: Callable) -> None:
        self.loader, self.patch = loader, patch

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        self.loader.exec_module(module)
        self.patch(module)

    def __getattr__(self, name: str):  # get_code, is_package, ... of the real loader
        return getattr(self.loader, name)


class _AfterImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: for a module in :data:`PATCHES` it takes the spec the
    other finders give and patches the module once it has run."""

    def find_spec(self, name, path=None, target=None):
        if name == "transformers_modules":
            _hf_modules()
        patch = PATCHES.get(name)
        if patch is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _PatchingLoader(spec.loader, patch)
                return spec
        return None


def _hf_modules() -> None:
    """The test model's tokenizer is remote code of its folder (``loop.py`` says why);
    OpenRLHF pickles it to its rollout actors, where unpickling needs the package that
    transformers keeps such code in, as on any node that shares the module cache."""
    from transformers.dynamic_module_utils import init_hf_modules

    init_hf_modules()


def _hide_gpu_modules() -> None:
    """flash-attn's CUDA module gets sas-core's import placeholder; its Triton
    cross-entropy is made unimportable (OpenRLHF then uses its PyTorch fallback)."""
    from sas_core.integrations.openrlhf.gpu_stack import install, missing

    install([name for name in missing() if not name.startswith("vllm")])
    sys.modules["flash_attn.ops.triton.cross_entropy"] = None


def _install() -> None:
    _cpu_cuda()
    _hide_gpu_modules()
    sys.meta_path.insert(0, _AfterImport())


_install()
