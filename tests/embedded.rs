//! The embedded backend, end to end on real faces: who gets in, who does not, and every attack
//! of SECURITY.md's table tried and refused.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};

use facegate::auth::jwt::JwtError;
use facegate::auth::{DeviceFlow, DoorPolicy};
use facegate::backend::embedded::{EmbeddedBackend, EmbeddedConfig};
use facegate::backend::open::BackendPorts;
use facegate::backend::triggers::{self, params};
use facegate::backend::{AuthStep, BackendError, FaceIndex, IdentityProvider, ObjectStore, Tokens};
use facegate::clock::{Clock, ManualClock};
use facegate::vision::RuntimeKind;

const START_MS: u64 = 1_800_000_000_000;

struct World {
    backend: Arc<EmbeddedBackend>,
    clock: ManualClock,
    faces: std::path::PathBuf,
    people: Vec<String>,
    _dir: tempfile::TempDir,
}

fn open(dir: &Path, clock: &ManualClock) -> Option<Arc<EmbeddedBackend>> {
    let engine = common::engine(RuntimeKind::Ort)?;
    Some(Arc::new(
        EmbeddedBackend::open(
            dir,
            Arc::new(Mutex::new(engine)),
            &EmbeddedConfig::default(),
            facegate::matching::MatchingConfig::default().rule(),
            Arc::new(clock.clone()),
        )
        .unwrap(),
    ))
}

/// The device flow over `backend`, as the door runs it.
fn flow(backend: &Arc<EmbeddedBackend>, clock: &ManualClock) -> DeviceFlow {
    DeviceFlow::new(
        &BackendPorts::embedded(backend.clone()),
        Arc::new(clock.clone()),
    )
}

fn photo(w: &World, person: usize, n: usize) -> Vec<u8> {
    std::fs::read(common::photo(&w.faces, &w.people[person], n)).unwrap()
}

fn email(w: &World, person: usize) -> String {
    format!("{}@example.com", w.people[person].replace('_', "-"))
}

fn staff() -> DoorPolicy {
    DoorPolicy {
        allowed_groups: vec!["staff".into()],
    }
}

/// People 0 and 1 enrolled in `staff`, person 2 enrolled in `visitors`; 3 and up are strangers.
async fn world() -> Option<World> {
    let faces = common::faces_dir()?;
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(START_MS);
    let backend = open(dir.path(), &clock)?;
    let mut w = World {
        backend,
        clock,
        people: Vec::new(),
        faces,
        _dir: dir,
    };
    // Enroll the first three people whose first photo shows one person (LFW photos often hold
    // a second face at the edge, which enrollment rightly refuses); the others are strangers.
    let candidates = common::people(&w.faces, 12);
    let (mut enrolled, mut strangers) = (Vec::new(), Vec::new());
    for person in candidates {
        if enrolled.len() == 3 {
            strangers.push(person);
            continue;
        }
        let group = if enrolled.len() == 2 {
            "visitors"
        } else {
            "staff"
        };
        let email = format!("{}@example.com", person.replace('_', "-"));
        let photo = std::fs::read(common::photo(&w.faces, &person, 1)).unwrap();
        match w
            .backend
            .enroll(&email, "Test Person", &[photo], &[group.into()])
            .await
        {
            Ok(report) => {
                assert_eq!(report.face_ids.len(), 1);
                enrolled.push(person);
            }
            Err(BackendError::Rejected(reason)) if reason.contains("faces in the photo") => {
                strangers.push(person)
            }
            Err(e) => panic!("enrolling {person}: {e}"),
        }
    }
    assert_eq!(
        enrolled.len(),
        3,
        "three people with a one-face photo among the first twelve"
    );
    w.people = enrolled.into_iter().chain(strangers).collect();
    Some(w)
}

/// Puts photo `n` of `person` into the sign-in store under `key`, as a device would.
async fn upload(w: &World, key: &str, person: usize, n: usize) {
    w.backend
        .signin
        .put(key, photo(w, person, n), "image/jpeg")
        .await
        .unwrap();
}

async fn challenge(w: &World, user: &str) -> (String, String) {
    match w.backend.pool.initiate_custom_auth(user).await.unwrap() {
        AuthStep::Challenge {
            session,
            parameters,
        } => (session, parameters[params::UPLOAD_KEY].clone()),
        AuthStep::Tokens(_) => panic!("tokens without a challenge"),
    }
}

