//! The Cognito JWKS cache over real HTTP on 127.0.0.1, under the device's token verifier: keys
//! fetched once, refreshed on an unknown key at most once a minute, persisted so a device
//! rebooted without network still has them; a rotated key set is picked up and the removed key
//! stops verifying; an HTTP error, a body that is not JSON, or an empty key set never replaces
//! the keys the device has.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use facegate::auth::DeviceFlow;
use facegate::auth::jwt::JwtError;
use facegate::backend::aws::jwks::{CognitoKeys, MIN_REFRESH_MS};
use facegate::backend::embedded::User;
use facegate::backend::embedded::tokens::{Issuer, TokenSigner};
use facegate::backend::keys::Expectations;
use facegate::backend::keys::KeySource;
use facegate::backend::{AuthStep, BackendError, IdentityProvider, Tokens};
use facegate::clock::ManualClock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NOW_SECS: u64 = 1_800_000_000;

/// What the endpoint answers: status and body.
#[derive(Clone)]
struct Answer(u16, String);

/// A JWKS endpoint whose answer can be changed; counts its requests.
struct Endpoint {
    url: String,
    hits: Arc<AtomicUsize>,
    answer: Arc<Mutex<Answer>>,
    server: tokio::task::JoinHandle<()>,
}

impl Endpoint {
    async fn start(answer: Answer) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/eu-west-1_Pool/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        let hits = Arc::new(AtomicUsize::new(0));
        let answer = Arc::new(Mutex::new(answer));
        let (counter, served) = (hits.clone(), answer.clone());
        let server = tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let mut request = vec![0u8; 4096];
                let _ = socket.read(&mut request).await;
                let Answer(status, body) = served.lock().unwrap().clone();
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            }
        });
        Self {
            url,
            hits,
            answer,
            server,
        }
    }

    fn answer(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn issuer() -> Issuer {
    Issuer {
        issuer: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Pool".into(),
        client_id: "door-client".into(),
        token_validity_secs: 3600,
    }
}

fn key_set(signer: &TokenSigner) -> Answer {
    Answer(200, serde_json::to_string(&signer.jwks()).unwrap())
}

/// An ID and an access token for Ana signed by `signer`.
fn tokens(signer: &TokenSigner) -> (String, String) {
    let user = User {
        username: "ana@example.com".into(),
        sub: "sub-1".into(),
        name: "Ana".into(),
        enabled: true,
        groups: ["staff".to_string()].into_iter().collect(),
        created_at_ms: 0,
    };
    signer.issue(&user, NOW_SECS, NOW_SECS)
}

/// The verifier never signs anyone in here.
struct NoSignIn;

#[async_trait]
impl IdentityProvider for NoSignIn {
    async fn initiate_custom_auth(&self, _: &str) -> Result<AuthStep, BackendError> {
        unreachable!("the verifier does not sign in")
    }
    async fn respond_to_challenge(
        &self,
        _: &str,
        _: &str,
        _: &str,
    ) -> Result<AuthStep, BackendError> {
        unreachable!("the verifier does not sign in")
    }
    async fn refresh(&self, _: &str, _: &str) -> Result<Tokens, BackendError> {
        unreachable!("the verifier does not sign in")
    }
}

/// The device's token verifier over `keys`.
fn verifier(keys: Arc<CognitoKeys>, clock: &ManualClock) -> DeviceFlow {
    let ports = common::ports::ports(&[], 0);
    let backend = facegate::backend::open::BackendPorts {
        kind: facegate::config::BackendKind::Aws,
        idp: Arc::new(NoSignIn),
        signin: ports.signin,
        faces: ports.faces,
        directory: ports.table,
        keys,
        expectations: Expectations {
            issuer: issuer().issuer,
            client_id: issuer().client_id,
            leeway_secs: 30,
        },
        rule: facegate::matching::MatchingConfig::default().rule(),
        embedded: None,
    };
    DeviceFlow::new(&backend, Arc::new(clock.clone()))
}

fn cache(db: &sled::Db, url: &str, clock: &ManualClock) -> Arc<CognitoKeys> {
    Arc::new(
        CognitoKeys::new(
            url.to_string(),
            db.open_tree("aws/jwks").unwrap(),
            Arc::new(clock.clone()),
            Duration::from_secs(2),
        )
        .unwrap(),
    )
}

/// Whether the verifier accepts `tokens`; `Err` carries why it refused them.
async fn verify(flow: &DeviceFlow, (id, access): &(String, String)) -> Result<(), JwtError> {
    flow.verify_tokens(id, access)
        .await
        .expect("the key cache answers")
        .map(|_| ())
}

#[tokio::test]
async fn keys_are_fetched_once_refreshed_at_most_once_a_minute_and_survive_a_reboot() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path().join("daemon.sled")).unwrap();
    let clock = ManualClock::at(NOW_SECS * 1000);
    let (signer, _) = TokenSigner::generate(issuer());
    let kid = signer.jwks().keys[0].kid.clone();
    let endpoint = Endpoint::start(key_set(&signer)).await;
    let keys = cache(&db, &endpoint.url, &clock);

    assert_eq!(keys.jwks(false).await.unwrap().keys[0].kid, kid);
    keys.jwks(false).await.unwrap();
    assert_eq!(endpoint.hits(), 1, "cached");
    // A token names an unknown kid: within the minute, no second fetch.
    keys.jwks(true).await.unwrap();
    assert_eq!(endpoint.hits(), 1, "refresh limited");
    clock.advance_ms(MIN_REFRESH_MS + 1);
    keys.jwks(true).await.unwrap();
    assert_eq!(endpoint.hits(), 2, "refreshed after a minute");

    // Reboot: the persisted keys answer without a fetch, and verify a token.
    drop(keys);
    let rebooted = cache(&db, &endpoint.url, &clock);
    assert_eq!(rebooted.jwks(false).await.unwrap().keys[0].kid, kid);
    assert_eq!(
        endpoint.hits(),
        2,
        "the rebooted device fetched instead of reading its copy"
    );
    // With the network down, a refresh fails and the persisted keys still verify.
    endpoint.server.abort();
    clock.advance_ms(10 * MIN_REFRESH_MS);
    let flow = verifier(rebooted, &clock);
    assert_eq!(verify(&flow, &tokens(&signer)).await, Ok(()));
}

