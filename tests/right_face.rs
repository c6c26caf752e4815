//! The door opens only for the right face, tried as an attacker would with the replay camera:
//! a victim's photo followed by the attacker's own live face, an enrolled person followed by a
//! stranger stepping in, a stranger who keeps trying, a photo that keeps being held up. And the
//! genuine person still gets in as fast as before.
//!
//! "Live" here is the replay camera's own small warp of a flat photo, the same one liveness was
//! tuned on: these tests show what the door does with the frames it is given, not that a real
//! face passes liveness.

mod common;

use std::sync::Arc;

use common::door::{count_events, front_door, live, nobody, play, still, wait};
use facegate::backend::BackendError;
use facegate::backend::embedded::{EmbeddedBackend, EmbeddedConfig};
use facegate::backend::fault::Outage;
use facegate::clock::{Clock, ManualClock};
use facegate::daemon::machine::State;
use facegate::daemon::{Attempt, Daemon};
use facegate::door::LockState;
use facegate::events::{DenyReason, Outcome};
use facegate::matching::MatchingConfig;
use facegate::vision::RuntimeKind;
use image::RgbImage;

struct Door {
    daemon: Daemon,
    clock: ManualClock,
    transitions: Arc<std::sync::Mutex<Vec<LockState>>>,
    /// Ana, enrolled in staff: photos other than her enrollment photo.
    ana: Vec<RgbImage>,
    /// People who never enrolled, one photo each.
    strangers: Vec<RgbImage>,
    _backend: Arc<EmbeddedBackend>,
    _dir: tempfile::TempDir,
}

/// A door with Ana enrolled from her first photo.
async fn door() -> Option<Door> {
    let faces = common::faces_dir()?;
    let engine = common::engine(RuntimeKind::Ort)?;
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(1_800_000_000_000);
    let backend = Arc::new(
        EmbeddedBackend::open(
            dir.path(),
            Arc::new(std::sync::Mutex::new(engine)),
            &EmbeddedConfig::default(),
            MatchingConfig::default().rule(),
            Arc::new(clock.clone()),
        )
        .unwrap(),
    );
    let load = |person: &str, n: usize| {
        image::open(common::photo(&faces, person, n))
            .unwrap()
            .to_rgb8()
    };
    let people = common::people(&faces, 60);
    let mut ana = None;
    for person in &people {
        let bytes = std::fs::read(common::photo(&faces, person, 1)).unwrap();
        match backend
            .enroll("ana@example.com", "Ana", &[bytes], &["staff".into()])
            .await
        {
            Ok(_) => {
                ana = Some(person.clone());
                break;
            }
            Err(BackendError::Rejected(_)) => continue,
            Err(e) => panic!("{e}"),
        }
    }
    let ana = ana.expect("someone enrollable");
    let strangers = people
        .iter()
        .filter(|p| **p != ana)
        .take(50)
        .map(|p| load(p, 1))
        .collect();
    let (daemon, transitions) = front_door(&backend, dir.path(), &clock, Outage::default());
    Some(Door {
        daemon,
        transitions,
        ana: vec![load(&ana, 2), load(&ana, 3)],
        strangers,
        clock,
        _backend: backend,
        _dir: dir,
    })
}

fn unlocked(door: &Door) -> bool {
    door.transitions
        .lock()
        .unwrap()
        .contains(&LockState::Unlocked)
}

/// Lets the door's cooldown run out (ticks only: no frames to warp meanwhile).
async fn wait_out_the_cooldown(d: &mut Door) {
    if let State::Cooldown { until } = *d.daemon.state() {
        let left = until.saturating_sub(d.clock.now_ms());
        wait(&mut d.daemon, &d.clock, left + 100).await;
    }
}

fn granted(attempts: &[Attempt]) -> usize {
    attempts.iter().filter(|a| a.granted()).count()
}

#[tokio::test]
async fn the_victims_photo_then_the_attackers_live_face_is_denied() {
    let Some(mut d) = door().await else { return };
    // The photo is held up for four frames (one short of liveness), then the attacker's own
    // live face takes its place in the same spot.
    let scenes = vec![
        still(d.ana[0].clone(), 4),
        live(d.strangers[0].clone(), 10),
        nobody(5),
    ];
    let attempts = play(&mut d.daemon, &d.clock, scenes).await;
    assert_eq!(granted(&attempts), 0, "{attempts:?}");
    assert!(!unlocked(&d), "the relay moved");
    assert!(
        attempts
            .iter()
            .all(|a| a.user.as_deref() != Some("ana@example.com")),
        "an attempt was made as the victim: {attempts:?}"
    );
    assert_eq!(
        attempts.len(),
        1,
        "one attempt, the attacker's: {attempts:?}"
    );
    assert_eq!(
        attempts[0].outcome,
        Outcome::Denied(DenyReason::UnknownFace)
    );
}

