//! `kill -9` during a burst of attempts loses no audit event: every event whose append
//! returned before the kill is in the outbox when the store is opened again.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use facegate::store::audit::{AuditEvent, AuditKind, AuditOutbox};

const CHILD_ENV: &str = "FACEGATE_AUDIT_CRASH_DIR";

fn event(i: u64) -> AuditEvent {
    AuditEvent {
        kind: AuditKind::Attempt,
        time_ms: i,
        door: "front".into(),
        user: Some("ana@example.com".into()),
        granted: true,
        outcome: Some("verified".into()),
        reason: "burst".into(),
        similarity: Some(0.7),
        backend: "embedded".into(),
        online: true,
        latency_ms: 1,
        dropped_before: 0,
    }
}

/// The child: appends events as fast as it can and reports each one once it is durable.
#[test]
#[ignore = "run by burst_killed_with_sigkill_loses_nothing as its child process"]
fn child_appends_events_until_killed() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let db = sled::open(std::path::Path::new(&dir).join("daemon.sled")).unwrap();
    let outbox = AuditOutbox::open(&db, 100_000).unwrap();
    for i in 0.. {
        let seq = outbox.append(event(i)).unwrap();
        println!("{seq}");
    }
}

#[test]
fn burst_killed_with_sigkill_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_appends_events_until_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acknowledged = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let Ok(seq) = line.unwrap().trim().parse::<u64>() else {
            continue;
        };
        acknowledged.push(seq);
        if acknowledged.len() == 200 {
            child.kill().unwrap(); // SIGKILL on Unix: no destructors, no flush
            break;
        }
    }
    child.wait().unwrap();
    assert_eq!(acknowledged.len(), 200, "the child stopped early");

    let db = sled::open(dir.path().join("daemon.sled")).unwrap();
    let outbox = AuditOutbox::open(&db, 100_000).unwrap();
    let stored: Vec<u64> = outbox
        .pending(usize::MAX)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    for seq in &acknowledged {
        assert!(
            stored.contains(seq),
            "event {seq} was acknowledged but is gone after kill -9"
        );
    }
}
