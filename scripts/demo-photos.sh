#!/usr/bin/env bash
# Public-domain photos for the demo when ../shared/faces is absent: scikit-image's astronaut
# (Eileen Collins, NASA) and matplotlib's Grace Hopper, taken from their PyPI wheels, laid out
# one folder per person. Prints the folder.
set -euo pipefail
dir=${XDG_CACHE_HOME:-$HOME/.cache}/facegate-demo-photos
if [ ! -f "$dir/astronaut/01.png" ] || [ ! -f "$dir/hopper/01.jpg" ]; then
  mkdir -p "$dir.wheels" "$dir/astronaut" "$dir/hopper"
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$dir.wheels" scikit-image matplotlib >&2
  python3 - "$dir" <<'PY'
import sys, zipfile, glob, os
d = sys.argv[1]
for pattern, member, out in [("scikit_image-*.whl", "skimage/data/astronaut.png", "astronaut/01.png"),
                             ("matplotlib-*.whl", "matplotlib/mpl-data/sample_data/grace_hopper.jpg", "hopper/01.jpg")]:
    with zipfile.ZipFile(sorted(glob.glob(os.path.join(d + ".wheels", pattern)))[-1]) as z:
        open(os.path.join(d, out), "wb").write(z.read(member))
PY
fi
echo "$dir"
