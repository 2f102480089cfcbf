"""The model, data and reward verl's CPU loop trains on, built locally (no downloads).

The model is the demo's warmed-up policy (``docs/demo-design3/bases/seed0.pt``: a
two-layer Qwen2 with a character tokenizer, trained on worked solutions of chained
additions written in blank-line steps), saved in Hugging Face format, so verl's rollouts
hold several steps each. The prompts are the demo's task in verl's parquet format, and
``reward.py`` scores a response by its last ``\\boxed{}``.
"""

from __future__ import annotations

import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "docs" / "demo-design3" / "bases" / "seed0.pt"
REWARD = Path(__file__).with_name("reward.py")
# The prompt is the problem itself ("A3B4C2=") and the solution follows it.
CHAT_TEMPLATE = "{% for message in messages %}{{ message['content'] }}{% endfor %}"


def build_model(out: Path) -> tuple[Path, Path]:
    """The warmed-up demo policy in ``out/model`` and its tokenizer in ``out/tokenizer``.

    The tokenizer has its own folder: beside a ``config.json`` whose model type is
    ``qwen2``, transformers 5 loads any tokenizer as ``Qwen2Tokenizer``, whose own
    pre-tokenizer drops this vocabulary's newlines, and with them every step boundary.
    verl reads it from ``actor_rollout_ref.model.tokenizer_path``."""
    import torch

    from sas_core.demo.tiny import build_model as tiny_model
    from sas_core.demo.tiny import build_tokenizer

    tokenizer = build_tokenizer()
    tokenizer.chat_template = CHAT_TEMPLATE
    model = tiny_model(tokenizer, hidden=128, layers=2, seed=0)
    model.load_state_dict(torch.load(BASE, map_location="cpu"))
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out / "model", safe_serialization=True)
    tokenizer.save_pretrained(out / "tokenizer")
    return out / "model", out / "tokenizer"


def build_data(out: Path, *, train: int = 64, val: int = 8, seed: int = 0) -> tuple[Path, Path]:
    """Train and validation parquet files in verl's RL dataset format."""
    import pandas as pd

    from sas_core.demo.task import sample_problem

    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for split, count in (("train", train), ("test", val)):
        rows = []
        for index in range(count):
            # 5-7 terms: a careful solution fits a 64-token window up to about 5 terms,
            # so groups mix right answers with sound rollouts cut before their answer.
            problem = sample_problem(rng, 5, 7)
            rows.append(
                {
                    "data_source": "sas_demo_addition",
                    "prompt": [{"role": "user", "content": problem.prompt}],
                    "ability": "math",
                    "reward_model": {"style": "rule", "ground_truth": str(problem.answer)},
                    "extra_info": {"split": split, "index": index},
                }
            )
        path = out / f"{split}.parquet"
        pd.DataFrame(rows).to_parquet(path)
        paths.append(path)
    return paths[0], paths[1]