#[tokio::test]
async fn a_rotated_key_set_is_picked_up_and_the_removed_key_stops_verifying() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path().join("daemon.sled")).unwrap();
    let clock = ManualClock::at(NOW_SECS * 1000);
    let (old, _) = TokenSigner::generate(issuer());
    let (new, _) = TokenSigner::generate(issuer());
    let endpoint = Endpoint::start(key_set(&old)).await;
    let flow = verifier(cache(&db, &endpoint.url, &clock), &clock);
    assert_eq!(verify(&flow, &tokens(&old)).await, Ok(()));

    // The pool rotates: the endpoint now publishes only the new key.
    endpoint.answer(key_set(&new));
    // Within the minute of the last fetch a new kid is not fetched for: refused, one request.
    let refused = verify(&flow, &tokens(&new)).await;
    assert!(
        matches!(refused, Err(JwtError::UnknownKey(_))),
        "{refused:?}"
    );
    assert_eq!(endpoint.hits(), 1);
    clock.advance_ms(MIN_REFRESH_MS + 1);
    assert_eq!(
        verify(&flow, &tokens(&new)).await,
        Ok(()),
        "the rotated key"
    );
    assert_eq!(endpoint.hits(), 2);
    let removed = verify(&flow, &tokens(&old)).await;
    assert!(
        matches!(removed, Err(JwtError::UnknownKey(_))),
        "a token of the removed key: {removed:?}"
    );
}

