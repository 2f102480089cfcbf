"""What SAS adds to OpenRLHF's advantage step: the real ``RemoteExperienceMaker`` on the
paper's batch (1024 rollouts, about 3,000 response tokens each, micro-batches of 16),
group_norm (GRPO) against sas."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from workload import workload

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the CPU shims
from openrlhf_cpu_shims import require_openrlhf

require_openrlhf()

import openrlhf_helpers as h  # noqa: E402
from openrlhf.trainer.ppo_utils.experience import Experience  # noqa: E402
from openrlhf.trainer.ppo_utils.experience_maker import RemoteExperienceMaker  # noqa: E402
from openrlhf.trainer.ppo_utils.kl_controller import FixedKLController  # noqa: E402
from openrlhf.utils import get_strategy  # noqa: E402

from sas_core._core import unit_key  # noqa: E402
from sas_core.integrations.openrlhf.estimator import install  # noqa: E402
from sas_core.integrations.openrlhf.launcher import parse_args  # noqa: E402
from sas_core.qwen import qwen2_encoding  # noqa: E402

MICRO_BATCH = 16
PROMPT_TOKENS = 128


def _experiences(w) -> list:
    b = w.n_rollouts
    lengths = (w.cu_seqlens[1:] - w.cu_seqlens[:-1]).tolist()
    ids = torch.from_numpy(w.token_ids)
    lps = torch.from_numpy(w.logprobs)
    order = torch.randperm(b, generator=torch.Generator().manual_seed(0)).tolist()
    out = []
    for start in range(0, b, MICRO_BATCH):
        rows = order[start : start + MICRO_BATCH]
        width = PROMPT_TOKENS + max(lengths[r] for r in rows)
        seq = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.zeros((len(rows), width - 1), dtype=torch.bool)
        logp = torch.zeros((len(rows), width - 1))
        for i, r in enumerate(rows):
            lo, n = int(w.cu_seqlens[r]), lengths[r]
            seq[i, PROMPT_TOKENS : PROMPT_TOKENS + n] = ids[lo : lo + n]
            mask[i, PROMPT_TOKENS - 1 : PROMPT_TOKENS - 1 + n] = True
            logp[i, PROMPT_TOKENS - 1 : PROMPT_TOKENS - 1 + n] = lps[lo : lo + n]
        score = torch.from_numpy(w.rewards[rows]).float()
        out.append(
            Experience(
                sequences=seq,
                action_mask=mask,
                action_log_probs=logp,
                kl=torch.zeros_like(logp),
                rewards=score.clone(),
                scores=score,
                truncated=torch.zeros(len(rows), dtype=torch.bool),
                index=rows,
                info={},
            )
        )
    return out


@pytest.fixture(scope="module")
def batch(request):
    w = workload("paper")
    if request.config.getoption("benchmark_disable"):
        w = w.subsample(128)  # an untimed run only checks the result: 16 prompts do
    return _experiences(w)


def _maker(estimator: str) -> RemoteExperienceMaker:
    args = parse_args(
        ["--algo.advantage.estimator", estimator, "--rollout.n_samples_per_prompt", "8",
         "--algo.kl.use_loss"]
    )  # fmt: skip
    return RemoteExperienceMaker(
        None, None, None, None, FixedKLController(0.0), get_strategy(args), qwen2_encoding()
    )


@pytest.mark.parametrize("estimator", ["group_norm", "sas"])
def test_openrlhf_advantage_step(benchmark, batch, estimator):
    install()
    maker = _maker(estimator)

    def restore():  # the method consumes each experience's kl
        for e in batch:
            e.kl = torch.zeros_like(e.action_log_probs)
        return (batch,), {}

    grpo = [
        e.advantages for e in _maker("group_norm").compute_advantages_and_returns(restore()[0][0])
    ]
    out = maker.compute_advantages_and_returns(restore()[0][0])
    if estimator == "sas":  # the first micro-batch against the reference
        options = maker.strategy.args.algo.advantage.sas
        seg = maker._sas_segmenter
        keep = h.reference_keep(
            out[0],
            options,
            list(seg.token_bytes),
            seg.vocab_size,
            unit_key(options.seed, 0, 0),
        )
        assert (~keep).any()
        assert torch.equal(out[0].advantages, torch.where(keep, grpo[0], 0.0))
    benchmark.group = "openrlhf-advantages-paper"
    benchmark.extra_info["tokens"] = int(sum(int(e.action_mask.sum()) for e in batch))
    benchmark.pedantic(maker.compute_advantages_and_returns, setup=restore, rounds=5)
