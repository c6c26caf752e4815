//! `facegate run` as a service: locked at start, READY and watchdog pings to systemd, locked
//! again after SIGTERM (systemd's stop) or SIGINT (Ctrl-C) with STOPPING, exit 0.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

/// Reads notify messages until one contains `wanted` (or 30 s pass).
fn wait_for(socket: &UnixDatagram, wanted: &str) -> Vec<String> {
    let started = Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while started.elapsed() < Duration::from_secs(30) {
        if let Ok(n) = socket.recv(&mut buf) {
            let message = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = message.lines().any(|l| l == wanted);
            seen.push(message);
            if done {
                return seen;
            }
        }
    }
    panic!("no {wanted} from facegate; got {seen:?}");
}

#[test]
fn the_relay_is_locked_after_sigterm() {
    stopped_by("-TERM");
}

#[test]
fn the_relay_is_locked_after_sigint() {
    stopped_by("-INT");
}

/// Runs the service, leaves the relay as if open, sends `signal`: the service must lock it.
fn stopped_by(signal: &str) {
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
            "data_dir = {:?}\n[vision]\nmodel_dir = {:?}\n[camera]\nkind = \"replay\"\nreplay_dir = {:?}\n[relay]\nstate_file = {:?}\n",
            dir.path().join("data"),
            models,
            replay,
            state
        ),
    )
    .unwrap();
    let socket_path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&socket_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_facegate"))
        .args(["--config", config.to_str().unwrap(), "run"])
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "400000")
        .spawn()
        .unwrap();
    wait_for(&notify, "READY=1");
    wait_for(&notify, "WATCHDOG=1");
    assert_eq!(
        std::fs::read_to_string(&state).unwrap(),
        "locked\n",
        "locked at start"
    );
    std::thread::sleep(Duration::from_millis(500));
    // Pretend the relay was left open, then ask the service to stop.
    std::fs::write(&state, "unlocked\n").unwrap();
    let kill = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    wait_for(&notify, "STOPPING=1");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(&state).unwrap(),
        "locked\n",
        "locked after {signal}"
    );
}
