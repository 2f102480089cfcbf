"""OpenRLHF's own training loop with ``--advantage_estimator sas``, end to end on the CPU.

Each run is a real ``python -m openrlhf.cli.train_ppo_ray`` of 2 steps, launched as a
user types it: ``sas`` comes from the installed start-up hook alone (the pre-0.11
spelling ``--advantage_estimator``, which the hook also reads). Generation (a stand-in
vLLM engine around Hugging Face ``generate``), the reward (``openrlhf_cpu/reward.py``),
the actor's log-probs, the advantage, the DeepSpeed update (ZeRO-2 over gloo) and the
weight sync to the engine are OpenRLHF's. The CPU pieces come from
``tests/openrlhf_cpu/openrlhf_cpu_harness.py``, loaded into every process.

The experience each ``ActorPPOTrainer.training_step`` receives is captured in the actor
(not at sas-core's wrapper), and its advantages are checked against
``sas_core.reference`` recomputed from that experience: OpenRLHF's ``group_norm`` of the
rewards within each prompt's group (with a KL penalty, the penalised per-token returns),
times the keep mask over ``sequences[:, 1:]`` under ``action_mask``, ranked by the chosen
log-probs, correctness from the raw ``scores``.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from openrlhf_cpu_shims import require_openrlhf

require_openrlhf()

import openrlhf_helpers as h  # noqa: E402
import torch  # noqa: E402

from sas_core import reference  # noqa: E402
from sas_core.integrations.openrlhf.options import OpenRLHFSASOptions  # noqa: E402
from sas_core.token_bytes import tokenizer_token_bytes  # noqa: E402

HARNESS = Path(__file__).with_name("openrlhf_cpu")


def _load(name: str):
    """A module of the harness folder, loaded by path: the folder itself stays off this
    process's ``sys.path`` (its stand-in ``vllm`` and ``sitecustomize`` are for the
    processes of a run only)."""
    spec = importlib.util.spec_from_file_location(f"openrlhf_cpu_{name}", HARNESS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


loop = _load("loop")

RATIO = ["--algo.advantage.sas.ratio", "0.5"]
ROLLOUT = [
    "--algo.advantage.sas.logprobs", "rollout",
    "--algo.advantage.is_correction_level", "token",
]  # fmt: skip
ROLLOUT_TRUNCATED = [*ROLLOUT, "--algo.advantage.sas.shield", "truncated"]
AGENT = ["--train.agent_func_path", str(HARNESS / "two_turn_agent.py")]
KL = 0.05
# name: loop.run keyword arguments. ``skew``: the engine reports its log-probs lowered by
# seeded per-token noise, so that ranking by them differs from ranking by the actor's.
RUNS = {
    "group_norm": dict(estimator="group_norm"),
    "sas": dict(estimator="sas", extra=RATIO),
    "sas-rollout-truncated": dict(estimator="sas", extra=RATIO + ROLLOUT_TRUNCATED, skew=True),
    "sas-kl": dict(estimator="sas", extra=RATIO, kl=KL),
    "sas-2-ranks": dict(estimator="sas", extra=RATIO, ranks=2),
    # agent mode: a model turn, an observation off the mask, a second model turn
    "sas-agent": dict(estimator="sas", extra=RATIO + AGENT),
    "sas-agent-rollout": dict(estimator="sas", extra=RATIO + AGENT + ROLLOUT, skew=True),
}
AGENT_RUNS = ["sas-agent", "sas-agent-rollout"]
SAS_RUNS = ["sas", "sas-rollout-truncated", "sas-kl", "sas-2-ranks", *AGENT_RUNS]


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    return loop.prepare(tmp_path_factory.mktemp("openrlhf-cpu-fixture"))


@pytest.fixture(scope="session")
def runs(tmp_path_factory, model_dir):
    """Each run once, on first use."""
    done: dict[str, loop.Run] = {}

    def get(name: str) -> loop.Run:
        if name not in done:
            workdir = tmp_path_factory.mktemp(name)
            result = loop.run(model_dir, workdir=workdir, **RUNS[name])
            if result.returncode != 0:
                pytest.fail(
                    f"train_ppo_ray {name} exited {result.returncode}:\n{result.log[-6000:]}"
                )
            done[name] = result
        return done[name]

    return get


@pytest.fixture(scope="session")
def token_bytes(model_dir):
    from transformers import AutoTokenizer

    return tokenizer_token_bytes(AutoTokenizer.from_pretrained(model_dir, trust_remote_code=True))


def _options(name: str) -> OpenRLHFSASOptions:
    """The run's SAS options, as its flags set them."""
    flags = RUNS[name].get("extra", [])
    prefix = "--algo.advantage.sas."
    values = {k[len(prefix) :]: v for k, v in zip(flags[::2], flags[1::2]) if k.startswith(prefix)}
    if "ratio" in values:
        values["ratio"] = float(values["ratio"])
    return replace(OpenRLHFSASOptions(), **values)


