//! The webhook tasks. One follows the door's event stream and appends each event's document to
//! the outbox of every target that wants its kind (flushed to disk: from then on a restart or
//! `kill -9` loses nothing). One per target POSTs its outbox oldest first, one request in
//! flight, and forgets an event only once the receiver answered 2xx (or refused it for good:
//! dead-lettered). Nothing here can delay the door: the stream never waits for a subscriber.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, broadcast};

use super::{EVENT_ID_HEADER, SIGNATURE_HEADER, Verdict, WebhookTarget, WebhooksConfig};
use crate::clock::Clock;
use crate::events::DoorEvent;
use crate::monitor::{Monitor, SinkMetrics};
use crate::sinks::SinkError;
use crate::sinks::document::{EventDocument, kind};
use crate::store::audit::{AuditEvent, AuditKind, AuditOutbox};
use crate::store::outbox::{Outbox, Stored};

/// How long an idle target waits for a new event before looking at its outbox again.
const IDLE_RECHECK: Duration = Duration::from_secs(1);

/// One receiver and its durable outbox.
struct Target {
    config: WebhookTarget,
    label: String,
    secret: Vec<u8>,
    outbox: Outbox,
    /// What the receiver refused for good, kept (bounded) for the operator.
    dead: Outbox,
    wake: Notify,
    metrics: SinkMetrics,
}

/// The configured webhooks, opened and ready to [`spawn`](Webhooks::spawn).
pub struct Webhooks {
    targets: Vec<Arc<Target>>,
    client: reqwest::Client,
    timeout: Duration,
    retry: (Duration, Duration),
    audit: AuditOutbox,
    clock: Arc<dyn Clock>,
    /// The door, for the audit trail.
    door: String,
}

