#!/usr/bin/env bash
# Makes (once) and caches the Debian trixie roots the Raspberry Pi builds and tests run in, and
# prints where the one asked for is:
#
#   scripts/pi-root.sh build          the build root: trixie amd64 with Debian's Rust (rustc-web
#                                     1.96 and its standard library for arm64 and armhf), the
#                                     cross linkers and libclang; a directory, used in place
#   scripts/pi-root.sh arm64|armhf    a Pi-like root: trixie minbase for that architecture made
#                                     with mmdebstrap, its packages configured under qemu-user;
#                                     a tarball, unpacked afresh by each test (scripts/test-pi.sh)
#   scripts/pi-root.sh binfmt         only make sure qemu-user runs arm64 and armhf binaries
#
# Why: rustup cannot add a target on the machines facegate is built on, and Docker (cross-rs)
# is not there either; Debian's registry has everything. Raspberry Pi OS is Debian trixie.
#
# Needs root, debootstrap, mmdebstrap and qemu-user-static (installed with apt-get when
# missing). The roots are kept in $FACEGATE_PI_CACHE_DIR (default ~/.cache/facegate-pi), named by
# a digest of what goes into them, so changing a package list below makes a new one (older ones
# are removed). Foreign binaries run through binfmt_misc: when the qemu-aarch64 / qemu-arm entries
# are not registered, this registers them from qemu-user-static's /usr/lib/binfmt.d files
# (with the F flag, so they work inside chroots without a copy of qemu there: mmdebstrap
# requires that).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "pi-root: FAIL: $*" >&2; exit 1; }
say() { echo "pi-root: $*" >&2; }

SUITE=trixie
MIRROR=http://deb.debian.org/debian
# The build root: Debian's packaged Rust with both Pi standard libraries, the cross C
# toolchains (linkers, and C for ring and aws-lc-sys) with their sysroots (the target's
# <linux/videodev2.h> for nokhwa's bindings is in libc6-dev-*-cross), libclang for bindgen, and
# dpkg-dev: cargo-deb runs in the root too, where dpkg-shlibdeps finds the arm64/armhf libc
# (multiarch, pulled in by the standard libraries) to derive the packages' Depends.
BUILD_PACKAGES="rustc-web cargo-web libstd-rust-web-dev:arm64 libstd-rust-web-dev:armhf \
gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf libc6-dev-arm64-cross libc6-dev-armhf-cross \
libclang-dev pkg-config ca-certificates dpkg-dev"
# The Pi-like roots: what the package needs (as in scripts/test-deb.sh's bookworm root).
PI_INCLUDES=adduser,libstdc++6,logrotate
RECIPE=1 # bump when the way a root is made changes

case "${1:-}" in
  build|arm64|armhf|binfmt) what=$1 ;;
  -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
  *) echo "usage: scripts/pi-root.sh build|arm64|armhf|binfmt (--help)" >&2; exit 2 ;;
esac

[ "$(id -u)" = 0 ] || fail "the roots are made with debootstrap and chroot: run as root"
cache=${FACEGATE_PI_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/facegate-pi}
mkdir -p "$cache"

