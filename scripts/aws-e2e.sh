#!/usr/bin/env bash
# AWS mode end to end against an emulated AWS (docs/aws.md, "The end-to-end test"): installs
# its tools (ministack, the SAM CLI and parliament from PyPI, each in its own virtualenv;
# aws-amplify from npm) into $FACEGATE_AWS_E2E_CACHE (default .aws-e2e), builds the Lambda
# (without the device), the facegate binary and the two test examples into $CARGO_TARGET_DIR,
# then runs scripts/aws_e2e.py. Everything listens on 127.0.0.1 and is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

cache=${FACEGATE_AWS_E2E_CACHE:-.aws-e2e}
target=${CARGO_TARGET_DIR:-$PWD/target}
export CARGO_TARGET_DIR=$target
faces=${FACEGATE_FACES_DIR:-${FACEGATE_FACES:-../shared/faces}}
models=${FACEGATE_MODEL_DIR:-models}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

venv() { # NAME PACKAGE...
  local dir="$cache/$1" stamp="$cache/$1/.installed" want
  shift
  want="$*"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "aws-e2e: installing $want into $dir"
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/pip" install --quiet --upgrade pip
    "$dir/bin/pip" install --quiet "$@"
    echo "$want" >"$stamp"
  fi
}
# ministack pins botocore; the SAM transform in its CloudFormation needs aws-sam-translator, and
# Cognito signs tokens with a real RSA key only with cryptography (else a dummy key).
venv ministack ministack==1.5.33 aws-sam-translator==1.115.0 botocore==1.43.106 boto3==1.43.106 \
  cryptography==50.0.2
venv sam aws-sam-cli==1.170.0
venv parliament parliament==1.6.4
node_dir="$cache/node"
amplify="aws-amplify@6.16.2 @aws-sdk/client-s3@3.1175.0"
if [ ! -f "$node_dir/.installed" ] || [ "$(cat "$node_dir/.installed")" != "$amplify" ]; then
  echo "aws-e2e: installing $amplify into $node_dir"
  rm -rf "$node_dir"
  mkdir -p "$node_dir"
  (cd "$node_dir" && npm init -y >/dev/null && npm install --quiet --no-audit --no-fund $amplify)
  echo "$amplify" >"$node_dir/.installed"
fi

[ -d "$faces/dev" ] || { echo "aws-e2e: no photos in $faces (../shared/faces)" >&2; exit 1; }
[ -f "$models/face_recognition_sface_2021dec_int8bq.onnx" ] || scripts/fetch-models.sh --dest "$models"
# Absolute: the servers run in their own work directory.
models=$(cd "$models" && pwd)
faces=$(cd "$faces" && pwd)

echo "aws-e2e: building facegate and the test examples (dev profile, $target)"
cargo build --quiet --bin facegate --example fake_rekognition --example verify_tokens
# The Lambda itself is built by `sam build` (deploy/aws/lambda/Makefile, LAMBDA_TARGET=host).

"$cache/ministack/bin/python" scripts/aws_e2e.py \
  --target "$target" --faces "$faces" --models "$models" \
  --ministack "$cache/ministack/bin/ministack" --sam "$cache/sam/bin/sam" \
  --parliament "$cache/parliament/bin/parliament" --node-modules "$node_dir/node_modules" \
  --report "${FACEGATE_AWS_E2E_REPORT:-$cache/report.json}"
