"""SASGRPOTrainer (TRL 1.x) on a tiny model on CPU: advantages against the reference."""

from __future__ import annotations

import random

import pytest
import torch

from sas_core.stats import NAMES as STAT_NAMES

pytest.importorskip("trl")

import sas_core
from sas_core import SASOptions, sas_batch_step
from sas_core.demo.sft import supervised_warmup
from sas_core.demo.task import sample_problem
from sas_core.demo.tiny import build_model, build_tokenizer
from sas_core.integrations.trl import SASGRPOConfig, SASGRPOTrainer

import padded_reference


def parity(completions, **_):
    """A stand-in verifier with a mix of passes and failures from any policy."""
    return [float(len(c) % 2) for c in completions]


class Recording(SASGRPOTrainer):
    """Keeps what the trainer computed, and the gradient of the loss w.r.t. advantages."""

    def _generate_and_score_completions(self, inputs):
        out = super()._generate_and_score_completions(inputs)
        rec = {k: v for k, v in out.items() if isinstance(v, torch.Tensor)}
        rec["rewards"] = self._sas_rewards_per_func.clone()
        rec["logps"] = self._rollout_logprobs(out)
        self.batches = [*getattr(self, "batches", []), rec]
        self.recorded = rec
        return out


@pytest.fixture(scope="module")
def warm_state():
    """A tiny model briefly warmed up on worked solutions, so rollouts have steps and
    a mix of right and wrong answers."""
    tok = build_tokenizer()
    model = build_model(tok, hidden=48, layers=2, seed=0)
    supervised_warmup(model, tok, steps=150, batch_size=32, lr=3e-3, seed=0, terms=(3, 4))
    return model.state_dict()


def _trainer(tmp_path, warm_state, **sas):
    from datasets import Dataset

    tok = build_tokenizer()
    model = build_model(tok, hidden=48, layers=2, seed=0)
    model.load_state_dict(warm_state)
    rng = random.Random(0)
    problems = [sample_problem(rng, 3, 4) for _ in range(8)]
    data = Dataset.from_dict(
        {"prompt": [p.prompt for p in problems], "answer": [p.answer for p in problems]}
    )
    args = SASGRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=8,
        num_generations=4,
        max_completion_length=40,
        max_steps=2,
        learning_rate=1e-3,
        beta=0.0,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
        seed=0,
        correctness_reward="parity",
        **sas,
    )
    return Recording(
        model=model, reward_funcs=[parity], args=args, train_dataset=data, processing_class=tok
    )


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"ratio": 0.5},
        {"mode": "failed", "ratio": 0.5},
        {"granularity": "token"},
        {"mode": "correct"},
        {"shield": "truncated", "ratio": 0.5},
    ],
)
def test_per_token_advantages_equal_reference(tmp_path, warm_state, options):
    trainer = _trainer(tmp_path, warm_state, **options)
    trainer.train()
    assert len(trainer.batches) == 2
    zeroed_with_signal = 0
    for rec in trainer.batches:
        zeroed_with_signal += _check_batch(trainer, rec, options)
    # Not vacuous: SAS zeroed tokens of rollouts that carry an advantage. (Not asserted
    # where it depends on the sampled batch: mode "correct" needs a correct rollout with
    # 4+ steps, the default ratio 0.3 a rollout with 4+ steps.)
    if options.get("ratio", 0.3) >= 0.5 or options.get("granularity") == "token":
        assert zeroed_with_signal > 0
    if options.get("shield") == "truncated":  # the shield spared tokens SAS would zero
        assert trainer.spared > 0
    logged = [h for h in trainer.state.log_history if "sas/zeroed_token_frac" in h]
    assert len(logged) == 2  # one per step, through TRL's own metrics logging
    assert any(h["sas/steps"] > 1 for h in logged)
    # One vocabulary: every statistic of sas_core.stats (truncation: no EOS, TRL's rule)
    assert set(STAT_NAMES) <= set(logged[0])


