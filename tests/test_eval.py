"""sas-core eval: benchmark formats, scoring, Pass@k, tokens, AES, resume, CLI."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from sas_core.cli import main
from sas_core.demo.task import is_correct, sample_problem
from sas_core.tools.evaluate import EvalConfig, evaluate, load_benchmark, transformers_generator
from sas_core.tools.metrics import aes, pass_at_k

DATA = Path(__file__).parent / "data"


def _jsonl(tmp_path, n=6, name="sums"):
    rng = random.Random(0)
    path = tmp_path / f"{name}.jsonl"
    rows = [sample_problem(rng) for _ in range(n)]
    path.write_text("\n".join(json.dumps({"problem": p.prompt, "answer": p.answer}) for p in rows))
    return path


def test_reads_verl_parquet_and_jsonl(tmp_path):
    math = load_benchmark(DATA / "math_slice.parquet")
    assert len(math) == 3 and math[0].benchmark == "math_slice"
    assert "\\boxed{}" in math[0].prompt and math[0].answer.startswith("\\left( 3")
    sums = load_benchmark(_jsonl(tmp_path))
    assert len(sums) == 6 and sums[0].prompt.endswith("=")


def test_bad_benchmark_files_name_the_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"problem": "1+1", "answer": "2"}\n{"problem": "no answer"}\n')
    with pytest.raises(ValueError, match="line 2"):
        load_benchmark(bad)


def _answer(prompt: str) -> int:
    """The sum a demo prompt asks for ("A3B4C2=" -> 9), read independently of the task."""
    return sum(int(x) for x in re.findall(r"[A-Z](\d+)", prompt))


def _fake_generator(right_every: int):
    """Deterministic completions: every ``right_every``-th sample is right, with tokens
    equal to the sample number + 1 (a stand-in for the model: evaluate()'s input)."""

    def generate(prompts, k):
        out = []
        for prompt in prompts:
            answer = _answer(prompt)
            out.append(
                [
                    (f"\\boxed{{{answer if j % right_every == 0 else answer + 1}}}", j + 1)
                    for j in range(k)
                ]
            )
        return out

    return generate


def test_report_follows_the_definitions_and_resumes(tmp_path):
    bench = load_benchmark(_jsonl(tmp_path))
    cfg = EvalConfig(k=4, batch_size=4)
    score = lambda text, label: float(is_correct(text, label))  # noqa: E731
    out = tmp_path / "run"
    report = evaluate([bench], _fake_generator(2), score, cfg, out, name="sas")
    row = report["benchmarks"]["sums"]
    assert row["pass@1"] == pytest.approx(0.5)  # samples 0 and 2 of 4 are right
    assert row["pass@2"] == pytest.approx(pass_at_k(4, 2, 2))
    assert row["mean_tokens"] == pytest.approx((1 + 2 + 3 + 4) / 4)
    lines = (out / "samples.jsonl").read_text().splitlines()
    assert len(lines) == 6 * 4

    # A crash after the first problems: the rerun generates only what is missing.
    (out / "samples.jsonl").write_text("\n".join(lines[:8]) + "\n")
    calls = []

    def counting(prompts, k):
        calls.append(len(prompts))
        return _fake_generator(2)(prompts, k)

    again = evaluate([bench], counting, score, cfg, out, name="sas")
    assert sum(calls) == 4 and again == report
    assert len((out / "samples.jsonl").read_text().splitlines()) == 24

    # AES against a baseline run that was right on every sample at 2x the tokens.
    base = evaluate([bench], _fake_generator(1), score, cfg, tmp_path / "base", name="base")
    vs = evaluate([bench], _fake_generator(2), score, cfg, out, name="sas", baseline=base)
    want = aes(0.5, 2.5, 1.0, 2.5)
    assert vs["aes"] == pytest.approx(want) and vs["aes_vs"] == "base"


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    from sas_core.demo.tiny import build_model, build_tokenizer

    path = tmp_path_factory.mktemp("tiny-model")
    tok = build_tokenizer()
    build_model(tok, hidden=32, layers=1).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_transformers_generation_end_to_end(tiny_model_dir, tmp_path):
    cfg = EvalConfig(k=2, max_new_tokens=12, batch_size=3)
    gen = transformers_generator(str(tiny_model_dir), cfg)
    outs = gen(["1+2=", "3+4+5="], cfg.k)
    assert [len(o) for o in outs] == [2, 2]
    assert all(0 < n <= 12 and isinstance(t, str) for o in outs for t, n in o)


def test_cli_eval(tiny_model_dir, tmp_path, capsys):
    pytest.importorskip("math_verify")
    out = tmp_path / "cli"
    args = [
        "eval",
        "--model",
        str(tiny_model_dir),
        "--benchmarks",
        str(_jsonl(tmp_path, 3)),
        str(DATA / "math_slice.parquet"),
        "--k",
        "2",
        "--max-new-tokens",
        "8",
        "--out",
        str(out),
        "--no-progress",
        "--timeout",
        "20",
    ]
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["benchmarks"]) == {"sums", "math_slice"}
    assert 0.0 <= report["average"]["pass@1"] <= 1.0
    assert (out / "accuracy_vs_tokens.png").read_bytes()[:4] == b"\x89PNG"
    assert "Pass@1" in capsys.readouterr().out


def test_cli_eval_against_a_served_endpoint(tmp_path):
    """An OpenAI-compatible server on loopback (a test fixture) answers every request."""
    pytest.importorskip("math_verify")
    import http.server
    import threading

    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(body)
            prompt = body["messages"][0]["content"]
            answer = _answer(prompt)
            choices = [
                {"message": {"content": f"Steps.\n\n\\boxed{{{answer + (j % 2)}}}"}}
                for j in range(body["n"])
            ]
            data = json.dumps({"choices": choices}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        out = tmp_path / "served"
        url = f"http://127.0.0.1:{server.server_address[1]}"
        args = [
            "eval",
            "--model",
            "served-model",
            "--endpoint",
            url,
            "--benchmarks",
            str(_jsonl(tmp_path, 3)),
            "--k",
            "4",
            "--out",
            str(out),
            "--no-progress",
            "--timeout",
            "20",
        ]
        assert main(args) == 0
    finally:
        server.shutdown()
    report = json.loads((out / "report.json").read_text())
    assert report["benchmarks"]["sums"]["pass@1"] == pytest.approx(0.5)
    assert len(seen) == 3 and all(b["n"] == 4 and b["model"] == "served-model" for b in seen)
    assert seen[0]["temperature"] == 0.6 and seen[0]["top_p"] == 0.95
