//! What happens at the door, as closed sets: an attempt's [`Outcome`], and every [`DoorEvent`]
//! on one broadcast stream ([`EventBus`]) that the metrics, the demo and — next — MQTT, webhooks
//! and the web console follow. The audit trail stays the durable record, written before the
//! relay moves; a slow subscriber here never delays the door (it misses events and is told how
//! many). Imports nothing else of facegate, so everything around the door can speak it.

use serde::Serialize;
use tokio::sync::broadcast;

/// How a grant came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// The backend verified the face and issued tokens the door verified.
    Verified,
    /// The backend was unreachable; a recent online grant of the same face admitted it.
    OfflineGrace,
}

/// Why an attempt was denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyReason {
    /// No enrolled face is close enough (a stranger, or a poor frame).
    UnknownFace,
    /// Two enrolled people match almost equally: the door cannot tell which.
    Ambiguous,
    /// The face did not look alive across its frames.
    NotLive,
    /// The frames of one attempt do not show the same person.
    FramesDisagree,
    /// No usable face in the frame.
    NoUsableFace,
    /// The backend refused: wrong face, disabled or locked-out user, expired session.
    Refused,
    /// Verified, but not in a group this door admits.
    NotAdmitted,
    /// The tokens did not verify.
    BadToken,
    /// Offline, and no grant admits this face.
    OfflineNoGrant,
    /// The backend failed in a way that is not an outage: fail closed.
    BackendError,
}

/// The outcome of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Granted(Via),
    Denied(DenyReason),
}

impl Outcome {
    pub fn granted(&self) -> bool {
        matches!(self, Outcome::Granted(_))
    }

    /// A stable label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Granted(Via::Verified) => "verified",
            Outcome::Granted(Via::OfflineGrace) => "offline_grace",
            Outcome::Denied(reason) => reason.label(),
        }
    }

    /// Every label [`Outcome::label`] can return, for dashboards and tests.
    pub const LABELS: [&'static str; 12] = [
        "verified",
        "offline_grace",
        "unknown_face",
        "ambiguous",
        "not_live",
        "frames_disagree",
        "no_usable_face",
        "refused",
        "not_admitted",
        "bad_token",
        "offline_no_grant",
        "backend_error",
    ];
}

impl DenyReason {
    pub fn label(&self) -> &'static str {
        match self {
            DenyReason::UnknownFace => "unknown_face",
            DenyReason::Ambiguous => "ambiguous",
            DenyReason::NotLive => "not_live",
            DenyReason::FramesDisagree => "frames_disagree",
            DenyReason::NoUsableFace => "no_usable_face",
            DenyReason::Refused => "refused",
            DenyReason::NotAdmitted => "not_admitted",
            DenyReason::BadToken => "bad_token",
            DenyReason::OfflineNoGrant => "offline_no_grant",
            DenyReason::BackendError => "backend_error",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Granted(Via::Verified) => "granted: face verified",
            Outcome::Granted(Via::OfflineGrace) => "granted offline: a recent grant of this face",
            Outcome::Denied(DenyReason::UnknownFace) => "denied: no enrolled face matches",
            Outcome::Denied(DenyReason::Ambiguous) => {
                "denied: two enrolled people match almost equally"
            }
            Outcome::Denied(DenyReason::NotLive) => "denied: the face did not look alive",
            Outcome::Denied(DenyReason::FramesDisagree) => {
                "denied: the frames show different people"
            }
            Outcome::Denied(DenyReason::NoUsableFace) => "denied: no usable face in the frame",
            Outcome::Denied(DenyReason::Refused) => "denied by the backend",
            Outcome::Denied(DenyReason::NotAdmitted) => "denied: not admitted at this door",
            Outcome::Denied(DenyReason::BadToken) => "denied: the tokens did not verify",
            Outcome::Denied(DenyReason::OfflineNoGrant) => "denied offline: no grant matches",
            Outcome::Denied(DenyReason::BackendError) => "denied: the backend failed",
        })
    }
}

/// Milliseconds since the Unix epoch.
pub type Millis = u64;

/// What opened the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnlockOrigin {
    /// A granted attempt.
    Grant,
    /// The request-to-exit button.
    Exit,
    /// An operator, from afar (the console, MQTT): audited with who.
    Remote,
}

