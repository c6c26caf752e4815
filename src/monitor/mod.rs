//! What the door is doing, for the operator's monitoring: Prometheus metrics and a health
//! snapshot, served over HTTP by [`http`] when `[monitoring] listen` is set.
//!
//! A [`Monitor`] follows the door's event stream ([`Monitor::follow`]) and is told inference
//! times directly; nothing here decides anything about the door. The camera's counters are read
//! from its [`CameraHealth`] at scrape time, so the capture thread never waits on monitoring.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};

pub mod http;

use crate::camera::capture::CameraHealth;
use crate::clock::Clock;
use crate::door::LockState;
use crate::events::{DoorEvent, Outcome};
use tokio::sync::broadcast;

/// Config section `[monitoring]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitoringConfig {
    /// Where `/healthz` and `/metrics` are served; absent: no listener.
    pub listen: Option<SocketAddr>,
    /// A `listen` address off loopback must be asked for: the metrics tell anyone who can
    /// reach the port when the door opens and how often faces are refused.
    pub allow_remote: bool,
    /// How old the newest frame may be before the camera counts as down.
    pub max_frame_age_ms: u64,
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        Self {
            listen: None,
            allow_remote: false,
            max_frame_age_ms: 5_000,
        }
    }
}

impl MonitoringConfig {
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.listen.is_some() && self.max_frame_age_ms == 0 {
            problems.push("monitoring.max_frame_age_ms must be above 0".into());
        }
        if let Some(addr) = self
            .listen
            .filter(|a| !a.ip().is_loopback() && !self.allow_remote)
        {
            problems.push(format!(
                "monitoring.listen = \"{addr}\" is not a loopback address: anyone who can reach \
                 it reads when the door opens; use 127.0.0.1 or ::1, or set \
                 monitoring.allow_remote = true when a firewall guards the port"
            ));
        }
        problems
    }
}

/// An attempt's outcome as metric labels: a small fixed set, never free text.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    decision: &'static str,
    reason: &'static str,
}

impl AttemptLabels {
    fn of(outcome: &Outcome) -> Self {
        let decision = if outcome.granted() {
            "granted"
        } else {
            "denied"
        };
        Self {
            decision,
            reason: outcome.label(),
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: &'static str,
}

/// A sink and its target (a webhook's URL without its query), for the sink metrics.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkLabels {
    sink: &'static str,
    target: String,
}

/// One sink target's counters, registered with the monitor (clones share the values).
#[derive(Debug, Clone, Default)]
pub struct SinkMetrics {
    /// Events the receiver accepted.
    pub sent: Counter,
    /// Delivery attempts that failed and will be retried.
    pub failed: Counter,
    /// Events never sent: the outbox was full, or the sink fell behind the door's events.
    pub dropped: Counter,
    /// Events the receiver refused for good.
    pub dead_lettered: Counter,
    /// Events waiting in the outbox.
    pub queued: Gauge,
}

#[derive(Default)]
struct SinkFamilies {
    sent: Family<SinkLabels, Counter>,
    failed: Family<SinkLabels, Counter>,
    dropped: Family<SinkLabels, Counter>,
    dead_lettered: Family<SinkLabels, Counter>,
    queued: Family<SinkLabels, Gauge>,
}

impl SinkFamilies {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "sink_sent",
            "Events a sink's receiver accepted, by sink and target",
            self.sent.clone(),
        );
        registry.register(
            "sink_failed",
            "Failed deliveries a sink will retry, by sink and target",
            self.failed.clone(),
        );
        registry.register(
            "sink_dropped",
            "Events a sink never sent (outbox full, or fell behind), by sink and target",
            self.dropped.clone(),
        );
        registry.register(
            "sink_dead_lettered",
            "Events a sink's receiver refused for good (4xx), by sink and target",
            self.dead_lettered.clone(),
        );
        registry.register(
            "sink_queued",
            "Events waiting in a sink's durable outbox, by sink and target",
            self.queued.clone(),
        );
    }
}

/// Which model ran, for the inference-time histogram.
#[derive(Debug, Clone, Copy)]
pub enum Stage {
    Detect,
    Embed,
}

/// The daemon's metrics and health, shared with the HTTP listener.
pub struct Monitor {
    registry: Registry,
    clock: Arc<dyn Clock>,
    max_frame_age_ms: u64,
    camera: Option<Arc<CameraHealth>>,
    ready: AtomicBool,
    attempts: Family<AttemptLabels, Counter>,
    face_to_relay: Histogram,
    inference: Family<StageLabels, Histogram>,
    offline_mode: Gauge,
    relay_unlocked: Gauge,
    door_open: Gauge,
    outbox_depth: Gauge,
    sinks: SinkFamilies,
}

