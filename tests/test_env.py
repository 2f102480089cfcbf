"""`sas-core env`: the versions and facts a bug report needs, as text and JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import sas_core
from sas_core import environment


def _env(*args: str, **extra_env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sas_core.cli", "env", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **extra_env},
    )


def test_json_report_matches_the_installed_packages():
    proc = _env("--json", SAS_CORE_NUM_THREADS="3")
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    import numpy

    assert rep["packages"]["numpy"] == numpy.__version__
    assert rep["packages"]["sas-core"] == sas_core.__version__
    ext = rep["extension"]
    assert ext["loaded"] is True and ext["version"] == sas_core.__version__
    assert ext["default_threads"] == 3 and ext["SAS_CORE_NUM_THREADS"] == "3"
    assert rep["cpu_count"] == os.cpu_count()
    torch = pytest.importorskip("torch")
    assert rep["packages"]["torch"] == torch.__version__.split("+")[0]  # metadata: no local tag
    acc = rep["accelerators"]
    assert acc["available"] == torch.cuda.is_available()
    assert len(acc["devices"]) == (torch.cuda.device_count() if acc["available"] else 0)
    assert proc.stderr == ""  # torch's import-time notices are not the report's


def test_text_report_names_every_package_and_the_extension():
    proc = _env()
    assert proc.returncode == 0, proc.stderr
    for name in environment.PACKAGES:
        assert any(line.startswith(f"- {name}: ") for line in proc.stdout.splitlines()), name
    assert "- Rust extension: loaded (" in proc.stdout
    assert "- accelerators: " in proc.stdout


def test_missing_package_and_broken_extension_are_reported(monkeypatch):
    assert environment.package_version("no-such-package-sas-core-test") is None
    monkeypatch.setitem(sys.modules, "sas_core._core", None)  # import raises ImportError
    monkeypatch.delattr(sas_core, "_core", raising=False)
    ext = environment.extension()
    assert ext["loaded"] is False and "sas_core._core" in ext["error"]
    text = environment.as_text({**environment.report(devices=False), "extension": ext})
    assert "Rust extension: NOT loaded" in text
