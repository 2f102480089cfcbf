"""One contract in one place: the options object, the Rust boundary's parsing, the
public padded call, the segmenter's sizing, and no production import of the oracle."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import sas_core
from sas_core import _core, reference
from sas_core.options import SASOptions, schema
from sas_core.segmenter import StepSegmenter, model_vocab_rows

import padded_reference

VOCAB = [b"a", b"b", b"\n\n", b"\n", b"c."]
CHOICES = {o.name: o.choices for o in schema()}
MODES, SELECTIONS, GRANULARITIES = CHOICES["mode"], CHOICES["selection"], CHOICES["granularity"]


def test_defaults_are_the_papers_and_values_match_the_oracle():
    o = SASOptions()
    assert (o.ratio, o.mode, o.selection, o.granularity) == (0.3, "both", "confidence", "step")
    assert o.nonfinite == "raise"  # the library default; integrations choose "keep"
    assert (MODES, SELECTIONS, GRANULARITIES) == (
        reference.MODES,
        reference.SELECTIONS,
        reference.GRANULARITIES,
    )


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("ratio", 1.5, ValueError),
        ("ratio", float("nan"), ValueError),
        ("ratio", True, TypeError),
        ("ratio", "0.3", TypeError),
        ("mode", "all", ValueError),
        ("mode", 1, TypeError),
        ("selection", "top", ValueError),
        ("granularity", "line", ValueError),
        ("seed", -1, ValueError),
        ("seed", 2**64, ValueError),
        ("seed", 1.0, TypeError),
        ("correct_threshold", float("inf"), ValueError),
        ("nonfinite", "ignore", ValueError),
        ("shield", "some", ValueError),
        ("think_end", 5, TypeError),
    ],
)
def test_bad_values_name_the_option(field, value, error):
    with pytest.raises(error, match=rf"^{field}: "):
        SASOptions(**{field: value})


def test_from_mapping_names_unknown_and_bad_keys_with_their_prefix():
    got = SASOptions.from_mapping({"ratio": 0.5, "mode": "failed"})
    assert got == SASOptions(ratio=0.5, mode="failed")
    with pytest.raises(ValueError, match=r"^algorithm\.sas\.ration: unknown SAS option"):
        SASOptions.from_mapping({"ration": 0.5}, prefix="algorithm.sas.")
    with pytest.raises(ValueError, match=r"^algorithm\.sas\.mode: must be one of"):
        SASOptions.from_mapping({"mode": "all"}, prefix="algorithm.sas.")
    assert SASOptions().replace(ratio=1) == SASOptions(ratio=1.0)
    with pytest.raises(ValueError, match=r"^ratio: "):
        SASOptions().replace(ratio=2)


def _raw_args():
    return (
        np.array([0, 0, 1], dtype=np.int32),
        np.array([-1.0, -2.0, -0.5]),
        np.array([0, 3], dtype=np.int64),
        np.array([True]),
    )


def _unchecked(**changes):
    """An options object that skips SASOptions' checks: what only the binding sees."""
    return SimpleNamespace(**{**asdict(SASOptions()), **changes})


@pytest.mark.parametrize(
    ("name", "value"),
    [("mode", "all"), ("selection", "top"), ("granularity", "line"), ("nonfinite", "skip")],
)
def test_rust_boundary_reads_the_options_object_and_parses_its_strings(name, value):
    with pytest.raises(ValueError, match=rf"^{name}: must be one of"):
        _core.keep_mask(*_raw_args(), _unchecked(**{name: value}))
    with pytest.raises(TypeError, match=f"{name}: must be a string"):
        _core.keep_mask(*_raw_args(), _unchecked(**{name: 7}))
    partial = _unchecked()
    del partial.__dict__[name]
    with pytest.raises(TypeError, match=rf"^options: .*no attribute `{name}`"):
        _core.keep_mask(*_raw_args(), partial)
    with pytest.raises(TypeError, match=r"^seed: must be an integer in \[0, 2\*\*64\)"):
        _core.keep_mask(*_raw_args(), _unchecked(seed=-1))
    with pytest.raises(TypeError, match=r"^ratio: must be a float"):
        _core.keep_mask(*_raw_args(), _unchecked(ratio="0.3"))
    # The binding reads the attributes: the same options give the same mask whichever
    # object carries them.
    keep = _core.keep_mask(*_raw_args(), SASOptions(ratio=0.5))[0]
    assert np.array_equal(keep, _core.keep_mask(*_raw_args(), _unchecked(ratio=0.5))[0])


