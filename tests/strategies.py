"""Hypothesis strategies for packed batches, biased towards newline edge cases."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

# Tokens that stress the delimiter rules: lone and doubled newlines, CRLF, delimiters
# at either end and inside a token, and ordinary text.
ADVERSARIAL_TOKENS = [
    b"",
    b"\n",
    b"\n\n",
    b"\n\n\n",
    b".\n\n",
    b"\n\nThe",
    b"\r\n",
    b"\r\n\r\n",
    b"a\n\nb",
    b"a\n\nb\n\nc",
    b" \n",
    b"\n ",
    b"x\n",
    b"\ny",
    b"word",
    b" the",
    b"\xe2\x80\x94",
    b"</think>",
]

token_bytes_st = st.one_of(
    st.sampled_from(ADVERSARIAL_TOKENS),
    st.binary(max_size=6).map(lambda b: b.replace(b"\x00", b"\n")),
    st.lists(st.sampled_from([b"\n", b"a", b"\r", b" "]), max_size=6).map(b"".join),
)


@st.composite
def vocab_and_batch(draw, max_rollouts=6, max_len=40):
    """(token_bytes, token_ids, cu_seqlens) with ids drawn from the vocabulary."""
    vocab = draw(st.lists(token_bytes_st, min_size=1, max_size=24))
    lengths = draw(st.lists(st.integers(0, max_len), min_size=0, max_size=max_rollouts))
    ids = draw(
        st.lists(st.integers(0, len(vocab) - 1), min_size=sum(lengths), max_size=sum(lengths))
    )
    cu = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return vocab, np.asarray(ids, dtype=np.int64), cu


logprob_st = st.one_of(
    st.sampled_from([0.0, -0.0, -1.0, -0.5, -2.0]),  # ties
    st.floats(-20.0, 0.0, allow_nan=False, allow_infinity=False),
)


@st.composite
def steps_batch(draw, max_rollouts=6, max_len=30):
    """(step_ids, logprobs, cu_seqlens, correct) shaped like segmenter output."""
    lengths = draw(st.lists(st.integers(0, max_len), min_size=0, max_size=max_rollouts))
    step_ids, logprobs = [], []
    for n in lengths:
        # Non-decreasing step ids starting at 0, then an optional tail of -1.
        steps, s = [], 0
        cut = draw(st.integers(0, n))
        for i in range(n):
            if i >= cut:
                steps.append(-1)
                continue
            if i and draw(st.booleans()):
                s += 1
            steps.append(s)
        step_ids += steps
        logprobs += draw(st.lists(logprob_st, min_size=n, max_size=n))
    cu = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    correct = draw(st.lists(st.booleans(), min_size=len(lengths), max_size=len(lengths)))
    return (
        np.asarray(step_ids, dtype=np.int32),
        np.asarray(logprobs, dtype=np.float64),
        cu,
        np.asarray(correct, dtype=bool),
    )


options_st = st.fixed_dictionaries(
    {
        "ratio": st.one_of(st.sampled_from([0.0, 0.3, 0.5, 1.0]), st.floats(0.0, 1.0)),
        "mode": st.sampled_from(["both", "correct", "failed"]),
        "selection": st.sampled_from(["confidence", "random"]),
        "granularity": st.sampled_from(["step", "token"]),
        "seed": st.integers(0, 2**64 - 1),
    }
)
