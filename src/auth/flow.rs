//! The device flow: frame in, verified decision out. Identify (1:N) when no username is
//! given, initiate the custom challenge, upload the frame under the key the challenge names,
//! answer with that key, verify the tokens, apply the door policy. The same code drives the
//! embedded pool and Cognito.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

use super::jwt::{self, Claims, Expectations, Jwks, JwtError, TokenUse};
use super::policy::DoorPolicy;
use crate::backend::triggers::params;
use crate::backend::{AuthStep, BackendError, Directory, FaceIndex, IdentityProvider, ObjectStore};
use crate::clock::Clock;

/// Where the verifier gets the pool's public keys.
#[async_trait]
pub trait KeySource: Send + Sync {
    /// The JWKS; `refresh` asks for a fresh copy (a token named an unknown key).
    async fn jwks(&self, refresh: bool) -> Result<Jwks, BackendError>;
}

/// A fixed JWKS (the embedded pool's own keys).
pub struct StaticKeys(pub Jwks);

#[async_trait]
impl KeySource for StaticKeys {
    async fn jwks(&self, _refresh: bool) -> Result<Jwks, BackendError> {
        Ok(self.0.clone())
    }
}

/// The outcome of one attempt.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub granted: bool,
    pub door: String,
    pub user: Option<String>,
    /// The best similarity of the frame to the user's enrolled faces (backend units).
    pub similarity: Option<f32>,
    pub reason: String,
    pub claims: Option<Claims>,
    /// The refresh token of a granted attempt, kept (sealed) for revalidation; never logged.
    #[serde(skip)]
    pub refresh_token: Option<String>,
}

impl Decision {
    fn deny(
        door: &str,
        user: Option<String>,
        similarity: Option<f32>,
        reason: impl Into<String>,
    ) -> Self {
        Decision {
            granted: false,
            door: door.to_string(),
            user,
            similarity,
            reason: reason.into(),
            claims: None,
            refresh_token: None,
        }
    }
}

/// The ports the flow drives.
#[derive(Clone)]
pub struct DeviceFlow {
    pub idp: Arc<dyn IdentityProvider>,
    pub signin: Arc<dyn ObjectStore>,
    pub faces: Arc<dyn FaceIndex>,
    pub directory: Arc<dyn Directory>,
    pub keys: Arc<dyn KeySource>,
    pub expectations: Expectations,
    pub clock: Arc<dyn Clock>,
}

impl DeviceFlow {
    /// Runs one attempt for `frame` (JPEG) at `door`. A refusal is `Ok` with `granted: false`;
    /// `Err` means the backend could not be asked (unavailable, throttled, broken).
    pub async fn authenticate(
        &self,
        frame: Vec<u8>,
        username: Option<&str>,
        door: &str,
        policy: &DoorPolicy,
    ) -> Result<Decision, BackendError> {
        let matches = match self.faces.search_by_image(&frame, 5).await {
            Ok(m) => m,
            Err(BackendError::Rejected(reason)) => {
                return Ok(Decision::deny(door, None, None, reason));
            }
            Err(e) => return Err(e),
        };
        let username = match username {
            Some(u) => u.to_string(),
            None => match matches.first() {
                Some(best) => match self.directory.user_of_face(&best.face_id).await? {
                    Some(user) => user,
                    None => {
                        return Ok(Decision::deny(
                            door,
                            None,
                            None,
                            "the matching face has no user",
                        ));
                    }
                },
                None => return Ok(Decision::deny(door, None, None, "no enrolled face matches")),
            },
        };
        let user_faces = self.directory.faces_of_user(&username).await?;
        let similarity = matches
            .iter()
            .find(|m| user_faces.contains(&m.face_id))
            .map(|m| m.similarity);
        let user = Some(username.clone());

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
            Err(BackendError::Denied(reason)) => {
                return Ok(Decision::deny(door, user, similarity, reason));
            }
            Err(e) => return Err(e),
        };
        if max_bytes.is_some_and(|max| frame.len() > max) {
            return Ok(Decision::deny(
                door,
                user,
                similarity,
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
                    "the face does not match the user",
                ));
            }
            Err(BackendError::Denied(reason)) => {
                return Ok(Decision::deny(door, user, similarity, reason));
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
                    format!("token refused: {e}"),
                ));
            }
        };
        if claims.username() != Some(username.as_str()) {
            return Ok(Decision::deny(
                door,
                user,
                similarity,
                "the token is for another user",
            ));
        }
        Ok(match policy.admits(&claims) {
            Ok(group) => Decision {
                granted: true,
                door: door.to_string(),
                user,
                similarity,
                reason: format!("face verified; member of {group}"),
                claims: Some(claims),
                refresh_token: tokens.refresh_token,
            },
            Err(reason) => Decision::deny(door, user, similarity, reason),
        })
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
