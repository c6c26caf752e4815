//! A door on the embedded backend for daemon tests: the replay camera played at 10 frames a
//! second of manual time, the simulated relay, and an outage switch.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use facegate::auth::DoorPolicy;
use facegate::backend::embedded::EmbeddedBackend;
use facegate::backend::fault::Outage;
use facegate::camera::FrameSource;
use facegate::camera::replay::{Motion, ReplayCamera, Scene};
use facegate::clock::ManualClock;
use facegate::daemon::runtime::{self, Attempt, Daemon};
use facegate::door::LockState;
use facegate::door::simulated::SimulatedRelay;
use image::RgbImage;

/// Plays `scenes` at 10 frames a second of manual time; returns the finished attempts.
pub async fn play(daemon: &mut Daemon, clock: &ManualClock, scenes: Vec<Scene>) -> Vec<Attempt> {
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
pub async fn wait(daemon: &mut Daemon, clock: &ManualClock, ms: u64) {
    for _ in 0..ms / 100 {
        clock.advance_ms(100);
        daemon.on_tick().await.unwrap();
    }
}

/// `image` in front of the camera as a live person for `frames` frames.
pub fn live(image: RgbImage, frames: usize) -> Scene {
    Scene {
        image: Some(image),
        frames,
        motion: Motion::Live,
    }
}

/// `image` held perfectly still for `frames` frames (a photo, a frozen feed).
pub fn still(image: RgbImage, frames: usize) -> Scene {
    Scene {
        image: Some(image),
        frames,
        motion: Motion::Still,
    }
}

/// No one in view for `frames` frames.
pub fn nobody(frames: usize) -> Scene {
    Scene {
        image: None,
        frames,
        motion: Motion::Still,
    }
}

/// A daemon at door "front" (staff only) with a simulated relay, and the relay's transitions.
pub fn front_door(
    backend: &EmbeddedBackend,
    dir: &std::path::Path,
    clock: &ManualClock,
    outage: Outage,
) -> (Daemon, Arc<Mutex<Vec<LockState>>>) {
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