#[tokio::test]
async fn an_enrolled_person_then_a_stranger_stepping_in_is_denied() {
    let Some(mut d) = door().await else { return };
    let scenes = vec![
        live(d.ana[0].clone(), 4),
        live(d.strangers[1].clone(), 10),
        nobody(5),
    ];
    let attempts = play(&mut d.daemon, &d.clock, scenes).await;
    assert_eq!(granted(&attempts), 0, "{attempts:?}");
    assert!(!unlocked(&d));
}

#[tokio::test]
async fn the_genuine_person_moving_is_granted_as_soon_as_liveness_allows() {
    let Some(mut d) = door().await else { return };
    let started = d.clock.now_ms();
    let attempts = play(&mut d.daemon, &d.clock, vec![live(d.ana[0].clone(), 8)]).await;
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert!(attempts[0].granted(), "{attempts:?}");
    // Liveness needs five frames: the grant comes with the fifth, as before.
    let frames = (attempts[0].at_ms - started) / 100;
    assert_eq!(frames, 5, "granted at frame {frames}");
    assert_eq!(attempts[0].user.as_deref(), Some("ana@example.com"));
}

#[tokio::test]
async fn a_stranger_who_keeps_trying_waits_longer_and_longer_and_never_gets_in() {
    let Some(mut d) = door().await else { return };
    let started = d.clock.now_ms();
    let mut denials = Vec::new();
    // Strangers' faces, each shown as soon as the door looks at faces again, until thirty
    // attempts were made (a photo whose face fails the quality gate makes none).
    let strangers: Vec<RgbImage> = d.strangers.clone();
    for stranger in strangers {
        if denials.len() == 30 {
            break;
        }
        wait_out_the_cooldown(&mut d).await;
        let a = play(&mut d.daemon, &d.clock, vec![live(stranger, 10)]).await;
        assert_eq!(granted(&a), 0, "a stranger got in: {a:?}");
        assert!(a.len() <= 1, "{a:?}");
        denials.extend(a.iter().map(|a| a.at_ms - started));
    }
    assert_eq!(denials.len(), 30, "too few usable strangers' photos");
    assert!(!unlocked(&d));
    // The cooldown grows 3 s, 10 s, 30 s, then 2 min for every further denial: thirty
    // attempts take at least 3 + 10 + 30 + 26 × 120 s.
    let last = *denials.last().unwrap();
    assert!(
        last >= (3 + 10 + 30 + 26 * 120) * 1000,
        "30 attempts in {last} ms"
    );
    let gaps: Vec<u64> = denials.windows(2).map(|w| w[1] - w[0]).collect();
    eprintln!("30 strangers: attempts at {denials:?} ms, {gaps:?} ms apart");
    assert!(
        gaps[0] >= 3_000 && gaps[1] >= 10_000 && gaps[2] >= 30_000,
        "{gaps:?}"
    );
    assert!(gaps[3..].iter().all(|g| *g >= 120_000), "{gaps:?}");
    // Right after the last denial the enrolled person is not let in at once either: the door
    // is cooling down. Once it has, she is, and a grant starts the steps over.
    let during = play(&mut d.daemon, &d.clock, vec![live(d.ana[0].clone(), 10)]).await;
    assert!(during.is_empty(), "{during:?}");
    wait(&mut d.daemon, &d.clock, 120_000).await;
    let after = play(&mut d.daemon, &d.clock, vec![live(d.ana[1].clone(), 10)]).await;
    assert_eq!(granted(&after), 1, "{after:?}");
}

#[tokio::test]
async fn a_photo_held_up_is_refused_audited_counted_and_cooled_down() {
    let Some(mut d) = door().await else { return };
    let mut events = d.daemon.events().subscribe();
    let attempts = play(&mut d.daemon, &d.clock, vec![still(d.ana[0].clone(), 70)]).await;
    // One refusal, then the cooldown ignores the same photo; after it, a second refusal.
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert!(
        attempts
            .iter()
            .all(|a| a.outcome == Outcome::Denied(DenyReason::NotLive) && a.user.is_none())
    );
    let gap = attempts[1].at_ms - attempts[0].at_ms;
    assert!(
        gap >= 3_000,
        "the second refusal came {gap} ms after the first"
    );
    let audited = d.daemon.audit().pending(10).unwrap();
    assert_eq!(audited.len(), 2);
    assert!(
        audited
            .iter()
            .all(|e| e.event.outcome.as_deref() == Some("not_live")
                && e.event.reason.starts_with("liveness:"))
    );
    count_events(&mut events, d.daemon.monitor());
    let metrics = d.daemon.monitor().render_metrics();
    assert!(
        metrics.contains(r#"facegate_attempts_total{decision="denied",reason="not_live"} 2"#),
        "{metrics}"
    );
    assert!(!unlocked(&d));
}
