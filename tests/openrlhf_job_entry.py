"""Entrypoint of the ``ray job submit`` test: a job driver that parses the command line
and asks OpenRLHF's PPOTrainer actor for SAS advantages.

Usage: python openrlhf_job_entry.py launcher|openrlhf-cli OUT.json ARGS...
(ARGS: train_ppo_ray + SAS arguments). ``launcher`` parses with ``sas-openrlhf-train``'s
``parse_args``; ``openrlhf-cli`` runs OpenRLHF's own ``train_ppo_ray`` module, as
``python -m openrlhf.cli.train_ppo_ray`` does, with ``sas`` registered by the installed
start-up hook alone, and stops it where the dry run would print.
"""

from __future__ import annotations

import json
import os
import runpy
import sys

import openrlhf_cpu_shims

openrlhf_cpu_shims.install()

import openrlhf_helpers as h  # noqa: E402
import ray  # noqa: E402

from sas_core.integrations.openrlhf.estimator import is_installed  # noqa: E402


class _Parsed(Exception):
    def __init__(self, args: object) -> None:
        super().__init__("parsed")
        self.parsed = args


def _parse_with_openrlhfs_own_cli(argv: list[str]) -> object:
    import sas_core.integrations.openrlhf.cli_patch as cli_patch

    def stop(args: object) -> None:
        raise _Parsed(args)

    cli_patch._exit_after_dry_run = stop  # where the dry run would print and exit
    os.environ["SAS_OPENRLHF_DRY_RUN"] = "1"
    sys.argv = ["train_ppo_ray.py", *argv]
    try:
        runpy.run_module("openrlhf.cli.train_ppo_ray", run_name="__main__")
    except _Parsed as parsed:
        return parsed.parsed
    raise AssertionError("OpenRLHF's CLI returned without parsing through the hook")


def main() -> None:
    mode, out_path, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
    if mode == "launcher":
        from sas_core.integrations.openrlhf.launcher import parse_args

        args = parse_args(argv)
    else:
        args = _parse_with_openrlhfs_own_cli(argv)
        assert "sas_core.integrations.openrlhf.launcher" not in sys.modules
    ray.init()  # joins the cluster the job was submitted to
    trainer = h.trainer_actor(args)
    got = ray.get(trainer.__ray_call__.remote(h.probe_trainer, h.make_experiences(12)))
    with open(out_path, "w") as f:
        json.dump(
            {
                "driver_installed": is_installed(),
                "actor_installed": got["installed"],
                "estimator": got["estimator"],
                "zeroed": sum(float(i["sas/zeroed_token_frac"].sum()) for i in got["info"]),
            },
            f,
        )


if __name__ == "__main__":
    main()
