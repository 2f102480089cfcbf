"""SAS as an advantage estimator of OpenRLHF (0.11.x): ``--algo.advantage.estimator sas``.

    sas-openrlhf-train --algo.advantage.estimator sas --algo.advantage.sas.ratio 0.3 \\
        <any other arguments of python -m openrlhf.cli.train_ppo_ray>

(or ``python -m sas_core.integrations.openrlhf ...``; it works as the entrypoint of
``ray job submit`` too). The launcher runs OpenRLHF's own CLI with ``sas`` registered;
the estimator itself is installed in the Ray actor that computes advantages (see
``estimator.py``). ``reward_func.py`` in this folder is a math-verify reward for
``--reward.remote_url``; ``reward_func_path()`` gives its path.

Install with ``pip install "sas-core[openrlhf]"``.
"""

from __future__ import annotations

from pathlib import Path

from sas_core.integrations.openrlhf.compat import (
    SUPPORTED,
    UnsupportedOpenRLHF,
    check_openrlhf_version,
)
from sas_core.integrations.openrlhf.options import OpenRLHFSASOptions, add_sas_arguments

__all__ = [
    "SUPPORTED",
    "OpenRLHFSASOptions",
    "UnsupportedOpenRLHF",
    "add_sas_arguments",
    "check_openrlhf_version",
    "install",
    "reward_func_path",
]


def install() -> None:
    """Registers ``sas`` with this process's OpenRLHF experience maker (idempotent)."""
    from sas_core.integrations.openrlhf.estimator import install as _install

    _install()


def reward_func_path() -> str:
    """Path of the math-verify ``reward_func`` file for ``--reward.remote_url``."""
    return str(Path(__file__).with_name("reward_func.py"))
