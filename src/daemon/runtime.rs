//! The daemon around the pure state machine: analyses and embeds frames, keeps the track (one
//! person from start to end), runs liveness, drives the device flow with frames liveness judged
//! (or offline grace when the backend is unreachable), writes the audit event before the relay
//! moves, and drives the door.
//!
//! One attempt at a time: authentication is awaited inside frame handling, and the camera
//! thread keeps only the newest frame, so frames that arrive meanwhile are simply not seen.

use std::sync::{Arc, Mutex};

use serde::Serialize;

mod offline;
mod track;

pub use offline::{OfflineConfig, Revalidation};
pub use track::{Continuity, MAX_TRACK_FRAMES, Track, TrackedFrame};

use super::liveness::{self, LivenessConfig};
use super::machine::{self, Command, Counters, Event, FaceSeen, Liveness, MachineConfig, State};
use crate::auth::{DeviceFlow, DoorPolicy};
use crate::backend::BackendError;
use crate::camera::Frame;
use crate::clock::{Clock, Millis};
use crate::door::contact::{ContactMonitor, DoorAlarm};
use crate::door::{Door, Indicator, LockState, LogIndicator, RelayError, SensorReading};
use crate::events::{DenyReason, Outcome};
use crate::matching::MatchingConfig;
use crate::monitor::{Monitor, Stage};
use crate::store::audit::{AuditError, AuditEvent, AuditKind, AuditOutbox};
use crate::store::grants::{GrantError, GrantStore};
use crate::vision::{Embedding, FaceEngine, VisionError, image_io, quality};

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

/// Everything the daemon drives.
pub struct Daemon {
    pub engine: Arc<Mutex<FaceEngine>>,
    pub flow: DeviceFlow,
    pub grants: GrantStore,
    pub audit: AuditOutbox,
    pub door: Door,
    pub clock: Arc<dyn Clock>,
    pub door_name: String,
    pub policy: DoorPolicy,
    pub machine: MachineConfig,
    pub liveness: LivenessConfig,
    pub matching: MatchingConfig,
    pub offline: OfflineConfig,
    pub indicator: Box<dyn Indicator>,
    pub contact: ContactMonitor,
    /// The backend's name in the audit trail.
    pub backend_name: String,
    /// Metrics and health for the operator.
    pub monitor: Arc<Monitor>,
    state: State,
    counters: Counters,
    track: Track,
    exit_pressed: bool,
    /// The last attempt found the backend unreachable.
    backend_lost: bool,
    /// When grants are next checked with the backend.
    revalidate_at_ms: Millis,
}

/// The daemon's own store: grants, the audit outbox, and (AWS) the cached JWKS.
pub fn open_store(data_dir: &std::path::Path) -> Result<sled::Db, DaemonError> {
    Ok(sled::open(data_dir.join("daemon.sled")).map_err(GrantError::from)?)
}

/// A daemon over any backend's device flow, with its stores in `db`; `backend` names the
/// backend in the audit trail.
#[allow(clippy::too_many_arguments)]
pub fn assemble(
    db: &sled::Db,
    data_dir: &std::path::Path,
    engine: Arc<Mutex<FaceEngine>>,
    flow: DeviceFlow,
    relay: Box<dyn crate::door::Relay>,
    clock: Arc<dyn Clock>,
    door_name: &str,
    policy: DoorPolicy,
    backend: &str,
) -> Result<Daemon, DaemonError> {
    let sealer =
        Arc::new(crate::store::Sealer::open_or_create(data_dir).map_err(GrantError::from)?);
    let mut daemon = Daemon::new(
        engine,
        flow,
        GrantStore::open(db, sealer)?,
        AuditOutbox::open(db, 10_000)?,
        Door::new(relay)?,
        clock,
        door_name.to_string(),
        policy,
    );
    daemon.backend_name = backend.to_string();
    Ok(daemon)
}

