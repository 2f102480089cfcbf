"""Import OpenRLHF 0.11's modules on a CPU machine, for the tests.

OpenRLHF imports vLLM and flash-attn's CUDA extension at module level; neither loads
without a GPU. The code the tests exercise (``Experience``, ``RemoteExperienceMaker``'s
advantage computation, the CLI's argument parser, ``PPOTrainer``'s construction without
vLLM engines) never calls them. The tests import OpenRLHF with the launcher's own
parse-only placeholders (``sas_core.integrations.openrlhf.gpu_stack``: added only for
modules that cannot be found, every attribute raises when used), then take them out.
"""

from __future__ import annotations

from sas_core.integrations.openrlhf.gpu_stack import install as _install
from sas_core.integrations.openrlhf.gpu_stack import missing, uninstall


def install() -> list[str]:
    """Adds the placeholders that are needed; returns their names."""
    names = missing()
    _install(names)
    return names


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
