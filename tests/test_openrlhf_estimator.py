"""The SAS estimator in OpenRLHF's real ``RemoteExperienceMaker`` on real ``Experience``
batches, against sas_core.reference applied to the same rollouts."""

from __future__ import annotations

import itertools
import warnings

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openrlhf_cpu_shims import require_openrlhf

require_openrlhf()

import openrlhf_helpers as h  # noqa: E402
from openrlhf.trainer.ppo_utils.experience_maker import RemoteExperienceMaker  # noqa: E402
from openrlhf.trainer.ppo_utils.kl_controller import FixedKLController  # noqa: E402
from openrlhf.utils import get_strategy  # noqa: E402

from sas_core.integrations._patching import MARK  # noqa: E402
from sas_core.integrations.openrlhf.estimator import install  # noqa: E402
from sas_core.integrations.openrlhf.launcher import parse_args  # noqa: E402
from sas_core.stats import NAMES as STAT_KEYS  # noqa: E402
from sas_core.token_bytes import tokenizer_token_bytes  # noqa: E402

EXTRA_ROWS = 8  # model embedding rows past the tokenizer (see _model_vocab_rows)


@pytest.fixture(scope="module", autouse=True)
def installed():
    install()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return h.save_pretrained(tmp_path_factory.mktemp("model"), extra_rows=EXTRA_ROWS)


@pytest.fixture(scope="module")
def token_bytes():
    return tokenizer_token_bytes(h.tokenizer())


def _args(*extra: str, model_dir=None):
    argv = ["--rollout.n_samples_per_prompt", str(h.GROUP), *extra]
    if model_dir is not None:
        argv += ["--actor.model_name_or_path", str(model_dir)]
    return parse_args(argv)


def _maker(args, kl_coef: float = 0.0):
    return RemoteExperienceMaker(
        None, None, None, None, FixedKLController(kl_coef), get_strategy(args), h.tokenizer()
    )


def _unpatched(args, experiences, kl_coef: float = 0.0):
    """OpenRLHF's own method, as it was before install()."""
    original = getattr(RemoteExperienceMaker.compute_advantages_and_returns, MARK)
    return original(_maker(args, kl_coef), h.clone(experiences))


def _group_norm_args(sas_argv: list[str]) -> list[str]:
    out = list(sas_argv)
    out[out.index("--algo.advantage.estimator") + 1] = "group_norm"
    return out


def _check_sas(argv, experiences, token_bytes, *, kl_coef=0.0, model_dir=None, calls=1):
    """Runs the patched maker ``calls`` times and compares every call with OpenRLHF's
    group_norm times the reference keep mask."""
    args = _args(*argv, model_dir=model_dir)
    maker = _maker(args, kl_coef)
    rows = len(token_bytes) + (EXTRA_ROWS if model_dir is not None else 0)
    base = _unpatched(_args(*_group_norm_args(argv), model_dir=model_dir), experiences, kl_coef)
    outs = []
    for call in range(calls):
        out = maker.compute_advantages_and_returns(h.clone(experiences))
        want = h.expected_sas(base, args.algo.advantage.sas, token_bytes, rows, call)
        for got, exp_adv, ref in zip(out, want, base, strict=True):
            assert torch.equal(got.advantages, exp_adv)
            assert torch.equal(got.returns, ref.returns)  # SAS touches only advantages
        outs.append(out)
    return args, base, outs


SAS = ["--algo.advantage.estimator", "sas"]


@pytest.mark.parametrize(
    ("mode", "selection", "granularity"),
    list(
        itertools.product(
            ["both", "correct", "failed"], ["confidence", "random"], ["step", "token"]
        )
    ),
)
def test_sas_equals_reference_for_every_option(mode, selection, granularity, token_bytes):
    argv = [
        *SAS,
        "--algo.kl.use_loss",
        "--algo.advantage.sas.mode",
        mode,
        "--algo.advantage.sas.selection",
        selection,
        "--algo.advantage.sas.granularity",
        granularity,
    ]
    _, base, outs = _check_sas(argv, h.make_experiences(1), token_bytes, calls=2)
    zeroed = sum(
        int(((o.advantages == 0) & (b.advantages != 0)).sum()) for o, b in zip(outs[0], base)
    )
    assert zeroed > 0  # the case is not vacuous: SAS zeroed tokens GRPO had not


def test_random_selection_differs_between_training_steps(token_bytes):
    argv = [*SAS, "--algo.kl.use_loss", "--algo.advantage.sas.selection", "random"]
    _, _, (first, second) = _check_sas(
        argv, h.make_experiences(2, n_prompts=4), token_bytes, calls=2
    )
    assert any(not torch.equal(a.advantages, b.advantages) for a, b in zip(first, second))


