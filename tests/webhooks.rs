//! Webhooks against a receiver nobody here wrote the HTTP side of: `tests/peers/
//! webhook_receiver.py` (Python's `http.server`, `hmac`) checks every signature. In process:
//! the document, the filters, dead letters on 410 and on a wrong secret, and the time from an
//! event to its POST. With `facegate run`: a grant while the receiver is down, `kill -9`, the
//! receiver up, a restart — every event arrives, none missing.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::service::{Running, get, sample};
use facegate::clock::SystemClock;
use facegate::events::{DenyReason, DoorEvent, EventBus, Outcome, UnlockOrigin, Via};
use facegate::monitor::Monitor;
use facegate::sinks::webhook::deliver::Webhooks;
use facegate::sinks::webhook::{WebhookTarget, WebhooksConfig};
use facegate::store::audit::{AuditKind, AuditOutbox};
use serde_json::Value;

const SECRET: &str = "a-shared-secret-of-some-length";

fn free_port() -> u16 {
    common::service::free_port().port()
}

/// `python3`, or `None` (skip) — a failure when CI requires the peers.
fn python() -> Option<&'static str> {
    let found = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some("python3");
    }
    if common::required("FACEGATE_REQUIRE_MODELS") {
        panic!("python3 missing: the webhook receiver needs it (scripts/setup.sh)");
    }
    eprintln!("SKIP: python3 not found");
    None
}

/// The receiver, killed when dropped.
struct Receiver {
    child: Child,
    out: PathBuf,
}

