"""Pure-Python reference implementation of the whole SAS contract.

Written for clarity, not speed: it works on the decoded bytes of each response with
regular expressions and sorts with Python tuples. The tests use it as the oracle for the
Rust core, and the benchmarks as the baseline (what ``sas-core bench`` times as pure
Python). It takes and returns plain Python lists. The readable oracle, never a code
path: no production module imports it (a test checks).

The contract, in brief (README.md has it in full):

1. Segmentation: a *delimiter* is a maximal run of two or more ``\\n`` bytes in the
   concatenated bytes of a response. A token's anchor is its first byte outside every
   delimiter (or its first byte if it has only delimiter bytes); its raw step is the number
   of delimiter runs ending at or before the anchor. A token with no bytes takes the step
   of the byte before it. Raw steps are renumbered 0..n-1. From the first reasoning-end
   token on, tokens get step -1 (outside every step). Options: ``delimiter="line"``
   makes a run of one or more ``\n`` a delimiter (a step per line, for code); a
   *boundary token* ends a step after it, read as if a blank line followed its bytes.

   Turns: a rollout whose action mask has holes (tool output, an observation: tokens the
   model did not write) is a sequence of turns, the maximal runs of action tokens. Off-mask
   tokens are in no step (the padded calls never rank or zero them); each turn is
   segmented on its own as above (its own reasoning region too), and its step ids follow
   the rollout's earlier turns'. A rollout of one turn is segmented as before.
2. Confidence of a step: mean log-prob of its tokens (summed in four lanes, see
   :func:`step_confidences`).
3. Selection: k = floor(ratio * n + 1e-9) of a rollout's n steps; the lowest-confidence
   steps of a correct rollout, the highest of a failed one, ties to the lower step id.
4. Advantages: GRPO normalisation within groups, times the keep mask.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

__all__ = [
    "GRANULARITIES",
    "MODES",
    "SELECTIONS",
    "grpo_advantages",
    "keep_mask",
    "sas_token_advantages",
    "segment",
    "segment_tokens",
    "step_confidences",
    "unit_key",
]

MODES = ("both", "correct", "failed")
SELECTIONS = ("confidence", "random")
GRANULARITIES = ("step", "token")

_DELIMITER = re.compile(rb"\n{2,}")
_LINE = re.compile(rb"\n+")
_MASK64 = (1 << 64) - 1


def _rollouts(cu_seqlens: Sequence[int], n_tokens: int) -> list[tuple[int, int]]:
    cu = [int(c) for c in cu_seqlens]
    if not cu or cu[0] != 0:
        raise ValueError("cu_seqlens: must start at 0")
    if any(b < a for a, b in zip(cu, cu[1:])):
        raise ValueError("cu_seqlens: must be non-decreasing")
    if cu[-1] != n_tokens:
        raise ValueError("cu_seqlens: must end at the number of tokens")
    return list(zip(cu, cu[1:]))


def segment_tokens(
    tokens: Sequence[bytes],
    think_end: int | None = None,
    *,
    delimiter: str = "blank_line",
    boundaries: Iterable[int] = (),
) -> list[int]:
    """Step id of each token of one response, given each token's bytes.

    ``think_end`` is the index of the first reasoning-end token, if any. ``delimiter``:
    ``"blank_line"`` (runs of two or more ``\n``) or ``"line"`` (runs of one or more).
    ``boundaries``: indices of the tokens after which a step ends, read as if a blank
    line followed their bytes.
    """
    boundaries = set(boundaries)
    tokens = [t + b"\n\n" if i in boundaries else t for i, t in enumerate(tokens)]
    data = b"".join(tokens)
    pattern = _DELIMITER if delimiter == "blank_line" else _LINE
    runs = [(m.start(), m.end()) for m in pattern.finditer(data)]
    delimiter_bytes = {p for start, end in runs for p in range(start, end)}

    raw_steps = []
    pos = 0
    for tok in tokens:
        positions = range(pos, pos + len(tok))
        outside = [p for p in positions if p not in delimiter_bytes]
        if outside:
            anchor = outside[0]
            raw = sum(1 for _, end in runs if end <= anchor)
        elif tok:
            raw = sum(1 for _, end in runs if end <= pos)
        else:
            # No bytes: the step of the byte before it, i.e. runs closed before `pos`.
            raw = sum(1 for _, end in runs if end < pos)
        raw_steps.append(raw)
        pos += len(tok)

    steps = []
    seen: dict[int, int] = {}
    for i, raw in enumerate(raw_steps):
        if think_end is not None and i >= think_end:
            steps.append(-1)
        else:
            steps.append(seen.setdefault(raw, len(seen)))
    return steps


def segment(
    token_bytes: Sequence[bytes],
    token_ids: Sequence[int],
    cu_seqlens: Sequence[int],
    *,
    vocab_size: int | None = None,
    think_end_ids: Iterable[int] = (),
    turn_starts: Iterable[int] = (),
    delimiter: str = "blank_line",
    boundary_ids: Iterable[int] = (),
) -> list[int]:
    """Step id per token of a packed batch (see the module docstring). ``turn_starts``:
    the positions (in the packed arrays) of the tokens that open a new turn of their
    rollout; ``delimiter`` and ``boundary_ids`` (token ids) as in
    :func:`segment_tokens`."""
    vocab = len(token_bytes) if vocab_size is None else vocab_size
    think_end_ids = set(think_end_ids)
    boundary_ids = set(boundary_ids)
    turn_starts = set(turn_starts)
    out: list[int] = []
    for start, end in _rollouts(cu_seqlens, len(token_ids)):
        cuts = [start, *sorted(p for p in turn_starts if start < p < end), end]
        n_steps = 0
        for turn_start, turn_end in zip(cuts, cuts[1:]):
            ids = [int(t) for t in token_ids[turn_start:turn_end]]
            for i in ids:
                if not 0 <= i < vocab:
                    raise ValueError(f"token_ids: token id {i} is outside the vocabulary")
            tokens = [token_bytes[i] if i < len(token_bytes) else b"" for i in ids]
            think_end = next((j for j, i in enumerate(ids) if i in think_end_ids), None)
            ends = [j for j, i in enumerate(ids) if i in boundary_ids]
            steps = segment_tokens(tokens, think_end, delimiter=delimiter, boundaries=ends)
            out.extend(s + n_steps if s >= 0 else -1 for s in steps)
            n_steps += max(steps, default=-1) + 1
    return out


def step_confidences(step_ids: Sequence[int], logprobs: Sequence[float]) -> dict[int, float]:
    """Mean log-prob of each step of one rollout (steps with id -1 excluded).

    The sum runs in four lanes: the j-th token of a step (j from 0) is added to lane
    j % 4, and the total is (lane0 + lane1) + (lane2 + lane3). The core sums in this
    order for speed; fixing it here makes both bit-identical.
    """
    lanes: dict[int, list[float]] = {}
    counts: dict[int, int] = {}
    for s, lp in zip(step_ids, logprobs):
        if s >= 0:
            j = counts.get(s, 0)
            lanes.setdefault(s, [0.0, 0.0, 0.0, 0.0])[j % 4] += float(lp)
            counts[s] = j + 1
    return {s: ((v[0] + v[1]) + (v[2] + v[3])) / counts[s] for s, v in lanes.items()}


def _splitmix64(x: int) -> int:
    z = (x + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def unit_key(seed: int, rollout: int, unit: int) -> int:
    """Random key of a unit for ``selection='random'``: the k smallest keys are selected."""
    return _splitmix64(_splitmix64(_splitmix64(seed) ^ rollout) ^ unit)


def _n_selected(ratio: float, n: int) -> int:
    return min(n, math.floor(ratio * n + 1e-9))


def keep_mask(
    step_ids: Sequence[int],
    logprobs: Sequence[float],
    cu_seqlens: Sequence[int],
    correct: Sequence[bool],
    *,
    ratio: float = 0.3,
    mode: str = "both",
    selection: str = "confidence",
    granularity: str = "step",
    seed: int = 0,
) -> list[bool]:
    """Keep mask per token: False on the tokens of the selected steps (or tokens)."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError("ratio: must be in [0, 1]")
    if mode not in MODES or selection not in SELECTIONS or granularity not in GRANULARITIES:
        raise ValueError("mode/selection/granularity: unknown option")
    if len(logprobs) != len(step_ids):
        raise ValueError("logprobs: length mismatch")
    rollouts = _rollouts(cu_seqlens, len(step_ids))
    if len(correct) != len(rollouts):
        raise ValueError("correct: length mismatch")

    keep = [True] * len(step_ids)
    for b, (start, end) in enumerate(rollouts):
        steps = [int(s) for s in step_ids[start:end]]
        lps = [float(x) for x in logprobs[start:end]]
        if any(not math.isfinite(x) for x in lps):
            raise ValueError("logprobs: must be finite")
        if any(not -1 <= s < end - start for s in steps):
            raise ValueError("step_ids: out of range")

        if granularity == "step":
            scores = step_confidences(steps, lps)  # unit = step id
        else:
            scores = {pos: lp for pos, (s, lp) in enumerate(zip(steps, lps)) if s >= 0}
        k = _n_selected(ratio, len(scores))
        is_correct = bool(correct[b])
        if k == 0 or (mode == "correct" and not is_correct) or (mode == "failed" and is_correct):
            continue

        if selection == "random":
            order = sorted(scores, key=lambda u: (unit_key(seed, b, u), u))
        elif is_correct:
            order = sorted(scores, key=lambda u: (scores[u], u))  # lowest confidence first
        else:
            order = sorted(scores, key=lambda u: (-scores[u], u))  # highest first
        chosen = set(order[:k])

        for pos, s in enumerate(steps):
            unit = s if granularity == "step" else pos
            if s >= 0 and unit in chosen:
                keep[start + pos] = False
    return keep


