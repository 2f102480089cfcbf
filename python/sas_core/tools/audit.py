"""Truncation audit: how many correct long-budget responses fail once cut shorter.

The SAS paper found that about 29% of DeepScaleR's correct 8K-token traces fail the
verifier once cut to 4K: the answer comes after the cut, so GRPO scores sound reasoning
as a failure. Given rollouts generated with a long budget, this measures that share for
any list of shorter budgets, and how far past each budget the lost answers came.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sas_core.tools.jsonl import read_jsonl

__all__ = ["Rollout", "audit_truncation", "load_rollouts"]

# How far past the budget the end of the answer came, as a fraction of the budget.
_BEYOND = ((0.0, 0.1), (0.1, 0.25), (0.25, 0.5), (0.5, float("inf")))


@dataclass(frozen=True)
class Rollout:
    prompt: str
    response: str
    label: str
    token_ids: tuple[int, ...] | None = None


def load_rollouts(path: str | Path) -> list[Rollout]:
    """Reads JSONL rows {prompt, response, label, token_ids?}; errors name the line."""
    out = []
    for where, row in read_jsonl(path):
        for key in ("prompt", "response", "label"):
            value = row.get(key)
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise ValueError(f"{where}: missing or non-text field {key!r}")
        ids = row.get("token_ids")
        if ids is not None and not (
            isinstance(ids, list) and all(isinstance(i, int) and i >= 0 for i in ids)
        ):
            raise ValueError(f"{where}: token_ids must be a list of non-negative integers")
        tokens = None if ids is None else tuple(ids)
        out.append(Rollout(str(row["prompt"]), str(row["response"]), str(row["label"]), tokens))
    return out


def _answer_end(ids: Sequence[int], decode: Callable[[Sequence[int]], str], full: str) -> int:
    """Fewest leading tokens whose text still holds the response's last \\boxed{...}."""
    close = full.rfind("}")
    lo, hi = 0, len(ids)
    while lo < hi:  # binary search on the decoded prefix length
        mid = (lo + hi) // 2
        if len(decode(ids[:mid])) > close:
            hi = mid
        else:
            lo = mid + 1
    return lo


def audit_truncation(
    rollouts: Iterable[Rollout],
    budgets: Sequence[int],
    *,
    encode: Callable[[str], list[int]],
    decode: Callable[[Sequence[int]], str],
    score: Callable[[str, str], float],
    progress: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """For each budget: the share of correct responses that fail once cut to it.

    Args:
        rollouts: responses generated with a long budget.
        budgets: shorter budgets in tokens.
        encode / decode: the tokenizer (token ids from the rollout are used when given).
        score: the verifier, ``score(response, label)`` -> 1.0 or 0.0.
    """
    if not budgets or any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in budgets):
        raise ValueError(f"budgets: must be positive integers, got {list(budgets)}")
    rows = []
    for r in rollouts:
        ids = list(r.token_ids) if r.token_ids is not None else encode(r.response)
        full = decode(ids) if r.token_ids is not None else r.response
        correct = score(full, r.label) > 0.5
        cut_correct = {
            b: (score(decode(ids[:b]), r.label) > 0.5) if correct else False for b in budgets
        }
        end = _answer_end(ids, decode, full) if correct else None
        rows.append((len(ids), correct, cut_correct, end))
        if progress:
            progress()

    n_correct = sum(1 for _, c, _, _ in rows if c)
    report: dict[str, Any] = {
        "responses": len(rows),
        "correct_at_full_length": n_correct,
        "mean_tokens": sum(n for n, *_ in rows) / max(len(rows), 1),
        "budgets": {},
    }
    for b in budgets:
        lost = [(end, n) for n, c, cut, end in rows if c and not cut[b]]
        beyond = {}
        for lo, hi in _BEYOND:
            key = f"answer {int(lo * 100)}-{'' if hi == float('inf') else int(hi * 100)}% past"
            beyond[key.replace("-%", "+%")] = sum(
                1 for end, _ in lost if lo * b <= end - b < hi * b
            )
        report["budgets"][str(b)] = {
            "correct_failing_when_cut": len(lost),
            "share_of_correct": len(lost) / max(n_correct, 1),
            "lost_by_answer_position": beyond,
        }
    return report


def summary(report: dict[str, Any]) -> str:
    """The report in a few sentences, for a terminal (the JSON keys are in the README)."""
    n, correct = report["responses"], report["correct_at_full_length"]
    lines = [
        f"{n} responses, {correct} correct at full length "
        f"(mean {report['mean_tokens']:.0f} tokens)."
    ]
    for budget, row in report["budgets"].items():
        lost = row["correct_failing_when_cut"]
        line = (
            f"Cut to {budget} tokens: {lost} of the {correct} correct responses fail "
            f"({row['share_of_correct']:.1%})."
        )
        if lost:
            where = ", ".join(
                f"{count} at {key.removeprefix('answer ')}"
                for key, count in row["lost_by_answer_position"].items()
                if count
            )
            line += f" Their answers ended this far past the cut: {where}."
        lines.append(line)
    return "\n".join(lines)
