//! The daemon end to end on the embedded backend, with the replay camera, the simulated relay
//! and an injected network outage: a morning at the door.

mod common;

use std::sync::Arc;
use std::time::Duration;

use facegate::auth::DoorPolicy;
use facegate::backend::embedded::{EmbeddedBackend, EmbeddedConfig};
use facegate::backend::fault::Outage;
use facegate::camera::FrameSource;
use facegate::camera::replay::{Motion, ReplayCamera, Scene};
use facegate::clock::ManualClock;
use facegate::daemon::runtime::{self, Attempt, Daemon};
use facegate::door::contact::ContactMonitor;
use facegate::door::simulated::SimulatedRelay;
use facegate::door::{LockState, SensorReading};
use facegate::store::audit::AuditKind;
use facegate::vision::RuntimeKind;

/// Plays `scenes` at 10 frames a second of manual time; returns the finished attempts.
async fn play(daemon: &mut Daemon, clock: &ManualClock, scenes: Vec<Scene>) -> Vec<Attempt> {
    let mut camera = ReplayCamera::new(scenes, Duration::ZERO, Arc::new(clock.clone()));
    let mut attempts = Vec::new();
    while let Ok(frame) = camera.next_frame() {
        clock.advance_ms(100);
        attempts.extend(daemon.on_frame(frame).await.unwrap());
        attempts.extend(daemon.on_tick().await.unwrap());
    }
    attempts
}

/// Lets `ms` of manual time pass with ticks.
async fn wait(daemon: &mut Daemon, clock: &ManualClock, ms: u64) {
    for _ in 0..ms / 100 {
        clock.advance_ms(100);
        daemon.on_tick().await.unwrap();
    }
}

/// A daemon at door "front" (staff only) with a simulated relay, and the relay's transitions.
fn front_door(
    backend: &EmbeddedBackend,
    dir: &std::path::Path,
    clock: &ManualClock,
    outage: Outage,
) -> (Daemon, Arc<std::sync::Mutex<Vec<LockState>>>) {
    let relay = SimulatedRelay::new(None);
    let transitions = relay.transitions();
    let daemon = runtime::on_embedded_backend(
        backend,
        dir,
        Box::new(relay),
        Arc::new(clock.clone()),
        "front",
        DoorPolicy {
            allowed_groups: vec!["staff".into()],
        },
        outage,
    )
    .unwrap();
    (daemon, transitions)
}

#[tokio::test]
async fn a_morning_at_the_door() {
    let Some(faces) = common::faces_dir() else {
        return;
    };
    let Some(engine) = common::engine(RuntimeKind::Ort) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(1_800_000_000_000);
    let engine = Arc::new(std::sync::Mutex::new(engine));
    let backend = EmbeddedBackend::open(
        dir.path(),
        engine.clone(),
        &EmbeddedConfig::default(),
        facegate::matching::MatchingConfig::default().rule(),
        Arc::new(clock.clone()),
    )
    .unwrap();

    // Enroll the first person whose first photo shows one face; another person is the stranger.
    let people = common::people(&faces, 8);
    let load = |person: &str, n: usize| {
        image::open(common::photo(&faces, person, n))
            .unwrap()
            .to_rgb8()
    };
    let mut enrolled = None;
    for person in &people {
        let bytes = std::fs::read(common::photo(&faces, person, 1)).unwrap();
        if backend
            .enroll("ana@example.com", "Ana", &[bytes], &["staff".into()])
            .await
            .is_ok()
        {
            enrolled = Some(person.clone());
            break;
        }
    }
    let ana = enrolled.expect("someone enrollable");
    let stranger = people.iter().rev().find(|p| **p != ana).unwrap().clone();

    let outage = Outage::default();
    let (mut daemon, transitions) = front_door(&backend, dir.path(), &clock, outage.clone());
    daemon.offline.grace_secs = 600;
    let live = |image| Scene {
        image: Some(image),
        frames: 8,
        motion: Motion::Live,
    };
    let nobody = Scene {
        image: None,
        frames: 5,
        motion: Motion::Still,
    };
    assert_eq!(
        *transitions.lock().unwrap(),
        vec![LockState::Locked],
        "locked at start"
    );

    // No one there: nothing happens.
    assert!(
        play(&mut daemon, &clock, vec![nobody.clone()])
            .await
            .is_empty()
    );

    // Ana, with another photo of her, walks up: one attempt, granted online, relay opens.
    let a = play(&mut daemon, &clock, vec![live(load(&ana, 2))]).await;
    assert_eq!(a.len(), 1, "{a:?}");
    assert!(a[0].granted() && a[0].online, "{a:?}");
    assert_eq!(a[0].user.as_deref(), Some("ana@example.com"));
    assert_eq!(a[0].relay, LockState::Unlocked);
    wait(&mut daemon, &clock, 8_000).await;
    assert_eq!(
        transitions.lock().unwrap().last(),
        Some(&LockState::Locked),
        "locked again after unlock_ms"
    );

    // A stranger: denied, the door stays shut.
    let s = play(&mut daemon, &clock, vec![live(load(&stranger, 1))]).await;
    assert_eq!(s.len(), 1);
    assert!(!s[0].granted());
    assert_eq!(s[0].relay, LockState::Locked);
    wait(&mut daemon, &clock, 4_000).await;

    // A still photo of Ana held up: refused by liveness, no attempt reaches the backend.
    let still = Scene {
        image: Some(load(&ana, 2)),
        frames: 12,
        motion: Motion::Still,
    };
    assert!(
        play(&mut daemon, &clock, vec![still, nobody.clone()])
            .await
            .is_empty()
    );

    // The network goes down: Ana, seen online minutes ago, opens by offline grace.
    outage.set(true);
    let o = play(
        &mut daemon,
        &clock,
        vec![nobody.clone(), live(load(&ana, 3))],
    )
    .await;
    assert_eq!(o.len(), 1, "{o:?}");
    assert!(o[0].granted() && !o[0].online, "{o:?}");
    wait(&mut daemon, &clock, 8_000).await;
    let check = daemon.revalidate_grants().await.unwrap();
    assert_eq!(
        (check.kept, check.dropped, check.unreachable),
        (0, 0, 1),
        "an unreachable backend keeps the grant"
    );

    // Past the grace window: denied, still offline.
    clock.advance_ms(601_000);
    daemon.on_tick().await.unwrap();
    let late = play(
        &mut daemon,
        &clock,
        vec![nobody.clone(), live(load(&ana, 2))],
    )
    .await;
    assert_eq!(late.len(), 1);
    assert!(!late[0].granted() && !late[0].online, "{late:?}");
    assert!(late[0].reason.contains("grace"), "{}", late[0].reason);
    wait(&mut daemon, &clock, 4_000).await;

    // Back online, Ana has been disabled: her grant is dropped by the revalidation, before
    // she comes back, and at the door she is denied online.
    outage.set(false);
    backend
        .users
        .update("ana@example.com", |u| u.enabled = false)
        .unwrap();
    let check = daemon.revalidate_grants().await.unwrap();
    assert_eq!((check.kept, check.dropped), (0, 1));
    assert!(
        daemon.grants.all().unwrap().is_empty(),
        "the grant of a disabled user is dropped"
    );
    let d = play(&mut daemon, &clock, vec![nobody, live(load(&ana, 2))]).await;
    assert_eq!(d.len(), 1);
    assert!(!d[0].granted() && d[0].online, "{d:?}");

    // Every attempt is in the audit outbox, offline ones marked.
    let events = daemon.audit.pending(100).unwrap();
    assert_eq!(events.len(), 5);
    assert_eq!(events.iter().filter(|e| !e.event.online).count(), 2);
    assert_eq!(events.iter().filter(|e| e.event.granted).count(), 2);
}

