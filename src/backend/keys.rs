//! The vocabulary the device and the backends share about signing keys: the JWKS document, what
//! a token must say, and where the verifier gets the keys. Both `auth` (which verifies) and the
//! backend adapters (which issue or publish keys) use it; neither imports the other for it.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::BackendError;

/// One public key of a JWKS document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub kid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub key_use: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// RSA modulus and exponent (Cognito's RS256 keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
}

/// A JWKS document: `{"keys": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

impl Jwks {
    pub fn find(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|k| k.kid == kid)
    }
}

/// What a token must say to be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectations {
    pub issuer: String,
    /// The app client id: `aud` of ID tokens, `client_id` of access tokens.
    pub client_id: String,
    pub leeway_secs: u64,
}

/// Where the verifier gets the pool's public keys.
#[async_trait]
pub trait KeySource: Send + Sync {
    /// The JWKS; `refresh` asks for a fresh copy (a token named an unknown key).
    async fn jwks(&self, refresh: bool) -> Result<Jwks, BackendError>;
}
