//! The web console and the kiosk in a real browser: tests/web/e2e.mjs drives Debian's chromium
//! through playwright-core against `facegate run` (replay camera, simulated relay, `[web]` on
//! loopback). Screenshots go to `$CARGO_TARGET_DIR/web-e2e/`. Without chromium, node or
//! playwright-core (scripts/web-e2e-setup.sh) it skips, and fails under
//! `FACEGATE_REQUIRE_MODELS=1` (CI).

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "a long test password";

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

/// chromium, node and playwright-core's folder, or why not.
fn browser_tools() -> Result<(PathBuf, PathBuf), String> {
    let chromium = PathBuf::from(
        std::env::var("FACEGATE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
    );
    if !chromium.is_file() {
        return Err(format!(
            "{} not found: apt-get install chromium",
            chromium.display()
        ));
    }
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Err("node not found: apt-get install nodejs npm".into());
    }
    let cache = std::env::var_os("FACEGATE_WEB_E2E_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".web-e2e"));
    let modules = cache.join("node_modules");
    if !modules.join("playwright-core").is_dir() {
        return Err(format!(
            "playwright-core not in {}: run scripts/web-e2e-setup.sh",
            modules.display()
        ));
    }
    Ok((chromium, modules))
}

/// The status line of `GET /kiosk` sent with `Host: host`.
fn status_for_host(port: u16, host: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET /kiosk HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.lines().next().unwrap_or_default().to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn shots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("web-e2e")
}

fn account(config: &Path, args: &[&str]) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_facegate"))
        .arg("--config")
        .arg(config)
        .arg("admin")
        .args(args)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    assert!(child.wait().unwrap().success(), "facegate admin {args:?}");
}

#[test]
fn the_console_and_the_kiosk_work_in_a_real_browser() {
    let (Some(faces), Some(models)) = (common::faces_dir(), common::model_dir()) else {
        return;
    };
    let (chromium, modules) = match browser_tools() {
        Ok(tools) => tools,
        Err(why) if common::required("FACEGATE_REQUIRE_MODELS") => panic!("{why}"),
        Err(why) => return eprintln!("SKIP: {why}"),
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let people = common::people(&faces, 2);
    let replay = dir.path().join("frames");
    std::fs::create_dir(&replay).unwrap();
    std::fs::copy(common::photo(&faces, &people[0], 2), replay.join("ana.jpg")).unwrap();
    // Ana walks up every few seconds; between, nobody is there.
    let script: String = (0..40).map(|_| "- 30 100\nana.jpg 12 100 live\n").collect();
    std::fs::write(replay.join("script.txt"), script).unwrap();
    let port = free_port();
    let relay_state = dir.path().join("relay-state");
    let config = dir.path().join("facegate.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {data:?}\n[vision]\nmodel_dir = {models:?}\n[camera]\nkind = \"replay\"\n\
             replay_dir = {replay:?}\n[relay]\nstate_file = {relay_state:?}\n\
             [web]\nenabled = true\nlisten = \"127.0.0.1:{port}\"\n"
        ),
    )
    .unwrap();
    account(&config, &["add", "admin"]);
    account(&config, &["add", "viewer", "--role", "viewer"]);
    account(&config, &["add", "locky"]);
    let _service = Service(
        Command::new(env!("CARGO_BIN_EXE_facegate"))
            .args(["--config", config.to_str().unwrap(), "run"])
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the service never served the console"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let shots = shots_dir();
    let out = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web/e2e.mjs"))
        .env("WEB_E2E_NODE_MODULES", &modules)
        .env("WEB_CHROMIUM", &chromium)
        .env("WEB_URL", format!("http://127.0.0.1:{port}"))
        .env("WEB_SHOTS", &shots)
        .env("WEB_AUDIT", data.join("audit.jsonl"))
        .env("WEB_PASSWORD", PASSWORD)
        .env("WEB_PHOTO", common::photo(&faces, &people[0], 1))
        .env("WEB_PHOTO_OTHER", common::photo(&faces, &people[1], 1))
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(out.status.success(), "the browser test failed:\n{stdout}");
    println!("screenshots in {}", shots.display());

    // A page elsewhere that points its name at 127.0.0.1 (DNS rebinding) is not answered.
    assert!(status_for_host(port, "evil.example").contains(" 421 "));
    assert!(status_for_host(port, "localhost").contains(" 200 "));

    // The remote unlock reached the relay and the audit, with the account's name.
    let audit = std::fs::read_to_string(data.join("audit.jsonl")).unwrap();
    let remote: Vec<serde_json::Value> = audit
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|e: &serde_json::Value| e["kind"] == "remote_unlock")
        .collect();
    assert_eq!(remote.len(), 1, "{audit}");
    assert_eq!(remote[0]["reason"], "unlocked by web:admin");
    assert!(audit.contains("locked by web:admin"), "{audit}");
    assert_eq!(
        std::fs::read_to_string(&relay_state).unwrap().trim(),
        "locked"
    );
}
