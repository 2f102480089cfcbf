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

import contextvars
import functools
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from sas_core.integrations.verl.options import VerlSASOptions
from sas_core.segmenter import StepSegmenter
from sas_core.stats import warn_nonfinite_once
from sas_core.torch_api import sas_batch_step

__all__ = [
    "ESTIMATOR",
    "INPUTS",
    "Inputs",
    "UnsupportedVerl",
    "bind",
    "check_verl_version",
    "patch_module",
]

ESTIMATOR = "sas"
META_KEY = "sas_metrics"  # where the batch carries its sas/... statistics to the logger
MARK = "__sas_core_original__"
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


class _Run:
    """What one training run's advantage step needs, bound when its trainer is built."""

    def __init__(self) -> None:
        self.segmenter: StepSegmenter | None = None
        self.calls = 0
        self._sas_warned_nonfinite = False


_RUN = _Run()


@dataclass
class Inputs:
    """What a trainer hands ``compute_advantage`` beside its ``DataProto``: verl's V1
    trainer has no ``responses`` in it (:mod:`.v1`), nor a batch padded to the window."""

    responses: torch.Tensor  # (bs, width) right-padded ids, rows in the batch's order
    window: int  # rollout.response_length: a response this long was cut
    real: np.ndarray | None = None  # (bs,) bool: not a synthetic padding sample of verl's
    stats: dict = field(default_factory=dict)  # filled with the call's sas/... statistics


# Set around one V1 advantage step by :mod:`.v1`; unset in the legacy trainer.
INPUTS: contextvars.ContextVar[Inputs | None] = contextvars.ContextVar("sas_inputs", default=None)


def bind(tokenizer: Any, model: Any = None, *, think_end: str | None = None) -> StepSegmenter:
    """Builds the segmenter from the actor's tokenizer, sized to the model's embedding
    rows (``model``: a model, config, row count or local path); the trainer does this."""
    _RUN.segmenter = StepSegmenter.for_model(tokenizer, model, think_end=think_end)
    _RUN.calls = 0
    return _RUN.segmenter


def name_of(adv_estimator: Any) -> str:
    return getattr(adv_estimator, "value", adv_estimator)


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


def apply_sas(
    data: Any,
    options: VerlSASOptions,
    segmenter: StepSegmenter,
    *,
    call: int,
    inputs: Inputs | None = None,
) -> dict:
    """Zeroes the selected steps of ``data.batch["advantages"]`` in place; returns the
    batch's ``sas/...`` statistics. ``data`` holds verl's final advantages, and its
    ``responses`` unless ``inputs`` brings them (V1)."""
    batch = data.batch
    key = "old_log_probs" if options.logprobs == "old" else "rollout_log_probs"
    # TensorDict refuses `key in td`: membership goes through keys()
    if key not in batch.keys():  # noqa: SIM118
        hint = (
            "set actor_rollout_ref.rollout.calculate_log_probs=True"
            if key == "rollout_log_probs"
            else "the legacy trainer computes them unless rollout log-probs are used in bypass mode"
        )
        raise ValueError(
            f"logprobs: algorithm.sas.logprobs={options.logprobs} needs {key} ({hint})"
        )
    if "token_level_scores" not in batch.keys():  # noqa: SIM118
        raise ValueError("token_level_scores: the raw verifier scores decide correctness")
    mask = batch["response_mask"]
    responses = _responses(batch, mask, inputs)
    scores = batch["token_level_scores"]
    if scores.shape[0] != responses.shape[0]:
        raise ValueError(
            f"token_level_scores: {scores.shape[0]} rows for {responses.shape[0]} responses"
        )
    # Cut by the length limit: legacy pads to the window, so a response that fills its
    # last position; V1 pads to the batch's longest response, so one as long as the window.
    if inputs is not None:
        cut = {"window": inputs.window}
    elif mask.shape[1] == 0:  # a zero-width batch (verl's own grpo handles it too)
        cut = {"truncated": torch.zeros(mask.shape[0], dtype=torch.bool)}
    else:
        cut = {"truncated": mask[:, -1]}
    step = sas_batch_step(
        responses,
        batch[key],
        mask,
        batch["advantages"],
        scores.detach().float().sum(dim=-1),
        segmenter,
        options,
        **cut,
        call=call,
    )
    batch["advantages"] = step.advantages
    # As verl's own metrics: without the synthetic padding samples of V1's balancing.
    return dict(step.stats(inputs.real if inputs is not None else None))


def _responses(batch: Any, mask: torch.Tensor, inputs: Inputs | None) -> torch.Tensor:
    if inputs is None:
        if "responses" not in batch.keys():  # noqa: SIM118
            raise ValueError("responses: the sas estimator segments the response token ids")
        responses = batch["responses"]
        if tuple(responses.shape) != tuple(mask.shape):
            raise ValueError(
                f"responses: shape {tuple(responses.shape)} does not match response_mask "
                f"{tuple(mask.shape)}"
            )
        return responses
    if tuple(inputs.responses.shape) != tuple(mask.shape):
        raise ValueError(
            f"responses: {tuple(inputs.responses.shape)} from the TransferQueue for a "
            f"response_mask of {tuple(mask.shape)}"
        )
    return inputs.responses.to(mask.device)