/// The bad answers an endpoint (or something in the way) can give.
fn bad_answers() -> Vec<(&'static str, Answer)> {
    vec![
        ("HTTP 500", Answer(500, r#"{"message":"oops"}"#.into())),
        ("HTTP 503", Answer(503, String::new())),
        ("HTTP 404", Answer(404, r#"{"message":"no pool"}"#.into())),
        (
            "HTTP 403",
            Answer(403, "<html>captive portal</html>".into()),
        ),
        (
            "not JSON",
            Answer(200, "<html>captive portal</html>".into()),
        ),
        ("cut off", Answer(200, r#"{"keys":[{"kty":"EC","#.into())),
        ("empty set", Answer(200, r#"{"keys":[]}"#.into())),
        ("no keys", Answer(200, r#"{}"#.into())),
    ]
}

#[tokio::test]
async fn an_http_error_a_non_json_body_or_an_empty_key_set_never_replaces_the_keys() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path().join("daemon.sled")).unwrap();
    let clock = ManualClock::at(NOW_SECS * 1000);
    let (ours, _) = TokenSigner::generate(issuer());
    let (stranger, _) = TokenSigner::generate(issuer());
    let endpoint = Endpoint::start(key_set(&ours)).await;
    let flow = verifier(cache(&db, &endpoint.url, &clock), &clock);
    assert_eq!(verify(&flow, &tokens(&ours)).await, Ok(()));
    for (what, answer) in bad_answers() {
        endpoint.answer(answer);
        clock.advance_ms(MIN_REFRESH_MS + 1);
        let before = endpoint.hits();
        // An unknown kid makes the verifier ask; the bad answer is not taken for keys.
        let unknown = verify(&flow, &tokens(&stranger)).await;
        assert!(
            matches!(unknown, Err(JwtError::UnknownKey(_))),
            "{what}: a token of an unknown key: {unknown:?}"
        );
        assert_eq!(
            endpoint.hits(),
            before + 1,
            "{what}: the refresh was not tried"
        );
        assert_eq!(
            verify(&flow, &tokens(&ours)).await,
            Ok(()),
            "{what}: the cached keys stopped verifying"
        );
    }
    // What was persisted is still the real key set.
    endpoint.server.abort();
    let rebooted = cache(&db, &endpoint.url, &clock);
    assert_eq!(rebooted.jwks(false).await.unwrap(), ours.jwks());
}

#[tokio::test]
async fn without_any_copy_a_dead_or_broken_endpoint_gives_no_keys() {
    let clock = ManualClock::at(NOW_SECS * 1000);
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path().join("daemon.sled")).unwrap();
    let err = cache(&db, "http://127.0.0.1:1/pool/.well-known/jwks.json", &clock)
        .jwks(false)
        .await
        .unwrap_err();
    assert!(matches!(err, BackendError::Unavailable(_)), "{err:?}");
    let endpoint = Endpoint::start(Answer(500, String::new())).await;
    for (what, answer) in bad_answers() {
        endpoint.answer(answer);
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("daemon.sled")).unwrap();
        let err = cache(&db, &endpoint.url, &clock)
            .jwks(false)
            .await
            .unwrap_err();
        // A server error is an outage (offline grace); anything else is a broken endpoint.
        let outage = what.starts_with("HTTP 5");
        assert_eq!(
            matches!(err, BackendError::Unavailable(_)),
            outage,
            "{what}: {err:?}"
        );
        assert!(
            outage || matches!(err, BackendError::Internal(_)),
            "{what}: {err:?}"
        );
        assert!(
            db.open_tree("aws/jwks").unwrap().is_empty(),
            "{what}: something was persisted"
        );
    }
}

#[test]
fn the_pools_keys_and_issuer_are_https_urls() {
    use facegate::backend::aws::jwks::{issuer, jwks_url};
    let url = jwks_url("eu-west-1", "eu-west-1_Pool");
    assert!(
        url.starts_with("https://cognito-idp.eu-west-1.amazonaws.com/"),
        "{url}"
    );
    assert!(
        url.ends_with("/eu-west-1_Pool/.well-known/jwks.json"),
        "{url}"
    );
    let iss = issuer("eu-west-1", "eu-west-1_Pool");
    assert_eq!(
        iss,
        "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Pool"
    );
}
