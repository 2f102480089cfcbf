"""Tiny tokenizers of every supported kind, trained locally (nothing is downloaded)."""

from __future__ import annotations

import io

CORPUS = [
    "Let me think about this.\n\nFirst, 3 + 4 = 7.\n\nWait, let me double-check.\n\n\n"
    "So the answer is \\boxed{7}.",
    "Équation : x² = 4 ⇒ x = ±2.\n\n🙂 done\r\n\r\nok\n \nend",
    "1. item\n\n2. item\n```\ncode\n\n\n```\nThe end.</think>\n\nAnswer.",
] * 30


def byte_level_bpe():
    """A GPT-2/Qwen2-style byte-level BPE ``tokenizers.Tokenizer``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "</think>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    return tok


def sentencepiece_model() -> bytes:
    """A Llama-style sentencepiece BPE model with byte fallback, as serialized proto."""
    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS),
        model_writer=buf,
        vocab_size=400,
        model_type="bpe",
        byte_fallback=True,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        user_defined_symbols=["</think>"],
        character_coverage=1.0,
        hard_vocab_limit=False,
        minloglevel=3,
    )
    return buf.getvalue()


def transformers_fast_byte_level():
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=byte_level_bpe())


def transformers_fast_sentencepiece(tmp_path):
    """A Llama tokenizer (fast: Metaspace + byte fallback) from the sentencepiece model."""
    from transformers import LlamaTokenizer
    from transformers.tokenization_utils_sentencepiece import SentencePieceExtractor

    path = tmp_path / "sp.model"
    path.write_bytes(sentencepiece_model())
    vocab, _, merges = SentencePieceExtractor(str(path)).extract()
    return LlamaTokenizer(vocab=vocab, merges=merges)


def transformers_slow_sentencepiece(tmp_path):
    """A slow (sentencepiece-backed) transformers tokenizer."""
    from transformers import BertGenerationTokenizer

    path = tmp_path / "sp_slow.model"
    path.write_bytes(sentencepiece_model())
    return BertGenerationTokenizer(vocab_file=str(path))


def sentencepiece_processor():
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_proto=sentencepiece_model())