def test_kl_shaped_rewards_and_rollout_logprobs(token_bytes):
    # KL in the reward (not as a loss): per-token advantages that vary along the
    # response; SAS must keep OpenRLHF's values on kept tokens.
    argv = [
        *SAS,
        "--algo.advantage.sas.logprobs",
        "rollout",
        "--algo.advantage.is_correction_level",
        "token",
    ]
    _, base, _ = _check_sas(argv, h.make_experiences(3, with_kl=True), token_bytes, kl_coef=0.1)
    assert any(len(torch.unique(b.advantages[b.action_mask.bool()])) > h.GROUP for b in base)


def test_model_embedding_rows_beyond_the_tokenizer(model_dir, token_bytes):
    exps = h.make_experiences(4, vocab_rows=len(token_bytes) + EXTRA_ROWS)
    assert max(int(e.sequences.max()) for e in exps) >= len(token_bytes)
    _check_sas([*SAS, "--algo.kl.use_loss"], exps, token_bytes, model_dir=model_dir)


def test_truncated_only_shield(token_bytes):
    argv = [
        *SAS,
        "--algo.kl.use_loss",
        "--algo.advantage.sas.shield",
        "truncated",
        "--algo.advantage.sas.ratio",
        "0.5",
    ]
    exps = h.make_experiences(5, n_prompts=4)
    _, base, (out,) = _check_sas(argv, exps, token_bytes)
    spared = failed_truncated = 0
    for o, b in zip(out, base):
        for r in range(len(o.sequences)):
            if o.info["sas/correct"][r] == 0 and not bool(o.truncated[r]):
                assert torch.equal(o.advantages[r], b.advantages[r])  # untouched
                assert o.info["sas/zeroed_steps_failed"][r] == 0
                spared += 1
            elif o.info["sas/correct"][r] == 0:
                failed_truncated += int(o.info["sas/zeroed_steps_failed"][r] > 0)
    assert spared > 0 and failed_truncated > 0


def test_statistics(token_bytes):
    argv = [*SAS, "--algo.kl.use_loss", "--algo.advantage.sas.ratio", "0.5"]
    exps = h.make_experiences(6, n_prompts=4)
    _, base, (out,) = _check_sas(argv, exps, token_bytes)
    for o, b in zip(out, base):
        assert set(STAT_KEYS) <= set(o.info)
        for key in STAT_KEYS:
            assert o.info[key].shape == (len(o.sequences),)
        mask = o.action_mask.bool()
        newly_zero = mask & (o.advantages == 0) & (b.advantages != 0)
        n_tok = mask.sum(1).clamp(min=1)
        has_adv = (b.advantages != 0).any(1)  # rows where zeroing is visible
        frac = newly_zero.sum(1) / n_tok
        assert torch.allclose(frac[has_adv], o.info["sas/zeroed_token_frac"][has_adv])
        correct = (o.scores > 0.5).float()
        assert torch.equal(o.info["sas/correct"], correct)
        assert torch.equal(o.info["sas/truncated_failed"], (o.truncated & (correct == 0)).float())
        both = o.info["sas/zeroed_steps_correct"] + o.info["sas/zeroed_steps_failed"]
        assert torch.equal(both, torch.floor(o.info["sas/steps"] * 0.5 + 1e-9))
        assert torch.all(o.info["sas/zeroed_steps_correct"][correct == 0] == 0)
        assert torch.all(o.info["sas/zeroed_steps_failed"][correct == 1] == 0)


def test_correctness_comes_from_scores_not_shaped_rewards(token_bytes):
    exps = h.make_experiences(7, n_prompts=4)
    for e in exps:  # rewards carry a penalty that would flip every threshold decision
        e.rewards = e.scores - 0.75
    _check_sas([*SAS, "--algo.kl.use_loss"], exps, token_bytes)


def test_group_norm_is_unchanged_when_sas_is_not_selected():
    for argv in (
        ["--algo.advantage.estimator", "group_norm", "--algo.kl.use_loss"],
        ["--algo.advantage.estimator", "group_norm"],
        ["--algo.advantage.estimator", "rloo"],
    ):
        args = _args(*argv)
        exps = h.make_experiences(8, with_kl=True)
        patched = _maker(args, 0.05).compute_advantages_and_returns(h.clone(exps))
        plain = _unpatched(args, exps, 0.05)
        for p, q in zip(patched, plain, strict=True):
            assert torch.equal(p.advantages, q.advantages)
            assert torch.equal(p.returns, q.returns)
            assert p.info.keys() == q.info.keys()
    # and group_norm is what GRPO says it is: (r - mean) / (std + 1e-9) per prompt
    args = _args("--algo.advantage.estimator", "group_norm", "--algo.kl.use_loss")
    exps = _maker(args).compute_advantages_and_returns(h.make_experiences(9))
    rewards = torch.empty(sum(len(e.index) for e in exps))
    for e in exps:
        rewards[e.index] = e.rewards.float()
    g = rewards.reshape(-1, h.GROUP)
    want = ((g - g.mean(1, keepdim=True)) / (g.std(1, keepdim=True) + 1e-9)).reshape(-1)
    for e in exps:
        for r, i in enumerate(e.index):
            values = e.advantages[r][e.action_mask[r].bool()]
            assert torch.allclose(values, want[i].expand_as(values))


