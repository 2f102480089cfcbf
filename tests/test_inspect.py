"""sas-core inspect: the page, rendered by a real headless browser, marks the right steps."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest

import sas_core
from sas_core.cli import main

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")

RESPONSES = [
    "First, 3 + 4 = 7.\n\nThen 7 * 2 = 14.\n\nWait, check: 14.\n\nSo \\boxed{14}.",
    "Guess.\n\nAnother guess.\n\nNo idea.\n\nMaybe.\n\n\\boxed{3}",
    "One step only \\boxed{14}",
    "A.\n\nB.\n\nC.\n\nD.\n\nE.\n\nF.\n\nG.</think>\n\nAnswer: \\boxed{14}",
    "<b>not html</b>\n\n</script> tricky\n\n\\boxed{14}",
]


class _Steps(HTMLParser):
    """Collects (rollout index, step id, zeroed) of every rendered step span."""

    def __init__(self):
        super().__init__()
        self.rollout = None
        self.spans = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "div" and "rollout" in (a.get("class") or "").split():
            self.rollout = int(a["data-index"])
        if tag == "span" and "step" in (a.get("class") or "").split():
            zeroed = "zeroed" in a["class"].split()
            self.spans.append((self.rollout, int(a["data-step"]), zeroed))


@pytest.mark.skipif(BROWSER is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_headless_browser_shows_the_steps_sas_zeroes(tmp_path, qwen, qwen_segmenter):
    rng = np.random.default_rng(0)
    rows = []
    for i, text in enumerate(RESPONSES):
        ids = qwen.encode(text, allowed_special="all")
        lps = (-rng.random(len(ids)) * 3).round(4).tolist()
        rows.append(
            {
                "response": text,
                "token_ids": ids,
                "logprobs": lps,
                "correct": i % 2 == 0,
                "reward": float(i % 2 == 0),
                "truncated": i == 1,
                "label": "14",
            }
        )
    path = tmp_path / "rollouts.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    page = tmp_path / "page.html"
    assert main(["inspect", str(path), "--out", str(page), "--ratio", "0.5"]) == 0

    dom = subprocess.run(
        [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    parser = _Steps()
    parser.feed(dom)
    assert parser.spans, "the page's script rendered no steps"

    ids = [r["token_ids"] for r in rows]
    cu = np.concatenate([[0], np.cumsum([len(x) for x in ids])])
    flat = np.concatenate(ids)
    steps = qwen_segmenter.segment(flat, cu)
    keep = sas_core.select_steps(
        steps,
        np.concatenate([r["logprobs"] for r in rows]),
        cu,
        [r["correct"] for r in rows],
        ratio=0.5,
    ).keep
    want = set()
    for b in range(len(rows)):
        for t in range(cu[b], cu[b + 1]):
            want.add((b, int(steps[t]), not bool(keep[t])))
    assert set(parser.spans) == want
    assert any(z for _, _, z in parser.spans)  # something is marked
    # Response text is shown as text, never parsed as markup.
    assert "&lt;/script&gt; tricky" in dom and "&lt;b&gt;not html" in dom


def test_turns_and_tokens_off_the_mask_are_shown_apart(tmp_path, qwen, qwen_segmenter):
    """A two-turn rollout with a tool output between the turns (action_mask false): the
    output is its own segment, in no step and never zeroed; the turns are counted and
    each opens its own step, as the segmenter with the mask says."""
    from sas_core.tools.inspect_page import InspectRollout, step_table

    turn1, tool, turn2 = "Let me compute 3 + 4", " [tool] 7 ", "so the answer is 7."
    parts = [qwen.encode(t) for t in (turn1, tool, turn2)]
    ids = [t for p in parts for t in p]
    mask = [True] * len(parts[0]) + [False] * len(parts[1]) + [True] * len(parts[2])
    lps = (-np.linspace(0.1, 3.0, len(ids))).tolist()
    rollout = InspectRollout(ids, lps, True, action_mask=mask)
    (row,) = step_table([rollout], qwen_segmenter, ratio=0.5)
    assert row["turns"] == 2
    off = [s for s in row["steps"] if s["off_mask"]]
    assert [s["text"] for s in off] == [tool] and off[0]["step"] == -1
    assert not off[0]["zeroed"] and off[0]["turn"] == -1
    on = [s for s in row["steps"] if not s["off_mask"]]
    assert [(s["step"], s["turn"]) for s in on] == [(0, 0), (1, 1)]
    assert [s["text"] for s in on] == [turn1, turn2]
    assert [s["zeroed"] for s in on] == [False, True]  # the less confident turn, ratio 0.5
    # through the command line, and a bad mask is one line naming it
    path = tmp_path / "r.jsonl"
    row = {"token_ids": ids, "logprobs": lps, "correct": True, "action_mask": mask}
    path.write_text(json.dumps(row))
    assert main(["inspect", str(path), "--out", str(tmp_path / "p.html")]) == 0
    assert "off_mask" in (tmp_path / "p.html").read_text()
    path.write_text(json.dumps({**row, "action_mask": "yes"}))
    assert main(["inspect", str(path), "--out", str(tmp_path / "p.html")]) == 2
