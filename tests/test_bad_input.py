"""Every bad input raises ValueError or TypeError naming the argument."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import sas_core

VOCAB = [b"a", b"\n", b".\n\n", b" b"]


@pytest.fixture
def seg():
    return sas_core.StepSegmenter(VOCAB, vocab_size=6)


GOOD = {
    "step_ids": np.array([0, 0, 1, 0], dtype=np.int32),
    "logprobs": np.array([-1.0, -2.0, -0.5, -1.0]),
    "cu_seqlens": np.array([0, 3, 4]),
    "correct": np.array([True, False]),
}


def _mask(**override):
    args = {**GOOD, **override}
    kw = {k: args.pop(k) for k in list(args) if k not in GOOD}
    return sas_core.select_steps(
        args["step_ids"], args["logprobs"], args["cu_seqlens"], args["correct"], **kw
    ).keep


@pytest.mark.parametrize(
    ("override", "exc", "arg"),
    [
        ({"logprobs": np.array([-1.0, np.nan, -0.5, -1.0])}, ValueError, "logprobs"),
        ({"logprobs": np.array([-1.0, -np.inf, -0.5, -1.0])}, ValueError, "logprobs"),
        ({"logprobs": np.array([-1.0, np.inf, -0.5, -1.0], np.float32)}, ValueError, "logprobs"),
        ({"logprobs": np.array([-1.0, -2.0, -0.5])}, ValueError, "logprobs"),
        ({"logprobs": np.array([1, 2, 3, 4])}, TypeError, "logprobs"),
        ({"step_ids": np.array([0, 0, 1], dtype=np.int32)}, ValueError, "step_ids"),
        ({"step_ids": np.array([0, -2, 1, 0], dtype=np.int32)}, ValueError, "step_ids"),
        ({"step_ids": np.array([0, 0, 3, 0], dtype=np.int32)}, ValueError, "step_ids"),
        ({"step_ids": np.array([0.0, 0, 1, 0])}, TypeError, "step_ids"),
        ({"step_ids": np.array([[0, 0], [1, 0]])}, ValueError, "step_ids"),
        ({"cu_seqlens": np.array([1, 3, 4])}, ValueError, "cu_seqlens"),
        ({"cu_seqlens": np.array([0, 3, 2, 4])}, ValueError, "cu_seqlens"),
        (
            {"cu_seqlens": np.array([0, 3, 5])},
            ValueError,
            "step_ids, cu_seqlens: has 4 entries but cu_seqlens",
        ),
        ({"cu_seqlens": np.array([], dtype=np.int64)}, ValueError, "cu_seqlens"),
        ({"cu_seqlens": np.array([0.0, 3.0, 4.0])}, TypeError, "cu_seqlens"),
        ({"correct": np.array([True])}, ValueError, "correct"),
        ({"correct": np.array([0.5, 1.0])}, TypeError, "correct"),
        ({"ratio": 1.5}, ValueError, "ratio"),
        ({"ratio": -0.1}, ValueError, "ratio"),
        ({"ratio": float("nan")}, ValueError, "ratio"),
        ({"ratio": "0.3"}, TypeError, "ratio"),
        ({"mode": "all"}, ValueError, "mode"),
        ({"selection": "entropy"}, ValueError, "selection"),
        ({"granularity": "sentence"}, ValueError, "granularity"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 2**64}, ValueError, "seed"),
        ({"seed": 1.5}, TypeError, "seed"),
        ({"num_threads": 0}, ValueError, "num_threads"),
    ],
)
def test_keep_mask_rejects(override, exc, arg):
    with pytest.raises(exc, match=f"^{re.escape(arg)}"):
        _mask(**override)


def test_good_inputs_pass():
    assert _mask().shape == (4,)


@pytest.mark.parametrize(
    ("ids", "cu", "arg"),
    [
        ([0, 1, 6], [0, 3], "token_ids"),  # at vocab_size
        ([0, -1, 2], [0, 3], "token_ids"),  # negative
        ([0, 1, 2**40], [0, 3], "token_ids"),  # far out
        ([0, 1, 2], [0, 2], "token_ids, cu_seqlens: has 3 entries but cu_seqlens"),  # ends short
        ([0, 1, 2], [0, 2, 1, 3], "cu_seqlens"),  # decreasing
        ([0, 1, 2], [1, 3], "cu_seqlens"),  # does not start at 0
    ],
)
def test_segment_rejects(seg, ids, cu, arg):
    with pytest.raises(ValueError, match=f"^{re.escape(arg)}"):
        seg.segment(np.array(ids), np.array(cu))


def test_segment_accepts_padding_ids(seg):
    assert seg.segment([0, 4, 5, 2], [0, 4]).tolist() == [0, 0, 0, 0]


def test_segment_rejects_float_ids(seg):
    with pytest.raises(TypeError, match=r"^token_ids"):
        seg.segment(np.array([0.0, 1.0]), [0, 2])


def test_segmenter_construction_rejects():
    with pytest.raises(TypeError, match=r"^token_bytes\[1\]"):
        sas_core.StepSegmenter([b"a", "b"])
    with pytest.raises(TypeError, match=r"^token_bytes"):
        sas_core.StepSegmenter(b"abc")
    with pytest.raises(ValueError, match=r"^vocab_size"):
        sas_core.StepSegmenter([b"a", b"b"], vocab_size=1)
    with pytest.raises(ValueError, match=r"^think_end_ids"):
        sas_core.StepSegmenter([b"a"], think_end_ids=[3])


@pytest.mark.parametrize(
    ("rewards", "group", "exc", "arg"),
    [
        ([1.0, 0.0, 1.0], 2, ValueError, "rewards, group_size"),
        ([1.0, 0.0], 1, ValueError, "group_size"),
        ([1.0, 0.0], 0, ValueError, "group_size"),
        ([1.0, float("nan")], 2, ValueError, "rewards"),
        ([1.0, 0.0], 2.0, TypeError, "group_size"),
        (["a", "b"], 2, TypeError, "rewards"),
    ],
)
def test_grpo_rejects(rewards, group, exc, arg):
    with pytest.raises(exc, match=f"^{re.escape(arg)}"):
        sas_core.grpo_advantages(np.array(rewards), group)


def test_sas_advantages_rejects(seg):
    ids = torch.zeros((2, 3), dtype=torch.long)
    lps = torch.zeros((2, 3))
    mask = torch.ones((2, 3), dtype=torch.bool)
    rewards = torch.tensor([1.0, 0.0])
    call = sas_core.sas_advantages
    with pytest.raises(ValueError, match=r"^logprobs"):
        call(ids, torch.zeros((2, 4)), mask, rewards, 2, seg)
    with pytest.raises(ValueError, match=r"^action_mask"):
        call(ids, lps, mask[:, :2], rewards, 2, seg)
    with pytest.raises(ValueError, match=r"^rewards"):
        call(ids, lps, mask, rewards[:1], 2, seg)
    with pytest.raises(ValueError, match=r"^rewards, group_size"):
        call(ids, lps, mask, rewards, 3, seg)
    with pytest.raises(TypeError, match=r"^logprobs"):
        call(ids, lps.long(), mask, rewards, 2, seg)
    with pytest.raises(TypeError, match=r"^response_ids"):
        call(ids.float(), lps, mask, rewards, 2, seg)
    with pytest.raises(ValueError, match=r"^response_ids: row 0"):
        call(ids + 7, lps, mask, rewards, 2, seg)
    with pytest.raises(ValueError, match=r"^logprobs"):
        call(
            ids,
            lps.masked_fill(torch.eye(2, 3, dtype=torch.bool), float("nan")),
            mask,
            rewards,
            2,
            seg,
        )
    # NaN where the mask is unset is padding, not a response token: accepted.
    pad = mask.clone()
    pad[0, 2] = False
    ok, _ = call(ids, lps.masked_fill(~pad, float("nan")), pad, rewards, 2, seg)
    assert torch.isfinite(ok).all()
    with pytest.raises(ValueError, match=r"^ratio"):
        call(ids, lps, mask, rewards, 2, seg, ratio=2.0)


@pytest.mark.parametrize(
    ("ids", "lps", "cu", "correct", "arg"),
    [
        ([0, 1, 6], [0.0, 0.0, 0.0], [0, 3], [True], "token_ids"),
        ([0, 1, 2], [0.0, np.nan, 0.0], [0, 3], [True], "logprobs"),
        ([0, 1, 2], [0.0, 0.0], [0, 3], [True], "logprobs"),
        (
            [0, 1, 2],
            [0.0, 0.0, 0.0],
            [0, 4],
            [True],
            "token_ids, cu_seqlens: has 3 entries but cu_seqlens",
        ),
        ([0, 1, 2], [0.0, 0.0, 0.0], [0, 2, 1, 3], [True, True, True], "cu_seqlens"),
        ([0, 1, 2], [0.0, 0.0, 0.0], [0, 3], [True, False], "correct"),
    ],
)
def test_fused_select_steps_rejects(seg, ids, lps, cu, correct, arg):
    with pytest.raises(ValueError, match=f"^{re.escape(arg)}"):
        seg.select_steps(np.array(ids), np.array(lps), np.array(cu), np.array(correct))


def test_fused_select_steps_rejects_bad_options(seg):
    args = (np.array([0, 2]), np.array([-1.0, -2.0]), np.array([0, 2]), np.array([True]))
    with pytest.raises(ValueError, match=r"^ratio"):
        seg.select_steps(*args, ratio=-0.5)
    with pytest.raises(ValueError, match=r"^mode"):
        seg.select_steps(*args, mode="some")
    assert seg.select_steps(*args).keep.shape == (2,)
