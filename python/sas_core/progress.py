"""Progress for long commands: a live bar in a terminal, plain lines in a log.

A live bar writes nothing useful to a file or a pipe (CI, ``nohup``, a job log), so
when stderr is not a terminal, progress goes out as plain lines: the start, then at
most one line every ``every`` seconds (count, elapsed, a key figure), then the end.
Progress goes to stderr, so that what a command prints on stdout (a JSON report) stays
clean.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from typing import TextIO


class PlainLines:
    """``advance(n)`` prints ``[  12s] <what>: 40/100 <figure()>`` at a modest rate."""

    def __init__(
        self,
        what: str,
        total: int,
        figure: Callable[[], str] | None = None,
        stream: TextIO | None = None,
        every: float = 30.0,
    ) -> None:
        self.what, self.total, self.figure = what, total, figure
        self.stream = stream if stream is not None else sys.stderr
        self.every = every
        self.done = 0
        self.started = time.monotonic()
        self.last = -float("inf")

    def line(self) -> None:
        elapsed = time.monotonic() - self.started
        extra = f"  {self.figure()}" if self.figure else ""
        print(
            f"[{elapsed:6.0f}s] {self.what}: {self.done}/{self.total}{extra}",
            file=self.stream,
            flush=True,
        )
        self.last = time.monotonic()

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.done >= self.total or time.monotonic() - self.last >= self.every:
            self.line()


@contextlib.contextmanager
def progress(
    what: str,
    total: int,
    *,
    disabled: bool = False,
    figure: Callable[[], str] | None = None,
    every: float = 30.0,
) -> Iterator[Callable[[int], None]]:
    """Yields ``advance(n=1)``: a rich bar when stderr is a terminal, else plain lines."""
    if disabled:
        yield lambda n=1: None
    elif sys.stderr.isatty():
        from rich.progress import Progress

        with Progress(transient=False) as bar:
            task = bar.add_task(what, total=total)
            yield lambda n=1: bar.advance(task, n)
    else:
        lines = PlainLines(what, total, figure, every=every)
        lines.line()
        yield lines.advance
