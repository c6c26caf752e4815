//! The trigger Lambda's dispatch, fed the JSON documents Cognito and S3 send (shapes from the
//! AWS developer guide), over the in-memory ports of `tests/common/ports.rs` (a bucket that
//! keeps whole seconds, as S3 does): a full define → create → verify → define round trip grants
//! for the right face, and the attacks of docs/security.md are refused.

mod common;

use std::collections::HashMap;

use common::ports::Ports;
use facegate::backend::lambda::{LambdaError, config_from_env, dispatch};
use facegate::backend::triggers::TriggerConfig;
use facegate::backend::{BackendError, ObjectStore};
use serde_json::{Value, json};

/// The first Create runs at this instant, on a whole second.
const START_MS: u64 = 1_800_000_000_000;

/// How long after its challenge a frame is uploaded in these tests: often within the same
/// second, so the bucket (whole seconds, as S3) stamps it before the challenge's issue time.
const UPLOAD_DELAY_MS: u64 = 100;

type World = Ports;

fn world() -> World {
    common::ports::ports(&["ana@example.com", "ben@example.com"], START_MS)
}

/// The common header Cognito puts on every trigger event.
fn cognito(trigger: &str, user: &str, request: Value, response: Value) -> Value {
    json!({
        "version": "1",
        "region": "eu-west-1",
        "userPoolId": "eu-west-1_Pool",
        "userName": user,
        "callerContext": {
            "awsSdkVersion": "aws-sdk-unknown-unknown",
            "clientId": "3n4b5urk1ft4fl3mg5e62d9ado"
        },
        "triggerSource": trigger,
        "request": request,
        "response": response,
    })
}

fn attributes(user: &str) -> Value {
    json!({"sub": "a1b2c3", "email_verified": "true", "email": user})
}

async fn define(w: &World, user: &str, session: Value) -> Value {
    let event = cognito(
        "DefineAuthChallenge_Authentication",
        user,
        json!({"userAttributes": attributes(user), "session": session, "userNotFound": false}),
        json!({"challengeName": null, "issueTokens": null, "failAuthentication": null}),
    );
    dispatch(event, &w.ports).await.unwrap()["response"].clone()
}

async fn create(w: &World, user: &str) -> Value {
    let event = cognito(
        "CreateAuthChallenge_Authentication",
        user,
        json!({
            "userAttributes": attributes(user),
            "challengeName": "CUSTOM_CHALLENGE",
            "session": [],
            "userNotFound": false
        }),
        json!({
            "publicChallengeParameters": null,
            "privateChallengeParameters": null,
            "challengeMetadata": null
        }),
    );
    dispatch(event, &w.ports).await.unwrap()["response"].clone()
}

async fn verify(w: &World, user: &str, private: &Value, answer: &str) -> bool {
    let event = cognito(
        "VerifyAuthChallengeResponse_Authentication",
        user,
        json!({
            "userAttributes": attributes(user),
            "privateChallengeParameters": private,
            "challengeAnswer": answer,
            "userNotFound": false
        }),
        json!({"answerCorrect": null}),
    );
    let out = dispatch(event, &w.ports).await.unwrap();
    out["response"]["answerCorrect"].as_bool().unwrap()
}

/// An S3 ObjectCreated notification for `key` (URL-encoded as S3 sends it).
fn s3_put(bucket: &str, key: &str) -> Value {
    json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "eu-west-1",
        "eventTime": "2026-11-29T10:00:00.000Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "r", "x-amz-id-2": "i"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "index-faces",
            "bucket": {"name": bucket, "ownerIdentity": {"principalId": "A"}, "arn": format!("arn:aws:s3:::{bucket}")},
            "object": {"key": key.replace('@', "%40"), "size": 8, "eTag": "e", "sequencer": "0A"}
        }
    }]})
}

/// Enrolls `user` with the photo `face` through the sign-up bucket and the S3 event.
async fn enroll(w: &World, user: &str, face: &[u8]) {
    let key = format!("signup/{user}/photo-1.jpg");
    w.signup
        .put(&key, face.to_vec(), "image/jpeg")
        .await
        .unwrap();
    let out = dispatch(s3_put("facegate-signup", &key), &w.ports)
        .await
        .unwrap();
    assert_eq!(out["indexed"][0]["username"], user, "{out}");
}

