//! The daemon end to end on the embedded backend, with the replay camera, the simulated relay
//! and an injected network outage: a morning at the door; offline grace's threshold and door
//! policy; a relay that refuses to unlock; AWS unreachable.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::door::{count_events, front_door, front_door_with, play, settings, wait};
use facegate::backend::aws::{AwsBackend, AwsConfig};
use facegate::backend::embedded::{EmbeddedBackend, EmbeddedConfig};
use facegate::backend::fault::Outage;
use facegate::backend::open::BackendPorts;
use facegate::camera::FrameSource;
use facegate::camera::replay::{Motion, ReplayCamera, Scene};
use facegate::clock::{Clock, ManualClock};
use facegate::daemon::{Daemon, DaemonParts, embedded_door, open_store};
use facegate::door::simulated::SimulatedRelay;
use facegate::door::{LockState, SensorReading};
use facegate::events::{DenyReason, Outcome};
use facegate::store::audit::AuditKind;
use facegate::store::grants::Grant;
use facegate::vision::{Embedding, RuntimeKind};

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
    let backend = Arc::new(
        EmbeddedBackend::open(
            dir.path(),
            engine.clone(),
            &EmbeddedConfig::default(),
            facegate::matching::MatchingConfig::default().rule(),
            Arc::new(clock.clone()),
        )
        .unwrap(),
    );

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
    let mut door = settings();
    door.offline.grace_ms = 600_000;
    let (mut daemon, transitions) =
        front_door_with(&backend, dir.path(), &clock, outage.clone(), door);
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

    // A still photo of Ana held up: refused by liveness before anything reaches the backend,
    // and that refusal is an attempt like any other: audited, with the next, longer cooldown.
    let still = Scene {
        image: Some(load(&ana, 2)),
        frames: 20,
        motion: Motion::Still,
    };
    let refused = play(&mut daemon, &clock, vec![still, nobody.clone()]).await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].outcome, Outcome::Denied(DenyReason::NotLive));
    assert_eq!(refused[0].relay, LockState::Locked);
    wait(&mut daemon, &clock, 10_000).await;

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
        daemon.grants().all().unwrap().is_empty(),
        "the grant of a disabled user is dropped"
    );
    let d = play(&mut daemon, &clock, vec![nobody, live(load(&ana, 2))]).await;
    assert_eq!(d.len(), 1);
    assert!(!d[0].granted() && d[0].online, "{d:?}");

    // Every attempt is in the audit outbox, offline ones marked, the refusal with its reason.
    let events = daemon.audit().pending(100).unwrap();
    assert_eq!(events.len(), 6);
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event.outcome.as_deref() == Some("not_live"))
            .count(),
        1
    );
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
    let backend = Arc::new(
        EmbeddedBackend::open(
            dir.path(),
            Arc::new(std::sync::Mutex::new(engine)),
            &EmbeddedConfig::default(),
            facegate::matching::MatchingConfig::default().rule(),
            Arc::new(clock.clone()),
        )
        .unwrap(),
    );
    let mut door = settings();
    door.held_open_ms = 10_000;
    let (mut daemon, transitions) =
        front_door_with(&backend, dir.path(), &clock, Outage::default(), door);
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
    assert_eq!(daemon.lock_state(), LockState::Unlocked);
    assert!(sample(&mut daemon, false, false).await.is_empty());
    wait(&mut daemon, &clock, 6_000).await;
    assert_eq!(
        daemon.lock_state(),
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
        .audit()
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

/// Longer than the first two (escalating) cooldowns after a denial.
const COOLDOWNS_MS: u64 = 15_000;

/// An embedded backend with nobody enrolled, the face engine, and the face photos.
struct Bench {
    backend: Arc<EmbeddedBackend>,
    faces: std::path::PathBuf,
    clock: ManualClock,
    dir: tempfile::TempDir,
}

fn bench() -> Option<Bench> {
    let faces = common::faces_dir()?;
    let engine = common::engine(RuntimeKind::Ort)?;
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(1_800_000_000_000);
    let backend = Arc::new(
        EmbeddedBackend::open(
            dir.path(),
            Arc::new(std::sync::Mutex::new(engine)),
            &EmbeddedConfig::default(),
            facegate::matching::MatchingConfig::default().rule(),
            Arc::new(clock.clone()),
        )
        .unwrap(),
    );
    Some(Bench {
        backend,
        faces,
        clock,
        dir,
    })
}

impl Bench {
    fn photo(&self, n: usize) -> image::RgbImage {
        let person = &common::people(&self.faces, 1)[0];
        image::open(common::photo(&self.faces, person, n))
            .unwrap()
            .to_rgb8()
    }

    /// The embedding of the face the daemon finds in `image` (its first, largest face).
    fn embedding(&self, image: &image::RgbImage) -> Embedding {
        let engine = self.backend.faces.engine();
        let mut engine = engine.lock().unwrap();
        let face = engine.detect(image).unwrap()[0].clone();
        engine.describe(image, &face).unwrap().embedding
    }

    /// A grant for Ana, as her last online sign-in would have left it.
    fn grant(&self, daemon: &Daemon, embedding: &Embedding, groups: &[&str]) {
        daemon
            .grants()
            .record(&Grant {
                username: "ana@example.com".into(),
                groups: groups.iter().map(|g| g.to_string()).collect(),
                online_at_ms: self.clock.now_ms(),
                embedding: embedding.to_bytes(),
                refresh_token: None,
                // The tokens of that sign-in are good for another hour.
                tokens_expire_at_secs: self.clock.now_secs() + 3600,
            })
            .unwrap();
    }
}

fn live(image: image::RgbImage) -> Scene {
    Scene {
        image: Some(image),
        frames: 8,
        motion: Motion::Live,
    }
}

/// A unit vector at exactly `cosine` to `e`.
fn at_cosine(e: &Embedding, cosine: f32) -> Embedding {
    let e = e.as_slice();
    // A direction orthogonal to `e`: the axis `e` leans on least, minus its part along `e`.
    let k = (0..e.len())
        .min_by(|&a, &b| e[a].abs().total_cmp(&e[b].abs()))
        .unwrap();
    let mut u: Vec<f32> = e.iter().map(|x| -x * e[k]).collect();
    u[k] += 1.0;
    let norm = u.iter().map(|x| x * x).sum::<f32>().sqrt();
    let sine = (1.0 - cosine * cosine).sqrt();
    let v: Vec<f32> = e
        .iter()
        .zip(&u)
        .map(|(a, b)| cosine * a + sine * b / norm)
        .collect();
    Embedding::from_raw(&v).unwrap()
}

#[tokio::test]
async fn offline_matching_uses_the_stricter_offline_threshold() {
    let Some(b) = bench() else { return };
    let outage = Outage::default();
    // A photo held still (liveness off here: it is tried elsewhere), so the frame the daemon
    // judges is the photo itself and its similarity to a grant can be set exactly.
    let mut door = settings();
    door.liveness.min_jitter = 0.0;
    door.liveness.min_yaw_spread = 0.0;
    let (mut daemon, transitions) =
        front_door_with(&b.backend, b.dir.path(), &b.clock, outage.clone(), door);
    // Online, one enrolled face is matched at the decision rule's threshold for one face.
    let online = daemon.settings().rule.threshold(1);
    let floor = daemon.settings().offline.floor;
    assert!(
        floor > online,
        "the default offline threshold {floor} is not stricter than online {online}"
    );
    let photo = b.photo(2);
    let probe = b.embedding(&photo);
    let held = || Scene {
        image: Some(photo.clone()),
        frames: 8,
        motion: Motion::Still,
    };
    outage.set(true);
    // Between the online and the offline threshold: a match online, not offline.
    let between = (online + floor) / 2.0;
    b.grant(&daemon, &at_cosine(&probe, between), &["staff"]);
    let a = play(&mut daemon, &b.clock, vec![held()]).await;
    assert_eq!(a.len(), 1, "{a:?}");
    assert!(!a[0].granted() && !a[0].online, "{a:?}");
    // The reason carries the similarity the daemon measured: between the two thresholds.
    let best: f32 = a[0]
        .reason
        .split("best ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|x| x.parse().ok())
        .unwrap_or_else(|| panic!("not a no-match denial: {}", a[0].reason));
    assert!(
        best > online && best < floor,
        "the probe is at {best}, not between {online} and {floor}"
    );
    assert!(!transitions.lock().unwrap().contains(&LockState::Unlocked));
    // The control: just above the offline threshold, the same face is let in offline.
    wait(&mut daemon, &b.clock, COOLDOWNS_MS).await;
    let above = floor + 0.05;
    b.grant(&daemon, &at_cosine(&probe, above), &["staff"]);
    let a = play(&mut daemon, &b.clock, vec![held()]).await;
    assert_eq!(a.len(), 1, "{a:?}");
    assert!(a[0].granted() && !a[0].online, "{a:?}");
}

#[tokio::test]
async fn offline_grants_obey_the_doors_policy() {
    let Some(b) = bench() else { return };
    let outage = Outage::default();
    let (mut daemon, transitions) = front_door(&b.backend, b.dir.path(), &b.clock, outage.clone());
    let photo = b.photo(2);
    outage.set(true);
    // Ana's grant says visitors; this door admits staff only.
    b.grant(&daemon, &b.embedding(&photo), &["visitors"]);
    let a = play(&mut daemon, &b.clock, vec![live(photo.clone())]).await;
    assert_eq!(a.len(), 1, "{a:?}");
    assert!(!a[0].granted() && !a[0].online, "{a:?}");
    assert!(a[0].reason.contains("not in a group"), "{}", a[0].reason);
    assert_eq!(a[0].user.as_deref(), Some("ana@example.com"), "{a:?}");
    assert!(!transitions.lock().unwrap().contains(&LockState::Unlocked));
    // A grant with no group at all opens nothing either.
    wait(&mut daemon, &b.clock, COOLDOWNS_MS).await;
    b.grant(&daemon, &b.embedding(&photo), &[]);
    let a = play(&mut daemon, &b.clock, vec![live(photo.clone())]).await;
    assert!(a.len() == 1 && !a[0].granted(), "{a:?}");
    assert!(!transitions.lock().unwrap().contains(&LockState::Unlocked));
    // The control: with staff in her grant, the same face opens the door offline.
    wait(&mut daemon, &b.clock, COOLDOWNS_MS).await;
    b.grant(&daemon, &b.embedding(&photo), &["visitors", "staff"]);
    let a = play(&mut daemon, &b.clock, vec![live(photo)]).await;
    assert!(a.len() == 1 && a[0].granted() && !a[0].online, "{a:?}");
    assert_eq!(
        transitions.lock().unwrap().last(),
        Some(&LockState::Unlocked)
    );
}

#[tokio::test]
async fn a_relay_that_refuses_to_unlock_is_driven_locked() {
    let Some(b) = bench() else { return };
    let outage = Outage::default();
    let relay = common::relay::RefusingRelay::default();
    let asked = relay.asked.clone();
    let mut daemon = embedded_door(
        &b.backend,
        b.dir.path(),
        Box::new(relay),
        Arc::new(b.clock.clone()),
        settings(),
        &outage,
    )
    .unwrap();
    let photo = b.photo(2);
    outage.set(true);
    b.grant(&daemon, &b.embedding(&photo), &["staff"]);
    // Ana is let in (offline grace), and the relay refuses to open.
    let mut camera =
        ReplayCamera::new(vec![live(photo)], Duration::ZERO, Arc::new(b.clock.clone()));
    let mut failed = None;
    while let Ok(frame) = camera.next_frame() {
        b.clock.advance_ms(100);
        if let Err(e) = daemon.on_frame(frame).await {
            failed = Some(e);
            break;
        }
    }
    let failed = failed.expect("the refused unlock is an error the service stops on");
    assert!(failed.to_string().contains("relay"), "{failed}");
    let asked = asked.lock().unwrap().clone();
    assert_eq!(
        asked.first(),
        Some(&LockState::Locked),
        "locked at start: {asked:?}"
    );
    let unlock = asked
        .iter()
        .position(|s| *s == LockState::Unlocked)
        .expect("an unlock was asked for");
    assert_eq!(
        asked[unlock + 1..].first(),
        Some(&LockState::Locked),
        "the refused unlock was not followed by a lock: {asked:?}"
    );
    assert_eq!(daemon.lock_state(), LockState::Locked);
}

#[tokio::test]
async fn with_aws_unreachable_the_daemon_decides_offline() {
    let Some(b) = bench() else { return };
    // Every AWS service behind one dead endpoint (nothing listens on port 1), no retries.
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("eu-west-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "AKID", "secret", None, None, "test",
        ))
        .endpoint_url("http://127.0.0.1:1")
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
        .load()
        .await;
    let config = AwsConfig {
        user_pool_id: "eu-west-1_Pool".into(),
        client_id: "client".into(),
        signin_bucket: "facegate-signin".into(),
        signup_bucket: "facegate-signup".into(),
        ..Default::default()
    };
    let aws = AwsBackend::from_sdk_config(&config, &shared, "eu-west-1".into()).unwrap();
    let data = b.dir.path().join("device");
    std::fs::create_dir(&data).unwrap();
    let db = open_store(&data).unwrap();
    let ports = BackendPorts::aws(
        &aws,
        db.open_tree("aws/jwks").unwrap(),
        Arc::new(b.clock.clone()),
    )
    .unwrap();
    let relay = SimulatedRelay::new(None);
    let transitions = relay.transitions();
    let parts = DaemonParts::new(
        &ports,
        b.backend.faces.engine(),
        &data,
        db,
        Box::new(relay),
        Arc::new(b.clock.clone()),
        &settings(),
    )
    .unwrap();
    let mut daemon = Daemon::new(parts, settings()).unwrap();
    let mut events = daemon.events().subscribe();
    let photo = b.photo(2);
    b.grant(&daemon, &b.embedding(&photo), &["staff"]);
    let a = play(&mut daemon, &b.clock, vec![live(photo)]).await;
    assert_eq!(a.len(), 1, "{a:?}");
    assert!(a[0].granted() && !a[0].online, "not decided offline: {a:?}");
    assert_eq!(
        transitions.lock().unwrap().last(),
        Some(&LockState::Unlocked)
    );
    count_events(&mut events, daemon.monitor());
    assert_eq!(daemon.monitor().health().backend, "offline");
    let audited = daemon.audit().pending(10).unwrap();
    assert!(
        audited
            .iter()
            .any(|e| e.event.granted && !e.event.online && e.event.backend == "aws"),
        "{audited:?}"
    );
    // A stranger is refused offline, and the door stays as the grant left it.
    wait(&mut daemon, &b.clock, 8_000).await;
    let stranger = common::people(&b.faces, 8).pop().unwrap();
    let s = image::open(common::photo(&b.faces, &stranger, 1))
        .unwrap()
        .to_rgb8();
    let d = play(&mut daemon, &b.clock, vec![live(s)]).await;
    assert!(d.len() == 1 && !d[0].granted() && !d[0].online, "{d:?}");
    assert_eq!(transitions.lock().unwrap().last(), Some(&LockState::Locked));
}