/// A daemon on the embedded backend with its stores in `<data_dir>/daemon.sled`, behind an
/// outage switch (for the demo and tests), at `door_name`.
pub fn on_embedded_backend(
    backend: &crate::backend::embedded::EmbeddedBackend,
    data_dir: &std::path::Path,
    relay: Box<dyn crate::door::Relay>,
    clock: Arc<dyn Clock>,
    door_name: &str,
    policy: DoorPolicy,
    outage: crate::backend::fault::Outage,
) -> Result<Daemon, DaemonError> {
    use crate::backend::fault::{FlakyFaces, FlakyIdentity};
    let mut flow = backend.device_flow();
    flow.idp = Arc::new(FlakyIdentity {
        inner: backend.pool.clone(),
        outage: outage.clone(),
    });
    flow.faces = Arc::new(FlakyFaces {
        inner: Arc::new(backend.faces.clone()),
        outage,
    });
    let db = open_store(data_dir)?;
    assemble(
        &db,
        data_dir,
        backend.faces.engine(),
        flow,
        relay,
        clock,
        door_name,
        policy,
        "embedded",
    )
}

impl Daemon {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        engine: Arc<Mutex<FaceEngine>>,
        flow: DeviceFlow,
        grants: GrantStore,
        audit: AuditOutbox,
        door: Door,
        clock: Arc<dyn Clock>,
        door_name: String,
        policy: DoorPolicy,
    ) -> Self {
        let max_frame_age_ms = crate::monitor::MonitoringConfig::default().max_frame_age_ms;
        let monitor = Arc::new(Monitor::new(clock.clone(), max_frame_age_ms));
        Self {
            engine,
            flow,
            grants,
            audit,
            door,
            clock,
            door_name,
            policy,
            machine: MachineConfig::default(),
            liveness: LivenessConfig::default(),
            matching: MatchingConfig::default(),
            offline: OfflineConfig::default(),
            indicator: Box::new(LogIndicator),
            contact: ContactMonitor::new(30_000),
            backend_name: "embedded".into(),
            monitor,
            state: State::Idle,
            counters: Counters::default(),
            track: Track::new(1, 0.0),
            exit_pressed: false,
            backend_lost: false,
            revalidate_at_ms: 0,
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// Analyses one frame and lets the machine react; returns a finished attempt, if any.
    pub async fn on_frame(&mut self, frame: Frame) -> Result<Option<Attempt>, DaemonError> {
        let seen = self.analyse(frame)?;
        self.handle(Event::Frame { face: seen }).await
    }

    /// Lets timers fire, and checks the offline grants with the backend when that is due.
    pub async fn on_tick(&mut self) -> Result<Option<Attempt>, DaemonError> {
        let attempt = self.handle(Event::Tick).await?;
        let now = self.clock.now_ms();
        // The latest time seen follows the clock, so a clock set back later is noticed.
        self.grants.observe_time(now)?;
        if now >= self.revalidate_at_ms && matches!(self.state, State::Idle) {
            self.revalidate_at_ms = now + self.offline.revalidate_secs * 1000;
            let outcome = self.revalidate_grants().await?;
            if outcome.dropped > 0 {
                tracing::info!(?outcome, "offline grants revalidated");
            }
        }
        Ok(attempt)
    }

    /// Reacts to the door's inputs: a press of the exit button opens the door (audited before
    /// the relay moves); the contact raises forced and held-open alarms. Returns what was
    /// audited.
    pub async fn on_sensors(
        &mut self,
        reading: SensorReading,
    ) -> Result<Vec<AuditKind>, DaemonError> {
        let mut audited = Vec::new();
        self.monitor.door_open(reading.door_open);
        let pressed = reading.exit_pressed && !self.exit_pressed;
        self.exit_pressed = reading.exit_pressed;
        if pressed {
            self.record_door(AuditKind::Exit, "request to exit".into())?;
            audited.push(AuditKind::Exit);
            self.handle(Event::ExitRequested).await?;
        }
        let now = self.clock.now_ms();
        let alarm = reading
            .door_open
            .and_then(|open| self.contact.observe(open, self.door.state(), now));
        if let Some(alarm) = alarm {
            let (kind, reason) = match alarm {
                DoorAlarm::Forced => (AuditKind::Forced, "door opened while locked".to_string()),
                DoorAlarm::HeldOpen { open_ms } => (
                    AuditKind::HeldOpen,
                    format!("door held open for {} s", open_ms / 1000),
                ),
                DoorAlarm::ClosedAfterAlarm => (AuditKind::Closed, "door closed".to_string()),
            };
            tracing::warn!(?alarm, door = %self.door_name, "door alarm");
            self.record_door(kind, reason)?;
            audited.push(kind);
        }
        Ok(audited)
    }

    fn new_track(&self) -> Track {
        Track::new(
            Track::window_for(&self.liveness, self.matching.frames),
            self.matching.track_similarity,
        )
    }

    fn analyse(&mut self, frame: Frame) -> Result<FaceSeen, DaemonError> {
        if !matches!(self.state, State::Idle | State::Tracking { .. }) {
            return Ok(FaceSeen::None); // the door is busy: no inference spent
        }
        let mut engine = self.engine.lock().unwrap_or_else(|p| p.into_inner());
        let started = std::time::Instant::now();
        let faces = engine.detect(&frame.image)?;
        self.monitor.inference(Stage::Detect, started.elapsed());
        let Some(face) = faces.into_iter().next() else {
            // A face that leaves and comes back starts over: no frame before the gap counts.
            self.track.clear();
            return Ok(FaceSeen::None);
        };
        let aligned = engine.align(&frame.image, &face);
        let verdict = quality::assess(&face, &aligned, &engine.config().quality);
        if !verdict.passed {
            return Ok(FaceSeen::Unusable);
        }
        let started = std::time::Instant::now();
        let embedding = engine.embed_aligned(&aligned)?;
        self.monitor.inference(Stage::Embed, started.elapsed());
        drop(engine);
        if self.track.is_empty() {
            self.track = self.new_track();
        }
        let (yaw, _) = quality::pose(&face);
        let continuity = self.track.push(TrackedFrame {
            image: Some(frame.image),
            face,
            embedding,
            yaw,
        });
        if continuity == Continuity::NewPerson {
            tracing::info!(door = %self.door_name, "another face in the track: starting over");
        }
        Ok(FaceSeen::Good)
    }

    /// What liveness says of the track: alive, not yet, or refused (with the reason).
    fn liveness_verdict(&self) -> (Liveness, String) {
        let config = &self.liveness;
        if self.track.len() < config.min_frames {
            return (Liveness::NotYet, String::new());
        }
        let mut verdict = liveness::assess(&self.track.newest(config.min_frames), config);
        if verdict.live && config.head_turn {
            verdict = liveness::assess_head_turn(&self.track.all(), config);
        }
        let liveness = if verdict.live {
            Liveness::Live
        } else if self.track.len() >= config.max_frames {
            Liveness::Refused
        } else {
            Liveness::NotYet
        };
        (liveness, verdict.reason)
    }

    async fn handle(&mut self, first: Event) -> Result<Option<Attempt>, DaemonError> {
        let mut queue = vec![first];
        let mut finished = None;
        let mut live_since = self.clock.now_ms();
        while let Some(event) = queue.pop() {
            let now = self.clock.now_ms();
            let (next, commands) =
                machine::step(&self.state, &event, now, &mut self.counters, &self.machine);
            self.state = next;
            for command in commands {
                match command {
                    Command::CheckLiveness => {
                        let (verdict, reason) = self.liveness_verdict();
                        if verdict == Liveness::NotYet {
                            continue;
                        }
                        live_since = now;
                        if verdict == Liveness::Refused {
                            // A refusal is an attempt: audited before anything else happens.
                            finished = Some(self.record(
                                live_since,
                                None,
                                Outcome::Denied(DenyReason::NotLive),
                                true,
                                format!("liveness: {reason}"),
                                None,
                            )?);
                        }
                        queue.push(Event::LivenessChecked { verdict });
                    }
                    Command::ResetTrack => self.track.clear(),
                    Command::Authenticate { attempt } => {
                        let record = self.authenticate(live_since).await?;
                        let granted = record.granted();
                        finished = Some(record);
                        queue.push(Event::Decided { attempt, granted });
                    }
                    // FAIL-SECURE: an unlock is bounded by the machine's Granted timer.
                    Command::Unlock { .. } => self.door.unlock()?,
                    Command::Lock => self.door.lock()?,
                    Command::Indicate { granted } => self.indicator.show(granted),
                }
            }
        }
        if let Some(attempt) = finished.as_mut() {
            attempt.relay = self.door.state();
            self.monitor.attempt(attempt);
        }
        self.monitor.relay(self.door.state());
        Ok(finished)
    }

    /// One attempt with the best frames of those liveness judged: online when the backend
    /// answers, by offline grace when it cannot be reached. The audit event is durable before
    /// returning, so before the relay moves.
    async fn authenticate(&mut self, live_since: Millis) -> Result<Attempt, DaemonError> {
        let chosen = self.track.best(self.matching.frames.max(1));
        if chosen.is_empty() {
            return self.record(
                live_since,
                None,
                Outcome::Denied(DenyReason::NoUsableFace),
                true,
                "no frame to send".into(),
                None,
            );
        }
        let embeddings: Vec<Embedding> = chosen.iter().map(|f| f.embedding).collect();
        let jpegs: Vec<Vec<u8>> = chosen
            .iter()
            .filter_map(|f| f.image.as_ref())
            .map(|image| image_io::encode_jpeg(image, 90))
            .collect();
        let online = self
            .flow
            .authenticate(jpegs, None, &self.door_name, &self.policy)
            .await;
        match online {
            Ok(decision) => {
                if std::mem::take(&mut self.backend_lost) {
                    self.revalidate_at_ms = 0; // back online: check the grants at the next tick
                }
                if decision.granted() {
                    self.renew_grant(&decision, &embeddings[0])?;
                } else if let Some(user) = &decision.user {
                    // Revocation is honoured as soon as the backend says no.
                    self.grants.revoke(user)?;
                }
                self.record(
                    live_since,
                    decision.user,
                    decision.outcome,
                    true,
                    decision.reason,
                    decision.similarity,
                )
            }
            Err(BackendError::Unavailable(why) | BackendError::Throttled(why)) => {
                tracing::info!(%why, "backend unreachable: deciding offline");
                self.backend_lost = true;
                self.decide_offline(live_since, &embeddings)
            }
            Err(other) => self.record(
                live_since,
                None,
                Outcome::Denied(DenyReason::BackendError),
                true,
                other.to_string(),
                None,
            ),
        }
    }

    /// Appends the audit event (durably) and returns the attempt.
    fn record(
        &self,
        live_since: Millis,
        user: Option<String>,
        outcome: Outcome,
        online: bool,
        reason: String,
        similarity: Option<f32>,
    ) -> Result<Attempt, DaemonError> {
        let now = self.clock.now_ms();
        let latency = now.saturating_sub(live_since);
        self.audit.append(AuditEvent {
            kind: AuditKind::Attempt,
            time_ms: now,
            door: self.door_name.clone(),
            user: user.clone(),
            granted: outcome.granted(),
            outcome: Some(outcome.label().to_string()),
            reason: reason.clone(),
            similarity,
            backend: self.backend_name.clone(),
            online,
            latency_ms: latency,
            dropped_before: 0,
        })?;
        Ok(Attempt {
            at_ms: now,
            user,
            outcome,
            online,
            reason,
            similarity,
            face_to_relay_ms: latency,
            relay: self.door.state(),
        })
    }

    /// Appends (durably) an event of the door itself: exit, alarms.
    fn record_door(&self, kind: AuditKind, reason: String) -> Result<(), DaemonError> {
        self.audit.append(AuditEvent {
            kind,
            time_ms: self.clock.now_ms(),
            door: self.door_name.clone(),
            user: None,
            granted: kind == AuditKind::Exit,
            outcome: None,
            reason,
            similarity: None,
            backend: self.backend_name.clone(),
            online: true,
            latency_ms: 0,
            dropped_before: 0,
        })?;
        Ok(())
    }
}
