"""The ``verl.plugins`` entry point: loaded by ``import verl`` in every verl process
(vLLM workers included), so it imports nothing heavy (no torch, no verl module). It
registers ``sas`` when ``verl.trainer.ppo.core_algos`` is imported and patches the
trainer modules when they are, through an import hook; modules already imported are
patched at once."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from types import ModuleType
from typing import Any

# The modules whose import installs SAS (see sas_core.integrations.verl.estimator).
TARGETS = (
    "verl.trainer.ppo.core_algos",
    "verl.trainer.ppo.ray_trainer",
    "verl.trainer.ppo.v1.trainer_base",
)


def _patch(module: ModuleType) -> None:
    from sas_core.integrations.verl.estimator import patch_module

    patch_module(module)


class _Loader(importlib.abc.Loader):
    """The real loader, then the patch."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.inner.exec_module(module)
        _patch(module)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name not in TARGETS:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _Loader(spec.loader)
                return spec
        return None


def install_import_hook() -> None:
    """Patches the target modules now if imported, else when they are (idempotent)."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
    for name in TARGETS:
        if name in sys.modules:
            _patch(sys.modules[name])


install_import_hook()
