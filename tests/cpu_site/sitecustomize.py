"""TEST-ONLY: installs tests/openrlhf_cpu_shims.py in every Python process started with
this folder (and tests/) on PYTHONPATH, e.g. the launch scripts the tests run."""

import openrlhf_cpu_shims

openrlhf_cpu_shims.install()