def _by_step(run: loop.Run) -> dict[int, list[dict]]:
    steps = defaultdict(list)
    for update in run.updates:
        steps[update["step"]].append(update)
    return dict(steps)


def _group_norm(updates: list[dict]) -> dict[tuple[int, int], float]:
    """OpenRLHF's ``group_norm`` of one step's rewards, by (update, row): each prompt's
    group of ``loop.GROUP`` rollouts, gathered from every update (and rank) of the step."""
    groups = defaultdict(list)
    for u, update in enumerate(updates):
        for r, prompt in enumerate(update["prompts"]):
            groups[prompt].append((u, r, float(update["rewards"][r])))
    out = {}
    for members in groups.values():
        assert len(members) == loop.GROUP, "each prompt's group is whole within its step"
        normed = reference.grpo_advantages([m[2] for m in members], loop.GROUP, eps=1e-9)
        out.update({(u, r): a for (u, r, _), a in zip(members, normed, strict=True)})
    return out


def _base_advantages(run: loop.Run, updates: list[dict], kl: float) -> list[torch.Tensor]:
    """The advantages OpenRLHF's group_norm gives each update (B, A): the normalised
    reward on every response token; with a KL penalty, the per-token returns of the
    reward at the last response token minus ``kl`` times each token's KL."""
    normed = _group_norm(updates)
    out = []
    for u, update in enumerate(updates):
        mask = update["action_mask"].bool()
        adv = torch.zeros(mask.shape, dtype=torch.float64)
        for r in range(mask.shape[0]):
            cols = torch.nonzero(mask[r]).flatten()
            reward = torch.zeros(len(cols), dtype=torch.float64)
            reward[-1] = normed[(u, r)]
            if kl > 0:
                tokens = update["sequences"][r][update["attention_mask"][r].bool()].tolist()
                reward -= kl * run.kl_rows[tuple(tokens)].double()
            adv[r, cols] = reward.flip(0).cumsum(0).flip(0)
        out.append(adv)
    return out


def _keep(update: dict, options: OpenRLHFSASOptions, token_bytes) -> torch.Tensor:
    # seed: random selection only (these runs rank by confidence)
    return h.reference_keep(SimpleNamespace(**update), options, token_bytes, len(token_bytes), 0)


def _got(update: dict) -> torch.Tensor:
    return torch.where(update["action_mask"].bool(), update["advantages"].double(), 0.0)