def test_the_stub_takes_its_literal_types_from_the_options_module():
    stub = (Path(sas_core.__file__).with_name("_core.pyi")).read_text()
    assert (
        "from sas_core.options import Delimiter, Granularity, Mode, NonFinite, SelectionRule"
        in stub
    )
    assert "Literal[" not in stub  # written once, in sas_core.options
    for call in ("def sas_mask(", "def sas_padded(", "def keep_mask("):
        signature = stub[stub.index(call) : stub.index(")", stub.index(call))]
        assert "options: SelectOptions" in signature and "ratio" not in signature


def test_rust_boundary_takes_nonfinite_from_the_options_object():
    ids, lps, cu, correct = _raw_args()
    lps[1] = np.nan
    with pytest.raises(ValueError, match=r"^logprobs: must be finite, got NaN at position 1"):
        _core.keep_mask(ids, lps, cu, correct, _unchecked(ratio=0.5, nonfinite="raise"))
    keep, n_units, n_selected = _core.keep_mask(
        ids, lps, cu, correct, _unchecked(ratio=0.5, nonfinite="keep")
    )
    assert keep.all() and (n_units.tolist(), n_selected.tolist()) == ([2], [0])


def test_rust_boundary_names_wrong_dtypes_and_dimensions():
    seg = StepSegmenter(VOCAB)
    ids, lps, cu, correct = _raw_args()
    opts = SASOptions()
    with pytest.raises(TypeError, match=r"^token_ids: must be a numpy array of int32 or int64"):
        seg._table.sas_mask(ids.astype(np.float64), lps, cu, correct, opts)
    with pytest.raises(TypeError, match=r"^logprobs: must be a numpy array of float32 or float64"):
        seg._table.sas_mask(ids, lps.astype(np.int64), cu, correct, opts)
    with pytest.raises(TypeError, match=r"^token_ids: must be a 1-D numpy array"):
        seg._table.sas_mask(ids[None, :], lps, cu, correct, opts)
    with pytest.raises(TypeError, match=r"^response_ids: must be a 2-D numpy array"):
        seg._table.sas_padded(ids, lps[None, :], np.ones((1, 3), bool), correct, opts)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
