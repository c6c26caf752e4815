//! JWT verification, as a door must do it: the signature against the pool's JWKS with the
//! algorithm taken from the key (never from the token: no `none`, no HS/RS confusion), then
//! `iss`, `aud`/`client_id`, `token_use`, `exp` and `iat` with a small leeway.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Verifier;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::backend::keys::{Expectations, Jwk, Jwks};

/// Which token a caller expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenUse {
    Id,
    Access,
}

impl TokenUse {
    fn as_str(self) -> &'static str {
        match self {
            TokenUse::Id => "id",
            TokenUse::Access => "access",
        }
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    #[error("algorithm {0:?} is not accepted")]
    Algorithm(String),
    #[error("no key {0:?} in the JWKS")]
    UnknownKey(String),
    #[error("the token's algorithm {token} does not match its key's {key}")]
    AlgorithmMismatch { token: String, key: String },
    #[error("unsupported key: {0}")]
    UnsupportedKey(String),
    #[error("bad signature")]
    Signature,
    #[error("expired")]
    Expired,
    #[error("issued in the future")]
    NotYetValid,
    #[error("wrong issuer {0:?}")]
    Issuer(String),
    #[error("wrong audience or client {0:?}")]
    Audience(String),
    #[error("wrong token_use {0:?}")]
    TokenUse(String),
}

/// The verified claims of a token.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Claims(pub Map<String, Value>);

impl Claims {
    pub fn str(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
    }

    pub fn subject(&self) -> Option<&str> {
        self.str("sub")
    }

    /// `cognito:username` (ID tokens) or `username` (access tokens).
    pub fn username(&self) -> Option<&str> {
        self.str("cognito:username")
            .or_else(|| self.str("username"))
    }

    /// `cognito:groups`, empty when absent.
    pub fn groups(&self) -> Vec<String> {
        self.0
            .get("cognito:groups")
            .and_then(Value::as_array)
            .map(|g| {
                g.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn expires_at(&self) -> Option<u64> {
        self.0.get("exp").and_then(Value::as_u64)
    }
}

/// Verifies `token` against `jwks` and `expect`, at `now_secs`.
pub fn verify(
    token: &str,
    jwks: &Jwks,
    expect: &Expectations,
    token_use: TokenUse,
    now_secs: u64,
) -> Result<Claims, JwtError> {
    let mut parts = token.split('.');
    let (Some(h64), Some(p64), Some(s64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed("not three dot-separated parts"));
    };
    let header: Map<String, Value> = decode_json(h64)?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    if alg != "ES256" && alg != "RS256" {
        // Only what the embedded pool (ES256) and Cognito (RS256) sign with; `none`, HS256
        // and anything unknown are refused here.
        return Err(JwtError::Algorithm(alg.to_string()));
    }
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or(JwtError::Malformed("no kid"))?;
    let key = jwks
        .find(kid)
        .ok_or_else(|| JwtError::UnknownKey(kid.to_string()))?;
    let key_alg = key_algorithm(key)?;
    if key_alg != alg {
        return Err(JwtError::AlgorithmMismatch {
            token: alg.to_string(),
            key: key_alg.to_string(),
        });
    }
    let signature = URL_SAFE_NO_PAD
        .decode(s64)
        .map_err(|_| JwtError::Malformed("signature is not base64url"))?;
    let message = format!("{h64}.{p64}");
    match key_alg {
        "ES256" => verify_es256(key, message.as_bytes(), &signature)?,
        _ => verify_rs256(key, message.as_bytes(), &signature)?,
    }

    let claims = Claims(decode_json(p64)?);
    check_claims(&claims, expect, token_use, now_secs)?;
    Ok(claims)
}

fn check_claims(
    claims: &Claims,
    expect: &Expectations,
    token_use: TokenUse,
    now_secs: u64,
) -> Result<(), JwtError> {
    let iss = claims.str("iss").unwrap_or("");
    if iss != expect.issuer {
        return Err(JwtError::Issuer(iss.to_string()));
    }
    let used = claims.str("token_use").unwrap_or("");
    if used != token_use.as_str() {
        return Err(JwtError::TokenUse(used.to_string()));
    }
    let audience = match token_use {
        TokenUse::Id => claims.str("aud"),
        TokenUse::Access => claims.str("client_id"),
    }
    .unwrap_or("");
    if audience != expect.client_id {
        return Err(JwtError::Audience(audience.to_string()));
    }
    let exp = claims.expires_at().ok_or(JwtError::Malformed("no exp"))?;
    if exp + expect.leeway_secs <= now_secs {
        return Err(JwtError::Expired);
    }
    let iat = claims
        .0
        .get("iat")
        .and_then(Value::as_u64)
        .ok_or(JwtError::Malformed("no iat"))?;
    if iat > now_secs + expect.leeway_secs {
        return Err(JwtError::NotYetValid);
    }
    Ok(())
}

/// The algorithm a key dictates.
fn key_algorithm(key: &Jwk) -> Result<&'static str, JwtError> {
    match (key.kty.as_str(), key.crv.as_deref()) {
        ("EC", Some("P-256")) => Ok("ES256"),
        ("RSA", _) => Ok("RS256"),
        (kty, crv) => Err(JwtError::UnsupportedKey(format!("kty {kty}, crv {crv:?}"))),
    }
}

fn verify_es256(key: &Jwk, message: &[u8], signature: &[u8]) -> Result<(), JwtError> {
    let coordinate = |c: &Option<String>| {
        c.as_deref()
            .and_then(|c| URL_SAFE_NO_PAD.decode(c).ok())
            .filter(|b| b.len() == 32)
            .ok_or_else(|| JwtError::UnsupportedKey("EC key without 32-byte x and y".into()))
    };
    let mut sec1 = vec![0x04];
    sec1.extend(coordinate(&key.x)?);
    sec1.extend(coordinate(&key.y)?);
    let verifying = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
        .map_err(|_| JwtError::UnsupportedKey("EC point not on P-256".into()))?;
    let signature =
        p256::ecdsa::Signature::from_slice(signature).map_err(|_| JwtError::Signature)?;
    verifying
        .verify(message, &signature)
        .map_err(|_| JwtError::Signature)
}

/// RSA keys shorter than this are refused.
const MIN_RSA_BITS: usize = 2048;

fn verify_rs256(key: &Jwk, message: &[u8], signature: &[u8]) -> Result<(), JwtError> {
    use rsa::signature::Verifier as _;
    let number = |v: &Option<String>| {
        v.as_deref()
            .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
            .map(|bytes| rsa::BigUint::from_bytes_be(&bytes))
            .ok_or_else(|| JwtError::UnsupportedKey("RSA key without n and e".into()))
    };
    let public = rsa::RsaPublicKey::new(number(&key.n)?, number(&key.e)?)
        .map_err(|e| JwtError::UnsupportedKey(format!("RSA key: {e}")))?;
    if rsa::traits::PublicKeyParts::size(&public) * 8 < MIN_RSA_BITS {
        return Err(JwtError::UnsupportedKey(format!(
            "RSA key shorter than {MIN_RSA_BITS} bits"
        )));
    }
    let verifying = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(public);
    let signature =
        rsa::pkcs1v15::Signature::try_from(signature).map_err(|_| JwtError::Signature)?;
    verifying
        .verify(message, &signature)
        .map_err(|_| JwtError::Signature)
}

fn decode_json(part: &str) -> Result<Map<String, Value>, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed("a part is not base64url"))?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed("a part is not a JSON object"))
}
