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
use facegate::config::Config;
use facegate::daemon::{Attempt, Daemon, embedded_door};
use facegate::door::LockState;
use facegate::door::simulated::SimulatedRelay;
use facegate::events::DoorEvent;
use facegate::monitor::Monitor;
use facegate::settings::DoorSettings;
use image::RgbImage;
use tokio::sync::broadcast;

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

/// The default settings at door "front", which admits staff.
pub fn settings() -> DoorSettings {
    let mut settings = DoorSettings::resolve(&Config::default(), None).unwrap();
    settings.door = "front".into();
    settings.policy = DoorPolicy {
        allowed_groups: vec!["staff".into()],
    };
    settings
}

/// A daemon at door "front" (staff only) with a simulated relay, and the relay's transitions.
pub fn front_door(
    backend: &Arc<EmbeddedBackend>,
    dir: &std::path::Path,
    clock: &ManualClock,
    outage: Outage,
) -> (Daemon, Arc<Mutex<Vec<LockState>>>) {
    front_door_with(backend, dir, clock, outage, settings())
}

/// The same door with `settings`.
pub fn front_door_with(
    backend: &Arc<EmbeddedBackend>,
    dir: &std::path::Path,
    clock: &ManualClock,
    outage: Outage,
    settings: DoorSettings,
) -> (Daemon, Arc<Mutex<Vec<LockState>>>) {
    let relay = SimulatedRelay::new(None);
    let transitions = relay.transitions();
    let daemon = embedded_door(
        backend,
        dir,
        Box::new(relay),
        Arc::new(clock.clone()),
        settings,
        &outage,
    )
    .unwrap();
    (daemon, transitions)
}

/// Passes every event sent since `events` subscribed to `monitor`, as `Monitor::follow` would.
pub fn count_events(events: &mut broadcast::Receiver<DoorEvent>, monitor: &Monitor) {
    while let Ok(event) = events.try_recv() {
        monitor.observe(&event);
    }
}
