# The two commands of the README, and the pieces they are made of.
.PHONY: demo test setup models check aws-e2e build-release deb cross-aarch64 cross-armv7 deb-aarch64 deb-armv7

# Run the demo: a scripted morning at the door (installs what it needs first).
demo: setup build-release
	scripts/demo.sh

# Run every check CI runs (installs what it needs first; starts a moto server for the AWS tests).
test: setup check
	scripts/run-tests.sh

setup:
	scripts/setup.sh

models:
	scripts/fetch-models.sh --dest models

check:
	cargo fmt --check
	cargo clippy --all-targets --features lambda -- -D warnings
	cargo clippy --no-default-features --features lambda --lib --bins -- -D warnings

# AWS mode end to end against an emulated AWS (make test runs it too; docs/aws.md).
aws-e2e: setup
	scripts/aws-e2e.sh

build-release:
	cargo build --release

# The Debian package for this machine (target/debian/facegate_*.deb).
deb: setup
	scripts/build-deb.sh

# Cross builds for the Pi with cross-rs and Docker (not runnable here: see cross/README.md).
cross-aarch64:
	cross build --release --target aarch64-unknown-linux-gnu

cross-armv7:
	cross build --release --target armv7-unknown-linux-gnueabihf

deb-aarch64: cross-aarch64
	scripts/build-deb.sh --target aarch64-unknown-linux-gnu --no-build

deb-armv7: cross-armv7
	scripts/build-deb.sh --target armv7-unknown-linux-gnueabihf --no-build
