"""Adapters that make SAS the advantage estimator of RL frameworks.

Each submodule imports its framework lazily: ``import sas_core`` never needs them.
"""
