"""Run OpenRLHF 0.11's own ``python -m openrlhf.cli.train_ppo_ray`` on the CPU.

Used by ``tests/test_openrlhf_cpu_loop.py`` and by ``make openrlhf-cpu-loop``:

    python tests/openrlhf_cpu/loop.py --estimator sas [more train_ppo_ray flags...]

The loop is OpenRLHF's, unchanged: generation (the stand-in vLLM engine of
``openrlhf_cpu_harness``), the reward (``reward.py``), the actor's log-probs, the
advantage (``--advantage_estimator sas``: sas-core through the installed start-up hook,
as a user gets it), the DeepSpeed update (ZeRO-2 over gloo) and the weight sync.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
MAX_NEW_TOKENS = 64
GROUP = 4  # samples per prompt
PROMPTS = 4  # prompts per step
STEPS = 2
# The demo's tokenizer as remote code of the model folder: beside a ``qwen2`` config,
# transformers 5 would load it as Qwen2's tokenizer, whose pre-tokenizer drops newlines.
TOKENIZER_CODE = '''"""The demo's one-character-per-token tokenizer (sas-core's tests)."""

from transformers import PreTrainedTokenizerFast


class CharTokenizerFast(PreTrainedTokenizerFast):
    pass
'''


@dataclass
class Run:
    returncode: int
    seconds: float
    log: str
    metrics: dict[int, dict[str, float]] = field(default_factory=dict)
    updates: list[dict] = field(default_factory=list)
    actor_syncs: list[str] = field(default_factory=list)
    engine_syncs: list[str] = field(default_factory=list)
    kl_rows: dict[tuple[int, ...], object] = field(default_factory=dict)


def prepare(root: Path) -> Path:
    """The model folder under ``root`` (built once): the demo's warmed-up policy with
    its tokenizer, and ``prompts.jsonl`` (distinct prompts, their answers)."""
    model = root / "model"
    if (model / "prompts.jsonl").exists():
        return model
    # the verl loop's model: the same policy, written the same way
    spec = importlib.util.spec_from_file_location(
        "verl_cpu_fixture", TESTS / "verl_cpu" / "fixture.py"
    )
    fixture = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixture)
    model_dir, tokenizer_dir = fixture.build_model(root)
    for item in tokenizer_dir.iterdir():
        shutil.copy(item, model_dir / item.name)
    config_path = model_dir / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["auto_map"] = {"AutoTokenizer": [None, "tokenization_sas_chars.CharTokenizerFast"]}
    config_path.write_text(json.dumps(config, indent=2))
    (model_dir / "tokenization_sas_chars.py").write_text(TOKENIZER_CODE)
    _write_prompts(model_dir / "prompts.jsonl", PROMPTS * STEPS)
    return model_dir


def _write_prompts(path: Path, count: int, seed: int = 0) -> None:
    import random

    from sas_core.demo.task import sample_problem

    rng, seen = random.Random(seed), set()
    with open(path, "w") as f:
        while len(seen) < count:
            # 5-7 terms: a careful solution fits the 64-token window up to about 5
            # terms, so groups mix right answers with sound rollouts cut before them.
            problem = sample_problem(rng, 5, 7)
            if problem.prompt in seen:
                continue  # the tests group rollouts by prompt
            seen.add(problem.prompt)
            f.write(json.dumps({"input": problem.prompt, "answer": str(problem.answer)}) + "\n")


def argv(model: Path, estimator: str, *, ranks: int = 1, kl: float = 0.0) -> list[str]:
    """``train_ppo_ray`` flags for a CPU run of ``STEPS`` steps."""
    batch = PROMPTS * GROUP
    return [
        "--advantage_estimator", estimator,  # the pre-0.11 spelling, through the hook
        "--actor.model_name_or_path", str(model),
        "--data.prompt_dataset", str(model / "prompts.jsonl"),
        "--data.input_key", "input",
        "--data.label_key", "answer",
        "--data.max_len", str(MAX_NEW_TOKENS + 64),
        "--reward.remote_url", str(HERE / "reward.py"),
        "--rollout.n_samples_per_prompt", str(GROUP),
        "--rollout.batch_size", str(PROMPTS),
        "--rollout.micro_batch_size", str(batch // ranks),
        "--rollout.max_new_tokens", str(MAX_NEW_TOKENS),
        "--rollout.temperature", "1.0",
        "--train.batch_size", str(batch),
        "--train.micro_batch_size", str(batch // (2 * ranks)),
        "--train.num_episodes", "1",
        "--train.max_epochs", "1",
        "--train.seed", "0",
        "--actor.num_nodes", "1",
        "--actor.num_gpus_per_node", str(ranks),
        "--actor.adam.lr", "1e-4",
        # the default warm-up (3% of 2 steps, rounded up) would give step 1 a rate of 0
        "--actor.lr_warmup_ratio", "0",
        "--algo.kl.init_coef", str(kl),
        *(["--ref.num_nodes", "1", "--ref.num_gpus_per_node", str(ranks)] if kl > 0 else []),
        "--vllm.num_engines", "1",
        "--vllm.tensor_parallel_size", "1",
        "--vllm.sync_backend", "gloo",
        "--ds.zero_stage", "2",
        "--ds.param_dtype", "bf16",
        "--ds.attn_implementation", "eager",
        "--ckpt.output_dir", "ckpt",
        "--ckpt.path", "ckpt/checkpoints",
    ]  # fmt: skip


def environment(capture: Path, gpus: int, *, skew: bool = False) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")])),
        SAS_OPENRLHF_CPU_CAPTURE=str(capture),
        SAS_OPENRLHF_CPU_GPUS=str(gpus),
        DS_ACCELERATOR="cpu",
        OMP_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
        RAY_DEDUP_LOGS="0",
        HF_HUB_OFFLINE="1",
    )
    if skew:
        env["SAS_OPENRLHF_CPU_SKEW_ROLLOUT_LOGPROBS"] = "1"
    env.pop("RAY_ADDRESS", None)  # a cluster of its own
    return env


STEP_LINE = re.compile(r"Global step (\d+): (\{.*\})\s*$")


def parse_metrics(log: str) -> dict[int, dict[str, float]]:
    """OpenRLHF's per-step log line (``✨ Global step N: {...}``) as numbers."""
    out: dict[int, dict[str, float]] = {}
    for line in log.splitlines():
        found = STEP_LINE.search(line)
        if not found:
            continue
        text = re.sub(r"(?:np\.\w+|tensor)\(([^()]*)\)", r"\1", found.group(2))
        try:
            values = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            continue
        out[int(found.group(1))] = {
            k: float(v) for k, v in values.items() if isinstance(v, (int, float, bool))
        }
    return out


