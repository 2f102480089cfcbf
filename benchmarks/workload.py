"""The benchmark workloads: shipped in the package (``sas-core bench`` uses them too)."""

from sas_core.tools.workload import SIZES, Workload, make_workload, workload

__all__ = ["SIZES", "Workload", "make_workload", "workload"]
