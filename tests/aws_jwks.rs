//! The Cognito JWKS cache over real HTTP on 127.0.0.1: fetched once, refreshed on an unknown key
//! at most once a minute, and persisted so a device rebooted without network still has it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use facegate::auth::flow::KeySource;
use facegate::backend::BackendError;
use facegate::backend::aws::jwks::{CognitoKeys, MIN_REFRESH_MS};
use facegate::clock::ManualClock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const JWKS: &str =
    r#"{"keys":[{"kty":"RSA","kid":"k1","alg":"RS256","use":"sig","n":"AQAB","e":"AQAB"}]}"#;

/// Serves `JWKS` to every request; returns the URL and the request counter.
async fn serve() -> (String, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/eu-west-1_Pool/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let server = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut request = vec![0u8; 4096];
            let _ = socket.read(&mut request).await;
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{JWKS}",
                JWKS.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });
    (url, hits, server)
}

#[tokio::test]
async fn keys_are_fetched_once_refreshed_at_most_once_a_minute_and_survive_a_reboot() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path().join("daemon.sled")).unwrap();
    let clock = ManualClock::at(1_800_000_000_000);
    let (url, hits, server) = serve().await;
    let keys = CognitoKeys::new(
        url.clone(),
        db.open_tree("aws/jwks").unwrap(),
        Arc::new(clock.clone()),
        Duration::from_secs(2),
    )
    .unwrap();

    assert_eq!(keys.jwks(false).await.unwrap().keys[0].kid, "k1");
    keys.jwks(false).await.unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 1, "cached");
    // A token names an unknown kid: within the minute, no second fetch.
    keys.jwks(true).await.unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 1, "refresh limited");
    clock.advance_ms(MIN_REFRESH_MS + 1);
    keys.jwks(true).await.unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 2, "refreshed after a minute");

    // Reboot with the network down: the persisted keys still answer.
    server.abort();
    drop(keys);
    let rebooted = CognitoKeys::new(
        url,
        db.open_tree("aws/jwks").unwrap(),
        Arc::new(clock.clone()),
        Duration::from_secs(2),
    )
    .unwrap();
    clock.advance_ms(10 * MIN_REFRESH_MS);
    assert_eq!(rebooted.jwks(true).await.unwrap().keys[0].kid, "k1");
}

#[tokio::test]
async fn without_any_copy_a_dead_endpoint_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path().join("daemon.sled")).unwrap();
    let keys = CognitoKeys::new(
        "http://127.0.0.1:1/pool/.well-known/jwks.json".into(),
        db.open_tree("aws/jwks").unwrap(),
        Arc::new(ManualClock::at(0)),
        Duration::from_secs(2),
    )
    .unwrap();
    let err = keys.jwks(false).await.unwrap_err();
    assert!(matches!(err, BackendError::Unavailable(_)), "{err:?}");
}

/// The device can be pointed at an emulator: issuer and JWKS URL come from the config when
/// set, and are Cognito's own otherwise.
#[tokio::test]
async fn issuer_and_jwks_url_follow_the_config_or_default_to_cognito() {
    use facegate::backend::aws::{AwsBackend, AwsConfig};
    let shared = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("eu-west-1"))
        .build();
    let mut config = AwsConfig {
        user_pool_id: "eu-west-1_Pool".into(),
        client_id: "client".into(),
        ..AwsConfig::default()
    };
    let aws = AwsBackend::from_sdk_config(&config, &shared, "eu-west-1".into()).unwrap();
    let cognito = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Pool";
    assert_eq!(aws.expectations().issuer, cognito);
    assert_eq!(aws.jwks_url(), format!("{cognito}/.well-known/jwks.json"));
    config.jwks_url = Some("http://127.0.0.1:4566/eu-west-1_Pool/.well-known/jwks.json".into());
    config.issuer_url = Some("http://127.0.0.1:4566/eu-west-1_Pool/".into());
    let aws = AwsBackend::from_sdk_config(&config, &shared, "eu-west-1".into()).unwrap();
    assert_eq!(
        aws.expectations().issuer,
        "http://127.0.0.1:4566/eu-west-1_Pool"
    );
    assert_eq!(
        aws.jwks_url(),
        "http://127.0.0.1:4566/eu-west-1_Pool/.well-known/jwks.json"
    );
}
