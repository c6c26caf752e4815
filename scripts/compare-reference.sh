#!/usr/bin/env bash
# Speed and accuracy of facegate against the reference pipeline (OpenCV's FaceDetectorYN +
# FaceRecognizerSF with the same model files), on the same photos, one after the other in one
# run, with the same thread count. Prints both results and the time ratio.
#
#   scripts/compare-reference.sh [FACES_DIR] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
faces=${1:-../shared/faces/dev}
threads=${2:-1}
python3 -c 'import cv2' 2>/dev/null || python3 -m pip install --quiet 'opencv-python-headless<5' numpy
cargo build --release --quiet
out=$(mktemp -d)
python3 ../shared/tools/ref_eval.py "$faces" models --threads "$threads" --json "$out/ref.json" >/dev/null
for runtime in ort tract; do
  target/release/facegate --runtime "$runtime" --threads "$threads" eval-faces "$faces" --json > "$out/$runtime.json"
done
python3 - "$out" <<'PY'
import json, sys, os
d = sys.argv[1]
ref = json.load(open(os.path.join(d, "ref.json")))
print(f"reference (OpenCV {ref['opencv']}): detected {ref['detected']}/{ref['images']}, "
      f"FAR {ref['far_at_0363']*100:.4f} %, FRR {ref['frr_at_0363']*100:.3f} %, "
      f"TAR@1e-3 {ref['tar_at_far_1e3'][0]*100:.2f} %, {ref['ms_per_image']:.1f} ms/image (mean)")
for runtime in ("ort", "tract"):
    r = json.load(open(os.path.join(d, f"{runtime}.json")))
    print(f"facegate {runtime:5}: detected {r['detected']}/{r['images']}, FAR {r['far']*100:.4f} %, "
          f"FRR {r['frr']*100:.3f} %, TAR@1e-3 {r['tar_at_far_1e3']*100:.2f} %, "
          f"{r['mean_ms_per_image']:.1f} ms/image (mean), "
          f"ratio to reference {r['mean_ms_per_image']/ref['ms_per_image']:.2f}")
PY
