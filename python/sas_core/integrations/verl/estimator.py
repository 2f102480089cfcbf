"""The ``sas`` estimator in verl 0.9's trainer (see the package docstring).

Facts of verl 0.9.1's source this relies on:
- ``verl/trainer/ppo/core_algos.py``: ``register_adv_est(name)`` and
  ``compute_grpo_outcome_advantage(token_level_rewards, response_mask, index, epsilon,
  norm_adv_by_std_in_grpo)``, grouping by ``index`` (the prompt ``uid``).
- ``verl/trainer/ppo/ray_trainer.py``: ``RayPPOTrainer.fit`` (legacy trainer) calls the
  module-level ``compute_advantage(data, adv_estimator, gamma, lam, num_repeat,
  norm_adv_by_std_in_grpo, config=self.config.algorithm)`` with a ``DataProto`` holding
  ``responses``, ``response_mask``, ``old_log_probs``, ``token_level_scores`` (the raw
  reward) and ``token_level_rewards`` (after the KL-in-reward penalty, if on); a
  registered estimator gets ``token_level_rewards``, ``response_mask``, ``config`` and
  ``index`` only. ``fit`` then logs ``compute_data_metrics(batch=..., use_critic=...)``.
- ``verl/trainer/ppo/v1/trainer_base.py`` (V1, the default since 0.9.0): see
  :mod:`.v1`, which hands this module's ``compute_advantage`` the response ids V1
  does not fetch.
"""

from __future__ import annotations

import functools
import sys
import threading
from typing import Any

import torch

from sas_core.integrations._patching import MARK, is_patched, mark, patch_attr
from sas_core.integrations.verl import v1
from sas_core.integrations.verl.batch import (
    ESTIMATOR,
    INPUTS,
    META_KEY,
    Inputs,
    apply_sas,
    bind,
    bound,
    calls,
    local_model_path,
    name_of,
    options_of,
    step,
    unbind,
)

__all__ = [
    "ESTIMATOR",
    "INPUTS",
    "MARK",
    "META_KEY",
    "Inputs",
    "UnsupportedVerl",
    "apply_sas",
    "bind",
    "bound",
    "calls",
    "check_verl_version",
    "local_model_path",
    "name_of",
    "patch_module",
    "unbind",
]

_lock = threading.Lock()


class UnsupportedVerl(RuntimeError):
    """A verl release whose trainer internals this integration does not know."""


def check_verl_version() -> str:
    import verl

    from sas_core.requirements import UnsupportedVersion, require

    version = str(getattr(verl, "__version__", "0"))
    try:
        return require("verl", version)
    except UnsupportedVersion as e:
        raise UnsupportedVerl(
            f"{e} (its trainer's advantage step is wrapped): pip install 'sas-core[verl]'"
        ) from None


