//! Helpers shared by the integration tests: where the models and the face photos are, and
//! whether a test must skip (with a printed reason) because they are absent.
#![allow(dead_code)]

pub mod door;
pub mod ports;
pub mod relay;

use std::path::{Path, PathBuf};

use facegate::vision::{FaceEngine, RuntimeKind, VisionConfig, models};

/// The models directory, or `None` (with a reason printed) when the models are not fetched.
/// With `FACEGATE_REQUIRE_MODELS=1` (set by CI) a missing model fails the test instead.
pub fn model_dir() -> Option<PathBuf> {
    let dir = models::default_model_dir();
    let present = [models::YUNET, models::SFACE]
        .iter()
        .all(|m| dir.join(m.file_name).is_file());
    if present {
        return Some(dir);
    }
    if required("FACEGATE_REQUIRE_MODELS") {
        panic!(
            "models missing in {}: run scripts/fetch-models.sh",
            dir.display()
        );
    }
    eprintln!(
        "SKIP: models not found in {}; run scripts/fetch-models.sh",
        dir.display()
    );
    None
}

/// `../shared/faces` (or `$FACEGATE_FACES`), or `None` (with a reason printed) when it is
/// absent. With `FACEGATE_REQUIRE_FACES=1` or `FACEGATE_REQUIRE_MODELS=1` (both set by CI) a
/// missing folder fails the test instead: a checkout without the photos must not pass green.
pub fn faces_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("FACEGATE_FACES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/faces"));
    faces_at(
        dir,
        required("FACEGATE_REQUIRE_FACES") || required("FACEGATE_REQUIRE_MODELS"),
    )
}

/// `dir` when it holds the face photos; otherwise a panic when `required`, else `None`.
pub fn faces_at(dir: PathBuf, required: bool) -> Option<PathBuf> {
    if dir.join("dev").is_dir() {
        return Some(dir);
    }
    if required {
        panic!(
            "face photos missing at {} (FACEGATE_REQUIRE_FACES or FACEGATE_REQUIRE_MODELS is \
             set): put ../shared/faces beside the checkout or set FACEGATE_FACES",
            dir.display()
        );
    }
    eprintln!("SKIP: face photos not found at {}", dir.display());
    None
}

/// Whether the switch `name` is on (set to anything but empty or `0`).
pub fn required(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0")
}

/// A face engine on `runtime`, or `None` when the models are absent.
pub fn engine(runtime: RuntimeKind) -> Option<FaceEngine> {
    let dir = model_dir()?;
    let config = VisionConfig {
        runtime,
        model_dir: Some(dir),
        ..VisionConfig::default()
    };
    Some(FaceEngine::load(&config).expect("the face engine loads"))
}

/// Photo `n` (1-based) of `person` in the dev set, whatever its extension.
pub fn photo(faces: &Path, person: &str, n: usize) -> PathBuf {
    let dir = faces.join("dev").join(person);
    ["jpg", "png"]
        .iter()
        .map(|ext| dir.join(format!("{n:02}.{ext}")))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("no photo {n} for {person}"))
}

/// The first `count` people of the dev set with at least two photos from LFW (colour, 250x250).
pub fn people(faces: &Path, count: usize) -> Vec<String> {
    let csv = std::fs::read_to_string(faces.join("images.csv")).expect("images.csv");
    let mut seen: Vec<(String, usize)> = Vec::new();
    for line in csv.lines().skip(1) {
        let cols: Vec<&str> = line.split(',').collect();
        if cols.len() < 3 || cols[2] != "lfw" {
            continue;
        }
        match seen.iter_mut().find(|(p, _)| p == cols[1]) {
            Some((_, n)) => *n += 1,
            None => seen.push((cols[1].to_string(), 1)),
        }
    }
    seen.into_iter()
        .filter(|(_, n)| *n >= 2)
        .map(|(p, _)| p)
        .take(count)
        .collect()
}

/// Enrolls `user` (named "Ana") from `photo` into `group` through the `facegate` binary under
/// `config`, as an administrator would; panics with facegate's message when refused.
pub fn enroll_with_cli(config: &Path, user: &str, photo: &Path, group: &str) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_facegate"))
        .arg("--config")
        .arg(config)
        .args(["enroll", "--user", user, "--name", "Ana", "--photo"])
        .arg(photo)
        .args(["--group", group])
        .output()
        .expect("facegate runs");
    assert!(
        out.status.success(),
        "enroll {user}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
