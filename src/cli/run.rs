//! `facegate run`: the door service, until SIGTERM or SIGINT (`daemon::serve` owns the loop).
//! The relay is driven locked before anything else; under systemd (`Type=notify`) READY comes
//! once the models, store and relay are up, the watchdog is pinged from the loop, and STOPPING
//! on the way out.

use std::sync::{Arc, Mutex};

use anyhow::Context;
use clap::Args;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use super::{Failure, GlobalArgs, load_config, runtime};
use crate::admin::{self, Admin};
use crate::backend::open::open as open_backend;
use crate::camera::capture::{self, CameraHealth};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::daemon::serve::{Io, SystemdNotifier, serve};
use crate::daemon::{Daemon, DaemonParts, open_store};
use crate::events::DoorCommand;
use crate::monitor::{Monitor, http};
use crate::settings::DoorSettings;
use crate::sinks::mqtt::client::Mqtt;
use crate::sinks::webhook::deliver::Webhooks;
use crate::store::audit::JsonLinesSink;
use crate::store::grants::GrantStore;
use crate::vision::FaceEngine;
use crate::web::{self, WebParts};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The door this device drives [default: the first door in the config]
    #[arg(long, value_name = "NAME")]
    pub door: Option<String>,
}

pub fn run(global: &GlobalArgs, args: RunArgs) -> Result<u8, Failure> {
    let config = load_config(global)?;
    let settings = DoorSettings::resolve(&config, args.door.as_deref())?;
    runtime()?
        .block_on(door(config, settings))
        .map_err(Failure::from)
}

async fn door(config: Config, settings: DoorSettings) -> anyhow::Result<u8> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // FAIL-SECURE: the relay is driven locked as soon as it is opened, before anything else.
    let hardware = crate::door::open_hardware(&config.relay, settings.unlock(), clock.clone())?;
    let camera = crate::camera::open(&config.camera, &config.vision.images, clock.clone())?;
    let engine = Arc::new(Mutex::new(FaceEngine::load(&config.vision)?));
    let store = open_store(&config.data_dir)?;
    let ports = open_backend(&config, Some(engine.clone()), &store, clock.clone()).await?;
    let mut parts = DaemonParts::new(
        &ports,
        engine,
        &config.data_dir,
        store,
        hardware.relay,
        clock.clone(),
        &settings,
    )?;
    parts.indicator = hardware.indicator;
    let health = Arc::new(CameraHealth::default());
    parts.monitor = start_monitoring(&config, clock, health.clone()).await?;
    let mut admin = None;
    if let Some(backend) = &ports.embedded {
        // Enroll and manage users while the door runs: the CLI talks to this socket.
        let grants = GrantStore::open(&parts.store, parts.sealer.clone())?;
        let listener = admin::socket::bind(&config.data_dir).with_context(|| {
            format!("the administration socket in {}", config.data_dir.display())
        })?;
        let handler = Arc::new(Admin::new(backend.clone(), Some(grants)));
        tokio::spawn(admin::socket::serve(listener, handler.clone()));
        admin = Some(handler);
    }
    let store = parts.store.clone();
    let unlock_ms = settings.unlock().as_millis() as u64;
    let mut daemon = Daemon::new(parts, settings)?;
    tokio::spawn(daemon.monitor().clone().follow(daemon.events().subscribe()));
    start_sinks(&config, &daemon, &store)?;
    let commands = start_web(&config, &daemon, admin, unlock_ms).await?;
    let io = Io {
        frames: capture::spawn(camera, health).context("camera thread")?,
        sensors: hardware.sensors,
        sink: JsonLinesSink::new(config.data_dir.join("audit.jsonl")),
        commands,
    };
    let mut terminate = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let shutdown = async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    };
    serve(&mut daemon, io, &mut SystemdNotifier::from_env(), shutdown).await?;
    let _ = std::fs::remove_file(admin::socket::path(&config.data_dir));
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

/// The web console on `web.listen` when `web.enabled`; the door commands it sends.
async fn start_web(
    config: &Config,
    daemon: &Daemon,
    admin: Option<Arc<Admin>>,
    unlock_ms: u64,
) -> anyhow::Result<Option<mpsc::Receiver<DoorCommand>>> {
    if !config.web.enabled {
        return Ok(None);
    }
    let listener = web::bind(config.web.listen).await?;
    let (sender, receiver) = mpsc::channel(4);
    let parts = WebParts {
        config: config.web.clone(),
        data_dir: config.data_dir.clone(),
        admin,
        events: daemon.events().clone(),
        commands: sender,
        monitor: daemon.monitor().clone(),
        door: daemon.settings().door.clone(),
        unlock_ms,
        max_upload_bytes: (config.vision.images.max_bytes as usize).saturating_mul(web::MAX_PHOTOS),
    };
    tracing::info!(addr = %config.web.listen, "serving the web console and /kiosk");
    tokio::spawn(web::serve(listener, parts));
    Ok(Some(receiver))
}

/// The webhooks and MQTT, when configured: each follows the event stream into its own outbox.
fn start_sinks(config: &Config, daemon: &Daemon, store: &sled::Db) -> anyhow::Result<()> {
    if config.webhooks.enabled() {
        let webhooks = Webhooks::open(
            &daemon.settings().door,
            &config.webhooks,
            store,
            daemon.audit().clone(),
            daemon.monitor(),
            Arc::new(SystemClock),
        )
        .context("webhooks")?;
        webhooks.spawn(daemon.events().subscribe());
        tracing::info!(targets = config.webhooks.targets.len(), "webhooks on");
    }
    if config.mqtt.enabled() {
        let mqtt = Mqtt::open(
            &daemon.settings().door,
            &config.mqtt,
            config.relay.contact_pin.is_some(),
            store,
            daemon.audit().clone(),
            daemon.monitor(),
            Arc::new(SystemClock),
        )
        .context("mqtt")?;
        mqtt.spawn(daemon.events().subscribe());
    }
    Ok(())
}
