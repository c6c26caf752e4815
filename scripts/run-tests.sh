#!/usr/bin/env bash
# Runs the test suite with the services it needs: a moto server on 127.0.0.1 for the S3 and
# DynamoDB adapters, and cfn-lint for the SAM template. Both come from PyPI into a virtualenv
# ($FACEGATE_VENV, default .venv); moto is stopped when the tests end, pass or fail. Then the
# package test (scripts/test-deb.sh) with cargo-deb from crates.io ($FACEGATE_TOOLS, default
# .tools), the AWS end-to-end test (scripts/aws-e2e.sh, its tools in $FACEGATE_AWS_E2E_CACHE).
# Last the emulated-Pi test (scripts/test-pi.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

# Each phase says how long it took (CI's warm run must stay short).
phase_start=$SECONDS
phase() {
  echo "run-tests: $1: $((SECONDS - phase_start)) s"
  phase_start=$SECONDS
}

venv=${FACEGATE_VENV:-.venv}
if [ ! -x "$venv/bin/moto_server" ] || [ ! -x "$venv/bin/cfn-lint" ]; then
  echo "run-tests: installing moto and cfn-lint into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet 'moto[server]==5.*' 'cfn-lint==1.*'
fi

# The browser test's driver (playwright-core from npm; chromium is Debian's).
scripts/web-e2e-setup.sh

echo "run-tests: cfn-lint deploy/aws/template.yaml"
"$venv/bin/cfn-lint" deploy/aws/template.yaml

port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp -t facegate-moto.XXXXXX)
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 100); do
  if "$venv/bin/python" -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then
    break
  fi
  kill -0 "$moto_pid" 2>/dev/null || { cat "$log"; echo "run-tests: moto did not start" >&2; exit 1; }
  sleep 0.1
done
echo "run-tests: moto on 127.0.0.1:$port"

# Tests that need data or a tool fail instead of skipping: the models and photos
# (../shared/faces), moto, and systemd-analyze (scripts/setup.sh installs it).
# cargo-nextest, where installed, runs the tests of every binary side by side (one process per
# test) instead of one binary after another; `cargo test` otherwise.
runner=(cargo test --all-targets)
if cargo nextest --version >/dev/null 2>&1; then
  runner=(cargo nextest run --all-targets --no-tests=fail)
fi
FACEGATE_MOTO_URL="http://127.0.0.1:$port" FACEGATE_REQUIRE_MOTO=1 FACEGATE_REQUIRE_MODELS=1 \
  FACEGATE_REQUIRE_FACES=1 FACEGATE_REQUIRE_SYSTEMD=1 \
  "${runner[@]}" "$@"
phase "the test suite"

# Fuzzing (tests/fuzz.rs): mutants of real photos through decode -> detect and of the shipped
# config through parse -> check, from a fixed seed, for a bounded time per target; prints the
# inputs run, crashes and hangs. The test binary is the one built above; the two targets run
# side by side.
echo "run-tests: fuzz, ${FACEGATE_FUZZ_SECS:=20} s per target"
FACEGATE_FUZZ_SECS=$FACEGATE_FUZZ_SECS FACEGATE_REQUIRE_MODELS=1 \
  cargo test --test fuzz -- --nocapture --test-threads=2 fuzz_
phase "fuzz"

# AWS mode end to end: the stack deployed to an emulated AWS, the real Lambda, the device.
scripts/aws-e2e.sh
phase "AWS end to end"

tools=${FACEGATE_TOOLS:-.tools}
if [ ! -x "$tools/bin/cargo-deb" ]; then
  echo "run-tests: installing cargo-deb into $tools"
  cargo install --quiet --locked cargo-deb --version 3.8.0 --root "$tools"
fi
CARGO_DEB="$tools/bin/cargo-deb" scripts/test-deb.sh
phase "the package"
# The Pi packages, cross-built and run in emulated arm64/armhf roots (scripts/test-pi.sh).
CARGO_DEB="$tools/bin/cargo-deb" scripts/test-pi.sh ${FACEGATE_PI_ARCHES:+--arch "$FACEGATE_PI_ARCHES"}
phase "the emulated Pi"