const ANA: &str = "ana@example.com";

/// The reason an S3 invocation gives for a photo it refused (and did not index).
fn refused_photo(out: Result<Value, LambdaError>) -> String {
    let out = out.expect("a refused photo is not an error");
    assert_eq!(out["indexed"], json!([]), "{out}");
    out["refused"].as_str().expect("a reason").to_string()
}

#[tokio::test]
async fn the_right_face_completes_the_round_trip_and_gets_tokens() {
    let w = world();
    enroll(&w, ANA, b"ana's face").await;
    let first = define(&w, ANA, json!([])).await;
    assert_eq!(first["challengeName"], "CUSTOM_CHALLENGE");
    assert_eq!(first["issueTokens"], false);
    let challenge = create(&w, ANA).await;
    let key = challenge["publicChallengeParameters"]["uploadKey"]
        .as_str()
        .unwrap()
        .to_string();
    // Nothing that decides the answer is public: the verdict's id is nowhere in the public
    // parameters' values (the upload key, and the nonce inside it, are public by design).
    let public = challenge["publicChallengeParameters"].to_string();
    let verdict_id = challenge["privateChallengeParameters"]["verdictId"]
        .as_str()
        .unwrap();
    assert!(
        verdict_id.len() >= 16 && !public.contains(verdict_id),
        "the verdict id is private: {challenge}"
    );
    w.clock.advance_ms(400);
    w.signin
        .put(&key, b"ana's face".to_vec(), "image/jpeg")
        .await
        .unwrap();
    let private = challenge["privateChallengeParameters"].clone();
    assert!(verify(&w, ANA, &private, &key).await);
    assert_eq!(
        w.signin.head(&key).await.unwrap(),
        None,
        "the frame is used once"
    );
    let done = define(
        &w,
        ANA,
        json!([{"challengeName": "CUSTOM_CHALLENGE", "challengeResult": true, "challengeMetadata": "FACE_FRAME"}]),
    )
    .await;
    assert_eq!(done["issueTokens"], true, "{done}");
    assert_eq!(done["failAuthentication"], false);
}

/// The old place of a retried invocation's verdict was `verdicts/<nonce>` in the sign-in
/// bucket, and the nonce is public (inside the upload key): whoever could write there could
/// plant "correct". Verdicts now live in the trigger-only ledger under a private id. A
/// planted verdict, in the bucket or in the ledger under the public nonce, is not believed.
#[tokio::test]
async fn a_verdict_planted_for_a_live_challenge_is_not_believed() {
    let w = world();
    enroll(&w, ANA, b"ana's face").await;
    enroll(&w, "ben@example.com", b"ben's face").await;
    let challenge = create(&w, ANA).await;
    let key = challenge["publicChallengeParameters"]["uploadKey"]
        .as_str()
        .unwrap()
        .to_string();
    let nonce = key
        .rsplit('/')
        .next()
        .unwrap()
        .trim_end_matches(".jpg")
        .to_string();
    let correct = br#"{"answerCorrect":true,"ok":true}"#.to_vec();
    for planted in [
        format!("verdicts/{nonce}"),
        format!("verdicts/{nonce}.json"),
    ] {
        w.signin
            .put(&planted, correct.clone(), "application/json")
            .await
            .unwrap();
    }
    w.ports
        .ledger
        .file_verdict(&nonce, true, START_MS + 3_600_000)
        .await
        .unwrap();
    w.clock.advance_ms(UPLOAD_DELAY_MS);
    w.signin
        .put(&key, b"ben's face".to_vec(), "image/jpeg")
        .await
        .unwrap();
    let private = challenge["privateChallengeParameters"].clone();
    assert!(
        !verify(&w, ANA, &private, &key).await,
        "a stranger's face with planted verdicts is refused"
    );
    assert!(
        !verify(&w, ANA, &private, &key).await,
        "and a retried invocation gets the verdict Verify filed itself"
    );
}

