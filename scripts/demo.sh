#!/usr/bin/env bash
# The face comparison demo: the engine on real photos, same person and different people.
# Uses ../shared/faces when present, else public-domain photos from PyPI packages.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/facegate

faces=../shared/faces/dev
if [ -d "$faces" ]; then
  a1=$(ls "$faces"/person_001/01.* | head -n1); a2=$(ls "$faces"/person_001/02.* | head -n1)
  b1=$(ls "$faces"/person_005/01.* | head -n1)
else
  dir=${XDG_CACHE_HOME:-$HOME/.cache}/facegate-demo
  mkdir -p "$dir"
  if [ ! -f "$dir/astronaut.png" ]; then
    python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$dir" scikit-image matplotlib
    python3 - "$dir" <<'PY'
import sys, zipfile, glob, os
d = sys.argv[1]
for pattern, member, out in [("scikit_image-*.whl", "skimage/data/astronaut.png", "astronaut.png"),
                             ("matplotlib-*.whl", "matplotlib/mpl-data/sample_data/grace_hopper.jpg", "hopper.jpg")]:
    with zipfile.ZipFile(glob.glob(os.path.join(d, pattern))[0]) as z:
        open(os.path.join(d, out), "wb").write(z.read(member))
PY
  fi
  a1=$dir/astronaut.png; a2=$dir/astronaut.png; b1=$dir/hopper.jpg
fi

echo "== faces in $a1"
"$bin" detect "$a1"
echo
echo "== same person: $a1 vs $a2"
"$bin" compare "$a1" "$a2"
echo
echo "== different people: $a1 vs $b1"
"$bin" compare "$a1" "$b1"
echo
echo "== the same with the pure-Rust runtime (tract)"
"$bin" --runtime tract compare "$a1" "$a2"

if [ -d "$faces" ]; then
  data=$(mktemp -d)
  trap 'rm -rf "$data"' EXIT
  c1=$(ls "$faces"/person_001/03.* | head -n1)
  echo
  echo "== the embedded backend: enroll person_001 into group staff (data in $data)"
  "$bin" --data "$data" enroll --user ana@example.com --name "Ana" --photo "$a1" --group staff
  echo
  echo "== sign in with another photo of her (identified 1:N, challenge, verified JWT, door policy)"
  "$bin" --data "$data" auth --photo "$c1" || true
  echo
  echo "== a stranger"
  "$bin" --data "$data" auth --photo "$b1" || true
  echo
  echo "== the stranger claiming her name"
  "$bin" --data "$data" auth --photo "$b1" --user ana@example.com || true
fi
