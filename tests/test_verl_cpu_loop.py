"""verl's own training loop with ``adv_estimator=sas``, end to end on the CPU.

Each run is a real ``python -m verl.trainer.main_ppo`` of 2 steps (legacy and V1
trainers): generation, reward, old log-probs, advantage, actor update and weight sync,
on the demo's warmed-up policy, whose rollouts hold several blank-line steps. The CPU
pieces verl lacks come from ``tests/verl_cpu/verl_cpu_harness.py`` through verl's public
hooks; sas-core comes in through its ``verl.plugins`` entry point, as for a user.

The batch the actor's update receives is captured inside the training worker, and its
advantages are checked against ``sas_core.reference`` recomputed from that batch's
responses, log-probs, scores and uids. Runs in the verl venv (``make test-verl``).
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import pytest

verl = pytest.importorskip("verl")
torch = pytest.importorskip("torch")

from sas_core import reference  # noqa: E402
from sas_core.token_bytes import tokenizer_token_bytes  # noqa: E402

import padded_reference  # noqa: E402

sys.path.insert(0, str(Path(__file__).with_name("verl_cpu")))
import loop  # noqa: E402

# Options of the V1 sas run: rollout log-probs, only truncated failures shielded. Its
# server reports log-probs lowered by seeded per-token noise, so that rollout and old
# log-probs rank steps differently and the test can tell which one SAS used.
V1_SAS = {"logprobs": "rollout", "shield": "truncated"}
# name: (estimator, V1 trainer, sas options, entry-point plugins on, skewed rollout
# log-probs, the two-turn agent loop of tests/verl_cpu/two_turn_agent.py)
RUNS = {
    "legacy-grpo": ("grpo", False, {}, True, False, False),
    "legacy-grpo-no-plugins": ("grpo", False, {}, False, False, False),
    "legacy-sas": ("sas", False, {}, True, False, False),
    "v1-grpo": ("grpo", True, {}, True, False, False),
    "v1-sas": ("sas", True, V1_SAS, True, True, False),
    "legacy-sas-two-turn": ("sas", False, {}, True, False, True),
    "v1-sas-two-turn": ("sas", True, {}, True, False, True),
}
TWO_TURN = "actor_rollout_ref.rollout.agent.default_agent_loop=sas_two_turn_agent"


@pytest.fixture(scope="session")
def fixture_dir(tmp_path_factory):
    return loop.prepare(tmp_path_factory.mktemp("verl-cpu-fixture"))


@pytest.fixture(scope="session")
def runs(tmp_path_factory, fixture_dir):
    """Each run once, on first use."""
    done: dict[str, loop.Run] = {}

    def get(name: str) -> loop.Run:
        if name not in done:
            estimator, v1, sas, plugins, skew, two_turn = RUNS[name]
            extra = [f"+algorithm.sas.{k}={v}" for k, v in sas.items()]
            extra += [TWO_TURN] if two_turn else []
            workdir = tmp_path_factory.mktemp(name)
            result = loop.run(
                fixture_dir,
                estimator,
                v1=v1,
                workdir=workdir,
                extra=extra,
                plugins=plugins,
                skew=skew,
                modules=("two_turn_agent",) if two_turn else (),
                reward="response_parity" if two_turn else "compute_score",
            )
            if result.returncode != 0:
                pytest.fail(f"main_ppo {name} exited {result.returncode}:\n{result.log[-6000:]}")
            done[name] = result
        return done[name]

    return get


@pytest.fixture(scope="session")
def token_bytes(fixture_dir):
    from transformers import AutoTokenizer

    return tokenizer_token_bytes(AutoTokenizer.from_pretrained(fixture_dir.tokenizer))


def _rows(batch: dict, key: str) -> torch.Tensor:
    """A captured (B, A) response-side tensor, real tokens first (padded with 0)."""
    return batch[key][:, : loop.RESPONSE_LENGTH]


def _mask(batch: dict) -> torch.Tensor:
    return _rows(batch, "response_mask").bool()


def _scores(batch: dict) -> torch.Tensor:
    key = "token_level_scores" if "token_level_scores" in batch else "rm_scores"
    return _rows(batch, key).float().sum(-1)


def _grpo_by_uid(scores: torch.Tensor, uids: list) -> torch.Tensor:
    """The reference GRPO advantage of each row, grouped by uid (rows in any order)."""
    groups = defaultdict(list)
    for row, uid in enumerate(uids):
        groups[uid].append(row)
    out = torch.zeros(len(uids), dtype=torch.float64)
    for rows in groups.values():
        adv = reference.grpo_advantages([float(scores[r]) for r in rows], len(rows))
        out[rows] = torch.tensor(adv, dtype=torch.float64)
    return out


def _grpo_tokens(batch: dict) -> torch.Tensor:
    """(B, A): each row's reference GRPO advantage spread over its positions."""
    return _grpo_by_uid(_scores(batch), list(batch["uid"]))[:, None].expand(_mask(batch).shape)