#[tokio::test]
async fn the_attacks_are_refused() {
    let w = world();
    enroll(&w, ANA, b"ana's face").await;
    enroll(&w, "ben@example.com", b"ben's face").await;
    let challenge = create(&w, ANA).await;
    let key = challenge["publicChallengeParameters"]["uploadKey"]
        .as_str()
        .unwrap()
        .to_string();
    let private = challenge["privateChallengeParameters"].clone();

    // A frame at the key that is older than the challenge (left over, or planted).
    let issued = private["issuedAtMs"]
        .as_str()
        .unwrap()
        .parse::<u64>()
        .unwrap();
    w.signin.plant(&key, b"ana's face".to_vec(), issued - 1_000);
    w.clock.advance_ms(UPLOAD_DELAY_MS);
    assert!(
        !verify(&w, ANA, &private, &key).await,
        "uploaded before the challenge"
    );
    // The enrollment photo's key as the answer: only the key Create issued is accepted.
    w.signup
        .put(
            "signup/ana@example.com/photo-2.jpg",
            b"ana's face".to_vec(),
            "image/jpeg",
        )
        .await
        .unwrap();
    assert!(!verify(&w, ANA, &private, "signup/ana@example.com/photo-2.jpg").await);
    // Ben's face uploaded for Ana's challenge.
    let second = create(&w, ANA).await;
    let key2 = second["publicChallengeParameters"]["uploadKey"]
        .as_str()
        .unwrap()
        .to_string();
    w.clock.advance_ms(UPLOAD_DELAY_MS);
    w.signin
        .put(&key2, b"ben's face".to_vec(), "image/jpeg")
        .await
        .unwrap();
    assert!(!verify(&w, ANA, &second["privateChallengeParameters"], &key2).await);
    // A right answer: Cognito may retry the invocation, which gets the same verdict (the
    // session itself is single-use at Cognito); the frame is gone, and the old key does not
    // answer a new challenge.
    let third = create(&w, ANA).await;
    let key3 = third["publicChallengeParameters"]["uploadKey"]
        .as_str()
        .unwrap()
        .to_string();
    w.clock.advance_ms(UPLOAD_DELAY_MS);
    w.signin
        .put(&key3, b"ana's face".to_vec(), "image/jpeg")
        .await
        .unwrap();
    assert!(verify(&w, ANA, &third["privateChallengeParameters"], &key3).await);
    assert!(
        verify(&w, ANA, &third["privateChallengeParameters"], &key3).await,
        "a retried invocation"
    );
    assert_eq!(w.signin.head(&key3).await.unwrap(), None, "used once");
    let fourth = create(&w, ANA).await;
    w.signin
        .put(&key3, b"ana's face".to_vec(), "image/jpeg")
        .await
        .unwrap();
    assert!(
        !verify(&w, ANA, &fourth["privateChallengeParameters"], &key3).await,
        "an old key for a new challenge"
    );
    // An upload after the challenge expired.
    let late = create(&w, ANA).await;
    let key4 = late["publicChallengeParameters"]["uploadKey"]
        .as_str()
        .unwrap()
        .to_string();
    // A second past expiry (just past it: `a_frame_uploaded_just_after_its_challenge_expired_is_refused`).
    w.clock
        .advance_ms(TriggerConfig::default().challenge_ttl_ms + 1_000);
    w.signin
        .put(&key4, b"ana's face".to_vec(), "image/jpeg")
        .await
        .unwrap();
    assert!(!verify(&w, ANA, &late["privateChallengeParameters"], &key4).await);

    // Three wrong answers end the session.
    let wrong = json!({"challengeName": "CUSTOM_CHALLENGE", "challengeResult": false, "challengeMetadata": "FACE_FRAME"});
    let over = define(&w, ANA, json!([wrong, wrong, wrong])).await;
    assert_eq!(over["failAuthentication"], true, "{over}");
    assert_eq!(over["issueTokens"], false);
    // A session that went through another challenge type is failed.
    let foreign = define(
        &w,
        ANA,
        json!([{"challengeName": "PASSWORD_VERIFIER", "challengeResult": true}]),
    )
    .await;
    assert_eq!(foreign["issueTokens"], false, "{foreign}");
}

