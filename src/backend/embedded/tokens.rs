//! Token issuing for the embedded user pool: ES256 JWTs with the claims Cognito puts in its ID
//! and access tokens, and the JWKS document that verifies them. The key is generated on first
//! start and kept in the store.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{Value, json};

use super::users::User;
use crate::backend::keys::{Jwk, Jwks};
use crate::backend::random_id;

/// Who issues tokens and for which client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    pub issuer: String,
    pub client_id: String,
    pub token_validity_secs: u64,
}

/// Signs tokens with one P-256 key.
pub struct TokenSigner {
    key: SigningKey,
    kid: String,
    issuer: Issuer,
}

impl TokenSigner {
    /// A signer from a stored 32-byte secret scalar.
    pub fn from_secret(secret: &[u8], issuer: Issuer) -> Option<Self> {
        let key = SigningKey::from_slice(secret).ok()?;
        Some(Self::with_key(key, issuer))
    }

    /// A fresh random key, with its secret for storing.
    pub fn generate(issuer: Issuer) -> (Self, Vec<u8>) {
        let key = SigningKey::random(&mut rand::rngs::OsRng);
        let secret = key.to_bytes().to_vec();
        (Self::with_key(key, issuer), secret)
    }

    fn with_key(key: SigningKey, issuer: Issuer) -> Self {
        let point = key.verifying_key().to_encoded_point(false);
        let digest = crate::vision::models::sha256_hex(point.as_bytes());
        Self {
            kid: digest[..16].to_string(),
            key,
            issuer,
        }
    }

    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// The public key as a JWKS document.
    pub fn jwks(&self) -> Jwks {
        let point = self.key.verifying_key().to_encoded_point(false);
        let b64 = |b: Option<&p256::FieldBytes>| b.map(|b| URL_SAFE_NO_PAD.encode(b));
        Jwks {
            keys: vec![Jwk {
                kty: "EC".into(),
                kid: self.kid.clone(),
                alg: Some("ES256".into()),
                key_use: Some("sig".into()),
                crv: Some("P-256".into()),
                x: b64(point.x()),
                y: b64(point.y()),
                n: None,
                e: None,
            }],
        }
    }

    /// ID and access tokens for `user`, authenticated at `auth_time`, issued at `now`.
    pub fn issue(&self, user: &User, auth_time: u64, now: u64) -> (String, String) {
        let exp = now + self.issuer.token_validity_secs;
        let id = json!({
            "sub": user.sub,
            "email": user.username,
            "email_verified": true,
            "name": user.name,
            "cognito:username": user.username,
            "cognito:groups": user.groups,
            "token_use": "id",
            "auth_time": auth_time,
            "iss": self.issuer.issuer,
            "aud": self.issuer.client_id,
            "exp": exp,
            "iat": now,
            "jti": random_id(),
        });
        let access = json!({
            "sub": user.sub,
            "username": user.username,
            "cognito:groups": user.groups,
            "token_use": "access",
            "scope": "aws.cognito.signin.user.admin",
            "auth_time": auth_time,
            "iss": self.issuer.issuer,
            "client_id": self.issuer.client_id,
            "exp": exp,
            "iat": now,
            "jti": random_id(),
        });
        (self.sign(&id), self.sign(&access))
    }

    /// A compact JWS of `claims`.
    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": "ES256", "kid": self.kid, "typ": "JWT"});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature: Signature = self.key.sign(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        )
    }
}
