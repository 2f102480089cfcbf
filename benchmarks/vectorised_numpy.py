"""The vectorised numpy contender: shipped in the package (``sas-core bench`` times it)."""

from sas_core.tools.numpy_mask import NumpyTable, keep_mask, sas_mask, segment

__all__ = ["NumpyTable", "keep_mask", "sas_mask", "segment"]
