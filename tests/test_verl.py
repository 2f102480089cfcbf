"""verl 0.9's own ``compute_advantage`` with ``adv_estimator=sas``, against the reference.

Runs in the verl virtual environment (``make test-verl``: verl pins transformers < 5.11,
OpenRLHF pins 5.15); skipped where verl is not installed. Real verl on CPU, the real
Qwen2 vocabulary, nothing downloaded.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

verl = pytest.importorskip("verl")

from verl.trainer.ppo import ray_trainer as rt  # noqa: E402
from verl_helpers import (  # noqa: E402
    advantage_step,
    build_trainer,
    expected,
    make_batch,
    text_batch,
    tiny_model_dir,
)
from verl_helpers import algorithm_config as algo_cfg  # noqa: E402

from sas_core.integrations.verl import estimator  # noqa: E402
from sas_core.qwen import QWEN2_EMBEDDING_ROWS  # noqa: E402
from sas_core.segmenter import StepSegmenter  # noqa: E402


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"ratio": 0.5},
        {"mode": "failed"},
        {"mode": "correct", "ratio": 1.0},
        {"selection": "random", "seed": 3},
        {"granularity": "token"},
    ],
)
def test_compute_advantage_equals_the_reference(qwen, qwen_token_bytes, verl_bound, options):
    assert estimator.is_installed()
    for call, seed in enumerate([0, 1]):
        data, correct = make_batch(qwen, seed, kl=seed == 1)
        want = expected(qwen_token_bytes, data, correct, call, **options)
        got = rt.compute_advantage(data, adv_estimator="sas", config=algo_cfg(**options))
        torch.testing.assert_close(got.batch["advantages"], want)
        assert torch.equal(got.batch["advantages"] == 0, want == 0)
        metrics = got.meta_info["sas_metrics"]
        assert metrics["sas/correct"] == pytest.approx(correct.float().mean().item())
        assert metrics["sas/nonfinite_rollouts"] == 0


def test_sas_zeroes_something_and_correctness_comes_from_the_raw_scores(qwen, verl_bound):
    data, _ = make_batch(qwen, 5, n_prompts=4, kl=True)
    got = rt.compute_advantage(data, adv_estimator="sas", config=algo_cfg(ratio=0.5))
    grpo = rt.compute_advantage.__sas_core_original__(
        make_batch(qwen, 5, n_prompts=4, kl=True)[0],
        adv_estimator="grpo",
        config=algo_cfg(),
    )
    mask = data.batch["response_mask"].bool()
    newly = mask & (got.batch["advantages"] == 0) & (grpo.batch["advantages"] != 0)
    assert newly.any()  # not vacuous
    assert got.meta_info["sas_metrics"]["sas/zeroed_token_frac"] > 0


def test_other_estimators_are_unchanged(qwen, verl_bound):
    for name in ("grpo", "rloo", "reinforce_plus_plus"):
        data, _ = make_batch(qwen, 2)
        original = rt.compute_advantage.__sas_core_original__
        want = original(make_batch(qwen, 2)[0], adv_estimator=name, config=algo_cfg())
        got = rt.compute_advantage(data, adv_estimator=name, config=algo_cfg())
        assert torch.equal(got.batch["advantages"], want.batch["advantages"])
        assert "sas_metrics" not in got.meta_info


def test_bad_configuration_fails_naming_the_key(qwen, verl_bound):
    data, _ = make_batch(qwen, 0)
    with pytest.raises(ValueError, match=r"^algorithm\.sas\.ratio: must be in \[0, 1\]"):
        rt.compute_advantage(data, adv_estimator="sas", config=algo_cfg(ratio=2.0))
    with pytest.raises(ValueError, match=r"^algorithm\.sas\.mode: must be one of"):
        rt.compute_advantage(data, adv_estimator="sas", config=algo_cfg(mode="all"))
    with pytest.raises(ValueError, match=r"^algorithm\.sas\.ration: unknown SAS option"):
        rt.compute_advantage(data, adv_estimator="sas", config=algo_cfg(ration=0.3))
    with pytest.raises(ValueError, match=r"^algorithm\.sas\.logprobs: must be one of"):
        rt.compute_advantage(data, adv_estimator="sas", config=algo_cfg(logprobs="action"))
    with pytest.raises(ValueError, match=r"^logprobs: .*rollout_log_probs"):
        rt.compute_advantage(data, adv_estimator="sas", config=algo_cfg(logprobs="rollout"))
    no_old, _ = make_batch(qwen, 0)
    no_old.batch.pop("old_log_probs")
    with pytest.raises(ValueError, match=r"^logprobs: .*old_log_probs"):
        rt.compute_advantage(no_old, adv_estimator="sas", config=algo_cfg())
    nan, _ = make_batch(qwen, 0)
    nan.batch["old_log_probs"][0, 0] = float("nan")
    with pytest.raises(ValueError, match="logprobs: row 0: must be finite"):
        rt.compute_advantage(nan, adv_estimator="sas", config=algo_cfg(nonfinite="raise"))
    estimator.bind(qwen, QWEN2_EMBEDDING_ROWS)  # a new run: it warns again
    with pytest.warns(RuntimeWarning, match="NaN/inf log-probs"):
        kept = rt.compute_advantage(_nan_batch(qwen), adv_estimator="sas", config=algo_cfg())
    assert kept.meta_info["sas_metrics"]["sas/nonfinite_rollouts"] == 1
    estimator.unbind()
    with pytest.raises(RuntimeError, match="has no tokenizer"):
        rt.compute_advantage(make_batch(qwen, 0)[0], adv_estimator="sas", config=algo_cfg())


def _nan_batch(qwen):
    data, _ = make_batch(qwen, 0)
    data.batch["old_log_probs"][0, 0] = float("nan")
    return data


def test_score_count_and_response_shape_mismatches_are_named():
    from sas_core.integrations.verl.options import VerlSASOptions

    class Batch(dict):
        pass

    data = type("D", (), {})()
    data.batch = Batch(
        responses=torch.zeros((2, 3), dtype=torch.long),
        response_mask=torch.ones((2, 3)),
        old_log_probs=torch.zeros((2, 3)),
        token_level_scores=torch.zeros((3, 3)),
        advantages=torch.zeros((2, 3)),
    )
    seg = StepSegmenter([b"a"])
    with pytest.raises(ValueError, match=r"^token_level_scores: 3 rows for 2 responses"):
        estimator.apply_sas(data, VerlSASOptions(), seg, call=0)
    # V1's batch has no responses: they come from the TransferQueue, and must fit the mask
    data.batch["token_level_scores"] = torch.zeros((2, 3))
    ids = data.batch.pop("responses")
    with pytest.raises(ValueError, match=r"^responses: the sas estimator segments"):
        estimator.apply_sas(data, VerlSASOptions(), seg, call=0)
    wide = estimator.Inputs(responses=torch.zeros((2, 4), dtype=torch.long), window=3)
    with pytest.raises(ValueError, match=r"^responses: \(2, 4\) from the TransferQueue for a "):
        estimator.apply_sas(data, VerlSASOptions(), seg, call=0, inputs=wide)
    fits = estimator.Inputs(responses=ids, window=3)
    stats = estimator.apply_sas(data, VerlSASOptions(), seg, call=0, inputs=fits)
    assert stats["sas/truncated_failed"] == 1.0  # both fill the window of 3 and fail
    # Legacy: responses narrower than the mask are named as responses (round 3, item 9).
    data.batch["responses"] = ids[:, :-1]
    with pytest.raises(ValueError, match=r"^responses: shape \(2, 2\) does not match"):
        estimator.apply_sas(data, VerlSASOptions(), seg, call=0)


def test_a_zero_width_batch_is_handled_like_verls_grpo(qwen, verl_bound):
    data, _ = make_batch(qwen, 0)
    b = data.batch["responses"].shape[0]
    for key in ("responses", "response_mask", "old_log_probs", "token_level_scores",
                "token_level_rewards"):  # fmt: skip
        data.batch[key] = data.batch[key][:, :0]
    grpo = rt.compute_advantage(copy.deepcopy(data), adv_estimator="grpo", config=algo_cfg())
    got = rt.compute_advantage(data, adv_estimator="sas", config=algo_cfg())
    assert got.batch["advantages"].shape == grpo.batch["advantages"].shape == (b, 0)
    assert got.meta_info["sas_metrics"]["sas/steps"] == 0.0


def test_shield_truncated_spares_failed_rollouts_that_ended(qwen, qwen_token_bytes, verl_bound):
    data, correct = make_batch(qwen, 4, n_prompts=4)
    got = rt.compute_advantage(data, adv_estimator="sas", config=algo_cfg(shield="truncated"))
    fresh = make_batch(qwen, 4, n_prompts=4)[0]
    full = expected(qwen_token_bytes, fresh, correct, 0)
    grpo = expected(qwen_token_bytes, fresh, correct, 0, ratio=0.0)  # nothing selected
    ended = ~data.batch["response_mask"].bool()[:, -1]
    spared = ~correct & ended  # failed and not cut: GRPO's advantage stands
    assert spared.any() and (~spared).any()
    adv = got.batch["advantages"]
    torch.testing.assert_close(adv[spared], grpo[spared])
    torch.testing.assert_close(adv[~spared], full[~spared])
    assert not torch.equal(full[spared] == 0, grpo[spared] == 0)  # the shield changed them


def test_import_verl_alone_registers_sas_through_the_entry_point():
    code = (
        "import sys, verl\n"
        "assert 'sas_core.integrations.verl.plugin' in sys.modules\n"
        "from verl.trainer.ppo import core_algos\n"
        "print('sas' in core_algos.ADV_ESTIMATOR_REGISTRY)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "True", out.stderr[-2000:]


def test_other_verl_release_keeps_verl_working_and_refuses_sas_at_start():
    """sas-core installed beside a verl it does not know: verl imports and trains with
    other estimators; asking for sas fails when the trainer is built, naming versions."""
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from sas_core import requirements\n"
        "requirements.MINIMUM['verl'] = ('0.10', '0.11')  # as if this verl were unknown\n"
        "import verl\n"
        "from verl.trainer.ppo import core_algos, ray_trainer as rt\n"
        "from sas_core.integrations.verl.estimator import UnsupportedVerl, is_installed\n"
        "from sas_core.demo.tiny import build_tokenizer\n"
        "from verl_helpers import build_trainer\n"
        "assert not is_installed()\n"
        "build_trainer(build_tokenizer(), ['algorithm.adv_estimator=grpo'])  # unaffected\n"
        "try:\n"
        "    build_trainer(build_tokenizer(), ['algorithm.adv_estimator=sas'])\n"
        "except UnsupportedVerl as e:\n"
        "    print('refused:', e)\n"
        "try:\n"
        "    core_algos.get_adv_estimator_fn('sas')()\n"
        "except UnsupportedVerl:\n"
        "    print('estimator refuses too')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "refused: verl 0.9.1 is installed; sas-core supports verl>=0.10,<0.11" in out.stdout
    assert "estimator refuses too" in out.stdout


def test_unknown_verl_version_is_refused(monkeypatch):
    monkeypatch.setattr(verl, "__version__", "0.10.0")
    want = r"^verl 0\.10\.0 is installed; sas-core supports verl>=0\.9,<0\.10"
    with pytest.raises(estimator.UnsupportedVerl, match=want):
        estimator.check_verl_version()


SCRIPT = Path(__file__).resolve().parents[1] / "integrations" / "verl" / "train_deepscaler_4k.sh"


def _dry_run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SAS_VERL_DRY_RUN": "1", "PYTHON": sys.executable}
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=300, env=env
    )


def test_example_dry_run_composes_verls_config_with_the_papers_settings():
    out = _dry_run("sas")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "algorithm.adv_estimator=sas" in out.stdout
    assert "VerlSASOptions(ratio=0.3, mode='both', selection='confidence'" in out.stdout
    settings = ("data.max_response_length=4096", "actor_rollout_ref.rollout.n=8", "V1 trainer")
    for setting in settings:
        assert setting in out.stdout
    for flag in ("actor_rollout_ref.actor.optim.lr=1e-6", "data.train_batch_size=128"):
        assert flag in out.stdout.splitlines()[0]
    legacy = _dry_run("sas", "trainer.use_v1=False")
    assert legacy.returncode == 0 and "(legacy trainer)" in legacy.stdout, legacy.stderr[-2000:]
    base = _dry_run("grpo")
    assert base.returncode == 0 and "algorithm.adv_estimator=grpo" in base.stdout
    bad = _dry_run("sas", "+algorithm.sas.ration=0.5")
    assert bad.returncode == 2, bad.stderr[-2000:]
    # One line (not Hydra's 17-line traceback) naming the key.
    assert bad.stderr.strip().splitlines() == [bad.stderr.strip()]
    assert bad.stderr.startswith("dry run: algorithm.sas.ration: unknown SAS option")
    value = _dry_run("sas", "+algorithm.sas.mode=sometimes")
    assert value.returncode == 2 and len(value.stderr.strip().splitlines()) == 1
    assert value.stderr.startswith("dry run: algorithm.sas.mode: must be one of")


@pytest.mark.parametrize("spelling", ["+", "++", ""])
def test_example_takes_a_users_own_sas_option(spelling):
    """The script sets each SAS option; a user's own (with +, ++ or none) wins, where
    Hydra used to refuse the second + with ConfigCompositionException."""
    out = _dry_run("sas", f"{spelling}algorithm.sas.shield=truncated")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "shield='truncated'" in out.stdout
    assert out.stdout.splitlines()[0].count("algorithm.sas.shield=") == 1 or spelling == ""


def test_reward_function_file_scores_with_math_verify():
    pytest.importorskip("math_verify")
    from sas_core.integrations.verl import reward

    path = subprocess.run(
        [sys.executable, "-m", "sas_core.integrations.verl.reward"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.strip()
    assert Path(path).resolve() == Path(reward.__file__).resolve()
    assert reward.compute_score("math", "so \\boxed{\\frac{1}{2}}", "0.5") == 1.0
    assert reward.compute_score("math", "so \\boxed{3}", "0.5") == 0.0
    assert reward.compute_score("math", "no answer", "0.5") == 0.0


def test_trainer_binds_the_tokenizer_sized_to_the_model_and_checks_options_at_start(
    tmp_path, qwen_token_bytes
):
    tok, rows = tiny_model_dir(tmp_path)
    model = f"actor_rollout_ref.model.path={tmp_path}"
    trainer = build_trainer(tok, [model, "algorithm.adv_estimator=sas", "+algorithm.sas.ratio=0.5"])
    assert estimator.bound().vocab_size == rows  # the embedding rows
    with pytest.raises(ValueError, match=r"^algorithm\.sas\.ratio: must be in \[0, 1\]"):
        build_trainer(tok, [model, "algorithm.adv_estimator=sas", "+algorithm.sas.ratio=2"])
    # the call fit makes, on the bound segmenter
    data, _ = text_batch(tok)
    out = advantage_step(trainer, data)
    assert out.meta_info["sas_metrics"]["sas/zeroed_token_frac"] > 0
    # and they reach the metrics fit logs, through verl's own compute_data_metrics
    prompts = torch.ones((8, 3), dtype=torch.long)
    out.batch["prompts"] = prompts
    mask = data.batch["response_mask"]
    out.batch["attention_mask"] = torch.cat([torch.ones_like(prompts), mask], dim=1)
    logged = rt.compute_data_metrics(batch=out, use_critic=False)
    assert logged["sas/zeroed_token_frac"] == out.meta_info["sas_metrics"]["sas/zeroed_token_frac"]
    assert "critic/advantages/mean" in logged  # verl's own metrics are all still there
    assert trainer.config.algorithm.adv_estimator == "sas"


def test_in_a_ray_actor_built_like_verls_task_runner(qwen, qwen_token_bytes):
    """verl starts ``TaskRunner`` as ``ray.remote(num_cpus=1)``; the advantage step runs
    there. The actor only imports verl (the entry point does the rest), builds the legacy
    trainer and makes fit's call."""
    ray = pytest.importorskip("ray")
    import verl_actor

    data, correct = make_batch(qwen, 7)
    want = expected(qwen_token_bytes, data, correct, 0, ratio=0.5)
    # Workers inherit the driver's environment: no runtime_env (its agent is slow to start).
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        runner = ray.remote(num_cpus=1)(verl_actor.TaskRunnerProbe).remote()
        installed, advantages = ray.get(runner.run.remote(data), timeout=600)
    finally:
        ray.shutdown()
    assert installed
    torch.testing.assert_close(advantages, want)
    assert torch.equal(advantages == 0, want == 0)
