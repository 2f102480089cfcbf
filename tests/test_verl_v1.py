"""verl 0.9's V1 trainer (``trainer.use_v1=True``, its default) with ``adv_estimator=sas``:
its own ``PPOTrainer._compute_advantage`` over a running TransferQueue (Ray actors and
ZMQ SimpleStorage, on CPU), against the reference.

The batch is written into the TransferQueue in the layout of verl's V1 agent loop
(``verl_helpers.put_v1_batch``); the trainer is verl's ``sync`` trainer, built as
``TaskRunnerV1`` builds it and taken through ``_init_tokenizer`` (the first step of
its ``init``); the worker groups and rollout servers that ``init`` goes on to start need
GPUs and are not started. Runs in the verl venv (``make test-verl``).
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("verl")
ray = pytest.importorskip("ray")
tq = pytest.importorskip("transfer_queue")

from verl_helpers import (  # noqa: E402
    expected,
    make_batch,
    put_v1_batch,
    running_queue,
    text_batch,
    tiny_model_dir,
    v1_advantage_step,
    v1_config,
)

from sas_core.integrations.verl import estimator  # noqa: E402
from sas_core.qwen import QWEN2_EMBEDDING_ROWS  # noqa: E402
from sas_core.stats import NAMES  # noqa: E402
from sas_core.token_bytes import tokenizer_token_bytes  # noqa: E402


@pytest.fixture(scope="module")
def queue():
    with running_queue():
        yield


def _trainer(*overrides: str):
    from verl.trainer.ppo.v1 import get_trainer_cls

    return get_trainer_cls("sync")(config=v1_config(list(overrides)))


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"ratio": 0.5},
        {"mode": "failed", "granularity": "token"},
        {"selection": "random", "seed": 3},
    ],
)
def test_v1_compute_advantage_equals_the_reference(
    queue, qwen, qwen_token_bytes, verl_bound, options
):
    sas = [f"+algorithm.sas.{k}={v}" for k, v in options.items()]
    trainer = _trainer("algorithm.adv_estimator=sas", *sas)
    for call, seed in enumerate([0, 1]):
        data, correct = make_batch(qwen, seed)
        want = expected(qwen_token_bytes, data, correct, call, **options)
        got, metrics = v1_advantage_step(
            trainer, data, multiple=5 if call else 1
        )  # 12 rows + 3 padding
        torch.testing.assert_close(got, want)
        assert torch.equal(got == 0, want == 0)
        # the step's metrics dict is what V1 logs: the sas/... statistics are in it,
        # over the real rollouts only
        assert set(NAMES) <= set(metrics)
        assert metrics["sas/correct"] == pytest.approx(correct.float().mean().item())
        steps = metrics["sas/steps"] * len(data)
        assert steps == pytest.approx(round(steps))  # a mean over the 12 real rows


def test_v1_sas_zeroes_steps_grpo_keeps(queue, qwen, verl_bound):
    data, _ = make_batch(qwen, 5, n_prompts=4)
    sas, metrics = v1_advantage_step(
        _trainer("algorithm.adv_estimator=sas", "+algorithm.sas.ratio=0.5"), data
    )
    grpo, plain = v1_advantage_step(
        _trainer("algorithm.adv_estimator=grpo"), make_batch(qwen, 5, n_prompts=4)[0]
    )
    mask = data.batch["response_mask"].bool()
    newly = mask & (sas == 0) & (grpo != 0)
    assert newly.any()  # not vacuous
    assert torch.equal(torch.where(sas != 0, grpo, sas), sas)  # the rest is GRPO's
    assert metrics["sas/zeroed_token_frac"] > 0
    assert not any(k.startswith("sas/") for k in plain)  # grpo untouched


def test_v1_shield_truncated_uses_the_response_window(queue, qwen, qwen_token_bytes, verl_bound):
    """V1 pads to the batch's longest response, not to the window: truncation is a
    response as long as ``rollout.response_length``."""
    data, correct = make_batch(qwen, 4, n_prompts=4)
    width = data.batch["responses"].shape[1]
    trainer = _trainer(
        "algorithm.adv_estimator=sas",
        "+algorithm.sas.shield=truncated",
        f"actor_rollout_ref.rollout.response_length={width}",
    )
    got, _ = v1_advantage_step(trainer, data)
    full = expected(qwen_token_bytes, data, correct, 0)
    grpo = expected(qwen_token_bytes, data, correct, 0, ratio=0.0)
    spared = ~correct & ~data.batch["response_mask"].bool()[:, -1]
    assert spared.any() and (~spared).any()
    torch.testing.assert_close(got[spared], grpo[spared])
    torch.testing.assert_close(got[~spared], full[~spared])
    # a window no response reaches: every failed rollout is spared
    trainer = _trainer(
        "algorithm.adv_estimator=sas",
        "+algorithm.sas.shield=truncated",
        f"actor_rollout_ref.rollout.response_length={width + 1}",
    )
    estimator.bind(qwen, QWEN2_EMBEDDING_ROWS)  # the first call again: the same seed
    got, _ = v1_advantage_step(trainer, data)
    torch.testing.assert_close(got[~correct], grpo[~correct])


def test_v1_refuses_what_it_cannot_score(queue, qwen, verl_bound):
    trainer = _trainer("algorithm.adv_estimator=sas")
    data, _ = make_batch(qwen, 0)
    meta = put_v1_batch(data, outputs=2)  # agent-loop sessions with two outputs each
    try:
        with pytest.raises(NotImplementedError, match=r"second or later output"):
            trainer._compute_advantage(meta, {})
    finally:
        tq.kv_clear(keys=meta.keys, partition_id=meta.partition_id)
    rollout = _trainer("algorithm.adv_estimator=sas", "+algorithm.sas.logprobs=rollout")
    with pytest.raises(ValueError, match=r"^logprobs: .*rollout_log_probs"):
        v1_advantage_step(rollout, data)


def test_v1_trainer_checks_options_at_start_and_binds_the_tokenizer(queue, tmp_path):
    """``__init__`` refuses bad options before anything is built; ``_init_tokenizer``
    (verl's own, loading the model directory) binds a segmenter sized to the model."""
    _, rows = tiny_model_dir(tmp_path)
    model = f"actor_rollout_ref.model.path={tmp_path}"
    with pytest.raises(ValueError, match=r"^algorithm\.sas\.ratio: must be in \[0, 1\]"):
        _trainer(model, "algorithm.adv_estimator=sas", "+algorithm.sas.ratio=2")
    with pytest.raises(ValueError, match=r"^algorithm\.sas\.ration: unknown SAS option"):
        _trainer(model, "algorithm.adv_estimator=sas", "+algorithm.sas.ration=0.3")
    estimator.unbind()
    trainer = _trainer(model, "algorithm.adv_estimator=sas")
    trainer._init_tokenizer()
    assert estimator.bound() is not None
    assert estimator.bound().vocab_size == rows
    estimator.unbind()
    _trainer(model, "algorithm.adv_estimator=grpo")._init_tokenizer()
    assert estimator.bound() is None  # only a sas run binds


def test_v1_in_a_ray_actor_built_like_verls_task_runner(queue, tmp_path):
    """verl runs ``TaskRunnerV1`` as ``ray.remote(num_cpus=1)``; the actor only imports
    verl (the entry point does the rest), attaches to the queue, builds the trainer from
    the model directory and steps: equal to the reference, statistics in its metrics."""
    import verl_actor

    tok, rows = tiny_model_dir(tmp_path)
    data, correct = text_batch(tok)
    want = expected(tokenizer_token_bytes(tok), data, correct, 0, vocab_size=rows, ratio=0.5)
    runner = ray.remote(num_cpus=1)(verl_actor.TaskRunnerV1Probe).remote()
    installed, advantages, metrics = ray.get(runner.run.remote(str(tmp_path), data), timeout=600)
    assert installed
    torch.testing.assert_close(advantages, want)
    assert torch.equal(advantages == 0, want == 0)
    assert metrics["sas/zeroed_token_frac"] > 0