def test_unit_key_from_the_core_equals_the_reference(seed, rollout, unit):
    assert _core.unit_key(seed, rollout, unit) == reference.unit_key(seed, rollout, unit)


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    rows=st.integers(2, 4),
    width=st.integers(1, 30),
    ratio=st.sampled_from([0.0, 0.3, 0.5, 1.0]),
    granularity=st.sampled_from(GRANULARITIES),
    mode=st.sampled_from(MODES),
    id_dtype=st.sampled_from([np.int32, np.int64]),
    lp_dtype=st.sampled_from([np.float32, np.float64]),
)
def test_numpy_padded_call_equals_the_reference(
    data, rows, width, ratio, granularity, mode, id_dtype, lp_dtype
):
    """``sas_advantages`` on numpy arrays (one group of ``rows`` rollouts whose rewards
    1, 2, 4, ... never equal their mean, so every GRPO advantage is non-zero)."""
    seg = StepSegmenter(VOCAB)
    cells = rows * width
    ids = np.array(data.draw(st.lists(st.integers(0, 4), min_size=cells, max_size=cells)))
    lps = -np.array(data.draw(st.lists(st.integers(0, 40), min_size=cells, max_size=cells))) / 8
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=cells, max_size=cells)))
    correct = np.array(data.draw(st.lists(st.booleans(), min_size=rows, max_size=rows)))
    ids, lps, mask = (a.reshape(rows, width) for a in (ids, lps, mask))
    rewards = 2.0 ** np.arange(rows)
    out, stats = sas_core.sas_advantages(
        ids.astype(id_dtype), lps.astype(lp_dtype), mask, rewards, rows, seg,
        correct=correct, ratio=ratio, mode=mode, granularity=granularity,
    )  # fmt: skip
    assert out.dtype == lp_dtype and isinstance(out, np.ndarray)
    adv = sas_core.grpo_advantages(rewards, rows).astype(lp_dtype)
    assert (adv != 0).all()
    keep = ~(mask & (out == 0))
    np.testing.assert_array_equal(out, np.where(keep & mask, adv[:, None], 0))
    want = padded_reference.keep_mask(
        VOCAB,
        torch.from_numpy(ids),
        torch.from_numpy(lps.astype(lp_dtype)),
        torch.from_numpy(mask),
        correct.tolist(),
        ratio=ratio,
        mode=mode,
        selection="confidence",
        granularity=granularity,
    )
    np.testing.assert_array_equal(keep, want.numpy())
    tokens = np.maximum(mask.sum(axis=1), 1)
    frac = ((~keep & mask).sum(axis=1) / tokens).mean()
    assert stats["sas/zeroed_token_frac"] == pytest.approx(frac)
    assert out.shape == (rows, width)


def test_for_model_sizes_the_segmenter_to_the_embedding_rows(tmp_path):
    from transformers import Qwen2Config

    from sas_core.demo.tiny import build_tokenizer

    tok = build_tokenizer()
    plain = StepSegmenter.from_tokenizer(tok)
    config = Qwen2Config(vocab_size=len(tok) + 7, hidden_size=8, num_attention_heads=2)
    for model in (config, len(tok) + 7):
        seg = StepSegmenter.for_model(tok, model)
        assert seg.vocab_size == len(tok) + 7 > plain.vocab_size
        assert seg.token_bytes == plain.token_bytes
    # a sampled padding id segments (as a token with no bytes) instead of failing
    pad_id = len(tok) + 3
    seg = StepSegmenter.for_model(tok, config)
    assert seg.segment(np.array([pad_id, pad_id]), np.array([0, 2])).tolist() == [0, 0]
    with pytest.raises(ValueError, match="token_ids"):
        plain.segment(np.array([pad_id]), np.array([0, 1]))
    # a local config folder; a folder without one leaves the tokenizer's size
    config.save_pretrained(tmp_path / "model")
    assert model_vocab_rows(tmp_path / "model") == len(tok) + 7
    assert StepSegmenter.for_model(tok, str(tmp_path / "nothing")).vocab_size == plain.vocab_size
    assert StepSegmenter.for_model(tok, None).vocab_size == plain.vocab_size
    # never smaller than the tokenizer
    assert StepSegmenter.for_model(tok, 3).vocab_size == plain.vocab_size


def test_selection_result_has_one_name():
    assert not hasattr(sas_core, "Selection")  # no deprecated alias before a release
    got = sas_core.select_steps(*_raw_args())
    assert isinstance(got, sas_core.StepSelection)


def test_production_modules_do_not_import_the_test_oracle():
    code = (
        "import sys\n"
        "import sas_core, sas_core.cli, sas_core.torch_api, sas_core.stats\n"
        "import sas_core.integrations.trl\n"
        "try:\n"
        "    import sas_core.integrations.openrlhf.estimator\n"
        "except ImportError:\n"
        "    pass\n"
        "oracles = ('sas_core.reference', 'sas_core.tools.numpy_mask')\n"
        "print(any(m in sys.modules for m in oracles))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip().splitlines()[-1] == "False", out.stderr
