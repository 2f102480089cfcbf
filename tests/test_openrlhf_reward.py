"""The math-verify reward file, loaded and called the way OpenRLHF 0.11 does it: by
``SingleTurnAgentExecutor`` from the file path, through ``asyncio.to_thread`` workers."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from openrlhf_cpu_shims import require_openrlhf

require_openrlhf()
pytest.importorskip("math_verify")

from openrlhf.utils.agent import SingleTurnAgentExecutor  # noqa: E402

from sas_core.integrations.openrlhf import reward_func_path  # noqa: E402
from sas_core.integrations.openrlhf.reward_func import split_response  # noqa: E402

PROMPT = "<|User|>What is 1/2 + 0? Let's think step by step and output the final answer within \\boxed{}.<|Assistant|><think>\n"  # noqa: E501

CASES = [
    # (response, label, score, has a closed box)
    ("Half.\n\nSo the answer is \\boxed{\\frac{1}{2}}.", "0.5", 1.0, 1.0),  # other form
    ("first \\boxed{3}\n\nthen \\boxed{0.5}", "\\frac{1}{2}", 1.0, 1.0),  # last box counts
    ("It is \\boxed{0.6}.", "0.5", 0.0, 1.0),  # wrong
    ("The answer is 0.5.", "0.5", 0.0, 0.0),  # unboxed: 0 even though right
    ("Step one.\n\nStep two: so \\boxed{\\frac{1}{", "0.5", 0.0, 0.0),  # truncated mid-box
    ("\\boxed{\\frac{{\\sqrt[}}}", "0.5", 0.0, 1.0),  # garbage LaTeX
    ("\\boxed{0.5}", None, 0.0, 1.0),  # no label
]


def _executor(monkeypatch, timeout: float) -> SingleTurnAgentExecutor:
    monkeypatch.setenv("SAS_REWARD_TIMEOUT", str(timeout))
    monkeypatch.setenv("SAS_REWARD_WORKERS", "2")
    return SingleTurnAgentExecutor(remote_rm_url=reward_func_path())  # loads the file


def _openrlhf_call(executor, queries, prompts, labels):
    """OpenRLHF's own path: one reward_func call per item in asyncio.to_thread workers."""
    return asyncio.run(executor._fetch_rewards_via_func(queries, prompts, labels))


def test_verdicts_through_openrlhfs_executor(monkeypatch):
    executor = _executor(monkeypatch, timeout=30)
    queries = [PROMPT + c[0] for c in CASES]
    results = _openrlhf_call(executor, queries, [PROMPT] * len(CASES), [c[1] for c in CASES])
    for (response, _, want, boxed), got in zip(CASES, results, strict=True):
        assert set(got) == {"rewards", "scores", "extra_logs"}
        assert got["rewards"].shape == (1,) and got["rewards"].dtype == torch.float32
        assert got["rewards"].item() == want, response
        assert got["scores"].item() == want
        assert got["extra_logs"]["boxed"].item() == boxed


def test_the_prompts_boxed_instruction_is_not_an_answer(monkeypatch):
    executor = _executor(monkeypatch, timeout=30)
    prompt = "Put the final answer in \\boxed{0.5}.\n"  # a box in the prompt only
    got = executor.reward_func([prompt + "I think it is one half."], [prompt], ["0.5"])
    assert got["scores"].tolist() == [0.0]
    assert split_response("BOS" + prompt + "rest", prompt) == "rest"
    assert split_response("no prompt here", "other") == "no prompt here"


def test_adversarial_latex_never_hangs(monkeypatch):
    # Run after tests that made the shared verifier with a 30 s timeout: this call's 2 s
    # must be the one applied (it was not: the shared verifier's own 30 s was).
    from sas_core import math_reward
    from sas_core.math_reward import shared_verifier

    executor = _executor(monkeypatch, timeout=2)
    executor.reward_func(["\\boxed{1}"], [""], ["1"])  # start a worker (imports sympy)
    asked, ask = [], math_reward._Worker.ask

    def spy(self, pred, label, timeout):
        asked.append(timeout)
        return ask(self, pred, label, timeout)

    monkeypatch.setattr(math_reward._Worker, "ask", spy)
    counts = dict(shared_verifier(workers=2).counts)
    got = executor.reward_func(["\\boxed{9^{9^{9^{9^{9}}}}}"], [""], ["1"])
    assert got["scores"].tolist() == [0.0]
    after = shared_verifier(workers=2).counts
    assert after["timeouts"] == counts["timeouts"] + 1  # the timeout fired (worker killed)
    assert asked == [2.0]  # with this call's timeout
    assert executor.reward_func(["\\boxed{4}"], [""], ["4"])["scores"].tolist() == [1.0]


def test_batches_from_many_threads_agree_with_one_thread(monkeypatch):
    executor = _executor(monkeypatch, timeout=30)
    items = [(PROMPT + c[0], PROMPT, c[1]) for c in CASES] * 4
    want = [c[2] for c in CASES] * 4
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda it: executor.reward_func([it[0]], [it[1]], [it[2]]), items))
    assert [g["scores"].item() for g in got] == want
    whole = executor.reward_func(*map(list, zip(*items)))  # one batched call
    assert whole["rewards"].tolist() == want
