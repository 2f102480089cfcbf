"""Math answer correctness with ``math-verify``, safe in any thread, never hanging.

The verifier of the SAS paper's setting: a response is correct when the content of its
*last* ``\\boxed{}`` is mathematically equal to the label; a response without one (for
example one truncated before its answer) scores 0.

math-verify bounds its own work with ``signal.alarm``, which only works in the main
thread, and sympy can run for minutes on adversarial LaTeX. So each comparison runs in a
worker process: a comparison takes at most ``timeout`` seconds, after which the worker
is killed and replaced and the item scores 0. Requests are tagged, so an answer is
never paired with another request; a worker found dead is replaced and the item asked
again; one that cannot be scored raises ``VerifierError`` (never a 0.0); workers exit
when their parent dies. Starting a worker (importing sympy) has its
own, longer bound, so a slow start never turns a right answer into a 0. Callers in any
thread (RL reward workers, Ray actors, DataLoader threads) share a small pool of workers.

Needs ``pip install math-verify``.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import select
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

__all__ = ["MathVerifier", "VerifierError", "last_boxed", "math_verify_score", "shared_verifier"]

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


MAX_TIMEOUT = 3600.0  # seconds: the largest timeout, startup_timeout or call_timeout
MAX_WORKERS = 256


class VerifierError(RuntimeError):
    """A response that could not be scored (its worker died twice, or no worker was free
    within ``call_timeout``): never reported as a 0.0."""


def _seconds(value: object, name: str) -> float:
    """A positive, finite number of seconds, at most MAX_TIMEOUT."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a number of seconds, got {type(value).__name__}")
    if not 0 < value <= MAX_TIMEOUT:  # NaN fails too
        raise ValueError(f"{name}: must be in (0, {MAX_TIMEOUT:g}] seconds, got {value!r}")
    return float(value)


def _text(value: object, name: str) -> str:
    """A response must be a string; a label may also be a number (its str())."""
    if isinstance(value, str):
        return value
    if name == "label" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    want = "a string" if name == "response" else "a string or a number"
    raise TypeError(f"{name}: expected {want}, got {type(value).__name__}")


def _watch_parent() -> None:
    """Die with the parent process, even in the middle of a sympy computation (which can
    hold the GIL for minutes inside one big-integer operation). On Linux the kernel sends
    SIGKILL when the parent thread that started this worker ends (``PR_SET_PDEATHSIG``:
    workers are started from one long-lived thread, ``_popen``); elsewhere a daemon
    thread polls the parent's pid."""
    parent = int(os.environ.get("SAS_CORE_VERIFIER_PARENT", os.getppid()))
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(1, signal.SIGKILL, 0, 0, 0) != 0:  # PR_SET_PDEATHSIG
            raise OSError(ctypes.get_errno(), "prctl")
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before the prctl above
        os._exit(0)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


# LaTeX forms whose first comparison loads math-verify's lazy parts (its LaTeX grammar,
# sympy's simplification): done before the worker says it is ready, so that cost falls
# in ``startup_timeout``. Without it, the very first comparison of each new worker paid
# it inside ``timeout`` (0.08 s idle; on a loaded machine enough to time out at 2 s and
# score a right answer 0.0).
WARM_UP = (("\\fbox{\\frac{1}{2}}", "0.5"), ("x^{2}+\\sqrt{4}", "x^2+2"))


def _warm_up() -> bool:
    """Compares :data:`WARM_UP`'s equal pairs; True when math-verify found them equal."""
    from math_verify import parse, verify

    ok = True
    for pred, label in WARM_UP:
        try:
            gold = parse("\\boxed{" + label + "}", parsing_timeout=None)
            answer = parse("\\boxed{" + pred + "}", parsing_timeout=None)
            ok &= bool(verify(gold, answer, timeout_seconds=None))
        except Exception:
            ok = False
    return ok


