"""Runs the README's Python blocks and checks what they print against their comments.

A block's ``print(...)`` line followed by a ``# <text>`` line promises that output; a
block that prints something else, or fails, fails the check. Used by the tests (every
block, fragments given the names a trainer would have) and by the release check (the
first block, against the built wheel in a bare virtual environment):

    python scripts/readme_examples.py README.md --first
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
from pathlib import Path

BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(readme: str) -> list[str]:
    return BLOCK.findall(readme)


def promised_output(block: str) -> list[str]:
    """The ``# text`` comment after each top-level ``print(`` line, in order."""
    lines = block.splitlines()
    return [
        nxt[2:]
        for line, nxt in zip(lines, lines[1:])
        if line.startswith("print(") and nxt.startswith("# ")
    ]


def run_block(block: str, namespace: dict) -> None:
    """Executes ``block`` in ``namespace``; raises AssertionError if its output differs
    from what its comments promise."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "<README block>", "exec"), namespace)
    promised = promised_output(block)
    if promised:
        printed = out.getvalue().splitlines()
        if printed != promised:
            raise AssertionError(f"README block printed {printed!r}, promises {promised!r}")


def main(argv: list[str]) -> int:
    path = Path(argv[0])
    blocks = python_blocks(path.read_text())
    if not blocks:
        raise SystemExit(f"{path}: no python blocks")
    chosen = blocks[:1] if "--first" in argv else blocks
    for block in chosen:
        run_block(block, {"__name__": "__readme__"})
    print(f"{path}: {len(chosen)} block(s) ran and printed what they promise")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
