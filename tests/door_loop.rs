//! The daemon's loop with no models: a scripted face analyser, the real user pool and trigger
//! code over in-memory services (a "face" there is the uploaded frame's bytes), a relay that
//! checks the audit outbox each time it moves. Grants and their audit, denials and their
//! growing cooldowns, offline grace, and `serve` itself, tried as tables.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use facegate::auth::DeviceFlow;
use facegate::backend::embedded::tokens::{Issuer, TokenSigner};
use facegate::backend::embedded::{User, UserPool, UserStore};
use facegate::backend::fault::Outage;
use facegate::backend::open::BackendPorts;
use facegate::backend::{Directory, FaceIndex, FaceRecord};
use facegate::camera::Frame;
use facegate::clock::{Clock, ManualClock};
use facegate::config::BackendKind;
use facegate::daemon::machine::State;
use facegate::daemon::serve::{Io, NoNotifier, serve};
use facegate::daemon::{Analysis, Daemon, DaemonParts, ScriptedAnalyser, analyser::ScriptHandle};
use facegate::door::{LockState, NoSensors, Relay, RelayError};
use facegate::events::{DenyReason, Outcome, Via};
use facegate::matching::{DecisionRule, Threshold};
use facegate::monitor::Monitor;
use facegate::store::Sealer;
use facegate::store::audit::{AuditOutbox, JsonLinesSink};
use facegate::vision::align::SFACE_TEMPLATE;
use facegate::vision::detect::BoundingBox;
use facegate::vision::embed::EMBEDDING_DIM;
use facegate::vision::{Embedding, Face, image_io};
use image::RgbImage;

const START_MS: u64 = 1_800_000_000_000;

/// A relay that records each state asked for with how many audit events were durable then.
struct AuditedRelay {
    outbox: AuditOutbox,
    moves: Arc<Mutex<Vec<(LockState, usize)>>>,
}

impl Relay for AuditedRelay {
    fn set(&mut self, state: LockState) -> Result<(), RelayError> {
        let audited = self.outbox.len();
        self.moves.lock().unwrap().push((state, audited));
        Ok(())
    }
}

struct Rig {
    daemon: Daemon,
    script: ScriptHandle,
    clock: ManualClock,
    outage: Outage,
    moves: Arc<Mutex<Vec<(LockState, usize)>>>,
    /// Ana's frame: the bytes her enrolled "face" was indexed from, once JPEG-encoded.
    ana: RgbImage,
    stranger: RgbImage,
}

fn picture(seed: u8) -> RgbImage {
    RgbImage::from_fn(64, 64, |x, y| {
        image::Rgb([seed, (x * 4) as u8, (y * 4) as u8])
    })
}

fn axis(i: usize) -> Embedding {
    let mut v = [0.01; EMBEDDING_DIM];
    v[i] = 1.0;
    Embedding::from_raw(&v).unwrap()
}

async fn rig() -> Rig {
    let p = common::ports::ports(&["ana@example.com"], START_MS);
    let clock = p.clock.clone();
    let ana = picture(1);
    let face_id = p
        .faces
        .index_face(&image_io::encode_jpeg(&ana, 90), "ana@example.com")
        .await
        .unwrap();
    p.table
        .put_face(FaceRecord {
            face_id,
            username: "ana@example.com".into(),
            indexed_at_ms: START_MS,
        })
        .await
        .unwrap();
    let db = sled::Config::new().temporary(true).open().unwrap();
    let users = UserStore::new(db.open_tree("users").unwrap());
    users
        .create(&User {
            username: "ana@example.com".into(),
            sub: "sub-ana".into(),
            name: "Ana".into(),
            enabled: true,
            groups: ["staff".to_string()].into_iter().collect(),
            created_at_ms: START_MS,
        })
        .unwrap();
    let issuer = Issuer {
        issuer: "https://facegate.test".into(),
        client_id: "door".into(),
        token_validity_secs: 3600,
    };
    let pool = Arc::new(UserPool::new(
        users,
        p.ports.clone(),
        TokenSigner::generate(issuer).0,
        db.open_tree("refresh").unwrap(),
        86_400,
    ));
    let outage = Outage::default();
    let ports = BackendPorts {
        kind: BackendKind::Embedded,
        idp: pool.clone(),
        signin: p.signin.clone(),
        faces: p.faces.clone(),
        directory: p.table.clone(),
        keys: pool.clone(),
        expectations: pool.expectations(),
        rule: DecisionRule::new(Threshold::Fixed(95.0), 1.0),
        embedded: None,
    }
    .behind(&outage);
    let store = sled::Config::new().temporary(true).open().unwrap();
    let moves = Arc::new(Mutex::new(Vec::new()));
    let relay = AuditedRelay {
        outbox: AuditOutbox::open(&store, 100).unwrap(),
        moves: moves.clone(),
    };
    let (analyser, script) = ScriptedAnalyser::new([]);
    let settings = common::door::settings();
    let clock_arc: Arc<dyn Clock> = Arc::new(clock.clone());
    let parts = DaemonParts {
        analyser: Box::new(analyser),
        flow: DeviceFlow::new(&ports, clock_arc.clone()),
        backend_name: "embedded",
        store,
        sealer: Arc::new(Sealer::with_key(&[7; 32])),
        relay: Box::new(relay),
        indicator: Box::new(facegate::door::LogIndicator),
        monitor: Arc::new(Monitor::new(clock_arc.clone(), 5_000)),
        clock: clock_arc,
        events: Default::default(),
    };
    Rig {
        daemon: Daemon::new(parts, settings).unwrap(),
        script,
        clock,
        outage,
        moves,
        ana,
        stranger: picture(2),
    }
}

