//! The embedded user pool: Cognito's CUSTOM_AUTH semantics on the device. Initiate runs Define
//! then Create; each response runs Verify then Define. Sessions are opaque, single-use and
//! expire after three minutes; unknown and disabled users get the same challenge shape and
//! fail at Verify, so the exchange does not reveal who is enrolled.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};

use async_trait::async_trait;
use aws_lambda_events::event::cognito::{
    CognitoEventUserPoolsChallengeResult as ChallengeResult,
    CognitoEventUserPoolsCreateAuthChallenge as CreateEvent,
    CognitoEventUserPoolsDefineAuthChallenge as DefineEvent,
    CognitoEventUserPoolsVerifyAuthChallenge as VerifyEvent,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::tokens::{Issuer, TokenSigner};
use super::users::{User, UserStore, normalize_username};
use crate::backend::keys::{Expectations, Jwks, KeySource};
use crate::backend::random_id;
use crate::backend::triggers::{self, CUSTOM_CHALLENGE, TriggerPorts};
use crate::backend::{AuthStep, BackendError, IdentityProvider, Tokens};
use crate::clock::Millis;

/// The message of every refused authentication: it does not say which check failed.
const REFUSED: &str = "incorrect username or face";
/// Sessions kept at once; older ones are dropped first.
const MAX_SESSIONS: usize = 1024;

struct Session {
    username: String,
    user_not_found: bool,
    results: Vec<ChallengeResult>,
    private: HashMap<String, String>,
    created_at_ms: Millis,
}

/// A refresh token's record, by the token's digest. It names the user's `sub`, so a user
/// deleted and created again under the same username is a different person to it.
#[derive(Serialize, Deserialize)]
struct RefreshRecord {
    username: String,
    /// Empty in records written before it was added.
    #[serde(default)]
    sub: String,
    auth_time: u64,
    expires_at: u64,
}

impl RefreshRecord {
    /// Whether this token was issued to `user` and not to an earlier user of the same name:
    /// the same `sub`, or (records without one) issued no earlier than the user was created.
    fn belongs_to(&self, user: &User) -> bool {
        let issued_after_creation =
            self.auth_time.saturating_add(1).saturating_mul(1000) > user.created_at_ms;
        (self.sub.is_empty() || self.sub == user.sub) && issued_after_creation
    }
}

/// The user pool.
pub struct UserPool {
    users: UserStore,
    ports: TriggerPorts,
    /// Swapped whole when the key is rotated, while the pool runs.
    signer: RwLock<TokenSigner>,
    refresh: sled::Tree,
    refresh_validity_secs: u64,
    sessions: Mutex<HashMap<String, Session>>,
}

fn internal(e: impl std::fmt::Display) -> BackendError {
    BackendError::Internal(format!("user pool: {e}"))
}

impl UserPool {
    pub fn new(
        users: UserStore,
        ports: TriggerPorts,
        signer: TokenSigner,
        refresh: sled::Tree,
        refresh_validity_secs: u64,
    ) -> Self {
        Self {
            users,
            ports,
            signer: RwLock::new(signer),
            refresh,
            refresh_validity_secs,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// Removes every refresh token of `username`; how many there were.
    pub fn revoke_refresh_tokens(&self, username: &str) -> Result<usize, BackendError> {
        self.remove_refresh_where(|record| record.username == username)
    }

    /// Removes refresh tokens that can never work again: expired, or of a user who no longer
    /// exists (or was created again: another `sub`). Run when the pool opens.
    pub fn prune_refresh_tokens(&self) -> Result<usize, BackendError> {
        let now = self.ports.clock.now_secs();
        let users = self.users.clone();
        self.remove_refresh_where(move |record| {
            record.expires_at <= now
                || match users.get(&record.username) {
                    Ok(Some(user)) => !record.belongs_to(&user),
                    Ok(None) => true,
                    Err(_) => false,
                }
        })
    }

    fn remove_refresh_where(
        &self,
        doomed: impl Fn(&RefreshRecord) -> bool,
    ) -> Result<usize, BackendError> {
        let mut removed = 0;
        for entry in self.refresh.iter() {
            let (key, value) = entry.map_err(internal)?;
            // A record that does not parse can never be honoured either.
            let gone = serde_json::from_slice::<RefreshRecord>(&value).map_or(true, |r| doomed(&r));
            if gone {
                self.refresh.remove(key).map_err(internal)?;
                removed += 1;
            }
        }
        self.refresh.flush().map_err(internal)?;
        Ok(removed)
    }

    fn signer(&self) -> std::sync::RwLockReadGuard<'_, TokenSigner> {
        self.signer.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The JWKS document for verifying this pool's tokens.
    pub fn jwks(&self) -> Jwks {
        self.signer().jwks()
    }

    /// Who this pool's tokens are from.
    pub fn issuer(&self) -> Issuer {
        self.signer().issuer().clone()
    }

    /// Signs with `signer` from now on: tokens of the old key stop verifying.
    pub fn replace_signer(&self, signer: TokenSigner) {
        *self.signer.write().unwrap_or_else(|p| p.into_inner()) = signer;
    }

    /// What a verifier must expect of this pool's tokens.
    pub fn expectations(&self) -> Expectations {
        let issuer = self.issuer();
        Expectations {
            issuer: issuer.issuer,
            client_id: issuer.client_id,
            leeway_secs: 30,
        }
    }

    fn known_user(&self, username: &str) -> Result<Option<User>, BackendError> {
        Ok(self.users.get(username)?.filter(|u| u.enabled))
    }

    fn attributes(user: Option<&User>) -> HashMap<String, String> {
        user.map(|u| {
            [("sub", &u.sub), ("email", &u.username), ("name", &u.name)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
    }

    /// Define, then Create when Define asks for a challenge.
    fn next_step(
        &self,
        mut session: Session,
        user: Option<&User>,
    ) -> Result<AuthStep, BackendError> {
        let mut define = DefineEvent::default();
        define.cognito_event_user_pools_header.user_name = Some(session.username.clone());
        define.request.user_attributes = Self::attributes(user);
        define.request.session = session.results.iter().cloned().map(Some).collect();
        define.request.user_not_found = session.user_not_found;
        let decision = triggers::define_auth_challenge(define, &self.ports.config).response;
        if decision.issue_tokens {
            let user = user.ok_or_else(|| BackendError::Denied(REFUSED.into()))?;
            return Ok(AuthStep::Tokens(
                self.issue_tokens(user, self.ports.clock.now_secs())?,
            ));
        }
        if decision.fail_authentication
            || decision.challenge_name.as_deref() != Some(CUSTOM_CHALLENGE)
        {
            return Err(BackendError::Denied(REFUSED.into()));
        }
        let mut create = CreateEvent::default();
        create.cognito_event_user_pools_header.user_name = Some(session.username.clone());
        create.request.user_attributes = Self::attributes(user);
        create.request.challenge_name = Some(CUSTOM_CHALLENGE.into());
        create.request.session = define_session(&session.results);
        create.request.user_not_found = session.user_not_found;
        let challenge =
            triggers::create_auth_challenge(create, self.ports.clock.as_ref(), &self.ports.config)
                .response;
        session.private = challenge.private_challenge_parameters;
        session.created_at_ms = self.ports.clock.now_ms();
        let token = random_id() + &random_id();
        let mut sessions = self.sessions.lock().map_err(internal)?;
        let ttl = self.ports.config.challenge_ttl_ms;
        let now = self.ports.clock.now_ms();
        sessions.retain(|_, s| s.created_at_ms + ttl > now);
        if sessions.len() >= MAX_SESSIONS {
            let oldest = sessions
                .iter()
                .min_by_key(|(_, s)| s.created_at_ms)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(token.clone(), session);
        Ok(AuthStep::Challenge {
            session: token,
            parameters: challenge.public_challenge_parameters,
        })
    }

    fn issue_tokens(&self, user: &User, auth_time: u64) -> Result<Tokens, BackendError> {
        let now = self.ports.clock.now_secs();
        let signer = self.signer();
        let (id_token, access_token) = signer.issue(user, auth_time, now);
        let refresh_token = random_id() + &random_id();
        let record = RefreshRecord {
            username: user.username.clone(),
            sub: user.sub.clone(),
            auth_time,
            expires_at: now.saturating_add(self.refresh_validity_secs),
        };
        self.refresh
            .insert(
                refresh_key(&refresh_token),
                serde_json::to_vec(&record).map_err(internal)?,
            )
            .map_err(internal)?;
        self.refresh.flush().map_err(internal)?;
        Ok(Tokens {
            id_token,
            access_token,
            refresh_token: Some(refresh_token),
            expires_in_secs: signer.issuer().token_validity_secs,
        })
    }
}

fn define_session(results: &[ChallengeResult]) -> Vec<Option<ChallengeResult>> {
    results.iter().cloned().map(Some).collect()
}

/// Refresh tokens are stored by digest, so a copy of the store does not hand them out.
fn refresh_key(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[async_trait]
impl IdentityProvider for UserPool {
    async fn initiate_custom_auth(&self, username: &str) -> Result<AuthStep, BackendError> {
        let normalized = normalize_username(username).unwrap_or_else(|_| username.to_string());
        let user = self.known_user(&normalized)?;
        let session = Session {
            username: normalized,
            user_not_found: user.is_none(),
            results: Vec::new(),
            private: HashMap::new(),
            created_at_ms: self.ports.clock.now_ms(),
        };
        self.next_step(session, user.as_ref())
    }

    async fn respond_to_challenge(
        &self,
        username: &str,
        session: &str,
        answer: &str,
    ) -> Result<AuthStep, BackendError> {
        // Single use: the session is gone from here on, whatever happens.
        let taken = self.sessions.lock().map_err(internal)?.remove(session);
        let Some(mut session) = taken else {
            return Err(BackendError::Denied("invalid session for the user".into()));
        };
        let normalized = normalize_username(username).unwrap_or_else(|_| username.to_string());
        if session.username != normalized {
            return Err(BackendError::Denied("invalid session for the user".into()));
        }
        if self.ports.clock.now_ms() > session.created_at_ms + self.ports.config.challenge_ttl_ms {
            return Err(BackendError::Denied(
                "invalid session for the user: expired".into(),
            ));
        }
        let user = self.known_user(&session.username)?;
        let mut verify = VerifyEvent::default();
        verify.cognito_event_user_pools_header.user_name = Some(session.username.clone());
        verify.request.user_attributes = Self::attributes(user.as_ref());
        verify.request.private_challenge_parameters = session.private.clone();
        verify.request.challenge_answer = Some(serde_json::Value::String(answer.to_string()));
        verify.request.user_not_found = session.user_not_found || user.is_none();
        let verdict = triggers::verify_auth_challenge(verify, &self.ports)
            .await
            .response;
        let mut result = ChallengeResult::default();
        result.challenge_name = Some(CUSTOM_CHALLENGE.into());
        result.challenge_result = verdict.answer_correct;
        result.challenge_metadata = Some(triggers::CHALLENGE_METADATA.into());
        session.results.push(result);
        session.user_not_found |= user.is_none();
        self.next_step(session, user.as_ref())
    }

    async fn refresh(&self, username: &str, refresh_token: &str) -> Result<Tokens, BackendError> {
        let denied = || BackendError::Denied("invalid refresh token".into());
        let bytes = self
            .refresh
            .get(refresh_key(refresh_token))
            .map_err(internal)?
            .ok_or_else(denied)?;
        let record: RefreshRecord = serde_json::from_slice(&bytes).map_err(internal)?;
        let normalized = normalize_username(username).map_err(|_| denied())?;
        if record.username != normalized || record.expires_at <= self.ports.clock.now_secs() {
            return Err(denied());
        }
        let user = self
            .known_user(&record.username)?
            .filter(|user| record.belongs_to(user))
            .ok_or_else(|| BackendError::Denied("user is disabled or deleted".into()))?;
        let now = self.ports.clock.now_secs();
        let signer = self.signer();
        let (id_token, access_token) = signer.issue(&user, record.auth_time, now);
        Ok(Tokens {
            id_token,
            access_token,
            refresh_token: None,
            expires_in_secs: signer.issuer().token_validity_secs,
        })
    }
}

/// The pool publishes its own keys: the verifier always sees the current one.
#[async_trait]
impl KeySource for UserPool {
    async fn jwks(&self, _refresh: bool) -> Result<Jwks, BackendError> {
        Ok(UserPool::jwks(self))
    }
}
