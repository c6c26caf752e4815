//! Helpers shared by the integration tests: where the models and the face photos are, and
//! whether a test must skip (with a printed reason) because they are absent.
#![allow(dead_code)]

pub mod door;
pub mod ports;
pub mod relay;
pub mod service;

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

/// Runs the `facegate` binary with `args` from the project root.
pub fn facegate(args: &[&str]) -> std::process::Output {
    facegate_within(args, std::time::Duration::from_secs(120))
}

/// Runs `facegate` with `args`, killing it (and failing the test) if it has not finished
/// within `limit`: a command that reads a device or waits on a FIFO must not hang.
pub fn facegate_within(args: &[&str], limit: std::time::Duration) -> std::process::Output {
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_facegate"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("facegate runs");
    let started = std::time::Instant::now();
    while child.try_wait().expect("facegate status").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("facegate output");
            panic!(
                "facegate {args:?} still ran after {limit:?}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().expect("facegate output")
}

/// Exit 2 with `needle` in the message: an error, not a panic (101), not an abort (134), and
/// not success.
pub fn assert_clear_error(out: &std::process::Output, needle: &str) {
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{:?}; stderr: {text}",
        out.status
    );
    assert!(text.contains(needle), "expected {needle:?} in: {text}");
    assert!(!text.contains("panicked"), "{text}");
}

/// A grey PNG of `width`×`height`: a 1,000,000×1 strip is a 3 KB file.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::GrayImage::from_pixel(width, height, image::Luma([128]));
    let mut out = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("PNG encoding");
    out
}

/// `jpeg` with the size in its first frame header (SOF) replaced: what a fuzzer's mutant of a
/// real photo looks like to the decoder. `None` when there is no frame header.
pub fn with_jpeg_size(jpeg: &[u8], width: u16, height: u16) -> Option<Vec<u8>> {
    let mut out = jpeg.to_vec();
    let at = sof_offset(jpeg)?;
    out[at + 5..at + 7].copy_from_slice(&height.to_be_bytes());
    out[at + 7..at + 9].copy_from_slice(&width.to_be_bytes());
    Some(out)
}

/// Where the first SOF marker of `jpeg` starts.
pub fn sof_offset(jpeg: &[u8]) -> Option<usize> {
    if !jpeg.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut at = 2;
    while at + 9 <= jpeg.len() && jpeg[at] == 0xFF {
        let marker = jpeg[at + 1];
        if matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            return Some(at);
        }
        at += 2 + u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]) as usize;
    }
    None
}

/// The embedded backend over `dir` on ONNX Runtime, with `config` and `clock`; `None` (with a
/// reason printed) when the models are absent.
pub fn embedded(
    dir: &Path,
    clock: &facegate::clock::ManualClock,
    config: &facegate::backend::embedded::EmbeddedConfig,
) -> Option<facegate::backend::embedded::EmbeddedBackend> {
    let engine = engine(RuntimeKind::Ort)?;
    Some(
        facegate::backend::embedded::EmbeddedBackend::open(
            dir,
            std::sync::Arc::new(std::sync::Mutex::new(engine)),
            config,
            facegate::matching::MatchingConfig::default().rule(),
            std::sync::Arc::new(clock.clone()),
        )
        .expect("the embedded backend opens"),
    )
}

/// The first `count` people whose first photo enrolls (one face that passes the quality
/// gate), with that photo; people whose photo is refused are skipped.
pub async fn enrollable_people(
    backend: &facegate::backend::embedded::EmbeddedBackend,
    faces: &Path,
    count: usize,
) -> Vec<(String, Vec<u8>)> {
    let mut found = Vec::new();
    for person in people(faces, 40) {
        if found.len() == count {
            break;
        }
        let bytes = std::fs::read(photo(faces, &person, 1)).unwrap();
        if backend.faces.enrollable_embedding(&bytes).await.is_ok() {
            found.push((person, bytes));
        }
    }
    assert_eq!(
        found.len(),
        count,
        "{count} enrollable people among the first 40"
    );
    found
}

/// The device flow over `backend`, as the door runs it.
pub fn flow(
    backend: &std::sync::Arc<facegate::backend::embedded::EmbeddedBackend>,
    clock: &facegate::clock::ManualClock,
) -> facegate::auth::DeviceFlow {
    facegate::auth::DeviceFlow::new(
        &facegate::backend::open::BackendPorts::embedded(backend.clone()),
        std::sync::Arc::new(clock.clone()),
    )
}