def _grpo_part(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: Any = None,
    config: Any = None,
    **_: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The registered ``sas`` estimator: verl's own GRPO outcome advantage (the step
    selection is applied where the responses are at hand, in ``compute_advantage``)."""
    from verl.trainer.ppo import core_algos

    if index is None:
        raise ValueError("index: the sas estimator groups rollouts by the prompt uid")
    norm = config.get("norm_adv_by_std_in_grpo", True) if config is not None else True
    return core_algos.compute_grpo_outcome_advantage(
        token_level_rewards=token_level_rewards,
        response_mask=response_mask,
        index=index,
        norm_adv_by_std_in_grpo=norm,
    )


def register() -> None:
    from verl.trainer.ppo import core_algos

    if core_algos.ADV_ESTIMATOR_REGISTRY.get(ESTIMATOR) is not _grpo_part:
        core_algos.register_adv_est(ESTIMATOR)(_grpo_part)


def _wrap_compute_advantage(original: Any) -> Any:
    @functools.wraps(original)
    def compute_advantage(data: Any, adv_estimator: Any, *args: Any, **kwargs: Any) -> Any:
        if name_of(adv_estimator) != ESTIMATOR:
            return original(data, adv_estimator, *args, **kwargs)
        options = options_of(kwargs.get("config"))
        if bound() is None:
            raise RuntimeError(
                "adv_estimator 'sas' has no tokenizer: it is bound when verl's trainer is "
                "built (or call sas_core.integrations.verl.estimator.bind(tokenizer, model))"
            )
        data = original(data, adv_estimator, *args, **kwargs)  # GRPO, verl's own
        inputs = INPUTS.get()
        stats = step(data, options, inputs)
        data.meta_info[META_KEY] = stats  # read back by compute_data_metrics (legacy)
        if inputs is not None:
            inputs.stats = stats  # logged by the V1 trainer's step (see .v1)
        return data

    return mark(compute_advantage, original)


def _wrap_data_metrics(original: Any) -> Any:
    @functools.wraps(original)
    def compute_data_metrics(batch: Any, *args: Any, **kwargs: Any) -> dict:
        metrics = original(batch, *args, **kwargs)
        metrics.update(getattr(batch, "meta_info", {}).get(META_KEY, {}))
        return metrics

    return mark(compute_data_metrics, original)


def _wrap_legacy_init(original: Any) -> Any:
    @functools.wraps(original)
    def __init__(self: Any, config: Any, tokenizer: Any, *args: Any, **kwargs: Any) -> None:
        original(self, config, tokenizer, *args, **kwargs)
        if name_of(config.algorithm.adv_estimator) == ESTIMATOR:
            options = options_of(config.algorithm)  # fails at start
            model = config.actor_rollout_ref.model.get("path")
            bind(tokenizer, local_model_path(model), **options.segmenter_options())

    return mark(__init__, original)


def patch_module(module: Any) -> None:
    """Installs SAS in a just-imported verl trainer module (idempotent). Under a verl
    release this integration does not know, verl itself is left working and only a run
    that asks for ``sas`` is refused (see :func:`_refuse`)."""
    try:
        check_verl_version()
    except UnsupportedVerl as error:
        _refuse(module, error)
        return
    if module.__name__.endswith("ppo.core_algos"):
        register()
        return
    register()
    with _lock:
        if module.__name__.endswith("ppo.ray_trainer"):
            patch_attr(module, "compute_advantage", _wrap_compute_advantage)
            patch_attr(module, "compute_data_metrics", _wrap_data_metrics)
            patch_attr(module.RayPPOTrainer, "__init__", _wrap_legacy_init)
        elif module.__name__.endswith("v1.trainer_base"):
            for name, wrap in v1.WRAPPERS.items():
                patch_attr(module.PPOTrainer, name, wrap)
            # v1/utils.py imported compute_advantage by name from ray_trainer, patched
            # on its import; a process that imported it before sas-core gets it here.
            utils = sys.modules.get("verl.trainer.ppo.v1.utils")
            if utils is not None:
                patch_attr(utils, "compute_advantage", _wrap_compute_advantage)


def _refuse(module: Any, error: UnsupportedVerl) -> None:
    """Another verl release: ``sas`` is registered as an estimator that raises ``error``
    (so the config is not rejected with a vaguer message), and the trainers it can find
    raise it when built with ``adv_estimator=sas``: at start, before any GPU work."""

    def refusing_estimator(*args: Any, **kwargs: Any) -> Any:
        raise error

    def refusing_init(original: Any) -> Any:
        @functools.wraps(original)
        def __init__(self: Any, config: Any, *args: Any, **kwargs: Any) -> None:
            if name_of(config.algorithm.adv_estimator) == ESTIMATOR:
                raise error
            original(self, config, *args, **kwargs)

        return mark(__init__, original)

    register_adv_est = getattr(module, "register_adv_est", None)
    registry = getattr(module, "ADV_ESTIMATOR_REGISTRY", {})
    if register_adv_est is not None and ESTIMATOR not in registry:
        register_adv_est(ESTIMATOR)(refusing_estimator)
    for name in ("RayPPOTrainer", "PPOTrainer"):
        cls = getattr(module, name, None)
        if isinstance(cls, type):
            patch_attr(cls, "__init__", refusing_init)


def is_installed() -> bool:
    """Whether this process's verl trainer computes ``sas`` advantages."""
    from verl.trainer.ppo import core_algos

    module = sys.modules.get("verl.trainer.ppo.ray_trainer")
    return (
        module is not None
        and is_patched(module.compute_advantage)
        and core_algos.ADV_ESTIMATOR_REGISTRY.get(ESTIMATOR) is _grpo_part
    )
