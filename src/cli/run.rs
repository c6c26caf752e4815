//! `facegate run`: the door service. Frames from the configured camera on a thread of their
//! own, the daemon ticking ten times a second, until SIGTERM or SIGINT; then the door is
//! locked (FAIL-SECURE) and the audit outbox shipped before exiting 0.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::Args;
use tokio::signal::unix::{SignalKind, signal};

use super::{Failure, GlobalArgs, door_policy, load_config, runtime};
use crate::backend::embedded::EmbeddedBackend;
use crate::backend::fault::Outage;
use crate::camera::replay::ReplayCamera;
use crate::camera::{CameraError, Frame, FrameSource};
use crate::clock::{Clock, SystemClock};
use crate::config::{CameraKind, Config, RelayKind};
use crate::daemon::runtime;
use crate::door::simulated::SimulatedRelay;
use crate::store::audit::JsonLinesSink;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The door this device drives [default: the first door in the config]
    #[arg(long, value_name = "NAME")]
    pub door: Option<String>,
}

pub fn run(global: &GlobalArgs, args: RunArgs) -> Result<u8, Failure> {
    let config = load_config(global)?;
    runtime()?
        .block_on(serve(config, args))
        .map_err(Failure::from)
}

async fn serve(config: Config, args: RunArgs) -> anyhow::Result<u8> {
    let (door_name, policy) = door_policy(&config, args.door.as_deref())?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let relay = match config.relay.kind {
        RelayKind::Simulated => SimulatedRelay::new(config.relay.state_file.clone()),
    };
    let camera: Box<dyn FrameSource> = match config.camera.kind {
        CameraKind::Replay => {
            let dir = config
                .camera
                .replay_dir
                .as_ref()
                .ok_or_else(|| anyhow!("camera.kind = \"replay\" needs camera.replay_dir"))?;
            let interval = Duration::from_millis(1000 / u64::from(config.camera.fps));
            Box::new(ReplayCamera::from_dir(
                dir,
                &config.vision.images,
                interval,
                clock.clone(),
            )?)
        }
    };
    let engine = Arc::new(std::sync::Mutex::new(crate::vision::FaceEngine::load(
        &config.vision,
    )?));
    let backend = EmbeddedBackend::open(
        &config.data_dir,
        engine,
        &config.backend.embedded,
        clock.clone(),
    )?;
    // FAIL-SECURE: the door is locked from here until the process ends, whatever happens.
    let mut daemon = runtime::on_embedded_backend(
        &backend,
        &config.data_dir,
        Box::new(relay),
        clock,
        &door_name,
        policy,
        Outage::default(),
    )?;
    daemon.machine = config.daemon.clone();
    daemon.liveness = config.liveness.clone();
    daemon.offline = config.offline.clone();
    let mut sink = JsonLinesSink::new(config.data_dir.join("audit.jsonl"));
    daemon.audit.ship(&mut sink)?; // whatever a crash left behind
    tracing::info!(door = %door_name, "facegate is running");

    let (frames, mut next_frame) = tokio::sync::watch::channel::<Option<Frame>>(None);
    std::thread::spawn(move || capture(camera, frames));
    let mut terminate = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut ticks = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            _ = ticks.tick() => {
                daemon.on_tick().await?;
                daemon.audit.ship(&mut sink)?;
            }
            changed = next_frame.changed(), if next_frame.has_changed().is_ok() => {
                if changed.is_err() {
                    continue; // the camera thread ended: keep ticking until told to stop
                }
                let frame = next_frame.borrow_and_update().clone();
                let Some(frame) = frame else { continue };
                if let Some(attempt) = daemon.on_frame(frame).await? {
                    tracing::info!(?attempt, "attempt");
                }
            }
        }
    }
    tracing::info!("stopping: locking the door");
    daemon.door.lock()?;
    daemon.audit.ship(&mut sink)?;
    Ok(0)
}

/// The camera thread: publishes the newest frame; retries an unavailable camera with backoff,
/// logging once per outage.
fn capture(mut camera: Box<dyn FrameSource>, frames: tokio::sync::watch::Sender<Option<Frame>>) {
    let mut backoff = Duration::from_millis(200);
    let mut failing = false;
    loop {
        match camera.next_frame() {
            Ok(frame) => {
                failing = false;
                backoff = Duration::from_millis(200);
                if frames.send(Some(frame)).is_err() {
                    return;
                }
            }
            Err(CameraError::Ended) => return,
            Err(CameraError::Unavailable(why)) => {
                if !failing {
                    tracing::warn!(%why, "camera unavailable; retrying");
                    failing = true;
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
