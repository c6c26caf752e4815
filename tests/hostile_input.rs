//! Hostile files handed to the command line (SECURITY.md rule 14): images shaped to blow up the
//! detector's pad retry, devices and FIFOs posing as photos. Each gets a clear answer quickly —
//! never an abort (exit 134), a hang, or a read without end.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{assert_clear_error, facegate, facegate_within, png, with_jpeg_size};

/// A data directory, a real face photo, and where to write the hostile files.
struct Scene {
    dir: tempfile::TempDir,
    face: PathBuf,
}

fn scene() -> Option<Scene> {
    let faces = common::faces_dir()?;
    common::model_dir()?;
    let person = &common::people(&faces, 1)[0];
    Some(Scene {
        dir: tempfile::tempdir().unwrap(),
        face: common::photo(&faces, person, 1),
    })
}

impl Scene {
    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn data(&self) -> String {
        self.dir.path().join("data").to_str().unwrap().to_string()
    }

    /// Runs `facegate` with `args` after `--data DIR`, with a time limit.
    fn run(&self, args: &[&str], limit: Duration) -> std::process::Output {
        let data = self.data();
        let all: Vec<&str> = ["--data", data.as_str()]
            .into_iter()
            .chain(args.iter().copied())
            .collect();
        facegate_within(&all, limit)
    }

    /// detect, compare, enroll and auth on `photo`: each must answer clearly within `limit`,
    /// and the message must contain `needle`.
    fn every_command_refuses(&self, photo: &Path, needle: &str, limit: Duration) {
        let photo = photo.to_str().unwrap();
        let face = self.face.to_str().unwrap();
        for args in [
            vec!["detect", photo],
            vec!["compare", face, photo],
            vec![
                "enroll",
                "--user",
                "mallory@example.com",
                "--photo",
                photo,
                "--group",
                "staff",
            ],
        ] {
            let started = Instant::now();
            let out = self.run(&args, limit);
            assert_clear_error(&out, needle);
            eprintln!("{args:?}: refused in {:?}", started.elapsed());
        }
        // Sign-in reads the frame, then the door refuses it with the reason (exit 1), or the
        // command refuses the file outright (exit 2).
        let out = self.run(&["auth", "--photo", photo, "--json"], limit);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            matches!(out.status.code(), Some(1 | 2)),
            "{:?}: {text}",
            out.status
        );
        assert!(text.contains(needle), "expected {needle:?} in: {text}");
        assert!(
            !text.contains("GRANTED") && !text.contains("\"granted\": true"),
            "{text}"
        );
    }
}

#[test]
fn a_3_kb_png_of_1_000_000_by_1_pixels_is_refused_not_an_abort() {
    let Some(s) = scene() else { return };
    let strip = png(1_000_000, 1);
    assert!(strip.len() < 8 * 1024, "{} bytes", strip.len());
    let path = s.write("strip.png", &strip);
    s.every_command_refuses(&path, "thinner than 8:1", Duration::from_secs(60));
    let tall = s.write("tall.png", &png(1, 1_000_000));
    s.every_command_refuses(&tall, "thinner than 8:1", Duration::from_secs(60));
}

#[test]
fn a_118_kb_png_of_40000_by_1000_is_refused_before_decoding() {
    let Some(s) = scene() else { return };
    let path = s.write("wide.png", &png(40_000, 1_000));
    let started = Instant::now();
    let out = s.run(&["detect", path.to_str().unwrap()], Duration::from_secs(60));
    assert_clear_error(&out, "40000x1000");
    // Refused from the header, not after an 11 s, 9.8 GB pad retry.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn fuzzed_jpeg_headers_that_once_aborted_get_a_clear_error() {
    let Some(s) = scene() else { return };
    let jpeg = std::fs::read(&s.face).unwrap();
    for (width, height) in [(65_535, 8), (1, 65_535), (64_506, 250)] {
        let mutant = with_jpeg_size(&jpeg, width, height).expect("a JPEG photo");
        let path = s.write(&format!("mutant-{width}x{height}.jpg"), &mutant);
        s.every_command_refuses(&path, "thinner than 8:1", Duration::from_secs(60));
    }
}

