"""``sas-core inspect``: rollouts as a self-contained HTML page of steps.

Each response is split into its steps; each step is coloured by its confidence (mean
token log-prob, relative to the page's range), and the steps SAS would zero are marked.
Reward, correctness and truncation are shown, and the page filters by them. The data is
embedded as JSON and rendered by the page's own script: no network, no files beside it.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
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
    steps = segmenter.segment(ids, cu)
    keep = segmenter.select_steps(ids, lps, cu, correct, ratio=ratio, mode=mode).keep
    conf = step_confidences(steps, lps, cu)  # the contract's confidence, as SAS ranks
    out = []
    for i, r in enumerate(rollouts):
        a, b = int(cu[i]), int(cu[i + 1])
        groups: dict[int, dict[str, Any]] = {}
        for t in range(a, b):
            g = groups.setdefault(int(steps[t]), {"text": b"", "lps": [], "zeroed": False})
            g["text"] += _token_bytes(segmenter, int(ids[t]))
            g["lps"].append(float(lps[t]))
            g["zeroed"] |= not bool(keep[t])
        out.append(
            {
                "correct": r.correct,
                "reward": r.reward,
                "truncated": r.truncated,
                "label": r.label,
                "steps": [
                    {
                        "step": s,
                        "text": g["text"].decode("utf-8", "replace"),
                        "confidence": (
                            float(conf.values[conf.cu_steps[i] + s])
                            if s >= 0
                            else sum(g["lps"]) / len(g["lps"])  # after </think>: no step
                        ),
                        "zeroed": g["zeroed"],
                    }
                    for s, g in groups.items()
                ],
            }
        )
    return out


def _token_bytes(segmenter: StepSegmenter, token: int) -> bytes:
    table = segmenter.token_bytes
    return table[token] if token < len(table) else b""  # padding rows have no bytes


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>SAS steps</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5em; }
.rollout { border: 1px solid #ccc; border-radius: 6px; margin: 1em 0; padding: .6em; }
.meta { font-size: .85em; color: #444; margin-bottom: .4em; }
.step { white-space: pre-wrap; font-family: ui-monospace, monospace; padding: 1px 2px;
        border-radius: 3px; }
.step.zeroed { outline: 2px dashed #222; text-decoration: line-through; }
.step.outside { color: #888; background: #eee; }
.hidden { display: none; }
</style></head><body>
<h1>SAS steps</h1>
<p>Colour: step confidence (mean token log-prob), red = least confident, green = most.
Dashed and struck through: steps whose advantage SAS sets to zero
(ratio __RATIO__, mode __MODE__). Grey: outside the reasoning region.</p>
<div id="filters">
 <label><input type="checkbox" id="f-correct" checked> correct</label>
 <label><input type="checkbox" id="f-failed" checked> failed</label>
 <label><input type="checkbox" id="f-truncated-only"> truncated only</label>
 <label><input type="checkbox" id="f-zeroed-only"> rollouts with zeroed steps only</label>
</div>
<div id="rollouts"></div>
<script id="data" type="application/json">__DATA__</script>
<script>
const data = JSON.parse(document.getElementById("data").textContent);
const confs = data.flatMap(r => r.steps.filter(s => s.step >= 0).map(s => s.confidence));
const lo = Math.min(...confs), hi = Math.max(...confs);
function colour(c) {
  const x = hi > lo ? (c - lo) / (hi - lo) : 0.5;
  return `hsl(${Math.round(120 * x)}, 70%, 85%)`;
}
const root = document.getElementById("rollouts");
data.forEach((r, i) => {
  const div = document.createElement("div");
  div.className = "rollout";
  div.dataset.index = i;
  div.dataset.correct = r.correct;
  div.dataset.truncated = r.truncated;
  div.dataset.zeroed = r.steps.some(s => s.zeroed);
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = `#${i} ${r.correct ? "correct" : "failed"}` +
    (r.reward === null ? "" : `, reward ${r.reward}`) +
    (r.truncated ? ", truncated" : "") + (r.label ? `, label ${r.label}` : "") +
    `, ${r.steps.filter(s => s.step >= 0).length} steps`;
  div.appendChild(meta);
  r.steps.forEach(s => {
    const span = document.createElement("span");
    span.className = "step" + (s.zeroed ? " zeroed" : "") + (s.step < 0 ? " outside" : "");
    span.dataset.step = s.step;
    span.title = `step ${s.step}, confidence ${s.confidence.toFixed(3)}`;
    if (s.step >= 0) span.style.background = colour(s.confidence);
    span.textContent = s.text;
    div.appendChild(span);
  });
  root.appendChild(div);
});
function applyFilters() {
  const c = document.getElementById("f-correct").checked;
  const f = document.getElementById("f-failed").checked;
  const t = document.getElementById("f-truncated-only").checked;
  const z = document.getElementById("f-zeroed-only").checked;
  document.querySelectorAll(".rollout").forEach(div => {
    const ok = (div.dataset.correct === "true" ? c : f) &&
      (!t || div.dataset.truncated === "true") && (!z || div.dataset.zeroed === "true");
    div.classList.toggle("hidden", !ok);
  });
}
document.querySelectorAll("#filters input")
  .forEach(e => e.addEventListener("change", applyFilters));
applyFilters();
</script></body></html>
"""


def render_page(table: list[dict[str, Any]], *, ratio: float, mode: str) -> str:
    """The self-contained HTML page of :func:`step_table`'s output."""
    # "</" inside the JSON would end the script element: escape it.
    data = json.dumps(table).replace("</", "<\\/")
    return (
        _PAGE.replace("__DATA__", data)
        .replace("__RATIO__", html.escape(str(ratio)))
        .replace("__MODE__", html.escape(mode))
    )