def _serve() -> None:
    """Worker process (``python -m sas_core.math_reward``): one JSON line [tag,
    prediction, label] in, one line "tag 1" or "tag 0" out, until stdin closes. The tag
    lets the parent pair every answer with its own request."""
    import json
    import logging

    from math_verify import parse, verify

    _watch_parent()
    # Its own timeouts are off here (this process is the timeout): silence that warning.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    _warm_up()
    out = sys.stdout.buffer
    out.write(b"ready\n")
    out.flush()
    for line in sys.stdin.buffer:
        try:
            tag, pred, label = json.loads(line)
        except Exception:
            continue  # not a request: nothing to answer
        try:
            gold = parse("\\boxed{" + label + "}", parsing_timeout=None)
            answer = parse("\\boxed{" + pred + "}", parsing_timeout=None)
            ok = bool(gold) and bool(answer) and verify(gold, answer, timeout_seconds=None)
        except Exception:  # any parser or sympy failure is a wrong answer
            ok = False
        out.write(f"{int(tag)} {int(ok)}\n".encode())
        out.flush()


_spawner: tuple[int, ThreadPoolExecutor] | None = None
_spawner_lock = threading.Lock()


def _popen(*args, **kwargs) -> subprocess.Popen:
    """``subprocess.Popen`` from one long-lived thread of this process: a worker's
    parent-death signal follows the thread that started it, and callers' threads (a
    pool's, a request's) come and go."""
    global _spawner
    with _spawner_lock:
        if _spawner is None or _spawner[0] != os.getpid():  # none yet, or a forked child
            _spawner = (os.getpid(), ThreadPoolExecutor(1, thread_name_prefix="sas-verifier"))
        pool = _spawner[1]
    return pool.submit(subprocess.Popen, *args, **kwargs).result()


def _worker_command() -> list[str]:
    """The worker's command line (a seam for the fault tests)."""
    return [sys.executable, "-m", "sas_core.math_reward"]


class _Died(Exception):
    """The worker's pipes closed: it died (killed, crashed) before answering."""


