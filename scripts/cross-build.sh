#!/usr/bin/env bash
# Cross-builds facegate for a Raspberry Pi with Debian's own toolchain, in a cached Debian
# trixie build root (scripts/pi-root.sh build): Debian's rustc 1.96 (rustc-web) and standard
# library for arm64/armhf, the gcc cross linkers, and libclang so bindgen generates nokhwa's
# V4L2 bindings from the target's <linux/videodev2.h>.
#
#   scripts/cross-build.sh --target TRIPLE [--profile release|dev] [--quick]
#   scripts/cross-build.sh --target TRIPLE --cargo-deb PATH [--deb-output DIR] -- ARGS…
#
# --quick (the emulated-Pi test's build): the release profile with facegate's own crate at
# opt-level 0 and incremental; every dependency is built exactly as in the release build (and
# shared with it), so a test after a source change recompiles one crate in a minute or two
# instead of optimising it for several. `make cross-*` never passes it.
#
# --cargo-deb runs that cargo-deb binary (bind-mounted) in the root with ARGS instead of cargo
# build: scripts/build-deb.sh --in-build-root uses it, so the binary is stripped with the
# target's strip and the Depends derived by dpkg-shlibdeps from the target's libc.
#
# TRIPLE is aarch64-unknown-linux-gnu (64-bit Pi OS) or armv7-unknown-linux-gnueabihf (32-bit).
# Each target has its own cargo target directory, $FACEGATE_CROSS_TARGET/TRIPLE (default
# target/cross/TRIPLE), so the two can build at once; the binary lands in
# $FACEGATE_CROSS_TARGET/TRIPLE/TRIPLE/{release,debug}/facegate, where
# `CARGO_TARGET_DIR=$FACEGATE_CROSS_TARGET/TRIPLE scripts/build-deb.sh --target TRIPLE
# --no-build` packs it.
#
# The sources are bind-mounted read-only at /build/src, the target directory at /build/target,
# and the host's cargo registry ($CARGO_HOME/registry) at /root/.cargo/registry, so crates are
# downloaded once and shared with the host's builds; crates.io is reached with the host's CA
# bundle. The mounts live in a private mount namespace (unshare -m): nothing is left mounted
# when the build ends or is killed. Needs root. Environment: FACEGATE_PI_CACHE_DIR (the
# roots), FACEGATE_CROSS_TARGET, CARGO_BUILD_JOBS, SOURCE_DATE_EPOCH.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "cross-build: FAIL: $*" >&2; exit 1; }

target=""
profile=release
quick=0
cargo_deb=""
deb_output=""
while [ $# -gt 0 ]; do
  case "$1" in
    --target) target=$2; shift 2 ;;
    --profile) profile=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    --cargo-deb) cargo_deb=$2; shift 2 ;;
    --deb-output) deb_output=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
    *) echo "cross-build: unknown option $1" >&2; exit 2 ;;
  esac
done

case "$target" in
  aarch64-unknown-linux-gnu) gnu=aarch64-linux-gnu ;;
  armv7-unknown-linux-gnueabihf) gnu=arm-linux-gnueabihf ;;
  *) echo "cross-build: --target aarch64-unknown-linux-gnu or armv7-unknown-linux-gnueabihf" >&2; exit 2 ;;
esac
case "$profile" in
  release) out=release ;;
  dev) out=debug ;;
  *) fail "--profile release or dev, not $profile" ;;
esac