def _wrap_compute_advantage(original: Any) -> Any:
    @functools.wraps(original)
    def compute_advantage(data: Any, adv_estimator: Any, *args: Any, **kwargs: Any) -> Any:
        if name_of(adv_estimator) != ESTIMATOR:
            return original(data, adv_estimator, *args, **kwargs)
        config = kwargs.get("config")
        options = VerlSASOptions.from_algorithm(config)
        if _RUN.segmenter is None:
            raise RuntimeError(
                "adv_estimator 'sas' has no tokenizer: it is bound when verl's trainer is "
                "built (or call sas_core.integrations.verl.estimator.bind(tokenizer, model))"
            )
        data = original(data, adv_estimator, *args, **kwargs)  # GRPO, verl's own
        with _lock:
            call, _RUN.calls = _RUN.calls, _RUN.calls + 1
        inputs = INPUTS.get()
        stats = apply_sas(data, options, _RUN.segmenter, call=call, inputs=inputs)
        data.meta_info[META_KEY] = stats  # read back by compute_data_metrics (legacy)
        if inputs is not None:
            inputs.stats = stats  # logged by the V1 trainer's step (see .v1)
        warn_nonfinite_once(_RUN, int(stats["sas/nonfinite_rollouts"]))
        return data

    setattr(compute_advantage, MARK, original)
    return compute_advantage


def _wrap_data_metrics(original: Any) -> Any:
    @functools.wraps(original)
    def compute_data_metrics(batch: Any, *args: Any, **kwargs: Any) -> dict:
        metrics = original(batch, *args, **kwargs)
        metrics.update(getattr(batch, "meta_info", {}).get(META_KEY, {}))
        return metrics

    setattr(compute_data_metrics, MARK, original)
    return compute_data_metrics


def _wrap_legacy_init(original: Any) -> Any:
    @functools.wraps(original)
    def __init__(self: Any, config: Any, tokenizer: Any, *args: Any, **kwargs: Any) -> None:
        original(self, config, tokenizer, *args, **kwargs)
        if name_of(config.algorithm.adv_estimator) == ESTIMATOR:
            options = VerlSASOptions.from_algorithm(config.algorithm)  # fails at start
            model = config.actor_rollout_ref.model.get("path")
            bind(tokenizer, local_model_path(model), think_end=options.think_end)

    setattr(__init__, MARK, original)
    return __init__


def local_model_path(path: Any) -> Any:
    """verl copies hdfs/remote models locally; a local path or hub name is read as is."""
    try:
        from verl.utils.fs import copy_to_local

        return copy_to_local(path) if path else None
    except Exception:  # the segmenter then takes the tokenizer's size
        return path


def _patch_attr(owner: Any, name: str, wrap: Any) -> None:
    current = getattr(owner, name)
    if not hasattr(current, MARK):
        setattr(owner, name, wrap(current))


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
            _patch_attr(module, "compute_advantage", _wrap_compute_advantage)
            _patch_attr(module, "compute_data_metrics", _wrap_data_metrics)
            _patch_attr(module.RayPPOTrainer, "__init__", _wrap_legacy_init)
        elif module.__name__.endswith("v1.trainer_base"):
            from sas_core.integrations.verl import v1

            for name, wrap in v1.WRAPPERS.items():
                _patch_attr(module.PPOTrainer, name, wrap)
            # v1/utils.py imported compute_advantage by name from ray_trainer, patched
            # on its import; a process that imported it before sas-core gets it here.
            utils = sys.modules.get("verl.trainer.ppo.v1.utils")
            if utils is not None:
                _patch_attr(utils, "compute_advantage", _wrap_compute_advantage)


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

        setattr(__init__, MARK, original)
        return __init__

    register_adv_est = getattr(module, "register_adv_est", None)
    registry = getattr(module, "ADV_ESTIMATOR_REGISTRY", {})
    if register_adv_est is not None and ESTIMATOR not in registry:
        register_adv_est(ESTIMATOR)(refusing_estimator)
    for name in ("RayPPOTrainer", "PPOTrainer"):
        cls = getattr(module, name, None)
        if isinstance(cls, type):
            _patch_attr(cls, "__init__", refusing_init)


def is_installed() -> bool:
    """Whether this process's verl trainer computes ``sas`` advantages."""
    from verl.trainer.ppo import core_algos

    module = sys.modules.get("verl.trainer.ppo.ray_trainer")
    return (
        module is not None
        and hasattr(module.compute_advantage, MARK)
        and core_algos.ADV_ESTIMATOR_REGISTRY.get(ESTIMATOR) is _grpo_part
    )
