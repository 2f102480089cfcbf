"""Loads the OpenRLHF CPU harness in every Python process started with this folder on
``PYTHONPATH``: the driver of ``python -m openrlhf.cli.train_ppo_ray`` and each Ray
worker it starts (they inherit the driver's environment). Test code, never shipped."""

import openrlhf_cpu_harness  # noqa: F401
