//! The audit trail: every attempt is written to a sled outbox (and flushed) before the relay
//! moves, then shipped to a sink and acknowledged. A crash or `kill -9` between the two loses
//! nothing: unacknowledged events are shipped again at the next start (the sink may see an
//! event twice, never zero times; each carries its sequence number to deduplicate).
//!
//! The outbox is bounded: when full, the oldest events are dropped and counted, and the count
//! is shipped with the next event so the gap is visible.

use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::outbox::Outbox;
use crate::clock::Millis;

/// Why the audit trail failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit outbox: {0}")]
    Store(#[from] sled::Error),
    #[error("audit sink {path}: {error}")]
    Sink {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("audit outbox: a record is not valid: {0}")]
    Corrupt(String),
}

/// What an audit event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// A face tried the door.
    #[default]
    Attempt,
    /// The request-to-exit button opened the door.
    Exit,
    /// An operator opened the door from afar.
    RemoteUnlock,
    /// An operator locked the door from afar.
    RemoteLock,
    /// The door contact opened while the lock was locked.
    Forced,
    /// The door stayed open too long.
    HeldOpen,
    /// The door closed after an alarm.
    Closed,
    /// A sink gave up on an event: its receiver refused it for good (a webhook's 4xx).
    DeadLetter,
    /// A sink's outbox was full: its oldest events were dropped unsent.
    SinkOverflow,
}

/// One thing that happened at the door.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    #[serde(default)]
    pub kind: AuditKind,
    pub time_ms: Millis,
    pub door: String,
    pub user: Option<String>,
    pub granted: bool,
    /// An attempt's outcome label (`verified`, `unknown_face`, `not_live`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    pub reason: String,
    pub similarity: Option<f32>,
    pub backend: String,
    pub online: bool,
    pub latency_ms: u64,
    /// Events dropped from a full outbox just before this one.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped_before: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// An event with its sequence number, as shipped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sequenced {
    pub seq: u64,
    #[serde(flatten)]
    pub event: AuditEvent,
}

/// The durable outbox (a [`Outbox`] of JSON audit events): cheap to clone, every clone the
/// same trail, so a sink can audit what it gave up on.
#[derive(Clone)]
pub struct AuditOutbox {
    outbox: Outbox,
}

impl AuditOutbox {
    pub fn open(db: &sled::Db, capacity: usize) -> Result<Self, AuditError> {
        Ok(Self {
            outbox: Outbox::open(db, "audit", capacity)?,
        })
    }

    /// Appends `event`; durable on disk when this returns.
    pub fn append(&self, mut event: AuditEvent) -> Result<u64, AuditError> {
        let mut encoded = Ok(());
        let (seq, _) = self.outbox.append(|dropped| {
            event.dropped_before = dropped;
            serde_json::to_vec(&event).unwrap_or_else(|e| {
                encoded = Err(AuditError::Corrupt(e.to_string()));
                Vec::new()
            })
        })?;
        encoded.map(|()| seq)
    }

    /// Up to `limit` unshipped events, oldest first.
    pub fn pending(&self, limit: usize) -> Result<Vec<Sequenced>, AuditError> {
        self.outbox
            .pending(limit)?
            .into_iter()
            .map(|stored| {
                let event = serde_json::from_slice(&stored.bytes)
                    .map_err(|e| AuditError::Corrupt(e.to_string()))?;
                Ok(Sequenced {
                    seq: stored.seq,
                    event,
                })
            })
            .collect()
    }

    /// Forgets every event up to and including `seq` (they reached the sink).
    pub fn acknowledge(&self, seq: u64) -> Result<(), AuditError> {
        Ok(self.outbox.acknowledge(seq)?)
    }

    pub fn len(&self) -> usize {
        self.outbox.len()
    }

    pub fn is_empty(&self) -> bool {
        self.outbox.is_empty()
    }

    /// Ships every pending event to `sink` and acknowledges them; returns how many.
    pub fn ship(&self, sink: &mut JsonLinesSink) -> Result<usize, AuditError> {
        let pending = self.pending(usize::MAX)?;
        let Some(last) = pending.last().map(|e| e.seq) else {
            return Ok(0);
        };
        sink.write(&pending)?;
        self.acknowledge(last)?;
        Ok(pending.len())
    }
}

/// The embedded backend's sink: an append-only JSON-lines file, synced after each batch.
pub struct JsonLinesSink {
    path: PathBuf,
}

impl JsonLinesSink {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    pub fn write(&mut self, events: &[Sequenced]) -> Result<(), AuditError> {
        let sink = |error| AuditError::Sink {
            path: self.path.clone(),
            error,
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(sink)?;
        let mut text = Vec::new();
        for event in events {
            serde_json::to_writer(&mut text, event)
                .map_err(|e| AuditError::Corrupt(e.to_string()))?;
            text.push(b'\n');
        }
        file.write_all(&text).map_err(sink)?;
        file.sync_data().map_err(sink)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(i: u64) -> AuditEvent {
        AuditEvent {
            kind: AuditKind::Attempt,
            time_ms: i,
            door: "front".into(),
            user: Some(format!("user{i}@example.com")),
            granted: i.is_multiple_of(2),
            outcome: None,
            reason: "test".into(),
            similarity: Some(0.5),
            backend: "embedded".into(),
            online: true,
            latency_ms: 10,
            dropped_before: 0,
        }
    }

    #[test]
    fn events_survive_reopening_and_ship_once_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path().join("db")).unwrap();
            let outbox = AuditOutbox::open(&db, 100).unwrap();
            for i in 0..5 {
                outbox.append(event(i)).unwrap();
            }
        }
        let db = sled::open(dir.path().join("db")).unwrap();
        let outbox = AuditOutbox::open(&db, 100).unwrap();
        assert_eq!(outbox.len(), 5);
        let mut sink = JsonLinesSink::new(dir.path().join("audit.jsonl"));
        assert_eq!(outbox.ship(&mut sink).unwrap(), 5);
        assert!(outbox.is_empty());
        let lines = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
        let seqs: Vec<u64> = lines
            .lines()
            .map(|l| serde_json::from_str::<Sequenced>(l).unwrap().seq)
            .collect();
        assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
        // Sequence numbers keep growing after the outbox empties.
        assert_eq!(outbox.append(event(9)).unwrap(), 6);
    }

    #[test]
    fn a_full_outbox_drops_the_oldest_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let outbox = AuditOutbox::open(&db, 3).unwrap();
        for i in 0..5 {
            outbox.append(event(i)).unwrap();
        }
        let pending = outbox.pending(10).unwrap();
        assert_eq!(
            pending.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![3, 4, 5]
        );
        assert_eq!(pending[1].event.dropped_before, 1);
        assert_eq!(pending[2].event.dropped_before, 1);
    }
}
