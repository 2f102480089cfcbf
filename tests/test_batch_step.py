"""sas_batch_step: the one SAS step of every trainer, against the pure-Python reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from sas_core import SASOptions
from sas_core._core import unit_key
from sas_core.torch_api import sas_batch_step

import padded_reference
from strategies import options_st

VOCAB = 151_936
THINK_END = [151_649]


def _batch(rng: np.random.Generator, b: int, max_len: int, left_pad: bool):
    ids, lps, mask = padded_reference.random_batch(rng, VOCAB, b, max_len, left_pad)
    mask &= torch.from_numpy(rng.random(mask.shape) < 0.9)  # holes, as multi-turn masks
    return ids, lps, mask


@given(
    st.integers(0, 2**32 - 1),
    st.booleans(),
    options_st,
    st.sampled_from(["all", "truncated"]),
    st.sampled_from(["flags", "window"]),
    st.booleans(),
    st.integers(0, 2**20),
    st.integers(0, 63),
    # float32/float64: the core writes the advantages; bfloat16: torch does
    st.sampled_from([torch.float64, torch.float32, torch.bfloat16]),
)
def test_matches_the_reference_with_threshold_shield_and_seed(
    qwen_segmenter, qwen_token_bytes, seed, left_pad, options, shield, cut_by, per_token,
    call, index, dtype,
):  # fmt: skip
    rng = np.random.default_rng(seed)
    b = 8
    ids, lps, mask = _batch(rng, b, 50, left_pad)
    scores = torch.from_numpy(rng.choice([0.0, 0.4, 0.6, 1.0, np.nan], size=b))
    opts = SASOptions(**options, shield=shield, correct_threshold=0.5, nonfinite="keep")
    lengths = mask.sum(dim=1)
    if cut_by == "flags":
        truncated = torch.from_numpy(rng.random(b) < 0.5)
        cut = {"truncated": truncated}
    else:
        window = int(rng.integers(0, ids.shape[1] + 1))
        truncated = lengths >= window
        cut = {"window": window}
    adv = torch.from_numpy(rng.normal(size=(b, ids.shape[1]) if per_token else b)).to(dtype)
    step = sas_batch_step(
        ids, lps, mask, adv, scores, qwen_segmenter, opts, **cut, call=call, index=index
    )

    correct = (torch.nan_to_num(scores, nan=-float("inf")) > 0.5).tolist()
    reference_options = {**options, "seed": unit_key(options["seed"], call, index)}
    keep = padded_reference.keep_mask(
        qwen_token_bytes, ids, lps, mask, correct, vocab_size=VOCAB, think_end_ids=THINK_END,
        **reference_options,
    )  # fmt: skip
    if shield == "truncated":
        spared = ~torch.tensor(correct) & ~truncated
        keep[spared] = True
    assert torch.equal(step.keep, keep)
    if per_token:
        want = torch.where(keep, adv, torch.zeros_like(adv))
    else:
        want = adv[:, None] * (keep & mask).to(dtype)
    assert step.advantages.dtype == adv.dtype
    assert torch.equal(step.advantages, want)

    zeroed = (~keep & mask).sum(dim=1).double()
    per = step.per_rollout
    np.testing.assert_array_equal(
        per["sas/zeroed_token_frac"], (zeroed / lengths.clamp(min=1)).numpy()
    )
    np.testing.assert_array_equal(per["sas/correct"], np.array(correct, dtype=float))
    failed_cut = truncated & ~torch.tensor(correct)
    np.testing.assert_array_equal(per["sas/truncated_failed"], failed_cut.double().numpy())
    assert step.nonfinite_rollouts == 0
    assert step.stats()["sas/correct"] == pytest.approx(float(np.mean(correct)))


def test_a_nonfinite_rollout_keeps_its_advantage_and_is_counted(qwen_segmenter):
    rng = np.random.default_rng(3)
    ids, lps, mask = _batch(rng, 4, 40, False)
    mask[:] = True
    lps[1, 2] = float("nan")
    adv = torch.ones(ids.shape)
    scores = torch.tensor([1.0, 1.0, 0.0, 0.0])
    keep_opts = SASOptions(ratio=1.0, nonfinite="keep")
    step = sas_batch_step(ids, lps, mask, adv, scores, qwen_segmenter, keep_opts)
    assert step.nonfinite_rollouts == 1
    assert torch.equal(step.advantages[1], adv[1])
    assert step.per_rollout["sas/nonfinite_rollouts"].tolist() == [0.0, 1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match=r"^logprobs"):
        sas_batch_step(ids, lps, mask, adv, scores, qwen_segmenter, SASOptions(ratio=1.0))


def test_rows_subset_of_the_statistics(qwen_segmenter):
    ids = torch.zeros((4, 3), dtype=torch.long)
    lps = torch.zeros((4, 3))
    mask = torch.ones((4, 3), dtype=torch.bool)
    step = sas_batch_step(
        ids, lps, mask, torch.ones(4), torch.tensor([1.0, 0.0, 1.0, 1.0]), qwen_segmenter,
        SASOptions(),
    )  # fmt: skip
    assert step.stats()["sas/correct"] == 0.75
    assert step.stats(np.array([True, True, False, False]))["sas/correct"] == 0.5


def test_bad_input_is_named(qwen_segmenter):
    ids = torch.zeros((2, 3), dtype=torch.long)
    lps = torch.zeros((2, 3))
    mask = torch.ones((2, 3), dtype=torch.bool)
    adv = torch.ones((2, 3))
    scores = torch.tensor([1.0, 0.0])
    opts = SASOptions()

    def call(*args, **kwargs):
        base = [ids, lps, mask, adv, scores, qwen_segmenter, opts]
        for i, a in enumerate(args):
            if a is not None:
                base[i] = a
        return sas_batch_step(*base, **kwargs)

    with pytest.raises(TypeError, match=r"^options: must be a SASOptions"):
        call(None, None, None, None, None, None, {"ratio": 0.3})
    with pytest.raises(ValueError, match=r"^advantages: must be a tensor of shape"):
        call(None, None, None, torch.ones((2, 4)))
    with pytest.raises(
        ValueError, match=r"^scores: expected one verifier score per rollout \(2\), got 3"
    ):
        call(None, None, None, None, torch.ones(3))
    with pytest.raises(ValueError, match=r"^truncated, window: "):
        call(truncated=torch.zeros(2, dtype=torch.bool), window=3)
    with pytest.raises(ValueError, match=r"^shield: 'truncated' needs"):
        call(None, None, None, None, None, None, SASOptions(shield="truncated"))
    with pytest.raises(ValueError, match=r"^window: must be a length"):
        call(window=-1)
    with pytest.raises(ValueError, match=r"^truncated: must have shape \(2,\)"):
        call(truncated=torch.zeros(3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"^logprobs, response_ids: shapes differ"):
        call(None, lps[:, :2])
