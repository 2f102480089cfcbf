"""GPU check: what CI cannot run, for the day a CUDA or ROCm GPU is at hand.

Run it as ``scripts/gpu_check.sh`` (one command, under 8 minutes on one GPU, nothing
downloaded: tiny models built from configs, the demo's local tokenizer). Each check
prints one summary line ``PASS|FAIL|SKIP <name>: <detail>``; the exit status is non-zero
if any check failed. Without a GPU it says so and exits 0. The checks' CPU-runnable
parts are exercised by the normal tests (``tests/test_gpu_check.py``).

Checks:
1. ``sas_advantages`` on GPU tensors: device and dtype preserved, equal to the CPU
   result, the time of the paper batch (1024 x 4096) including the transfers.
2. ``SASGRPOTrainer`` on the GPU, with transformers generation and with TRL's vLLM
   generation (``vllm_mode="colocate"``).
3. ``sas-core eval`` with the in-process vLLM generator.
4. One OpenRLHF ``train_ppo_ray`` step with ``--algo.advantage.estimator sas`` on one
   GPU (actor, reference and one vLLM engine colocated), ``sas/*`` read from its logs.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def paper_batch(device: str, b: int = 1024, a: int = 4096, seed: int = 0):
    """Padded rollouts of the paper's shape in the real Qwen2 vocabulary, on ``device``."""
    import torch

    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 151_643, (b, a), generator=g)
    newline = 271  # "\n\n" in Qwen2's vocabulary: steps every ~40 tokens
    ids[torch.rand((b, a), generator=g) < 0.025] = newline
    logprobs = -torch.rand((b, a), generator=g)
    lengths = torch.randint(a // 4, a + 1, (b,), generator=g)
    mask = torch.arange(a)[None, :] < lengths[:, None]
    rewards = (torch.rand(b, generator=g) > 0.5).float()
    return [t.to(device) for t in (ids, logprobs, mask, rewards)]


def check_sas_advantages(device: str, b: int = 1024, a: int = 4096) -> str:
    """Device and dtype kept, equal to CPU, timed with the transfers."""
    import torch

    import sas_core
    from sas_core.qwen import qwen2_encoding

    seg = sas_core.StepSegmenter.from_tokenizer(qwen2_encoding(), vocab_size=151_936)
    ids, lp, mask, rewards = paper_batch(device, b, a)
    cpu_adv, cpu_stats = sas_core.sas_advantages(
        ids.cpu(), lp.cpu(), mask.cpu(), rewards.cpu(), group_size=8, segmenter=seg
    )
    for dtype in (torch.float32, torch.bfloat16):
        adv, stats = sas_core.sas_advantages(
            ids, lp.to(dtype), mask, rewards, group_size=8, segmenter=seg
        )
        assert adv.device == lp.device and adv.dtype == dtype, (adv.device, adv.dtype)
        if dtype == torch.float32:
            assert torch.equal(adv.cpu(), cpu_adv), "GPU result differs from CPU"
            assert stats == cpu_stats
    if lp.is_cuda:
        torch.cuda.synchronize()
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        sas_core.sas_advantages(ids, lp, mask, rewards, group_size=8, segmenter=seg)
        if lp.is_cuda:
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return f"{b}x{a} on {device}: equal to CPU, dtype kept, {1000 * best:.1f} ms with transfers"


def tiny_model_dir(path: Path) -> Path:
    """The demo's tiny Qwen2 and character tokenizer, saved for vLLM and OpenRLHF."""
    from sas_core.demo.tiny import build_model, build_tokenizer

    tok = build_tokenizer()
    model = build_model(tok, hidden=64, layers=2)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def check_trl(device: str, use_vllm: bool, workdir: Path) -> str:
    """Two SAS training steps on ``device``; advantages carry zeros on selected steps."""
    import random

    from datasets import Dataset

    from sas_core.demo.rl import accuracy
    from sas_core.demo.task import sample_problem
    from sas_core.demo.tiny import build_model, build_tokenizer
    from sas_core.integrations.trl import SASGRPOConfig, SASGRPOTrainer

    tok = build_tokenizer()
    model = build_model(tok, hidden=64, layers=2)
    rng = random.Random(0)
    problems = [sample_problem(rng, 3, 4) for _ in range(8)]
    data = Dataset.from_dict(
        {"prompt": [p.prompt for p in problems], "answer": [p.answer for p in problems]}
    )
    extra = {}
    if use_vllm:
        extra = dict(use_vllm=True, vllm_mode="colocate", vllm_gpu_memory_utilization=0.2)
    args = SASGRPOConfig(
        output_dir=str(workdir / ("trl-vllm" if use_vllm else "trl")),
        per_device_train_batch_size=8,
        num_generations=4,
        max_completion_length=48,
        max_steps=2,
        report_to=[],
        save_strategy="no",
        use_cpu=device == "cpu",
        bf16=device != "cpu",
        correctness_reward="accuracy",
        **extra,
    )
    trainer = SASGRPOTrainer(
        model=model, reward_funcs=[accuracy], args=args, train_dataset=data, processing_class=tok
    )
    trainer.train()
    logged = [h for h in trainer.state.log_history if "sas/zeroed_token_frac" in h]
    assert logged, "no sas/* statistics in TRL's logs"
    where = next(trainer.model.parameters()).device
    assert where.type == ("cpu" if device == "cpu" else "cuda"), where
    gen = "vLLM colocate" if use_vllm else "transformers"
    zeroed = logged[-1]["sas/zeroed_token_frac"]
    return f"2 steps on {where} ({gen}), sas/zeroed_token_frac {zeroed:.3f}"


def check_eval_vllm(workdir: Path) -> str:
    """``sas-core eval`` through the in-process vLLM generator on a tiny local model (the
    CLI picks vLLM when it imports and a GPU is present)."""
    import vllm  # noqa: F401  (absent: the check is skipped, not passed)

    model = tiny_model_dir(workdir / "tiny")
    bench = workdir / "sums.jsonl"
    bench.write_text(
        "\n".join(
            json.dumps({"problem": p, "answer": a}) for p, a in (("A1B2=", "3"), ("A2B2=", "4"))
        )
    )
    out = workdir / "eval"
    done = subprocess.run(
        [sys.executable, "-m", "sas_core.cli", "eval", "--model", str(model), "--benchmarks",
         str(bench), "--k", "2", "--max-new-tokens", "32", "--out", str(out), "--no-progress"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    return f"eval with vLLM: Pass@1 {report['average']['pass@1']:.3f} over 2 problems x 2"


def check_openrlhf(workdir: Path) -> str:
    """One PPO step of OpenRLHF with the SAS estimator, all colocated on one GPU."""
    model = tiny_model_dir(workdir / "tiny-orlhf")
    data = workdir / "prompts.jsonl"
    data.write_text(
        "\n".join(json.dumps({"prompt": f"A{i}B2=", "answer": str(i + 2)}) for i in range(1, 9))
    )
    reward = subprocess.run(
        [sys.executable, "-m", "sas_core.integrations.openrlhf.reward_func"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    logs = workdir / "tb"
    argv = [
        sys.executable, "-m", "sas_core.integrations.openrlhf",
        "--actor.model_name_or_path", str(model),
        "--actor.num_nodes", "1", "--actor.num_gpus_per_node", "1",
        "--ref.num_nodes", "1", "--ref.num_gpus_per_node", "1",
        "--vllm.num_engines", "1", "--vllm.tensor_parallel_size", "1",
        "--vllm.gpu_memory_utilization", "0.2", "--train.colocate_all",
        "--data.prompt_dataset", str(data), "--data.input_key", "prompt",
        "--data.label_key", "answer", "--data.max_samples", "8",
        "--data.max_len", "128", "--rollout.max_new_tokens", "48",
        "--rollout.batch_size", "2", "--rollout.n_samples_per_prompt", "4",
        "--rollout.micro_batch_size", "4", "--train.batch_size", "8",
        "--train.micro_batch_size", "4", "--train.num_episodes", "1",
        "--algo.advantage.estimator", "sas", "--reward.remote_url", reward,
        "--ds.zero_stage", "0", "--ds.param_dtype", "bf16",
        "--logger.logging_steps", "1", "--logger.tensorboard_dir", str(logs),
        "--ckpt.output_dir", str(workdir / "ckpt"),
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=420)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    text = done.stdout + done.stderr
    names = sorted(
        {w.strip("'\",:{}") for w in text.split() if w.strip("'\",:{}").startswith("sas/")}
    )
    if not names:  # fall back to the TensorBoard event files
        names = sorted({p.name for p in logs.rglob("*") if "sas" in p.name})
    assert names, "no sas/* statistic in OpenRLHF's logs"
    return f"1 PPO step with estimator sas; logged {', '.join(names[:4])}"


def run_checks(checks: list[tuple[str, Callable[[], str]]]) -> int:
    failed = 0
    for name, fn in checks:
        start = time.perf_counter()
        try:
            detail = fn()
            status = "PASS"
        except ModuleNotFoundError as e:
            status, detail = "SKIP", f"{e.name} is not installed"
        except Exception as e:  # one line per check; the traceback goes to stderr
            traceback.print_exc()
            status, detail, failed = "FAIL", f"{type(e).__name__}: {e}"[:300], failed + 1
        print(f"{status} {name}: {detail} ({time.perf_counter() - start:.0f} s)", flush=True)
    return 1 if failed else 0


def gpu_device() -> str | None:
    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    return "cuda" if torch.cuda.is_available() else None  # ROCm builds answer as cuda


def main() -> int:
    device = gpu_device()
    if device is None:
        print("gpu check: no CUDA or ROCm GPU visible to torch here; nothing to check")
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = Path(tempfile.mkdtemp(prefix="sas-gpu-check-"))
    checks = [
        ("sas_advantages on GPU", lambda: check_sas_advantages(device)),
        ("SASGRPOTrainer, transformers generation", lambda: check_trl(device, False, work)),
        ("SASGRPOTrainer, vLLM colocate", lambda: check_trl(device, True, work)),
        ("sas-core eval, in-process vLLM", lambda: check_eval_vllm(work)),
        ("OpenRLHF train_ppo_ray, estimator sas", lambda: check_openrlhf(work)),
    ]
    return run_checks(checks)


if __name__ == "__main__":
    raise SystemExit(main())