class _Worker:
    """A ``python -m sas_core.math_reward`` child on pipes.

    A plain subprocess rather than ``multiprocessing``: a spawned multiprocessing child
    re-imports the parent's ``__main__``, which in a Ray worker is Ray's worker script, and
    it must not depend on what the caller's process looks like.
    """

    def __init__(self, startup_timeout: float) -> None:
        self.proc = _popen(
            _worker_command(),
            env={**os.environ, "SAS_CORE_VERIFIER_PARENT": str(os.getpid())},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._buf = b""
        self._tag = 0
        try:
            line = self.readline(startup_timeout)
        except _Died:
            line = None
        if line != b"ready":
            self.kill()
            raise RuntimeError(
                f"math-verify worker did not start within {startup_timeout:.0f} s "
                "(is math-verify installed? pip install math-verify)"
            )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def readline(self, timeout: float) -> bytes | None:
        """The next line without its newline; None after ``timeout`` seconds; raises
        ``_Died`` at end of file."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                raise _Died
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line

    def ask(self, pred: str, label: str, timeout: float) -> float | None:
        """1.0 / 0.0, or None when the answer did not come within ``timeout``; raises
        ``_Died`` when the worker is gone before or while answering."""
        self._tag += 1
        tag = self._tag
        try:
            self.proc.stdin.write(json.dumps([tag, pred, label]).encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            raise _Died from None
        deadline = time.monotonic() + timeout
        while True:
            line = self.readline(max(0.0, deadline - time.monotonic()))
            if line is None:
                return None
            got, _, verdict = line.partition(b" ")
            if got == str(tag).encode():  # an older request's late answer is dropped
                return float(verdict == b"1")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=5)
        for pipe in (self.proc.stdin, self.proc.stdout):
            pipe.close()


class MathVerifier:
    """Scores (response, label) pairs; see the module docstring.

    Args:
        timeout: seconds one comparison may take in its worker before it scores 0 (the
            worker is then killed and replaced). In (0, 3600].
        workers: worker processes (concurrent comparisons), 1..256.
        startup_timeout: seconds a new worker may take to import math-verify and sympy
            (not counted against ``timeout``); a worker that does not start raises.
        call_timeout: optional bound on a whole :meth:`score` call: waiting for a free
            worker, starting one, and the comparison. A call that gets no worker in time
            raises :class:`VerifierError`; a comparison cut by it scores 0 like a timeout.

    What ``timeout`` bounds is the comparison only: a call may also wait for a free worker
    (more calling threads than ``workers``) and for a new worker's start. Without
    ``call_timeout`` that wait is unbounded; with it, a call returns or raises within
    ``call_timeout`` plus about 10 ms.
    """

    def __init__(
        self,
        timeout: float = 5.0,
        workers: int = 2,
        startup_timeout: float = 120.0,
        call_timeout: float | None = None,
    ) -> None:
        self.timeout = _seconds(timeout, "timeout")
        if isinstance(workers, bool) or not isinstance(workers, int):
            raise TypeError(f"workers: expected an int, got {type(workers).__name__}")
        if not 1 <= workers <= MAX_WORKERS:
            raise ValueError(f"workers: must be in [1, {MAX_WORKERS}], got {workers}")
        self.workers = workers
        self.startup_timeout = _seconds(startup_timeout, "startup_timeout")
        self.call_timeout = None if call_timeout is None else _seconds(call_timeout, "call_timeout")
        # Counts since creation (read them to see that a timeout fired, a worker died).
        self.counts = {"timeouts": 0, "worker_deaths": 0, "workers_started": 0}
        self._idle: queue.Queue[_Worker | None] = queue.Queue()
        for _ in range(workers):
            self._idle.put(None)  # started on first use

    def score(
        self,
        response: str,
        label: str,
        *,
        timeout: float | None = None,
        call_timeout: float | None = None,
    ) -> float:
        """1.0 when the last ``\\boxed{}`` of ``response`` equals ``label``, else 0.0.

        ``timeout`` bounds the comparison (default: the verifier's): past it the item
        scores 0 and its worker is replaced. ``call_timeout`` (default: the verifier's)
        bounds the whole call. A worker found dead (killed while idle, or dying while it
        compares) is replaced and the item asked again once; if it cannot be scored,
        :class:`VerifierError` is raised: a right answer is never reported as 0.0
        because of a fault.
        """
        limit = self.timeout if timeout is None else _seconds(timeout, "timeout")
        bound = (
            self.call_timeout if call_timeout is None else _seconds(call_timeout, "call_timeout")
        )
        response, label = _text(response, "response"), _text(label, "label")
        deadline = None if bound is None else time.monotonic() + bound
        pred = last_boxed(response)
        if pred is None or not pred.strip():
            return 0.0
        try:
            worker = self._idle.get(timeout=bound)
        except queue.Empty:
            raise VerifierError(
                f"no free math-verify worker within call_timeout={bound:g} s "
                f"({self.workers} workers busy)"
            ) from None
        try:
            for attempt in range(2):
                if worker is not None and not worker.alive():  # died while idle
                    worker.kill()
                    worker = None
                    self.counts["worker_deaths"] += 1
                if worker is None:
                    start = self.startup_timeout
                    if deadline is not None:
                        start = min(start, max(deadline - time.monotonic(), 1e-3))
                    try:
                        worker = _Worker(start)
                        self.counts["workers_started"] += 1
                    except RuntimeError:
                        if start < self.startup_timeout:  # cut short by call_timeout
                            raise VerifierError(
                                f"no math-verify worker started within call_timeout={bound:g} s"
                            ) from None
                        raise
                left = limit if deadline is None else min(limit, deadline - time.monotonic())
                if left <= 0:
                    return 0.0  # the call's bound is spent: scored as a timeout
                try:
                    verdict = worker.ask(pred, label, left)
                except _Died:
                    worker.kill()
                    worker = None
                    self.counts["worker_deaths"] += 1
                    if attempt == 0:
                        continue  # ask a fresh worker once
                    raise VerifierError(
                        "math-verify worker died twice on this item; not scored"
                    ) from None
                if verdict is None:  # too slow: replace it, the item scores 0
                    worker.kill()
                    worker = None
                    self.counts["timeouts"] += 1
                    return 0.0
                return verdict
            raise AssertionError("unreachable")
        except BaseException:
            if worker is not None:  # it may hold an unanswered request: never reuse it
                worker.kill()
                worker = None
            raise
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
            atexit.register(_default.close)  # its workers end with the interpreter
        return _default


def math_verify_score(response: str, label: str, *, timeout: float = 5.0) -> float:
    """:meth:`MathVerifier.score` on the shared verifier, ``timeout`` seconds per call."""
    timeout = _seconds(timeout, "timeout")
    return shared_verifier().score(response, label, timeout=timeout)


if __name__ == "__main__":
    _serve()
