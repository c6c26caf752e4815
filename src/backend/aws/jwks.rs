//! The user pool's public keys from `https://cognito-idp.{region}.amazonaws.com/{pool}/.well-known/jwks.json`:
//! cached in memory and persisted in sled, so a device rebooted without network still verifies
//! tokens (for offline revalidation) — and refreshed when a token names an unknown key, but
//! never more than once a minute, so a stream of forged `kid`s cannot hammer the endpoint.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::backend::BackendError;
use crate::backend::keys::{Jwks, KeySource};
use crate::clock::{Clock, Millis};

/// The shortest time between two fetches.
pub const MIN_REFRESH_MS: Millis = 60_000;

/// The JWKS URL of a user pool.
pub fn jwks_url(region: &str, user_pool_id: &str) -> String {
    format!("https://cognito-idp.{region}.amazonaws.com/{user_pool_id}/.well-known/jwks.json")
}

/// The issuer (`iss`) of a user pool's tokens.
pub fn issuer(region: &str, user_pool_id: &str) -> String {
    format!("https://cognito-idp.{region}.amazonaws.com/{user_pool_id}")
}

pub struct CognitoKeys {
    url: String,
    http: reqwest::Client,
    store: sled::Tree,
    clock: Arc<dyn Clock>,
    cached: Mutex<Option<(Jwks, Millis)>>,
}

const STORED: &[u8] = b"jwks";

/// One GET of the key set at `url`: unreachable or a 5xx is `Unavailable`; anything that is
/// not a non-empty key set is `Internal`.
pub async fn fetch(http: &reqwest::Client, url: &str) -> Result<Jwks, BackendError> {
    let unavailable =
        |e: reqwest::Error| BackendError::Unavailable(format!("JWKS from {url}: {e}"));
    let response = http.get(url).send().await.map_err(unavailable)?;
    let status = response.status();
    if !status.is_success() {
        let error = format!("JWKS from {url}: HTTP {status}");
        return Err(if status.is_server_error() {
            BackendError::Unavailable(error)
        } else {
            BackendError::Internal(error)
        });
    }
    let jwks: Jwks = response
        .json()
        .await
        .map_err(|e| BackendError::Internal(format!("JWKS from {url} is not a key set: {e}")))?;
    if jwks.keys.is_empty() {
        return Err(BackendError::Internal(format!(
            "JWKS from {url} has no keys"
        )));
    }
    Ok(jwks)
}

impl CognitoKeys {
    /// Loads the persisted copy, if any, from `store`.
    pub fn new(
        url: String,
        store: sled::Tree,
        clock: Arc<dyn Clock>,
        timeout: Duration,
    ) -> Result<Self, BackendError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| BackendError::Internal(format!("HTTP client: {e}")))?;
        let persisted = store
            .get(STORED)
            .map_err(|e| BackendError::Internal(format!("JWKS cache: {e}")))?
            .and_then(|bytes| serde_json::from_slice::<(Jwks, Millis)>(&bytes).ok());
        Ok(Self {
            url,
            http,
            store,
            clock,
            cached: Mutex::new(persisted),
        })
    }

    async fn fetch(&self) -> Result<Jwks, BackendError> {
        fetch(&self.http, &self.url).await
    }

    fn remember(&self, jwks: &Jwks, at: Millis) {
        *self.cached.lock().unwrap_or_else(|p| p.into_inner()) = Some((jwks.clone(), at));
        let persisted = serde_json::to_vec(&(jwks, at)).map_err(|e| e.to_string());
        let stored = persisted.and_then(|bytes| {
            self.store
                .insert(STORED, bytes)
                .and_then(|_| self.store.flush())
                .map_err(|e| e.to_string())
        });
        if let Err(e) = stored {
            tracing::warn!(%e, "could not persist the JWKS");
        }
    }
}

#[async_trait]
impl KeySource for CognitoKeys {
    async fn jwks(&self, refresh: bool) -> Result<Jwks, BackendError> {
        let now = self.clock.now_ms();
        let cached = self
            .cached
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some((jwks, fetched_at)) = &cached {
            let recent = now.saturating_sub(*fetched_at) < MIN_REFRESH_MS;
            if !refresh || recent {
                return Ok(jwks.clone());
            }
        }
        match self.fetch().await {
            Ok(jwks) => {
                self.remember(&jwks, now);
                Ok(jwks)
            }
            // The keys we have still verify the tokens they signed.
            Err(e) => match cached {
                Some((jwks, _)) => {
                    tracing::warn!(%e, "JWKS refresh failed; using the cached keys");
                    Ok(jwks)
                }
                None => Err(e),
            },
        }
    }
}
