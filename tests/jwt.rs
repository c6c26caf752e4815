//! Hostile tokens against the door's verifier: each must be refused for the right reason.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use facegate::auth::jwt::{JwtError, TokenUse, verify};
use facegate::backend::embedded::User;
use facegate::backend::embedded::tokens::{Issuer, TokenSigner};
use facegate::backend::keys::Expectations;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

const NOW: u64 = 1_800_000_000;

fn issuer() -> Issuer {
    Issuer {
        issuer: "https://facegate.local/test".into(),
        client_id: "door-client".into(),
        token_validity_secs: 600,
    }
}

fn expect() -> Expectations {
    Expectations {
        issuer: "https://facegate.local/test".into(),
        client_id: "door-client".into(),
        leeway_secs: 30,
    }
}

fn user() -> User {
    User {
        username: "ana@example.com".into(),
        sub: "sub-1".into(),
        name: "Ana".into(),
        enabled: true,
        groups: ["staff".to_string()].into_iter().collect(),
        created_at_ms: 0,
    }
}

fn parts(token: &str) -> (Value, Value) {
    let p: Vec<&str> = token.split('.').collect();
    let decode = |s: &str| serde_json::from_slice(&URL_SAFE_NO_PAD.decode(s).unwrap()).unwrap();
    (decode(p[0]), decode(p[1]))
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

#[test]
fn a_genuine_token_verifies_with_its_claims() {
    let (signer, _) = TokenSigner::generate(issuer());
    let (id, access) = signer.issue(&user(), NOW, NOW);
    let claims = verify(&id, &signer.jwks(), &expect(), TokenUse::Id, NOW + 10).unwrap();
    assert_eq!(claims.username(), Some("ana@example.com"));
    assert_eq!(claims.groups(), vec!["staff".to_string()]);
    verify(
        &access,
        &signer.jwks(),
        &expect(),
        TokenUse::Access,
        NOW + 10,
    )
    .unwrap();
}

#[test]
fn alg_none_is_refused() {
    let (signer, _) = TokenSigner::generate(issuer());
    let (id, _) = signer.issue(&user(), NOW, NOW);
    let (mut header, payload) = parts(&id);
    header["alg"] = json!("none");
    let forged = format!("{}.{}.", b64(&header), b64(&payload));
    let err = verify(&forged, &signer.jwks(), &expect(), TokenUse::Id, NOW).unwrap_err();
    assert_eq!(err, JwtError::Algorithm("none".into()));
}

#[test]
fn hs256_signed_with_the_public_key_is_refused() {
    let (signer, _) = TokenSigner::generate(issuer());
    let (id, _) = signer.issue(&user(), NOW, NOW);
    let (mut header, payload) = parts(&id);
    header["alg"] = json!("HS256");
    let input = format!("{}.{}", b64(&header), b64(&payload));
    let public = serde_json::to_vec(&signer.jwks().keys[0]).unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&public).unwrap();
    mac.update(input.as_bytes());
    let forged = format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    );
    let err = verify(&forged, &signer.jwks(), &expect(), TokenUse::Id, NOW).unwrap_err();
    assert_eq!(err, JwtError::Algorithm("HS256".into()));
}

#[test]
fn a_token_signed_by_another_key_under_our_kid_is_refused() {
    let (ours, _) = TokenSigner::generate(issuer());
    let (theirs, _) = TokenSigner::generate(issuer());
    let (id, _) = theirs.issue(&user(), NOW, NOW);
    let (mut header, payload) = parts(&id);
    header["kid"] = json!(ours.jwks().keys[0].kid);
    let signature = id.rsplit('.').next().unwrap();
    let forged = format!("{}.{}.{signature}", b64(&header), b64(&payload));
    let err = verify(&forged, &ours.jwks(), &expect(), TokenUse::Id, NOW).unwrap_err();
    assert_eq!(err, JwtError::Signature);
    // And under its own kid, the key is simply unknown.
    let err = verify(&id, &ours.jwks(), &expect(), TokenUse::Id, NOW).unwrap_err();
    assert!(matches!(err, JwtError::UnknownKey(_)));
}

#[test]
fn a_tampered_payload_breaks_the_signature() {
    let (signer, _) = TokenSigner::generate(issuer());
    let (id, _) = signer.issue(&user(), NOW, NOW);
    let (header, mut payload) = parts(&id);
    payload["cognito:groups"] = json!(["admins"]);
    let signature = id.rsplit('.').next().unwrap();
    let forged = format!("{}.{}.{signature}", b64(&header), b64(&payload));
    assert_eq!(
        verify(&forged, &signer.jwks(), &expect(), TokenUse::Id, NOW).unwrap_err(),
        JwtError::Signature
    );
}