def _check_batch(trainer, rec, options) -> int:
    """Asserts the batch's advantages equal the reference; returns the tokens zeroed in
    rollouts with a nonzero advantage."""
    ids, mask = rec["completion_ids"], rec["completion_mask"].bool()
    logps = rec["logps"].double()
    adv = rec["advantages"]
    assert adv.shape == ids.shape  # per-token advantages (B, T)

    # TRL's own rollout advantage: group-normalised raw rewards, unbiased std, eps 1e-4.
    rewards = rec["rewards"][:, 0].double()
    grouped = rewards.view(-1, 4)
    std = grouped.std(1, keepdim=True)
    rollout_adv = ((grouped - grouped.mean(1, keepdim=True)) / (std + 1e-4)).flatten()

    seg = trainer.sas_segmenter
    opts = {"ratio": 0.3, "mode": "both", "granularity": "step", **options}
    keep = padded_reference.keep_mask(
        seg.token_bytes,
        ids,
        logps.float(),  # the trainer's float32 log-probs, as the core reads them
        mask,
        (rewards > 0.5).tolist(),
        vocab_size=seg.vocab_size,
        ratio=opts["ratio"],
        mode=opts["mode"],
        granularity=opts["granularity"],
    )
    if opts.get("shield") == "truncated":  # failed rollouts that ended with EOS: spared
        ends = {trainer.processing_class.eos_token_id, trainer.processing_class.pad_token_id}
        for i in range(ids.shape[0]):
            body = ids[i][mask[i]].tolist()
            truncated = bool(body) and body[-1] not in ends
            if rewards[i] <= 0.5 and not truncated:
                trainer.spared = getattr(trainer, "spared", 0) + int((~keep[i] & mask[i]).sum())
                keep[i] = True
    want = torch.where(keep & mask, rollout_adv[:, None], 0.0)
    zeroed = int((~keep & (rollout_adv[:, None] != 0)).sum())
    torch.testing.assert_close(adv.double(), want, rtol=1e-5, atol=1e-5)
    return zeroed


def test_zeroed_steps_get_no_gradient(tmp_path, warm_state):
    """TRL's loss gives exactly zero gradient to the tokens of steps SAS zeroed, and a
    nonzero one to all other completion tokens."""
    trainer = _trainer(tmp_path, warm_state, ratio=0.5)
    trainer.train()
    # The recorded batch with the most steps; advantages rebuilt with a signal in every
    # rollout (alternating correct and failed), so every zero comes from SAS.
    rec = max(trainer.batches, key=lambda r: r["completion_mask"].sum())
    b = rec["completion_ids"].shape[0]
    step = sas_batch_step(
        rec["completion_ids"],
        rec["logps"],
        rec["completion_mask"],
        torch.ones(b, dtype=rec["logps"].dtype),
        (torch.arange(b) % 2 == 0).float(),
        trainer.sas_segmenter,
        SASOptions(ratio=0.5),
    )
    adv = step.advantages
    assert step.stats()["sas/zeroed_token_frac"] > 0
    inputs = {k: v for k, v in rec.items() if k not in ("rewards", "logps")}
    inputs["advantages"] = adv
    inputs["num_items_in_batch"] = rec["completion_mask"].sum()
    captured = {}
    original = trainer._get_per_token_logps_and_entropies

    def spy(*args, **kwargs):
        logps, entropies, aux = original(*args, **kwargs)
        logps.retain_grad()
        captured["logps"] = logps
        return logps, entropies, aux

    trainer._get_per_token_logps_and_entropies = spy
    trainer.model.train()
    loss = trainer._compute_loss(trainer.model, inputs)
    loss.backward()
    grad = captured["logps"].grad
    mask = rec["completion_mask"].bool()
    zeroed, kept = mask & (adv == 0), mask & (adv != 0)
    assert zeroed.any() and kept.any()
    assert torch.all(grad[zeroed] == 0)
    assert torch.all(grad[kept] != 0)


