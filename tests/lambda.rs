//! The trigger Lambda's dispatch, fed the JSON documents Cognito and S3 send (shapes from the
//! AWS developer guide), over in-memory services: a full define → create → verify → define
//! round trip grants for the right face, and the attacks of SECURITY.md are refused.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use facegate::backend::embedded::SledLedger;
use facegate::backend::lambda::{LambdaError, config_from_env, dispatch};
use facegate::backend::triggers::{TriggerConfig, TriggerPorts};
use facegate::backend::{
    BackendError, Directory, FaceIndex, FaceMatch, FaceRecord, ObjectInfo, ObjectStore, UserLookup,
};
use facegate::clock::{Clock, ManualClock};
use facegate::matching::{DecisionRule, Threshold};
use serde_json::{Value, json};

/// A bucket in memory, stamping uploads with the test clock.
struct Bucket {
    objects: Mutex<HashMap<String, (Vec<u8>, ObjectInfo)>>,
    clock: ManualClock,
}

#[async_trait]
impl ObjectStore for Bucket {
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), BackendError> {
        let info = ObjectInfo {
            size: bytes.len() as u64,
            uploaded_at_ms: self.clock.now_ms(),
            content_type: content_type.into(),
        };
        self.objects
            .lock()
            .unwrap()
            .insert(key.into(), (bytes, info));
        Ok(())
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        Ok(self
            .objects
            .lock()
            .unwrap()
            .get(key)
            .map(|(b, _)| b.clone()))
    }
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, BackendError> {
        Ok(self
            .objects
            .lock()
            .unwrap()
            .get(key)
            .map(|(_, i)| i.clone()))
    }
    async fn delete(&self, key: &str) -> Result<(), BackendError> {
        self.objects.lock().unwrap().remove(key);
        Ok(())
    }
}

/// A face index where a "face" is the photo's bytes: a frame matches the faces indexed from
/// identical bytes (the real matching is tested elsewhere; here only the wiring matters).
#[derive(Default)]
struct Faces(Mutex<Vec<(String, Vec<u8>)>>);

#[async_trait]
impl FaceIndex for Faces {
    async fn index_face(&self, image: &[u8], _external: &str) -> Result<String, BackendError> {
        let mut faces = self.0.lock().unwrap();
        let id = format!("face-{}", faces.len() + 1);
        faces.push((id.clone(), image.to_vec()));
        Ok(id)
    }
    async fn search_by_image(
        &self,
        image: &[u8],
        _max: usize,
    ) -> Result<Vec<FaceMatch>, BackendError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, bytes)| bytes == image)
            .map(|(id, _)| FaceMatch {
                face_id: id.clone(),
                similarity: 99.0,
            })
            .collect())
    }
    async fn face_count(&self) -> Result<usize, BackendError> {
        Ok(self.0.lock().unwrap().len())
    }
    async fn compare(&self, a: &[u8], b: &[u8]) -> Result<f32, BackendError> {
        Ok(if a == b { 99.0 } else { 0.0 })
    }
    async fn delete_faces(&self, ids: &[String]) -> Result<(), BackendError> {
        self.0.lock().unwrap().retain(|(id, _)| !ids.contains(id));
        Ok(())
    }
}

#[derive(Default)]
struct Table(Mutex<HashMap<String, String>>);

#[async_trait]
impl Directory for Table {
    async fn put_face(&self, r: FaceRecord) -> Result<(), BackendError> {
        self.0.lock().unwrap().insert(r.face_id, r.username);
        Ok(())
    }
    async fn user_of_face(&self, id: &str) -> Result<Option<String>, BackendError> {
        Ok(self.0.lock().unwrap().get(id).cloned())
    }
    async fn faces_of_user(&self, user: &str) -> Result<Vec<String>, BackendError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, u)| *u == user)
            .map(|(f, _)| f.clone())
            .collect())
    }
    async fn delete_face(&self, id: &str) -> Result<(), BackendError> {
        self.0.lock().unwrap().remove(id);
        Ok(())
    }
}

struct Pool(HashSet<String>);

#[async_trait]
impl UserLookup for Pool {
    async fn user_exists(&self, user: &str) -> Result<bool, BackendError> {
        Ok(self.0.contains(user))
    }
}

struct World {
    ports: TriggerPorts,
    signin: Arc<Bucket>,
    signup: Arc<Bucket>,
    clock: ManualClock,
}

fn world() -> World {
    let clock = ManualClock::at(1_800_000_000_000);
    let bucket = || {
        Arc::new(Bucket {
            objects: Mutex::default(),
            clock: clock.clone(),
        })
    };
    let (signin, signup) = (bucket(), bucket());
    let ports = TriggerPorts {
        signin: signin.clone(),
        signup: signup.clone(),
        faces: Arc::new(Faces::default()),
        directory: Arc::new(Table::default()),
        users: Arc::new(Pool(
            ["ana@example.com", "ben@example.com"]
                .map(String::from)
                .into(),
        )),
        ledger: Arc::new(
            SledLedger::open(&sled::Config::new().temporary(true).open().unwrap()).unwrap(),
        ),
        clock: Arc::new(clock.clone()),
        // Rekognition's percent, as the Lambda runs it.
        config: TriggerConfig {
            rule: DecisionRule::new(Threshold::Fixed(95.0), 1.0),
            ..TriggerConfig::default()
        },
    };
    World {
        ports,
        signin,
        signup,
        clock,
    }
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
    assert!(
        challenge["publicChallengeParameters"]
            .get("nonce")
            .is_none(),
        "nothing secret in public: {challenge}"
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
    let stale = ObjectInfo {
        size: 10,
        uploaded_at_ms: issued - 1_000,
        content_type: "image/jpeg".into(),
    };
    w.signin
        .objects
        .lock()
        .unwrap()
        .insert(key.clone(), (b"ana's face".to_vec(), stale));
    w.clock.advance_ms(100);
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
    w.clock.advance_ms(100);
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
    w.clock.advance_ms(100);
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
    w.clock
        .advance_ms(TriggerConfig::default().challenge_ttl_ms + 1);
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
    let out = dispatch(s3_put("facegate-signup", key), &w.ports).await;
    assert!(out.is_err(), "{out:?}");
    // A photo outside the sign-up prefix is not indexed either.
    w.signup
        .put(
            "elsewhere/ana@example.com/x.jpg",
            b"x".to_vec(),
            "image/jpeg",
        )
        .await
        .unwrap();
    let out = dispatch(
        s3_put("facegate-signup", "elsewhere/ana@example.com/x.jpg"),
        &w.ports,
    )
    .await;
    assert!(out.is_err(), "{out:?}");

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