#[tokio::test]
async fn the_exit_button_opens_and_door_alarms_are_audited() {
    let Some(engine) = common::engine(RuntimeKind::Ort) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(1_800_000_000_000);
    let backend = EmbeddedBackend::open(
        dir.path(),
        Arc::new(std::sync::Mutex::new(engine)),
        &EmbeddedConfig::default(),
        facegate::matching::MatchingConfig::default().rule(),
        Arc::new(clock.clone()),
    )
    .unwrap();
    let (mut daemon, transitions) = front_door(&backend, dir.path(), &clock, Outage::default());
    daemon.contact = ContactMonitor::new(10_000);
    let sample = async |daemon: &mut Daemon, open: bool, exit: bool| {
        clock.advance_ms(100);
        let reading = SensorReading {
            door_open: Some(open),
            exit_pressed: exit,
        };
        let audited = daemon.on_sensors(reading).await.unwrap();
        daemon.on_tick().await.unwrap();
        audited
    };

    // Someone leaves: button held for three samples = one exit, the door opens, then the
    // door is opened and closed while unlocked: no alarm.
    assert_eq!(
        sample(&mut daemon, false, true).await,
        vec![AuditKind::Exit]
    );
    assert!(sample(&mut daemon, false, true).await.is_empty());
    assert!(sample(&mut daemon, true, true).await.is_empty());
    assert_eq!(daemon.door.state(), LockState::Unlocked);
    assert!(sample(&mut daemon, false, false).await.is_empty());
    wait(&mut daemon, &clock, 6_000).await;
    assert_eq!(
        daemon.door.state(),
        LockState::Locked,
        "the exit unlock ends"
    );

    // The door is pushed open while locked, and left open.
    assert_eq!(
        sample(&mut daemon, true, false).await,
        vec![AuditKind::Forced]
    );
    let mut held = Vec::new();
    for _ in 0..110 {
        held.extend(sample(&mut daemon, true, false).await);
    }
    assert_eq!(held, vec![AuditKind::HeldOpen]);
    assert_eq!(
        sample(&mut daemon, false, false).await,
        vec![AuditKind::Closed]
    );
    assert_eq!(
        *transitions.lock().unwrap(),
        vec![LockState::Locked, LockState::Unlocked, LockState::Locked],
        "alarms never move the relay"
    );
    let kinds: Vec<AuditKind> = daemon
        .audit
        .pending(10)
        .unwrap()
        .into_iter()
        .map(|e| e.event.kind)
        .collect();
    assert_eq!(
        kinds,
        vec![
            AuditKind::Exit,
            AuditKind::Forced,
            AuditKind::HeldOpen,
            AuditKind::Closed
        ]
    );
}