def _expected_sas(batch: dict, token_bytes, call: int, *, logprobs="old", shield="all"):
    mask = _mask(batch)
    scores = _scores(batch)
    correct = scores > 0.5
    key = "old_log_probs" if logprobs == "old" else "rollout_log_probs"
    keep = padded_reference.keep_mask(
        token_bytes,
        _rows(batch, "responses"),
        _rows(batch, key).float(),
        mask,
        correct.tolist(),
        vocab_size=len(token_bytes),
        ratio=0.3,
        mode="both",
        selection="confidence",
        granularity="step",
        seed=reference.unit_key(0, call, 0),
    )
    if shield == "truncated":
        truncated = mask.sum(-1) >= loop.RESPONSE_LENGTH
        keep[~correct & ~truncated] = True
    grpo = _grpo_tokens(batch)
    return torch.where(keep & mask, grpo, torch.zeros_like(grpo)), keep


def _advantages(batch: dict) -> torch.Tensor:
    return torch.where(_mask(batch), _rows(batch, "advantages").double(), 0.0)


@pytest.mark.parametrize("name", ["legacy-grpo", "legacy-sas", "v1-grpo", "v1-sas"])
def test_loop_runs_and_trains(runs, name):
    run = runs(name)
    assert sorted(run.metrics) == [1, 2], run.log[-3000:]
    assert len(run.captures) == loop.STEPS
    for batch in run.captures:
        assert batch["responses"].shape[0] == loop.PROMPTS * loop.GROUP
        assert batch["sas_cpu_param_change"] > 0  # the actor's weights moved
    # the rollout server loaded the actor's weights before each step's generation
    assert set(range(loop.STEPS)) <= set(run.synced_steps), run.synced_steps
    if not RUNS[name][4]:
        # and generated with them: its log-probs agree with the actor's old log-probs
        assert run.metrics[2]["training/rollout_actor_probs_pearson_corr"] > 0.99


@pytest.mark.parametrize("name", ["legacy-sas", "v1-sas"])
def test_sas_statistics_in_verl_metrics(runs, name):
    run = runs(name)
    for step in (1, 2):
        values = run.metrics[step]
        assert values["sas/steps"] >= 3, values
        assert values["sas/zeroed_token_frac"] > 0, values


@pytest.mark.parametrize(
    ("name", "options"), [("legacy-sas", {}), ("v1-sas", V1_SAS)], ids=["legacy", "v1"]
)
def test_sas_advantages_at_actor_update_equal_reference(runs, token_bytes, name, options):
    run = runs(name)
    zeroed = 0
    for call, batch in enumerate(run.captures):
        expected, keep = _expected_sas(batch, token_bytes, call, **options)
        got = _advantages(batch)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
        zeroed += int((~keep & _mask(batch) & (expected == 0)).sum())
    # the check is not vacuous: some tokens carry an advantage, some were zeroed by SAS
    all_adv = torch.cat([_advantages(b).flatten() for b in run.captures])
    assert (all_adv != 0).any()
    assert zeroed > 0


def test_rollout_logprobs_and_truncated_shield_are_used(runs, token_bytes):
    """V1 run: the keep mask is built from ``rollout_log_probs``, and only truncated
    failures are shielded (``sas/truncated_failed`` > 0: the window cut some)."""
    run = runs("v1-sas")
    assert any(run.metrics[s]["sas/truncated_failed"] > 0 for s in (1, 2))
    # built from old log-probs or with every failure shielded, the mask would differ
    for other in ({"logprobs": "old", "shield": "truncated"}, {**V1_SAS, "shield": "all"}):
        differs = [
            not torch.allclose(_advantages(b), _expected_sas(b, token_bytes, call, **other)[0])
            for call, b in enumerate(run.captures)
        ]
        assert any(differs), other
    for batch in run.captures:
        assert "rollout_log_probs" in batch
        mask = _mask(batch)
        correct = _scores(batch) > 0.5
        truncated = mask.sum(-1) >= loop.RESPONSE_LENGTH
        adv = _advantages(batch)
        grpo = _grpo_by_uid(_scores(batch), list(batch["uid"]))
        # a failed rollout that ended by itself keeps its whole GRPO advantage
        for row in torch.nonzero(~correct & ~truncated).flatten().tolist():
            assert torch.allclose(adv[row][mask[row]], grpo[row].expand(int(mask[row].sum())))


