"""In real Ray actor processes: OpenRLHF's own ``PPOTrainer`` actor, built from the args
the launcher parsed, computes SAS advantages there, because unpickling the args
installed the estimator in that fresh process (not in the driver)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from openrlhf_cpu_shims import require_openrlhf

require_openrlhf()

import openrlhf_helpers as h  # noqa: E402
import ray  # noqa: E402

from sas_core.integrations.openrlhf.launcher import parse_args  # noqa: E402
from sas_core.token_bytes import tokenizer_token_bytes  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env=h.RUNTIME_ENV,
    )
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return h.save_pretrained(tmp_path_factory.mktemp("model"))


def _argv(model_dir: Path, estimator: str) -> list[str]:
    # the pre-0.11 spelling of the estimator flag, translated by the launcher
    argv = h.trainer_argv(model_dir, estimator, "--algo.advantage.sas.selection", "random")
    argv[0] = "--advantage_estimator"
    return argv


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_estimator_is_active_in_the_trainer_actor(local_ray, model_dir, kind):
    from sas_core._core import unit_key

    args = parse_args(_argv(model_dir, "sas"))
    exps = h.make_experiences(11, n_prompts=3)
    base = h.make_experiences(11, n_prompts=3)

    trainer = h.trainer_actor(args, kind)
    got = ray.get(trainer.__ray_call__.remote(h.probe_trainer, h.clone(exps)))
    assert got["pid"] != os.getpid()
    assert got["installed"] and got["estimator"] == "sas"

    # Expected: OpenRLHF's group_norm (unpatched, here in the driver) x reference mask.
    from openrlhf.trainer.ppo_utils.experience_maker import RemoteExperienceMaker
    from openrlhf.trainer.ppo_utils.kl_controller import FixedKLController
    from openrlhf.utils import get_strategy

    from sas_core.integrations._patching import MARK
    from sas_core.integrations.openrlhf.estimator import install

    install()
    plain = getattr(RemoteExperienceMaker.compute_advantages_and_returns, MARK)
    gn = parse_args(_argv(model_dir, "group_norm"))
    maker = RemoteExperienceMaker(
        None, None, None, None, FixedKLController(0.0), get_strategy(gn), h.tokenizer()
    )
    base = plain(maker, base)
    options = args.algo.advantage.sas
    token_bytes = tokenizer_token_bytes(h.tokenizer())
    rows = len(token_bytes) + 8  # the model folder's config has 8 padded rows
    want = h.expected_sas(base, options, token_bytes, rows, call=0)
    assert len(got["advantages"]) == len(want)
    for g, w in zip(got["advantages"], want):
        assert torch.equal(g, w)
    assert sum(float(i["sas/zeroed_token_frac"].sum()) for i in got["info"]) > 0
    assert unit_key(options.seed, 0, 0) != unit_key(options.seed, 1, 0)


def test_without_sas_options_nothing_is_installed_in_the_actor(local_ray, model_dir):
    # Control: the same actor from args that carry no SASOptions stays plain OpenRLHF,
    # so what installs the estimator above is the pickled options object.
    args = parse_args(_argv(model_dir, "group_norm"))
    del args.algo.advantage.sas
    got = ray.get(h.trainer_actor(args).__ray_call__.remote(h.probe_trainer, []))
    assert got["pid"] != os.getpid()
    assert not got["installed"] and got["estimator"] == "group_norm"


@ray.remote
class RewardEngine:
    """Where OpenRLHF runs a ``--reward.remote_url`` file: an async Ray actor (its vLLM
    engine) that loads it with ``SingleTurnAgentExecutor`` and calls it in threads."""

    async def scores(self, path, queries, prompts, labels):
        from openrlhf.utils.agent import SingleTurnAgentExecutor

        executor = SingleTurnAgentExecutor(remote_rm_url=path)
        results = await executor._fetch_rewards_via_func(queries, prompts, labels)
        return [r["scores"].item() for r in results]


def test_reward_func_in_an_async_ray_actor(local_ray):
    # The first items of a run must not score 0 while the verifier's worker starts (a
    # spawned multiprocessing child would also re-import Ray's worker script).
    from sas_core.integrations.openrlhf import reward_func_path

    prompt = "What is 2+2? Put the answer in \\boxed{}."
    queries = [prompt + " \\boxed{4}", prompt + " \\boxed{5}", prompt + " 4"]
    got = ray.get(
        RewardEngine.remote().scores.remote(reward_func_path(), queries, [prompt] * 3, ["4"] * 3)
    )
    assert got == [1.0, 0.0, 0.0]
