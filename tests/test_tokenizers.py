"""StepSegmenter.from_tokenizer on every supported tokenizer kind, and segment_offsets."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import sas_core
from sas_core import reference
from sas_core.token_bytes import tokenizer_token_bytes

import tokenizer_factories as tf

TEXTS = [*dict.fromkeys(tf.CORPUS), "no delimiter", "", "\n\n\nleading", "trailing\n\n"]


def _steps_of_bytes(data: bytes) -> list[bytes]:
    return [p for p in re.split(rb"(?<=\n\n)(?=[^\n])", data) if p]


def _encode(tok, text):
    """Token ids of ``text`` with each kind's own encoder, no special tokens added."""
    if hasattr(tok, "encode_ordinary"):  # tiktoken
        return tok.encode(text, allowed_special="all")
    if hasattr(tok, "encode_as_ids"):  # sentencepiece
        return tok.encode_as_ids(text)
    if hasattr(tok, "get_added_tokens_decoder"):  # tokenizers.Tokenizer
        return tok.encode(text, add_special_tokens=False).ids
    return tok(text, add_special_tokens=False)["input_ids"]


def _tokenizers(tmp_path, qwen):
    return {
        "tiktoken-qwen2": qwen,
        "tokenizers-byte-level": tf.byte_level_bpe(),
        "transformers-fast-byte-level": tf.transformers_fast_byte_level(),
        "transformers-fast-sentencepiece": tf.transformers_fast_sentencepiece(tmp_path),
        "transformers-slow-sentencepiece": tf.transformers_slow_sentencepiece(tmp_path),
        "sentencepiece": tf.sentencepiece_processor(),
    }


# Byte-level pre-tokenizers never merge a newline run with the text after it, so their
# token boundaries fall on every step boundary and steps must equal the text's split.
# Sentencepiece may learn pieces across a delimiter (".\n\n🙂"): such a token stays in
# the step its first byte belongs to, which the reference checks instead.
ALIGNED = {"tiktoken-qwen2", "tokenizers-byte-level", "transformers-fast-byte-level"}


def test_every_kind_segments_like_its_text(tmp_path, qwen):
    for name, tok in _tokenizers(tmp_path, qwen).items():
        table = tokenizer_token_bytes(tok)
        seg = sas_core.StepSegmenter.from_tokenizer(tok)
        for text in TEXTS:
            ids = _encode(tok, text)
            data = b"".join(table[i] for i in ids)
            # The byte table reproduces the text (sentencepiece adds its prefix space).
            assert data.decode("utf-8").strip(" ") == text.strip(" "), name
            steps = seg.segment(np.asarray(ids, dtype=np.int64), [0, len(ids)]).tolist()
            assert steps == reference.segment(table, ids, [0, len(ids)]), (name, text)
            if name in ALIGNED:
                n = max(steps, default=-1) + 1
                pieces = [
                    b"".join(table[i] for i, s in zip(ids, steps) if s == j) for j in range(n)
                ]
                assert pieces == _steps_of_bytes(data), (name, text)


def test_special_tokens_map_to_their_text(tmp_path, qwen):
    for name, tok in _tokenizers(tmp_path, qwen).items():
        seg = sas_core.StepSegmenter.from_tokenizer(tok, think_end="</think>")
        assert len(seg.think_end_ids) == 1, name
        assert seg.token_bytes[seg.think_end_ids[0]] == b"</think>"


def test_unknown_think_end_is_rejected(qwen):
    with pytest.raises(ValueError, match="think_end"):
        sas_core.StepSegmenter.from_tokenizer(qwen, think_end="<not a token>")


def test_unsupported_tokenizer_is_rejected():
    with pytest.raises(TypeError, match="tok"):
        sas_core.StepSegmenter.from_tokenizer(object())


def test_qwen_vocabulary_size_and_think_end(qwen_segmenter, qwen):
    assert len(qwen_segmenter.token_bytes) == 151_665
    assert qwen_segmenter.vocab_size == 151_936
    assert qwen_segmenter.think_end_ids == (qwen.encode("</think>", allowed_special="all")[0],)


text_st = st.lists(
    st.sampled_from(
        [
            "Let",
            " me",
            " think",
            ".",
            "\n",
            "\n\n",
            "\r\n",
            " ",
            "x²",
            "🙂",
            "</think>",
            "7",
            "\t",
            "é",
        ]
    ),
    max_size=40,
).map("".join)


@given(st.lists(text_st, min_size=1, max_size=4))
def test_offsets_agree_with_ids(byte_level_fast, texts):
    """segment_offsets on (text, offset mapping) equals segment on the ids."""
    enc = byte_level_fast(texts, add_special_tokens=False, return_offsets_mapping=True)
    seg = sas_core.StepSegmenter.from_tokenizer(byte_level_fast, think_end="</think>")
    ids = [i for row in enc["input_ids"] for i in row]
    cu = np.concatenate([[0], np.cumsum([len(r) for r in enc["input_ids"]])])
    from_ids = seg.segment(np.asarray(ids, dtype=np.int64), cu)
    from_text = sas_core.segment_offsets(texts, enc["offset_mapping"], think_end="</think>")
    assert np.concatenate([np.zeros(0, np.int32), *from_text]).tolist() == from_ids.tolist()


@pytest.fixture(scope="module")
def byte_level_fast():
    return tf.transformers_fast_byte_level()


def test_segment_offsets_rejects_bad_input():
    with pytest.raises(ValueError, match="offsets"):
        sas_core.segment_offsets(["ab"], [[(0, 1)], [(0, 1)]])
    with pytest.raises(ValueError, match="offsets"):
        sas_core.segment_offsets(["ab"], [[(0, 3)]])
    with pytest.raises(TypeError, match="texts"):
        sas_core.segment_offsets("ab", [[(0, 1)]])
