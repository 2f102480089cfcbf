"""The launcher: OpenRLHF's own train_ppo_ray parser with ``sas`` and its options."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from openrlhf_cpu_shims import require_openrlhf

require_openrlhf()

import openrlhf.utils.config as openrlhf_config  # noqa: E402

from sas_core.integrations.openrlhf import OpenRLHFSASOptions, compat, gpu_stack, reward_func_path  # noqa: E402
from sas_core.integrations.openrlhf.launcher import (  # noqa: E402
    main,
    parse_args,
    translate_legacy,
)

TESTS = Path(__file__).resolve().parent
GROUP = ["--rollout.n_samples_per_prompt", "8"]


def test_sas_options_reach_args():
    args = parse_args(
        [
            "--algo.advantage.estimator", "sas", *GROUP,
            "--algo.advantage.sas.ratio", "0.2",
            "--algo.advantage.sas.mode", "failed",
            "--algo.advantage.sas.selection", "random",
            "--algo.advantage.sas.granularity", "token",
            "--algo.advantage.sas.correct_threshold", "0.9",
            "--algo.advantage.sas.logprobs", "rollout",
            "--algo.advantage.is_correction_level", "token",
            "--algo.advantage.sas.shield", "truncated",
            "--algo.advantage.sas.think_end", "</think>",
            "--algo.advantage.sas.seed", "7",
            "--rollout.temperature", "0.6",
        ]
    )  # fmt: skip
    assert args.algo.advantage.estimator == "sas"
    assert args.algo.advantage.sas == OpenRLHFSASOptions(
        ratio=0.2, mode="failed", selection="random", granularity="token",
        correct_threshold=0.9, logprobs="rollout", shield="truncated", think_end="</think>",
        seed=7,
    )  # fmt: skip
    assert args.rollout.temperature == 0.6  # OpenRLHF's own options parse as before


def test_defaults_legacy_spelling_and_flat_aliases():
    args = parse_args(["--advantage_estimator", "sas", *GROUP, "--train.seed", "123"])
    assert args.algo.advantage.estimator == "sas"
    assert args.algo.advantage.sas == OpenRLHFSASOptions(seed=123)  # paper defaults, run's seed
    args = parse_args(["--advantage_estimator=sas", *GROUP, "--sas_ratio", "0.4"])
    assert args.algo.advantage.estimator == "sas" and args.algo.advantage.sas.ratio == 0.4
    assert translate_legacy(["--advantage_estimator=rloo", "x"]) == [
        "--algo.advantage.estimator=rloo",
        "x",
    ]
    # OpenRLHF's own estimators still parse
    for name in ("gae", "group_norm", "rloo", "reinforce_baseline", "dr_grpo"):
        assert (
            parse_args(["--algo.advantage.estimator", name, *GROUP]).algo.advantage.estimator
            == name
        )


SAS_FLAG = "--algo.advantage.sas."


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("ratio", "1.5", "must be in [0, 1], got 1.5"),
        ("ratio", "-0.1", "must be in [0, 1], got -0.1"),
        ("ratio", "lots", "invalid float value: 'lots'"),  # argparse: not a number
        # the rest: the options' own checks, once, after parsing
        ("mode", "all", "must be one of ('both', 'correct', 'failed'), got 'all'"),
        ("selection", "worst", "must be one of ('confidence', 'random'), got 'worst'"),
        ("granularity", "line", "must be one of ('step', 'token'), got 'line'"),
        ("logprobs", "ref", "must be one of ('action', 'rollout'), got 'ref'"),
        ("shield", "none", "must be one of ('all', 'truncated'), got 'none'"),
        ("correct_threshold", "nan", "must be finite, got nan"),
        ("seed", "-1", "must be in [0, 2**64), got -1"),
        ("logprobs", "rollout", "OpenRLHF records vLLM's log-probs only with"),
    ],
)
def test_bad_values_exit_with_a_message_naming_the_option(flag, value, message, capsys):
    with pytest.raises(SystemExit) as e:
        parse_args(["--algo.advantage.estimator", "sas", *GROUP, SAS_FLAG + flag, value])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert SAS_FLAG + flag in err and message in err


def test_unknown_estimator_is_still_rejected(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--algo.advantage.estimator", "sass", *GROUP])
    assert "--algo.advantage.estimator: invalid choice: 'sass'" in capsys.readouterr().err


def test_sas_needs_groups(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--algo.advantage.estimator", "sas", "--rollout.n_samples_per_prompt", "1"])
    assert "needs --rollout.n_samples_per_prompt > 1" in capsys.readouterr().err


def test_hooks_are_removed_afterwards():
    parse_fn, hier = argparse.ArgumentParser.parse_args, openrlhf_config.hierarchize
    parse_args(["--algo.advantage.estimator", "sas", *GROUP])
    assert argparse.ArgumentParser.parse_args is parse_fn
    assert openrlhf_config.hierarchize is hier
    with pytest.raises(SystemExit):
        parse_args(["--algo.advantage.sas.ratio", "2"])
    assert argparse.ArgumentParser.parse_args is parse_fn


def test_main_runs_openrlhfs_own_checks_past_the_parser(monkeypatch):
    # OpenRLHF's post-parse validation (in train_ppo_ray's __main__ block) runs on the
    # args with estimator sas: this assertion is OpenRLHF's own. By then the hooks are
    # gone (they must not stay in place while training runs).
    parse_fn, hier = argparse.ArgumentParser.parse_args, openrlhf_config.hierarchize
    seen = []

    def probe(*args, **kwargs):  # OpenRLHF's own check, observed where it runs
        seen.append((argparse.ArgumentParser.parse_args, openrlhf_config.hierarchize))
        return real_print(*args, **kwargs)

    real_print = print
    monkeypatch.setattr("builtins.print", probe)
    # This process imported OpenRLHF with the stand-ins already (require_openrlhf); let
    # the real-run path past the vLLM check, which its own test covers.
    monkeypatch.setattr(gpu_stack, "missing", lambda: [])
    with pytest.raises(AssertionError, match="remote_rm_url or agent_func_path must be specified"):
        main(
            ["--algo.advantage.estimator", "sas", *GROUP, "--algo.dynamic_filtering_enable",
             "--data.input_template", "no placeholder"]
        )  # fmt: skip
    assert seen and all(p is parse_fn and h is hier for p, h in seen)


def test_unsupported_openrlhf_version_fails_at_start(monkeypatch):
    monkeypatch.setattr(compat.metadata, "version", lambda name: "0.10.4")
    with pytest.raises(SystemExit) as e:
        main(["--algo.advantage.estimator", "sas", *GROUP])
    assert "openrlhf 0.10.4 is installed" in str(e.value.code)
    assert "supports only openrlhf 0.11.x" in str(e.value.code)
    with pytest.raises(compat.UnsupportedOpenRLHF, match=r"0\.11\.x"):
        compat.check_openrlhf_version("0.12.0")

    def missing(name):
        raise compat.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(compat.metadata, "version", missing)
    with pytest.raises(compat.UnsupportedOpenRLHF, match="not installed"):
        compat.check_openrlhf_version()


def test_installed_release_is_supported():
    assert compat.check_openrlhf_version().startswith("0.11.")


def test_options_validate_themselves():
    for bad in ({"ratio": 1.1}, {"mode": "x"}, {"logprobs": "ref"}, {"shield": "x"}, {"seed": -1},
                {"correct_threshold": float("inf")}, {"nonfinite": "skip"}):  # fmt: skip
        with pytest.raises(ValueError, match=rf"^{next(iter(bad))}: "):
            OpenRLHFSASOptions(**bad)
    with pytest.raises(TypeError, match=r"^ratio: must be a real number"):  # the core's rule
        OpenRLHFSASOptions(ratio=True)
    assert OpenRLHFSASOptions().nonfinite == "keep"  # a long run survives one bad rollout


def _python(code: str, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    return subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env, timeout=300
    )


def test_unpickling_the_options_installs_the_estimator_in_a_fresh_process():
    blob = pickle.dumps(OpenRLHFSASOptions(ratio=0.25)).hex()
    code = (
        "import openrlhf_cpu_shims, pickle, sys; openrlhf_cpu_shims.install();"
        "from sas_core.integrations.openrlhf.estimator import is_installed;"
        "import openrlhf.trainer.ppo_utils.experience_maker;"
        "before = is_installed(); o = pickle.loads(bytes.fromhex(sys.argv[1]));"
        "print(before, is_installed(), o.ratio)"
    )
    done = _python(code, blob)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-3:] == ["False", "True", "0.25"]


def test_module_entry_point_help_lists_sas():
    code = (
        "import openrlhf_cpu_shims, runpy, sys; openrlhf_cpu_shims.install();"
        "sys.argv = ['sas-openrlhf-train', '--help'];"
        "runpy.run_module('sas_core.integrations.openrlhf', run_name='__main__')"
    )
    done = _python(code)
    assert done.returncode == 0, done.stderr[-3000:]
    text = " ".join(done.stdout.split())  # argparse wraps lines
    assert "--algo.advantage.sas.ratio" in text
    assert "sas: Step-level Advantage Selection" in text
    assert "--rollout.n_samples_per_prompt" in text  # OpenRLHF's own options


def _launcher_without_shims(*argv: str, **env: str) -> subprocess.CompletedProcess:
    """The launcher as a user runs it on a CPU machine: no test shims on the path."""
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, "-m", "sas_core.integrations.openrlhf", *argv],
        capture_output=True, text=True, env={**clean, **env}, timeout=300,
    )  # fmt: skip


needs_no_vllm = pytest.mark.skipif(
    importlib.util.find_spec("vllm") is not None, reason="checks a machine without vLLM"
)


@needs_no_vllm
def test_help_without_vllm_lists_openrlhf_and_sas_options():
    done = _launcher_without_shims("--help")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("usage: sas-openrlhf-train ")
    text = " ".join(done.stdout.split())
    assert "--algo.advantage.sas.ratio" in text and "--rollout.n_samples_per_prompt" in text
    assert importlib.util.find_spec("vllm") is None  # the stand-ins did not leak


@needs_no_vllm
def test_dry_run_without_vllm_prints_the_command_and_arguments():
    argv = ("--algo.advantage.estimator", "sas", "--rollout.n_samples_per_prompt", "4",
            "--algo.advantage.sas.ratio", "0.25")  # fmt: skip
    done = _launcher_without_shims(*argv, SAS_OPENRLHF_DRY_RUN="1")
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()  # only what was asked for: DeepSpeed's log is on stderr
    assert lines[0] == "# OpenRLHF's openrlhf.cli.train_ppo_ray (with sas registered) would run as:"
    assert lines[1] == "# sas-openrlhf-train " + " ".join(argv)
    parsed = json.loads("\n".join(lines[2:]))
    assert parsed["algo.advantage.estimator"] == "sas"
    assert parsed["algo.advantage.sas.ratio"] == 0.25


@needs_no_vllm
def test_real_run_without_vllm_stops_at_once_with_one_line():
    done = _launcher_without_shims("--algo.advantage.estimator", "sas")
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("sas-openrlhf-train: error: OpenRLHF's training needs vLLM")
    assert "pip install vllm==" in last


def test_console_script_is_installed():
    script = Path(sys.executable).with_name("sas-openrlhf-train")
    assert script.exists()
    assert "sas_core.integrations.openrlhf.launcher" in script.read_text()


def test_reward_func_path_is_the_file():
    assert Path(reward_func_path()).is_file()
    module = "sas_core.integrations.openrlhf.reward_func"
    done = _python(f"import runpy; runpy.run_module({module!r}, run_name='__main__')")
    assert done.stdout.strip() == str(Path(reward_func_path()).resolve())