#[test]
fn a_strip_as_a_replay_frame_stops_facegate_run_with_a_clear_error() {
    let Some(s) = scene() else { return };
    let frames = s.dir.path().join("frames");
    std::fs::create_dir(&frames).unwrap();
    std::fs::write(frames.join("0001.png"), png(1_000_000, 1)).unwrap();
    let state = s.dir.path().join("relay-state");
    let config = s.write(
        "facegate.toml",
        format!(
            "[vision]\nmodel_dir = {:?}\n[camera]\nkind = \"replay\"\nreplay_dir = {:?}\n\
             [relay]\nstate_file = {:?}\n",
            common::model_dir().unwrap(),
            frames,
            state
        )
        .as_bytes(),
    );
    let out = s.run(
        &["--config", config.to_str().unwrap(), "run"],
        Duration::from_secs(60),
    );
    assert_clear_error(&out, "0001.png");
    assert_clear_error(&out, "thinner than 8:1");
    let relay = std::fs::read_to_string(&state).unwrap_or_default();
    assert_ne!(relay, "unlocked\n", "the door was left open");
}

#[test]
fn a_photo_that_is_a_symlink_to_dev_zero_is_refused_without_reading_it() {
    let Some(s) = scene() else { return };
    let link = s.dir.path().join("zero.jpg");
    std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
    // Before: `metadata().len()` is 0 for a device, and 2.1 GB were read before it failed.
    s.every_command_refuses(
        &link,
        "a character device, not a regular file",
        Duration::from_secs(20),
    );
}

#[test]
fn a_photo_that_is_a_fifo_is_refused_without_waiting_for_a_writer() {
    let Some(s) = scene() else { return };
    let fifo = s.dir.path().join("frame.jpg");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo");
    s.every_command_refuses(&fifo, "a FIFO", Duration::from_secs(20));
}

#[test]
fn a_directory_posing_as_a_photo_is_refused() {
    let Some(s) = scene() else { return };
    let dir = s.dir.path().join("photo.jpg");
    std::fs::create_dir(&dir).unwrap();
    let out = facegate(&["detect", dir.to_str().unwrap()]);
    assert_clear_error(&out, "a directory, not a regular file");
}

#[test]
fn a_tight_crop_enlarged_past_max_side_is_still_found_through_the_bounded_retry() {
    // The pad retry works on the copy scaled to max_side: a face cropped to its own box and
    // enlarged 20 times (found only by the retry) must still be found, where it is.
    let Some(faces) = common::faces_dir() else {
        return;
    };
    let Some(mut engine) = common::engine(facegate::vision::RuntimeKind::Ort) else {
        return;
    };
    let person = &common::people(&faces, 1)[0];
    let photo = engine
        .load_image(&common::photo(&faces, person, 1))
        .unwrap();
    let b = engine.detect(&photo).unwrap()[0].bbox;
    let mut no_retry = facegate::vision::FaceEngine::load(&facegate::vision::VisionConfig {
        model_dir: common::model_dir(),
        detector: facegate::vision::DetectorConfig {
            pad_retry: false,
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap();
    // The face's box, trimmed until the detector needs the retry to see it.
    let big = [0.0, 0.1, 0.2, 0.3]
        .into_iter()
        .map(|trim: f32| {
            let (dx, dy) = (b.width * trim / 2.0, b.height * trim / 2.0);
            let (x, y) = ((b.x + dx).max(0.0) as u32, (b.y + dy).max(0.0) as u32);
            let w = ((b.width - 2.0 * dx) as u32).min(photo.width() - x);
            let h = ((b.height - 2.0 * dy) as u32).min(photo.height() - y);
            let crop = image::imageops::crop_imm(&photo, x, y, w, h).to_image();
            image::imageops::resize(&crop, w * 20, h * 20, image::imageops::FilterType::Triangle)
        })
        .find(|big| no_retry.detect(big).unwrap().is_empty())
        .expect("a crop tight enough to need the retry");
    let found = engine.detect(&big).unwrap();
    let face = found
        .first()
        .expect("the retry finds the enlarged crop's face")
        .bbox;
    let (cx, cy) = (face.x + face.width / 2.0, face.y + face.height / 2.0);
    let (bw, bh) = (big.width() as f32, big.height() as f32);
    assert!(
        (cx - bw / 2.0).abs() < 0.2 * bw && (cy - bh / 2.0).abs() < 0.2 * bh,
        "{face:?} is not around the middle of {bw}x{bh}"
    );
    assert!(face.width > 0.5 * bw, "{face:?} in {bw}x{bh}");
}
