"""OpenRLHF's own CLI with ``sas``, through the start-up hook that the built wheel installs.

Each test runs a fresh interpreter of a virtual environment that has this project's
wheel (built here with maturin, or ``SAS_CORE_WHEEL``) installed as a user installs it,
not the editable checkout:

* ``hook_python``: the wheel, and this test venv's packages (OpenRLHF, torch, DeepSpeed)
  after its own through a ``.pth`` line;
* ``plain_python``: the wheel alone, without even numpy (``--no-deps``): an interpreter
  with no OpenRLHF, where the hook must cost nothing and import nothing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from openrlhf_cpu_shims import require_openrlhf

require_openrlhf()

ROOT = Path(__file__).resolve().parents[1]
CLI = "openrlhf.cli.train_ppo_ray"
HOOK = "_sas_core_openrlhf_hook"
GROUP = ("--rollout.n_samples_per_prompt", "4")

needs_no_vllm = pytest.mark.skipif(
    importlib.util.find_spec("vllm") is not None, reason="checks a machine without vLLM"
)


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("SAS_CORE_WHEEL")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("wheel")
    maturin = Path(sys.executable).with_name("maturin")
    env = {**os.environ, "PATH": f"{maturin.parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(
        [str(maturin), "build", "--release", "-q", "--out", str(out)],
        cwd=ROOT, env=env, check=True, capture_output=True, timeout=900,
    )  # fmt: skip
    (built,) = out.glob("sas_core-*.whl")
    return built


def _venv(path: Path, wheel: Path, *, see_this_venv: bool) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    if see_this_venv:  # after the venv's own packages, as `make verl-env` does
        Path(purelib, "zz_test_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         "--no-index", "--disable-pip-version-check", str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    assert Path(purelib, "sas_core_openrlhf_hook.pth").is_file()
    assert Path(purelib, f"{HOOK}.py").is_file()
    assert Path(purelib, "sas_core", "__init__.py").is_file()
    return python


@pytest.fixture(scope="session")
def hook_python(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _venv(tmp_path_factory.mktemp("hook-venv"), wheel, see_this_venv=True)


@pytest.fixture(scope="session")
def plain_python(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _venv(tmp_path_factory.mktemp("plain-venv"), wheel, see_this_venv=False)


def run(python: Path, *args: str, cwd: Path | None = None, **env: str):
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "SAS_CORE_OPENRLHF_HOOK", "SAS_OPENRLHF_DRY_RUN")
    }
    return subprocess.run(
        [str(python), *args], capture_output=True, text=True, env={**base, **env},
        cwd=cwd or Path.home(), timeout=600,
    )  # fmt: skip


def test_the_wheel_installs_the_hook_and_its_module_from_site_packages(hook_python):
    done = run(hook_python, "-c", f"import {HOOK}, sas_core; print({HOOK}.__file__);"
               "print(sas_core.__file__)")  # fmt: skip
    assert done.returncode == 0, done.stderr
    hook_file, package_file = done.stdout.split()
    assert Path(hook_file).parent == Path(package_file).parent.parent  # site-packages
    assert str(ROOT) not in package_file  # the wheel, not this checkout


def test_start_imports_nothing_heavy_and_registers_only_a_finder(plain_python):
    code = (
        "import sys, json; print(json.dumps({'finders': [getattr(f, '__module__', '') "
        "for f in sys.meta_path], 'modules': sorted(sys.modules)}))"
    )
    done = run(plain_python, "-c", code)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    seen = json.loads(done.stdout)
    assert seen["finders"][0] == HOOK
    loaded = {m.split(".")[0] for m in seen["modules"]}
    assert HOOK in loaded
    assert not loaded & {"numpy", "torch", "sas_core", "openrlhf"}
    # -X importtime: the hook's own line, with nothing imported for the first time under it
    timed = run(plain_python, "-X", "importtime", "-c", "pass")
    lines = [line for line in timed.stderr.splitlines() if line.startswith("import time:")]
    at = next(i for i, line in enumerate(lines) if line.endswith(f" {HOOK}"))
    depth = len(lines[at].split("|")[2]) - len(lines[at].split("|")[2].lstrip())
    previous = lines[at - 1].split("|")[2]
    assert len(previous) - len(previous.lstrip()) <= depth  # no child line above it


def test_python_start_and_errors_unchanged_without_openrlhf(plain_python):
    done = run(plain_python, "-c", "print('ok')")
    assert (done.returncode, done.stdout, done.stderr) == (0, "ok\n", "")
    done = run(plain_python, "-m", CLI, "--help")
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()  # Python's own one line, nothing from sas-core
    assert line.endswith(
        f"Error while finding module specification for '{CLI}' "
        "(ModuleNotFoundError: No module named 'openrlhf')"
    )


def test_help_lists_sas_and_its_options_and_nothing_before_the_usage(hook_python):
    done = run(hook_python, "-m", CLI, "--help")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("usage: train_ppo_ray.py ")  # DeepSpeed's log: stderr
    text = " ".join(done.stdout.split())  # argparse wraps lines
    assert "flash_reinforce,sas}" in text
    assert "sas: Step-level Advantage Selection (sas-core)" in text
    for option in ("ratio", "mode", "selection", "granularity", "correct_threshold",
                   "logprobs", "shield", "nonfinite", "think_end", "seed"):  # fmt: skip
        assert f"--algo.advantage.sas.{option}" in text
    assert "--rollout.n_samples_per_prompt" in text  # OpenRLHF's own options
    assert "sas-core:" not in done.stderr  # no hook error


def _dry_run(python: Path, *argv: str) -> tuple[list[str], dict]:
    done = run(python, "-m", CLI, *argv, SAS_OPENRLHF_DRY_RUN="1")
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == f"# OpenRLHF's {CLI} (with sas registered) would run as:"
    return lines[:2], json.loads("\n".join(lines[2:]))


def test_dry_run_in_both_spellings(hook_python):
    header, args = _dry_run(
        hook_python, "--advantage_estimator", "sas", *GROUP, "--algo.advantage.sas.ratio",
        "0.25", "--sas_mode", "failed", "--train.seed", "7",
    )  # fmt: skip
    assert header[1] == (
        f"# python -m {CLI} --algo.advantage.estimator sas --rollout.n_samples_per_prompt 4 "
        "--algo.advantage.sas.ratio 0.25 --sas_mode failed --train.seed 7"
    )
    assert args["algo.advantage.estimator"] == "sas"
    assert args["algo.advantage.sas.ratio"] == 0.25
    assert args["algo.advantage.sas.mode"] == "failed"
    assert args["algo.advantage.sas.seed"] == 7  # from --train.seed
    assert args["rollout.n_samples_per_prompt"] == 4
    _, args = _dry_run(hook_python, "--algo.advantage.estimator=sas", *GROUP)
    assert args["algo.advantage.estimator"] == "sas"
    assert args["algo.advantage.sas.ratio"] == 0.3
    _, args = _dry_run(hook_python, "--advantage_estimator", "rloo", *GROUP)
    assert args["algo.advantage.estimator"] == "rloo"  # OpenRLHF's own, old spelling


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        # checked once, by the options object, after parsing: named by the dotted flag
        (("--algo.advantage.sas.ratio", "30"),
         "--algo.advantage.sas.ratio: must be in [0, 1], got 30.0"),
        (("--sas_mode", "all"),
         "--algo.advantage.sas.mode: must be one of ('both', 'correct', 'failed'), got 'all'"),
        (("--sas_ratio", "lots"),  # not a number: argparse's own error
         "argument --algo.advantage.sas.ratio/--sas_ratio: invalid float value: 'lots'"),
        (("--rollout.n_samples_per_prompt", "1"),
         "--algo.advantage.estimator sas: needs --rollout.n_samples_per_prompt > 1"),
    ],
)  # fmt: skip
def test_a_bad_sas_value_is_one_argparse_error(hook_python, argv, message):
    done = run(hook_python, "-m", CLI, "--algo.advantage.estimator", "sas", *argv)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("train_ppo_ray.py: error: ") and message in last
    assert done.stdout == ""


@needs_no_vllm
def test_a_training_run_without_the_gpu_stack_stops_with_one_line(hook_python):
    done = run(hook_python, "-m", CLI, "--algo.advantage.estimator", "sas", *GROUP)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{CLI}: error: OpenRLHF's training needs vLLM")


# OpenRLHF's module run under GPU-module placeholders installed by the caller, so that the
# hook's own parse-only help is out of play: only the parser patch decides what --help says.
HELP_UNDER_STAND_INS = """
import runpy, sys
from sas_core.integrations.openrlhf import gpu_stack
gpu_stack.install(gpu_stack.missing())
{before}
sys.argv = ["train_ppo_ray.py", "--help"]
runpy.run_module("openrlhf.cli.train_ppo_ray", run_name="__main__")
"""


def _help(python: Path, before: str = "", **env: str) -> subprocess.CompletedProcess:
    return run(python, "-c", HELP_UNDER_STAND_INS.format(before=before), **env)


def test_the_switch_turns_the_hook_off(hook_python):
    on, off = _help(hook_python), _help(hook_python, SAS_CORE_OPENRLHF_HOOK="0")
    assert on.returncode == 0 and off.returncode == 0, (on.stderr[-2000:], off.stderr[-2000:])
    assert "--algo.advantage.sas.ratio" in on.stdout
    assert "--algo.advantage.sas.ratio" not in off.stdout
    assert "flash_reinforce}" in " ".join(off.stdout.split())  # OpenRLHF's choices only
    done = run(hook_python, "-c", f"import sys, {HOOK}; print({HOOK}.OpenRLHFCLIFinder "
               "in sys.meta_path)", SAS_CORE_OPENRLHF_HOOK="0")  # fmt: skip
    assert done.stdout.strip() == "False"


BREAK_THE_PATCH = """
import sas_core.integrations.openrlhf.cli_patch as cli_patch
def broken():
    raise RuntimeError("the patch broke\\nsecond line")
