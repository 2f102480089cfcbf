"""``python -m sas_core.integrations.openrlhf``: same as ``sas-openrlhf-train``."""

from sas_core.integrations.openrlhf.launcher import main

main()
