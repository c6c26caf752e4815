//! The AWS adapters' requests and error mapping, against the SDK's mock interceptor: the right
//! auth flow, parameters and SECRET_HASH; the right bucket, key and encryption; throttling
//! retried; a refused answer denied; an enrollment photo with no face or two refused; a dead
//! endpoint unavailable.

mod common;

use std::time::Duration;

use aws_sdk_cognitoidentityprovider as cognito;
use aws_sdk_rekognition as rekognition;
use aws_sdk_s3 as s3;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use aws_smithy_runtime_api::http::{Response as HttpResponse, StatusCode};
use aws_smithy_types::body::SdkBody;
use cognito::operation::initiate_auth::InitiateAuthOutput;
use cognito::operation::respond_to_auth_challenge::RespondToAuthChallengeOutput;
use cognito::types::{AuthFlowType, AuthenticationResultType, ChallengeNameType};
use facegate::backend::aws::cognito::{CognitoPool, secret_hash};
use facegate::backend::aws::rekognition::RekognitionIndex;
use facegate::backend::aws::s3::S3Store;
use facegate::backend::{AuthStep, BackendError, FaceIndex, IdentityProvider, ObjectStore};

const POOL: &str = "eu-west-1_TestPool";
const CLIENT: &str = "3n4b5urk1ft4fl3mg5e62d9ado";
const SECRET: &str = "client-secret-123";
const USER: &str = "ana@example.com";

