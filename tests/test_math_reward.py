"""The math-verify reward: boxed extraction, verdicts, timeouts, threads."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("math_verify")

from sas_core.math_reward import MathVerifier, last_boxed, math_verify_score


@pytest.fixture(scope="module")
def verifier():
    v = MathVerifier(timeout=20.0, workers=2)
    yield v
    v.close()


def test_last_boxed():
    assert last_boxed("a \\boxed{x^{2}} then \\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert last_boxed("\\fbox{7}") == "7"
    assert last_boxed("no box") is None
    assert last_boxed("cut off \\boxed{\\frac{1}{2") is None
    assert last_boxed("\\boxed{}") == ""


CASES = [
    ("So the answer is \\boxed{\\frac{1}{2}}.", "0.5", 1.0),
    ("\\boxed{12}", "12", 1.0),
    ("first \\boxed{3} then \\boxed{12}", "12", 1.0),
    ("\\boxed{2\\sqrt{2}}", "\\sqrt{8}", 1.0),
    ("\\boxed{13}", "12", 0.0),
    ("The answer is 12.", "12", 0.0),  # no box: 0 even if right
    ("Step one.\n\nStep two: 3+9=\\boxed{1", "12", 0.0),  # truncated
    ("\\boxed{}", "12", 0.0),
]


@pytest.mark.parametrize(("response", "label", "want"), CASES)
def test_verdicts(verifier, response, label, want):
    assert verifier.score(response, label) == want


def test_adversarial_latex_times_out_and_the_verifier_recovers():
    v = MathVerifier(timeout=2.0, workers=1)
    try:
        v.score("\\boxed{1}", "1")  # start the worker (imports sympy)
        t = time.monotonic()
        assert v.score("\\boxed{9^{9^{9^{9^{9}}}}}", "1") == 0.0  # sympy would run for ages
        assert time.monotonic() - t < 10
        assert v.score("\\boxed{4}", "4") == 1.0  # a fresh worker took over
    finally:
        v.close()


@pytest.mark.parametrize(
    "response",
    [
        "\\boxed{" + "{" * 5000 + "}" * 5000 + "}",
        "\\boxed{" + "\\frac" * 500 + "}",
        "\\boxed{\\\\\\}",
        "\\boxed{\x00\ud7ff😀}",
        "\\boxed{\\left(}",
    ],
)
def test_garbage_never_crashes(verifier, response):
    assert verifier.score(response, "1") in (0.0, 1.0)


def test_worker_threads_get_the_sequential_answers(verifier):
    items = CASES * 4
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda c: verifier.score(c[0], c[1]), items))
    assert got == [c[2] for c in items]


def test_module_level_helper():
    assert math_verify_score("\\boxed{7}", "7", timeout=20.0) == 1.0
    with pytest.raises(ValueError, match="timeout"):
        MathVerifier(timeout=0)


def test_worker_start_up_is_not_counted_against_the_item_timeout():
    # Importing sympy in a new worker takes longer than this timeout; the first (right)
    # answer must still score 1, not 0.
    v = MathVerifier(timeout=0.5, workers=1)
    try:
        assert v.score("\\boxed{\\frac{1}{2}}", "0.5") == 1.0
    finally:
        v.close()


def test_a_worker_that_cannot_start_raises():
    v = MathVerifier(timeout=1.0, workers=1, startup_timeout=0.001)
    with pytest.raises(RuntimeError, match="did not start within"):
        v.score("\\boxed{1}", "1")
    with pytest.raises(ValueError, match="startup_timeout"):
        MathVerifier(startup_timeout=0)
