"""Regression tests for the defects found by differential fuzzing and the bad-input
matrix (issue "One contract, one place", defects 1-9). Each test failed before its fix."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import sas_core
from sas_core import StepSegmenter
from sas_core.options import SASOptions

torch = pytest.importorskip("torch")


def _batch():
    seg = StepSegmenter([b"a", b"\n\n"])
    ids = np.array([0, 1, 0, 1, 0])
    cu = np.array([0, 5])
    lp = np.array([-1, -1, -1 - 1e-12, -1 - 1e-12, -1 - 2e-12])
    return seg, ids, cu, lp


# 1. Any float64 layout gives what native float64 gives.
@pytest.mark.parametrize("dtype", [">f8", "<f8", np.longdouble])
def test_float64_layouts_select_like_native(dtype):
    seg, ids, cu, lp = _batch()
    want = seg.select_steps(ids, lp, cu, [True], ratio=0.34).keep
    assert want.tolist() == [True, True, True, True, False]
    got = seg.select_steps(ids, lp.astype(dtype), cu, [True], ratio=0.34).keep
    np.testing.assert_array_equal(got, want)


# 2. num_threads is bounded, and so are the pools kept.
@pytest.mark.parametrize("bad", [0, 257, 100_000, 2**70])
def test_num_threads_out_of_range_names_the_argument(bad):
    seg, ids, cu, lp = _batch()
    with pytest.raises(ValueError, match=r"^num_threads: must be in \[1, 256\]"):
        seg.select_steps(ids, lp, cu, [True], num_threads=bad)


def _sas_threads() -> int:
    names = []
    for task in Path("/proc/self/task").iterdir():
        try:
            names.append((task / "comm").read_text().strip())
        except OSError:
            continue
    return sum(n.startswith("sas-core-") for n in names)


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_many_thread_counts_keep_at_most_four_pools():
    rng = np.random.default_rng(0)
    n = 1 << 16  # above the core's parallel threshold
    ids = rng.integers(0, 2, n)
    cu = np.linspace(0, n, 65).astype(np.int64)
    lp = -rng.random(n)
    seg = StepSegmenter([b"a", b"\n\n"])
    want = seg.select_steps(ids, lp, cu, np.ones(64, bool), num_threads=1).keep
    for threads in range(2, 21):
        got = seg.select_steps(ids, lp, cu, np.ones(64, bool), num_threads=threads).keep
        np.testing.assert_array_equal(got, want)
    deadline = time.monotonic() + 10
    while _sas_threads() > 20 + 19 + 18 + 17 and time.monotonic() < deadline:
        time.sleep(0.1)  # threads of dropped pools exit on their own
    assert _sas_threads() <= 20 + 19 + 18 + 17  # before: 2 + 3 + ... + 20 = 209


# 3. A fork while another thread builds a pool leaves a child that works.
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_while_a_pool_is_being_built():
    code = r"""
import os, sys, threading, numpy as np
from sas_core import StepSegmenter
seg = StepSegmenter([b"a", b"\n\n"])
n = 1 << 16
ids = np.random.default_rng(0).integers(0, 2, n); lp = -np.ones(n)
cu = np.linspace(0, n, 33).astype(np.int64); ok = np.ones(32, bool)
stop = threading.Event()
def build():
    t = 2
    while not stop.is_set():
        seg.select_steps(ids, lp, cu, ok, num_threads=t); t = t % 60 + 2
threading.Thread(target=build, daemon=True).start()
for _ in range(10):
    pid = os.fork()
    if pid == 0:
        seg.select_steps(ids, lp, cu, ok, num_threads=3)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert status == 0
