//! `facegate run` as a service: locked at start, and locked again after SIGTERM, exit 0.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn the_relay_is_locked_after_sigterm() {
    let (Some(faces), Some(models)) = (common::faces_dir(), common::model_dir()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let replay = dir.path().join("frames");
    std::fs::create_dir(&replay).unwrap();
    let person = &common::people(&faces, 1)[0];
    std::fs::copy(common::photo(&faces, person, 1), replay.join("0001.jpg")).unwrap();
    let state = dir.path().join("relay-state");
    let config = dir.path().join("facegate.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[vision]\nmodel_dir = {:?}\n[camera]\nreplay_dir = {:?}\n[relay]\nstate_file = {:?}\n",
            dir.path().join("data"),
            models,
            replay,
            state
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_facegate"))
        .args(["--config", config.to_str().unwrap(), "run"])
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !state.exists() && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        std::fs::read_to_string(&state).unwrap(),
        "locked\n",
        "locked at start"
    );
    std::thread::sleep(Duration::from_millis(500));
    // Pretend the relay was left open, then ask the service to stop.
    std::fs::write(&state, "unlocked\n").unwrap();
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(&state).unwrap(),
        "locked\n",
        "locked after SIGTERM"
    );
}