/// Signs enrolled `person` in with their second photo and returns the tokens.
async fn sign_in(w: &World, person: usize) -> Tokens {
    let user = email(w, person);
    let (session, key) = challenge(w, &user).await;
    upload(w, &key, person, 2).await;
    match w
        .backend
        .pool
        .respond_to_challenge(&user, &session, &key)
        .await
    {
        Ok(AuthStep::Tokens(tokens)) => tokens,
        other => panic!("no tokens: {other:?}"),
    }
}

#[tokio::test]
async fn the_right_people_get_in_and_no_one_else() {
    let Some(w) = world().await else { return };
    let flow = flow(&w.backend, &w.clock);
    // Enrolled, a different photo, identified 1:N.
    let d = flow
        .authenticate(vec![photo(&w, 0, 2)], None, "front", &staff())
        .await
        .unwrap();
    assert!(d.granted(), "{d:?}");
    assert_eq!(d.user.as_deref(), Some(email(&w, 0).as_str()));
    assert!(d.similarity.unwrap() >= 0.363);
    assert_eq!(
        d.claims.as_ref().unwrap().username(),
        Some(email(&w, 0).as_str())
    );
    // Claimed username, right face.
    let d = flow
        .authenticate(
            vec![photo(&w, 1, 2)],
            Some(&email(&w, 1)),
            "front",
            &staff(),
        )
        .await
        .unwrap();
    assert!(d.granted(), "{d:?}");
    // The same name claimed in other letter case is the same person, named as enrolled.
    let shouted = email(&w, 1).to_uppercase();
    let d = flow
        .authenticate(vec![photo(&w, 1, 2)], Some(&shouted), "front", &staff())
        .await
        .unwrap();
    assert!(d.granted(), "{shouted}: {d:?}");
    assert_eq!(d.user.as_deref(), Some(email(&w, 1).as_str()));
    // A stranger.
    let d = flow
        .authenticate(vec![photo(&w, 4, 1)], None, "front", &staff())
        .await
        .unwrap();
    assert!(!d.granted(), "{d:?}");
    // A stranger claiming an enrolled user's name.
    let d = flow
        .authenticate(
            vec![photo(&w, 4, 1)],
            Some(&email(&w, 0)),
            "front",
            &staff(),
        )
        .await
        .unwrap();
    assert!(!d.granted(), "{d:?}");
    // Enrolled, but not in a group this door admits.
    let d = flow
        .authenticate(vec![photo(&w, 2, 2)], None, "front", &staff())
        .await
        .unwrap();
    assert!(!d.granted());
    assert!(d.reason.contains("not in a group"), "{}", d.reason);
    // Disabled.
    w.backend
        .users
        .update(&email(&w, 1), |u| u.enabled = false)
        .unwrap();
    let d = flow
        .authenticate(vec![photo(&w, 1, 2)], None, "front", &staff())
        .await
        .unwrap();
    assert!(!d.granted(), "a disabled user got in: {d:?}");
}

#[tokio::test]
async fn answers_that_are_not_the_issued_key_are_refused() {
    let Some(w) = world().await else { return };
    let user = email(&w, 0);
    let pool = &w.backend.pool;
    // The enrollment photo's key (sign-up store) as the answer.
    let (session, _) = challenge(&w, &user).await;
    let signup_key = triggers::signup_key("signup/", &user, "id-photo");
    w.backend
        .signup
        .put(&signup_key, photo(&w, 0, 1), "image/jpeg")
        .await
        .unwrap();
    assert!(matches!(
        pool.respond_to_challenge(&user, &session, &signup_key)
            .await,
        Ok(AuthStep::Challenge { .. })
    ));
    // Another session's key, with the right face uploaded under it.
    let (session_a, key_a) = challenge(&w, &user).await;
    let (session_b, _) = challenge(&w, &user).await;
    upload(&w, &key_a, 0, 2).await;
    assert!(matches!(
        pool.respond_to_challenge(&user, &session_b, &key_a).await,
        Ok(AuthStep::Challenge { .. })
    ));
    // Session A itself still works once: the key is A's.
    assert!(matches!(
        pool.respond_to_challenge(&user, &session_a, &key_a).await,
        Ok(AuthStep::Tokens(_))
    ));
    // Re-use of A's key in a new session, re-uploaded.
    let (session_c, _) = challenge(&w, &user).await;
    upload(&w, &key_a, 0, 2).await;
    assert!(matches!(
        pool.respond_to_challenge(&user, &session_c, &key_a).await,
        Ok(AuthStep::Challenge { .. })
    ));
}

