//! Liveness on real faces through the replay camera: a photo held still is refused, the same
//! photo with a person's small movements passes.

mod common;

use std::sync::Arc;
use std::time::Duration;

use facegate::camera::FrameSource;
use facegate::camera::replay::{Motion, ReplayCamera, Scene};
use facegate::clock::ManualClock;
use facegate::daemon::liveness::{LivenessConfig, assess};
use facegate::vision::{RuntimeKind, quality};

fn verdict(motion: Motion) -> Option<facegate::daemon::liveness::LivenessVerdict> {
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
    Some(assess(&track, &LivenessConfig::default()))
}

#[test]
fn a_still_photo_is_refused() {
    let Some(v) = verdict(Motion::Still) else {
        return;
    };
    assert!(!v.live, "{v:?}");
}

#[test]
fn a_moving_face_passes() {
    let Some(v) = verdict(Motion::Live) else {
        return;
    };
    assert!(v.live, "{v:?}");
}