/// What `/healthz` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthReport {
    pub ready: bool,
    pub camera_ok: bool,
    /// "online" or "offline" (the last attempt could not reach the backend).
    pub backend: String,
    /// Milliseconds since the newest frame; `None` before the first.
    pub last_frame_age_ms: Option<u64>,
    pub relay: LockState,
}

impl HealthReport {
    /// Healthy: ready and seeing frames (offline grace is degraded, not down).
    pub fn healthy(&self) -> bool {
        self.ready && self.camera_ok
    }
}

impl Monitor {
    pub fn new(clock: Arc<dyn Clock>, max_frame_age_ms: u64) -> Self {
        let attempts = Family::<AttemptLabels, Counter>::default();
        let face_to_relay =
            Histogram::new([0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0]);
        let inference = Family::<StageLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64])
        });
        let (offline_mode, relay_unlocked) = (Gauge::default(), Gauge::default());
        let (door_open, outbox_depth) = (Gauge::default(), Gauge::default());
        door_open.set(-1);

        let mut registry = Registry::with_prefix("facegate");
        registry.register(
            "attempts",
            "Sign-in attempts at the door, by decision and reason",
            attempts.clone(),
        );
        registry.register(
            "face_to_relay_seconds",
            "From the frame that completed a live track to the relay command",
            face_to_relay.clone(),
        );
        registry.register(
            "inference_seconds",
            "Time spent in the face models per frame, by stage (detect, embed)",
            inference.clone(),
        );
        registry.register(
            "offline",
            "1 while the backend is unreachable and offline grace decides",
            offline_mode.clone(),
        );
        registry.register(
            "relay_unlocked",
            "1 while the relay holds the door unlocked",
            relay_unlocked.clone(),
        );
        registry.register(
            "door_open",
            "Door contact: 1 open, 0 closed, -1 no contact wired",
            door_open.clone(),
        );
        registry.register(
            "audit_outbox_depth",
            "Audit events written but not yet shipped",
            outbox_depth.clone(),
        );
        let sinks = SinkFamilies::default();
        sinks.register(&mut registry);
        Self {
            registry,
            clock,
            max_frame_age_ms,
            camera: None,
            ready: AtomicBool::new(false),
            attempts,
            face_to_relay,
            inference,
            offline_mode,
            relay_unlocked,
            door_open,
            outbox_depth,
            sinks,
        }
    }

    /// The counters of `sink`'s `target`, created at zero the first time.
    pub fn sink(&self, sink: &'static str, target: &str) -> SinkMetrics {
        let labels = SinkLabels {
            sink,
            target: target.into(),
        };
        let f = &self.sinks;
        SinkMetrics {
            sent: f.sent.get_or_create(&labels).clone(),
            failed: f.failed.get_or_create(&labels).clone(),
            dropped: f.dropped.get_or_create(&labels).clone(),
            dead_lettered: f.dead_lettered.get_or_create(&labels).clone(),
            queued: f.queued.get_or_create(&labels).clone(),
        }
    }

    /// Watches the capture thread's counters (frames, bad frames, reconnects, last frame).
    pub fn watch_camera(&mut self, health: Arc<CameraHealth>) {
        self.registry
            .register_collector(Box::new(CameraCollector(health.clone())));
        self.camera = Some(health);
    }

    /// Whether a camera's counters are watched (so its health means something).
    pub fn watches_camera(&self) -> bool {
        self.camera.is_some()
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Follows the door's events until the stream ends. Falling behind loses metrics, never
    /// delays the door; what was missed is logged.
    pub async fn follow(self: Arc<Self>, mut events: broadcast::Receiver<DoorEvent>) {
        loop {
            match events.recv().await {
                Ok(event) => self.observe(&event),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "metrics fell behind the door's events");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    /// Counts one door event.
    pub fn observe(&self, event: &DoorEvent) {
        match event {
            DoorEvent::Attempt {
                outcome,
                online,
                face_to_relay_ms,
                ..
            } => {
                self.attempts
                    .get_or_create(&AttemptLabels::of(outcome))
                    .inc();
                self.face_to_relay
                    .observe(*face_to_relay_ms as f64 / 1000.0);
                self.offline_mode.set(i64::from(!online));
            }
            DoorEvent::Unlocked { .. } => self.relay(LockState::Unlocked),
            DoorEvent::Locked { .. } => self.relay(LockState::Locked),
            DoorEvent::Contact { open, .. } => {
                self.door_open.set(i64::from(*open));
            }
            DoorEvent::Backend { online, .. } => {
                self.offline_mode.set(i64::from(!online));
            }
            DoorEvent::Alarm { .. } | DoorEvent::Camera { .. } | DoorEvent::Prompt { .. } => {}
        }
    }

    pub fn inference(&self, stage: Stage, took: Duration) {
        let stage = match stage {
            Stage::Detect => "detect",
            Stage::Embed => "embed",
        };
        self.inference
            .get_or_create(&StageLabels { stage })
            .observe(took.as_secs_f64());
    }

    fn relay(&self, state: LockState) {
        self.relay_unlocked
            .set(i64::from(state == LockState::Unlocked));
    }

    pub fn outbox_depth(&self, depth: usize) {
        self.outbox_depth
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// `/metrics`: the Prometheus text format (0.0.4).
    pub fn render_metrics(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail; a collector that did would only shorten the page.
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
        {
            tracing::warn!(%e, "metrics encoding stopped early");
        }
        text
    }

    /// `/healthz`.
    pub fn health(&self) -> HealthReport {
        let now = self.clock.now_ms();
        let (camera_ok, last_frame_age_ms) = match &self.camera {
            None => (false, None),
            Some(health) => {
                let last = health.last_frame_ms.load(Ordering::Relaxed);
                let age =
                    (health.frames.load(Ordering::Relaxed) > 0).then(|| now.saturating_sub(last));
                let fresh = age.is_some_and(|age| age <= self.max_frame_age_ms);
                (fresh && !health.failing.load(Ordering::Relaxed), age)
            }
        };
        let backend = if self.offline_mode.get() == 1 {
            "offline"
        } else {
            "online"
        };
        HealthReport {
            ready: self.ready.load(Ordering::Relaxed),
            camera_ok,
            backend: backend.into(),
            last_frame_age_ms,
            relay: if self.relay_unlocked.get() == 1 {
                LockState::Unlocked
            } else {
                LockState::Locked
            },
        }
    }
}

/// The capture thread's atomics, encoded at scrape time.
#[derive(Debug)]
struct CameraCollector(Arc<CameraHealth>);

impl Collector for CameraCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counters = [
            (
                "camera_frames",
                "Frames delivered by the camera",
                &self.0.frames,
            ),
            (
                "camera_bad_frames",
                "Frames the camera delivered corrupt (skipped)",
                &self.0.bad_frames,
            ),
            (
                "camera_reconnects",
                "Camera outages that began (each is retried with backoff)",
                &self.0.outages,
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value.load(Ordering::Relaxed));
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::events::{DenyReason, Outcome, Via};

    fn attempt(outcome: Outcome, online: bool, user: Option<&str>) -> DoorEvent {
        DoorEvent::Attempt {
            at_ms: 0,
            door: "front".into(),
            user: user.map(str::to_string),
            outcome,
            online,
            reason: "free text that must not become a label".into(),
            similarity: None,
            face_to_relay_ms: 80,
        }
    }

    #[test]
    fn attempts_are_counted_under_a_fixed_set_of_reasons() {
        let monitor = Monitor::new(Arc::new(ManualClock::at(0)), 5_000);
        monitor.observe(&attempt(Outcome::Granted(Via::Verified), true, Some("a")));
        monitor.observe(&attempt(
            Outcome::Denied(DenyReason::UnknownFace),
            true,
            None,
        ));
        monitor.observe(&attempt(Outcome::Denied(DenyReason::NotLive), true, None));
        monitor.observe(&attempt(
            Outcome::Denied(DenyReason::OfflineNoGrant),
            false,
            Some("a"),
        ));
        let text = monitor.render_metrics();
        for series in [
            r#"facegate_attempts_total{decision="granted",reason="verified"} 1"#,
            r#"facegate_attempts_total{decision="denied",reason="unknown_face"} 1"#,
            r#"facegate_attempts_total{decision="denied",reason="not_live"} 1"#,
            r#"facegate_attempts_total{decision="denied",reason="offline_no_grant"} 1"#,
            "facegate_offline 1",
            "facegate_face_to_relay_seconds_count 4",
        ] {
            assert!(text.contains(series), "{series} missing from\n{text}");
        }
        assert!(!text.contains("free text"));
        assert_eq!(monitor.health().backend, "offline");
    }

    #[test]
    fn the_camera_is_down_when_its_newest_frame_is_stale() {
        let clock = Arc::new(ManualClock::at(10_000));
        let mut monitor = Monitor::new(clock.clone(), 5_000);
        assert!(!monitor.health().camera_ok, "no camera watched");
        let camera = Arc::new(CameraHealth::default());
        monitor.watch_camera(camera.clone());
        monitor.set_ready(true);
        assert!(!monitor.health().healthy(), "no frame yet");
        camera.frames.store(1, Ordering::Relaxed);
        camera.last_frame_ms.store(9_000, Ordering::Relaxed);
        assert_eq!(monitor.health().last_frame_age_ms, Some(1_000));
        assert!(monitor.health().healthy());
        clock.advance_ms(5_000);
        assert!(!monitor.health().camera_ok, "6 s old");
    }
}