def _digests(directory: Path, pattern: str) -> list[str]:
    files = sorted(directory.glob(pattern), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    return [json.loads(p.read_text())["digest"] for p in files]


def run(
    model: Path,
    estimator: str,
    *,
    workdir: Path,
    extra: list[str] = (),
    ranks: int = 1,
    kl: float = 0.0,
    skew: bool = False,
    timeout: float = 480,
    python: str = sys.executable,
) -> Run:
    """One ``train_ppo_ray`` run: its log, metrics, the experiences its actor updates
    received, the digests of each weight sync and each rollout's KL penalty (by the
    rollout's tokens; with ``kl`` > 0)."""
    import torch

    capture = workdir / "capture"
    capture.mkdir(parents=True, exist_ok=True)
    cmd = [python, "-m", "openrlhf.cli.train_ppo_ray", *argv(model, estimator, ranks=ranks, kl=kl)]
    cmd += list(extra)
    gpus = 1 + ranks * (2 if kl > 0 else 1)  # the engine, the actor's ranks, the reference's
    started = time.monotonic()
    proc = subprocess.run(
        cmd,
        env=environment(capture, gpus, skew=skew),
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    seconds = time.monotonic() - started
    log = proc.stdout + proc.stderr
    (workdir / "train_ppo_ray.log").write_text(log)
    updates = [
        torch.load(p, weights_only=False)
        for p in sorted(capture.glob("update-*.pt"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    ]
    kl_rows = {
        tuple(tokens): values
        for p in capture.glob("kl-*.pt")
        for tokens, values in torch.load(p, weights_only=False)
    }
    return Run(
        proc.returncode,
        seconds,
        log,
        parse_metrics(log),
        updates,
        _digests(capture, "actor-sync-*.json"),
        _digests(capture, "engine-sync-*.json"),
        kl_rows,
    )


def main(argv_: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--estimator", default="sas", help="--algo.advantage.estimator")
    parser.add_argument("--ranks", type=int, default=1, help="DeepSpeed ranks of the actor")
    parser.add_argument("--kl", type=float, default=0.0, help="--algo.kl.init_coef")
    parser.add_argument(
        "--skew", action="store_true", help="the engine reports log-probs lowered by seeded noise"
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/sas-openrlhf-cpu-loop"))
    args, extra = parser.parse_known_args(argv_)
    model = prepare(args.workdir / "fixture")
    workdir = args.workdir / f"{args.estimator}-{args.ranks}"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    result = run(
        model,
        args.estimator,
        workdir=workdir,
        extra=extra,
        ranks=args.ranks,
        kl=args.kl,
        skew=args.skew,
    )
    for step, values in sorted(result.metrics.items()):
        shown = {k: round(v, 4) for k, v in values.items() if k.startswith(("sas/", "reward"))}
        print(f"step {step}: {shown}")
    print(f"{len(result.updates)} actor updates captured under {workdir / 'capture'}")
    print(f"weight syncs: actor {len(result.actor_syncs)}, engine {len(result.engine_syncs)}")
    print(f"train_ppo_ray: exit {result.returncode} after {result.seconds:.0f} s")
    print(f"log: {workdir / 'train_ppo_ray.log'}")
    return result.returncode


if __name__ == "__main__":
    raise SystemExit(main())