#[tokio::test]
async fn self_sign_up_is_refused_and_the_user_link_comes_only_from_the_admin_key() {
    let w = world();
    let signup = cognito(
        "PreSignUp_SignUp",
        "mallory@example.com",
        json!({"userAttributes": {"email": "mallory@example.com"}, "validationData": null}),
        json!({"autoConfirmUser": false, "autoVerifyEmail": false, "autoVerifyPhone": false}),
    );
    let refused = dispatch(signup, &w.ports).await;
    assert!(
        matches!(refused, Err(LambdaError::Backend(_))),
        "{refused:?}"
    );

    // A photo for a user the pool does not know is not indexed.
    let key = "signup/mallory@example.com/photo.jpg";
    w.signup
        .put(key, b"mallory".to_vec(), "image/jpeg")
        .await
        .unwrap();
    // Refused photos are reported, not returned as errors: S3 would only retry them.
    let out = refused_photo(dispatch(s3_put("facegate-signup", key), &w.ports).await);
    assert!(out.contains("no user mallory@example.com"), "{out}");
    // A photo outside the sign-up prefix is not indexed either, even for a real user.
    w.signup
        .put(
            "elsewhere/ana@example.com/x.jpg",
            b"x".to_vec(),
            "image/jpeg",
        )
        .await
        .unwrap();
    let out = refused_photo(
        dispatch(
            s3_put("facegate-signup", "elsewhere/ana@example.com/x.jpg"),
            &w.ports,
        )
        .await,
    );
    assert!(out.contains("not under the sign-up prefix"), "{out}");
    // Nor one a level deeper, which could smuggle another user's name into the path.
    let nested = "signup/mallory@example.com/ana@example.com/x.jpg";
    w.signup
        .put(nested, b"x".to_vec(), "image/jpeg")
        .await
        .unwrap();
    refused_photo(dispatch(s3_put("facegate-signup", nested), &w.ports).await);
    assert!(w.faces.ids().is_empty(), "a refused photo was indexed");
    assert!(w.table.rows().is_empty(), "a refused photo was linked");

    let unknown = dispatch(json!({"hello": "world"}), &w.ports).await;
    assert!(matches!(unknown, Err(LambdaError::Unsupported(_))));
    let broken = dispatch(
        json!({"triggerSource": "DefineAuthChallenge_Authentication", "request": 7}),
        &w.ports,
    )
    .await;
    assert!(
        matches!(broken, Err(LambdaError::Shape { .. })),
        "{broken:?}"
    );
}

#[test]
fn the_lambda_reads_its_settings_from_the_environment_and_names_what_is_missing() {
    let env: HashMap<&str, &str> = [
        ("FACEGATE_USER_POOL_ID", "eu-west-1_Pool"),
        ("FACEGATE_SIGNIN_BUCKET", "in"),
        ("FACEGATE_SIGNUP_BUCKET", "up"),
        ("FACEGATE_COLLECTION_ID", "facegate"),
        ("FACEGATE_FACES_TABLE", "faces"),
        ("FACEGATE_LEDGER_TABLE", "ledger"),
        ("FACEGATE_MATCH_THRESHOLD", "97.5"),
    ]
    .into();
    let config = config_from_env(|k| env.get(k).map(|v| v.to_string())).unwrap();
    assert_eq!(config.match_threshold, 97.5);
    assert!(
        config.operation_timeout_secs < 5.0,
        "well within Cognito's 5 s trigger limit"
    );
    let err = config_from_env(|k| {
        (k != "FACEGATE_FACES_TABLE")
            .then(|| env.get(k).map(|v| v.to_string()))
            .flatten()
    })
    .unwrap_err();
    assert!(err.contains("FACEGATE_FACES_TABLE"), "{err}");
}

/// The private parameters and upload key of a fresh challenge for `user`.
async fn challenge(w: &World, user: &str) -> (Value, String) {
    let c = create(w, user).await;
    let key = c["publicChallengeParameters"]["uploadKey"]
        .as_str()
        .unwrap()
        .to_string();
    (c["privateChallengeParameters"].clone(), key)
}

