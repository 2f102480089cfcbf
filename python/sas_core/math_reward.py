"""Math answer correctness with ``math-verify``, safe in any thread, never hanging.

The verifier of the SAS paper's setting: a response is correct when the content of its
*last* ``\\boxed{}`` is mathematically equal to the label; a response without one (for
example one truncated before its answer) scores 0.

math-verify bounds its own work with ``signal.alarm``, which only works in the main
thread, and sympy can run for minutes on adversarial LaTeX. So each comparison runs in a
worker process: a caller waits at most ``timeout`` seconds, after which the worker is
killed and replaced and the item scores 0. Callers in any thread (RL reward workers,
Ray actors, DataLoader threads) share a small pool of workers.

Needs ``pip install math-verify``.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import threading
from typing import Any

__all__ = ["MathVerifier", "last_boxed", "math_verify_score"]

_BOXED = ("\\boxed", "\\fbox")


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (braces balanced), or None if there is none
    or it is not closed."""
    best = None
    for macro in _BOXED:
        i = text.rfind(macro + "{")
        if i > (best[0] if best else -1):
            best = (i, macro)
    if best is None:
        return None
    start = best[0] + len(best[1]) + 1
    depth = 1
    for j in range(start, len(text)):
        c = text[j]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[start:j]
    return None  # cut off before the closing brace


def _worker_main(conn: Any) -> None:
    """Worker process: answers (prediction, label) with 1.0 or 0.0 until the pipe closes."""
    import logging

    from math_verify import parse, verify

    # Its own timeouts are off here (this process is the timeout): silence that warning.
    logging.getLogger("math_verify").setLevel(logging.ERROR)

    while True:
        try:
            pred, label = conn.recv()
        except EOFError:
            return
        try:
            gold = parse("\\boxed{" + label + "}", parsing_timeout=None)
            answer = parse("\\boxed{" + pred + "}", parsing_timeout=None)
            ok = bool(gold) and bool(answer) and verify(gold, answer, timeout_seconds=None)
        except Exception:  # any parser or sympy failure is a wrong answer
            ok = False
        conn.send(1.0 if ok else 0.0)


class _Worker:
    def __init__(self, ctx: Any) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child,), daemon=True)
        self.proc.start()
        child.close()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.join(timeout=5)
        self.conn.close()


class MathVerifier:
    """Scores (response, label) pairs; see the module docstring.

    Args:
        timeout: seconds one comparison may take before it scores 0.
        workers: worker processes (concurrent comparisons).
    """

    def __init__(self, timeout: float = 5.0, workers: int = 2) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout: must be > 0, got {timeout}")
        if workers < 1:
            raise ValueError(f"workers: must be >= 1, got {workers}")
        self.timeout = float(timeout)
        # spawn, not fork: the caller may hold threads (and their locks) when it forks.
        self._ctx = mp.get_context("spawn")
        self._idle: queue.Queue[_Worker | None] = queue.Queue()
        for _ in range(workers):
            self._idle.put(None)  # started on first use

    def score(self, response: str, label: str) -> float:
        """1.0 when the last ``\\boxed{}`` of ``response`` equals ``label``, else 0.0."""
        pred = last_boxed(response)
        if pred is None or not pred.strip():
            return 0.0
        worker = self._idle.get()
        try:
            if worker is None:
                worker = _Worker(self._ctx)
            worker.conn.send((pred, str(label)))
            # The first call also waits for the worker to import sympy.
            if worker.conn.poll(self.timeout):
                return float(worker.conn.recv())
            worker.kill()  # stuck: replace it, the item scores 0
            worker = None
            return 0.0
        except (EOFError, OSError, BrokenPipeError):
            if worker is not None:
                worker.kill()
            worker = None
            return 0.0
        finally:
            self._idle.put(worker)

    def close(self) -> None:
        while True:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                return
            if worker is not None:
                worker.kill()


_default: MathVerifier | None = None
_default_lock = threading.Lock()


def math_verify_score(response: str, label: str, *, timeout: float = 5.0) -> float:
    """:meth:`MathVerifier.score` on a shared verifier (created on first use)."""
    global _default
    with _default_lock:
        if _default is None or _default.timeout != timeout:
            _default = MathVerifier(timeout=timeout)
        verifier = _default
    return verifier.score(response, label)