/// An error response as the service sends it on the wire (so the SDK's own parsing runs).
fn json_error(status: u16, code: &str, message: &str) -> HttpResponse {
    HttpResponse::new(
        StatusCode::try_from(status).unwrap(),
        SdkBody::from(format!(r#"{{"__type":"{code}","message":"{message}"}}"#)),
    )
}

fn fast_retries(max_attempts: u32) -> aws_config::retry::RetryConfig {
    aws_config::retry::RetryConfig::standard()
        .with_max_attempts(max_attempts)
        .with_initial_backoff(Duration::from_millis(1))
}

#[tokio::test]
async fn initiate_auth_asks_for_custom_auth_with_the_secret_hash_and_returns_the_challenge() {
    let rule = mock!(cognito::Client::initiate_auth)
        .match_requests(|req| {
            let params = req.auth_parameters().cloned().unwrap_or_default();
            req.auth_flow() == Some(&AuthFlowType::CustomAuth)
                && req.client_id() == Some(CLIENT)
                && params.get("USERNAME").map(String::as_str) == Some(USER)
                && params.get("SECRET_HASH") == Some(&secret_hash(SECRET, USER, CLIENT))
        })
        .then_output(|| {
            InitiateAuthOutput::builder()
                .challenge_name(ChallengeNameType::CustomChallenge)
                .session("session-1")
                .challenge_parameters("uploadKey", "signin/abc.jpg")
                .build()
        });
    let client = mock_client!(cognito, [&rule]);
    let pool = CognitoPool::new(client, POOL, CLIENT, Some(SECRET.into()));
    let step = pool.initiate_custom_auth(USER).await.unwrap();
    let AuthStep::Challenge {
        session,
        parameters,
    } = step
    else {
        panic!("expected a challenge, got {step:?}");
    };
    assert_eq!(session, "session-1");
    assert_eq!(parameters["uploadKey"], "signin/abc.jpg");
    assert_eq!(rule.num_calls(), 1, "the request matched");
}

#[tokio::test]
async fn the_answer_carries_session_username_and_key_and_tokens_come_back() {
    let rule = mock!(cognito::Client::respond_to_auth_challenge)
        .match_requests(|req| {
            let answers = req.challenge_responses().cloned().unwrap_or_default();
            req.challenge_name() == Some(&ChallengeNameType::CustomChallenge)
                && req.session() == Some("session-1")
                && answers.get("ANSWER").map(String::as_str) == Some("signin/abc.jpg")
                && answers.get("USERNAME").map(String::as_str) == Some(USER)
                && !answers.contains_key("SECRET_HASH")
        })
        .then_output(|| {
            RespondToAuthChallengeOutput::builder()
                .authentication_result(
                    AuthenticationResultType::builder()
                        .id_token("id.jwt")
                        .access_token("access.jwt")
                        .refresh_token("refresh")
                        .expires_in(3600)
                        .build(),
                )
                .build()
        });
    let client = mock_client!(cognito, [&rule]);
    // No client secret: no SECRET_HASH is sent.
    let pool = CognitoPool::new(client, POOL, CLIENT, None);
    let step = pool
        .respond_to_challenge(USER, "session-1", "signin/abc.jpg")
        .await
        .unwrap();
    let AuthStep::Tokens(tokens) = step else {
        panic!("expected tokens, got {step:?}");
    };
    assert_eq!(tokens.id_token, "id.jwt");
    assert_eq!(tokens.refresh_token.as_deref(), Some("refresh"));
    assert_eq!(tokens.expires_in_secs, 3600);
}

#[tokio::test]
async fn a_refused_answer_is_denied_and_throttling_is_retried() {
    let refused = mock!(cognito::Client::respond_to_auth_challenge).then_http_response(|| {
        json_error(
            400,
            "NotAuthorizedException",
            "Incorrect username or password.",
        )
    });
    let pool = CognitoPool::new(mock_client!(cognito, [&refused]), POOL, CLIENT, None);
    let err = pool.respond_to_challenge(USER, "s", "k").await.unwrap_err();
    assert!(matches!(err, BackendError::Denied(_)), "{err:?}");

    let throttled = mock!(cognito::Client::initiate_auth)
        .sequence()
        .http_response(|| json_error(400, "TooManyRequestsException", "Rate exceeded"))
        .times(2)
        .output(|| {
            InitiateAuthOutput::builder()
                .challenge_name(ChallengeNameType::CustomChallenge)
                .session("s")
                .build()
        })
        .build();
    let client = mock_client!(cognito, RuleMode::Sequential, [&throttled], |c| c
        .retry_config(fast_retries(3)));
    let pool = CognitoPool::new(client, POOL, CLIENT, None);
    let step = pool.initiate_custom_auth(USER).await;
    assert!(matches!(step, Ok(AuthStep::Challenge { .. })), "{step:?}");
    assert_eq!(
        throttled.num_calls(),
        3,
        "two throttled tries, then the answer"
    );

    let always = mock!(cognito::Client::initiate_auth)
        .sequence()
        .http_response(|| json_error(400, "TooManyRequestsException", "Rate exceeded"))
        .repeatedly()
        .build();
    let client = mock_client!(cognito, RuleMode::Sequential, [&always], |c| c
        .retry_config(fast_retries(2)));
    let pool = CognitoPool::new(client, POOL, CLIENT, None);
    let err = pool.initiate_custom_auth(USER).await.unwrap_err();
    assert!(matches!(err, BackendError::Throttled(_)), "{err:?}");
}

#[tokio::test]
async fn frames_go_to_the_right_bucket_and_key_encrypted_with_their_content_type() {
    let rule = mock!(s3::Client::put_object)
        .match_requests(|req| {
            req.bucket() == Some("facegate-signin")
                && req.key() == Some("signin/abc.jpg")
                && req.content_type() == Some("image/jpeg")
                && req.server_side_encryption() == Some(&s3::types::ServerSideEncryption::Aes256)
        })
        .then_output(|| s3::operation::put_object::PutObjectOutput::builder().build());
    let store = S3Store::new(mock_client!(s3, [&rule]), "facegate-signin");
    store
        .put("signin/abc.jpg", vec![0xFF, 0xD8], "image/jpeg")
        .await
        .unwrap();
    assert_eq!(rule.num_calls(), 1);

    let missing = mock!(s3::Client::get_object).then_http_response(|| {
        HttpResponse::new(
            StatusCode::try_from(404).unwrap(),
            SdkBody::from(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code>\
                 <Message>The specified key does not exist.</Message></Error>",
            ),
        )
    });
    let store = S3Store::new(mock_client!(s3, [&missing]), "facegate-signin");
    assert_eq!(store.get("signin/gone.jpg").await.unwrap(), None);
}

#[tokio::test]
async fn no_face_in_a_search_is_rejected_and_matches_come_best_first() {
    use rekognition::operation::search_faces_by_image::SearchFacesByImageOutput;
    use rekognition::types::{Face, FaceMatch};
    let no_face = mock!(rekognition::Client::search_faces_by_image).then_http_response(|| {
        json_error(
            400,
            "InvalidParameterException",
            "There are no faces in the image.",
        )
    });
    let index = RekognitionIndex::new(mock_client!(rekognition, [&no_face]), "facegate", 95.0);
    let err = index.search_by_image(b"jpeg", 5).await.unwrap_err();
    assert!(matches!(err, BackendError::Rejected(_)), "{err:?}");

    let found = mock!(rekognition::Client::search_faces_by_image)
        .match_requests(|req| {
            req.collection_id() == Some("facegate") && req.face_match_threshold() == Some(95.0)
        })
        .then_output(|| {
            let hit = |id: &str, similarity: f32| {
                FaceMatch::builder()
                    .similarity(similarity)
                    .face(Face::builder().face_id(id).build())
                    .build()
            };
            SearchFacesByImageOutput::builder()
                .face_matches(hit("face-b", 96.5))
                .face_matches(hit("face-a", 99.1))
                .build()
        });
    let index = RekognitionIndex::new(mock_client!(rekognition, [&found]), "facegate", 95.0);
    let matches = index.search_by_image(b"jpeg", 5).await.unwrap();
    let ids: Vec<&str> = matches.iter().map(|m| m.face_id.as_str()).collect();
    assert_eq!(ids, vec!["face-a", "face-b"]);
}

#[tokio::test]
async fn an_enrollment_photo_with_two_faces_is_refused_and_its_indexed_face_removed() {
    use rekognition::operation::delete_faces::DeleteFacesOutput;
    use rekognition::operation::index_faces::IndexFacesOutput;
    use rekognition::types::{Face, FaceRecord, Reason, UnindexedFace};
    let index_rule = mock!(rekognition::Client::index_faces)
        .match_requests(|req| {
            req.max_faces() == Some(1) && req.external_image_id() == Some("ana_example.com")
        })
        .then_output(|| {
            IndexFacesOutput::builder()
                .face_records(
                    FaceRecord::builder()
                        .face(Face::builder().face_id("face-1").build())
                        .build(),
                )
                .unindexed_faces(
                    UnindexedFace::builder()
                        .reasons(Reason::ExceedsMaxFaces)
                        .build(),
                )
                .build()
        });
    let delete_rule = mock!(rekognition::Client::delete_faces)
        .match_requests(|req| req.face_ids() == ["face-1".to_string()])
        .then_output(|| DeleteFacesOutput::builder().build());
    let client = mock_client!(rekognition, RuleMode::MatchAny, [&index_rule, &delete_rule]);
    let index = RekognitionIndex::new(client, "facegate", 95.0);
    let err = index.index_face(b"jpeg", USER).await.unwrap_err();
    assert!(
        matches!(err, BackendError::Rejected(ref m) if m.contains("more than one")),
        "{err:?}"
    );
    assert_eq!(
        delete_rule.num_calls(),
        1,
        "the half-done enrollment is undone"
    );
}

#[tokio::test]
/// Only the mapping: `tests/daemon.rs::with_aws_unreachable_the_daemon_decides_offline` runs
/// the daemon against dead AWS endpoints.
async fn a_dead_s3_endpoint_is_unavailable() {
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("eu-west-1"))
        .credentials_provider(s3::config::Credentials::new(
            "AKID", "secret", None, None, "test",
        ))
        .retry_config(fast_retries(1))
        .load()
        .await;
    let config = facegate::backend::aws::AwsConfig {
        user_pool_id: POOL.into(),
        client_id: CLIENT.into(),
        signin_bucket: "facegate-signin".into(),
        signup_bucket: "facegate-signup".into(),
        // Nothing listens on port 1.
        s3_endpoint_url: Some("http://127.0.0.1:1".into()),
        ..Default::default()
    };
    let backend =
        facegate::backend::aws::AwsBackend::from_sdk_config(&config, &shared, "eu-west-1".into())
            .unwrap();
    let err = backend
        .signin
        .put("signin/x.jpg", vec![1], "image/jpeg")
        .await
        .unwrap_err();
    assert!(matches!(err, BackendError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn an_enrollment_photo_with_no_face_is_refused_and_nothing_is_indexed_or_linked() {
    use facegate::backend::triggers::index_faces;
    use rekognition::operation::delete_faces::DeleteFacesOutput;
    use rekognition::operation::index_faces::IndexFacesOutput;
    // What Rekognition answers for a photo of a wall: no face record, nothing unindexed.
    let index_rule =
        mock!(rekognition::Client::index_faces).then_output(|| IndexFacesOutput::builder().build());
    let delete_rule = mock!(rekognition::Client::delete_faces)
        .then_output(|| DeleteFacesOutput::builder().build());
    let client = mock_client!(rekognition, RuleMode::MatchAny, [&index_rule, &delete_rule]);
    let index = std::sync::Arc::new(RekognitionIndex::new(client, "facegate", 95.0));
    let err = index.index_face(b"a wall", USER).await.unwrap_err();
    assert!(
        matches!(err, BackendError::Rejected(ref m) if m.contains("no face")),
        "{err:?}"
    );
    assert_eq!(index_rule.num_calls(), 1);
    assert_eq!(delete_rule.num_calls(), 0, "nothing was indexed to undo");

    // Through the index-faces trigger, as the sign-up bucket's event runs it: a clear error,
    // no FaceId linked to the user.
    let mut w = common::ports::ports(&[USER], 1_800_000_000_000);
    w.ports.faces = index;
    let key = format!("signup/{USER}/wall.jpg");
    w.signup
        .put(&key, b"a wall".to_vec(), "image/jpeg")
        .await
        .unwrap();
    let mut record = aws_lambda_events::event::s3::S3EventRecord::default();
    record.s3.object.key = Some(key.replace('@', "%40"));
    let mut event = aws_lambda_events::event::s3::S3Event::default();
    event.records = vec![record];
    let err = index_faces(&event, &w.ports).await.unwrap_err();
    assert!(
        matches!(err, BackendError::Rejected(ref m) if m.contains("no face")),
        "{err:?}"
    );
    assert!(w.table.rows().is_empty(), "{:?}", w.table.rows());
    assert!(
        w.ports
            .directory
            .faces_of_user(USER)
            .await
            .unwrap()
            .is_empty()
    );
}
