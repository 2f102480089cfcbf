"""TEST-ONLY import shims that let OpenRLHF 0.11's modules import on a CPU machine.

OpenRLHF imports, at module level, flash-attn's CUDA extension (through
``openrlhf.models.ring_attn_utils``) and vLLM (through ``trainer/ray/vllm_engine.py`` and
``samples_generator.py``); neither can be loaded without a GPU. The code the tests
exercise (``Experience``, ``RemoteExperienceMaker``'s advantage computation, the CLI's
argument parser, ``PPOTrainer``'s construction without vLLM engines) never calls them.

``install()`` adds a stand-in only for a module that cannot be found (the real package
always wins) and only for exactly these names. Every stand-in attribute raises when
used, so a test that reached GPU code would fail loudly, never pass on a fake.
"""

from __future__ import annotations

import importlib.util
import sys
import types

# module name -> attributes OpenRLHF imports from it
SHIMMED: dict[str, tuple[str, ...]] = {
    # flash-attn installed without its CUDA build (FLASH_ATTENTION_SKIP_CUDA_BUILD)
    "flash_attn_2_cuda": (),
    # flash-attn not installed at all (pip install openrlhf --no-deps)
    "flash_attn": (),
    "flash_attn.bert_padding": ("index_first_axis", "pad_input", "rearrange", "unpad_input"),
    "flash_attn.utils": (),
    "flash_attn.utils.distributed": ("all_gather",),
    # vLLM (needs a GPU to import its kernels)
    "vllm": ("SamplingParams", "LLM"),
    "vllm.inputs": ("TokensPrompt",),
    "vllm.utils": ("random_uuid",),
}


def _unavailable(qualname: str):
    def stand_in(*_args, **_kwargs):
        raise RuntimeError(f"{qualname} is a CPU test shim: this code path needs a GPU")

    stand_in.__qualname__ = qualname
    return stand_in


def _missing(name: str) -> bool:
    if name in sys.modules:
        return False
    parent = name.rpartition(".")[0]
    if parent and parent not in sys.modules and _missing(parent):
        return True  # the parent package itself is absent
    try:
        return importlib.util.find_spec(name) is None
    except (ImportError, ValueError):
        return True


def install() -> list[str]:
    """Adds the stand-ins that are needed; returns their names."""
    added = []
    for name, attrs in SHIMMED.items():
        if name == "flash_attn" or name.startswith("flash_attn."):
            if not _missing("flash_attn"):
                continue  # the real (Python-only) flash-attn: only its CUDA module is shimmed
        elif not _missing(name):
            continue
        module = types.ModuleType(name)
        module.__doc__ = "CPU test shim (tests/openrlhf_cpu_shims.py)"
        module.__path__ = []  # a package, so submodules resolve from sys.modules
        module.__version__ = "0.0.0+cpu-test-shim"
        for attr in attrs:
            setattr(module, attr, _unavailable(f"{name}.{attr}"))
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if parent in sys.modules:
            setattr(sys.modules[parent], child, module)
        added.append(name)
    return added


# OpenRLHF modules the tests use, directly or through the CLI module the launcher runs.
PRELOAD = (
    "openrlhf.trainer.ppo_utils.experience_maker",
    "openrlhf.trainer.ppo_trainer",
    "openrlhf.trainer.ppo_trainer_async",
    "openrlhf.trainer.ray",
    "openrlhf.trainer.ray.launcher",
    "openrlhf.trainer.ray.ppo_actor",
    "openrlhf.trainer.ray.ppo_critic",
    "openrlhf.utils",
    "openrlhf.utils.agent",
)


def uninstall(names: list[str]) -> None:
    """Removes the stand-ins from ``sys.modules`` (modules that imported them keep their
    reference), so later availability checks (``find_spec("vllm")``) see the truth."""
    for name in names:
        sys.modules.pop(name, None)
        parent, _, child = name.rpartition(".")
        if parent in sys.modules and getattr(sys.modules[parent], child, None) is not None:
            delattr(sys.modules[parent], child)


def require_openrlhf() -> None:
    """Skips the calling test module when OpenRLHF is not installed, unless
    ``SAS_REQUIRE_OPENRLHF=1`` (set by ``make test``), where its absence is a failure.

    Then imports the OpenRLHF modules the tests use with the stand-ins in place, and
    takes the stand-ins out again: other tests in the same process never see them."""
    import importlib
    import os

    import pytest

    if os.environ.get("SAS_REQUIRE_OPENRLHF") == "1":
        import openrlhf  # noqa: F401
    else:
        pytest.importorskip("openrlhf")
    added = install()
    try:
        for name in PRELOAD:
            importlib.import_module(name)
    finally:
        uninstall(added)
