"""sas_advantages: padded torch tensors in, per-token advantages out."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import sas_core
from sas_core import reference

import padded_reference
from strategies import options_st


def _padded_batch(rng, vocab_size, n_prompts, group, max_len, left_pad):
    b = n_prompts * group
    ids, lps, mask = padded_reference.random_batch(rng, vocab_size, b, max_len, left_pad)
    rewards = torch.from_numpy((rng.random(b) < 0.5).astype(np.float32))
    return ids, lps, mask, rewards


def _reference_padded(token_bytes, ids, lps, mask, rewards, group, vocab_size, think, **opt):
    flat_ids, flat_lps, cu = padded_reference.pack(ids, lps, mask)
    steps = reference.segment(
        token_bytes, flat_ids, cu, vocab_size=vocab_size, think_end_ids=think,
        turn_starts=padded_reference.turn_starts(mask),
    )  # fmt: skip
    flat = reference.sas_token_advantages(
        steps, flat_lps, cu, rewards.double().tolist(), group, **opt
    )
    out = torch.zeros(ids.shape, dtype=torch.float64)
    out[mask] = torch.tensor(flat, dtype=torch.float64)
    return out


@given(st.integers(0, 2**32 - 1), st.booleans(), options_st)
def test_matches_reference_on_real_vocabulary(
    qwen_segmenter, qwen_token_bytes, seed, left_pad, options
):
    rng = np.random.default_rng(seed)
    ids, lps, mask, rewards = _padded_batch(rng, 151_936, 2, 4, 60, left_pad)
    adv, stats = sas_core.sas_advantages(ids, lps, mask, rewards, 4, qwen_segmenter, **options)
    want = _reference_padded(
        qwen_token_bytes, ids, lps, mask, rewards, 4, 151_936, [151_649], **options
    )
    assert adv.dtype == lps.dtype and adv.shape == lps.shape
    torch.testing.assert_close(adv.double(), want, rtol=1e-6, atol=1e-6)
    assert 0.0 <= stats["sas/zeroed_token_frac"] <= 1.0


def test_steps_of_real_responses_are_zeroed(qwen, qwen_segmenter):
    texts = [
        "First step.\n\nSecond step.\n\nThird step.\n\nSo \\boxed{1}.",
        "Only one step, no blank line.",
        "A.\n\nB.\n\nC.\n\nD.\n\nE.\n\nF.\n\nG.\n\nH.\n\nI.\n\nJ.",
        "Wrong.\n\nStill wrong.\n\nVery wrong.",
    ]
    enc = [qwen.encode(t) for t in texts]
    a = max(map(len, enc))
    ids = torch.zeros((4, a), dtype=torch.long)
    mask = torch.zeros((4, a), dtype=torch.bool)
    for i, e in enumerate(enc):
        ids[i, : len(e)] = torch.tensor(e)
        mask[i, : len(e)] = True
    lps = torch.where(mask, -torch.rand(4, a, generator=torch.Generator().manual_seed(0)), 0.0)
    rewards = torch.tensor([1.0, 1.0, 1.0, 0.0])
    adv, stats = sas_core.sas_advantages(ids, lps, mask, rewards, 4, qwen_segmenter)
    # Steps per rollout: 4, 1, 10, 3 -> k = 1, 0, 3, 0 at ratio 0.3.
    assert stats["sas/steps"] == pytest.approx((4 + 1 + 10 + 3) / 4)
    assert stats["sas/zeroed_steps"] == pytest.approx((1 + 0 + 3 + 0) / 4)
    # zeroed steps of correct rollouts, 0 for failed ones, averaged over all four
    assert stats["sas/zeroed_steps_correct"] == pytest.approx((1 + 0 + 3) / 4)
    assert stats["sas/zeroed_steps_failed"] == 0.0
    assert stats["sas/correct"] == 0.75
    assert stats["sas/nonfinite_rollouts"] == 0
    # only the sas/ names: no unprefixed aliases in a package never released
    assert all(name.startswith("sas/") for name in stats)
    for gone in ("zeroed_steps_correct", "frac_correct", "no_such_statistic"):
        with pytest.raises(KeyError):
            stats[gone]
    assert (adv[1][mask[1]] != 0).all()  # one step: nothing to zero
    assert (adv[~mask] == 0).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_output_keeps_dtype_and_device(qwen_segmenter, dtype):
    rng = np.random.default_rng(5)
    ids, lps, mask, rewards = _padded_batch(rng, 151_936, 2, 2, 40, False)
    adv, _ = sas_core.sas_advantages(ids, lps.to(dtype), mask.int(), rewards, 2, qwen_segmenter)
    assert adv.dtype == dtype and adv.device == lps.device


def test_correct_override_uses_given_flags(qwen_segmenter):
    rng = np.random.default_rng(9)
    ids, lps, mask, rewards = _padded_batch(rng, 151_936, 1, 4, 80, False)
    flags = torch.tensor([True, False, True, False])
    _a, sa = sas_core.sas_advantages(ids, lps, mask, rewards, 4, qwen_segmenter, correct=flags)
    assert sa["sas/correct"] == 0.5
    # The flags, not the rewards, decide which rollouts get zeros: with mode "correct" and
    # ratio 1 exactly the flagged rollouts lose every step (GRPO advantages all nonzero).
    varied = torch.tensor([1.0, 0.0, 0.5, 0.25])
    for flagged in (flags, ~flags):
        adv, _ = sas_core.sas_advantages(
            ids, lps, mask, varied, 4, qwen_segmenter, correct=flagged, ratio=1.0, mode="correct"
        )
        zeroed_rows = ((adv == 0) | ~mask.bool()).all(dim=1)
        assert torch.equal(zeroed_rows, flagged)
        assert (adv[~flagged][mask[~flagged].bool()] != 0).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA or ROCm device")
def test_gpu_tensors_come_back_on_the_gpu(qwen_segmenter, qwen_token_bytes):
    rng = np.random.default_rng(11)
    ids, lps, mask, rewards = _padded_batch(rng, 151_936, 2, 4, 200, True)
    dev = torch.device("cuda")
    adv, _ = sas_core.sas_advantages(
        ids.to(dev), lps.to(dev).bfloat16(), mask.to(dev), rewards.to(dev), 4, qwen_segmenter
    )
    assert adv.device.type == "cuda" and adv.dtype == torch.bfloat16
    cpu, _ = sas_core.sas_advantages(ids, lps.bfloat16(), mask, rewards, 4, qwen_segmenter)
    torch.testing.assert_close(adv.cpu(), cpu)


@given(st.integers(0, 2**32 - 1), st.booleans(), options_st)
def test_keep_mask_matches_reference_with_holes(
    qwen_segmenter, qwen_token_bytes, seed, left_pad, options
):
    # Holes in the mask (multi-turn: environment tokens between turns) are skipped; the
    # keep mask is the reference's on the masked tokens and True everywhere else.
    rng = np.random.default_rng(seed)
    ids, lps, mask, rewards = _padded_batch(rng, 151_936, 2, 4, 60, left_pad)
    mask &= torch.from_numpy(rng.random(mask.shape) < 0.9)
    correct = rewards > 0.5
    step = sas_core.sas_batch_step(
        ids, lps, mask, torch.ones(ids.shape[0]), correct.float(), qwen_segmenter,
        sas_core.SASOptions(**options), seed=options["seed"],
    )  # fmt: skip
    want = padded_reference.keep_mask(
        qwen_token_bytes,
        ids,
        lps,
        mask,
        correct.tolist(),
        vocab_size=151_936,
        think_end_ids=[151_649],
        **options,
    )
    assert torch.equal(step.keep, want)
    zeroed = (~want).sum(dim=1).double() / mask.sum(dim=1).clamp(min=1)
    np.testing.assert_array_equal(step.per_rollout["sas/zeroed_token_frac"], zeroed.numpy())
    assert step.per_rollout["sas/steps"].shape == (ids.shape[0],)


def test_padded_call_rejects_bad_input(qwen_segmenter):
    ids = torch.zeros((2, 3), dtype=torch.long)
    lps = torch.zeros((2, 3))
    mask = torch.ones((2, 3), dtype=torch.bool)
    rewards = torch.tensor([1.0, 0.0])
    with pytest.raises(ValueError, match=r"^correct: must have shape"):
        sas_core.sas_advantages(ids, lps, mask, rewards, 2, qwen_segmenter, correct=[True])
    with pytest.raises(ValueError, match=r"^logprobs, response_ids: shapes differ"):
        sas_core.sas_advantages(ids, lps[:, :2], mask, rewards, 2, qwen_segmenter)
    with pytest.raises(TypeError, match=r"^logprobs: must be a float tensor"):
        sas_core.sas_advantages(ids, ids, mask, rewards, 2, qwen_segmenter)
    with pytest.raises(ValueError, match=r"^ratio"):
        sas_core.sas_advantages(ids, lps, mask, rewards, 2, qwen_segmenter, ratio=2.0)
    bad = lps.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"^logprobs"):
        sas_core.sas_advantages(ids, bad, mask, rewards, 2, qwen_segmenter)
    # the same checks on numpy arrays
    with pytest.raises(ValueError, match=r"^logprobs, response_ids: shapes differ"):
        sas_core.sas_advantages(ids.numpy(), lps[:, :2].numpy(), mask.numpy(), rewards, 2,
                                qwen_segmenter)  # fmt: skip
    with pytest.raises(ValueError, match=r"^logprobs"):
        sas_core.sas_advantages(ids.numpy(), bad.numpy(), mask.numpy(), rewards, 2, qwen_segmenter)