def grpo_advantages(rewards: Sequence[float], group_size: int, eps: float = 1e-6) -> list[float]:
    """(R - mean) / (std + eps) within consecutive groups; unbiased std."""
    if group_size < 2 or len(rewards) % group_size:
        raise ValueError("group_size: must be >= 2 and divide the number of rollouts")
    out = []
    for g in range(0, len(rewards), group_size):
        group = [float(r) for r in rewards[g : g + group_size]]
        mean = sum(group) / len(group)
        std = math.sqrt(sum((r - mean) ** 2 for r in group) / (len(group) - 1))
        out.extend((r - mean) / (std + eps) for r in group)
    return out


def sas_token_advantages(
    step_ids: Sequence[int],
    logprobs: Sequence[float],
    cu_seqlens: Sequence[int],
    rewards: Sequence[float],
    group_size: int,
    *,
    correct_threshold: float = 0.5,
    eps: float = 1e-6,
    **options,
) -> list[float]:
    """Per-token SAS advantage: the rollout's GRPO advantage times the keep mask."""
    correct = [float(r) > correct_threshold for r in rewards]
    keep = keep_mask(step_ids, logprobs, cu_seqlens, correct, **options)
    adv = grpo_advantages(rewards, group_size, eps)
    out = []
    for b, (start, end) in enumerate(_rollouts(cu_seqlens, len(step_ids))):
        out.extend(adv[b] if keep[i] else 0.0 for i in range(start, end))
    return out
