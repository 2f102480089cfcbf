"""OpenRLHF's GPU-only imports, and stand-ins that let its CLI parse without them.

OpenRLHF 0.11's ``train_ppo_ray`` imports, at module level, vLLM (through
``trainer/ray/vllm_engine.py`` and ``samples_generator.py``) and flash-attn's CUDA
extension (through ``openrlhf.models.ring_attn_utils``). On a laptop or a login node
neither exists, yet ``--help`` and a dry run only need OpenRLHF's argument parser. So
for parsing only, :func:`stand_ins` adds a placeholder for each of these modules that
cannot be found (the real package always wins); every placeholder attribute raises
when used, so nothing can run on a fake. A real run without them stops at start with
:func:`missing_message`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import types
from collections.abc import Iterator

VLLM_REQUIREMENT = "vllm==0.29.0"  # OpenRLHF 0.11's `vllm` extra

# module name -> attributes OpenRLHF imports from it
GPU_MODULES: dict[str, tuple[str, ...]] = {
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


def _is_missing(name: str) -> bool:
    if name in sys.modules:
        return sys.modules[name] is None
    parent = name.rpartition(".")[0]
    if parent and parent not in sys.modules and _is_missing(parent):
        return True  # the parent package itself is absent
    try:
        return importlib.util.find_spec(name) is None
    except (ImportError, ValueError):
        return True


def missing() -> list[str]:
    """The GPU-only modules OpenRLHF imports that cannot be found here."""
    names = []
    for name in GPU_MODULES:
        in_flash_attn = name == "flash_attn" or name.startswith("flash_attn.")
        if in_flash_attn and not _is_missing("flash_attn"):
            continue  # the real (Python-only) flash-attn: only its CUDA module may lack
        if _is_missing(name):
            names.append(name)
    return names


def missing_message(names: list[str]) -> str:
    """One line saying what to install for a real run."""
    wants = []
    if any(n.startswith("vllm") for n in names):
        wants.append(f'vLLM ("pip install {VLLM_REQUIREMENT}", needs a CUDA GPU)')
    if any(n.startswith("flash_attn") for n in names):
        wants.append('flash-attn with its CUDA build ("pip install flash-attn==2.8.3")')
    return (
        "OpenRLHF's training needs "
        + " and ".join(wants)
        + "; --help and SAS_OPENRLHF_DRY_RUN=1 work without them"
    )


def _unavailable(qualname: str):
    def stand_in(*_args, **_kwargs):
        raise RuntimeError(f"{qualname} is a stand-in for parsing only: this needs a GPU stack")

    stand_in.__qualname__ = qualname
    return stand_in


def install(names: list[str]) -> None:
    """Adds placeholder modules for ``names`` (from :data:`GPU_MODULES`)."""
    for name in names:
        module = types.ModuleType(name)
        module.__doc__ = "stand-in for parsing only (sas_core.integrations.openrlhf.gpu_stack)"
        module.__path__ = []  # a package, so submodules resolve from sys.modules
        module.__version__ = "0.0.0+stand-in"
        for attr in GPU_MODULES[name]:
            setattr(module, attr, _unavailable(f"{name}.{attr}"))
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if parent in sys.modules:
            setattr(sys.modules[parent], child, module)


def uninstall(names: list[str]) -> None:
    """Removes the placeholders from ``sys.modules`` (modules that imported them keep
    their reference), so later availability checks see the truth."""
    for name in names:
        sys.modules.pop(name, None)
        parent, _, child = name.rpartition(".")
        if parent in sys.modules and getattr(sys.modules[parent], child, None) is not None:
            delattr(sys.modules[parent], child)


@contextlib.contextmanager
def stand_ins() -> Iterator[list[str]]:
    """Placeholders for the missing GPU-only modules while the block runs."""
    names = missing()
    install(names)
    try:
        yield names
    finally:
        uninstall(names)