#[tokio::test]
async fn a_frame_is_used_once_and_a_session_is_single_use() {
    let Some(w) = world().await else { return };
    let user = email(&w, 0);
    let pool = &w.backend.pool;
    let (session, key) = challenge(&w, &user).await;
    upload(&w, &key, 0, 2).await;
    assert!(matches!(
        pool.respond_to_challenge(&user, &session, &key).await,
        Ok(AuthStep::Tokens(_))
    ));
    assert_eq!(
        w.backend.signin.head(&key).await.unwrap(),
        None,
        "the frame is deleted after use"
    );
    // Replaying the session, even with the frame put back.
    upload(&w, &key, 0, 2).await;
    let replay = pool.respond_to_challenge(&user, &session, &key).await;
    assert!(matches!(replay, Err(BackendError::Denied(_))), "{replay:?}");
    // A session issued to one user answered as another.
    let (session, key) = challenge(&w, &user).await;
    upload(&w, &key, 1, 2).await;
    let swapped = pool
        .respond_to_challenge(&email(&w, 1), &session, &key)
        .await;
    assert!(
        matches!(swapped, Err(BackendError::Denied(_))),
        "{swapped:?}"
    );
}

#[tokio::test]
async fn oversized_and_late_and_early_frames_are_refused() {
    let Some(w) = world().await else { return };
    let user = email(&w, 0);
    let pool = &w.backend.pool;
    // Oversized, under the right key.
    let (session, key) = challenge(&w, &user).await;
    let mut big = photo(&w, 0, 2);
    big.resize(3 * 1024 * 1024, 0);
    w.backend.signin.put(&key, big, "image/jpeg").await.unwrap();
    assert!(matches!(
        pool.respond_to_challenge(&user, &session, &key).await,
        Ok(AuthStep::Challenge { .. })
    ));
    // Expired: answered after the 3-minute session.
    let (session, key) = challenge(&w, &user).await;
    w.clock.advance_ms(3 * 60 * 1000 + 1);
    upload(&w, &key, 0, 2).await;
    let late = pool.respond_to_challenge(&user, &session, &key).await;
    assert!(
        matches!(late, Err(BackendError::Denied(ref m)) if m.contains("expired")),
        "{late:?}"
    );
    // Uploaded before the challenge was issued (Verify, directly: keys are unguessable).
    let key = "signin/planted.jpg";
    upload(&w, key, 0, 2).await;
    w.clock.advance_ms(1000);
    let mut event =
        aws_lambda_events::event::cognito::CognitoEventUserPoolsVerifyAuthChallenge::default();
    event.cognito_event_user_pools_header.user_name = Some(user.clone());
    event.request.private_challenge_parameters = [
        (params::UPLOAD_KEY.to_string(), key.to_string()),
        (params::NONCE.to_string(), "planted".to_string()),
        (params::VERDICT_ID.to_string(), "planted".to_string()),
        (params::ISSUED_AT.to_string(), w.clock.now_ms().to_string()),
    ]
    .into_iter()
    .collect();
    event.request.challenge_answer = Some(serde_json::json!(key));
    let verdict = triggers::verify_auth_challenge(event.clone(), &w.backend.ports).await;
    assert!(
        !verdict.response.answer_correct,
        "a frame planted before the challenge passed"
    );
    // The same event with the frame uploaded after the challenge passes: the check is the timing.
    upload(&w, key, 0, 2).await;
    event
        .request
        .private_challenge_parameters
        .insert(params::NONCE.to_string(), "fresh".to_string());
    // A challenge of its own: its verdict is filed apart from the planted one's.
    event
        .request
        .private_challenge_parameters
        .insert(params::VERDICT_ID.to_string(), "fresh".to_string());
    event.request.private_challenge_parameters.insert(
        params::ISSUED_AT.to_string(),
        (w.clock.now_ms() - 1).to_string(),
    );
    let verdict = triggers::verify_auth_challenge(event, &w.backend.ports).await;
    assert!(verdict.response.answer_correct);
}

