//! The command line as scripts use it: output contracts, exit codes, and bad input that must
//! give a clear error and never a panic.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn facegate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_facegate"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("facegate runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exit 2 with `needle` in the message: an error, not a panic (101) and not success.
fn assert_clear_error(out: &Output, needle: &str) {
    assert_eq!(out.status.code(), Some(2), "stderr: {}", stderr(out));
    let text = stderr(out);
    assert!(text.contains(needle), "expected {needle:?} in: {text}");
    assert!(!text.contains("panicked"), "{text}");
}

#[test]
fn compare_prints_the_json_contract_and_exits_0_for_match_and_mismatch() {
    let (Some(faces), Some(_)) = (common::faces_dir(), common::model_dir()) else {
        return;
    };
    let people = common::people(&faces, 2);
    let a1 = common::photo(&faces, &people[0], 1);
    let a2 = common::photo(&faces, &people[0], 2);
    let b1 = common::photo(&faces, &people[1], 1);
    for (x, y, expected) in [(&a1, &a2, true), (&a1, &b1, false)] {
        let out = facegate(&[
            "compare",
            x.to_str().unwrap(),
            y.to_str().unwrap(),
            "--json",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let similarity = json["similarity"].as_f64().unwrap();
        let threshold = json["threshold"].as_f64().unwrap();
        assert_eq!(json["match"].as_bool(), Some(expected), "{json}");
        assert_eq!(similarity >= threshold, expected);
        assert!((threshold - 0.363).abs() < 1e-6);
    }
}

#[test]
fn compare_with_a_photo_without_a_face_fails_clearly() {
    let (Some(faces), Some(_)) = (common::faces_dir(), common::model_dir()) else {
        return;
    };
    let person = &common::people(&faces, 1)[0];
    let face = common::photo(&faces, person, 1);
    let brick = faces.join("nonface/skimage_brick.png");
    let out = facegate(&["compare", face.to_str().unwrap(), brick.to_str().unwrap()]);
    assert_clear_error(&out, "no face found");
    assert!(
        stderr(&out).contains("skimage_brick.png"),
        "names the photo: {}",
        stderr(&out)
    );
}

#[test]
fn detect_json_lists_faces_with_box_landmarks_and_quality() {
    let (Some(faces), Some(_)) = (common::faces_dir(), common::model_dir()) else {
        return;
    };
    let person = &common::people(&faces, 1)[0];
    let photo = common::photo(&faces, person, 1);
    let out = facegate(&["detect", photo.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let face = &json["faces"][0];
    assert!(face["box"]["width"].as_f64().unwrap() > 40.0);
    assert_eq!(face["landmarks"].as_array().unwrap().len(), 5);
    assert!(face["score"].as_f64().unwrap() > 0.6);
    assert!(face["quality"]["passed"].is_boolean());
    assert!(face["quality"]["reasons"].is_array());
}

#[test]
fn bad_image_files_get_a_clear_error_never_a_panic() {
    if common::model_dir().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let mut jpeg = Vec::new();
    image::RgbImage::from_pixel(64, 64, image::Rgb([90, 120, 150]))
        .write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    let cases = [
        (write("empty.jpg", b""), "empty"),
        (
            write("truncated.jpg", &jpeg[..jpeg.len() / 3]),
            "corrupt or truncated",
        ),
        (
            write("garbage.jpg", b"\xff\xd8\xff\xe0 this is not really a JPEG"),
            "corrupt or truncated",
        ),
        (write("notes.txt", b"just some text"), "not a JPEG or PNG"),
        (
            write("bomb.png", &png_header(50_000, 50_000)),
            "over the limit",
        ),
        (dir.path().join("missing.jpg"), "cannot read"),
    ];
    for (path, needle) in cases {
        let out = facegate(&["detect", path.to_str().unwrap()]);
        assert_clear_error(&out, needle);
    }
}

#[test]
fn a_photo_with_no_face_is_a_defined_empty_result_for_detect() {
    let (Some(faces), Some(_)) = (common::faces_dir(), common::model_dir()) else {
        return;
    };
    let brick = faces.join("nonface/skimage_brick.png");
    let out = facegate(&["detect", brick.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["faces"].as_array().unwrap().len(), 0);
}

#[test]
fn missing_models_name_the_file_and_the_fetch_command() {
    let empty = tempfile::tempdir().unwrap();
    let photo = empty.path().join("x.jpg");
    let out = facegate(&[
        "--models",
        empty.path().to_str().unwrap(),
        "detect",
        photo.to_str().unwrap(),
    ]);
    assert_clear_error(&out, "face_detection_yunet_2023mar_int8bq.onnx");
    assert!(stderr(&out).contains("fetch-models"), "{}", stderr(&out));
}

#[test]
fn a_broken_config_is_refused_with_every_problem_and_exit_78() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("facegate.toml");
    std::fs::write(
        &config,
        "[vision]\nthreads = 0\nmatch_threshold = 7\n[vision.detector]\nnms_threshold = -1\n",
    )
    .unwrap();
    let out = facegate(&["--config", config.to_str().unwrap(), "check-config"]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    let text = stderr(&out);
    for key in [
        "vision.threads",
        "vision.match_threshold",
        "vision.detector.nms_threshold",
    ] {
        assert!(text.contains(key), "{key} missing from: {text}");
    }

    std::fs::write(&config, "[vision\nthreads = 1\n").unwrap();
    let out = facegate(&["--config", config.to_str().unwrap(), "check-config"]);
    assert_eq!(out.status.code(), Some(78));
    assert!(stderr(&out).contains("TOML"), "{}", stderr(&out));
}

#[test]
fn the_shipped_config_is_valid() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/facegate.toml");
    let out = facegate(&["--config", shipped.to_str().unwrap(), "check-config"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn relock_drives_the_relay_locked_and_a_gpio_relay_without_gpio_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("relay-state");
    std::fs::write(&state, "unlocked\n").unwrap();
    let config = dir.path().join("facegate.toml");
    std::fs::write(&config, format!("[relay]\nstate_file = {state:?}\n")).unwrap();
    let out = facegate(&["--config", config.to_str().unwrap(), "relock"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&state).unwrap(), "locked\n");

    if !Path::new("/dev/gpiomem").exists() {
        std::fs::write(&config, "[relay]\nkind = \"gpio\"\npin = 17\n").unwrap();
        let out = facegate(&["--config", config.to_str().unwrap(), "relock"]);
        assert_clear_error(&out, "GPIO 17");
    }
}

#[test]
fn in_aws_mode_the_embedded_user_commands_point_to_cognito() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("facegate.toml");
    std::fs::write(
        &config,
        "[backend]\nkind = \"aws\"\n[backend.aws]\nregion = \"eu-west-1\"\n\
         user_pool_id = \"eu-west-1_Pool\"\nclient_id = \"c\"\n\
         signin_bucket = \"in\"\nsignup_bucket = \"up\"\n",
    )
    .unwrap();
    let out = facegate(&["--config", config.to_str().unwrap(), "users", "list"]);
    assert_clear_error(&out, "cognito-idp");
    std::fs::write(&config, "[backend]\nkind = \"aws\"\n").unwrap();
    let out = facegate(&["--config", config.to_str().unwrap(), "check-config"]);
    assert_eq!(out.status.code(), Some(78));
    assert!(
        stderr(&out).contains("backend.aws.user_pool_id"),
        "{}",
        stderr(&out)
    );
}

/// A PNG signature and IHDR chunk claiming `width`×`height`, with no pixel data.
fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in &ihdr {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(13u32.to_be_bytes());
    out.extend(ihdr);
    out.extend((!crc).to_be_bytes());
    out
}

#[test]
fn enroll_then_auth_exit_codes_and_users_commands() {
    let (Some(faces), Some(_)) = (common::faces_dir(), common::model_dir()) else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let data_arg = data.path().to_str().unwrap();
    let people = common::people(&faces, 2);
    let p = |person: &str, n: usize| {
        common::photo(&faces, person, n)
            .to_str()
            .unwrap()
            .to_string()
    };
    let out = facegate(&[
        "--data",
        data_arg,
        "enroll",
        "--user",
        "Ana@Example.com",
        "--name",
        "Ana",
        "--photo",
        &p(&people[0], 1),
        "--group",
        "staff",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FaceId"));

    let auth = |photo: &str| facegate(&["--data", data_arg, "auth", "--photo", photo, "--json"]);
    let granted = auth(&p(&people[0], 2));
    assert_eq!(granted.status.code(), Some(0), "{}", stderr(&granted));
    let json: serde_json::Value = serde_json::from_slice(&granted.stdout).unwrap();
    assert_eq!(json["user"], "ana@example.com");
    assert_eq!(json["claims"]["token_use"], "id");
    assert!(json["similarity"].as_f64().unwrap() >= 0.363);

    let stranger = auth(&p(&people[1], 1));
    assert_eq!(stranger.status.code(), Some(1), "{}", stderr(&stranger));

    let out = facegate(&[
        "--data",
        data_arg,
        "users",
        "remove-group",
        "ana@example.com",
        "staff",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        auth(&p(&people[0], 2)).status.code(),
        Some(1),
        "no longer in the door's group"
    );

    let out = facegate(&["--data", data_arg, "users", "list", "--json"]);
    let users: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(users.as_array().unwrap().len(), 1);

    let missing = auth("/nonexistent/frame.jpg");
    assert_clear_error(&missing, "cannot read");
    let out = facegate(&["--data", data_arg, "users", "delete", "ana@example.com"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(auth(&p(&people[0], 2)).status.code(), Some(1));
}

#[test]
fn the_demo_plays_a_morning_and_every_scene_ends_as_it_should() {
    let (Some(faces), Some(_)) = (common::faces_dir(), common::model_dir()) else {
        return;
    };
    let out = facegate(&["demo", "--faces", faces.join("dev").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let row = |scene: &str| {
        text.lines()
            .find(|l| l.contains(scene))
            .unwrap_or_else(|| panic!("no row for {scene:?} in:\n{text}"))
            .to_string()
    };
    assert!(row("ana walks up").contains("GRANTED "), "{text}");
    assert!(row("a stranger walks up").contains("DENIED"), "{text}");
    // Liveness refuses the photo before any frame leaves the device: a denial all the same.
    let still = row("a still photo");
    assert!(
        still.contains("DENIED") && still.contains("not_live"),
        "{text}"
    );
    assert!(row("network down").contains("GRANTED*"), "{text}");
    assert!(row("1 h later").contains("DENIED*"), "{text}");
    // The script's clock is its own (100 ms a frame, however slow the machine): the late
    // scene comes after the hour it waited, give or take the scenes around it.
    let at = |scene: &str| -> f64 {
        let time = row(scene).split_whitespace().next().unwrap().to_string();
        time.trim_end_matches('s').parse().unwrap()
    };
    let late = at("1 h later") - at("network down");
    assert!(
        (3_601.0..3_700.0).contains(&late),
        "{late} s between the two offline scenes"
    );
    assert!(text.contains("relay locked"), "{text}");
}

#[test]
fn keys_rotate_publishes_a_new_signing_key() {
    if common::model_dir().is_none() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let data_arg = data.path().to_str().unwrap();
    let kid = || {
        let out = facegate(&["--data", data_arg, "keys", "show"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let jwks: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
        jwks["keys"][0]["kid"].as_str().unwrap().to_string()
    };
    let before = kid();
    assert_eq!(kid(), before, "the key persists between commands");
    let out = facegate(&["--data", data_arg, "keys", "rotate"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let after = kid();
    assert_ne!(after, before);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(&format!("{before} -> {after}")), "{said}");
}
