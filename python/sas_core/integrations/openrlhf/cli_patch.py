"""``sas`` on OpenRLHF 0.11's own ``train_ppo_ray`` command line: the two patches.

OpenRLHF has no plugin hook, so while its CLI parses, two functions are wrapped in this
(driver) process only:

* ``argparse.ArgumentParser.parse_args``: OpenRLHF's parser (the one with
  ``--algo.advantage.estimator``) gets ``sas`` among the estimator choices and the
  ``--algo.advantage.sas.*`` options, so ``--help`` lists them and bad values get
  argparse's usual error; the old flag ``--advantage_estimator X`` is read as
  ``--algo.advantage.estimator X``. Other parsers are left alone.
* ``openrlhf.utils.config.hierarchize``: puts a :class:`SASOptions` at
  ``args.algo.advantage.sas``. OpenRLHF pickles ``args`` into its Ray actors, and
  unpickling that object installs the estimator there (see ``estimator.py``).

Both are undone as soon as OpenRLHF has its hierarchized ``args``, before training.
Two callers put them in place: ``sas-openrlhf-train`` (``launcher.py``) and the
interpreter-start hook that the wheel installs (``_sas_core_openrlhf_hook``), which calls
:func:`on_cli_import` when ``python -m openrlhf.cli.train_ppo_ray`` loads.

With ``SAS_OPENRLHF_DRY_RUN=1`` either prints the parsed arguments as JSON (dotted
names) and the command line, and exits instead of training. ``--help`` and the dry run
work without vLLM and flash-attn's CUDA build (``gpu_stack``'s placeholders stand in while
parsing) and keep stdout to what was asked for (DeepSpeed's start-up log goes to stderr).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from types import SimpleNamespace
from typing import Any

# `estimator` registers that the options built here, pickled into OpenRLHF's actors
# with its args, install the estimator there when unpickled.
from sas_core.integrations.openrlhf import estimator, gpu_stack  # noqa: F401
from sas_core.integrations.openrlhf.compat import check_openrlhf_version
from sas_core.integrations.openrlhf.options import PREFIX, OpenRLHFSASOptions, add_sas_arguments

__all__ = [
    "CLI_MODULE",
    "DRY_RUN_ENV",
    "flatten",
    "on_cli_import",
    "patched",
    "print_dry_run",
    "translate_legacy",
]

CLI_MODULE = "openrlhf.cli.train_ppo_ray"
DRY_RUN_ENV = "SAS_OPENRLHF_DRY_RUN"
STARTUP_HOOK = "_sas_core_openrlhf_hook"  # the module the wheel's .pth line imports
ESTIMATOR_FLAG = "--algo.advantage.estimator"
LEGACY_FLAGS = {"--advantage_estimator": ESTIMATOR_FLAG}


def translate_legacy(argv: Sequence[str]) -> list[str]:
    """Rewrites pre-0.11 spellings (``--advantage_estimator``) to OpenRLHF 0.11's."""
    out = []
    for arg in argv:
        name, eq, value = arg.partition("=")
        out.append(LEGACY_FLAGS[name] + eq + value if name in LEGACY_FLAGS else arg)
    return out


def dry_run_requested() -> bool:
    return os.environ.get(DRY_RUN_ENV) == "1"


def wants_help(argv: Sequence[str]) -> bool:
    return any(a in ("-h", "--help") for a in argv)


def _estimator_action(parser: argparse.ArgumentParser) -> argparse.Action | None:
    for action in parser._actions:
        if ESTIMATOR_FLAG in action.option_strings:
            return action
    return None


def _extend_parser(parser: argparse.ArgumentParser) -> bool:
    """Registers ``sas`` and its options on OpenRLHF's parser; False if not that parser."""
    action = _estimator_action(parser)
    if action is None:
        return False
    if "sas" not in (action.choices or ()):
        action.choices = [*(action.choices or ()), "sas"]
        action.help = (action.help or "") + "; sas: Step-level Advantage Selection (sas-core)"
        add_sas_arguments(parser)
    return True


def _sas_options(args: SimpleNamespace, parser: argparse.ArgumentParser) -> OpenRLHFSASOptions:
    raw = vars(args.algo.advantage.sas)
    seed = raw.get("seed")
    if seed is None:
        seed = int(getattr(args.train, "seed", 0) or 0)
    try:
        options = OpenRLHFSASOptions(**{**raw, "seed": seed})
    except (TypeError, ValueError) as e:
        parser.error(f"--{PREFIX}.{e}")
    if args.algo.advantage.estimator == "sas":
        if args.rollout.n_samples_per_prompt < 2:
            parser.error(
                "--algo.advantage.estimator sas: needs --rollout.n_samples_per_prompt > 1 "
                "(it builds on group_norm's per-prompt baseline)"
            )
        if options.logprobs == "rollout" and args.algo.advantage.is_correction_level == "off":
            parser.error(
                f"--{PREFIX}.logprobs rollout: OpenRLHF records vLLM's log-probs only with "
                "--algo.advantage.is_correction_level token|seq"
            )
    return options


