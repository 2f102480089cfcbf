"""``sas-core inspect``: rollouts as a self-contained HTML page of steps.

Each response is split into its steps; each step is coloured by its confidence (mean
token log-prob, relative to the page's range), and the steps SAS would zero are marked.
With an action mask, the tokens off it (tool output, observations) are shown apart,
and each rollout's turns are counted.
Reward, correctness and truncation are shown, and the page filters by them. The data is
embedded as JSON and rendered by the page's own script: no network, no files beside it.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from sas_core.confidence import step_confidences
from sas_core.segmenter import StepSegmenter

__all__ = ["InspectRollout", "render_page", "step_table"]


@dataclass(frozen=True)
class InspectRollout:
    token_ids: Sequence[int]
    logprobs: Sequence[float]
    correct: bool
    reward: float | None = None
    truncated: bool = False
    label: str = ""
    # False on tokens the model did not write (tool output, an observation): they are in
    # no step; each run of the model's tokens is a turn. None: all the model's.
    action_mask: Sequence[bool] | None = None


def step_table(
    rollouts: Sequence[InspectRollout],
    segmenter: StepSegmenter,
    *,
    ratio: float = 0.3,
    mode: str = "both",
) -> list[dict[str, Any]]:
    """Per rollout: its steps as {text, confidence, zeroed}, plus its metadata."""
    lengths = [len(r.token_ids) for r in rollouts]
    for i, r in enumerate(rollouts):
        if len(r.logprobs) != len(r.token_ids):
            raise ValueError(
                f"logprobs: rollout {i} has {len(r.logprobs)} for {len(r.token_ids)} tokens"
            )
    cu = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = np.asarray([t for r in rollouts for t in r.token_ids], dtype=np.int64)
    lps = np.asarray([x for r in rollouts for x in r.logprobs], dtype=np.float64)
    correct = np.asarray([r.correct for r in rollouts], dtype=bool)
    on = np.ones(ids.size, dtype=bool)
    for i, r in enumerate(rollouts):
        if r.action_mask is not None:
            if len(r.action_mask) != lengths[i]:
                raise ValueError(
                    f"action_mask: rollout {i} has {len(r.action_mask)} for {lengths[i]} tokens"
                )
            on[cu[i] : cu[i + 1]] = np.asarray(r.action_mask, dtype=bool)
    steps = segmenter.segment(ids, cu, action_mask=on)
    keep = segmenter.select_steps(
        ids, lps, cu, correct, action_mask=on, ratio=ratio, mode=mode
    ).keep
    conf = step_confidences(steps, lps, cu)  # the contract's confidence, as SAS ranks
    out = []
    for i, r in enumerate(rollouts):
        a, b = int(cu[i]), int(cu[i + 1])
        # Segments in token order: a new one where the step or the mask changes (a step
        # is one segment; text after a reasoning end or off the mask makes others).
        segments: list[dict[str, Any]] = []
        turn = -1
        for t in range(a, b):
            if on[t] and (t == a or not on[t - 1]):
                turn += 1
            key = (int(steps[t]), bool(on[t]))
            if not segments or segments[-1]["key"] != key:
                segments.append({"key": key, "turn": turn, "text": b"", "lps": [], "z": False})
            g = segments[-1]
            g["text"] += _token_bytes(segmenter, int(ids[t]))
            g["lps"].append(float(lps[t]))
            g["z"] |= not bool(keep[t])
        out.append(
            {
                "correct": r.correct,
                "reward": r.reward,
                "truncated": r.truncated,
                "label": r.label,
                "turns": turn + 1,
                "steps": [
                    {
                        "step": g["key"][0],
                        "turn": g["turn"] if g["key"][1] else -1,
                        "off_mask": not g["key"][1],
                        "text": g["text"].decode("utf-8", "replace"),
                        "confidence": (
                            float(conf.values[conf.cu_steps[i] + g["key"][0]])
                            if g["key"][0] >= 0
                            # after </think> or off the mask: no step, the tokens' mean
                            else sum(g["lps"]) / len(g["lps"])
                        ),
                        "zeroed": g["z"],
                    }
                    for g in segments
                ],
            }
        )
    return out


def _token_bytes(segmenter: StepSegmenter, token: int) -> bytes:
    table = segmenter.token_bytes
    return table[token] if token < len(table) else b""  # padding rows have no bytes


def _page() -> str:
    """The page template, shipped as package data beside this module."""
    return resources.files(__package__).joinpath("inspect_page.html").read_text("utf-8")


def render_page(table: list[dict[str, Any]], *, ratio: float, mode: str) -> str:
    """The self-contained HTML page of :func:`step_table`'s output."""
    # "</" inside the JSON would end the script element: escape it.
    data = json.dumps(table).replace("</", "<\\/")
    return (
        _page()
        .replace("__DATA__", data)
        .replace("__RATIO__", html.escape(str(ratio)))
        .replace("__MODE__", html.escape(mode))
    )
