"""SAS in TRL's ``GRPOTrainer`` (TRL 1.x): per-token advantages on one machine.

``SASGRPOTrainer`` lets TRL compute its per-completion advantage as usual (group
normalisation and ``scale_rewards`` as configured), then spreads it over the completion
tokens and zeroes the steps SAS selects. TRL's loss already accepts (B, T) advantages.
Step confidences use the rollout policy's per-token log-probs: TRL's
``old_per_token_logps`` or vLLM's ``sampling_per_token_logps`` when it has them,
otherwise one no-grad forward pass of the current (= rollout) policy.

    from sas_core.integrations.trl import SASGRPOConfig, SASGRPOTrainer

    args = SASGRPOConfig(output_dir="out", ratio=0.3, correctness_reward="accuracy")
    trainer = SASGRPOTrainer(model=model, reward_funcs=[accuracy], args=args,
                             train_dataset=dataset, processing_class=tokenizer)

Install with ``pip install "sas-core[trl]"``.
"""

from __future__ import annotations

from dataclasses import field, make_dataclass
from typing import Any

from sas_core.requirements import require

for _package in ("torch", "transformers", "trl"):  # before touching TRL's internals
    require(_package)

import torch  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

from sas_core.options import SASOptions, schema  # noqa: E402
from sas_core.segmenter import StepSegmenter  # noqa: E402
from sas_core.stats import warn_nonfinite_once  # noqa: E402
from sas_core.torch_api import sas_batch_step  # noqa: E402

__all__ = ["SASGRPOConfig", "SASGRPOTrainer"]


# The SAS fields of the config, from the options' schema (at the trainer defaults):
# every option but the seed, which is the trainer's (varied per generation batch).
_OPTIONS = tuple(opt for opt in schema() if opt.name != "seed")


def _sas_options(self: Any) -> SASOptions:
    """The SAS options of this config, checked when it was built (and again only if a
    field changed since)."""
    values = {opt.name: getattr(self, opt.name) for opt in _OPTIONS}
    built = self.__dict__.get("_sas_options")
    if built is None or values != {name: getattr(built, name) for name in values}:
        built = SASOptions(**values)
        self.__dict__["_sas_options"] = built
    return built


def _post_init(self: Any) -> None:
    GRPOConfig.__post_init__(self)
    _sas_options(self)  # a bad value fails here, naming the option


SASGRPOConfig = make_dataclass(
    "SASGRPOConfig",
    [
        *((o.name, o.type, field(default=o.trainer_default, metadata={"help": o.help}))
          for o in _OPTIONS),
        ("correctness_reward", str | None, field(default=None, metadata={"help": (
            "name of the reward function whose raw value decides correctness (e.g. the "
            "verifier); default: the weighted sum of all reward functions")})),
    ],
    bases=(GRPOConfig,),
    namespace={"__post_init__": _post_init, "sas_options": _sas_options},
)  # fmt: skip
SASGRPOConfig.__module__ = __name__  # make_dataclass's module= is 3.12+
SASGRPOConfig.__doc__ = """``GRPOConfig`` plus the SAS options (:func:`sas_core.options.schema`:
the names, types, defaults and help of ``sas_core``'s API) and ``correctness_reward``.
Random selection draws from the trainer's ``seed`` (varied per generation batch)."""


def _tokenizer_of(processing_class: Any) -> Any:
    return getattr(processing_class, "tokenizer", processing_class)


class SASGRPOTrainer(GRPOTrainer):
    """``GRPOTrainer`` whose advantages are SAS per-token advantages (see module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, SASGRPOConfig):
            raise TypeError(f"args: must be a SASGRPOConfig, got {type(self.args).__name__}")
        if self.args.correctness_reward is not None and (
            self.args.correctness_reward not in self.reward_func_names
        ):
            raise ValueError(
                f"correctness_reward: {self.args.correctness_reward!r} is not one of the reward "
                f"functions {self.reward_func_names}"
            )
        self.sas_options = self.args.sas_options()
        self.sas_segmenter = StepSegmenter.for_model(
            _tokenizer_of(self.processing_class), self.model, **self.sas_options.segmenter_options()
        )
        self._sas_rewards_per_func: torch.Tensor | None = None
        self._sas_batches = 0
        self._sas_warned_nonfinite = False

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        # Keep the raw per-function rewards: correctness comes from the verifier's own
        # score, not from the normalised advantage.
        rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._sas_rewards_per_func = rewards
        return rewards

    def _rollout_logprobs(self, out: dict[str, Any]) -> torch.Tensor:
        for key in ("old_per_token_logps", "sampling_per_token_logps"):
            if out.get(key) is not None:
                return out[key]
        # TRL skips them when generation and optimisation are aligned: the current
        # policy is the rollout policy, so one no-grad pass gives them.
        ids = torch.cat([out["prompt_ids"], out["completion_ids"]], dim=1)
        mask = torch.cat([out["prompt_mask"], out["completion_mask"]], dim=1)
        mode = "train" if self.model.training else "eval"
        batch = (
            self.args.per_device_train_batch_size
            if mode == "train"
            else (self.args.per_device_eval_batch_size)
        )
        with torch.no_grad():
            logps, _, _ = self._get_per_token_logps_and_entropies(
                self.model, ids, mask, out["completion_ids"].size(1), batch_size=batch
            )
        return logps

    def _scores(self, n_local: int) -> torch.Tensor:
        """This process's raw correctness scores: the named reward function's, or the
        weighted sum of all of them."""
        rewards = self._sas_rewards_per_func
        if self.args.correctness_reward is not None:
            raw = rewards[:, self.reward_func_names.index(self.args.correctness_reward)]
        else:
            raw = (rewards * self.reward_weights.to(rewards.device).unsqueeze(0)).nansum(dim=1)
        start = self.accelerator.process_index * n_local
        return raw[start : start + n_local]

    def _truncated(self, out: dict[str, Any]) -> torch.Tensor:
        """Completions that end without EOS (TRL's own rule for ``clipped_ratio``)."""
        ids, mask = out["completion_ids"], out["completion_mask"].bool()
        lengths = mask.sum(dim=1)
        last = ids.gather(1, (lengths - 1).clamp(min=0)[:, None])[:, 0]
        ends = [*self.eos_token_ids, _tokenizer_of(self.processing_class).pad_token_id]
        ends = torch.tensor([e for e in ends if e is not None], device=ids.device)
        return (lengths > 0) & ~torch.isin(last, ends)

    def _generate_and_score_completions(self, inputs):
        out = super()._generate_and_score_completions(inputs)
        n = out["completion_ids"].size(0)
        self._sas_batches += 1
        # TRL's own loss mask: tool results (``tool_mask``, or a rollout_func's
        # ``env_mask``) are 0, so they are in no step and each model turn is one.
        mask = out["completion_mask"]
        if out.get("tool_mask") is not None:
            mask = mask * out["tool_mask"]
        step = sas_batch_step(
            out["completion_ids"],
            self._rollout_logprobs(out).float(),
            mask,
            out["advantages"],
            self._scores(n),
            self.sas_segmenter,
            self.sas_options,
            truncated=self._truncated(out),
            # One draw per generation batch from the trainer's seed (the demo's recorded
            # random-selection runs used this derivation).
            seed=(int(self.args.seed) << 32) + self._sas_batches,
        )
        warn_nonfinite_once(self, step.nonfinite_rollouts)
        out["advantages"] = step.advantages
        mode = "train" if self.model.training else "eval"
        for name, value in step.stats().items():  # the sas/... names of sas_core.stats
            self._metrics[mode][name].append(value)
        return out
