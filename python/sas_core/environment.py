"""What a bug report needs, in one place (``sas-core env``, and every demo result):
versions of sas-core and the frameworks around it, whether the Rust extension loaded and
with how many threads, the CPU, and the CUDA/ROCm devices torch sees.

Nothing here imports a framework just to read its version (``importlib.metadata``), so
it is quick and works where vLLM or a GPU stack is missing; torch is imported only for
its devices, and only when installed.
"""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PACKAGES = (
    "sas-core",
    "numpy",
    "torch",
    "transformers",
    "trl",
    "openrlhf",
    "verl",
    "vllm",
    "deepspeed",
    "ray",
    "math-verify",
    "tokenizers",
)


def package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def extension() -> dict:
    """Whether ``sas_core._core`` loads, from where, and its default thread count."""
    try:
        from sas_core import _core
    except ImportError as e:  # a broken build: say so rather than fail
        return {"loaded": False, "error": str(e)}
    return {
        "loaded": True,
        "path": getattr(_core, "__file__", None),
        "version": _core.__version__,
        "default_threads": _core.default_num_threads()[0],
        "SAS_CORE_NUM_THREADS": os.environ.get("SAS_CORE_NUM_THREADS"),
    }


def accelerators() -> dict:
    """CUDA or ROCm devices as torch sees them (torch absent: None)."""
    if package_version("torch") is None:
        return {"torch": None}
    import warnings

    with warnings.catch_warnings():  # torch's own import-time deprecation notices
        warnings.simplefilter("ignore")
        import torch

    out: dict = {
        "cuda_build": torch.version.cuda,
        "rocm_build": getattr(torch.version, "hip", None),
        "available": torch.cuda.is_available(),
        "devices": [],
    }
    if out["available"]:
        out["devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return out


def report(*, devices: bool = True) -> dict:
    """The whole report as a JSON-able dict."""
    return {
        "packages": {name: package_version(name) for name in PACKAGES},
        "extension": extension(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "accelerators": accelerators() if devices else None,
    }


def as_text(rep: dict) -> str:
    """The report as ``key: value`` lines, for pasting into an issue."""
    lines = [f"- {name}: {v or 'not installed'}" for name, v in rep["packages"].items()]
    ext = rep["extension"]
    if ext["loaded"]:
        threads = ext["default_threads"]
        lines.append(f"- Rust extension: loaded ({ext['path']}), {threads} threads by default")
    else:
        lines.append(f"- Rust extension: NOT loaded ({ext['error']})")
    lines += [
        f"- Python: {rep['python']}",
        f"- platform: {rep['platform']}",
        f"- CPU: {rep['cpu']} ({rep['cpu_count']} logical cores)",
    ]
    acc = rep["accelerators"]
    if acc is None or acc.get("torch", 0) is None:
        lines.append("- accelerators: unknown (torch not installed)")
    else:
        build = f"CUDA {acc['cuda_build']}" if acc["cuda_build"] else f"ROCm {acc['rocm_build']}"
        if not acc["cuda_build"] and not acc["rocm_build"]:
            build = "CPU-only build"
        devices = ", ".join(acc["devices"]) if acc["devices"] else "none visible"
        lines.append(f"- accelerators: torch {build}; devices: {devices}")
    return "\n".join(lines)
