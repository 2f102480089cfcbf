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