#[tokio::test]
async fn every_face_of_a_user_counts_and_a_user_with_no_face_gets_a_clean_wrong() {
    let w = world();
    // Ana enrolled from two photos: two FaceIds. The seed kept only the last one.
    enroll(&w, ANA, b"ana, first photo").await;
    let key = format!("signup/{ANA}/photo-2.jpg");
    w.signup
        .put(&key, b"ana, second photo".to_vec(), "image/jpeg")
        .await
        .unwrap();
    dispatch(s3_put("facegate-signup", &key), &w.ports)
        .await
        .unwrap();
    assert_eq!(w.table.rows().len(), 2, "{:?}", w.table.rows());
    for frame in [&b"ana, first photo"[..], b"ana, second photo"] {
        let (private, key) = challenge(&w, ANA).await;
        w.clock.advance_ms(UPLOAD_DELAY_MS);
        w.signin
            .put(&key, frame.to_vec(), "image/jpeg")
            .await
            .unwrap();
        assert!(
            verify(&w, ANA, &private, &key).await,
            "a frame like {:?} is refused",
            String::from_utf8_lossy(frame)
        );
    }
    // Ben is in the pool but has no face: a plain "wrong", not an error, whatever he sends.
    let ben = "ben@example.com";
    let (private, key) = challenge(&w, ben).await;
    w.clock.advance_ms(UPLOAD_DELAY_MS);
    w.signin
        .put(&key, b"ana, first photo".to_vec(), "image/jpeg")
        .await
        .unwrap();
    assert!(!verify(&w, ben, &private, &key).await);
}