/// A good face of person `who` in frame `n`: landmarks that move a little, a turning head.
fn good(who: usize, n: usize) -> Analysis {
    let wobble = if n.is_multiple_of(2) { 0.6 } else { -0.6 };
    let mut landmarks = SFACE_TEMPLATE;
    for (i, p) in landmarks.iter_mut().enumerate() {
        p[0] += n as f32 + if i % 2 == 0 { wobble } else { -wobble };
        p[1] += wobble * (i as f32 - 2.0) / 2.0;
    }
    Analysis::Good {
        face: Face {
            bbox: BoundingBox {
                x: 10.0,
                y: 10.0,
                width: 120.0,
                height: 120.0,
            },
            score: 0.95,
            landmarks,
        },
        embedding: Box::new(axis(who)),
        yaw: 0.02 * n as f32,
    }
}

impl Rig {
    /// Shows `image` for `frames` frames, the analyser seeing person `who`; returns the
    /// attempts that finished.
    async fn show(
        &mut self,
        image: &RgbImage,
        who: usize,
        frames: usize,
    ) -> Vec<facegate::daemon::Attempt> {
        self.script.replace((0..frames).map(|n| good(who, n)));
        let mut attempts = Vec::new();
        for n in 0..frames {
            self.clock.advance_ms(100);
            let frame = Frame {
                image: image.clone(),
                captured_at_ms: self.clock.now_ms(),
                sequence: n as u64,
            };
            attempts.extend(self.daemon.on_frame(frame).await.unwrap());
            attempts.extend(self.daemon.on_tick().await.unwrap());
        }
        attempts
    }

