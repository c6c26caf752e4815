//! The device flow: frame in, verified decision out. Identify (1:N) when no username is
//! given, initiate the custom challenge, upload the frame under the key the challenge names,
//! answer with that key, verify the tokens, apply the door policy. The same code drives the
//! embedded pool and Cognito.

use std::sync::Arc;

use serde::Serialize;

use super::jwt::{self, Claims, JwtError, TokenUse};
use super::policy::DoorPolicy;
use crate::backend::embedded::normalize_username;
use crate::backend::identify::{Identified, identify};
use crate::backend::keys::{Expectations, Jwks, KeySource};
use crate::backend::open::BackendPorts;
use crate::backend::triggers::params;
use crate::backend::{
    AuthStep, BackendError, Directory, FaceIndex, IdentityProvider, ObjectStore, Tokens,
};
use crate::clock::Clock;
use crate::events::{DenyReason, Outcome, Via};
use crate::matching::{DecisionRule, Identification};

/// The outcome of one attempt.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    /// Serialized as `"granted"` (bool) and `"outcome"` (its label), for scripts.
    #[serde(flatten, with = "outcome_fields")]
    pub outcome: Outcome,
    pub door: String,
    pub user: Option<String>,
    /// The best similarity of the frame to the user's enrolled faces (backend units).
    pub similarity: Option<f32>,
    /// What happened, in words (the audit trail's detail).
    pub reason: String,
    pub claims: Option<Claims>,
    /// The refresh token of a granted attempt, kept (sealed) for revalidation; never logged.
    #[serde(skip)]
    pub refresh_token: Option<String>,
}

impl Decision {
    pub fn granted(&self) -> bool {
        self.outcome.granted()
    }

    fn deny(
        door: &str,
        user: Option<String>,
        similarity: Option<f32>,
        why: DenyReason,
        detail: impl Into<String>,
    ) -> Self {
        Decision {
            outcome: Outcome::Denied(why),
            door: door.to_string(),
            user,
            similarity,
            reason: detail.into(),
            claims: None,
            refresh_token: None,
        }
    }
}

mod outcome_fields {
    use serde::Serializer;
    use serde::ser::SerializeMap;

    use crate::events::Outcome;

    pub fn serialize<S: Serializer>(outcome: &Outcome, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("granted", &outcome.granted())?;
        map.serialize_entry("outcome", outcome.label())?;
        map.end()
    }
}

/// The ports the flow drives.
#[derive(Clone)]
pub struct DeviceFlow {
    idp: Arc<dyn IdentityProvider>,
    signin: Arc<dyn ObjectStore>,
    faces: Arc<dyn FaceIndex>,
    directory: Arc<dyn Directory>,
    keys: Arc<dyn KeySource>,
    expectations: Expectations,
    /// Who a face is (the same rule Verify applies).
    rule: DecisionRule,
    clock: Arc<dyn Clock>,
}

/// Why the rule refused a frame.
fn refusal_reason(verdict: &Identification) -> DenyReason {
    match verdict {
        Identification::Ambiguous { .. } => DenyReason::Ambiguous,
        _ => DenyReason::UnknownFace,
    }
}

/// Why the rule refused a frame, in words.
fn refusal(verdict: &Identification) -> String {
    match *verdict {
        Identification::Match { .. } => "matched".into(),
        Identification::Unknown { best: None, .. } => "no enrolled face matches".into(),
        Identification::Unknown {
            best: Some(best),
            threshold,
        } => format!("no enrolled face matches (best {best:.3} < {threshold:.3})"),
        Identification::Ambiguous {
            score, runner_up, ..
        } => format!(
            "ambiguous: two enrolled people match almost equally ({score:.3} and {runner_up:.3})"
        ),
    }
}

impl DeviceFlow {
    /// The flow over a backend's ports.
    pub fn new(ports: &BackendPorts, clock: Arc<dyn Clock>) -> Self {
        Self {
            idp: ports.idp.clone(),
            signin: ports.signin.clone(),
            faces: ports.faces.clone(),
            directory: ports.directory.clone(),
            keys: ports.keys.clone(),
            expectations: ports.expectations.clone(),
            rule: ports.rule.clone(),
            clock,
        }
    }

    /// New tokens for `username` from a refresh token (revalidating an offline grant).
    pub async fn refresh(&self, username: &str, token: &str) -> Result<Tokens, BackendError> {
        self.idp.refresh(username, token).await
    }

    /// Offers the embedding the device computed for `frame` to the face index, which may
    /// reuse it for exactly these bytes instead of running the model again.
    pub fn offer_embedding(&self, frame: &[u8], embedding: &[f32]) {
        self.faces.offer_embedding(frame, embedding);
    }

