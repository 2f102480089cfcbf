"""Which OpenRLHF releases this integration knows the internals of.

The estimator wraps ``RemoteExperienceMaker.compute_advantages_and_returns`` and reads
``Experience`` fields by name, so an unknown release is refused at start, before any
GPU work, rather than failing deep inside training.
"""

from __future__ import annotations

from importlib import metadata

from sas_core.requirements import MINIMUM

__all__ = ["SUPPORTED", "UnsupportedOpenRLHF", "check_openrlhf_version", "supported_text"]

# Release series (major.minor) whose experience maker and CLI were checked.
SUPPORTED: tuple[str, ...] = (MINIMUM["openrlhf"][0],)


class UnsupportedOpenRLHF(RuntimeError):
    """OpenRLHF is missing or a release whose internals this integration does not know."""


def supported_text() -> str:
    return ", ".join(f"{s}.x" for s in SUPPORTED)


def check_openrlhf_version(version: str | None = None) -> str:
    """Returns the installed OpenRLHF version, or raises :class:`UnsupportedOpenRLHF`.

    ``version`` overrides the installed one (for tests and error messages).
    """
    if version is None:
        try:
            version = metadata.version("openrlhf")
        except metadata.PackageNotFoundError:
            raise UnsupportedOpenRLHF(
                "OpenRLHF is not installed; sas-core's OpenRLHF integration supports "
                f"openrlhf {supported_text()}: pip install 'sas-core[openrlhf]'"
            ) from None
    parts = version.split(".")
    series = ".".join(parts[:2])
    if series not in SUPPORTED:
        raise UnsupportedOpenRLHF(
            f"openrlhf {version} is installed, but sas-core's OpenRLHF integration supports "
            f"only openrlhf {supported_text()} (it patches that release's experience "
            "maker). Install a supported release, e.g. pip install 'openrlhf>=0.11,<0.12'."
        )
    return version
