"""The command line's reading of numbers and its one-line errors (``sas-core`` and its
subcommands): every numeric option is checked by argparse against its range, and any
argparse error is one line ``sas-core <command>: error: ...`` with exit status 2."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (no usage block), exit 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


def integer(low: int, high: int | None = None, *, multiple: int = 1) -> Callable[[str], int]:
    """An argparse type: an integer in [low, high] (a multiple of ``multiple``)."""
    rule = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
    if multiple > 1:
        rule += f", a multiple of {multiple}"

    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text!r}") from None
        if value < low or (high is not None and value > high) or value % multiple:
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text!r}")
        return value

    parse.__name__ = "integer"
    return parse


def real(
    low: float, high: float | None = None, *, open_low: bool = False
) -> Callable[[str], float]:
    """An argparse type: a finite number in [low, high] (or (low, high] with ``open_low``)."""
    left = "(" if open_low else "["
    rule = f"a number in {left}{low:g}, {'inf' if high is None else f'{high:g}'}]"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text!r}") from None
        too_low = value <= low if open_low else value < low
        if not math.isfinite(value) or too_low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text!r}")
        return value

    parse.__name__ = "real"
    return parse


# Seeds, counts and step numbers that numpy and torch take (seeds are 32-bit there).
SEED = integer(0, 2**32 - 1)
COUNT = integer(1, 2**31 - 1)
