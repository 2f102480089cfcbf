#!/usr/bin/env bash
# aarch64 check: the manylinux2014 aarch64 wheel (GH200/GB200 nodes) runs the README's
# quick example under qemu-user, with Debian's arm64 CPython and numpy as its only
# packages (a sysroot unpacked from Debian's arm64 .debs, no pip, nothing else).
#
# Needs root (apt) and this machine's Debian archive; the wheel is built by
# `make wheel-aarch64` (zig as the cross linker). Where Debian's qemu-user or the arm64
# packages cannot be installed, the check says so and stops without failing: it checks a
# wheel, not this machine's package mirror.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIST=${DIST:-$ROOT/dist}
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -1)
skip() { echo "aarch64 check: skipped, $1"; exit 0; }

wheel=$(ls "$DIST"/sas_core-"$VERSION"-cp310-abi3-manylinux*_aarch64*.whl 2>/dev/null) \
  || skip "no aarch64 wheel in $DIST (make wheel-aarch64 could not build one)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! command -v qemu-aarch64 >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user >/dev/null 2>&1 \
    || skip "Debian's qemu-user does not install here"
fi
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  dpkg --add-architecture arm64
  apt-get update -qq >/dev/null 2>&1 || skip "apt cannot read the arm64 package lists"
fi
# CPython 3.11 and numpy for arm64 with what they load (apt's recursive dependencies,
# minus the packaging tools a sysroot does not run).
mkdir -p "$work/debs" "$work/root"
pkgs=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances python3.11-minimal:arm64 libpython3.11-stdlib:arm64 \
    python3-numpy:arm64 2>/dev/null | grep -E '^[a-z0-9]' | grep ':arm64$' | sort -u \
    | grep -vE '^(debconf|dpkg|perl|python3-numpy-abi|python3-numpy-api)' || true)
[[ -n "$pkgs" ]] || skip "apt knows no arm64 python3.11 (no arm64 package lists?)"
(cd "$work/debs" && apt-get download $pkgs >/dev/null 2>&1) || skip "the arm64 .debs do not download"
for deb in "$work"/debs/*.deb; do dpkg -x "$deb" "$work/root"; done
# Debian points these at the chosen BLAS/LAPACK through /etc/alternatives
lib=$work/root/usr/lib/aarch64-linux-gnu
ln -sf blas/libblas.so.3 "$lib/libblas.so.3"
ln -sf lapack/liblapack.so.3 "$lib/liblapack.so.3"
# "Install" the wheel: unpacked into the sysroot's site-packages, as pip would
python3 -m zipfile -e "$wheel" "$work/root/usr/lib/python3/dist-packages"

run() { (cd "$work" && qemu-aarch64 -L "$work/root" "$work/root/usr/bin/python3.11" -I "$@"); }
machine=$(run -c 'import platform, sas_core; print(platform.machine(), sas_core.__version__)')
[[ "$machine" == "aarch64 $VERSION" ]] || { echo "aarch64 check: got '$machine'" >&2; exit 1; }
run "$ROOT/scripts/readme_examples.py" "$ROOT/README.md" --first
echo "aarch64 check: $(basename "$wheel") runs the README's quick example under qemu-aarch64 (Debian arm64 CPython 3.11, numpy $(run -c 'import numpy; print(numpy.__version__)'))"
