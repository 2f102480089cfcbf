"""Rust segmentation against the pure-Python reference."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import sas_core
from sas_core import reference

from strategies import ADVERSARIAL_TOKENS, vocab_and_batch


@given(vocab_and_batch())
def test_random_vocabularies_match_reference(case):
    vocab, ids, cu = case
    seg = sas_core.StepSegmenter(vocab)
    expected = reference.segment(vocab, ids.tolist(), cu.tolist())
    assert seg.segment(ids, cu).tolist() == expected
    assert seg.segment(ids.astype(np.int32), cu).tolist() == expected


@given(vocab_and_batch(), st.data())
def test_think_end_matches_reference(case, data):
    vocab, ids, cu = case
    think = data.draw(st.lists(st.integers(0, len(vocab) - 1), max_size=2))
    seg = sas_core.StepSegmenter(vocab, think_end_ids=think)
    expected = reference.segment(vocab, ids.tolist(), cu.tolist(), think_end_ids=think)
    steps, counts = seg.segment_with_counts(ids, cu)
    assert steps.tolist() == expected
    for b in range(cu.size - 1):
        in_rollout = expected[cu[b] : cu[b + 1]]
        assert counts[b] == max(in_rollout, default=-1) + 1


@given(vocab_and_batch(), st.integers(1, 5))
def test_padding_ids_segment_as_empty_tokens(case, extra):
    vocab, ids, cu = case
    vocab_size = len(vocab) + extra
    # Replace every third id by a padding id past the byte table.
    ids = ids.copy()
    ids[::3] = len(vocab) + (np.arange(ids[::3].size) % extra)
    seg = sas_core.StepSegmenter(vocab, vocab_size=vocab_size)
    expected = reference.segment(vocab, ids.tolist(), cu.tolist(), vocab_size=vocab_size)
    assert seg.segment(ids, cu).tolist() == expected


def test_adversarial_tokens_by_hand():
    vocab = ADVERSARIAL_TOKENS
    idx = {b: i for i, b in enumerate(vocab)}

    def steps(*tokens):
        ids = [idx[t] for t in tokens]
        return sas_core.StepSegmenter(vocab).segment(ids, [0, len(ids)]).tolist()

    # A delimiter belongs to the step it ends; text after it starts the next step.
    assert steps(b"word", b".\n\n", b" the") == [0, 0, 1]
    assert steps(b"word", b"\n\nThe") == [0, 1]
    # Runs are found across token boundaries.
    assert steps(b"word", b"\n", b"\n", b"word") == [0, 0, 0, 1]
    assert steps(b"x\n", b"\ny") == [0, 1]
    # CRLF pairs are not two consecutive newlines.
    assert steps(b"word", b"\r\n\r\n", b"word") == [0, 0, 0]
    # Leading and trailing delimiters.
    assert steps(b"\n\n", b"word", b"\n\n\n") == [0, 1, 1]
    # Several delimiters inside one token: the token is anchored at its first byte (raw
    # step 0), the next token after both delimiters (raw step 2), renumbered to 1.
    assert steps(b"a\n\nb\n\nc", b" the", b"\n\nThe") == [0, 1, 2]
    # Empty tokens take the step of the byte before them.
    assert steps(b"", b"word", b".\n\n", b"", b" the") == [0, 0, 0, 0, 1]


def test_empty_batch_and_empty_rollouts(qwen_segmenter):
    assert qwen_segmenter.segment([], [0]).tolist() == []
    steps, counts = qwen_segmenter.segment_with_counts([], [0, 0, 0])
    assert steps.size == 0 and counts.tolist() == [0, 0]


def _real_texts(qwen):
    """Reasoning-style texts with every newline pattern we care about."""
    return [
        "Let me compute 3 + 4.\n\nFirst, 3 + 4 = 7.\n\nWait, let me double-check: 7.\n\n"
        "So the answer is \\boxed{7}.",
        "\n\nStarting with a blank line.\n\n\n\nFour newlines.\nOne newline.\r\n\r\nCRLF.\n\n",
        "Équation : x² = 4 ⇒ x = ±2.\n\n🙂 Émoji step.\n\n  Indented step.\n \nspace-separated",
        "Okay.\n\n\n\n\n\nMany.\n\n1. item\n\n2. item\n\n```python\nx = 1\n\n\ny = 2\n```\n\nEnd",
        "No delimiter at all, just one line.",
        "",
    ]


def _split_steps(data: bytes) -> list[bytes]:
    """Blank-line steps of a text: each ends with the delimiter that ends it."""
    return [p for p in re.split(rb"(?<=\n\n)(?=[^\n])", data) if p]


def _check_steps_match_text(segmenter, enc, text):
    """Token steps agree with splitting the decoded text on runs of 2+ newlines.

    A token belongs to the text step that holds its first non-delimiter byte. When
    every split point falls between tokens (the usual case for Qwen2, whose
    pre-tokenizer keeps newline runs apart from words), the tokens of each step decode
    to exactly that step's text.
    """
    ids = enc.encode(text, allowed_special="all")
    steps = segmenter.segment(np.asarray(ids, dtype=np.int64), [0, len(ids)]).tolist()
    toks = [enc.decode_single_token_bytes(t) for t in ids]
    data = b"".join(toks)
    assert data == text.encode("utf-8")

    pieces = _split_steps(data)
    piece_ends = np.cumsum([len(p) for p in pieces])
    delimiter = set()
    for m in re.finditer(rb"\n{2,}", data):
        delimiter.update(range(m.start(), m.end()))
    token_starts = np.concatenate([[0], np.cumsum([len(t) for t in toks])])
    expected, seen = [], {}
    for start, tok in zip(token_starts, toks):
        anchor = next((p for p in range(start, start + len(tok)) if p not in delimiter), start)
        piece = int(np.searchsorted(piece_ends, anchor, side="right"))
        expected.append(seen.setdefault(piece, len(seen)))
    assert steps == expected

    if set(piece_ends[:-1].tolist()) <= set(token_starts.tolist()):
        n = max(steps, default=-1) + 1
        by_step = [b"".join(t for t, s in zip(toks, steps) if s == j) for j in range(n)]
        assert by_step == pieces
    return set(piece_ends[:-1].tolist()) <= set(token_starts.tolist())


def test_real_text_steps_match_text_split(qwen, qwen_segmenter):
    aligned = [_check_steps_match_text(qwen_segmenter, qwen, t) for t in _real_texts(qwen)]
    assert all(aligned)  # these texts exercise the strong form


text_st = st.lists(
    st.sampled_from(
        [
            "The",
            " answer",
            " is",
            " 42",
            ".",
            "\n",
            "\n\n",
            "\n\n\n",
            "\r\n",
            " ",
            "  ",
            "x²",
            "🙂",
            "\\boxed{7}",
            ",",
            "\t",
            "Wait",
            "1.",
            "$$",
            "é",
        ]
    ),
    max_size=60,
).map("".join)


@given(text_st)
def test_random_text_steps_match_text_split(qwen, qwen_segmenter, text):
    _check_steps_match_text(qwen_segmenter, qwen, text)


@given(st.lists(st.integers(0, 151_935), max_size=200), st.lists(st.integers(0, 200), max_size=5))
def test_real_vocabulary_random_ids_match_reference(qwen_segmenter, qwen_token_bytes, ids, cuts):
    cu = sorted({0, len(ids), *[min(c, len(ids)) for c in cuts]})
    expected = reference.segment(
        qwen_token_bytes, ids, cu, vocab_size=151_936, think_end_ids=[151_649]
    )
    assert qwen_segmenter.segment(np.asarray(ids), cu).tolist() == expected


def test_think_end_on_real_vocabulary(qwen, qwen_segmenter):
    text = "Step one.\n\nStep two.\n\n</think>\n\nThe answer is \\boxed{2}.\n\nDone."
    ids = qwen.encode(text, allowed_special="all")
    steps = qwen_segmenter.segment(ids, [0, len(ids)]).tolist()
    k = ids.index(151_649)
    assert steps[k:] == [-1] * (len(ids) - k)
    assert max(steps[:k]) == 1 and min(steps[:k]) == 0


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
def test_thread_count_does_not_change_steps(qwen_segmenter, threads):
    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 3000, size=64)
    cu = np.concatenate([[0], np.cumsum(lengths)])
    ids = rng.integers(0, 151_936, size=int(cu[-1]))
    one = qwen_segmenter.segment(ids, cu, num_threads=1)
    assert np.array_equal(one, qwen_segmenter.segment(ids, cu, num_threads=threads))


# Text pieces of one response: newlines, ASCII, two-byte characters, empty tokens, and the
# reasoning-end text (no other piece holds "<", so the text's first "</think>" is a piece).
piece_st = st.sampled_from(["\n", "\n\n", "a", "é\n", "\nb", "", "xy\n\n\nz", "</think>"])


@given(st.lists(st.lists(piece_st, max_size=30), max_size=4), st.booleans())
def test_segment_offsets_match_reference_on_contiguous_spans(responses, think):
    """segment_offsets (the core's character rule) equals the reference's byte rule when
    the spans tile the text: each span is one token whose bytes are its characters'."""
    texts, offsets, want = [], [], []
    for pieces in responses:
        bounds = np.cumsum([0, *map(len, pieces)])
        texts.append("".join(pieces))
        offsets.append(list(zip(bounds[:-1].tolist(), bounds[1:].tolist())))
        end = pieces.index("</think>") if think and "</think>" in pieces else None
        want.append(reference.segment_tokens([p.encode() for p in pieces], end))
    got = sas_core.segment_offsets(texts, offsets, think_end="</think>" if think else None)
    assert [g.tolist() for g in got] == want


@given(vocab_and_batch(), st.data(), st.sampled_from(["blank_line", "line"]))
def test_delimiters_and_boundary_tokens_match_reference(case, data, delimiter):
    """``delimiter="line"`` and boundary tokens (with reasoning ends and turns) against
    the reference, on adversarial vocabularies."""
    vocab, ids, cu = case
    ends = data.draw(st.lists(st.integers(0, len(vocab) - 1), max_size=3))
    think = data.draw(st.lists(st.integers(0, len(vocab) - 1), max_size=1))
    seg = sas_core.StepSegmenter(vocab, think_end_ids=think, delimiter=delimiter, boundary_ids=ends)
    want = reference.segment(
        vocab, ids.tolist(), cu.tolist(), think_end_ids=think, delimiter=delimiter,
        boundary_ids=ends,
    )  # fmt: skip
    assert seg.segment(ids, cu).tolist() == want
    mask = np.asarray(data.draw(st.lists(st.booleans(), min_size=ids.size, max_size=ids.size)))
    if ids.size:
        on = np.flatnonzero(mask)
        starts = [k for k, p in enumerate(on) if k and (p != on[k - 1] + 1 or p in cu[1:-1])]
        masked_cu = [int((on < c).sum()) for c in cu]
        want = reference.segment(
            vocab, ids[mask].tolist(), masked_cu, think_end_ids=think, delimiter=delimiter,
            boundary_ids=ends, turn_starts=[k for k in starts if k not in masked_cu],
        )  # fmt: skip
        got = seg.segment(ids, cu, action_mask=mask)
        assert got[mask].tolist() == want and (got[~mask] == -1).all()


def test_line_delimiter_and_boundary_tokens_by_hand():
    vocab = [b"x = 1", b"\n", b"y\nz", b"\r\n", b"<end>", b"w"]
    ids = np.array([0, 1, 2, 3, 5, 4, 5, 1, 5])
    cu = [0, ids.size]
    by_line = sas_core.StepSegmenter(vocab, delimiter="line").segment(ids, cu)
    assert by_line.tolist() == [0, 0, 1, 2, 3, 3, 3, 3, 4]
    ends = sas_core.StepSegmenter(vocab, boundary_ids=[4]).segment(ids, cu)
    assert ends.tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 1]
    with pytest.raises(ValueError, match=r"^delimiter"):
        sas_core.StepSegmenter(vocab, delimiter="paragraph")
    with pytest.raises(ValueError, match=r"^boundary_ids"):
        sas_core.StepSegmenter(vocab, boundary_ids=[6])