#[tokio::test]
async fn three_wrong_answers_end_the_session() {
    let Some(w) = world().await else { return };
    let user = email(&w, 0);
    let pool = &w.backend.pool;
    let (mut session, mut key) = challenge(&w, &user).await;
    for attempt in 1..=3 {
        upload(&w, &key, 4, 1).await;
        match pool.respond_to_challenge(&user, &session, &key).await {
            Ok(AuthStep::Challenge {
                session: s,
                parameters,
            }) if attempt < 3 => {
                assert_ne!(
                    parameters[params::UPLOAD_KEY],
                    key,
                    "each round has a new key"
                );
                session = s;
                key = parameters[params::UPLOAD_KEY].clone();
            }
            Err(BackendError::Denied(_)) if attempt == 3 => {}
            other => panic!("attempt {attempt}: {other:?}"),
        }
    }
    // A fourth answer on the last session, with the right face: refused.
    upload(&w, &key, 0, 2).await;
    assert!(matches!(
        pool.respond_to_challenge(&user, &session, &key).await,
        Err(BackendError::Denied(_))
    ));
}

#[tokio::test]
async fn unknown_users_get_the_same_challenge_shape_and_never_tokens() {
    let Some(w) = world().await else { return };
    let pool = &w.backend.pool;
    let known = pool.initiate_custom_auth(&email(&w, 0)).await.unwrap();
    let unknown = pool
        .initiate_custom_auth("nobody@example.com")
        .await
        .unwrap();
    let keys = |step: &AuthStep| match step {
        AuthStep::Challenge { parameters, .. } => {
            let mut k: Vec<_> = parameters.keys().cloned().collect();
            k.sort();
            k
        }
        AuthStep::Tokens(_) => panic!("tokens"),
    };
    assert_eq!(keys(&known), keys(&unknown));
    let AuthStep::Challenge {
        session,
        parameters,
    } = unknown
    else {
        unreachable!()
    };
    let key = &parameters[params::UPLOAD_KEY];
    upload(&w, key, 0, 2).await;
    let outcome = pool
        .respond_to_challenge("nobody@example.com", &session, key)
        .await;
    assert!(
        matches!(outcome, Ok(AuthStep::Challenge { .. })),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn the_face_index_compares_one_to_one() {
    let Some(w) = world().await else { return };
    let same = w
        .backend
        .faces
        .compare(&photo(&w, 0, 1), &photo(&w, 0, 2))
        .await
        .unwrap();
    let different = w
        .backend
        .faces
        .compare(&photo(&w, 0, 1), &photo(&w, 1, 1))
        .await
        .unwrap();
    assert!(
        same >= 0.363 && different < 0.363,
        "same {same}, different {different}"
    );
    let brick = std::fs::read(w.faces.join("nonface/skimage_brick.png")).unwrap();
    assert!(matches!(
        w.backend.faces.compare(&photo(&w, 0, 1), &brick).await,
        Err(BackendError::Rejected(_))
    ));
}

#[tokio::test]
async fn enrollment_refuses_bad_photos_and_keeps_nothing() {
    let Some(w) = world().await else { return };
    let brick = std::fs::read(w.faces.join("nonface/skimage_brick.png")).unwrap();
    let err = w
        .backend
        .enroll("new@example.com", "New", &[photo(&w, 0, 1), brick], &[])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("photo 2: no face"), "{err}");
    assert!(
        w.backend.users.get("new@example.com").unwrap().is_none(),
        "a refused enrollment left a user"
    );
    let err = w
        .backend
        .enroll("new@example.com", "New", &[b"not an image".to_vec()], &[])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("photo 1"), "{err}");
    // No raw photo stays in the sign-up store after the successful enrollments of `world`.
    assert!(w.backend.signup.keys("signup/").unwrap().is_empty());
    // Enrolling someone whose face is already enrolled under another name warns.
    let report = w
        .backend
        .enroll("twin@example.com", "Twin", &[photo(&w, 0, 1)], &[])
        .await
        .unwrap();
    assert!(
        report.warnings.iter().any(|m| m.contains(&email(&w, 0))),
        "{:?}",
        report.warnings
    );
}

#[tokio::test]
async fn refresh_works_while_enabled_and_stops_when_disabled() {
    let Some(w) = world().await else { return };
    let user = email(&w, 0);
    let tokens = sign_in(&w, 0).await;
    let refresh = tokens.refresh_token.unwrap();
    let renewed = w.backend.pool.refresh(&user, &refresh).await.unwrap();
    let flow = flow(&w.backend, &w.clock);
    assert!(
        flow.verify_tokens(&renewed.id_token, &renewed.access_token)
            .await
            .unwrap()
            .is_ok()
    );
    assert!(
        w.backend
            .pool
            .refresh(&email(&w, 1), &refresh)
            .await
            .is_err(),
        "another user's refresh token"
    );
    w.backend
        .users
        .update(&user, |u| u.enabled = false)
        .unwrap();
    assert!(matches!(
        w.backend.pool.refresh(&user, &refresh).await,
        Err(BackendError::Denied(_))
    ));
}

