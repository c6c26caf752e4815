# The two commands of the README, and the pieces they are made of.
.PHONY: demo test setup models check build-release

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
	cargo clippy --all-targets -- -D warnings
	cargo clippy --features lambda --bin facegate-lambda -- -D warnings

build-release:
	cargo build --release
