//! The door daemon: the pure state machine and liveness, and the [`Daemon`] that drives them —
//! frames analysed and embedded ([`analyser`]), one person per [`track`], the device flow or
//! [`offline`] grace, the audit event written before the relay moves, every door event on the
//! [`EventBus`]. [`serve`] is the loop `facegate run` runs it in.
//!
//! One attempt at a time: authentication is awaited inside frame handling, and the camera
//! thread keeps only the newest frame, so frames that arrive meanwhile are simply not seen.

pub mod analyser;
mod attempt;
pub mod liveness;
pub mod machine;
pub mod offline;
pub mod serve;
mod step;
pub mod track;

use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::Serialize;

pub use analyser::{Analysis, EngineAnalyser, FaceAnalyser, ScriptedAnalyser};
pub use offline::{OfflineConfig, Revalidation};
pub use track::MAX_TRACK_FRAMES;

use self::machine::{Counters, State};
use self::track::Track;
use crate::auth::DeviceFlow;
use crate::backend::open::BackendPorts;
use crate::clock::{Clock, Millis};
use crate::door::contact::ContactMonitor;
use crate::door::{Door, Indicator, LockState, LogIndicator, Relay, RelayError};
use crate::events::{EventBus, Outcome, Prompt};
use crate::monitor::Monitor;
use crate::settings::DoorSettings;
use crate::store::Sealer;
use crate::store::audit::{AuditError, AuditOutbox};
use crate::store::grants::{GrantError, GrantStore};
use crate::vision::{FaceEngine, VisionError};

/// Why the daemon stopped.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Vision(#[from] VisionError),
    #[error(transparent)]
    Relay(#[from] RelayError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Grants(#[from] GrantError),
}

/// What happened at the door, for logs and the demo's timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    pub at_ms: Millis,
    pub user: Option<String>,
    pub outcome: Outcome,
    pub online: bool,
    /// What happened, in words.
    pub reason: String,
    pub similarity: Option<f32>,
    /// From the frame that completed the live track to the relay command.
    pub face_to_relay_ms: u64,
    pub relay: LockState,
}

impl Attempt {
    pub fn granted(&self) -> bool {
        self.outcome.granted()
    }
}

/// The daemon's own store: grants, the audit outbox, the clock's high-water mark, and (AWS)
/// the cached JWKS.
pub fn open_store(data_dir: &Path) -> Result<sled::Db, DaemonError> {
    Ok(sled::open(data_dir.join("daemon.sled")).map_err(GrantError::from)?)
}

/// What a daemon is made of. [`DaemonParts::new`] fills in the parts every door has; replace
/// the indicator, monitor or event bus before [`Daemon::new`] where a caller has its own.
pub struct DaemonParts {
    pub analyser: Box<dyn FaceAnalyser>,
    pub flow: DeviceFlow,
    /// The backend's name in the audit trail.
    pub backend_name: &'static str,
    /// The daemon's own store ([`open_store`]).
    pub store: sled::Db,
    pub sealer: Arc<Sealer>,
    pub relay: Box<dyn Relay>,
    pub indicator: Box<dyn Indicator>,
    pub clock: Arc<dyn Clock>,
    pub monitor: Arc<Monitor>,
    pub events: EventBus,
}

impl DaemonParts {
    /// The parts of a door on `ports`, analysing frames with `engine`, its store in `store`
    /// and its sealing key in `data_dir`: log-only indicators, a monitor of its own, a new
    /// event bus.
    pub fn new(
        ports: &BackendPorts,
        engine: Arc<Mutex<FaceEngine>>,
        data_dir: &Path,
        store: sled::Db,
        relay: Box<dyn Relay>,
        clock: Arc<dyn Clock>,
        settings: &DoorSettings,
    ) -> Result<Self, DaemonError> {
        let sealer = Arc::new(Sealer::open_or_create(data_dir).map_err(GrantError::from)?);
        Ok(Self {
            analyser: Box::new(EngineAnalyser(engine)),
            flow: DeviceFlow::new(ports, clock.clone()),
            backend_name: ports.name(),
            store,
            sealer,
            relay,
            indicator: Box::new(LogIndicator),
            monitor: Arc::new(Monitor::new(clock.clone(), settings.max_frame_age_ms)),
            clock,
            events: EventBus::default(),
        })
    }
}

