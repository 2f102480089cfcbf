"""Run verl 0.9's own ``python -m verl.trainer.main_ppo`` on the CPU for a few steps.

Used by ``tests/test_verl_cpu_loop.py`` and by ``make verl-cpu-loop``:

    python tests/verl_cpu/loop.py --estimator sas --trainer v1 [hydra overrides...]

The loop is verl's, unchanged: generation (the ``hf`` rollout backend of
``verl_cpu_harness``), the reward (``reward.py``), old log-probs, the advantage
(``algorithm.adv_estimator``: sas-core's ``sas`` through its ``verl.plugins`` entry
point, or verl's ``grpo``), the actor update (FSDP2 on gloo) and the weight sync.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESPONSE_LENGTH = 64
GROUP = 4
PROMPTS = 4
STEPS = 2


@dataclass(frozen=True)
class Fixture:
    model: Path
    tokenizer: Path
    train: Path
    val: Path


@dataclass
class Run:
    returncode: int
    seconds: float
    log: str
    metrics: dict[int, dict[str, float]] = field(default_factory=dict)
    captures: list[dict] = field(default_factory=list)

    @property
    def synced_steps(self) -> list[int]:
        """The steps whose weights the rollout server loaded, in order."""
        return [int(s) for s in re.findall(r"hf rollout: weights of step (\d+) loaded", self.log)]


def prepare(root: Path) -> Fixture:
    """The model, tokenizer and parquet files under ``root`` (built once)."""
    sys.path.insert(0, str(HERE))
    import fixture

    if not (root / "model" / "config.json").exists():
        fixture.build_model(root)
    train, val = root / "data" / "train.parquet", root / "data" / "test.parquet"
    if not train.exists():
        fixture.build_data(root / "data")
    return Fixture(root / "model", root / "tokenizer", train, val)


def overrides(
    fx: Fixture,
    estimator: str,
    *,
    v1: bool,
    workdir: Path,
    steps: int = STEPS,
    reward: str = "compute_score",
):
    """verl's Hydra overrides for a CPU run of ``steps`` steps."""
    return [
        f"algorithm.adv_estimator={estimator}",
        "algorithm.use_kl_in_reward=False",
        f"data.train_files={fx.train}",
        f"data.val_files={fx.val}",
        f"data.train_batch_size={PROMPTS}",
        "data.max_prompt_length=32",
        f"data.max_response_length={RESPONSE_LENGTH}",
        "data.seed=0",
        "data.dataloader_num_workers=0",
        f"actor_rollout_ref.model.path={fx.model}",
        f"+actor_rollout_ref.model.tokenizer_path={fx.tokenizer}",
        "actor_rollout_ref.model.use_remove_padding=False",
        # transformers defaults to flash-attention 2 through verl; the CPU has sdpa
        "+actor_rollout_ref.model.override_config.attn_implementation=sdpa",
        "actor_rollout_ref.actor.strategy=fsdp2",
        "actor_rollout_ref.actor.fsdp_config.strategy=fsdp2",
        "actor_rollout_ref.actor.optim.lr=1e-4",
        "actor_rollout_ref.actor.use_kl_loss=False",
        f"actor_rollout_ref.actor.ppo_mini_batch_size={PROMPTS}",
        f"actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu={PROMPTS * GROUP}",
        f"actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu={PROMPTS * GROUP}",
        "actor_rollout_ref.rollout.name=hf",
        f"actor_rollout_ref.rollout.n={GROUP}",
        "actor_rollout_ref.rollout.temperature=1.0",
        "actor_rollout_ref.rollout.tensor_model_parallel_size=1",
        "actor_rollout_ref.rollout.agent.num_workers=1",
        "reward.num_workers=1",
        f"reward.custom_reward_function.path={HERE / 'reward.py'}",
        f"reward.custom_reward_function.name={reward}",
        "transfer_queue.backend.SimpleStorage.num_data_storage_units=1",
        "trainer.n_gpus_per_node=1",
        "trainer.nnodes=1",
        f"trainer.total_training_steps={steps}",
        "trainer.logger=console",
        "trainer.val_before_train=False",
        "trainer.test_freq=-1",
        "trainer.save_freq=-1",
        f"trainer.default_local_dir={workdir / 'checkpoints'}",
        f"trainer.use_v1={v1}",
        # Ray places verl's workers on one logical GPU and 3 CPUs a bundle
        "+ray_kwargs.ray_init.num_gpus=1",
        "ray_kwargs.ray_init.num_cpus=8",
        "+ray_kwargs.ray_init.include_dashboard=False",
    ]