cli_patch.check_openrlhf_version = broken
"""


def test_an_error_in_the_hook_is_reported_once_and_openrlhf_runs_without_sas(hook_python):
    done = _help(hook_python, BREAK_THE_PATCH)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "--algo.advantage.sas.ratio" not in done.stdout
    assert "--rollout.n_samples_per_prompt" in done.stdout  # OpenRLHF's help as usual
    reports = [line for line in done.stderr.splitlines() if line.startswith("sas-core:")]
    assert reports == [
        f"sas-core: sas is not registered with {CLI}: the patch broke (the "
        "sas-openrlhf-train command is the explicit alternative)"
    ]
    assert "Traceback" not in done.stderr
    debug = _help(hook_python, BREAK_THE_PATCH, SAS_CORE_DEBUG="1")
    assert "Traceback" in debug.stderr and "RuntimeError: the patch broke" in debug.stderr


CAPTURE_ARGS = """
import pickle, sys
import sas_core.integrations.openrlhf.cli_patch as cli_patch
def capture(args):
    sys.stdout.buffer.write(pickle.dumps(args))
    raise SystemExit(0)
cli_patch._exit_after_dry_run = capture
import runpy
runpy.run_module("openrlhf.cli.train_ppo_ray", run_name="__main__")
"""


def test_args_from_openrlhfs_own_cli_carry_the_estimator_into_a_fresh_process(hook_python):
    argv = ["--algo.advantage.estimator", "sas", *GROUP, "--algo.advantage.sas.ratio", "0.2"]
    done = subprocess.run(
        [str(hook_python), "-c", CAPTURE_ARGS, *argv], capture_output=True, timeout=600,
        env={**os.environ, "SAS_OPENRLHF_DRY_RUN": "1"}, cwd=Path.home(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    blob = done.stdout
    # An OpenRLHF actor process: it unpickles args (inside DeepspeedStrategy) and only then
    # builds its experience maker; unpickling the options installs the estimator.
    actor = (
        "import pickle, sys\n"
        "from sas_core.integrations.openrlhf import gpu_stack\n"
        "gpu_stack.install(gpu_stack.missing())\n"
        "from sas_core.integrations.openrlhf.estimator import is_installed\n"
        "import openrlhf.trainer.ppo_utils.experience_maker\n"
        "before = is_installed()\n"
        "args = pickle.loads(sys.stdin.buffer.read())\n"
        "print(before, is_installed(), type(args.algo.advantage.sas).__name__,"
        " args.algo.advantage.sas.ratio)\n"
    )
    got = subprocess.run(
        [str(hook_python), "-c", actor], input=blob, capture_output=True, timeout=600,
        cwd=Path.home(),
    )  # fmt: skip
    assert got.returncode == 0, got.stderr.decode()[-3000:]
    assert got.stdout.decode().split()[-4:] == ["False", "True", "OpenRLHFSASOptions", "0.2"]


def test_the_launcher_keeps_stdout_to_the_usage_and_the_dry_run(hook_python):
    launcher = "sas_core.integrations.openrlhf"
    done = run(hook_python, "-m", launcher, "--help")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("usage: sas-openrlhf-train ")
    done = run(hook_python, "-m", launcher, "--advantage_estimator", "sas", *GROUP,
               SAS_OPENRLHF_DRY_RUN="1")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == f"# OpenRLHF's {CLI} (with sas registered) would run as:"
    assert lines[1] == "# sas-openrlhf-train --algo.advantage.estimator sas " + " ".join(GROUP)
    assert json.loads("\n".join(lines[2:]))["algo.advantage.estimator"] == "sas"
