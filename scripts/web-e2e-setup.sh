#!/usr/bin/env bash
# The browser test's driver (tests/web.rs): npm's playwright-core, pinned, into
# $FACEGATE_WEB_E2E_CACHE (default .web-e2e). It drives Debian's /usr/bin/chromium (installed by
# scripts/setup.sh); no browser is downloaded. Idempotent: an install of the same version stays.
set -euo pipefail
cd "$(dirname "$0")/.."

cache=${FACEGATE_WEB_E2E_CACHE:-.web-e2e}
wanted="playwright-core@1.65.1"
mkdir -p "$cache"
if [ ! -f "$cache/.installed" ] || [ "$(cat "$cache/.installed")" != "$wanted" ]; then
  echo "web-e2e-setup: installing $wanted into $cache"
  (cd "$cache" && { [ -f package.json ] || npm init -y >/dev/null; } \
    && npm install --quiet --no-audit --no-fund "$wanted")
  echo "$wanted" >"$cache/.installed"
fi
