"""``sas-core eval``: the SAS paper's evaluation protocol.

k samples per problem (default 16, temperature 0.6, top-p 0.95, up to 8K new tokens),
scored with math-verify; per benchmark and on average: Pass@1 (mean accuracy over the
samples), unbiased pass@k for powers of two up to k, mean response tokens, and the
Accuracy-Efficiency Score against a named baseline run. Generation uses vLLM when it is
installed and a GPU is present, else ``transformers``. Every sample is appended to
``samples.jsonl`` as soon as it is scored, so a crashed run resumes where it stopped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sas_core.tools.jsonl import read_jsonl
from sas_core.tools.metrics import aes, pass_at_k

__all__ = ["EvalConfig", "Problem", "evaluate", "load_benchmark"]


@dataclass(frozen=True)
class Problem:
    benchmark: str
    index: int
    prompt: str  # the user message
    answer: str


@dataclass
class EvalConfig:
    k: int = 16
    temperature: float = 0.6
    top_p: float = 0.95
    max_new_tokens: int = 8192
    batch_size: int = 8
    seed: int = 0


def load_benchmark(path: str | Path) -> list[Problem]:
    """verl parquet (prompt chat list, reward_model.ground_truth) or JSONL (problem,
    answer); errors name the row or line."""
    path = Path(path)
    name = path.stem
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        problems = []
        for i, row in enumerate(pq.read_table(path).to_pylist()):
            try:
                turns = [t for t in row["prompt"] if t["role"] == "user"]
                problems.append(
                    Problem(name, i, turns[-1]["content"], str(row["reward_model"]["ground_truth"]))
                )
            except (KeyError, IndexError, TypeError) as e:
                raise ValueError(f"{path}, row {i}: not in verl's format ({e!r})") from None
        return problems
    problems = []
    for where, row in read_jsonl(path):
        try:
            problem, answer = str(row["problem"]), str(row["answer"])
        except KeyError as e:
            raise ValueError(f"{where}: missing field {e}") from None
        problems.append(Problem(name, len(problems), problem, answer))
    return problems


Generate = Callable[[Sequence[str], int], list[list[tuple[str, int]]]]


def transformers_generator(model_path: str, cfg: EvalConfig) -> Generate:
    """k sampled completions per prompt as (text, token count), with ``transformers``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_path, local_files_only=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device).eval()

    def render(user: str) -> str:
        if tok.chat_template:
            return tok.apply_chat_template(
                [{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True
            )
        return user

    @torch.no_grad()
    def generate(prompts: Sequence[str], k: int) -> list[list[tuple[str, int]]]:
        enc = tok(
            [render(p) for p in prompts],
            return_tensors="pt",
            padding=True,
            add_special_tokens=False,
        ).to(device)
        out = model.generate(
            **enc,
            do_sample=True,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            max_new_tokens=cfg.max_new_tokens,
            num_return_sequences=k,
            pad_token_id=tok.pad_token_id,
        )
        completions = out[:, enc["input_ids"].shape[1] :]
        texts = tok.batch_decode(completions, skip_special_tokens=True)
        counts = (completions != tok.pad_token_id).sum(dim=1).tolist()
        rows = list(zip(texts, counts))
        return [rows[i * k : (i + 1) * k] for i in range(len(prompts))]

    return generate


def vllm_generator(model_path: str, cfg: EvalConfig) -> Generate:  # pragma: no cover - GPU
    from vllm import LLM, SamplingParams

    llm = LLM(model=model_path, seed=cfg.seed)
    tok = llm.get_tokenizer()

    def generate(prompts: Sequence[str], k: int) -> list[list[tuple[str, int]]]:
        params = SamplingParams(
            n=k, temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_new_tokens
        )
        chats = [[{"role": "user", "content": p}] for p in prompts]
        texts = [
            tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in chats
        ]
        outs = llm.generate(texts, params)
        return [[(o.text, len(o.token_ids)) for o in r.outputs] for r in outs]

    return generate


def endpoint_generator(
    url: str, model: str, cfg: EvalConfig, count_tokens: Callable[[str], int], timeout: float = 600
) -> Generate:
    """k completions per prompt from an OpenAI-compatible server (``vllm serve``, SGLang,
    ...) through ``/v1/chat/completions``; token counts by ``count_tokens``."""
    import urllib.request

    endpoint = url.rstrip("/") + "/v1/chat/completions"

    def one(prompt: str, k: int) -> list[tuple[str, int]]:
        body = {
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "n": k,
            "temperature": cfg.temperature,
            "top_p": cfg.top_p,
            "max_tokens": cfg.max_new_tokens,
            "seed": cfg.seed,
        }
        req = urllib.request.Request(
            endpoint, json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            reply = json.loads(resp.read())
        texts = [c["message"]["content"] or "" for c in reply["choices"]]
        if len(texts) != k:
            raise ValueError(f"endpoint: asked for {k} completions, got {len(texts)}")
        return [(t, count_tokens(t)) for t in texts]

    def generate(prompts: Sequence[str], k: int) -> list[list[tuple[str, int]]]:
        return [one(p, k) for p in prompts]

    return generate


def default_generator(model_path: str, cfg: EvalConfig) -> Generate:
    """vLLM when it imports and a GPU is present, else transformers."""
    try:
        import torch
        import vllm  # noqa: F401

        if torch.cuda.is_available():
            return vllm_generator(model_path, cfg)
    except ImportError:
        pass
    return transformers_generator(model_path, cfg)


def evaluate(
    benchmarks: Sequence[list[Problem]],
    generate: Generate,
    score: Callable[[str, str], float],
    cfg: EvalConfig,
    out_dir: Path,
    *,
    name: str = "run",
    baseline: dict | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Generates, scores and reports; resumes from ``out_dir/samples.jsonl``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    samples_path = out_dir / "samples.jsonl"
    done: dict[tuple[str, int], list[dict]] = {}
    if samples_path.exists():
        for line in samples_path.read_text().splitlines():
            if line.strip():
                s = json.loads(line)
                done.setdefault((s["benchmark"], s["index"]), []).append(s)
    with open(samples_path, "a", encoding="utf-8") as sink:
        for problems in benchmarks:
            todo = [p for p in problems if len(done.get((p.benchmark, p.index), [])) < cfg.k]
            if progress:
                progress(len(problems) - len(todo))
            for start in range(0, len(todo), cfg.batch_size):
                batch = todo[start : start + cfg.batch_size]
                for p, outs in zip(batch, generate([p.prompt for p in batch], cfg.k)):
                    rows = [
                        {
                            "benchmark": p.benchmark,
                            "index": p.index,
                            "sample": j,
                            "response": text,
                            "tokens": n,
                            "correct": score(text, p.answer),
                        }
                        for j, (text, n) in enumerate(outs)
                    ]
                    done[(p.benchmark, p.index)] = rows
                    for r in rows:
                        sink.write(json.dumps(r) + "\n")
                    sink.flush()
                if progress:
                    progress(len(batch))
    report = _report(benchmarks, done, cfg, name, baseline)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    return report


def _report(benchmarks, done, cfg: EvalConfig, name: str, baseline: dict | None) -> dict:
    ks = [k for k in (1, 2, 4, 8, 16, 32, 64) if k <= cfg.k]
    per = {}
    for problems in benchmarks:
        if not problems:
            continue
        bench = problems[0].benchmark
        rows = [done[(p.benchmark, p.index)][: cfg.k] for p in problems]
        correct = [sum(r["correct"] > 0.5 for r in rs) for rs in rows]
        per[bench] = {
            "problems": len(problems),
            "pass@1": sum(c / cfg.k for c in correct) / len(problems),
            **{
                f"pass@{k}": sum(pass_at_k(cfg.k, c, k) for c in correct) / len(problems)
                for k in ks[1:]
            },
            "mean_tokens": sum(r["tokens"] for rs in rows for r in rs) / (len(problems) * cfg.k),
        }
    average = (
        {
            key: sum(b[key] for b in per.values()) / len(per)
            for key in next(iter(per.values()))
            if key != "problems"
        }
        if per
        else {}
    )
    report = {"name": name, "config": asdict(cfg), "benchmarks": per, "average": average}
    if baseline:
        base = baseline["average"]
        report["aes_vs"] = baseline.get("name", "baseline")
        report["aes"] = aes(
            average["pass@1"], average["mean_tokens"], base["pass@1"], base["mean_tokens"]
        )
    return report


def scatter(reports: Sequence[dict], path: Path) -> None:
    """Accuracy against tokens across runs (one point per run and benchmark average)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    for r in reports:
        avg = r["average"]
        ax.scatter(avg["mean_tokens"], avg["pass@1"], s=40)
        ax.annotate(
            r["name"],
            (avg["mean_tokens"], avg["pass@1"]),
            fontsize=8,
            xytext=(4, 4),
            textcoords="offset points",
        )
    ax.set_xlabel("mean response tokens")
    ax.set_ylabel("Pass@1 (average over benchmarks)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