def disarm_startup_hook() -> None:
    """Makes the interpreter-start hook inert in this process, where a caller patches
    OpenRLHF's CLI by itself (the launcher)."""
    hook = sys.modules.get(STARTUP_HOOK)
    if hook is not None:
        hook.disarm()


def install(on_parsed: Callable[[SimpleNamespace], None] | None = None) -> Callable[[], None]:
    """Puts both patches in place; returns the function that undoes them (idempotent).

    They undo themselves once OpenRLHF's ``args`` are hierarchized, then
    ``on_parsed(args)`` runs (it may raise to stop OpenRLHF's CLI there)."""
    import openrlhf.utils.config as config

    original_parse = argparse.ArgumentParser.parse_args
    original_hierarchize = config.hierarchize
    parsers: list[argparse.ArgumentParser] = []

    def restore() -> None:
        argparse.ArgumentParser.parse_args = original_parse  # type: ignore[method-assign]
        config.hierarchize = original_hierarchize

    def parse_args(self: argparse.ArgumentParser, args: Any = None, *a: Any, **kw: Any) -> Any:
        if _extend_parser(self):
            parsers.append(self)
            args = translate_legacy(sys.argv[1:] if args is None else args)
        return original_parse(self, args, *a, **kw)

    def hierarchize(args: Any) -> Any:
        nested = original_hierarchize(args)
        if parsers and hasattr(getattr(nested, "algo", None), "advantage"):
            nested.algo.advantage.sas = _sas_options(nested, parsers[-1])
            restore()
            if on_parsed is not None:
                on_parsed(nested)
        return nested

    argparse.ArgumentParser.parse_args = parse_args  # type: ignore[method-assign]
    config.hierarchize = hierarchize
    return restore


@contextlib.contextmanager
def patched(on_parsed: Callable[[SimpleNamespace], None] | None = None) -> Iterator[None]:
    """:func:`install` for the duration of a block (undone on leaving it in any case)."""
    restore = install(on_parsed)
    try:
        yield
    finally:
        restore()


def quiet_deepspeed_start() -> None:
    """Imports DeepSpeed with its log handler bound to stderr.

    DeepSpeed's logger writes to the ``sys.stdout`` of the moment it is created, and it
    logs "Setting accelerator to CPU" when OpenRLHF imports it on a machine without a
    GPU: that line would come before ``--help``'s usage and the dry run's JSON. Used
    only when the CLI just parses; a training run keeps DeepSpeed's logging as it is."""
    with contextlib.redirect_stdout(sys.stderr), contextlib.suppress(ImportError):
        import deepspeed  # noqa: F401


def prepare_parse_only() -> None:
    """What ``--help`` and the dry run need: placeholders for the GPU-only modules that
    are missing (the real ones always win), and a quiet DeepSpeed."""
    gpu_stack.install(gpu_stack.missing())
    quiet_deepspeed_start()


def flatten(args: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted-name view of hierarchized ``args`` (as OpenRLHF's flags spell them)."""
    if dataclasses.is_dataclass(args) and not isinstance(args, type):
        args = SimpleNamespace(**dataclasses.asdict(args))
    if not isinstance(args, SimpleNamespace):
        return {prefix[:-1]: args}
    out: dict[str, Any] = {}
    for key, value in vars(args).items():
        out.update(flatten(value, f"{prefix}{key}."))
    return out


def print_dry_run(args: Any, command: Sequence[str]) -> None:
    """The dry run's output: the command OpenRLHF gets, then its arguments as JSON."""
    print(f"# OpenRLHF's {CLI_MODULE} (with sas registered) would run as:")
    print(f"# {shlex.join(command)}")
    json.dump(flatten(args), sys.stdout, indent=1, sort_keys=True, default=str)
    sys.stdout.write("\n")
    sys.stdout.flush()


def _exit_after_dry_run(args: SimpleNamespace) -> None:
    command = ["python", "-m", CLI_MODULE, *translate_legacy(sys.argv[1:])]
    print_dry_run(args, command)
    raise SystemExit(0)


def on_cli_import() -> None:
    """Called by the interpreter-start hook when ``openrlhf.cli.train_ppo_ray`` is about
    to load (``python -m openrlhf.cli.train_ppo_ray ...``, also as the entrypoint of
    ``ray job submit``). Raises :class:`UnsupportedOpenRLHF` for a release it does not
    know; the hook reports that and OpenRLHF runs without ``sas``.

    Where vLLM or flash-attn's CUDA build is missing, OpenRLHF's module would stop at
    its first import with a traceback: instead the command line is parsed (so a bad
    value is reported as such, and ``--help`` and the dry run work), then a training
    run stops with one line saying what to install."""
    check_openrlhf_version()
    absent = gpu_stack.missing()
    dry_run = dry_run_requested()
    if absent or dry_run or wants_help(sys.argv[1:]):
        prepare_parse_only()
    if dry_run:
        install(_exit_after_dry_run)
    elif absent:
        install(lambda _args: _exit_missing(absent))
    else:
        install()


def _exit_missing(absent: list[str]) -> None:
    raise SystemExit(f"{CLI_MODULE}: error: {gpu_stack.missing_message(absent)}")
