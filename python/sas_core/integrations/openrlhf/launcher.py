"""``sas-openrlhf-train``: OpenRLHF's own ``train_ppo_ray`` CLI with ``sas`` registered.

It takes exactly ``python -m openrlhf.cli.train_ppo_ray``'s arguments plus the SAS
options, and runs that module's own code (``runpy``), not a copy of it, with the patches
of ``cli_patch.py`` in place while it parses. Since the wheel's start-up hook gives
OpenRLHF's own module the same, this is the explicit alternative: it works where that
hook is off (``SAS_CORE_OPENRLHF_HOOK=0``) or where ``.pth`` files are not read
(``python -S``), and ``parse_args`` here parses a command line in-process.

With ``SAS_OPENRLHF_DRY_RUN=1`` it prints the parsed arguments as JSON (dotted names)
and the command line OpenRLHF gets, and exits instead of training: a check of a launch
script on a machine without GPUs. A real run without vLLM or flash-attn's CUDA build
stops at start with one line saying what to install.
"""

from __future__ import annotations

import contextlib
import runpy
import sys
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from sas_core.integrations.openrlhf import cli_patch, gpu_stack
from sas_core.integrations.openrlhf.cli_patch import CLI_MODULE, flatten, translate_legacy
from sas_core.integrations.openrlhf.compat import UnsupportedOpenRLHF, check_openrlhf_version
from sas_core.requirements import UnsupportedVersion, require

__all__ = ["CLI_MODULE", "flatten", "main", "parse_args", "translate_legacy"]


class _Parsed(Exception):
    """Carries the parsed ``args`` out of OpenRLHF's CLI in :func:`parse_args`."""

    def __init__(self, args: Any) -> None:
        super().__init__("parsed")
        self.parsed = args


def _stop(args: SimpleNamespace) -> None:
    raise _Parsed(args)


def _run_cli(argv: Sequence[str], *, stop_after_parse: bool, prog: str) -> Any:
    try:
        check_openrlhf_version()
        require("torch")
        require("transformers")
    except (UnsupportedOpenRLHF, UnsupportedVersion) as e:
        raise SystemExit(f"{prog}: error: {e}") from None
    parse_only = stop_after_parse or cli_patch.wants_help(argv)
    absent = gpu_stack.missing()
    if absent and not parse_only:
        raise SystemExit(f"{prog}: error: {gpu_stack.missing_message(absent)}")
    cli_patch.disarm_startup_hook()
    saved = sys.argv
    sys.argv = [prog, *translate_legacy(argv)]
    try:
        # Parsing alone never calls vLLM or flash-attn: placeholders may stand in.
        stand_ins = gpu_stack.stand_ins() if parse_only else contextlib.nullcontext()
        with stand_ins, cli_patch.patched(_stop if stop_after_parse else None):
            if parse_only:
                cli_patch.quiet_deepspeed_start()
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


def main(argv: Sequence[str] | None = None) -> None:
    """Runs OpenRLHF's ``train_ppo_ray`` with the SAS estimator available."""
    argv = sys.argv[1:] if argv is None else argv
    prog = "sas-openrlhf-train"
    if cli_patch.dry_run_requested():
        args = parse_args(argv, prog=prog)
        cli_patch.print_dry_run(args, [prog, *translate_legacy(argv)])
        return
    _run_cli(argv, stop_after_parse=False, prog=prog)


if __name__ == "__main__":
    main()