#[tokio::test]
async fn every_backend_error_answers_wrong_and_is_logged() {
    let logs = common::ports::LogBuffer::global();
    // A user of its own, so that only this test's log lines name them.
    const CY: &str = "cy@example.com";
    let w = common::ports::ports(&[CY], START_MS);
    enroll(&w, CY, b"cy's face").await;
    let errors = [
        BackendError::Unavailable("network down".into()),
        BackendError::Throttled("slow down".into()),
        BackendError::Denied("access denied".into()),
        BackendError::Internal("broken".into()),
    ];
    // The control: with nothing failing, this exact answer is right; it names the operations
    // Verify calls, each of which is then broken in turn.
    let (private, key) = challenge(&w, CY).await;
    w.clock.advance_ms(UPLOAD_DELAY_MS);
    w.signin
        .put(&key, b"cy's face".to_vec(), "image/jpeg")
        .await
        .unwrap();
    w.faults.take_calls();
    assert!(verify(&w, CY, &private, &key).await, "the control failed");
    let called = w.faults.take_calls();
    for op in [
        "signin.head",
        "signin.get",
        "faces.search",
        "directory.faces_of_user",
    ] {
        assert!(
            called.iter().any(|c| c == op),
            "Verify never called {op}: {called:?}"
        );
    }
    for op in &called {
        for error in &errors {
            let (private, key) = challenge(&w, CY).await;
            w.clock.advance_ms(UPLOAD_DELAY_MS);
            w.signin
                .put(&key, b"cy's face".to_vec(), "image/jpeg")
                .await
                .unwrap();
            let mark = logs.mark();
            w.faults.fail(op, error.clone());
            let event = cognito(
                "VerifyAuthChallengeResponse_Authentication",
                CY,
                json!({
                    "userAttributes": attributes(CY),
                    "privateChallengeParameters": private,
                    "challengeAnswer": key,
                    "userNotFound": false
                }),
                json!({"answerCorrect": null}),
            );
            let out = dispatch(event, &w.ports).await;
            w.faults.clear();
            let out = out.unwrap_or_else(|e| panic!("{op} failing with {error:?}: {e}"));
            assert_eq!(
                out["response"]["answerCorrect"],
                json!(false),
                "{op} failing with {error:?} was answered right"
            );
            let lines = logs.lines_since(mark, &format!("user={CY}"));
            assert!(
                !lines.is_empty(),
                "{op} failing with {error:?} left no log line naming the user"
            );
            assert!(
                lines.iter().any(|l| l.contains(&error.to_string())),
                "{op} failing with {error:?}: the error is not in the log: {lines:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_frame_uploaded_in_the_same_second_as_its_challenge_is_accepted() {
    // Create runs 250 ms into a second; the frame arrives 400 ms later, in the same second,
    // and the bucket stamps it with the start of that second, as S3 does.
    let w = common::ports::ports(&[ANA], START_MS + 250);
    enroll(&w, ANA, b"ana's face").await;
    let (private, key) = challenge(&w, ANA).await;
    w.clock.advance_ms(400);
    w.signin
        .put(&key, b"ana's face".to_vec(), "image/jpeg")
        .await
        .unwrap();
    assert!(
        verify(&w, ANA, &private, &key).await,
        "the right face, uploaded 400 ms after its challenge, was refused"
    );
    // The whole-second stamp must not let a frame from the second before pass.
    let (private, key) = challenge(&w, ANA).await;
    let issued: u64 = private["issuedAtMs"].as_str().unwrap().parse().unwrap();
    w.signin
        .plant(&key, b"ana's face".to_vec(), issued / 1000 * 1000 - 1);
    w.clock.advance_ms(100);
    assert!(
        !verify(&w, ANA, &private, &key).await,
        "planted a second early"
    );
}

#[tokio::test]
async fn a_frame_uploaded_just_after_its_challenge_expired_is_refused() {
    let w = common::ports::ports(&[ANA], START_MS + 250);
    enroll(&w, ANA, b"ana's face").await;
    let (private, key) = challenge(&w, ANA).await;
    w.clock
        .advance_ms(TriggerConfig::default().challenge_ttl_ms + 1);
    w.signin
        .put(&key, b"ana's face".to_vec(), "image/jpeg")
        .await
        .unwrap();
    assert!(
        !verify(&w, ANA, &private, &key).await,
        "uploaded 1 ms after the challenge expired"
    );
}

#[tokio::test]
async fn a_request_the_services_reject_is_answered_wrong_and_logged_as_itself() {
    let logs = common::ports::LogBuffer::global();
    const DEE: &str = "dee@example.com";
    let w = common::ports::ports(&[DEE], START_MS);
    enroll(&w, DEE, b"dee's face").await;
    // A frame with no usable face is an answer: "wrong", logged as such.
    let rejected = BackendError::Rejected("bad request".into());
    for op in [
        "faces.search",
        "signin.head",
        "signin.get",
        "ledger.verdict",
    ] {
        let (private, key) = challenge(&w, DEE).await;
        w.clock.advance_ms(UPLOAD_DELAY_MS);
        w.signin
            .put(&key, b"dee's face".to_vec(), "image/jpeg")
            .await
            .unwrap();
        let mark = logs.mark();
        w.faults.fail(op, rejected.clone());
        let correct = verify(&w, DEE, &private, &key).await;
        w.faults.clear();
        assert!(!correct, "{op} rejected, answered right");
        let lines = logs.lines_since(mark, &format!("user={DEE}"));
        let expected = if op == "faces.search" {
            "no usable face".to_string()
        } else {
            rejected.to_string()
        };
        assert!(
            lines.iter().any(|l| l.contains(&expected)),
            "{op}: {expected:?} is not in the log: {lines:?}"
        );
    }
}

#[tokio::test]
async fn a_rejected_directory_lookup_is_logged_as_itself_not_as_no_face() {
    let logs = common::ports::LogBuffer::global();
    const EVE: &str = "eve@example.com";
    let w = common::ports::ports(&[EVE], START_MS);
    enroll(&w, EVE, b"eve's face").await;
    let (private, key) = challenge(&w, EVE).await;
    w.clock.advance_ms(UPLOAD_DELAY_MS);
    w.signin
        .put(&key, b"eve's face".to_vec(), "image/jpeg")
        .await
        .unwrap();
    let rejected = BackendError::Rejected("ValidationException".into());
    w.faults.fail("directory.faces_of_user", rejected.clone());
    let mark = logs.mark();
    assert!(!verify(&w, EVE, &private, &key).await);
    w.faults.clear();
    let lines = logs.lines_since(mark, &format!("user={EVE}"));
    assert!(
        lines.iter().any(|l| l.contains(&rejected.to_string())),
        "the directory's error is not in the log: {lines:?}"
    );
}

/// S3 notifications come at least once, and a failed asynchronous invocation is retried: a
/// photo is indexed once however often it is delivered, and a face that could not be linked
/// is deleted before the error goes back for the retry.
#[tokio::test]
async fn a_redelivered_or_retried_enrollment_photo_is_indexed_once() {
    let w = world();
    let key = "signup/ana@example.com/photo-1.jpg";
    w.signup
        .put(key, b"ana's face".to_vec(), "image/jpeg")
        .await
        .unwrap();
    let first = dispatch(s3_put("facegate-signup", key), &w.ports)
        .await
        .unwrap();
    assert_eq!(first["indexed"].as_array().unwrap().len(), 1, "{first}");
    let again = dispatch(s3_put("facegate-signup", key), &w.ports)
        .await
        .unwrap();
    assert_eq!(again["indexed"], json!([]), "{again}");
    assert_eq!(w.faces.ids().len(), 1, "one FaceId per photo");

    // The directory fails once the face is indexed: the face goes, the error goes back to S3,
    // and the retry indexes the photo once.
    let key = "signup/ben@example.com/photo-1.jpg";
    w.signup
        .put(key, b"ben's face".to_vec(), "image/jpeg")
        .await
        .unwrap();
    w.faults.fail(
        "directory.put",
        BackendError::Unavailable("DynamoDB is down".into()),
    );
    let failed = dispatch(s3_put("facegate-signup", key), &w.ports).await;
    assert!(
        matches!(
            failed,
            Err(LambdaError::Backend(BackendError::Unavailable(_)))
        ),
        "{failed:?}"
    );
    assert_eq!(w.faces.ids().len(), 1, "the unlinked face was deleted");
    w.faults.clear();
    let retried = dispatch(s3_put("facegate-signup", key), &w.ports)
        .await
        .unwrap();
    assert_eq!(retried["indexed"][0]["username"], "ben@example.com");
    assert_eq!(w.faces.ids().len(), 2);
    assert_eq!(w.table.rows().len(), 2);
}

/// The ledger, with its first verdict filing held up (a slow DynamoDB).
struct SlowFirstFiling {
    inner: std::sync::Arc<dyn facegate::backend::TriggerLedger>,
    filed: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl facegate::backend::TriggerLedger for SlowFirstFiling {
    async fn verdict(&self, id: &str) -> Result<Option<bool>, BackendError> {
        self.inner.verdict(id).await
    }
    async fn file_verdict(&self, id: &str, ok: bool, until: u64) -> Result<bool, BackendError> {
        if self.filed.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        }
        self.inner.file_verdict(id, ok, until).await
    }
    async fn failures_since(&self, user: &str, since: u64) -> Result<usize, BackendError> {
        self.inner.failures_since(user, since).await
    }
    async fn record_failure(&self, user: &str, at: u64, until: u64) -> Result<(), BackendError> {
        self.inner.record_failure(user, at, until).await
    }
    async fn clear_failures(&self, user: &str) -> Result<(), BackendError> {
        self.inner.clear_failures(user).await
    }
}

/// Cognito gives a trigger 5 s and retries it. The first invocation is slow to file its
/// verdict; the retry, arriving meanwhile, must still find the frame (or the verdict) and
/// answer as the first does — never "no frame" because the first already deleted it.
#[tokio::test]
async fn a_verify_retried_after_a_slow_first_try_gets_the_same_answer() {
    let mut w = world();
    enroll(&w, ANA, b"ana's face").await;
    // From here on the first filing is Verify's.
    w.ports.ledger = std::sync::Arc::new(SlowFirstFiling {
        inner: w.ports.ledger.clone(),
        filed: Default::default(),
    });
    let challenge = create(&w, ANA).await;
    let key = challenge["publicChallengeParameters"]["uploadKey"]
        .as_str()
        .unwrap()
        .to_string();
    w.clock.advance_ms(UPLOAD_DELAY_MS);
    w.signin
        .put(&key, b"ana's face".to_vec(), "image/jpeg")
        .await
        .unwrap();
    let private = challenge["privateChallengeParameters"].clone();
    let first = {
        let ports = w.ports.clone();
        let event = cognito(
            "VerifyAuthChallengeResponse_Authentication",
            ANA,
            json!({
                "userAttributes": attributes(ANA),
                "privateChallengeParameters": private,
                "challengeAnswer": key,
                "userNotFound": false
            }),
            json!({"answerCorrect": null}),
        );
        tokio::spawn(async move { dispatch(event, &ports).await.unwrap() })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(
        verify(&w, ANA, &private, &key).await,
        "the retry is answered as the first try"
    );
    let first = first.await.unwrap();
    assert_eq!(first["response"]["answerCorrect"], true, "{first}");
    assert_eq!(w.signin.head(&key).await.unwrap(), None, "used once");
    assert!(
        verify(&w, ANA, &private, &key).await,
        "a later retry gets the verdict on file"
    );
}
