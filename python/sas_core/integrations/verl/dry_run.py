"""``python -m sas_core.integrations.verl.dry_run OVERRIDES...``: composes verl's own
``ppo_trainer`` config with the Hydra overrides a ``main_ppo`` run would get, checks the
SAS options (errors name the key) and prints them, without Ray, GPUs or a model."""

from __future__ import annotations

import sys
from pathlib import Path


def compose(overrides: list[str]):
    import verl
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    config_dir = Path(verl.__file__).parent / "trainer" / "config"
    with initialize_config_dir(config_dir=str(config_dir), version_base=None):
        return hydra_compose(config_name="ppo_trainer", overrides=overrides)


def _one_line(exc: BaseException) -> str:
    """Hydra's message (and its cause's) without the traceback, on one line."""
    parts = [str(exc)]
    if exc.__cause__ is not None and str(exc.__cause__) not in parts[0]:
        parts.append(str(exc.__cause__))
    return " ".join(" ".join(p.split()) for p in parts if p)


def main(argv: list[str] | None = None) -> int:
    try:
        return _dry_run(list(sys.argv[1:] if argv is None else argv))
    except Exception as exc:  # a user's bad override or option: one line, exit 2
        from hydra.errors import HydraException
        from omegaconf.errors import OmegaConfBaseException

        if not isinstance(exc, (HydraException, OmegaConfBaseException, ValueError, TypeError)):
            raise
        print(f"dry run: {_one_line(exc)}", file=sys.stderr)
        return 2


def _dry_run(overrides: list[str]) -> int:
    from sas_core.integrations.verl.estimator import ESTIMATOR, check_verl_version
    from sas_core.integrations.verl.options import VerlSASOptions

    version = check_verl_version()
    cfg = compose(overrides)
    algo = cfg.algorithm
    print(f"verl {version}: algorithm.adv_estimator={algo.adv_estimator}")
    if algo.adv_estimator == ESTIMATOR:
        print(f"algorithm.sas: {VerlSASOptions.from_algorithm(algo)}")
    use_v1 = bool(cfg.trainer.get("use_v1", False))
    print(f"trainer.use_v1={use_v1} ({'V1' if use_v1 else 'legacy'} trainer)")
    print(f"actor_rollout_ref.model.path={cfg.actor_rollout_ref.model.path}")
    print(f"data.max_response_length={cfg.data.max_response_length}")
    print(f"actor_rollout_ref.rollout.n={cfg.actor_rollout_ref.rollout.n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
