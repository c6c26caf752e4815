# The two commands of the README, and the pieces they are made of.
.PHONY: demo test setup models check build-release deb cross-aarch64 cross-armv7 deb-aarch64 deb-armv7 \
  test-pi cargo-deb

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

build-release:
	cargo build --release

# The Debian package for this machine (target/debian/facegate_*.deb).
deb: setup
	scripts/build-deb.sh

# Raspberry Pi builds (release) with Debian's Rust and cross linkers in a cached Debian trixie
# build root; needs root. The binaries land in $FACEGATE_CROSS_TARGET/<triple>/<triple>/release/
# (default target/cross: one cargo target directory per target, so both can build at once).
# cross/README.md has the details and timings.
cross-aarch64:
	scripts/cross-build.sh --target aarch64-unknown-linux-gnu

cross-armv7:
	scripts/cross-build.sh --target armv7-unknown-linux-gnueabihf

# cargo-deb: the one on the PATH, else the one `make cargo-deb` installs.
CARGO_DEB_BIN = $(shell command -v cargo-deb || echo "$${FACEGATE_TOOLS:-.tools}/bin/cargo-deb")

# The Pi packages from those binaries (arm64 with ONNX Runtime's aarch64 library, armhf on
# tract), in $FACEGATE_CROSS_TARGET/<triple>/<triple>/debian/; cargo-deb runs in the build root
# too (the target's strip, and dpkg-shlibdeps for the libc6 dependency).
deb-aarch64: cross-aarch64 cargo-deb
	CARGO_DEB=$(CARGO_DEB_BIN) scripts/build-deb.sh --target aarch64-unknown-linux-gnu --no-build --in-build-root

deb-armv7: cross-armv7 cargo-deb
	CARGO_DEB=$(CARGO_DEB_BIN) scripts/build-deb.sh --target armv7-unknown-linux-gnueabihf --no-build --in-build-root

# The emulated-Pi test alone: both packages installed and run in arm64/armhf roots under
# qemu-user (make test runs it too, when the cached roots and builds are there).
test-pi: cargo-deb
	FACEGATE_REQUIRE_PI=1 scripts/test-pi.sh

# cargo-deb into .tools, unless one is already installed.
cargo-deb:
	@[ -x "$${FACEGATE_TOOLS:-.tools}/bin/cargo-deb" ] || command -v cargo-deb >/dev/null || \
	  cargo install --quiet --locked cargo-deb --version 3.8.0 --root "$${FACEGATE_TOOLS:-.tools}"
