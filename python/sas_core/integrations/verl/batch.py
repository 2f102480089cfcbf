"""SAS on verl's batch: the batch adapter of the ``sas`` estimator.

What one run's advantage step needs (the segmenter bound when the trainer is built, the
call counter, the V1 trainer's response ids through :data:`INPUTS`), and
:func:`apply_sas`: verl's tensors pulled out of the ``DataProto`` (``responses``, the
ranking log-probs, ``response_mask``, ``advantages``, ``token_level_scores``) and handed
to :func:`sas_core.torch_api.sas_batch_step`, the advantages written back. Patching verl
is ``estimator.py``'s job (legacy trainer) and ``v1.py``'s (V1 trainer).
"""

from __future__ import annotations

import contextvars
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
    "META_KEY",
    "Inputs",
    "apply_sas",
    "bind",
    "bound",
    "calls",
    "name_of",
    "options_of",
    "step",
    "unbind",
]  # fmt: skip

ESTIMATOR = "sas"
META_KEY = "sas_metrics"  # where the batch carries its sas/... statistics to the logger


class _Run:
    """What one training run's advantage step needs, bound when its trainer is built."""

    def __init__(self) -> None:
        self.segmenter: StepSegmenter | None = None
        self.calls = 0
        self.algorithm: Any = None  # the config node ``options`` were built from
        self.options: VerlSASOptions | None = None
        self._sas_warned_nonfinite = False


_RUN = _Run()
_lock = threading.Lock()


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


def bind(tokenizer: Any, model: Any = None, **segmenter_options: Any) -> StepSegmenter:
    """Builds the segmenter from the actor's tokenizer, sized to the model's embedding
    rows (``model``: a model, config, row count or local path), with the options'
    ``segmenter_options()`` (``think_end``, ...); the trainer does this."""
    segmenter = StepSegmenter.for_model(tokenizer, model, **segmenter_options)
    _RUN.__init__()  # a new run: its own call count and warnings
    _RUN.segmenter = segmenter
    return segmenter


def bound() -> StepSegmenter | None:
    """The segmenter this process's trainer bound, or None."""
    return _RUN.segmenter


def unbind() -> None:
    """Forgets the bound segmenter (a trainer's run is over)."""
    _RUN.__init__()


def calls() -> int:
    """Advantage steps the bound run has taken (random selection draws per step)."""
    return _RUN.calls


def step(data: Any, options: VerlSASOptions, inputs: Inputs | None) -> dict[str, float]:
    """One advantage step of the bound run on ``data`` (GRPO advantages set):
    :func:`apply_sas` with this step's call index, the run's warning about NaN/inf
    log-probs; returns the ``sas/*`` statistics."""
    segmenter = _RUN.segmenter
    if segmenter is None:
        raise RuntimeError("adv_estimator 'sas' has no tokenizer bound (see bind)")
    with _lock:
        call, _RUN.calls = _RUN.calls, _RUN.calls + 1
    stats = apply_sas(data, options, segmenter, call=call, inputs=inputs)
    warn_nonfinite_once(_RUN, int(stats["sas/nonfinite_rollouts"]))
    return stats


def options_of(algorithm: Any) -> VerlSASOptions:
    """The options of ``config.algorithm``, built and checked once per config node:
    verl hands its trainer's node to every step."""
    if _RUN.options is None or _RUN.algorithm is not algorithm:
        _RUN.options = VerlSASOptions.from_algorithm(algorithm)
        _RUN.algorithm = algorithm
    return _RUN.options


def name_of(adv_estimator: Any) -> str:
    return getattr(adv_estimator, "value", adv_estimator)


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
        cut = {"truncated": mask[:, -1] != 0}  # verl's masks may be float tensors
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


def local_model_path(path: Any) -> Any:
    """verl copies hdfs/remote models locally; a local path or hub name is read as is."""
    try:
        from verl.utils.fs import copy_to_local

        return copy_to_local(path) if path else None
    except Exception:  # the segmenter then takes the tokenizer's size
        return path
