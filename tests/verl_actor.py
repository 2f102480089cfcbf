"""The actor of the Ray test: a class verl-style (``ray.remote(num_cpus=1)`` applied by
the test), whose process learns about SAS only from ``import verl`` (the entry point)."""

from __future__ import annotations

from typing import Any


class TaskRunnerProbe:
    def run(self, data: Any) -> tuple[bool, Any]:
        import verl  # noqa: F401  (loads the verl.plugins entry point)
        from verl_helpers import advantage_step, build_trainer

        from sas_core.integrations.verl.estimator import is_installed
        from sas_core.qwen import QWEN2_EMBEDDING_ROWS, qwen2_encoding

        trainer = build_trainer(
            qwen2_encoding(),
            [
                f"actor_rollout_ref.model.path={QWEN2_EMBEDDING_ROWS}",
                "algorithm.adv_estimator=sas",
                "+algorithm.sas.ratio=0.5",
            ],
        )
        out = advantage_step(trainer, data)
        return is_installed(), out.batch["advantages"]


class TaskRunnerV1Probe:
    """The same for the V1 trainer: ``TaskRunnerV1.run`` calls ``tq.init`` (here it
    attaches to the driver's TransferQueue), builds the ``sync`` trainer and starts its
    ``init`` with ``_init_tokenizer``; the batch goes in as the agent loop writes it."""

    def run(self, model_dir: str, data: Any) -> tuple[bool, Any, dict]:
        import transfer_queue as tq
        import verl  # noqa: F401  (loads the verl.plugins entry point)
        from verl.trainer.ppo.v1 import get_trainer_cls
        from verl_helpers import v1_advantage_step, v1_config

        from sas_core.integrations.verl.estimator import is_installed

        config = v1_config(
            [
                f"actor_rollout_ref.model.path={model_dir}",
                "algorithm.adv_estimator=sas",
                "+algorithm.sas.ratio=0.5",
            ]
        )
        tq.init(config.transfer_queue)
        trainer = get_trainer_cls(config.trainer.v1.trainer_mode)(config=config)
        trainer._init_tokenizer()
        advantages, metrics = v1_advantage_step(trainer, data)
        return is_installed(), advantages, metrics