def test_clear_errors():
    exps = h.make_experiences(10, with_rollout_logprobs=False, with_truncated=False)
    args = _args(
        *SAS,
        "--algo.advantage.sas.logprobs",
        "rollout",
        "--algo.advantage.is_correction_level",
        "token",
        "--algo.kl.use_loss",
    )
    with pytest.raises(ValueError, match=r"logprobs: .*is_correction_level"):
        _maker(args).compute_advantages_and_returns(h.clone(exps))
    args = _args(*SAS, "--algo.advantage.sas.shield", "truncated", "--algo.kl.use_loss")
    with pytest.raises(ValueError, match=r"shield: .*truncated"):
        _maker(args).compute_advantages_and_returns(h.clone(exps))
    bad = h.clone(exps)
    bad[0].scores = bad[0].scores[:-1]
    with pytest.raises(ValueError, match="scores: expected one verifier score per rollout"):
        _maker(_args(*SAS, "--algo.kl.use_loss")).compute_advantages_and_returns(bad)
    nan = h.clone(exps)
    nan[0].action_log_probs[0, -1] = float("nan")
    nan[0].action_mask[0, -1] = True
    raising = _args(*SAS, "--algo.kl.use_loss", "--algo.advantage.sas.nonfinite", "raise")
    with pytest.raises(ValueError, match=r"^logprobs: row 0: must be finite"):
        _maker(raising).compute_advantages_and_returns(h.clone(nan))
    # The default keeps the bad rollout's advantage whole, warns once and counts it.
    maker = _maker(_args(*SAS, "--algo.kl.use_loss"))
    with pytest.warns(RuntimeWarning, match="1 rollout\\(s\\) had NaN/inf log-probs"):
        out = maker.compute_advantages_and_returns(h.clone(nan))
    grpo = _args("--algo.advantage.estimator", "group_norm", "--algo.kl.use_loss")
    base = _maker(grpo).compute_advantages_and_returns(h.clone(nan))
    m = nan[0].action_mask[0].bool()
    assert torch.equal(out[0].advantages[0][m], base[0].advantages[0][m])  # GRPO's stands
    assert (base[0].advantages[0][m] != 0).all()  # ... and is not zero (the test can fail)
    assert float(out[0].info["sas/nonfinite_rollouts"][0]) == 1.0
    assert float(out[0].info["sas/nonfinite_rollouts"][1:].sum()) == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per run, not per batch
        maker.compute_advantages_and_returns(h.clone(nan))
    # "sas" without the options object (openrlhf's own CLI cannot produce it)
    args = _args(*SAS)
    del args.algo.advantage.sas
    with pytest.raises(RuntimeError, match="sas-openrlhf-train"):
        _maker(args).compute_advantages_and_returns(h.clone(exps))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    ratio=st.sampled_from(["0", "0.1", "0.3", "0.5", "1"]),
    mode=st.sampled_from(["both", "correct", "failed"]),
    selection=st.sampled_from(["confidence", "random"]),
    granularity=st.sampled_from(["step", "token"]),
    shield=st.sampled_from(["all", "truncated"]),
    micro_batch=st.integers(1, 6),
    threshold=st.sampled_from(["0.5", "-1", "2"]),
)
def test_hypothesis_sas_equals_reference(
    token_bytes, seed, ratio, mode, selection, granularity, shield, micro_batch, threshold
):
    argv = [
        *SAS,
        "--algo.kl.use_loss",
        "--algo.advantage.sas.ratio",
        ratio,
        "--algo.advantage.sas.mode",
        mode,
        "--algo.advantage.sas.selection",
        selection,
        "--algo.advantage.sas.granularity",
        granularity,
        "--algo.advantage.sas.shield",
        shield,
        "--algo.advantage.sas.correct_threshold",
        threshold,
        "--train.seed",
        str(seed),
    ]
    _check_sas(argv, h.make_experiences(seed, micro_batch=micro_batch), token_bytes)
