"""Reliability, round 4: the one trainer step, the CLI and the helpers read their inputs
as strictly as the rest. Each test is one defect a hostile-user campaign found: a silent
wrong result, an error that did not name its argument, a traceback where the command
line promises one line and exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import sas_core
from sas_core import SASOptions
from sas_core.torch_api import sas_advantages, sas_batch_step

VOCAB = [b"a", b"\n", b".\n\n", b" b"]
SEG = sas_core.StepSegmenter(VOCAB)
IDS = torch.tensor([[0, 2, 3, 0], [2, 3, 1, 2]])
LPS = torch.tensor([[-1.0, -2.0, -0.5, -1.0], [-0.25, -4.0, -1.5, -0.75]])
MASK = torch.ones((2, 4), dtype=torch.bool)
SCORES = torch.tensor([0.0, 0.0])  # both failed: the shield decides what is zeroed


def _step(**kw):
    args = dict(
        response_ids=IDS, logprobs=LPS, action_mask=MASK, advantages=torch.ones(2),
        scores=SCORES, segmenter=SEG, options=SASOptions(ratio=0.5),
    )  # fmt: skip
    args.update(kw)
    return sas_batch_step(**args)


def _named(exc: pytest.ExceptionInfo, name: str) -> None:
    assert str(exc.value).startswith(f"{name}: "), str(exc.value)


# 1. truncated= is read as flags, like correct: only bools or 0/1
@pytest.mark.parametrize(
    "value",
    [["False", "False"], [float("nan"), 0.0], [0.4, 0.0], [2, 0], [-1, 0],
     np.array([0.0, 1.0]), torch.tensor([0.0, 1.0]), torch.tensor([2, 0]),
     torch.tensor([1.0, 0.0], dtype=torch.bfloat16), torch.empty(2, device="meta")],
)  # fmt: skip
def test_truncated_refuses_what_is_not_a_flag(value):
    opts = SASOptions(ratio=0.5, shield="truncated")
    with pytest.raises((TypeError, ValueError)) as e:
        _step(truncated=value, options=opts)
    _named(e, "truncated")


@pytest.mark.parametrize("value", [[False, True], [0, 1], np.array([0, 1]), torch.tensor([0, 1])])
def test_truncated_takes_bools_and_zero_one(value):
    step = _step(truncated=value, options=SASOptions(ratio=0.5, shield="truncated"))
    # the first failed rollout was not cut: it keeps its whole advantage
    assert torch.equal(step.advantages[0], torch.ones(4))
    assert not torch.equal(step.advantages[1], torch.ones(4))
    assert step.stats()["sas/truncated_failed"] == 0.5


# 2. every torch call reads action_mask by the numpy rule
BAD_MASKS = {
    "nan": torch.tensor([[1.0, float("nan"), 1.0, 1.0]] * 2),
    "inf": torch.tensor([[1.0, float("inf"), 1.0, 1.0]] * 2),
    "minus-one": torch.tensor([[1, -1, 1, 1]] * 2),
    "two": torch.tensor([[1, 2, 1, 1]] * 2),
    "complex": torch.ones((2, 4), dtype=torch.complex64),
    "half": torch.tensor([[1.0, 0.5, 1.0, 1.0]] * 2),
}
TORCH_CALLS = {
    "sas_batch_step": lambda m: _step(action_mask=m),
    "sas_advantages": lambda m: sas_advantages(IDS, LPS, m, torch.tensor([1.0, 0.0]), 2, SEG),
}
REWARDS = np.array([1.0, 0.0])


def _numpy_call(mask: np.ndarray) -> np.ndarray:
    """The padded call on numpy arrays."""
    return sas_advantages(IDS.numpy(), LPS.numpy(), mask, REWARDS, 2, SEG, ratio=0.5)[0]


@pytest.mark.parametrize("mask", list(BAD_MASKS))
@pytest.mark.parametrize("call", list(TORCH_CALLS))
def test_torch_calls_refuse_a_mask_numpy_refuses(call, mask):
    with pytest.raises(TypeError, match=r"^action_mask: must be booleans \(or 0/1\)"):
        TORCH_CALLS[call](BAD_MASKS[mask])
    # the numpy padded call gives the same error for the same values
    values = BAD_MASKS[mask].numpy()
    with pytest.raises(TypeError, match=r"^action_mask: must be booleans \(or 0/1\)"):
        _numpy_call(values)


@pytest.mark.parametrize("dtype", [torch.long, torch.uint8, torch.float32, torch.float16])
def test_a_zero_one_mask_of_any_number_type_is_the_bool_mask(dtype):
    mask = MASK.clone()
    mask[1, 3] = False
    got = _step(action_mask=mask.to(dtype))
    assert torch.equal(got.advantages, _step(action_mask=mask).advantages)
    got = _numpy_call(mask.to(dtype).numpy())
    assert np.array_equal(got, _numpy_call(mask.numpy()))
    assert (got[mask.numpy()] == 0).any()  # something selected


# 3. per-rollout advantages must be finite (NaN used to land on padding and zeros)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_per_rollout_advantages_must_be_finite(bad):
    with pytest.raises(ValueError) as e:
        _step(advantages=torch.tensor([bad, 1.0]))
    _named(e, "advantages")


# 4, 6, 8. complex, meta, bfloat16 and non-numeric inputs: refused by name, or read right
@pytest.mark.parametrize(
    ("name", "value"),
    [("scores", torch.tensor([1j, 2 + 5j])), ("scores", np.array([1j, 2 + 5j])),
     ("scores", ["1", "0"]), ("scores", torch.empty(2, device="meta")),
     ("advantages", torch.ones(2, dtype=torch.complex64)),
     ("advantages", torch.ones((2, 4), dtype=torch.complex64)),
     ("advantages", torch.empty(2, device="meta")),
     ("advantages", torch.ones(2, dtype=torch.long)),
     ("advantages", [1.0, 1.0])],
)  # fmt: skip
def test_unreadable_scores_and_advantages_are_refused_by_name(name, value):
    with pytest.raises((TypeError, ValueError)) as e:
        _step(**{name: value})
    _named(e, name)


def test_bfloat16_scores_are_read_as_numbers():
    got = _step(scores=torch.tensor([1.0, 0.0], dtype=torch.bfloat16))
    want = _step(scores=torch.tensor([1.0, 0.0]))
    assert torch.equal(got.advantages, want.advantages)
    assert got.stats()["sas/correct"] == 0.5


# 7. call and index are counts; so is seed
NOT_COUNTS = [-1, 2**64, 2**70, 1.0, 0.5, None, True, "3", np.float64(2)]


@pytest.mark.parametrize(
    ("name", "value"),
    # seed=None is the default (derived from call and index)
    [(n, v) for n in ("call", "index", "seed") for v in NOT_COUNTS if (n, v) != ("seed", None)],
)
def test_call_index_and_seed_are_counts(name, value):
    with pytest.raises((TypeError, ValueError)) as e:
        _step(**{name: value})
    _named(e, name)


def test_call_index_and_seed_take_numpy_integers_up_to_u64():
    opts = SASOptions(ratio=0.5, selection="random", seed=3)
    a = _step(call=np.int64(5), index=np.uint8(1), options=opts)
    b = _step(call=5, index=1, options=opts)
    assert torch.equal(a.advantages, b.advantages)
    top = 2**64 - 1
    assert _step(call=top, index=top, seed=top, options=opts).advantages.shape == (2, 4)


# 9. window is a length: numpy and one-element tensor integers too
@pytest.mark.parametrize("window", [3, np.int64(3), torch.tensor(3), torch.tensor([3])])
def test_window_takes_any_integer(window):
    opts = SASOptions(ratio=0.5, shield="truncated")
    got = _step(window=window, options=opts)
    assert torch.equal(got.advantages, _step(window=3, options=opts).advantages)


@pytest.mark.parametrize("window", [-1, 2.0, torch.tensor(3.0), torch.tensor([1, 2]), True, "3"])
def test_window_refuses_what_is_not_a_length(window):
    with pytest.raises((TypeError, ValueError)) as e:
        _step(window=window, options=SASOptions(shield="truncated"))
    _named(e, "window")


# 10. the helpers name their argument
@pytest.mark.parametrize(
    "offsets",
    [[[(0.0, 1.5)]], [[(0, 1.0)]], [[(True, 1)]], [[5]], [["ab"]], [3], [[(0, "1")]]],
)
def test_segment_offsets_refuses_spans_that_are_not_integer_pairs(offsets):
    with pytest.raises((TypeError, ValueError)) as e:
        sas_core.segment_offsets(["ab"], offsets)
    _named(e, "offsets")


def test_segment_offsets_takes_numpy_integer_spans():
    text, spans = "a\n\nb", [(0, 1), (1, 3), (3, 4)]
    got = sas_core.segment_offsets([text], [np.array(spans)])[0].tolist()
    assert got == sas_core.segment_offsets([text], [spans])[0].tolist() == [0, 0, 1]


@pytest.mark.parametrize("algorithm", ["ratio=0.9", b"sas", 0.9, ["ratio", 0.9]])
def test_verl_options_refuse_an_algorithm_that_is_not_a_config(algorithm):
    from sas_core.integrations.verl.options import VerlSASOptions

    with pytest.raises(TypeError) as e:
        VerlSASOptions.from_algorithm(algorithm)
    _named(e, "algorithm")


@pytest.mark.parametrize("think_end", [5, b"</think>", [5], ["</think>", None]])
def test_from_tokenizer_names_think_end(think_end):
    from transformers import PreTrainedTokenizerFast

    from sas_core.demo.tiny import build_tokenizer

    tok = build_tokenizer()
    assert isinstance(tok, PreTrainedTokenizerFast)
    with pytest.raises(TypeError) as e:
        sas_core.StepSegmenter.from_tokenizer(tok, think_end=think_end)
    _named(e, "think_end")


@pytest.mark.parametrize("rows", [2**70, 2**31, -1])
def test_for_model_names_the_model_argument(rows):
    from sas_core.demo.tiny import build_tokenizer

    with pytest.raises(ValueError) as e:
        sas_core.StepSegmenter.for_model(build_tokenizer(), rows)
    _named(e, "model")


# 13. a new worker's first comparison does not pay math-verify's lazy loading
def test_the_verifier_worker_warms_up_on_real_latex():
    pytest.importorskip("math_verify")
    from sas_core.math_reward import WARM_UP, _warm_up

    assert _warm_up()  # its pairs are equal, and math-verify says so
    assert any("\\fbox" in pred for pred, _ in WARM_UP)


def test_json_correct_must_be_a_bool(tmp_path):
    """Item 5, at the library level: the CLI reads it (tests/test_cli_errors.py)."""
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"response": "a", "logprobs": [0.0], "correct": "false"}) + "\n")
    from sas_core.cli import main

    assert main(["inspect", str(path), "--out", str(tmp_path / "o.html")]) == 2
    assert not (tmp_path / "o.html").exists()