impl Receiver {
    fn start(python: &str, port: u16, secret_file: &Path, out: &Path) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/webhook_receiver.py");
        let child = Command::new(python)
            .arg(script)
            .arg(port.to_string())
            .arg(secret_file)
            .arg(out)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the receiver did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            out: out.to_path_buf(),
        }
    }

    /// Every verified event received so far.
    fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Waits until `done` holds for what was received (at most `secs`).
    fn wait_for(&self, secs: u64, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let got = self.received();
            if done(&got) {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "not received in {secs} s: {got:#?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn target(url: String, secret_file: &Path, events: &[&str]) -> WebhookTarget {
    let mut t: WebhookTarget =
        toml::from_str(&format!("url = {url:?}\nsecret_file = {:?}\n", secret_file)).unwrap();
    if !events.is_empty() {
        t.events = events.iter().map(|e| e.to_string()).collect();
    }
    t
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn attempt(i: u64, granted: bool) -> DoorEvent {
    DoorEvent::Attempt {
        at_ms: now_ms(),
        door: "front".into(),
        user: granted.then(|| format!("user{i}@example.com")),
        outcome: if granted {
            Outcome::Granted(Via::Verified)
        } else {
            Outcome::Denied(DenyReason::UnknownFace)
        },
        online: true,
        similarity: Some(0.75),
        reason: "free text".into(),
        face_to_relay_ms: 80,
    }
}

fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values[values.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_events_reach_an_independent_receiver_filtered_and_in_order() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let wrong_secret = dir.path().join("wrong");
    std::fs::write(&wrong_secret, "not-the-receivers-secret").unwrap();
    let port = free_port();
    let receiver = Receiver::start(python, port, &secret_file, &dir.path().join("got.jsonl"));
    let base = format!("http://127.0.0.1:{port}");
    let config = WebhooksConfig {
        targets: vec![
            target(format!("{base}/all"), &secret_file, &[]),
            target(
                format!("{base}/attempts?token=x"),
                &secret_file,
                &["attempt"],
            ),
            target(format!("{base}/gone"), &secret_file, &["locked"]),
            target(format!("{base}/forged"), &wrong_secret, &["locked"]),
        ],
        retry_min_ms: 50,
        retry_max_ms: 200,
        ..WebhooksConfig::default()
    };
    assert!(config.problems().is_empty(), "{:?}", config.problems());
    let db = sled::open(dir.path().join("daemon.sled")).unwrap();
    let audit = AuditOutbox::open(&db, 1000).unwrap();
    let monitor = Monitor::new(Arc::new(SystemClock), 5_000);
    let bus = EventBus::default();
    Webhooks::open(
        "front",
        &config,
        &db,
        audit.clone(),
        &monitor,
        Arc::new(SystemClock),
    )
    .unwrap()
    .spawn(bus.subscribe());

    // Twenty attempts one at a time (each timed from the event to its POST), then the rest.
    let mut latencies = Vec::new();
    for i in 0..20 {
        bus.send(attempt(i, i % 2 == 0));
        let want = 2 * (i as usize + 1);
        let got = tokio::task::block_in_place(|| receiver.wait_for(10, |g| g.len() >= want));
        let last = got.iter().rev().find(|r| r["path"] == "/all").unwrap();
        let sent = last["event"]["time_ms"].as_u64().unwrap();
        latencies.push(last["received_ms"].as_u64().unwrap().saturating_sub(sent));
    }
    bus.send(DoorEvent::Unlocked {
        at_ms: now_ms(),
        door: "front".into(),
        origin: UnlockOrigin::Grant,
        for_ms: 5_000,
    });
    bus.send(DoorEvent::Prompt {
        at_ms: now_ms(),
        door: "front".into(),
        prompt: facegate::events::Prompt::HoldStill,
    });
    bus.send(DoorEvent::Locked {
        at_ms: now_ms(),
        door: "front".into(),
    });
    let got = tokio::task::block_in_place(|| receiver.wait_for(10, |g| g.len() >= 42));
    tokio::time::sleep(Duration::from_millis(300)).await; // anything extra would show now
    let got_after = receiver.received();
    assert_eq!(got_after.len(), got.len(), "no duplicates without failures");

    let on = |path: &str| -> Vec<&Value> {
        got.iter()
            .filter(|r| r["path"].as_str().unwrap().split('?').next() == Some(path))
            .map(|r| &r["event"])
            .collect()
    };
    let all = on("/all");
    let kinds: Vec<&str> = all.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.len(), 22, "{kinds:?}");
    assert!(kinds[..20].iter().all(|k| *k == "attempt"));
    assert_eq!(
        &kinds[20..],
        ["unlocked", "locked"],
        "prompt is off by default"
    );
    // In order, each with a unique id, the same id in the header.
    let times: Vec<u64> = all.iter().map(|e| e["time_ms"].as_u64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    let mut ids: Vec<&str> = all.iter().map(|e| e["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 22);
    assert!(got.iter().all(|r| r["header_id"] == r["event"]["id"]));
    // The document, field by field.
    let first = all[0];
    assert_eq!(first["door"], "front");
    assert_eq!(first["outcome"], "granted");
    assert_eq!(first["reason"], "verified");
    assert_eq!(first["user"], "user0@example.com");
    assert_eq!(first["online"], true);
    assert_eq!(first["similarity"], 0.75);
    assert!(first["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(all[1]["reason"], "unknown_face");
    assert!(all[1].get("user").is_none());
    assert_eq!(all[20]["origin"], "grant");
    assert_eq!(all[20]["for_ms"], 5_000);
    // The same attempt went to both URLs that want it, under the same id.
    let attempts = on("/attempts");
    assert_eq!(attempts.len(), 20);
    assert_eq!(attempts[3]["id"], all[3]["id"]);

    // 410 and a forged signature (401): dead-lettered once each, counted, audited.
    let metrics = monitor.render_metrics();
    for series in [
        r#"facegate_sink_sent_total{sink="webhook",target="http://127.0.0.1:PORT/all"} 22"#,
        r#"facegate_sink_sent_total{sink="webhook",target="http://127.0.0.1:PORT/attempts"} 20"#,
        r#"facegate_sink_dead_lettered_total{sink="webhook",target="http://127.0.0.1:PORT/gone"} 1"#,
        r#"facegate_sink_dead_lettered_total{sink="webhook",target="http://127.0.0.1:PORT/forged"} 1"#,
        r#"facegate_sink_queued{sink="webhook",target="http://127.0.0.1:PORT/all"} 0"#,
        r#"facegate_sink_dropped_total{sink="webhook",target="http://127.0.0.1:PORT/all"} 0"#,
    ] {
        let series = series.replace("PORT", &port.to_string());
        assert!(
            metrics.contains(&series),
            "{series} missing from\n{metrics}"
        );
    }
    assert!(!metrics.contains("token=x"), "no query string in a label");
    let dead: Vec<String> = audit
        .pending(100)
        .unwrap()
        .into_iter()
        .filter(|e| e.event.kind == AuditKind::DeadLetter)
        .map(|e| e.event.reason)
        .collect();
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert!(
        dead.iter()
            .any(|r| r.contains("/gone") && r.contains("410"))
    );
    assert!(
        dead.iter()
            .any(|r| r.contains("/forged") && r.contains("401"))
    );

    println!(
        "webhook: event -> POST received on loopback, median {} ms (max {} ms) over {} events",
        median(latencies.clone()),
        latencies.iter().max().unwrap(),
        latencies.len()
    );
}

/// Polls `/metrics` at `addr` until `series` is at least `at_least` (at most `secs`).
fn wait_metric(addr: std::net::SocketAddr, series: &str, at_least: f64, secs: u64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let value = get(addr, "/metrics").and_then(|(_, body)| sample(&body, series));
        if let Some(v) = value.filter(|v| *v >= at_least) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{series} not at {at_least} within {secs} s (is {value:?})"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run_door(config: &Path) -> Running {
    Running(
        Command::new(env!("CARGO_BIN_EXE_facegate"))
            .arg("--config")
            .arg(config)
            .arg("run")
            .env("RUST_LOG", "warn")
            .spawn()
            .unwrap(),
    )
}

#[test]
fn nothing_is_lost_across_receiver_outage_and_kill_9() {
    let (Some(faces), Some(models)) = (common::faces_dir(), common::model_dir()) else {
        return;
    };
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let person = &common::people(&faces, 1)[0];
    let replay = dir.path().join("frames");
    std::fs::create_dir(&replay).unwrap();
    std::fs::copy(common::photo(&faces, person, 2), replay.join("face.jpg")).unwrap();
    // Nobody for a second, then the person, moving, then nobody.
    std::fs::write(
        replay.join("script.txt"),
        "- 10 100\nface.jpg 80 100 live\n- 600 100\n",
    )
    .unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, SECRET).unwrap();
    let (monitoring, port) = (common::service::free_port(), free_port());
    let url = format!("http://127.0.0.1:{port}/door");
    let config = dir.path().join("facegate.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[vision]\nmodel_dir = {:?}\n[camera]\nkind = \"replay\"\n\
             replay_dir = {:?}\n[relay]\nstate_file = {:?}\n[daemon]\nunlock_ms = 500\n\
             [monitoring]\nlisten = \"{monitoring}\"\n\
             [webhooks]\nretry_min_ms = 100\nretry_max_ms = 300\n\
             [[webhooks.targets]]\nurl = {url:?}\nsecret_file = {secret_file:?}\n",
            dir.path().join("data"),
            models,
            replay,
            dir.path().join("relay-state"),
        ),
    )
    .unwrap();
    common::enroll_with_cli(
        &config,
        "ana@example.com",
        &common::photo(&faces, person, 1),
        "staff",
    );

    // The receiver is down: the grant, the unlock and the lock queue in the outbox.
    let queued = format!("facegate_sink_queued{{sink=\"webhook\",target=\"{url}\"}}");
    let granted = r#"facegate_attempts_total{decision="granted",reason="verified"}"#;
    let mut first = run_door(&config);
    wait_metric(monitoring, granted, 1.0, 60);
    // The grant's unlock has ended (unlock_ms = 500) and its three events are queued.
    let deadline = Instant::now() + Duration::from_secs(10);
    let before_kill = loop {
        let (_, metrics) = get(monitoring, "/metrics").unwrap();
        let relocked = sample(&metrics, "facegate_relay_unlocked") == Some(0.0);
        let depth = sample(&metrics, &queued).unwrap_or(0.0) as usize;
        if relocked && depth >= 3 {
            break depth;
        }
        assert!(
            Instant::now() < deadline,
            "not relocked with 3 queued: {depth}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let killed_at = now_ms();
    first.0.kill().unwrap(); // SIGKILL: no shutdown, no flush
    first.0.wait().unwrap();
    std::mem::forget(first);

    // The receiver comes up, the door restarts (and Ana walks up again).
    let receiver = Receiver::start(python, port, &secret_file, &dir.path().join("got.jsonl"));
    let _second = run_door(&config);
    let got = receiver.wait_for(90, |got| {
        got.iter()
            .filter(|r| r["event"]["time_ms"].as_u64().unwrap() < killed_at)
            .count()
            >= before_kill
            && got.iter().any(|r| {
                r["event"]["kind"] == "unlocked"
                    && r["event"]["time_ms"].as_u64().unwrap() > killed_at
            })
    });
    let old: Vec<&Value> = got
        .iter()
        .map(|r| &r["event"])
        .filter(|e| e["time_ms"].as_u64().unwrap() < killed_at)
        .collect();
    let mut ids: Vec<&str> = old.iter().map(|e| e["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert!(
        ids.len() >= before_kill,
        "{} of {before_kill} events arrived",
        ids.len()
    );
    let kinds: Vec<&str> = old.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    let grant = kinds
        .iter()
        .position(|k| *k == "unlocked")
        .expect("the unlock arrived");
    assert!(
        kinds[..grant].contains(&"attempt") && kinds[grant..].contains(&"locked"),
        "{kinds:?}"
    );
    assert!(
        old.iter()
            .any(|e| e["user"] == "ana@example.com" && e["outcome"] == "granted")
    );
    // From the second grant (receiver up) to its POST.
    let latency = |kind: &str| {
        got.iter()
            .find(|r| {
                r["event"]["kind"] == kind && r["event"]["time_ms"].as_u64().unwrap() > killed_at
            })
            .map(|r| r["received_ms"].as_u64().unwrap() - r["event"]["time_ms"].as_u64().unwrap())
    };
    println!(
        "webhook kill -9: {before_kill} events queued while the receiver was down, {} arrived \
         after the restart ({kinds:?}), lost {}; grant -> POST {:?} ms, unlock -> POST {:?} ms",
        ids.len(),
        before_kill.saturating_sub(ids.len()),
        latency("attempt"),
        latency("unlocked"),
    );
}

#[test]
fn doctor_has_a_line_per_webhook_target() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, SECRET).unwrap();
    let short = dir.path().join("short");
    std::fs::write(&short, "too short").unwrap();
    let (up, down) = (free_port(), free_port());
    let _receiver = Receiver::start(python, up, &secret_file, &dir.path().join("got.jsonl"));
    let config = dir.path().join("facegate.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[camera]\nkind = \"replay\"\nreplay_dir = {:?}\n\
             [[webhooks.targets]]\nurl = \"http://127.0.0.1:{up}/door\"\nsecret_file = {secret_file:?}\n\
             [[webhooks.targets]]\nurl = \"http://127.0.0.1:{down}/door\"\nsecret_file = {secret_file:?}\n\
             [[webhooks.targets]]\nurl = \"http://127.0.0.1:{up}/other\"\nsecret_file = {short:?}\n",
            dir.path().join("data"),
            dir.path(),
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_facegate"))
        .arg("--config")
        .arg(&config)
        .args(["doctor", "--json", "--camera-timeout", "1"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let lines: Vec<(&str, &str)> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == "webhook")
        .map(|c| {
            (
                c["verdict"].as_str().unwrap(),
                c["detail"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0].0, "warn", "plain HTTP, but it answers: {lines:?}");
    assert!(lines[0].1.contains("answers HTTP 405"), "{lines:?}");
    assert_eq!(lines[1].0, "fail", "{lines:?}");
    assert_eq!(lines[2].0, "fail", "{lines:?}");
    assert!(lines[2].1.contains("at least 16 bytes"), "{lines:?}");
}