#[test]
fn expired_wrong_issuer_wrong_audience_and_swapped_use_are_refused() {
    let (signer, _) = TokenSigner::generate(issuer());
    let (id, access) = signer.issue(&user(), NOW, NOW);
    let jwks = signer.jwks();
    assert_eq!(
        verify(&id, &jwks, &expect(), TokenUse::Id, NOW + 600 + 31).unwrap_err(),
        JwtError::Expired
    );
    assert!(
        verify(&id, &jwks, &expect(), TokenUse::Id, NOW + 600 + 29).is_ok(),
        "inside the leeway"
    );
    assert_eq!(
        verify(&id, &jwks, &expect(), TokenUse::Id, NOW - 100).unwrap_err(),
        JwtError::NotYetValid
    );

    let other_issuer = Expectations {
        issuer: "https://evil.example".into(),
        ..expect()
    };
    assert!(matches!(
        verify(&id, &jwks, &other_issuer, TokenUse::Id, NOW),
        Err(JwtError::Issuer(_))
    ));
    let other_client = Expectations {
        client_id: "another-app".into(),
        ..expect()
    };
    assert!(matches!(
        verify(&id, &jwks, &other_client, TokenUse::Id, NOW),
        Err(JwtError::Audience(_))
    ));
    assert!(matches!(
        verify(&access, &jwks, &other_client, TokenUse::Access, NOW),
        Err(JwtError::Audience(_))
    ));

    assert!(matches!(
        verify(&access, &jwks, &expect(), TokenUse::Id, NOW),
        Err(JwtError::TokenUse(_))
    ));
    assert!(matches!(
        verify(&id, &jwks, &expect(), TokenUse::Access, NOW),
        Err(JwtError::TokenUse(_))
    ));
}

#[test]
fn garbage_never_panics() {
    let (signer, _) = TokenSigner::generate(issuer());
    for junk in [
        "",
        ".",
        "..",
        "a.b.c",
        "a.b.c.d",
        "e30.e30.",
        "!!!.###.$$$",
        "eyJhbGciOiJFUzI1NiJ9.e30.AAAA",
    ] {
        assert!(
            verify(junk, &signer.jwks(), &expect(), TokenUse::Id, NOW).is_err(),
            "{junk:?} accepted"
        );
    }
}

/// A Cognito-style RS256 token signed by a fresh RSA key of `bits`, and that key's JWKS.
fn rs256_token(bits: usize, claims: &Value) -> (String, facegate::backend::keys::Jwks) {
    use rsa::pkcs1v15::SigningKey;
    use rsa::signature::{SignatureEncoding, Signer};
    use rsa::traits::PublicKeyParts;
    let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), bits).unwrap();
    let header = json!({"alg": "RS256", "kid": "cognito-key-1"});
    let message = format!("{}.{}", b64(&header), b64(claims));
    let signature = SigningKey::<sha2::Sha256>::new(private.clone())
        .sign(message.as_bytes())
        .to_vec();
    let public = private.to_public_key();
    let jwks: facegate::backend::keys::Jwks = serde_json::from_value(json!({"keys": [{
        "kty": "RSA",
        "kid": "cognito-key-1",
        "alg": "RS256",
        "use": "sig",
        "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
        "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
    }]}))
    .unwrap();
    (
        format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature)),
        jwks,
    )
}

fn cognito_claims() -> Value {
    json!({
        "sub": "sub-1",
        "cognito:username": "ana@example.com",
        "cognito:groups": ["staff"],
        "iss": "https://facegate.local/test",
        "aud": "door-client",
        "token_use": "id",
        "iat": NOW,
        "exp": NOW + 3600,
    })
}

#[test]
fn cognito_rs256_tokens_verify_and_tampering_short_keys_and_key_swaps_are_refused() {
    let (token, jwks) = rs256_token(2048, &cognito_claims());
    let claims = verify(&token, &jwks, &expect(), TokenUse::Id, NOW + 5).unwrap();
    assert_eq!(claims.username(), Some("ana@example.com"));

    // A payload edited after signing.
    let mut forged = cognito_claims();
    forged["cognito:groups"] = json!(["admins"]);
    let p: Vec<&str> = token.split('.').collect();
    let tampered = format!("{}.{}.{}", p[0], b64(&forged), p[2]);
    assert_eq!(
        verify(&tampered, &jwks, &expect(), TokenUse::Id, NOW + 5).unwrap_err(),
        JwtError::Signature
    );

    // A key too short to trust.
    let (short, short_jwks) = rs256_token(1024, &cognito_claims());
    assert!(matches!(
        verify(&short, &short_jwks, &expect(), TokenUse::Id, NOW + 5).unwrap_err(),
        JwtError::UnsupportedKey(_)
    ));

    // An RS256 token presented under an EC key's kid: the key decides the algorithm.
    let (signer, _) = TokenSigner::generate(issuer());
    let mut ec_jwks = signer.jwks();
    ec_jwks.keys[0].kid = "cognito-key-1".into();
    assert!(matches!(
        verify(&token, &ec_jwks, &expect(), TokenUse::Id, NOW + 5).unwrap_err(),
        JwtError::AlgorithmMismatch { .. }
    ));

    // HS256 "signed" with the RSA public key as the HMAC secret (the classic confusion).
    let header = json!({"alg": "HS256", "kid": "cognito-key-1"});
    let message = format!("{}.{}", b64(&header), b64(&cognito_claims()));
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(jwks.keys[0].n.as_deref().unwrap().as_bytes())
            .unwrap();
    mac.update(message.as_bytes());
    let hs = format!(
        "{message}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    );
    assert!(matches!(
        verify(&hs, &jwks, &expect(), TokenUse::Id, NOW + 5).unwrap_err(),
        JwtError::Algorithm(_)
    ));
}
