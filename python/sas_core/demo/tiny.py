"""A character-level tokenizer and a tiny Qwen2-architecture model, built locally."""

from __future__ import annotations

import torch

ALPHABET = "0123456789+=\\{}abdeinostwx,? \nABCDEFGHIJKLMN"
SPECIAL = ["<pad>", "<eos>"]


def build_tokenizer():
    """A ``PreTrainedTokenizerFast`` with one token per character (no downloads)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate([*SPECIAL, *ALPHABET])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("[\\s\\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>")
    fast.padding_side = "left"
    return fast


def build_model(tokenizer, *, hidden: int = 128, layers: int = 2, seed: int = 0):
    """A randomly initialised Qwen2 (DeepScaleR's architecture family) for the task."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    return Qwen2ForCausalLM(config)