stop.set()
print("children ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "children ok" in done.stdout, done.stderr[-2000:]


# 4. Another timeout reuses the shared verifier instead of leaking workers.
def test_shared_verifier_is_not_replaced_by_another_timeout():
    pytest.importorskip("math_verify")
    from sas_core import math_reward

    for t in (1, 2, 3, 4, 5, 1, 2):
        assert math_reward.math_verify_score("\\boxed{1}", "1", timeout=t) == 1.0
    v = math_reward.shared_verifier()
    assert v is math_reward.shared_verifier(timeout=9.0)
    live = [w for w in list(v._idle.queue) if w is not None]
    assert len(live) <= v.workers == 2
    with pytest.raises(ValueError, match=r"^timeout"):
        math_reward.math_verify_score("\\boxed{1}", "1", timeout=0)


# 6. float64 advantages are not rounded through float32.
def test_padded_advantages_keep_float64():
    seg = StepSegmenter([b"a", b"\n\n"])
    ids = torch.tensor([[0, 1, 0], [0, 1, 0], [0, 0, 0]])
    lp = -torch.ones(3, 3, dtype=torch.float64)
    mask = torch.ones(3, 3, dtype=torch.bool)
    adv = torch.tensor([0.1, 1e300, 1e-46], dtype=torch.float64)
    scores, opts = torch.ones(3), SASOptions(ratio=0.0)
    out = sas_core.sas_batch_step(ids, lp.float(), mask, adv, scores, seg, opts).advantages
    assert out.dtype == torch.float64  # the advantages' dtype, whatever the log-probs'
    assert out[0, 0].item() == 0.1 and out[1, 0].item() == 1e300 and out[2, 0].item() == 1e-46
    # Round 3, item 14: float32 cannot hold 1e300; refused by name, never returned as inf.
    with pytest.raises(ValueError, match=r"^advantages: per-rollout advantages must be finite"):
        sas_core.sas_batch_step(ids, lp, mask, adv.float(), scores, seg, opts)


# 7 and 8. Errors name the argument; nothing is silently coerced.
def _padded():
    seg = StepSegmenter([b"a", b"\n\n"])
    ids = torch.zeros(2, 3, dtype=torch.long)
    return seg, ids, -torch.ones(2, 3), torch.ones(2, 3, dtype=torch.bool)


@pytest.mark.parametrize(
    ("call", "error", "pattern"),
    [
        (lambda: StepSegmenter(None), TypeError, r"^token_bytes:"),
        (lambda: StepSegmenter([b"a"], vocab_size=1.5), TypeError, r"^vocab_size:"),
        (lambda: StepSegmenter([b"a"], vocab_size="10"), TypeError, r"^vocab_size:"),
        (lambda: StepSegmenter([b"a"], vocab_size=2**64), ValueError, r"^vocab_size:"),
        (lambda: StepSegmenter([b"a"], think_end_ids=[2**70]), ValueError, r"^think_end_ids:"),
        (lambda: StepSegmenter([b"a"], think_end_ids=["a"]), TypeError, r"^think_end_ids:"),
        (lambda: StepSegmenter([b"a"], think_end_ids=None), TypeError, r"^think_end_ids:"),
        (lambda: StepSegmenter([b"a", b"b"], think_end_ids=[1.7]), TypeError, r"^think_end_ids:"),
        (lambda: StepSegmenter([b"a", b"b"], think_end_ids=[True]), TypeError, r"^think_end_ids:"),
        (lambda: StepSegmenter([b"a"] * 3, think_end_ids="2"), TypeError, r"^think_end_ids:"),
        (lambda: sas_core.grpo_advantages([1.0, 0.0], 2**64), ValueError, r"^group_size:"),
        (lambda: sas_core.grpo_advantages([1.0, 0.0], 2, eps="x"), TypeError, r"^eps:"),
        (
            lambda: sas_core.segment_offsets(["ab"], [[(0, 1, 2)]]),
            ValueError,
            r"^offsets: span 0 must be a",
        ),
        (
            lambda: sas_core.token_advantages([True, False], [True, True], [0, 1, 2]),
            TypeError,
            r"^rollout_advantages:",
        ),
        (
            lambda: sas_core.token_advantages([1 + 2j, 0], [True, True], [0, 1, 2]),
            TypeError,
            r"^rollout_advantages:",
        ),
        (
            lambda: sas_core.token_advantages([math.nan, 0.0], [True, True], [0, 1, 2]),
            ValueError,
            r"^rollout_advantages: must be finite",
        ),
    ],
)
def test_bad_values_name_the_argument(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_padded_bad_input_names_the_argument():
    seg, ids, lp, mask = _padded()
    rewards = torch.tensor([1.0, 0.0])
    with pytest.raises(TypeError, match=r"^segmenter:"):
        sas_core.sas_advantages(ids, lp, mask, rewards, group_size=2, segmenter=None)
    with pytest.raises(TypeError, match=r"^logprobs: a 'meta' tensor"):
        sas_core.sas_advantages(ids, lp.to("meta"), mask, rewards, 2, seg)
    with pytest.raises(TypeError, match=r"^correct_threshold:"):
        sas_core.sas_advantages(ids, lp, mask, rewards, 2, seg, correct_threshold="x")
    with pytest.raises(ValueError, match=r"^correct_threshold: must be finite"):
        sas_core.sas_advantages(ids, lp, mask, rewards, 2, seg, correct_threshold=math.nan)
    opts = SASOptions()
    with pytest.raises(TypeError, match=r"^advantages:"):
        sas_core.sas_batch_step(ids, lp, mask, torch.tensor([1j, 0j]), rewards, seg, opts)
    with pytest.raises(TypeError, match=r"^response_ids:"):
        sas_core.sas_batch_step(
            ids.to(torch.complex64), lp, mask, torch.ones(2), rewards, seg, opts
        )


def test_token_advantages_reads_bf16_and_grad_tensors():
    adv = torch.tensor([0.5, -0.25], dtype=torch.bfloat16, requires_grad=True)
    out = sas_core.token_advantages(adv, [True, False, True], [0, 2, 3])
    np.testing.assert_array_equal(out, np.array([0.5, 0.0, -0.25], dtype=np.float32))


# 9. The fused call returns tensors for tensor input, like the other calls.
def test_fused_select_steps_returns_tensors_for_tensors():
    seg, ids, cu, lp = _batch()
    sel = seg.select_steps(
        torch.from_numpy(ids), torch.from_numpy(lp), torch.from_numpy(cu), [True]
    )
    assert all(isinstance(x, torch.Tensor) for x in sel)
    np.testing.assert_array_equal(sel.keep.numpy(), seg.select_steps(ids, lp, cu, [True]).keep)


# Faults in long runs: nonfinite="keep" leaves a bad rollout unselected, others exact.
def test_nonfinite_keep_leaves_the_bad_rollout_whole_and_the_others_exact():
    g = torch.Generator().manual_seed(1)
    seg = StepSegmenter([b"a", b"b", b"\n\n"])
    ids = torch.randint(0, 3, (6, 20), generator=g)
    lp = -torch.rand(6, 20, generator=g, dtype=torch.float64)
    mask = torch.ones(6, 20, dtype=torch.bool)
    mask[2, 15:] = False
    adv = torch.tensor([1.0, -1.0, 0.5, -0.5, 2.0, -2.0], dtype=torch.float64)
    scores = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    half, keep_bad = SASOptions(ratio=0.5), SASOptions(ratio=0.5, nonfinite="keep")
    want = sas_core.sas_batch_step(ids, lp, mask, adv, scores, seg, half).advantages
    assert (want[mask] == 0).any()  # something selected
    bad = lp.clone()
    bad[3, 4] = math.nan
    bad[2, 17] = math.inf  # off the mask: ignored
    with pytest.raises(ValueError, match=r"^logprobs"):
        sas_core.sas_batch_step(ids, bad, mask, adv, scores, seg, half)
    step = sas_core.sas_batch_step(ids, bad, mask, adv, scores, seg, keep_bad)
    assert step.stats()["sas/nonfinite_rollouts"] == 1
    got = step.advantages
    torch.testing.assert_close(got[3], torch.full((20,), -0.5, dtype=torch.float64))
    rows = [0, 1, 2, 4, 5]
    torch.testing.assert_close(got[rows], want[rows])
    with pytest.raises(ValueError, match=r"^nonfinite: must be one of"):
        SASOptions(ratio=0.5, nonfinite="skip")


# Round 3, item 3: a column-major (or strided) numpy batch was read in memory order.
_LAYOUTS = {
    "fortran": np.asfortranarray,
    "strided": lambda a: np.repeat(a, 2, axis=1)[:, ::2],
    "reversed": lambda a: a[::-1].copy()[::-1],
}


@pytest.mark.parametrize("layout", sorted(_LAYOUTS))
@pytest.mark.parametrize("arg", ["response_ids", "logprobs", "action_mask", "all"])
def test_numpy_padded_call_reads_any_layout_like_the_reference(layout, arg):
    from padded_reference import keep_mask as reference_keep

    vocab = [b"a", b"\n\n", b"b", b" c."]
    seg = StepSegmenter(vocab)
    rng = np.random.default_rng(7)
    ids = rng.integers(0, len(vocab), (4, 20))
    lp = -rng.random((4, 20))
    mask = np.ones((4, 20), bool)
    mask[1, 15:] = mask[3, :3] = False
    correct = np.array([True, False, True, False])
    args = {"response_ids": ids, "logprobs": lp, "action_mask": mask}
    for name in args:
        if arg in (name, "all"):
            args[name] = _LAYOUTS[layout](args[name])
            assert not args[name].flags.c_contiguous
    # rewards 1, 2, 4, 8 in one group: every GRPO advantage is non-zero
    out, stats = sas_core.sas_advantages(
        **args, rewards=2.0 ** np.arange(4), group_size=4, segmenter=seg, correct=correct
    )
    keep = ~(mask & (out == 0))
    want = reference_keep(
        vocab, torch.from_numpy(ids), torch.from_numpy(lp), torch.from_numpy(mask), correct
    )
    np.testing.assert_array_equal(keep, want.numpy())
    steps = [
        len({s for s in sas_core.reference.segment(vocab, ids[i][mask[i]].tolist(), [0, m])})
        for i, m in enumerate(mask.sum(1))
    ]
    assert stats["sas/steps"] == pytest.approx(np.mean(steps))


def test_extension_refuses_a_column_major_array_rather_than_misreading_it():
    seg = StepSegmenter([b"a", b"\n\n"])
    ids = np.asfortranarray(np.zeros((3, 4), np.int64))
    lp, mask = np.zeros((3, 4)), np.ones((3, 4), bool)
    with pytest.raises(ValueError, match=r"^response_ids: must be a C-contiguous"):
        seg._table.sas_padded(ids, lp, mask, np.ones(3, bool), SASOptions(), num_threads=None)


# Round 3, item 7: SAS_CORE_NUM_THREADS is used as written, clamped or ignored with a
# warning naming it; default_num_threads() reports what is used.
@pytest.mark.parametrize(
    ("value", "warns", "want"),
    [("2", None, 2), (" 3 ", None, 3), ("+4", None, 4), ("2000", "is above", None),
     ("abc", "not a positive integer", 0), ("0", "not a positive integer", 0),
     ("-1", "not a positive integer", 0), ("1.5", "not a positive integer", 0),
     ("1_0", "not a positive integer", 0),
     # round 4, item 11: past usize, Rust's parse fails and the core uses the CPU count
     (str(2**64 - 1), "is above", None), (str(2**64), "not a positive integer", 0),
     ("99999999999999999999999", "not a positive integer", 0)],
)  # fmt: skip
def test_threads_variable_is_used_clamped_or_refused_with_a_warning(value, warns, want):
    code = (
        "import warnings, sas_core, numpy as np\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    n = sas_core.default_num_threads()\n"
        "    seg = sas_core.StepSegmenter([b'a', b'\\n\\n'])\n"
        "    seg.segment(np.array([0, 1, 0]), np.array([0, 3]))\n"
        "print(n, sas_core._core.MAX_THREADS, len(__import__('os').sched_getaffinity(0)))\n"
        "print('|'.join(str(x.message) for x in w))\n"
    )
    env = {**os.environ, "SAS_CORE_NUM_THREADS": value}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    first, messages = out.stdout.splitlines()[0], out.stdout.splitlines()[1]
    n, max_threads, cpus = map(int, first.split())
    expected = {None: max_threads, 0: cpus}.get(want, want)
    assert n == expected
    if warns is None:
        assert messages == ""
    else:
        assert messages.startswith("SAS_CORE_NUM_THREADS=") and warns in messages
        assert messages.count("SAS_CORE_NUM_THREADS") == 1  # once per value
