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

TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def local_ray():
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={
            # Workers import the test helpers, and get the same CPU-only import shims
            # before they unpickle anything.
            "env_vars": {"PYTHONPATH": str(TESTS)},
            "worker_process_setup_hook": "openrlhf_cpu_shims.install",
        },
    )
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return h.save_pretrained(tmp_path_factory.mktemp("model"))


def _argv(model_dir: Path, estimator: str) -> list[str]:
    return [
        "--advantage_estimator",  # the pre-0.11 spelling, translated by the launcher
        estimator,
        "--actor.model_name_or_path",
        str(model_dir),
        "--data.prompt_dataset",
        str(model_dir / "prompts.jsonl"),
        "--data.input_key",
        "input",
        "--data.label_key",
        "answer",
        "--rollout.n_samples_per_prompt",
        str(h.GROUP),
        "--rollout.batch_size",
        "2",
        "--train.batch_size",
        "8",
        "--algo.kl.use_loss",
        "--algo.advantage.sas.ratio",
        "0.5",
        "--algo.advantage.sas.selection",
        "random",
    ]


def _ppo_trainer(args, model_dir: Path, kind: str = "sync"):
    """OpenRLHF's trainer actor that computes advantages: ``PPOTrainer``, created as
    train_ppo_ray.train() creates it, or the async mode's ``TrainingActor``, as
    ``PPOTrainerAsync`` creates it (here without model groups, vLLM engines or queues:
    only the experience maker is used)."""
    from openrlhf.utils import get_strategy

    if kind == "async":
        from openrlhf.trainer.ppo_trainer_async import TrainingActor

        return TrainingActor.remote(
            str(model_dir),
            get_strategy(args),
            None,
            None,
            None,
            None,
            None,
            vllm_lock=None,
            rollout_queue=None,
            rollout_slots=None,
        )
    from openrlhf.trainer.ppo_trainer import PPOTrainer

    return PPOTrainer.remote(
        str(model_dir),
        get_strategy(args),
        None,
        None,
        None,
        None,
        None,
        do_sample=True,
        max_len=256,
        max_new_tokens=128,
        temperature=0.6,
        top_p=1.0,
    )


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_estimator_is_active_in_the_trainer_actor(local_ray, model_dir, kind):
    from sas_core.integrations.openrlhf.estimator import experience_seed

    args = parse_args(_argv(model_dir, "sas"))
    exps = h.make_experiences(11, n_prompts=3)
    base = h.make_experiences(11, n_prompts=3)

    trainer = _ppo_trainer(args, model_dir, kind)
    got = ray.get(trainer.__ray_call__.remote(h.probe_trainer, h.clone(exps)))
    assert got["pid"] != os.getpid()
    assert got["installed"] and got["estimator"] == "sas"

    # Expected: OpenRLHF's group_norm (unpatched, here in the driver) x reference mask.
    from openrlhf.trainer.ppo_utils.experience_maker import RemoteExperienceMaker
    from openrlhf.trainer.ppo_utils.kl_controller import FixedKLController
    from openrlhf.utils import get_strategy

    from sas_core.integrations.openrlhf.estimator import _MARK, install

    install()
    plain = getattr(RemoteExperienceMaker.compute_advantages_and_returns, _MARK)
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
    assert experience_seed(options.seed, 0, 0) != experience_seed(options.seed, 1, 0)


def test_without_sas_options_nothing_is_installed_in_the_actor(local_ray, model_dir):
    # Control: the same actor from args that carry no SASOptions stays plain OpenRLHF,
    # so what installs the estimator above is the pickled options object.
    args = parse_args(_argv(model_dir, "group_norm"))
    del args.algo.advantage.sas
    got = ray.get(_ppo_trainer(args, model_dir).__ray_call__.remote(h.probe_trainer, []))
    assert got["pid"] != os.getpid()
    assert not got["installed"] and got["estimator"] == "group_norm"
