#!/usr/bin/env bash
# Install what facegate needs to build, test and run its demo on a fresh Debian/Ubuntu machine
# with Rust installed. Idempotent: what is already there is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian packages: libclang for nokhwa's V4L2 bindings, pkg-config for -sys crates, debootstrap
# for the package test (scripts/test-deb.sh), systemd for systemd-analyze (tests/systemd_unit.rs,
# which fails without it under FACEGATE_REQUIRE_SYSTEMD=1, as scripts/run-tests.sh sets),
# mosquitto and mosquitto-clients for tests/mqtt.rs (the broker and the independent client; the
# tests start their own broker on a free 127.0.0.1 port; a service the package enabled is
# disabled below); chromium, nodejs and npm for the web console's browser test (tests/web.rs)
# and the AWS end-to-end test's Amplify client.
missing=()
for pkg in libclang-dev pkg-config debootstrap systemd mosquitto mosquitto-clients chromium; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
# Node.js and npm, unless some are on the PATH already (from Debian or elsewhere: Debian's npm
# cannot be installed beside another vendor's nodejs).
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
# Python's venv module for the test tools (moto, cfn-lint), when python3 lacks it.
python3 -m venv --help >/dev/null 2>&1 || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The tests run their own broker; the package's service (where systemd runs it) must not
# listen on 1883 for everyone.
if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled mosquitto >/dev/null 2>&1; then
  as_root systemctl disable --now mosquitto >/dev/null 2>&1 || true
fi

# Models and ONNX Runtime, checked against their SHA-256.
scripts/fetch-models.sh --dest models

# rustfmt and clippy for the checks in `make test`.
if command -v rustup >/dev/null 2>&1; then
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
fi
