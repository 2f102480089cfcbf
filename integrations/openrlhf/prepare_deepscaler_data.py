"""Writes DeepScaleR-Preview-Dataset as OpenRLHF prompt JSONL: {"prompt", "answer"}.

    python prepare_deepscaler_data.py ~/data/deepscaler/train.jsonl

Downloads ``agentica-org/DeepScaleR-Preview-Dataset`` (40,315 problems) from the
Hugging Face Hub unless ``--source`` names a local copy (parquet or JSONL with
``problem`` and ``answer`` columns). The prompt is DeepScaleR's: the problem followed by
its instruction to box the final answer; ``--data.apply_chat_template`` then wraps it
in the model's chat template.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

INSTRUCTION = "Let's think step by step and output the final answer within \\boxed{}."
HUB_NAME = "agentica-org/DeepScaleR-Preview-Dataset"


def to_record(row: dict) -> dict:
    return {"prompt": f"{row['problem'].strip()} {INSTRUCTION}", "answer": str(row["answer"])}


def load_rows(source: str | None):
    from datasets import load_dataset

    if source is None:
        return load_dataset(HUB_NAME, split="train")
    kind = "parquet" if source.endswith(".parquet") else "json"
    return load_dataset(kind, data_files=source, split="train")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="JSONL file to write")
    parser.add_argument("--source", help="local parquet/JSONL instead of the Hub dataset")
    args = parser.parse_args(argv)
    rows = load_rows(args.source)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("w") as f:
        for row in rows:
            f.write(json.dumps(to_record(row)) + "\n")
    print(f"wrote {len(rows)} prompts to {args.output}")


if __name__ == "__main__":
    main()
