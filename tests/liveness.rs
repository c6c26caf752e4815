//! Liveness. On real photos through the replay camera: a photo held still is refused, and the
//! replay camera's own affine warp of that flat photo ("live" motion) passes. The thresholds
//! were tuned on that same warp, so the second test shows that the demo and the daemon tests
//! can get past liveness — it is no evidence that a real face in front of a real camera passes
//! (docs/security.md says so). Then the refusals of synthetic tracks, each checked as `!live`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use facegate::camera::FrameSource;
use facegate::camera::replay::{Motion, ReplayCamera, Scene};
use facegate::clock::ManualClock;
use facegate::daemon::liveness::{LivenessConfig, LivenessVerdict, assess, assess_head_turn};
use facegate::vision::align::SFACE_TEMPLATE;
use facegate::vision::detect::Landmarks;
use facegate::vision::{RuntimeKind, quality};

fn verdict(motion: Motion) -> Option<LivenessVerdict> {
    let faces = common::faces_dir()?;
    let mut engine = common::engine(RuntimeKind::Ort)?;
    let person = &common::people(&faces, 1)[0];
    let photo = engine
        .load_image(&common::photo(&faces, person, 1))
        .unwrap();
    let scenes = vec![Scene {
        image: Some(photo),
        frames: 8,
        motion,
    }];
    let mut camera = ReplayCamera::new(scenes, Duration::ZERO, Arc::new(ManualClock::at(0)));
    let mut track = Vec::new();
    while let Ok(frame) = camera.next_frame() {
        let faces = engine.detect(&frame.image).unwrap();
        let face = faces.first().expect("a face in every frame");
        track.push((face.landmarks, quality::pose(face).0));
    }
    assert_eq!(track.len(), 8, "every frame was judged");
    Some(assess(&track, &LivenessConfig::default()))
}

#[test]
fn a_still_photo_is_refused() {
    let Some(v) = verdict(Motion::Still) else {
        return;
    };
    assert!(!v.live, "{v:?}");
}

/// Not evidence that a real face passes: the thresholds were tuned on this very warp.
#[test]
fn the_replay_cameras_warped_photo_passes_as_the_demo_needs() {
    let Some(v) = verdict(Motion::Live) else {
        return;
    };
    assert!(v.live, "{v:?}");
}

/// The SFace template landmarks shifted by `dx`, wobbled by `wobble` px, at `yaw`.
fn moved(dx: f32, wobble: f32, yaw: f32) -> (Landmarks, f32) {
    let mut l = SFACE_TEMPLATE;
    for (i, p) in l.iter_mut().enumerate() {
        p[0] += dx + if i % 2 == 0 { wobble } else { -wobble };
        p[1] += wobble * (i as f32 - 2.0) / 2.0;
    }
    (l, yaw)
}

/// A track that passes: jitter and a little yaw change.
fn natural(frames: usize) -> Vec<(Landmarks, f32)> {
    (0..frames)
        .map(|i| {
            let w = if i % 2 == 0 { 0.6 } else { -0.6 };
            moved(i as f32, w, 0.02 * i as f32)
        })
        .collect()
}

#[test]
fn frozen_slid_jumping_short_and_unturned_tracks_are_not_live() {
    let config = LivenessConfig::default();
    // The control: natural motion is live, so each refusal below is the one change it makes.
    let control = assess(&natural(8), &config);
    assert!(control.live, "{control:?}");
    let cases: Vec<(&str, Vec<(Landmarks, f32)>)> = vec![
        ("a frozen frame", vec![moved(0.0, 0.0, 0.05); 8]),
        (
            "a photo slid sideways",
            (0..8).map(|i| moved(i as f32 * 3.0, 0.0, 0.05)).collect(),
        ),
        (
            "two faces swapped in one track",
            (0..8)
                .map(|i| moved(0.0, if i % 2 == 0 { 30.0 } else { -30.0 }, 0.1 * i as f32))
                .collect(),
        ),
        ("too few frames", natural(config.min_frames - 1)),
        (
            "jitter without any pose change",
            natural(8).into_iter().map(|(l, _)| (l, 0.05)).collect(),
        ),
        ("nothing at all", Vec::new()),
    ];
    for (what, track) in cases {
        let v = assess(&track, &config);
        assert!(!v.live, "{what} passed liveness: {v:?}");
        assert!(!v.reason.is_empty(), "{what}: no reason given");
    }
}

#[test]
fn the_head_turn_check_needs_a_turn_to_each_side() {
    let config = LivenessConfig {
        head_turn: true,
        ..LivenessConfig::default()
    };
    let yaws =
        |ys: &[f32]| -> Vec<(Landmarks, f32)> { ys.iter().map(|&y| moved(0.0, 0.0, y)).collect() };
    let turn = config.head_turn_yaw;
    assert!(assess_head_turn(&yaws(&[0.0, turn, 0.0, -turn, 0.0]), &config).live);
    for (what, track) in [
        ("no turn", yaws(&[0.0, 0.02, -0.01])),
        ("one way only", yaws(&[0.0, turn, 2.0 * turn, turn])),
        ("the other way only", yaws(&[0.0, -turn, -2.0 * turn])),
        ("almost far enough", yaws(&[0.9 * turn, -0.9 * turn])),
        ("nothing at all", Vec::new()),
    ] {
        let v = assess_head_turn(&track, &config);
        assert!(!v.live, "{what} passed the head-turn check: {v:?}");
    }
}
