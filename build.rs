//! Records when the binary was built, so `facegate doctor` can tell a Pi (no real-time clock)
//! whose clock is behind: a time before the build is certainly wrong, and JWT checks depend on
//! the time. `SOURCE_DATE_EPOCH` wins, for reproducible builds.

use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
    println!("cargo:rustc-env=FACEGATE_BUILD_EPOCH={epoch}");
}