/// What the person in front of the camera should do, as the daemon sees it (a kiosk screen
/// shows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Prompt {
    /// Nobody in view.
    Nobody,
    /// A face too small (or too poor) to use: come closer, look at the camera.
    ComeCloser,
    /// A good face: hold still while liveness watches.
    HoldStill,
    /// The active check waits for a turn of the head.
    TurnHead,
    /// The attempt is with the backend.
    Checking,
}

/// What someone around the door may ask of it; anything that opens goes through the same
/// bounded unlock as a grant and is audited with `by`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DoorCommand {
    /// Open for `unlock_ms`, then lock.
    Unlock { by: String },
    /// Lock now.
    Lock { by: String },
}

/// A door alarm from the contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Alarm {
    /// Opened while locked.
    Forced,
    /// Open longer than allowed.
    HeldOpen,
    /// Closed again after an alarm.
    Closed,
}

/// One thing that happened at a door.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DoorEvent {
    /// A face tried the door.
    Attempt {
        at_ms: Millis,
        door: String,
        user: Option<String>,
        outcome: Outcome,
        online: bool,
        similarity: Option<f32>,
        /// What happened, in words.
        reason: String,
        /// From the frame that completed the live track to the decision.
        face_to_relay_ms: u64,
    },
    /// The relay opened, for at most `for_ms`.
    Unlocked {
        at_ms: Millis,
        door: String,
        origin: UnlockOrigin,
        for_ms: u64,
    },
    /// The relay locked.
    Locked { at_ms: Millis, door: String },
    /// The door contact changed.
    Contact {
        at_ms: Millis,
        door: String,
        open: bool,
    },
    /// A contact alarm.
    Alarm {
        at_ms: Millis,
        door: String,
        alarm: Alarm,
    },
    /// What the person at the door should do changed.
    Prompt {
        at_ms: Millis,
        door: String,
        prompt: Prompt,
    },
    /// The camera stopped delivering frames, or came back.
    Camera {
        at_ms: Millis,
        door: String,
        up: bool,
    },
    /// The backend became unreachable, or answered again.
    Backend {
        at_ms: Millis,
        door: String,
        online: bool,
    },
}

/// Events buffered per subscriber before the slowest one starts missing them.
pub const EVENT_BUFFER: usize = 256;

/// The door's event stream: cheap to clone, never blocks a sender.
#[derive(Debug, Clone)]
pub struct EventBus {
    sender: broadcast::Sender<DoorEvent>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new(EVENT_BUFFER)
    }
}

impl EventBus {
    pub fn new(buffer: usize) -> Self {
        Self {
            sender: broadcast::channel(buffer.max(1)).0,
        }
    }

    /// Sends to every subscriber there is (none is fine).
    pub fn send(&self, event: DoorEvent) {
        let _ = self.sender.send(event);
    }

    /// Everything sent from now on; a subscriber that falls `EVENT_BUFFER` behind misses the
    /// oldest (its receiver reports how many).
    pub fn subscribe(&self) -> broadcast::Receiver<DoorEvent> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_is_listed_once() {
        let outcomes = [
            Outcome::Granted(Via::Verified),
            Outcome::Granted(Via::OfflineGrace),
            Outcome::Denied(DenyReason::UnknownFace),
            Outcome::Denied(DenyReason::Ambiguous),
            Outcome::Denied(DenyReason::NotLive),
            Outcome::Denied(DenyReason::FramesDisagree),
            Outcome::Denied(DenyReason::NoUsableFace),
            Outcome::Denied(DenyReason::Refused),
            Outcome::Denied(DenyReason::NotAdmitted),
            Outcome::Denied(DenyReason::BadToken),
            Outcome::Denied(DenyReason::OfflineNoGrant),
            Outcome::Denied(DenyReason::BackendError),
        ];
        let labels: Vec<&str> = outcomes.iter().map(Outcome::label).collect();
        assert_eq!(labels, Outcome::LABELS);
        assert!(outcomes.iter().filter(|o| o.granted()).count() == 2);
    }

    #[test]
    fn a_slow_subscriber_misses_events_and_never_blocks_the_sender() {
        let bus = EventBus::new(2);
        let mut slow = bus.subscribe();
        for at_ms in 0..5 {
            bus.send(DoorEvent::Locked {
                at_ms,
                door: "front".into(),
            });
        }
        assert!(matches!(
            slow.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(3))
        ));
        assert!(matches!(
            slow.try_recv(),
            Ok(DoorEvent::Locked { at_ms: 3, .. })
        ));
        // No subscriber at all: sending still works.
        EventBus::default().send(DoorEvent::Locked {
            at_ms: 0,
            door: "front".into(),
        });
    }
}