need_packages() {
  local missing=() pkg
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# qemu-user through binfmt_misc, for arm64 (qemu-aarch64) and armhf (qemu-arm).
binfmt() {
  need_packages qemu-user-static
  local dir=/proc/sys/fs/binfmt_misc name
  [ -e "$dir/register" ] || mount -t binfmt_misc binfmt_misc "$dir" 2>/dev/null ||
    fail "binfmt_misc is not mounted and cannot be (mount -t binfmt_misc binfmt_misc $dir)"
  for name in qemu-aarch64 qemu-arm; do
    [ -e "$dir/$name" ] && continue
    [ -f "/usr/lib/binfmt.d/$name.conf" ] || fail "/usr/lib/binfmt.d/$name.conf is missing (qemu-user-static)"
    say "registering $name with binfmt_misc"
    cat "/usr/lib/binfmt.d/$name.conf" >"$dir/register" 2>/dev/null ||
      fail "cannot register $name in $dir (binfmt_misc may not be writable here)"
  done
  grep -qx enabled "$dir/status" || fail "binfmt_misc is disabled ($dir/status)"
}

key() { printf '%s\n' "$RECIPE" "$SUITE" "$@" | sha256sum | cut -c1-12; }

# Removes the cached roots matching PATTERN other than KEEP (a changed recipe's leftovers),
# unless a process still runs in one (a build started before the recipe changed).
prune() {
  local pattern=$1 keep=$2 old
  for old in "$cache"/$pattern; do
    [ -e "$old" ] && [ "$old" != "$keep" ] || continue
    if find /proc -maxdepth 2 -name root -type l -lname "$old*" 2>/dev/null | grep -q .; then
      say "keeping the outdated $old: a process runs in it"; continue
    fi
    say "removing the outdated $old"
    rm -rf "$old"
  done
}

build_root() {
  local dir part
  dir="$cache/build-$SUITE-$(key "$BUILD_PACKAGES")"
  if [ -f "$dir/.facegate-root" ]; then echo "$dir"; return; fi
  need_packages debootstrap
  part="$dir.part"
  rm -rf "$part"
  say "debootstrap $SUITE (minbase) into $part"
  debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$part" "$MIRROR" \
    >"$cache/build-debootstrap.log" 2>&1 ||
    { tail -20 "$cache/build-debootstrap.log" >&2; fail "debootstrap $SUITE (log: $cache/build-debootstrap.log)"; }
  cp /etc/resolv.conf "$part/etc/resolv.conf"
  chroot "$part" dpkg --add-architecture arm64
  chroot "$part" dpkg --add-architecture armhf
  say "apt-get install $BUILD_PACKAGES"
  # shellcheck disable=SC2086
  { chroot "$part" apt-get update -q &&
    chroot "$part" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
      --no-install-recommends $BUILD_PACKAGES; } >"$cache/build-apt.log" 2>&1 ||
    { tail -20 "$cache/build-apt.log" >&2; fail "apt-get install in the build root (log: $cache/build-apt.log)"; }
  chroot "$part" apt-get clean
  chroot "$part" rustc --version >/dev/null || fail "no rustc in the build root"
  for sysroot in /usr/aarch64-linux-gnu /usr/arm-linux-gnueabihf; do
    [ -f "$part$sysroot/include/linux/videodev2.h" ] || fail "no $sysroot/include/linux/videodev2.h"
  done
  { chroot "$part" rustc --version; chroot "$part" cargo --version; echo "$BUILD_PACKAGES"; } \
    >"$part/.facegate-root"
  mv "$part" "$dir"
  prune "build-$SUITE-*" "$dir"
  say "build root ready: $dir ($(du -sh "$dir" | cut -f1))"
  echo "$dir"
}

pi_root() {
  local arch=$1 tarball
  tarball="$cache/pi-$SUITE-$arch-$(key "$arch" "$PI_INCLUDES" mmdebstrap).tar"
  binfmt
  if [ -f "$tarball" ]; then echo "$tarball"; return; fi
  need_packages mmdebstrap
  say "mmdebstrap --architectures=$arch $SUITE (minbase) into $tarball, under qemu-user"
  # mmdebstrap, not debootstrap --foreign: apt resolves and downloads on this machine and only
  # dpkg and the maintainer scripts run emulated; debootstrap's second stage runs its own
  # package-list parsing (perl, sed) under qemu too and took over 50 minutes here.
  mmdebstrap --mode=root --format=tar --variant=minbase --architectures="$arch" \
    --include="$PI_INCLUDES" "$SUITE" "$tarball.part" "$MIRROR" >"$cache/pi-$arch-mmdebstrap.log" 2>&1 ||
    { tail -20 "$cache/pi-$arch-mmdebstrap.log" >&2; rm -f "$tarball.part"; fail "mmdebstrap $arch (log: $cache/pi-$arch-mmdebstrap.log)"; }
  mv "$tarball.part" "$tarball"
  prune "pi-$SUITE-$arch-*.tar" "$tarball"
  say "$arch root ready: $tarball ($(du -h "$tarball" | cut -f1))"
  echo "$tarball"
}

case "$what" in
  build) build_root ;;
  arm64|armhf) pi_root "$what" ;;
  binfmt) binfmt ;;
esac
