//! `facegate doctor`: a verdict and a fix per line, exit 1 when a check fails, never a panic,
//! and nothing created in an installation it only inspects.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn facegate(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_facegate"))
        .arg("--config")
        .arg(config)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("facegate runs")
}

/// The JSON report and the exit code.
fn doctor(config: &Path, extra: &[&str]) -> (serde_json::Value, Option<i32>) {
    let mut args = vec!["doctor", "--json"];
    args.extend_from_slice(extra);
    let out = facegate(config, &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    (report, out.status.code())
}

fn verdict<'a>(report: &'a serde_json::Value, name: &str) -> &'a str {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {report}"))["verdict"]
        .as_str()
        .unwrap()
}

fn detail(report: &serde_json::Value, name: &str) -> String {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()["detail"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_working_embedded_install_passes_and_a_door_nobody_may_open_is_flagged() {
    let (Some(faces), Some(_)) = (common::faces_dir(), common::model_dir()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let person = &common::people(&faces, 1)[0];
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    let photos = common::photo(&faces, person, 1);
    let photos = photos.parent().unwrap().canonicalize().unwrap();
    let config = dir.path().join("facegate.toml");
    std::fs::write(
        &config,
        format!("data_dir = {data:?}\n[camera]\nkind = \"replay\"\nreplay_dir = {photos:?}\n"),
    )
    .unwrap();

    let (report, code) = doctor(&config, &[]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(verdict(&report, "backend"), "warn", "nobody enrolled yet");
    assert!(
        !data.join("backend.sled").exists(),
        "the doctor must not create the user store"
    );

    let photo = common::photo(&faces, person, 1);
    common::enroll_with_cli(&config, "ana@example.com", &photo, "staff");

    let (report, code) = doctor(&config, &[]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["passed"], true);
    for name in ["config", "data dir", "models", "backend", "clock"] {
        assert_eq!(verdict(&report, name), "ok", "{name}: {report}");
    }
    assert_eq!(detail(&report, "backend"), "embedded: 1 user(s), 1 enabled");
    assert_eq!(
        verdict(&report, "camera"),
        "warn",
        "a replay is not a door camera"
    );
    assert!(detail(&report, "camera").contains("frames/s"));
    assert_eq!(
        verdict(&report, "relay"),
        "warn",
        "a simulated relay drives no lock"
    );

    let removed = facegate(
        &config,
        &["users", "remove-group", "ana@example.com", "staff"],
    );
    assert!(removed.status.success(), "{removed:?}");
    let (report, code) = doctor(&config, &[]);
    assert_eq!(code, Some(0));
    assert_eq!(verdict(&report, "backend"), "warn");
    assert!(detail(&report, "backend").contains("nobody may open door(s) front"));
}

#[test]
fn failures_exit_1_with_a_fix_and_skip_what_depends_on_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("facegate.toml");
    std::fs::write(&config, "[camera]\nfps = 0\nwhat_is_this = 1\n").unwrap();
    let (report, code) = doctor(&config, &[]);
    assert_eq!(code, Some(1));
    assert_eq!(report["passed"], false);
    assert_eq!(verdict(&report, "config"), "fail");
    assert!(detail(&report, "config").contains("what_is_this"));
    assert!(
        report["checks"][0]["fix"]
            .as_str()
            .unwrap()
            .contains("check-config")
    );
    for name in ["data dir", "models", "camera", "relay", "backend"] {
        assert_eq!(verdict(&report, name), "skip", "{name}");
    }
    assert_eq!(verdict(&report, "clock"), "ok");

    // A valid config over a missing data dir, empty model dir and a camera that is not there.
    let empty = dir.path().join("no-models");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[vision]\nmodel_dir = {empty:?}\n[camera]\ndevice = {:?}\n",
            dir.path().join("missing"),
            dir.path().join("video9")
        ),
    )
    .unwrap();
    let (report, code) = doctor(&config, &["--camera-timeout", "1"]);
    assert_eq!(code, Some(1));
    for name in ["data dir", "models", "camera"] {
        assert_eq!(verdict(&report, name), "fail", "{name}: {report}");
    }
    assert_eq!(verdict(&report, "backend"), "skip", "needs the models");
    assert!(detail(&report, "camera").contains("video9"));
    assert!(!dir.path().join("missing").exists(), "nothing created");

    let text = facegate(&config, &["doctor", "--camera-timeout", "1"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("FAIL  models"), "{text}");
    assert!(text.contains("fix: "), "{text}");
    assert!(text.trim_end().ends_with("warning(s)"), "{text}");
}
