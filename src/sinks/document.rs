//! The one JSON document every sink sends for a door event (webhooks now, MQTT next): flat,
//! stable field names, labels from closed sets, an `id` that stays the same across retries so
//! a receiver can deduplicate at-least-once delivery. Pure: no I/O, no clock.

use serde::{Deserialize, Serialize};

use crate::events::{DoorEvent, Outcome};

/// Every event kind, as named in documents and in sink filters.
pub const KINDS: [&str; 8] = [
    "attempt", "unlocked", "locked", "contact", "alarm", "prompt", "camera", "backend",
];

/// The kinds a sink sends when its filter is not given: all but `prompt` (the kiosk's
/// moment-to-moment guidance, several a second while someone stands there).
pub const DEFAULT_KINDS: [&str; 7] = [
    "attempt", "unlocked", "locked", "contact", "alarm", "camera", "backend",
];

/// `event`'s kind, one of [`KINDS`].
pub fn kind(event: &DoorEvent) -> &'static str {
    match event {
        DoorEvent::Attempt { .. } => "attempt",
        DoorEvent::Unlocked { .. } => "unlocked",
        DoorEvent::Locked { .. } => "locked",
        DoorEvent::Contact { .. } => "contact",
        DoorEvent::Alarm { .. } => "alarm",
        DoorEvent::Prompt { .. } => "prompt",
        DoorEvent::Camera { .. } => "camera",
        DoorEvent::Backend { .. } => "backend",
    }
}

/// One door event as sent. Fields that do not apply to a kind are left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventDocument {
    /// Unique per event; the same on every retry and for every target.
    pub id: String,
    pub kind: String,
    /// RFC 3339, UTC, milliseconds.
    pub time: String,
    pub time_ms: u64,
    pub door: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `granted` or `denied` (attempts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// The outcome's label: `verified`, `offline_grace`, `unknown_face`, `not_live`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub similarity: Option<f32>,
    /// Attempts: decided online (the backend) or offline (grace); `backend`: reachable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online: Option<bool>,
    /// `unlocked`: `grant`, `exit` or `remote`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// `unlocked`: the bound on the unlock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_ms: Option<u64>,
    /// `contact`: the door is open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open: Option<bool>,
    /// `alarm`: `forced`, `held_open` or `closed`; `prompt`: what the person is told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// `camera`: delivering frames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up: Option<bool>,
}

/// A unit enum's serde name (`held_open`, `come_closer`).
fn label(value: impl Serialize) -> Option<String> {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
}

impl EventDocument {
    /// The document for `event`, under `id`.
    pub fn new(id: String, event: &DoorEvent) -> Self {
        let (at_ms, door) = match event {
            DoorEvent::Attempt { at_ms, door, .. }
            | DoorEvent::Unlocked { at_ms, door, .. }
            | DoorEvent::Locked { at_ms, door }
            | DoorEvent::Contact { at_ms, door, .. }
            | DoorEvent::Alarm { at_ms, door, .. }
            | DoorEvent::Prompt { at_ms, door, .. }
            | DoorEvent::Camera { at_ms, door, .. }
            | DoorEvent::Backend { at_ms, door, .. } => (*at_ms, door.clone()),
        };
        let mut doc = Self {
            id,
            kind: kind(event).into(),
            time: rfc3339(at_ms),
            time_ms: at_ms,
            door,
            user: None,
            outcome: None,
            reason: None,
            similarity: None,
            online: None,
            origin: None,
            for_ms: None,
            open: None,
            alarm: None,
            prompt: None,
            up: None,
        };
        match event {
            DoorEvent::Attempt {
                user,
                outcome,
                online,
                similarity,
                ..
            } => {
                doc.user = user.clone();
                doc.outcome = Some(decision(outcome).into());
                doc.reason = Some(outcome.label().into());
                doc.similarity = *similarity;
                doc.online = Some(*online);
            }
            DoorEvent::Unlocked { origin, for_ms, .. } => {
                doc.origin = label(origin);
                doc.for_ms = Some(*for_ms);
            }
            DoorEvent::Locked { .. } => {}
            DoorEvent::Contact { open, .. } => doc.open = Some(*open),
            DoorEvent::Alarm { alarm, .. } => doc.alarm = label(alarm),
            DoorEvent::Prompt { prompt, .. } => doc.prompt = label(prompt),
            DoorEvent::Camera { up, .. } => doc.up = Some(*up),
            DoorEvent::Backend { online, .. } => doc.online = Some(*online),
        }
        doc
    }
}

/// `granted` or `denied`.
pub fn decision(outcome: &Outcome) -> &'static str {
    if outcome.granted() {
        "granted"
    } else {
        "denied"
    }
}

/// Milliseconds since the epoch as RFC 3339 UTC (`2027-01-15T08:00:00.123Z`).
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 (never negative here).
    let z = days as i64 + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Alarm, DenyReason, UnlockOrigin, Via};

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_800_000_000_123), "2027-01-15T08:00:00.123Z");
        assert_eq!(rfc3339(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
    }

    #[test]
    fn an_attempt_carries_who_how_and_why() {
        let event = DoorEvent::Attempt {
            at_ms: 1_800_000_000_000,
            door: "front".into(),
            user: Some("ana@example.com".into()),
            outcome: Outcome::Granted(Via::OfflineGrace),
            online: false,
            similarity: Some(0.5),
            reason: "free text stays out".into(),
            face_to_relay_ms: 90,
        };
        let json = serde_json::to_value(EventDocument::new("e1".into(), &event)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "id": "e1", "kind": "attempt", "time": "2027-01-15T08:00:00.000Z",
                "time_ms": 1_800_000_000_000u64, "door": "front", "user": "ana@example.com",
                "outcome": "granted", "reason": "offline_grace", "similarity": 0.5,
                "online": false,
            })
        );
        let denied = DoorEvent::Attempt {
            at_ms: 0,
            door: "front".into(),
            user: None,
            outcome: Outcome::Denied(DenyReason::NotLive),
            online: true,
            similarity: None,
            reason: String::new(),
            face_to_relay_ms: 0,
        };
        let doc = EventDocument::new("e2".into(), &denied);
        assert_eq!(doc.outcome.as_deref(), Some("denied"));
        assert_eq!(doc.reason.as_deref(), Some("not_live"));
    }

    #[test]
    fn other_kinds_carry_their_own_fields_only() {
        let unlocked = DoorEvent::Unlocked {
            at_ms: 0,
            door: "front".into(),
            origin: UnlockOrigin::Remote,
            for_ms: 5000,
        };
        let doc = EventDocument::new("x".into(), &unlocked);
        assert_eq!(
            (doc.origin.as_deref(), doc.for_ms, doc.user),
            (Some("remote"), Some(5000), None)
        );
        let alarm = DoorEvent::Alarm {
            at_ms: 0,
            door: "front".into(),
            alarm: Alarm::HeldOpen,
        };
        let json = serde_json::to_value(EventDocument::new("y".into(), &alarm)).unwrap();
        assert_eq!(json["alarm"], "held_open");
        assert!(json.get("outcome").is_none() && json.get("user").is_none());
        for kind in DEFAULT_KINDS {
            assert!(KINDS.contains(&kind));
        }
    }
}
