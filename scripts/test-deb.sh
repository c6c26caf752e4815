#!/usr/bin/env bash
# The package test: builds this machine's .deb and checks what a deployer gets.
#
# Always: the files, the conffile, the dependencies and the maintainer scripts (the unit is
# enabled, never started by the install). As root with debootstrap: installs the package into a
# minimal Debian bookworm root and checks there that the system user and its directories exist,
# the unit is enabled, `facegate --version` runs and `facegate doctor` finds the config and
# models (and fails, as it must, on the camera no chroot has); then purges it.
#
# The package holds the debug-profile binary the test suite already built (same code; a
# release build would add ~15 minutes to CI). `make deb` builds the real one.
#
#   scripts/test-deb.sh            (run by scripts/run-tests.sh after cargo test)
# Environment: CARGO_DEB (the cargo-deb binary), FACEGATE_DEB_ROOT_CACHE_DIR (where a tarball
# of the Debian root is kept, made on first use), FACEGATE_REQUIRE_DEB_ROOT=1 (CI: fail instead
# of skipping the install when not root or without debootstrap).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "test-deb: FAIL: $*" >&2; exit 1; }
pass() { echo "test-deb: ok: $*"; }

work=$(mktemp -d -t facegate-deb.XXXXXX)
root="$work/root"
cleanup() {
  if mountpoint -q "$root/proc" 2>/dev/null; then umount "$root/proc" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

scripts/build-deb.sh --no-build --profile dev --fast --output "$work" >"$work/build.log" 2>&1 ||
  { cat "$work/build.log"; fail "the package did not build"; }
deb=$(ls "$work"/facegate_*.deb)
pass "built $(basename "$deb") ($(du -h "$deb" | cut -f1))"

# --- What is in the package -----------------------------------------------------------------
contents=$(dpkg-deb -c "$deb" | awk '{print $NF}')
for path in ./usr/bin/facegate ./usr/lib/systemd/system/facegate.service \
  ./etc/facegate/facegate.toml ./usr/lib/facegate/libonnxruntime.so \
  ./usr/share/facegate/models/face_detection_yunet_2023mar_int8bq.onnx \
  ./usr/share/facegate/models/face_recognition_sface_2021dec_int8bq.onnx \
  ./usr/share/doc/facegate/README.md ./usr/share/doc/facegate/install.md \
  ./etc/logrotate.d/facegate; do
  grep -qx "$path" <<<"$contents" || fail "$path is not in the package"
done
pass "binary, unit, config, models, ONNX Runtime and docs are in the package"

dpkg-deb -e "$deb" "$work/control"
[ "$(sort "$work/control/conffiles" | tr '\n' ' ')" = "/etc/facegate/facegate.toml /etc/logrotate.d/facegate " ] ||
  fail "the conffiles are: $(cat "$work/control/conffiles")"
grep -q '^Depends:.*adduser' "$work/control/control" || fail "Depends lacks adduser"
grep -q 'deb-systemd-helper enable facegate.service' "$work/control/postinst" ||
  fail "postinst does not enable the unit"
if grep -Eq 'deb-systemd-invoke (start|restart) ' "$work/control/postinst"; then
  fail "postinst starts the service before it is configured"
fi
grep -q 'adduser --system' "$work/control/postinst" || fail "postinst makes no system user"
pass "conffile, Depends, and maintainer scripts (enabled, not started; a system user)"

# --- The Pi packages' layout, with this machine's binary standing in for a cross build -------
stand_in="$work/cross-target"
for target in aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf; do
  mkdir -p "$stand_in/$target/release"
  cp "${CARGO_TARGET_DIR:-target}/debug/facegate" "$stand_in/$target/release/facegate"
  CARGO_TARGET_DIR="$stand_in" scripts/build-deb.sh --target "$target" --no-build --fast \
    --output "$work/$target" >"$work/$target.log" 2>&1 ||
    { cat "$work/$target.log"; fail "the $target package did not build"; }
  pi_deb=$(ls "$work/$target"/*.deb)
  pi_root="$work/$target-files"
  dpkg-deb -x "$pi_deb" "$pi_root"
  pi_runtime=$(sed -n 's/^runtime = "\(.*\)"$/\1/p' "$pi_root/etc/facegate/facegate.toml")
  [ "$(dpkg-deb -f "$pi_deb" Package)" = facegate ] || fail "$target: package name"
  case "$target" in
    aarch64-*)
      [ "$(dpkg-deb -f "$pi_deb" Architecture)" = arm64 ] || fail "aarch64: architecture"
      [ -f "$pi_root/usr/lib/facegate/libonnxruntime.so" ] || fail "arm64: no ONNX Runtime"
      # ELF e_machine, bytes 18-19: 0xb7 is AArch64.
      machine=$(od -An -tx1 -j18 -N2 "$pi_root/usr/lib/facegate/libonnxruntime.so" | tr -d ' ')
      [ "$machine" = b700 ] || fail "arm64: the library is not aarch64 (e_machine $machine)"
      [ "$pi_runtime" = ort ] || fail "arm64: runtime $pi_runtime" ;;
    armv7-*)
      [ "$(dpkg-deb -f "$pi_deb" Architecture)" = armhf ] || fail "armv7: architecture"
      [ ! -e "$pi_root/usr/lib/facegate" ] || fail "armhf ships ONNX Runtime"
      [ "$pi_runtime" = tract ] || fail "armhf: runtime $pi_runtime" ;;
  esac
done
pass "arm64 package carries the aarch64 ONNX Runtime; armhf runs tract and carries none"

# --- Installed into a minimal Debian --------------------------------------------------------
if [ "$(id -u)" != 0 ] || ! command -v debootstrap >/dev/null 2>&1; then
  # CI (.ci/run, as root, with debootstrap from scripts/setup.sh) sets the switch: there a
  # skipped install is a failure, not a pass.
  if [ "${FACEGATE_REQUIRE_DEB_ROOT:-0}" != 0 ]; then
    fail "FACEGATE_REQUIRE_DEB_ROOT is set but this is not root with debootstrap: the install into a Debian root cannot run"
  fi
  echo "test-deb: SKIP: not root or no debootstrap: the install into a Debian root was not tried"
  exit 0
fi
includes=adduser,libstdc++6,logrotate
cache_dir=${FACEGATE_DEB_ROOT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}}
cache="$cache_dir/facegate-debian-bookworm-${includes//,/-}.tar"
mkdir -p "$root"
if [ -f "$cache" ]; then
  tar -C "$root" -xf "$cache"
else
  echo "test-deb: debootstrap bookworm (minbase) into $root, cached as $cache"
  debootstrap --variant=minbase --include="$includes" bookworm "$root" \
    http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log"; fail "debootstrap"; }
  mkdir -p "$(dirname "$cache")"
  tar -C "$root" -cf "$cache.part" . && mv "$cache.part" "$cache"
fi
mount -t proc proc "$root/proc"
in_root() { chroot "$root" "$@"; }

cp "$deb" "$root/tmp/facegate.deb"
in_root dpkg -i /tmp/facegate.deb >"$work/install.log" 2>&1 ||
  { cat "$work/install.log"; fail "dpkg -i"; }
grep -q "enabled, but not started" "$work/install.log" || fail "no next steps after install"
pass "dpkg -i in a fresh bookworm root"

in_root getent passwd facegate | grep -q ':/var/lib/facegate:/usr/sbin/nologin$' ||
  fail "no facegate system user"
groups=$(in_root id -nG facegate)
for group in video gpio; do
  grep -qw "$group" <<<"$groups" || fail "facegate is not in $group ($groups)"
done
[ "$(in_root stat -c '%a %U' /var/lib/facegate)" = "700 facegate" ] ||
  fail "/var/lib/facegate is $(in_root stat -c '%a %U' /var/lib/facegate)"
[ "$(in_root stat -c '%a %U:%G' /etc/facegate/facegate.toml)" = "640 root:facegate" ] ||
  fail "the config is $(in_root stat -c '%a %U:%G' /etc/facegate/facegate.toml)"
[ -L "$root/etc/systemd/system/multi-user.target.wants/facegate.service" ] ||
  fail "the unit is not enabled"
in_root logrotate --debug /etc/logrotate.d/facegate >"$work/logrotate.log" 2>&1 ||
  { cat "$work/logrotate.log"; fail "logrotate refuses /etc/logrotate.d/facegate"; }
pass "system user in video and gpio, private data dir, config readable by the service, unit enabled, logrotate accepts its file"

version=$(in_root facegate --version)
[ "$version" = "facegate $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)" ] ||
  fail "facegate --version printed '$version'"
pass "facegate --version: $version"

# The doctor as the service's user: config, data dir, models and clock pass; the camera is
# missing (exit 1); the relay is simulated and nobody is enrolled (warnings).
set +e
in_root runuser -u facegate -- facegate doctor --json --camera-timeout 1 >"$work/doctor.json" 2>"$work/doctor.err"
code=$?
set -e
[ "$code" = 1 ] || { cat "$work/doctor.json" "$work/doctor.err"; fail "doctor exited $code, not 1"; }
python3 - "$work/doctor.json" <<'PY' || fail "the doctor's verdicts in the Debian root"
import json, sys
report = json.load(open(sys.argv[1]))
verdicts = {c["name"]: c["verdict"] for c in report["checks"]}
expected = {"config": "ok", "data dir": "ok", "models": "ok", "camera": "fail",
            "relay": "warn", "backend": "warn", "clock": "ok"}
wrong = {k: (verdicts.get(k), v) for k, v in expected.items() if verdicts.get(k) != v}
if wrong:
    print("test-deb: got (verdict, expected):", wrong, json.dumps(report, indent=1), file=sys.stderr)
    sys.exit(1)
models = next(c for c in report["checks"] if c["name"] == "models")["detail"]
assert "/usr/share/facegate/models" in models, models
PY
pass "facegate doctor in the root: config, data dir, models, clock ok; no camera → exit 1"

in_root dpkg --purge facegate >"$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "purge"; }
[ ! -e "$root/usr/bin/facegate" ] && [ ! -e "$root/var/lib/facegate" ] ||
  fail "purge left the binary or the data directory"
[ ! -e "$root/etc/systemd/system/multi-user.target.wants/facegate.service" ] ||
  fail "purge left the unit enabled"
pass "dpkg --purge removes the package, its data and its unit link"
