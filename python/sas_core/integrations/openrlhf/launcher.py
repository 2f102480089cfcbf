"""``sas-openrlhf-train``: OpenRLHF's own ``train_ppo_ray`` CLI with ``sas`` registered.

It takes exactly ``python -m openrlhf.cli.train_ppo_ray``'s arguments plus the SAS
options, and runs that module's own code (``runpy``), not a copy of it. While it runs,
two hooks are in place in this (driver) process only:

* OpenRLHF's argument parser gets ``sas`` among the ``--algo.advantage.estimator``
  choices and the ``--algo.advantage.sas.*`` options (so ``--help`` lists them and bad
  values get argparse's usual error);
* ``openrlhf.utils.config.hierarchize`` puts a :class:`SASOptions` at
  ``args.algo.advantage.sas``. OpenRLHF pickles ``args`` into its Ray actors, and
  unpickling that object installs the estimator there (see ``options.py``).

The old flag ``--advantage_estimator X`` is accepted as ``--algo.advantage.estimator X``.
With ``SAS_OPENRLHF_DRY_RUN=1`` it prints the parsed arguments as JSON (dotted names)
and the command line OpenRLHF gets, and exits instead of training: a check of a launch
script on a machine without GPUs. ``--help`` and the dry run work without vLLM and
flash-attn's CUDA build (placeholders from ``gpu_stack`` stand in while parsing); a real
run without them stops at start with one line saying what to install.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import runpy
import shlex
import sys
from collections.abc import Iterator, Sequence
from types import SimpleNamespace
from typing import Any

from sas_core.integrations.openrlhf import gpu_stack
from sas_core.integrations.openrlhf.compat import UnsupportedOpenRLHF, check_openrlhf_version
from sas_core.integrations.openrlhf.options import PREFIX, SASOptions, add_sas_arguments
from sas_core.requirements import UnsupportedVersion, require

__all__ = ["CLI_MODULE", "main", "parse_args"]

CLI_MODULE = "openrlhf.cli.train_ppo_ray"
ESTIMATOR_FLAG = "--algo.advantage.estimator"
LEGACY_FLAGS = {"--advantage_estimator": ESTIMATOR_FLAG}


def translate_legacy(argv: Sequence[str]) -> list[str]:
    """Rewrites pre-0.11 spellings (``--advantage_estimator``) to OpenRLHF 0.11's."""
    out = []
    for arg in argv:
        name, eq, value = arg.partition("=")
        out.append(LEGACY_FLAGS[name] + eq + value if name in LEGACY_FLAGS else arg)
    return out


class _Parsed(Exception):
    """Carries the parsed ``args`` out of OpenRLHF's CLI in :func:`parse_args`."""

    def __init__(self, args: Any) -> None:
        super().__init__("parsed")
        self.parsed = args


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


def _sas_options(args: SimpleNamespace, parser: argparse.ArgumentParser) -> SASOptions:
    raw = vars(args.algo.advantage.sas)
    seed = raw.get("seed")
    if seed is None:
        seed = int(getattr(args.train, "seed", 0) or 0)
    try:
        options = SASOptions(**{**raw, "seed": seed})
    except ValueError as e:
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


@contextlib.contextmanager
def _hooks(stop_after_parse: bool) -> Iterator[None]:
    """The two hooks, in place until OpenRLHF's args are built (so not during training)."""
    import openrlhf.utils.config as config

    original_parse = argparse.ArgumentParser.parse_args
    original_hierarchize = config.hierarchize
    parsers: list[argparse.ArgumentParser] = []

    def restore() -> None:
        argparse.ArgumentParser.parse_args = original_parse  # type: ignore[method-assign]
        config.hierarchize = original_hierarchize

    def parse_args(self: argparse.ArgumentParser, *a: Any, **kw: Any) -> Any:
        if _extend_parser(self):
            parsers.append(self)
        return original_parse(self, *a, **kw)

    def hierarchize(args: Any) -> Any:
        nested = original_hierarchize(args)
        if parsers and hasattr(getattr(nested, "algo", None), "advantage"):
            nested.algo.advantage.sas = _sas_options(nested, parsers[-1])
            restore()
            if stop_after_parse:
                raise _Parsed(nested)
        return nested

    argparse.ArgumentParser.parse_args = parse_args  # type: ignore[method-assign]
    config.hierarchize = hierarchize
    try:
        yield
    finally:
        restore()


def _wants_help(argv: Sequence[str]) -> bool:
    return any(a in ("-h", "--help") for a in argv)


def _run_cli(argv: Sequence[str], *, stop_after_parse: bool, prog: str) -> Any:
    try:
        check_openrlhf_version()
        require("torch")
        require("transformers")
    except (UnsupportedOpenRLHF, UnsupportedVersion) as e:
        raise SystemExit(f"{prog}: error: {e}") from None
    parse_only = stop_after_parse or _wants_help(argv)
    absent = gpu_stack.missing()
    if absent and not parse_only:
        raise SystemExit(f"{prog}: error: {gpu_stack.missing_message(absent)}")
    saved = sys.argv
    sys.argv = [prog, *translate_legacy(argv)]
    try:
        # Parsing alone never calls vLLM or flash-attn: placeholders may stand in.
        stand_ins = gpu_stack.stand_ins() if parse_only else contextlib.nullcontext()
        with stand_ins, _hooks(stop_after_parse):
            runpy.run_module(CLI_MODULE, run_name="__main__", alter_sys=False)
    except _Parsed as parsed:
        return parsed.parsed
    finally:
        sys.argv = saved
    return None


def parse_args(argv: Sequence[str], *, prog: str = "sas-openrlhf-train") -> SimpleNamespace:
    """The ``args`` OpenRLHF's own parser makes of ``argv`` (with ``sas`` registered),
    hierarchized, with :class:`SASOptions` at ``args.algo.advantage.sas``; stops before
    OpenRLHF's post-parse checks and ``train``. Bad values exit like argparse (code 2)."""
    return _run_cli(argv, stop_after_parse=True, prog=prog)


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


def main(argv: Sequence[str] | None = None) -> None:
    """Runs OpenRLHF's ``train_ppo_ray`` with the SAS estimator available."""
    argv = sys.argv[1:] if argv is None else argv
    prog = "sas-openrlhf-train"
    if os.environ.get("SAS_OPENRLHF_DRY_RUN") == "1":
        args = parse_args(argv, prog=prog)
        command = [prog, *translate_legacy(argv)]
        print(f"# OpenRLHF's {CLI_MODULE} (with sas registered) would run as:")
        print(f"# {shlex.join(command)}")
        json.dump(flatten(args), sys.stdout, indent=1, sort_keys=True, default=str)
        sys.stdout.write("\n")
        return
    _run_cli(argv, stop_after_parse=False, prog=prog)


if __name__ == "__main__":
    main()