#[tokio::test]
async fn users_faces_and_keys_survive_a_restart() {
    let Some(faces) = common::faces_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(START_MS);
    let people = common::people(&faces, 1);
    let enrolled = std::fs::read(common::photo(&faces, &people[0], 1)).unwrap();
    let probe = std::fs::read(common::photo(&faces, &people[0], 2)).unwrap();
    let kid = {
        let Some(backend) = open(dir.path(), &clock) else {
            return;
        };
        backend
            .enroll("ana@example.com", "Ana", &[enrolled], &["staff".into()])
            .await
            .unwrap();
        let kid = backend.pool.jwks().keys[0].kid.clone();
        backend.flush().unwrap();
        kid
    };
    let backend = open(dir.path(), &clock).unwrap();
    assert_eq!(
        backend.pool.jwks().keys[0].kid,
        kid,
        "the signing key persists"
    );
    let d = flow(&backend, &clock)
        .authenticate(vec![probe], None, "front", &staff())
        .await
        .unwrap();
    assert!(d.granted(), "{d:?}");
    assert_eq!(d.user.as_deref(), Some("ana@example.com"));
}

#[tokio::test]
async fn a_rotated_signing_key_replaces_the_old_one_and_its_tokens_stop_verifying() {
    let Some(w) = world().await else { return };
    let user = email(&w, 0);
    let old = sign_in(&w, 0).await;
    let old_kid = w.backend.pool.jwks().keys[0].kid.clone();
    let rotated = w.backend.rotate_signing_key().unwrap();
    assert_eq!(rotated.keys.len(), 1, "only the new key is published");
    assert_ne!(rotated.keys[0].kid, old_kid);

    let World {
        backend,
        clock,
        _dir,
        ..
    } = w;
    drop(backend);
    let reopened = open(_dir.path(), &clock).unwrap();
    assert_eq!(reopened.pool.jwks().keys[0].kid, rotated.keys[0].kid);
    let flow = flow(&reopened, &clock);
    let verdict = flow.verify_tokens(&old.id_token, &old.access_token).await;
    assert!(
        matches!(verdict, Ok(Err(JwtError::UnknownKey(ref kid))) if *kid == old_kid),
        "a token signed with the old key must be refused as of an unknown key: {verdict:?}"
    );
    let renewed = reopened
        .pool
        .refresh(&user, old.refresh_token.as_deref().unwrap())
        .await
        .expect("refresh tokens outlive the rotation");
    assert!(matches!(
        flow.verify_tokens(&renewed.id_token, &renewed.access_token)
            .await,
        Ok(Ok(_))
    ));
}

/// One full session answered with a stranger's face until the pool ends it; returns how many
/// answers were given.
async fn wrong_session(w: &World, user: &str) -> usize {
    let pool = &w.backend.pool;
    let (mut session, mut key) = challenge(w, user).await;
    for answers in 1.. {
        upload(w, &key, 4, 1).await;
        match pool.respond_to_challenge(user, &session, &key).await {
            Ok(AuthStep::Challenge {
                session: s,
                parameters,
            }) => {
                session = s;
                key = parameters[params::UPLOAD_KEY].clone();
            }
            Err(BackendError::Denied(_)) => return answers,
            other => panic!("a stranger's face: {other:?}"),
        }
    }
    unreachable!()
}

/// The right face, answered in a fresh session: granted or not.
async fn right_face(w: &World, user: &str) -> bool {
    let (session, key) = challenge(w, user).await;
    upload(w, &key, 0, 2).await;
    matches!(
        w.backend
            .pool
            .respond_to_challenge(user, &session, &key)
            .await,
        Ok(AuthStep::Tokens(_))
    )
}