/// The outbox's name for `url`: stable across restarts and reordering of the config.
fn tree_name(url: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(url.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("webhook/{hex}")
}

impl Webhooks {
    /// Reads each target's secret and opens its outbox in `db` (the daemon's store) for the
    /// events of `door`.
    pub fn open(
        door: &str,
        config: &WebhooksConfig,
        db: &sled::Db,
        audit: AuditOutbox,
        monitor: &Monitor,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, SinkError> {
        let mut targets = Vec::new();
        for target in &config.targets {
            let name = tree_name(&target.url);
            let label = target.label();
            let secret = target.secret().map_err(SinkError::Secret)?;
            let outbox = Outbox::open(db, &name, config.outbox_capacity)?;
            let metrics = monitor.sink("webhook", &label);
            metrics
                .queued
                .set(i64::try_from(outbox.len()).unwrap_or(i64::MAX));
            targets.push(Arc::new(Target {
                dead: Outbox::open(db, &format!("{name}/dead"), config.outbox_capacity)?,
                outbox,
                config: target.clone(),
                label,
                secret,
                wake: Notify::new(),
                metrics,
            }));
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("facegate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(SinkError::Client)?;
        Ok(Self {
            targets,
            client,
            timeout: config.timeout(),
            retry: (
                Duration::from_millis(config.retry_min_ms),
                Duration::from_millis(config.retry_max_ms),
            ),
            audit,
            clock,
            door: door.into(),
        })
    }

    /// Starts following `events` and delivering; subscribe before the door runs so that no
    /// event is missed. The tasks run until the runtime stops.
    pub fn spawn(self, events: broadcast::Receiver<DoorEvent>) {
        let this = Arc::new(self);
        for target in &this.targets {
            tokio::spawn(this.clone().deliver(target.clone()));
        }
        tokio::spawn(this.follow(events));
    }

    /// Events into the outboxes.
    async fn follow(self: Arc<Self>, mut events: broadcast::Receiver<DoorEvent>) {
        loop {
            match events.recv().await {
                Ok(event) => self.enqueue(&event),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    for target in &self.targets {
                        target.metrics.dropped.inc_by(missed);
                        self.audit_gap(target, missed, "fell behind the door's events");
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    fn enqueue(&self, event: &DoorEvent) {
        let kind = kind(event);
        let wanting: Vec<&Arc<Target>> = self
            .targets
            .iter()
            .filter(|t| t.config.wants(kind))
            .collect();
        if wanting.is_empty() {
            return;
        }
        let doc = EventDocument::new(uuid::Uuid::new_v4().to_string(), event);
        let Ok(body) = serde_json::to_vec(&doc) else {
            return;
        };
        for target in wanting {
            match target.outbox.append(|_| body.clone()) {
                Ok((_, dropped)) => {
                    if dropped > 0 {
                        target.metrics.dropped.inc_by(dropped);
                        self.audit_gap(target, dropped, "outbox full: the oldest dropped");
                    }
                    target.metrics.queued.set(depth(&target.outbox));
                    target.wake.notify_one();
                }
                Err(e) => {
                    target.metrics.dropped.inc();
                    tracing::error!(%e, target = %target.label, "webhook outbox: event lost");
                }
            }
        }
    }

    /// One target's outbox to its receiver, oldest first, until the runtime stops.
    async fn deliver(self: Arc<Self>, target: Arc<Target>) {
        let mut failures = 0u32;
        loop {
            target.metrics.queued.set(depth(&target.outbox));
            let next = match target.outbox.pending(1) {
                Ok(mut records) => records.pop(),
                Err(e) => {
                    tracing::error!(%e, target = %target.label, "webhook outbox unreadable");
                    tokio::time::sleep(IDLE_RECHECK).await;
                    continue;
                }
            };
            let Some(record) = next else {
                let _ = tokio::time::timeout(IDLE_RECHECK, target.wake.notified()).await;
                continue;
            };
            let (verdict, status) = self.post(&target, &record.bytes).await;
            match verdict {
                Verdict::Delivered => {
                    failures = 0;
                    self.forget(&target, record.seq);
                    target.metrics.sent.inc();
                }
                Verdict::DeadLetter => {
                    failures = 0;
                    self.dead_letter(&target, &record, status);
                }
                Verdict::Retry => {
                    failures = failures.saturating_add(1);
                    target.metrics.failed.inc();
                    let (min, max) = self.retry;
                    tokio::time::sleep(super::backoff(failures, min, max)).await;
                }
            }
        }
    }

    /// One signed POST; the verdict, and the status when there was an answer.
    async fn post(&self, target: &Target, body: &[u8]) -> (Verdict, Option<u16>) {
        let unix_secs = self.clock.now_ms() / 1000;
        let id = serde_json::from_slice::<EventDocument>(body)
            .map(|d| d.id)
            .unwrap_or_default();
        let sent = self
            .client
            .post(&target.config.url)
            .timeout(self.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(
                SIGNATURE_HEADER,
                super::signature(&target.secret, unix_secs, body),
            )
            .header(EVENT_ID_HEADER, id)
            .body(body.to_vec())
            .send()
            .await;
        match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                let verdict = super::verdict(status);
                if verdict != Verdict::Delivered {
                    tracing::warn!(status, target = %target.label, "webhook not accepted");
                }
                (verdict, Some(status))
            }
            Err(e) => {
                tracing::debug!(%e, target = %target.label, "webhook unreachable");
                (Verdict::Retry, None)
            }
        }
    }

    fn forget(&self, target: &Target, seq: u64) {
        if let Err(e) = target.outbox.acknowledge(seq) {
            // Sent but not forgotten: it goes again (at-least-once), nothing is lost.
            tracing::error!(%e, target = %target.label, "webhook outbox acknowledge failed");
        }
    }

    fn dead_letter(&self, target: &Target, record: &Stored, status: Option<u16>) {
        if let Err(e) = target.dead.append(|_| record.bytes.clone()) {
            tracing::error!(%e, target = %target.label, "webhook dead letters unwritable");
        }
        self.forget(target, record.seq);
        target.metrics.dead_lettered.inc();
        let id = serde_json::from_slice::<EventDocument>(&record.bytes)
            .map(|d| d.id)
            .unwrap_or_default();
        let status = status.map_or("no answer".to_string(), |s| s.to_string());
        self.audit_sink(
            AuditKind::DeadLetter,
            format!(
                "webhook {} refused event {id} ({status}): dead-lettered",
                target.label
            ),
        );
    }

    fn audit_gap(&self, target: &Target, count: u64, why: &str) {
        self.audit_sink(
            AuditKind::SinkOverflow,
            format!("webhook {}: {count} event(s) not sent: {why}", target.label),
        );
    }

    fn audit_sink(&self, kind: AuditKind, reason: String) {
        tracing::warn!(%reason, "webhook");
        let event = AuditEvent {
            kind,
            time_ms: self.clock.now_ms(),
            door: self.door.clone(),
            user: None,
            granted: false,
            outcome: None,
            reason,
            similarity: None,
            backend: "webhook".into(),
            online: true,
            latency_ms: 0,
            dropped_before: 0,
        };
        if let Err(e) = self.audit.append(event) {
            tracing::error!(%e, "audit of a webhook failure");
        }
    }
}

fn depth(outbox: &Outbox) -> i64 {
    i64::try_from(outbox.len()).unwrap_or(i64::MAX)
}