@pytest.mark.parametrize("name", ["legacy-grpo", "v1-grpo"])
def test_grpo_advantages_equal_reference(runs, name):
    for batch in runs(name).captures:
        grpo = _grpo_tokens(batch)
        expected = torch.where(_mask(batch), grpo, torch.zeros_like(grpo))
        torch.testing.assert_close(_advantages(batch), expected, rtol=1e-5, atol=1e-5)


def _by_rollout(run: loop.Run) -> list[dict]:
    """Each step's rollouts as {(prompt ids, response ids): advantage row}."""
    out = []
    for batch in run.captures:
        mask, responses, adv = _mask(batch), _rows(batch, "responses"), _advantages(batch)
        lengths = batch.get("prompts.lengths")
        rows = {}
        for i in range(mask.shape[0]):
            prompt = batch["prompts"][i]
            prompt = prompt[: int(lengths[i])] if lengths is not None else prompt
            key = (tuple(prompt.tolist()), tuple(responses[i][mask[i]].tolist()))
            rows.setdefault(key, []).append(adv[i][mask[i]])
        out.append(rows)
    return out


def test_grpo_unchanged_with_sas_core_plugin_disabled(runs):
    """The same legacy grpo run with verl's entry-point plugins off
    (``VERL_USE_EXTERNAL_PLUGINS=none``, so sas-core is never imported): the same
    rollouts (sampling is seeded per request) and the same advantages."""
    with_plugin, without = (
        _by_rollout(runs("legacy-grpo")),
        _by_rollout(runs("legacy-grpo-no-plugins")),
    )
    assert "sas/steps" not in runs("legacy-grpo").metrics[1]
    assert len(with_plugin) == len(without) == loop.STEPS
    for a, b in zip(with_plugin, without, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            for x, y in zip(
                sorted(a[key], key=lambda t: t.tolist()),
                sorted(b[key], key=lambda t: t.tolist()),
                strict=True,
            ):
                assert torch.equal(x, y)


def _one_text_keep(batch: dict, token_bytes) -> torch.Tensor:
    """The keep mask of the reading before turns: each row's masked tokens as one text."""
    mask = _mask(batch)
    ids, lps = _rows(batch, "responses"), _rows(batch, "old_log_probs").float()
    keep = torch.ones(mask.shape, dtype=torch.bool)
    correct = (_scores(batch) > 0.5).tolist()
    for i in range(mask.shape[0]):
        flat_ids = ids[i][mask[i]].tolist()
        steps = reference.segment(token_bytes, flat_ids, [0, len(flat_ids)])
        row = reference.keep_mask(
            steps, lps[i][mask[i]].double().tolist(), [0, len(flat_ids)], [correct[i]]
        )
        keep[i, mask[i]] = torch.tensor(row, dtype=torch.bool)
    return keep


@pytest.mark.parametrize("name", ["legacy-sas-two-turn", "v1-sas-two-turn"])
def test_two_turn_agent_loop_advantages_equal_the_turn_aware_reference(runs, token_bytes, name):
    """verl's loop with an agent loop registered through verl's ``register``: a model
    turn, a fixed observation (``response_mask`` 0, no blank line at either seam), a
    second model turn (a stand-in verifier: the response's length parity, for a mix of
    rewards). At the actor's update the advantages equal the turn-aware reference in
    every rollout; the observation's tokens carry no advantage; and the one-text reading
    (a step across the observation) would have given other advantages in some rollouts."""
    run = runs(name)
    assert len(run.captures) == loop.STEPS
    differs = 0
    for call, batch in enumerate(run.captures):
        mask = _mask(batch)
        # every rollout has a hole: the observation between its two turns
        starts = (mask[:, 1:] & ~mask[:, :-1]).sum(-1)
        assert (starts >= 1).all(), starts
        expected, _ = _expected_sas(batch, token_bytes, call)
        torch.testing.assert_close(_advantages(batch), expected, rtol=1e-5, atol=1e-5)
        real = torch.arange(mask.shape[1])[None, :] < mask.cumsum(-1).argmax(-1)[:, None]
        observation = real & ~mask
        assert (_rows(batch, "advantages")[observation] == 0).all()
        # where the one-text reading would give the actor other advantages
        grpo = _grpo_tokens(batch)
        one_text = torch.where(_one_text_keep(batch, token_bytes) & mask, grpo, 0.0)
        differs += int((~torch.isclose(one_text, expected, atol=1e-5)).any(-1).sum())
    assert differs > 0