/// A door on the embedded `backend` behind an outage switch, its store in `data_dir`: the demo,
/// `bench e2e` and the tests, which take the network away on purpose.
pub fn embedded_door(
    backend: &Arc<crate::backend::embedded::EmbeddedBackend>,
    data_dir: &Path,
    relay: Box<dyn Relay>,
    clock: Arc<dyn Clock>,
    settings: DoorSettings,
    outage: &crate::backend::fault::Outage,
) -> Result<Daemon, DaemonError> {
    let ports = BackendPorts::embedded(backend.clone()).behind(outage);
    let parts = DaemonParts::new(
        &ports,
        backend.faces.engine(),
        data_dir,
        open_store(data_dir)?,
        relay,
        clock,
        &settings,
    )?;
    Daemon::new(parts, settings)
}

/// Everything the daemon drives, and where it stands.
pub struct Daemon {
    analyser: Box<dyn FaceAnalyser>,
    flow: DeviceFlow,
    grants: GrantStore,
    audit: AuditOutbox,
    door: Door,
    clock: Arc<dyn Clock>,
    settings: DoorSettings,
    backend_name: &'static str,
    indicator: Box<dyn Indicator>,
    contact: ContactMonitor,
    monitor: Arc<Monitor>,
    events: EventBus,
    state: State,
    counters: Counters,
    track: Track,
    exit_pressed: bool,
    /// Who asked for the unlock being carried out, when an operator did.
    unlock_by: Option<String>,
    /// What the person at the door was last told.
    prompt: Prompt,
    /// The last attempt found the backend unreachable.
    backend_lost: bool,
    /// When grants are next checked with the backend.
    revalidate_at_ms: Millis,
}

impl Daemon {
    /// A daemon from its parts, with the relay driven locked (FAIL-SECURE) before anything else.
    pub fn new(parts: DaemonParts, settings: DoorSettings) -> Result<Self, DaemonError> {
        let door = Door::new(parts.relay)?;
        Ok(Self {
            analyser: parts.analyser,
            flow: parts.flow,
            grants: GrantStore::open(&parts.store, parts.sealer)?,
            audit: AuditOutbox::open(&parts.store, settings.outbox_capacity)?,
            door,
            contact: ContactMonitor::new(settings.held_open_ms),
            track: Track::for_settings(&settings),
            clock: parts.clock,
            settings,
            backend_name: parts.backend_name,
            indicator: parts.indicator,
            monitor: parts.monitor,
            events: parts.events,
            state: State::Idle,
            counters: Counters::default(),
            exit_pressed: false,
            unlock_by: None,
            prompt: Prompt::Nobody,
            backend_lost: false,
            revalidate_at_ms: 0,
        })
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn settings(&self) -> &DoorSettings {
        &self.settings
    }

    /// Where the relay stands.
    pub fn lock_state(&self) -> LockState {
        self.door.state()
    }

    /// FAIL-SECURE: drives the relay locked (on the way out).
    pub fn lock(&mut self) -> Result<(), DaemonError> {
        Ok(self.door.lock()?)
    }

    /// The durable audit outbox (shipped by the loop; read by tests).
    pub fn audit(&self) -> &AuditOutbox {
        &self.audit
    }

    /// The offline grants.
    pub fn grants(&self) -> &GrantStore {
        &self.grants
    }

    pub fn monitor(&self) -> &Arc<Monitor> {
        &self.monitor
    }

    /// The door's event stream.
    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// The daemon's clock.
    pub fn now_ms(&self) -> Millis {
        self.clock.now_ms()
    }
}
