"""Marking and undoing the patches the framework integrations put on their hosts.

A wrapper carries the function it replaced under :data:`MARK`, so that patching twice
is a no-op, ``is_patched`` can tell, and ``unpatch_attr`` can put the original back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["MARK", "is_patched", "mark", "patch_attr", "unpatch_attr"]

MARK = "__sas_core_original__"


def mark(wrapper: Any, original: Any) -> Any:
    """Records on ``wrapper`` the ``original`` it replaces; returns ``wrapper``."""
    setattr(wrapper, MARK, original)
    return wrapper


def is_patched(fn: Any) -> bool:
    return hasattr(fn, MARK)


def patch_attr(owner: Any, name: str, wrap: Callable[[Any], Any]) -> bool:
    """Replaces ``owner.name`` by ``wrap(owner.name)`` unless already patched (the
    wrapper must be :func:`mark`-ed); returns whether it patched now."""
    current = getattr(owner, name)
    if is_patched(current):
        return False
    setattr(owner, name, wrap(current))
    return True


def unpatch_attr(owner: Any, name: str) -> bool:
    """Puts back what :func:`patch_attr` replaced; returns whether there was a patch."""
    current = getattr(owner, name)
    if not is_patched(current):
        return False
    setattr(owner, name, getattr(current, MARK))
    return True
