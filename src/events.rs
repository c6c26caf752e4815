//! What an attempt at the door came to, as a closed set: the audit trail, the metrics and the
//! demo read the same values, and only `Display` turns them into words. Imports nothing else
//! of facegate, so everything around the door can speak it.

use serde::Serialize;

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
}