    async fn wait_ms(&mut self, ms: u64) {
        for _ in 0..ms / 100 {
            self.clock.advance_ms(100);
            self.daemon.on_tick().await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_live_track_is_granted_and_audited_before_the_relay_moves() {
    let mut r = rig().await;
    let ana = r.ana.clone();
    let a = r.show(&ana, 0, 6).await;
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0].outcome, Outcome::Granted(Via::Verified));
    assert_eq!(a[0].user.as_deref(), Some("ana@example.com"));
    let moves = r.moves.lock().unwrap().clone();
    assert_eq!(moves[0], (LockState::Locked, 0), "locked at start");
    let unlock = moves
        .iter()
        .find(|(state, _)| *state == LockState::Unlocked)
        .expect("the relay opened");
    assert!(
        unlock.1 >= 1,
        "the relay opened before the grant was audited: {moves:?}"
    );
    assert!(r.daemon.audit().pending(10).unwrap()[0].event.granted);
    r.wait_ms(5_100).await;
    assert_eq!(
        r.daemon.lock_state(),
        LockState::Locked,
        "locked after unlock_ms"
    );
}

#[tokio::test]
async fn denials_cool_down_longer_each_time_and_a_grant_starts_over() {
    let mut r = rig().await;
    let stranger = r.stranger.clone();
    let ana = r.ana.clone();
    let mut cooldowns = Vec::new();
    for _ in 0..3 {
        let a = r.show(&stranger, 5, 5).await;
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!(a[0].outcome, Outcome::Denied(DenyReason::UnknownFace));
        let State::Cooldown { until } = *r.daemon.state() else {
            panic!("{:?}", r.daemon.state())
        };
        cooldowns.push(until - r.clock.now_ms());
        r.wait_ms(until - r.clock.now_ms() + 100).await;
    }
    assert_eq!(cooldowns, vec![3_000, 10_000, 30_000]);
    assert!(r.show(&ana, 0, 5).await[0].granted());
    r.wait_ms(7_500).await;
    r.show(&stranger, 5, 5).await;
    let State::Cooldown { until } = *r.daemon.state() else {
        panic!("{:?}", r.daemon.state())
    };
    assert_eq!(
        until - r.clock.now_ms(),
        3_000,
        "a grant starts the steps over"
    );
    assert!(
        r.moves
            .lock()
            .unwrap()
            .iter()
            .filter(|(s, _)| *s == LockState::Unlocked)
            .count()
            == 1,
        "only Ana opened the door"
    );
}

#[tokio::test]
async fn offline_the_recent_grant_admits_and_a_face_switch_does_not() {
    let mut r = rig().await;
    let ana = r.ana.clone();
    assert!(r.show(&ana, 0, 5).await[0].granted());
    r.wait_ms(7_500).await;
    r.outage.set(true);
    let a = r.show(&ana, 0, 5).await;
    assert_eq!(a[0].outcome, Outcome::Granted(Via::OfflineGrace), "{a:?}");
    assert!(!a[0].online);
    r.wait_ms(7_500).await;
    // The photo is Ana's, the face the analyser sees is someone else's: no grant matches.
    let a = r.show(&ana, 3, 5).await;
    assert_eq!(
        a[0].outcome,
        Outcome::Denied(DenyReason::OfflineNoGrant),
        "{a:?}"
    );
}

#[tokio::test]
async fn serve_runs_the_door_and_stops_locked() {
    let mut r = rig().await;
    let dir = tempfile::tempdir().unwrap();
    let (frames, receiver) = tokio::sync::watch::channel(None);
    let ana = r.ana.clone();
    r.script.push((0..8).map(|n| good(0, n)));
    let clock = r.clock.clone();
    let feeder = tokio::spawn(async move {
        for n in 0..8 {
            tokio::time::sleep(Duration::from_millis(150)).await;
            clock.advance_ms(100);
            let _ = frames.send(Some(Frame {
                image: ana.clone(),
                captured_at_ms: clock.now_ms(),
                sequence: n,
            }));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    });
    let io = Io {
        frames: receiver,
        sensors: Box::new(NoSensors),
        sink: JsonLinesSink::new(dir.path().join("audit.jsonl")),
        commands: None,
    };
    serve(&mut r.daemon, io, &mut NoNotifier, async {
        let _ = feeder.await;
    })
    .await
    .unwrap();
    assert_eq!(
        r.daemon.lock_state(),
        LockState::Locked,
        "locked on the way out"
    );
    let shipped = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    assert!(
        shipped.contains("\"granted\":true") && shipped.contains("ana@example.com"),
        "{shipped}"
    );
    assert_eq!(
        r.daemon.audit().len(),
        0,
        "everything shipped before exiting"
    );
}

#[tokio::test]
async fn an_operators_unlock_is_audited_bounded_and_can_be_ended() {
    use facegate::events::{DoorCommand, DoorEvent, UnlockOrigin};
    use facegate::store::audit::AuditKind;
    let mut r = rig().await;
    let mut events = r.daemon.events().subscribe();
    r.daemon
        .on_command(DoorCommand::Unlock {
            by: "console: ana@example.com".into(),
        })
        .await
        .unwrap();
    assert_eq!(r.daemon.lock_state(), LockState::Unlocked);
    let moves = r.moves.lock().unwrap().clone();
    assert_eq!(
        moves.last(),
        Some(&(LockState::Unlocked, 1)),
        "audited before the relay moved"
    );
    let audited = r.daemon.audit().pending(10).unwrap();
    assert_eq!(audited[0].event.kind, AuditKind::RemoteUnlock);
    assert!(audited[0].event.reason.contains("console: ana@example.com"));
    assert!(matches!(
        events.try_recv(),
        Ok(DoorEvent::Unlocked {
            origin: UnlockOrigin::Remote,
            ..
        })
    ));
    // Bounded like a grant.
    r.wait_ms(5_100).await;
    assert_eq!(r.daemon.lock_state(), LockState::Locked);
    // And an operator's lock ends an unlock early.
    r.daemon
        .on_command(DoorCommand::Unlock { by: "mqtt".into() })
        .await
        .unwrap();
    r.daemon
        .on_command(DoorCommand::Lock { by: "mqtt".into() })
        .await
        .unwrap();
    assert_eq!(r.daemon.lock_state(), LockState::Locked);
    let kinds: Vec<AuditKind> = r
        .daemon
        .audit()
        .pending(10)
        .unwrap()
        .iter()
        .map(|e| e.event.kind)
        .collect();
    assert_eq!(
        kinds,
        vec![
            AuditKind::RemoteUnlock,
            AuditKind::RemoteUnlock,
            AuditKind::RemoteLock
        ]
    );
}