    /// Runs one attempt at `door` with `frames` (JPEG, best first: the first is the one the
    /// pool gets): each must show the same person by the decision rule — `username` when one
    /// is claimed, else whoever the first frame identifies. A refusal is `Ok` with
    /// `granted: false`; `Err` means the backend could not be asked (unavailable, throttled,
    /// broken).
    pub async fn authenticate(
        &self,
        frames: Vec<Vec<u8>>,
        username: Option<&str>,
        door: &str,
        policy: &DoorPolicy,
    ) -> Result<Decision, BackendError> {
        let claimed = username.map(|u| normalize_username(u).unwrap_or_else(|_| u.to_string()));
        let no_face = DenyReason::NoUsableFace;
        let Some((first, others)) = frames.split_first() else {
            return Ok(Decision::deny(
                door,
                None,
                None,
                no_face,
                "no frame to send",
            ));
        };
        let identified = match self.identify(first, claimed.as_deref()).await? {
            Ok(identified) => identified,
            Err(detail) => return Ok(Decision::deny(door, None, None, no_face, detail)),
        };
        let username = match (&identified.user, identified.verdict) {
            (Some(user), Identification::Match { .. }) => user.clone(),
            (user, verdict) => {
                return Ok(Decision::deny(
                    door,
                    user.clone().filter(|_| claimed.is_some()),
                    verdict.score(),
                    refusal_reason(&verdict),
                    refusal(&verdict),
                ));
            }
        };
        let similarity = identified.verdict.score();
        let user = Some(username.clone());
        // Every other frame must be the same person: a track is one identity.
        for frame in others {
            match self.identify(frame, Some(&username)).await? {
                Ok(Identified {
                    verdict: Identification::Match { .. },
                    ..
                }) => {}
                Ok(other) => {
                    return Ok(Decision::deny(
                        door,
                        user,
                        similarity,
                        DenyReason::FramesDisagree,
                        format!("the frames disagree: {}", refusal(&other.verdict)),
                    ));
                }
                Err(detail) => {
                    return Ok(Decision::deny(door, user, similarity, no_face, detail));
                }
            }
        }
        let frame = first.clone();
        let refused = DenyReason::Refused;
        let (session, key, max_bytes) = match self.idp.initiate_custom_auth(&username).await {
            Ok(AuthStep::Challenge {
                session,
                parameters,
            }) => {
                let Some(key) = parameters.get(params::UPLOAD_KEY).cloned() else {
                    return Err(BackendError::Internal(
                        "the challenge names no upload key".into(),
                    ));
                };
                let max = parameters
                    .get(params::MAX_BYTES)
                    .and_then(|m| m.parse::<usize>().ok());
                (session, key, max)
            }
            Ok(AuthStep::Tokens(_)) => {
                return Err(BackendError::Internal(
                    "tokens issued without a challenge".into(),
                ));
            }
            Err(BackendError::Denied(detail)) => {
                return Ok(Decision::deny(door, user, similarity, refused, detail));
            }
            Err(e) => return Err(e),
        };
        if max_bytes.is_some_and(|max| frame.len() > max) {
            return Ok(Decision::deny(
                door,
                user,
                similarity,
                no_face,
                "the frame is over the upload limit",
            ));
        }
        self.signin.put(&key, frame, "image/jpeg").await?;
        let tokens = match self
            .idp
            .respond_to_challenge(&username, &session, &key)
            .await
        {
            Ok(AuthStep::Tokens(tokens)) => tokens,
            Ok(AuthStep::Challenge { .. }) => {
                return Ok(Decision::deny(
                    door,
                    user,
                    similarity,
                    refused,
                    "the backend asked for another frame: the face does not match the user",
                ));
            }
            Err(BackendError::Denied(detail)) => {
                return Ok(Decision::deny(door, user, similarity, refused, detail));
            }
            Err(e) => return Err(e),
        };
        let claims = match self
            .verify_tokens(&tokens.id_token, &tokens.access_token)
            .await?
        {
            Ok(claims) => claims,
            Err(e) => {
                return Ok(Decision::deny(
                    door,
                    user,
                    similarity,
                    DenyReason::BadToken,
                    format!("token refused: {e}"),
                ));
            }
        };
        let named = claims
            .username()
            .map(|u| normalize_username(u).unwrap_or_else(|_| u.into()));
        if named.as_deref() != Some(username.as_str()) {
            return Ok(Decision::deny(
                door,
                user,
                similarity,
                DenyReason::BadToken,
                "the token is for another user",
            ));
        }
        Ok(match policy.admits(&claims) {
            Ok(group) => Decision {
                outcome: Outcome::Granted(Via::Verified),
                door: door.to_string(),
                user,
                similarity,
                reason: format!("face verified; member of {group}"),
                claims: Some(claims),
                refresh_token: tokens.refresh_token,
            },
            Err(detail) => Decision::deny(door, user, similarity, DenyReason::NotAdmitted, detail),
        })
    }

    /// The rule's verdict on one frame; `Ok(Err(reason))` when the frame has no usable face.
    async fn identify(
        &self,
        frame: &[u8],
        claimed: Option<&str>,
    ) -> Result<Result<Identified, String>, BackendError> {
        identify(
            frame,
            claimed,
            self.faces.as_ref(),
            self.directory.as_ref(),
            &self.rule,
        )
        .await
    }

    /// Verifies the ID and access tokens; a JWKS refresh is tried once on an unknown key.
    pub async fn verify_tokens(
        &self,
        id_token: &str,
        access_token: &str,
    ) -> Result<Result<Claims, JwtError>, BackendError> {
        let now = self.clock.now_secs();
        let check = |jwks: &Jwks| {
            jwt::verify(id_token, jwks, &self.expectations, TokenUse::Id, now).and_then(|claims| {
                jwt::verify(
                    access_token,
                    jwks,
                    &self.expectations,
                    TokenUse::Access,
                    now,
                )
                .map(|_| claims)
            })
        };
        match check(&self.keys.jwks(false).await?) {
            Err(JwtError::UnknownKey(_)) => Ok(check(&self.keys.jwks(true).await?)),
            other => Ok(other),
        }
    }
}