def _expected(run: loop.Run, name: str, token_bytes) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(expected advantages, keep mask) of each captured update of run ``name``."""
    kl = RUNS[name].get("kl", 0.0)
    out = []
    for updates in _by_step(run).values():
        for update, base in zip(updates, _base_advantages(run, updates, kl), strict=True):
            mask = update["action_mask"].bool()
            keep = torch.ones_like(mask)
            if RUNS[name]["estimator"] == "sas":
                keep = _keep(update, _options(name), token_bytes)
            out.append((torch.where(keep & mask, base, 0.0), keep))
    return out


@pytest.mark.parametrize("name", list(RUNS))
def test_loop_trains_and_syncs_the_engine(runs, model_dir, name):
    """Both estimators finish 2 steps; after each step the engine holds exactly the
    weights the actor sent, and they moved from the start and between steps."""
    from transformers import AutoModelForCausalLM

    weights_digest = _load("hf_engine").weights_digest

    run = runs(name)
    assert sorted(run.metrics) == [1, 2], run.log[-3000:]
    assert sorted(_by_step(run)) == [1, 2]
    for updates in _by_step(run).values():
        assert sum(len(u["prompts"]) for u in updates) == loop.PROMPTS * loop.GROUP
    assert len(run.actor_syncs) == len(run.engine_syncs) == loop.STEPS
    assert run.actor_syncs == run.engine_syncs
    # bf16 rounding alone changes the weights: compare with the bf16-rounded start
    start = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)
    initial = weights_digest(list(start.named_parameters()))
    assert len({initial, *run.actor_syncs}) == 1 + loop.STEPS


@pytest.mark.parametrize("name", SAS_RUNS)
def test_sas_statistics_in_openrlhf_step_metrics(runs, name):
    run = runs(name)
    for step in (1, 2):
        values = run.metrics[step]
        assert values["sas/steps"] >= 2, values
        assert values["sas/zeroed_token_frac"] > 0, values
    assert "sas/steps" not in runs("group_norm").metrics[1]


@pytest.mark.parametrize("name", ["group_norm", *SAS_RUNS])
def test_advantages_at_the_actor_equal_reference(runs, token_bytes, name):
    """On every update: ``group_norm`` alone, or ``group_norm`` times the reference
    keep mask (the KL run: the KL-penalised returns times the mask)."""
    run = runs(name)
    zeroed = 0
    for update, (expected, keep) in zip(
        run.updates, _expected(run, name, token_bytes), strict=True
    ):
        torch.testing.assert_close(_got(update), expected, rtol=1e-5, atol=1e-5)
        mask = update["action_mask"].bool()
        zeroed += int((mask & ~keep).sum())
    # not vacuous: tokens carry advantages, and SAS zeroed some
    assert any((_got(u) != 0).any() for u in run.updates)
    assert (zeroed > 0) == (RUNS[name]["estimator"] == "sas")
    if name == "sas-2-ranks":
        assert {u["rank"] for u in run.updates} == {0, 1}
    if name == "sas-kl":  # the penalty reached the advantages: not constant per rollout
        assert run.kl_rows and any(
            len(set(_got(u)[r][u["action_mask"][r].bool()].tolist())) > 2
            for u in run.updates
            for r in range(len(u["prompts"]))
        )


def test_rollout_logprobs_and_truncated_shield_are_used(runs, token_bytes):
    """``logprobs rollout``: the mask is ranked by the engine's log-probs (ranking by
    the actor's gives another); ``shield truncated``: a failed rollout that ended by
    itself keeps its whole advantage, and the window cut some failures."""
    name = "sas-rollout-truncated"
    run = runs(name)
    assert any(run.metrics[s]["sas/truncated_failed"] > 0 for s in (1, 2))
    options = _options(name)
    for other in (replace(options, logprobs="action"), replace(options, shield="all")):
        differs = [
            not torch.equal(_keep(u, options, token_bytes), _keep(u, other, token_bytes))
            for u in run.updates
        ]
        assert any(differs), other
    kl = RUNS[name].get("kl", 0.0)
    shielded = 0
    for updates in _by_step(run).values():
        for update, base in zip(updates, _base_advantages(run, updates, kl), strict=True):
            assert update["rollout_log_probs"] is not None
            mask = update["action_mask"].bool()
            adv = _got(update)
            for r in range(mask.shape[0]):
                if update["scores"][r] <= options.correct_threshold and not update["truncated"][r]:
                    # kept whole: each response token has the rollout's GRPO advantage;
                    # told apart from zeroed only where that is not 0 (a group whose
                    # rollouts all failed has 0 everywhere)
                    row, want = adv[r][mask[r]], base[r][mask[r]]
                    torch.testing.assert_close(row, want, rtol=1e-5, atol=1e-5)
                    shielded += bool((want != 0).all())
    assert shielded > 0


def test_sas_comes_from_the_start_up_hook(model_dir, tmp_path):
    """With the hook switched off, OpenRLHF's own CLI does not know the flag."""
    env = loop.environment(tmp_path, 1)
    env["SAS_CORE_OPENRLHF_HOOK"] = "0"
    done = subprocess.run(
        [sys.executable, "-m", "openrlhf.cli.train_ppo_ray", *loop.argv(model_dir, "sas")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    assert "--advantage_estimator" in done.stderr.splitlines()[-1]


def _filled(mask: torch.Tensor) -> torch.Tensor:
    """The mask with each row's holes filled: the rollout read as one text, the
    observation inside it."""
    seen = mask.bool().cumsum(-1)
    return (seen > 0) & (seen < seen[:, -1:]) | mask.bool()


@pytest.mark.parametrize("name", AGENT_RUNS)
def test_agent_mode_steps_respect_turns(runs, token_bytes, name):
    """OpenRLHF's agent mode (``--train.agent_func_path``, its ``MultiTurnAgentExecutor``):
    every rollout is two model turns around an observation that ``action_ranges`` leave
    off ``action_mask``. sas-core's segmentation of the captured experience puts no
    off-mask token in a step and no step in two turns; the advantages (checked against
    the turn-aware reference above) differ from the one-text reading, which would rank
    a step across the observation; with ``logprobs rollout``, the observation's
    log-probs are OpenRLHF's 0.0 placeholders and do not count."""
    from sas_core import StepSegmenter

    run = runs(name)
    options = _options(name)
    segmenter = StepSegmenter(token_bytes)
    differs = 0
    for update in run.updates:
        mask = update["action_mask"].bool()
        holes = _filled(mask) & ~mask
        assert ((mask[:, 1:] & ~mask[:, :-1]).sum(-1) == 2).all(), "two turns per rollout"
        assert holes.any(-1).all()
        ids = update["sequences"][:, 1:]
        cu = torch.arange(0, ids.numel() + 1, ids.shape[1])
        steps = torch.as_tensor(segmenter.segment(ids.flatten(), cu, action_mask=mask.flatten()))
        steps = steps.reshape(mask.shape)
        assert (steps[~mask] == -1).all() and (steps[mask] >= 0).all()
        turn = mask.logical_not().cumsum(-1)  # constant within a turn
        for r in range(mask.shape[0]):
            for s in steps[r][mask[r]].unique().tolist():
                assert turn[r][steps[r] == s].unique().numel() == 1, (r, s)
        if options.logprobs == "rollout":
            assert (update["rollout_log_probs"][holes] == 0.0).all()
        one_text = _keep({**update, "action_mask": _filled(mask).long()}, options, token_bytes)
        keep = _keep(update, options, token_bytes)
        differs += sum(int((one_text[r] != keep[r])[mask[r]].any()) for r in range(len(mask)))
    assert differs > 0
