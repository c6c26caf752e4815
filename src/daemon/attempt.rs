//! One attempt: the best frames of those liveness judged go to the device flow (or to offline
//! grace when the backend cannot be reached), and the outcome is written to the audit outbox —
//! durably, before the relay moves — then sent on the event stream.

use super::{Attempt, Daemon, DaemonError};
use crate::backend::BackendError;
use crate::clock::Millis;
use crate::events::{DenyReason, DoorEvent, Outcome};
use crate::store::audit::{AuditEvent, AuditKind};
use crate::vision::{Embedding, image_io};

impl Daemon {
    /// One attempt with the best frames of those liveness judged: online when the backend
    /// answers, by offline grace when it cannot be reached.
    pub(super) async fn authenticate(
        &mut self,
        live_since: Millis,
    ) -> Result<Attempt, DaemonError> {
        let chosen = self.track.best(self.settings.matching.frames.max(1));
        let mut embeddings: Vec<Embedding> = Vec::with_capacity(chosen.len());
        let mut jpegs = Vec::with_capacity(chosen.len());
        for frame in chosen {
            let Some(image) = frame.image.as_ref() else {
                continue;
            };
            let jpeg = image_io::encode_jpeg(image, 90);
            // The frame was embedded as it was tracked: the embedded index need not again.
            self.flow.offer_embedding(&jpeg, frame.embedding.as_slice());
            jpegs.push(jpeg);
            embeddings.push(frame.embedding);
        }
        if jpegs.is_empty() {
            return self.record(
                live_since,
                None,
                Outcome::Denied(DenyReason::NoUsableFace),
                true,
                "no frame to send".into(),
                None,
            );
        }
        let settings = &self.settings;
        let online = self
            .flow
            .authenticate(jpegs, None, &settings.door, &settings.policy)
            .await;
        match online {
            Ok(decision) => {
                self.backend_reached(true);
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
                self.backend_reached(false);
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

    /// Notes whether the backend answered; a change goes on the event stream, and coming back
    /// online has the grants checked at the next tick.
    fn backend_reached(&mut self, online: bool) {
        if self.backend_lost != online {
            return;
        }
        self.backend_lost = !online;
        if online {
            self.revalidate_at_ms = 0;
        }
        self.events.send(DoorEvent::Backend {
            at_ms: self.clock.now_ms(),
            door: self.settings.door.clone(),
            online,
        });
    }

    /// Appends the attempt to the audit outbox (durably), sends it on the event stream and
    /// returns it.
    pub(super) fn record(
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
            door: self.settings.door.clone(),
            user: user.clone(),
            granted: outcome.granted(),
            outcome: Some(outcome.label().to_string()),
            reason: reason.clone(),
            similarity,
            backend: self.backend_name.to_string(),
            online,
            latency_ms: latency,
            dropped_before: 0,
        })?;
        self.events.send(DoorEvent::Attempt {
            at_ms: now,
            door: self.settings.door.clone(),
            user: user.clone(),
            outcome,
            online,
            similarity,
            reason: reason.clone(),
            face_to_relay_ms: latency,
        });
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
    pub(super) fn record_door(&self, kind: AuditKind, reason: String) -> Result<(), DaemonError> {
        self.audit.append(AuditEvent {
            kind,
            time_ms: self.clock.now_ms(),
            door: self.settings.door.clone(),
            user: None,
            granted: kind == AuditKind::Exit,
            outcome: None,
            reason,
            similarity: None,
            backend: self.backend_name.to_string(),
            online: true,
            latency_ms: 0,
            dropped_before: 0,
        })?;
        Ok(())
    }
}
