"""The oldest framework releases sas-core supports, stated once and checked at start.

An integration calls :func:`require` before it touches a framework's internals, so an
old release fails with one clear line naming what is installed and what is needed,
not with an AttributeError deep inside training. The README's table is this dict.
"""

from __future__ import annotations

import re
from importlib import metadata

# package -> (minimum, first unsupported major or None)
MINIMUM: dict[str, tuple[str, str | None]] = {
    "torch": ("2.2", None),
    "transformers": ("4.56.2", None),  # TRL 1.16's own floor
    "trl": ("1.16", "2"),
    "openrlhf": ("0.11", "0.12"),  # one series: its experience maker is patched
    "verl": ("0.9", "0.10"),  # one series: its trainer's advantage step is wrapped
}


class UnsupportedVersion(ImportError):
    """A framework is missing or outside the supported range."""


def _release(version: str) -> tuple[int, ...]:
    """The numeric release of a version string ('2.15.0+cu132' -> (2, 15, 0))."""
    m = re.match(r"\d+(\.\d+)*", version)
    return tuple(int(p) for p in m.group(0).split(".")) if m else ()


def supported(package: str) -> str:
    low, high = MINIMUM[package]
    return f"{package}>={low}" + (f",<{high}" if high else "")


def require(package: str, installed: str | None = None) -> str:
    """The installed version of ``package``; raises :class:`UnsupportedVersion` if it is
    missing or outside :data:`MINIMUM` (``installed`` overrides, for tests)."""
    if installed is None:
        try:
            installed = metadata.version(package)
        except metadata.PackageNotFoundError:
            raise UnsupportedVersion(
                f"{package} is not installed; sas-core needs {supported(package)}"
            ) from None
    low, high = MINIMUM[package]
    have = _release(installed)
    if have < _release(low) or (high is not None and have >= _release(high)):
        raise UnsupportedVersion(
            f"{package} {installed} is installed; sas-core supports {supported(package)}"
        )
    return installed