def environment(
    *,
    capture: Path | None = None,
    plugins: bool = True,
    skew: bool = False,
    modules: tuple[str, ...] = (),
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        VERL_PLATFORM="cpu",
        # more test modules of this folder (e.g. an agent loop) load the same way
        VERL_USE_EXTERNAL_MODULES=",".join(["verl_cpu_harness", *modules]),
        # verl's FSDP engine is registered for cuda and npu; it runs on the CPU as is
        VERL_ENGINE_DEVICE="cuda",
        PYTHONPATH=os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")])),
        OMP_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
        RAY_DEDUP_LOGS="0",
        HYDRA_FULL_ERROR="1",
    )
    if capture is not None:
        env["SAS_VERL_CPU_CAPTURE"] = str(capture)
    if not plugins:
        env["VERL_USE_EXTERNAL_PLUGINS"] = "none"
    if skew:
        env["SAS_VERL_CPU_SKEW_ROLLOUT_LOGPROBS"] = "1"
    return env


STEP_LINE = re.compile(r"step:(\d+) - (.*)$")


def parse_metrics(log: str) -> dict[int, dict[str, float]]:
    """verl's console logger lines (``step:N - key:value - ...``) as numbers."""
    out: dict[int, dict[str, float]] = {}
    for line in log.splitlines():
        found = STEP_LINE.search(line)
        if not found:
            continue
        values = {}
        for item in found.group(2).split(" - "):
            key, _, raw = item.partition(":")
            raw = re.sub(r"^np\.\w+\((.*)\)$", r"\1", raw.strip())
            try:
                values[key.strip()] = float(ast.literal_eval(raw))
            except (ValueError, SyntaxError, TypeError):
                continue
        out[int(found.group(1))] = values
    return out


def run(
    fx: Fixture,
    estimator: str,
    *,
    v1: bool,
    workdir: Path,
    extra: list[str] = (),
    plugins: bool = True,
    skew: bool = False,
    modules: tuple[str, ...] = (),
    reward: str = "compute_score",
    timeout: float = 480,
    python: str = sys.executable,
) -> Run:
    """One ``main_ppo`` run; its log, metrics and the batches its actor updates got."""
    import torch

    capture = workdir / "updates"
    capture.mkdir(parents=True, exist_ok=True)
    cmd = [python, "-m", "verl.trainer.main_ppo"]
    cmd += overrides(fx, estimator, v1=v1, workdir=workdir, reward=reward) + list(extra)
    started = time.monotonic()
    proc = subprocess.run(
        cmd,
        env=environment(capture=capture, plugins=plugins, skew=skew, modules=modules),
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    seconds = time.monotonic() - started
    log = proc.stdout + proc.stderr
    (workdir / "main_ppo.log").write_text(log)
    captures = [
        torch.load(p, weights_only=False)
        for p in sorted(capture.glob("update-*.pt"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    ]
    return Run(proc.returncode, seconds, log, parse_metrics(log), captures)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--estimator", default="sas", help="algorithm.adv_estimator")
    parser.add_argument("--trainer", choices=["legacy", "v1"], default="v1")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/sas-verl-cpu-loop"))
    args, extra = parser.parse_known_args(argv)
    fx = prepare(args.workdir / "fixture")
    workdir = args.workdir / f"{args.trainer}-{args.estimator}"
    result = run(fx, args.estimator, v1=args.trainer == "v1", workdir=workdir, extra=extra)
    for step, values in sorted(result.metrics.items()):
        shown = {
            k: round(v, 4) for k, v in values.items() if k.startswith(("sas/", "critic/score"))
        }
        print(f"step {step}: {shown}")
    print(f"{len(result.captures)} actor updates captured under {workdir / 'updates'}")
    print(f"main_ppo: exit {result.returncode} after {result.seconds:.0f} s")
    print(f"log: {workdir / 'main_ppo.log'}")
    return result.returncode


if __name__ == "__main__":
    raise SystemExit(main())
