//! `facegate run`: the door service. Frames from the configured camera on a thread of their
//! own, the daemon ticking ten times a second (timers, door inputs, audit shipping, the systemd
//! watchdog), until SIGTERM or SIGINT; then the door is locked (FAIL-SECURE) and the audit
//! outbox shipped before exiting 0.
//!
//! Under systemd (`Type=notify`) it reports READY once the models, store and relay are up,
//! pings the watchdog from the loop (a stuck loop gets the service killed and relocked by
//! `ExecStopPost`), and reports STOPPING on the way out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use sd_notify::NotifyState;
use tokio::signal::unix::{SignalKind, signal};

use super::{Failure, FlowStores, GlobalArgs, device_flow, door_policy, load_config, runtime};
use crate::camera::capture::{self, CameraHealth};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::daemon::runtime;
use crate::door::contact::ContactMonitor;
use crate::monitor::{Monitor, http};
use crate::store::audit::JsonLinesSink;
use crate::vision::FaceEngine;

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
    // FAIL-SECURE: the relay is driven locked as soon as it is opened, before anything else.
    // The relay watchdog relocks 1 s after unlock_ms if this loop is stuck.
    let unlock = Duration::from_millis(config.daemon.unlock_ms);
    let hardware = crate::door::open_hardware(&config.relay, unlock, clock.clone())?;
    let camera = crate::camera::open(&config.camera, &config.vision.images, clock.clone())?;
    let mut sensors = hardware.sensors;
    // `stores` keeps the backend's stores open as long as the daemon runs.
    let (flow, stores) = device_flow(&config).await?;
    let (engine, db, backend) = match &stores {
        FlowStores::Embedded(backend) => (
            backend.faces.engine(),
            runtime::open_store(&config.data_dir)?,
            "embedded",
        ),
        FlowStores::Aws(db) => (
            Arc::new(std::sync::Mutex::new(FaceEngine::load(&config.vision)?)),
            db.clone(),
            "aws",
        ),
    };
    let mut daemon = runtime::assemble(
        &db,
        &config.data_dir,
        engine,
        flow,
        hardware.relay,
        clock.clone(),
        &door_name,
        policy,
        backend,
    )?;
    daemon.machine = config.daemon.clone();
    daemon.liveness = config.liveness.clone();
    daemon.matching = config.matching.clone();
    daemon.offline = config.offline.clone();
    daemon.indicator = hardware.indicator;
    daemon.contact = ContactMonitor::new(config.relay.held_open_ms);
    let mut sink = JsonLinesSink::new(config.data_dir.join("audit.jsonl"));
    daemon.audit.ship(&mut sink)?; // whatever a crash left behind

    let health = Arc::new(CameraHealth::default());
    let monitor = start_monitoring(&config, clock, health.clone()).await?;
    daemon.monitor = monitor.clone();
    let mut next_frame = capture::spawn(camera, health).context("camera thread")?;
    let mut terminate = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut ticks = tokio::time::interval(Duration::from_millis(100));
    let mut watchdog = Watchdog::from_env();
    monitor.set_ready(true);
    notify(&[NotifyState::Ready, NotifyState::Status("watching the door")]);
    tracing::info!(door = %door_name, "facegate is running");
    loop {
        tokio::select! {
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            _ = ticks.tick() => {
                daemon.on_sensors(sensors.read()).await?;
                daemon.on_tick().await?;
                daemon.audit.ship(&mut sink)?;
                monitor.outbox_depth(daemon.audit.len());
                watchdog.ping();
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
    monitor.set_ready(false);
    notify(&[NotifyState::Stopping]);
    tracing::info!("stopping: locking the door");
    daemon.door.lock()?;
    daemon.audit.ship(&mut sink)?;
    Ok(0)
}

/// The metrics and health the daemon reports into, served on `monitoring.listen` when set.
async fn start_monitoring(
    config: &Config,
    clock: Arc<dyn Clock>,
    camera: Arc<CameraHealth>,
) -> anyhow::Result<Arc<Monitor>> {
    let mut monitor = Monitor::new(clock, config.monitoring.max_frame_age_ms);
    monitor.watch_camera(camera);
    let monitor = Arc::new(monitor);
    if let Some(addr) = config.monitoring.listen {
        let listener = http::bind(addr).await?;
        if !addr.ip().is_loopback() {
            tracing::warn!(
                %addr,
                "monitoring listens beyond loopback: whoever reaches it sees when the door opens"
            );
        }
        tracing::info!(%addr, "serving /healthz and /metrics");
        tokio::spawn(http::serve(listener, monitor.clone()));
    }
    Ok(monitor)
}

/// Tells systemd; outside systemd (no NOTIFY_SOCKET) this does nothing.
fn notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(%e, "could not notify systemd");
    }
}

/// Pings systemd's watchdog at half its interval, when the service has one.
struct Watchdog {
    every: Option<Duration>,
    last: Instant,
}

impl Watchdog {
    fn from_env() -> Self {
        Self {
            every: sd_notify::watchdog_enabled().map(|d| d / 2),
            last: Instant::now(),
        }
    }

    fn ping(&mut self) {
        if self.every.is_some_and(|every| self.last.elapsed() >= every) {
            notify(&[NotifyState::Watchdog]);
            self.last = Instant::now();
        }
    }
}