if [ "${FACEGATE_CROSS_IN_NAMESPACE:-}" != 1 ]; then
  [ "$(id -u)" = 0 ] || fail "the build runs in a chroot: run as root (sudo make cross-…)"
  root=$(scripts/pi-root.sh build)
  target_dir=${FACEGATE_CROSS_TARGET:-target/cross}/$target
  mkdir -p "$target_dir"
  export FACEGATE_CROSS_IN_NAMESPACE=1 FACEGATE_CROSS_ROOT=$root FACEGATE_CROSS_TARGET_ABS
  FACEGATE_CROSS_TARGET_ABS=$(cd "$target_dir" && pwd)
  if [ -n "$cargo_deb" ]; then
    cargo_deb=$(realpath "$(command -v "$cargo_deb")") || fail "no cargo-deb at $cargo_deb"
    if [ -n "$deb_output" ]; then mkdir -p "$deb_output" && deb_output=$(cd "$deb_output" && pwd); fi
    exec unshare --mount --propagation private "$0" --target "$target" --profile "$profile" \
      --cargo-deb "$cargo_deb" ${deb_output:+--deb-output "$deb_output"} -- "$@"
  fi
  start=$(date +%s)
  unshare --mount --propagation private \
    "$0" --target "$target" --profile "$profile" $([ "$quick" = 1 ] && echo --quick)
  bin="$target_dir/$target/$out/facegate"
  [ -x "$bin" ] || fail "no $bin after the build"
  echo "cross-build: $bin ($(du -h "$bin" | cut -f1), built in $(( $(date +%s) - start )) s)"
  exit 0
fi

# --- Inside the private mount namespace ----------------------------------------------------
root=$FACEGATE_CROSS_ROOT
registry=${CARGO_HOME:-$HOME/.cargo}/registry
mkdir -p "$registry" "$root/build/src" "$root/build/target" "$root/build/out" \
  "$root/root/.cargo/registry"
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount --bind "$PWD" "$root/build/src"
mount -o remount,bind,ro "$root/build/src"
mount --bind "$FACEGATE_CROSS_TARGET_ABS" "$root/build/target"
mount --bind "$registry" "$root/root/.cargo/registry"
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/host-ca.crt"

T=$(echo "$target" | tr 'a-z-' 'A-Z_')
t=${target//-/_}
sysroot=/usr/$gnu
env=(HOME=/root PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
  CARGO_HOME=/root/.cargo CARGO_TARGET_DIR=/build/target
  CARGO_HTTP_CAINFO=/etc/ssl/host-ca.crt SSL_CERT_FILE=/etc/ssl/host-ca.crt
  "CARGO_TARGET_${T}_LINKER=$gnu-gcc" "CC_$t=$gnu-gcc" "AR_$t=$gnu-ar"
  "BINDGEN_EXTRA_CLANG_ARGS_$t=--sysroot=$sysroot -I$sysroot/include")
[ -n "${CARGO_BUILD_JOBS:-}" ] && env+=("CARGO_BUILD_JOBS=$CARGO_BUILD_JOBS")
[ -n "${SOURCE_DATE_EPOCH:-}" ] && env+=("SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH")

if [ -n "$cargo_deb" ]; then
  # cargo-deb in the root: the target's strip ($gnu-strip) and dpkg-shlibdeps with the
  # target's libc (multiarch) are there; the .deb goes to --deb-output or the target dir.
  touch "$root/usr/local/bin/cargo-deb"
  mount --bind "$cargo_deb" "$root/usr/local/bin/cargo-deb"
  out_args=()
  if [ -n "$deb_output" ]; then
    mount --bind "$deb_output" "$root/build/out"
    out_args=(--output /build/out)
  fi
  exec chroot "$root" /usr/bin/env -i "${env[@]}" /bin/sh -c 'cd /build/src && exec cargo-deb "$@"' \
    sh --target "$target" "$@" "${out_args[@]}"
fi

quick_config=()
if [ "$quick" = 1 ]; then
  quick_config=(--config "profile.$profile.package.facegate.opt-level=0"
    --config "profile.$profile.incremental=true")
fi
exec chroot "$root" /usr/bin/env -i "${env[@]}" \
  /bin/sh -c 'cd /build/src && rustc --version && exec cargo build --locked --profile "$@" --bin facegate' \
  sh "$profile" --target "$target" "${quick_config[@]}"
