"""sas-core's interpreter-start hook: ``sas`` for ``python -m openrlhf.cli.train_ppo_ray``.

The wheel installs this module and ``sas_core_openrlhf_hook.pth`` (one line, importing
it) into site-packages, the way coverage and editable installs hook Python's start.
OpenRLHF has no plugin entry point, so this is how its own CLI module, run directly or
as the entrypoint of ``ray job submit``, gets ``--advantage_estimator sas``.

At start it only puts a finder on ``sys.meta_path``: no numpy, no torch, not even
``sas_core``. The finder answers no module; when ``openrlhf.cli.train_ppo_ray`` is
looked up, it calls ``sas_core.integrations.openrlhf.cli_patch.on_cli_import`` (once),
which patches OpenRLHF's parser, then lets the normal import go on.

It can never break an interpreter: at start every error is swallowed, and an error
while patching is reported once, on stderr, when OpenRLHF's CLI loads (with the
traceback when ``SAS_CORE_DEBUG=1``); OpenRLHF then runs as it would without sas-core.
``SAS_CORE_OPENRLHF_HOOK=0`` turns it off.
"""

import os
import sys

TARGET = "openrlhf.cli.train_ppo_ray"
SWITCH = "SAS_CORE_OPENRLHF_HOOK"


class OpenRLHFCLIFinder:
    """A meta path finder that finds nothing; it only notices OpenRLHF's CLI module."""

    armed = True

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name == TARGET and cls.armed:
            disarm()  # once per process, and never again if patching fails
            _patch_openrlhf_cli()
        return None


def _patch_openrlhf_cli():
    try:
        from sas_core.integrations.openrlhf.cli_patch import on_cli_import

        on_cli_import()
    except Exception as e:
        if os.environ.get("SAS_CORE_DEBUG") == "1":
            import traceback

            traceback.print_exc()
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        sys.stderr.write(
            f"sas-core: sas is not registered with {TARGET}: {reason} "
            "(the sas-openrlhf-train command is the explicit alternative)\n"
        )


def disarm():
    """Makes the finder inert (``sas-openrlhf-train`` does this: it patches by itself).
    It stays on ``sys.meta_path``: importlib may be iterating over that very list."""
    OpenRLHFCLIFinder.armed = False


def arm():
    if os.environ.get(SWITCH, "1").strip() == "0":
        return
    if OpenRLHFCLIFinder not in sys.meta_path:
        sys.meta_path.insert(0, OpenRLHFCLIFinder)


# Never stop an interpreter from starting (no contextlib.suppress: one import less).
try:  # noqa: SIM105
    arm()
except Exception:
    pass
