"""Math answer correctness with ``math-verify``, safe in any thread, never hanging.

The verifier of the SAS paper's setting: a response is correct when the content of its
*last* ``\\boxed{}`` is mathematically equal to the label; a response without one (for
example one truncated before its answer) scores 0.

math-verify bounds its own work with ``signal.alarm``, which only works in the main
thread, and sympy can run for minutes on adversarial LaTeX. So each comparison runs in a
worker process: a caller waits at most ``timeout`` seconds, after which the worker is
killed and replaced and the item scores 0. Starting a worker (importing sympy) has its
own, longer bound, so a slow start never turns a right answer into a 0. Callers in any
thread (RL reward workers, Ray actors, DataLoader threads) share a small pool of workers.

Needs ``pip install math-verify``.
"""

from __future__ import annotations

import json
import os
import queue
import select
import subprocess
import sys
import threading
import time

__all__ = ["MathVerifier", "last_boxed", "math_verify_score", "shared_verifier"]

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


def _serve() -> None:
    """Worker process (``python -m sas_core.math_reward``): one JSON line [prediction,
    label] in, one line "1" or "0" out, until stdin closes."""
    import json
    import logging

    from math_verify import parse, verify

    # Its own timeouts are off here (this process is the timeout): silence that warning.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    out = sys.stdout.buffer
    out.write(b"ready\n")
    out.flush()
    for line in sys.stdin.buffer:
        try:
            pred, label = json.loads(line)
            gold = parse("\\boxed{" + label + "}", parsing_timeout=None)
            answer = parse("\\boxed{" + pred + "}", parsing_timeout=None)
            ok = bool(gold) and bool(answer) and verify(gold, answer, timeout_seconds=None)
        except Exception:  # any parser or sympy failure is a wrong answer
            ok = False
        out.write(b"1\n" if ok else b"0\n")
        out.flush()


class _Worker:
    """A ``python -m sas_core.math_reward`` child on pipes.

    A plain subprocess rather than ``multiprocessing``: a spawned multiprocessing child
    re-imports the parent's ``__main__``, which in a Ray worker is Ray's worker script, and
    it must not depend on what the caller's process looks like.
    """

    def __init__(self, startup_timeout: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sas_core.math_reward"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._buf = b""
        if self.readline(startup_timeout) != b"ready":
            self.kill()
            raise RuntimeError(
                f"math-verify worker did not start within {startup_timeout:.0f} s "
                "(is math-verify installed? pip install math-verify)"
            )

    def readline(self, timeout: float) -> bytes | None:
        """The next line without its newline, or None after ``timeout`` seconds or EOF."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                return None
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line

    def ask(self, pred: str, label: str, timeout: float) -> float | None:
        self.proc.stdin.write(json.dumps([pred, label]).encode() + b"\n")
        self.proc.stdin.flush()
        line = self.readline(timeout)
        return None if line is None else float(line == b"1")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=5)
        for pipe in (self.proc.stdin, self.proc.stdout):
            pipe.close()


class MathVerifier:
    """Scores (response, label) pairs; see the module docstring.

    Args:
        timeout: seconds one comparison may take before it scores 0.
        workers: worker processes (concurrent comparisons).
        startup_timeout: seconds a new worker may take to import math-verify and sympy
            (not counted against ``timeout``); a worker that does not start raises.
    """

    def __init__(
        self, timeout: float = 5.0, workers: int = 2, startup_timeout: float = 120.0
    ) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout: must be > 0, got {timeout}")
        if workers < 1:
            raise ValueError(f"workers: must be >= 1, got {workers}")
        if not startup_timeout > 0:
            raise ValueError(f"startup_timeout: must be > 0, got {startup_timeout}")
        self.timeout = float(timeout)
        self.workers = int(workers)
        self.startup_timeout = float(startup_timeout)
        self._idle: queue.Queue[_Worker | None] = queue.Queue()
        for _ in range(workers):
            self._idle.put(None)  # started on first use

    def score(self, response: str, label: str, *, timeout: float | None = None) -> float:
        """1.0 when the last ``\\boxed{}`` of ``response`` equals ``label``, else 0.0.

        What is bounded: the comparison itself, by ``timeout`` (default: the
        verifier's), after which it scores 0 and its worker is replaced. A call may also
        wait for a free worker (when more threads call than there are ``workers``) and
        for a new worker's start-up (``startup_timeout``): size ``workers`` to the
        number of calling threads to keep a call's latency near ``timeout``.
        """
        limit = self.timeout if timeout is None else float(timeout)
        if not limit > 0:
            raise ValueError(f"timeout: must be > 0, got {timeout}")
        pred = last_boxed(response)
        if pred is None or not pred.strip():
            return 0.0
        worker = self._idle.get()
        try:
            if worker is None:
                worker = _Worker(self.startup_timeout)
            verdict = worker.ask(pred, str(label), limit)
            if verdict is None:  # stuck (or died): replace it, the item scores 0
                worker.kill()
                worker = None
                return 0.0
            return verdict
        except (OSError, ValueError):
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


def shared_verifier(timeout: float = 5.0, workers: int = 2) -> MathVerifier:
    """The process's shared :class:`MathVerifier`: one per process, created on first use.
    ``timeout`` is per call (:meth:`MathVerifier.score`), so another timeout reuses it;
    another ``workers`` count replaces it, and the old one's workers are stopped."""
    global _default
    with _default_lock:
        if _default is not None and _default.workers != workers:
            _default.close()
            _default = None
        if _default is None:
            _default = MathVerifier(timeout=timeout, workers=workers)
        return _default


def math_verify_score(response: str, label: str, *, timeout: float = 5.0) -> float:
    """:meth:`MathVerifier.score` on the shared verifier, ``timeout`` seconds per call."""
    return shared_verifier().score(response, label, timeout=timeout)


if __name__ == "__main__":
    _serve()