def test_config_rejects_bad_options(tmp_path):
    with pytest.raises(ValueError, match=r"^ratio:"):
        SASGRPOConfig(output_dir=str(tmp_path), ratio=1.5, use_cpu=True, report_to=[])
    with pytest.raises(ValueError, match=r"^mode:"):
        SASGRPOConfig(output_dir=str(tmp_path), mode="all", use_cpu=True, report_to=[])
    with pytest.raises(ValueError, match=r"^nonfinite:"):
        SASGRPOConfig(output_dir=str(tmp_path), nonfinite="skip", use_cpu=True, report_to=[])
    with pytest.raises(ValueError, match=r"^shield:"):
        SASGRPOConfig(output_dir=str(tmp_path), shield="failed", use_cpu=True, report_to=[])
    assert SASGRPOConfig(output_dir=str(tmp_path), use_cpu=True, report_to=[]).nonfinite == "keep"


# A fixed observation from the environment, with no blank line at either seam: read as
# one text, a step would run from the model's first turn across it into the second.
OBSERVATION = " ok, 42 "


def _rollout_with_observation(prompts, trainer):
    """A ``rollout_func`` of two model turns around a fixed observation: ``env_mask`` 0
    on the observation's tokens, which get a log-prob placeholder of 0.0."""
    tok, model = trainer.processing_class, trainer.model
    obs = tok(OBSERVATION, add_special_tokens=False)["input_ids"]
    out = {"prompt_ids": [], "completion_ids": [], "logprobs": [], "env_mask": []}
    with torch.no_grad():
        for prompt in prompts:
            ids = tok(prompt, add_special_tokens=False)["input_ids"]
            turns = []
            for _ in range(2):
                context = torch.tensor([ids + [t for turn in turns for t in turn]])
                new = model.generate(
                    context, max_new_tokens=14, do_sample=True, pad_token_id=tok.pad_token_id
                )[0, context.shape[1] :].tolist()
                turns.append(new if not turns else obs + new)
            completion = turns[0] + turns[1]
            mask = [1] * len(turns[0]) + [0] * len(obs) + [1] * (len(turns[1]) - len(obs))
            logits = model(torch.tensor([ids + completion])).logits[0, len(ids) - 1 : -1]
            lps = logits.log_softmax(-1).gather(1, torch.tensor(completion)[:, None])[:, 0]
            out["prompt_ids"].append(ids)
            out["completion_ids"].append(completion)
            out["logprobs"].append([lp if m else 0.0 for lp, m in zip(lps.tolist(), mask)])
            out["env_mask"].append(mask)
    return out


def test_env_mask_of_a_rollout_func_is_the_mask_sas_reads(tmp_path, warm_state, monkeypatch):
    """TRL's loss mask (``completion_mask`` times the ``env_mask`` of a ``rollout_func``)
    is what SAS reads: the advantages equal the turn-aware reference on it, observation
    tokens are in no step and get advantage 0; and reading the rollout as one text
    (the observation's tokens dropped) would give other steps in some rollouts."""
    monkeypatch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")
    trainer = _trainer(tmp_path, warm_state, ratio=0.5)
    trainer.rollout_func = _rollout_with_observation
    trainer.train()
    assert len(trainer.batches) == 2
    differs = 0
    for rec in trainer.batches:
        assert "tool_mask" in rec and not rec["tool_mask"].bool().all()
        loss_mask = rec["completion_mask"].bool() & rec["tool_mask"].bool()
        rec_on_loss_mask = {**rec, "completion_mask": loss_mask}
        _check_batch(trainer, rec_on_loss_mask, {"ratio": 0.5})
        observation = rec["completion_mask"].bool() & ~rec["tool_mask"].bool()
        assert (rec["advantages"][observation] == 0).all()
        seg = trainer.sas_segmenter
        for i in range(loss_mask.shape[0]):
            ids = rec["completion_ids"][i][loss_mask[i]].tolist()
            one_text = sas_core.reference.segment(
                seg.token_bytes, ids, [0, len(ids)], vocab_size=seg.vocab_size
            )
            turns = sas_core.reference.segment(
                seg.token_bytes, ids, [0, len(ids)], vocab_size=seg.vocab_size,
                turn_starts=padded_reference.turn_starts(loss_mask[i : i + 1]),
            )  # fmt: skip
            differs += one_text != turns
    assert differs > 0
