"""``sas`` in verl 0.9's V1 trainer (``trainer.use_v1=True``, the default since 0.9.0).

Facts of verl 0.9.1's ``verl/trainer/ppo/v1/trainer_base.py`` this relies on:
- ``PPOTrainer.__init__(config)`` builds nothing heavy; ``_init_tokenizer()`` (the
  first step of ``init()``) sets ``self.tokenizer`` from ``actor_rollout_ref.model``.
- ``PPOTrainer._compute_advantage(batch: KVBatchMeta, metrics)`` fetches ``uid,
  response_mask, rm_scores, rollout_log_probs, old_log_probs, ref_log_prob, values``
  of ``batch.keys`` from the TransferQueue (``tq.kv_batch_get``), pads them into a
  ``DataProto`` (``to_padded_tensor``: right padding to the batch's longest response),
  sets ``token_level_scores = rm_scores`` and calls
  ``v1/utils.compute_advantage_for_multi_trajectories``, which hands an estimator other
  than ``grpo`` to ``ray_trainer.compute_advantage`` unchanged (imported by name, so
  the wrapped one: see ``estimator.patch_module``). The advantages go back to the
  TransferQueue; ``metrics`` is the step's metrics dict, logged as it is.
- ``_balance_batch`` may append synthetic padding samples (``padding_utils``: one
  masked EOS token, a uid of their own, key ``{pad_uid}_{i}_0``, tag ``is_padding``)
  before the advantage step; its metrics leave them out.
- The agent loop stores one row per output under the key ``{uid}_{session_id}_{index}``
  (``v1/agent_loop_tq.py``); a session (one of the ``rollout.n`` samples) has several
  outputs only in agent loops that restart their context.

What ``responses`` V1 does not fetch, the wrapper of ``_compute_advantage`` fetches for
the same keys and hands to ``compute_advantage`` through :data:`sas_batch.INPUTS`.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch

from sas_core.integrations._patching import mark
from sas_core.integrations.verl import batch as sas_batch

__all__ = ["WRAPPERS", "fetch_responses"]


def _is_sas(config: Any) -> bool:
    return sas_batch.name_of(config.algorithm.adv_estimator) == sas_batch.ESTIMATOR


def _wrap_init(original: Any) -> Any:
    @functools.wraps(original)
    def __init__(self: Any, config: Any, *args: Any, **kwargs: Any) -> None:
        if _is_sas(config):
            sas_batch.options_of(config.algorithm)  # fails at start, naming the key
        original(self, config, *args, **kwargs)

    return mark(__init__, original)


def _wrap_init_tokenizer(original: Any) -> Any:
    @functools.wraps(original)
    def _init_tokenizer(self: Any, *args: Any, **kwargs: Any) -> Any:
        out = original(self, *args, **kwargs)
        if _is_sas(self.config):
            options = sas_batch.options_of(self.config.algorithm)
            model = sas_batch.local_model_path(self.config.actor_rollout_ref.model.get("path"))
            sas_batch.bind(self.tokenizer, model, **options.segmenter_options())
        return out

    return mark(_init_tokenizer, original)


def _check_one_output_per_session(keys: list[str]) -> None:
    """SAS scores each rollout's response against its group; verl's V1 ``grpo`` folds a
    session's several outputs into one, which ``sas`` does not: refused, not mis-scored."""
    for key in keys:
        parts = key.rsplit("_", 2)
        if len(parts) == 3 and parts[2] != "0":
            raise NotImplementedError(
                f"algorithm.adv_estimator=sas: batch key {key!r} is a session's second or "
                "later output (an agent loop that restarts its context); sas scores one "
                "response per rollout, as in single-turn math"
            )


def fetch_responses(keys: list[str], partition_id: str) -> torch.Tensor:
    """The response ids of ``keys`` from the TransferQueue, right-padded with 0 as V1
    pads the other response fields (padding is outside ``response_mask``)."""
    import transfer_queue as tq

    data = tq.kv_batch_get(keys=keys, partition_id=partition_id, select_fields=["responses"])
    responses = data["responses"]
    if responses.is_nested:  # rows of different lengths; equal ones come back stacked
        responses = responses.to_padded_tensor(padding=0)
    return responses


def _wrap_compute_advantage(original: Any) -> Any:
    @functools.wraps(original)
    def _compute_advantage(self: Any, batch: Any, metrics: dict, *args: Any, **kw: Any) -> Any:
        if not _is_sas(self.config):
            return original(self, batch, metrics, *args, **kw)
        keys = list(batch.keys)
        _check_one_output_per_session(keys)
        inputs = sas_batch.Inputs(
            responses=fetch_responses(keys, batch.partition_id),
            window=int(self.config.actor_rollout_ref.rollout.response_length),
            # verl's _balance_batch appends no-op samples tagged is_padding (one masked
            # token, their own uid); its metrics leave them out, and so do these
            real=np.array([not tag.get("is_padding", False) for tag in batch.tags], dtype=bool),
        )
        token = sas_batch.INPUTS.set(inputs)
        try:
            out = original(self, batch, metrics, *args, **kw)
        finally:
            sas_batch.INPUTS.reset(token)
        metrics.update(inputs.stats)
        return out

    return mark(_compute_advantage, original)


# PPOTrainer attribute -> its wrapper (installed by estimator.patch_module)
WRAPPERS = {
    "__init__": _wrap_init,
    "_init_tokenizer": _wrap_init_tokenizer,
    "_compute_advantage": _wrap_compute_advantage,
}
