"""The call a trainer makes: sas_advantages on padded torch tensors, end to end.

Includes packing the padded (B, A) tensors, segmentation, selection, GRPO, and
scattering the advantages back to (B, A): conversion can cost more than the kernel.
"""

from __future__ import annotations

import numpy as np

import sas_core
from sas_core import reference


def _padded(w):
    return w.padded()


def test_sas_advantages_end_to_end(benchmark, segmenter, size, wl):
    ids, lps, mask, rewards = _padded(wl)

    def run():
        return sas_core.sas_advantages(ids, lps, mask, rewards, wl.group_size, segmenter)

    adv, _ = run()
    # Check against the reference on the first group of rollouts.
    g = wl.group_size
    sub = wl.subsample(g)
    steps = reference.segment(
        segmenter.token_bytes,
        sub.token_ids.tolist(),
        sub.cu_seqlens.tolist(),
        vocab_size=segmenter.vocab_size,
        think_end_ids=segmenter.think_end_ids,
    )
    want = reference.sas_token_advantages(
        steps,
        sub.logprobs.astype(np.float64).tolist(),
        sub.cu_seqlens.tolist(),
        sub.rewards.tolist(),
        g,
    )
    np.testing.assert_allclose(adv[:g][mask[:g]].numpy(), want, rtol=1e-6, atol=1e-6)

    benchmark.group = f"e2e-{size}"
    benchmark.extra_info["tokens"] = wl.n_tokens
    benchmark.extra_info["padded_shape"] = list(ids.shape)
    benchmark(run)
