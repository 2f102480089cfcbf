"""One version, from Cargo's workspace; the supported framework range checked at start."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import sas_core
from sas_core.requirements import MINIMUM, UnsupportedVersion, require

ROOT = Path(__file__).resolve().parents[1]


def test_one_version_everywhere():
    cargo = re.search(r'^version = "(.+)"$', (ROOT / "Cargo.toml").read_text(), re.M)[1]
    assert sas_core.__version__ == cargo == metadata.version("sas-core")
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## {cargo}" in changelog


@pytest.mark.parametrize(
    ("package", "version", "ok"),
    [
        ("torch", "2.1.2", False),
        ("torch", "2.2.0", True),
        ("torch", "2.15.0+cu132", True),
        ("trl", "1.15.9", False),
        ("trl", "1.16.0", True),
        ("trl", "2.0.0", False),
        ("openrlhf", "0.10.4", False),
        ("openrlhf", "0.11.2", True),
        ("openrlhf", "0.12.0", False),
        ("transformers", "4.56.1", False),
        ("transformers", "5.15.0", True),
    ],
)
def test_supported_range(package, version, ok):
    if ok:
        assert require(package, version) == version
    else:
        with pytest.raises(
            UnsupportedVersion, match=f"^{package} {re.escape(version)} is installed"
        ):
            require(package, version)


def test_missing_package_is_named():
    MINIMUM["no-such-framework"] = ("1.0", None)
    try:
        with pytest.raises(UnsupportedVersion, match=r"^no-such-framework is not installed"):
            require("no-such-framework")
    finally:
        del MINIMUM["no-such-framework"]


def test_readme_states_the_minimum_versions():
    readme = (ROOT / "README.md").read_text()
    for package, (low, _) in MINIMUM.items():
        assert re.search(rf"\| {package} \| {re.escape(low)}\b", readme), package


def test_trl_integration_refuses_an_old_trl_at_import():
    pytest.importorskip("trl")
    code = (
        "import importlib.metadata as m; real = m.version;"
        "m.version = lambda n: '1.10.0' if n == 'trl' else real(n);"
        "import sas_core.integrations.trl"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "trl 1.10.0 is installed; sas-core supports trl>=1.16,<2" in done.stderr
