"""Entrypoint of the ``ray job submit`` test: a job driver that parses the command line
with the launcher and asks OpenRLHF's PPOTrainer actor for SAS advantages.

Usage: python openrlhf_job_entry.py OUT.json ARGS... (train_ppo_ray + SAS arguments)
"""

from __future__ import annotations

import json
import sys

import openrlhf_cpu_shims

openrlhf_cpu_shims.install()

import openrlhf_helpers as h  # noqa: E402
import ray  # noqa: E402

from sas_core.integrations.openrlhf.estimator import is_installed  # noqa: E402
from sas_core.integrations.openrlhf.launcher import parse_args  # noqa: E402


def main() -> None:
    out_path, argv = sys.argv[1], sys.argv[2:]
    args = parse_args(argv)
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
