//! Administering the door while it runs: `facegate enroll` and `facegate users disable` reach the
//! running `facegate run` through its administration socket (sled lets one process hold the
//! store), the newly enrolled person is let in without a restart, and once disabled is not.

mod common;

use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

/// Stops the service however the test ends.
struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn facegate(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_facegate"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

/// The attempts in the shipped audit trail so far: (user, granted, outcome).
fn attempts(data: &Path) -> Vec<(Option<String>, bool, String)> {
    let Ok(text) = std::fs::read_to_string(data.join("audit.jsonl")) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["kind"] == "attempt")
        .map(|e| {
            (
                e["user"].as_str().map(str::to_string),
                e["granted"].as_bool().unwrap_or(false),
                e["outcome"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Waits up to `within` for the audit trail to satisfy `wanted`.
fn wait_until(
    data: &Path,
    within: Duration,
    wanted: impl Fn(&[(Option<String>, bool, String)]) -> bool,
) -> bool {
    let started = Instant::now();
    while started.elapsed() < within {
        if wanted(&attempts(data)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

#[test]
fn people_are_enrolled_and_disabled_while_the_door_runs() {
    let (Some(faces), Some(models)) = (common::faces_dir(), common::model_dir()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Ana walks up every few seconds for a minute; between, nobody is there.
    let person = common::people(&faces, 1)[0].clone();
    let replay = dir.path().join("frames");
    std::fs::create_dir(&replay).unwrap();
    std::fs::copy(common::photo(&faces, &person, 2), replay.join("ana.jpg")).unwrap();
    let script: String = (0..12).map(|_| "- 40 100\nana.jpg 12 100 live\n").collect();
    std::fs::write(replay.join("script.txt"), script).unwrap();
    let config = dir.path().join("facegate.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {data:?}\n[vision]\nmodel_dir = {models:?}\n[camera]\nkind = \"replay\"\n\
             replay_dir = {replay:?}\n[relay]\nstate_file = {:?}\n",
            dir.path().join("relay-state")
        ),
    )
    .unwrap();
    let service = Service(
        Command::new(env!("CARGO_BIN_EXE_facegate"))
            .args(["--config", config.to_str().unwrap(), "run"])
            .spawn()
            .unwrap(),
    );
    let socket = data.join("admin.sock");
    let started = Instant::now();
    while !socket.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the service never opened its administration socket"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Enrolled while the service holds the store: the CLI says so as it always does.
    let photo = common::photo(&faces, &person, 1);
    let out = facegate(
        &config,
        &[
            "enroll",
            "--user",
            "ana@example.com",
            "--name",
            "Ana",
            "--photo",
            photo.to_str().unwrap(),
            "--group",
            "staff",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("enrolled ana@example.com"));
    let out = facegate(&config, &["users", "list", "--json"]);
    let users: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(users[0]["username"], "ana@example.com", "{users}");

    // At the door, without a restart: granted.
    assert!(
        wait_until(&data, Duration::from_secs(40), |a| a.iter().any(
            |(user, granted, _)| *granted && user.as_deref() == Some("ana@example.com")
        )),
        "Ana was never let in: {:?}",
        attempts(&data)
    );

    // Disabled while the door runs: the next attempt of hers is refused.
    let before = attempts(&data).len();
    let out = facegate(&config, &["users", "disable", "ana@example.com"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("DISABLED"));
    assert!(
        wait_until(&data, Duration::from_secs(40), |a| a[before.min(a.len())..]
            .iter()
            .any(|(user, granted, outcome)| !granted
                && user.as_deref() == Some("ana@example.com")
                && outcome == "refused")),
        "a disabled Ana was not refused: {:?}",
        attempts(&data)
    );
    assert!(
        attempts(&data)[before..]
            .iter()
            .all(|(_, granted, _)| !granted),
        "someone got in after Ana was disabled: {:?}",
        attempts(&data)
    );
    // An unknown request gets an error that says so, from the service.
    let out = facegate(&config, &["users", "show", "nobody@example.com"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no user nobody@example.com"));
    drop(service);
    assert!(!socket.exists(), "the socket outlived the service");
}