#[tokio::test]
async fn a_user_with_too_many_failed_answers_is_locked_out_for_a_while() {
    let Some(w) = world().await else { return };
    let user = email(&w, 0);
    let limit = EmbeddedConfig::default().lockout_failures;
    // Someone talking to the pool directly (no door in between) tries a stranger's face.
    let mut failed = 0;
    while failed < limit {
        failed += wrong_session(&w, &user).await;
        w.clock.advance_ms(1_000);
    }
    assert!(failed >= limit);
    // Locked: even the right face is refused, with the same answer as a wrong one.
    assert!(!right_face(&w, &user).await, "a locked-out user got in");
    let (session, key) = challenge(&w, &user).await;
    upload(&w, &key, 0, 2).await;
    match w
        .backend
        .pool
        .respond_to_challenge(&user, &session, &key)
        .await
    {
        Ok(AuthStep::Challenge { parameters, .. }) => {
            assert!(
                parameters.contains_key(params::UPLOAD_KEY),
                "the usual shape"
            )
        }
        other => panic!("a locked-out answer has the shape of a wrong one: {other:?}"),
    }
    // Other users are not affected.
    let other = email(&w, 1);
    let (session, key) = challenge(&w, &other).await;
    upload(&w, &key, 1, 2).await;
    assert!(matches!(
        w.backend
            .pool
            .respond_to_challenge(&other, &session, &key)
            .await,
        Ok(AuthStep::Tokens(_))
    ));
    // Once the failures age out of the window, the right face gets in again; trying while
    // locked did not extend the lockout.
    let window_ms = EmbeddedConfig::default().lockout_window_secs * 1000;
    w.clock.advance_ms(window_ms);
    assert!(right_face(&w, &user).await, "the lockout ends");
}

/// Every byte of every file under `dir`, but the sealing key's.
fn raw_files(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(raw_files(&path));
        } else if path.file_name() != Some(std::ffi::OsStr::new("secret.key")) {
            out.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

#[tokio::test]
async fn the_face_index_and_signing_key_are_sealed_on_disk() {
    use facegate::backend::embedded::tokens::{Issuer, TokenSigner};
    use std::os::unix::fs::PermissionsExt;
    let Some(faces) = common::faces_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let clock = ManualClock::at(START_MS);
    let Some(backend) = open(&data, &clock) else {
        return;
    };
    let people = common::people(&faces, 8);
    let (mut photo, mut enrolled) = (Vec::new(), false);
    for person in &people {
        photo = std::fs::read(common::photo(&faces, person, 1)).unwrap();
        if backend
            .enroll(
                "ana@example.com",
                "Ana",
                &[photo.clone()],
                &["staff".into()],
            )
            .await
            .is_ok()
        {
            enrolled = true;
            break;
        }
    }
    assert!(enrolled, "nobody enrollable among {people:?}");
    // What enrollment stores, computed again (deterministic: asked twice, same bytes).
    let embedding = backend.faces.enrollable_embedding(&photo).await.unwrap();
    let again = backend.faces.enrollable_embedding(&photo).await.unwrap();
    let plain = embedding.to_bytes();
    assert_eq!(plain, again.to_bytes(), "the embedding is not reproducible");
    let published = backend.pool.jwks();
    backend.flush().unwrap();
    drop(backend);

    // The sealing key is private, and so is the directory.
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data.join("secret.key")), 0o600);
    assert_eq!(mode(&data), 0o700);
    // No file holds the embedding (any 32 of its bytes) in the clear.
    let needles: Vec<&[u8]> = plain.chunks(32).filter(|c| c.len() == 32).collect();
    for (path, bytes) in raw_files(&data) {
        for needle in &needles {
            assert!(
                !bytes.windows(32).any(|w| w == *needle),
                "{} holds the face embedding in the clear",
                path.display()
            );
        }
    }
    // No stored value holds the signing key: no 32 bytes of any value sign for the published
    // key. (The sled files are scanned value by value: every tree, every record.)
    let db = sled::open(data.join("backend.sled")).unwrap();
    let issuer = Issuer {
        issuer: String::new(),
        client_id: String::new(),
        token_validity_secs: 0,
    };
    let mut values = 0;
    for name in db.tree_names() {
        for entry in db.open_tree(&name).unwrap().iter() {
            let (_, value) = entry.unwrap();
            values += 1;
            for window in value.windows(32) {
                let signer = TokenSigner::from_secret(window, issuer.clone());
                assert!(
                    signer.is_none_or(|s| s.jwks().keys[0].kid != published.keys[0].kid),
                    "the signing key is stored in the clear in tree {:?}",
                    String::from_utf8_lossy(&name)
                );
            }
        }
    }
    assert!(values >= 3, "only {values} records: the scan saw nothing");
}
