//! The door service's loop (mini-redis's `server::run`): frames from the camera thread, a tick
//! ten times a second — door inputs, timers, audit shipping, the watchdog, the camera's health —
//! until `shutdown` resolves; then the door is locked (FAIL-SECURE) and the outbox shipped.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::{Daemon, DaemonError};
use crate::camera::Frame;
use crate::door::DoorSensors;
use crate::events::{DoorCommand, DoorEvent};
use crate::store::audit::JsonLinesSink;

/// How often the loop ticks.
pub const TICK: Duration = Duration::from_millis(100);

/// Tells the service manager how the service is doing (systemd's notify protocol, or nothing).
pub trait Notifier: Send {
    /// Up: the relay is locked and the door is watched.
    fn ready(&mut self);
    /// The loop is alive (called every tick; the notifier decides how often to pass it on).
    fn alive(&mut self);
    /// On the way out.
    fn stopping(&mut self);
}

/// For runs outside a service manager.
pub struct NoNotifier;

impl Notifier for NoNotifier {
    fn ready(&mut self) {}
    fn alive(&mut self) {}
    fn stopping(&mut self) {}
}

/// systemd's `Type=notify`: READY, watchdog pings at half the watchdog interval, STOPPING.
/// Outside systemd (no `NOTIFY_SOCKET`) it does nothing.
pub struct SystemdNotifier {
    watchdog_every: Option<Duration>,
    last_ping: Instant,
}

impl SystemdNotifier {
    pub fn from_env() -> Self {
        Self {
            watchdog_every: sd_notify::watchdog_enabled().map(|d| d / 2),
            last_ping: Instant::now(),
        }
    }

    fn notify(states: &[sd_notify::NotifyState]) {
        if let Err(e) = sd_notify::notify(states) {
            tracing::warn!(%e, "could not notify systemd");
        }
    }
}

impl Notifier for SystemdNotifier {
    fn ready(&mut self) {
        use sd_notify::NotifyState;
        Self::notify(&[NotifyState::Ready, NotifyState::Status("watching the door")]);
    }

    fn alive(&mut self) {
        if self
            .watchdog_every
            .is_some_and(|every| self.last_ping.elapsed() >= every)
        {
            Self::notify(&[sd_notify::NotifyState::Watchdog]);
            self.last_ping = Instant::now();
        }
    }

    fn stopping(&mut self) {
        Self::notify(&[sd_notify::NotifyState::Stopping]);
    }
}

/// What the loop reads and writes around the daemon.
pub struct Io {
    /// The newest frame from the camera thread.
    pub frames: watch::Receiver<Option<Frame>>,
    pub sensors: Box<dyn DoorSensors>,
    /// Where the audit outbox is shipped.
    pub sink: JsonLinesSink,
    /// Operators' commands (the console, MQTT); `None` when nothing can send any.
    pub commands: Option<mpsc::Receiver<DoorCommand>>,
}

/// Runs the door until `shutdown` resolves.
pub async fn serve(
    daemon: &mut Daemon,
    mut io: Io,
    notifier: &mut dyn Notifier,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    daemon.audit().ship(&mut io.sink)?; // whatever a crash left behind
    let mut ticks = tokio::time::interval(TICK);
    let mut camera_up = None;
    tokio::pin!(shutdown);
    daemon.monitor().set_ready(true);
    notifier.ready();
    tracing::info!(door = %daemon.settings().door, "facegate is running");
    let outcome = loop {
        tokio::select! {
            _ = &mut shutdown => break Ok(()),
            _ = ticks.tick() => {
                if let Err(e) = tick(daemon, &mut io, &mut camera_up).await {
                    break Err(e);
                }
                notifier.alive();
            }
            Some(command) = next_command(&mut io.commands) => {
                if let Err(e) = daemon.on_command(command).await {
                    break Err(e);
                }
            }
            changed = io.frames.changed(), if io.frames.has_changed().is_ok() => {
                if changed.is_err() {
                    continue; // the camera thread ended: keep ticking until told to stop
                }
                let frame = io.frames.borrow_and_update().clone();
                let Some(frame) = frame else { continue };
                match daemon.on_frame(frame).await {
                    Ok(Some(attempt)) => tracing::info!(?attempt, "attempt"),
                    Ok(None) => {}
                    Err(e) => break Err(e),
                }
            }
        }
    };
    daemon.monitor().set_ready(false);
    notifier.stopping();
    tracing::info!("stopping: locking the door");
    // FAIL-SECURE: locked on the way out, whatever ended the loop.
    let locked = daemon.lock();
    daemon.audit().ship(&mut io.sink)?;
    outcome.and(locked)
}

/// The next operator's command; never resolves when there is no channel (or it closed).
async fn next_command(commands: &mut Option<mpsc::Receiver<DoorCommand>>) -> Option<DoorCommand> {
    match commands {
        Some(receiver) => match receiver.recv().await {
            Some(command) => Some(command),
            None => {
                *commands = None;
                std::future::pending().await
            }
        },
        None => std::future::pending().await,
    }
}

async fn tick(
    daemon: &mut Daemon,
    io: &mut Io,
    camera_up: &mut Option<bool>,
) -> Result<(), DaemonError> {
    daemon.on_sensors(io.sensors.read()).await?;
    daemon.on_tick().await?;
    daemon.audit().ship(&mut io.sink)?;
    daemon.monitor().outbox_depth(daemon.audit().len());
    // The camera going quiet (or coming back) is an event; a camera that is up from the start
    // is not news.
    if daemon.monitor().watches_camera() {
        let up = daemon.monitor().health().camera_ok;
        let was = camera_up.replace(up);
        if was.map_or(!up, |was| was != up) {
            daemon.events().send(DoorEvent::Camera {
                at_ms: daemon.now_ms(),
                door: daemon.settings().door.clone(),
                up,
            });
        }
    }
    Ok(())
}
