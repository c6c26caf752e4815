//! Who is who. Deleting a person removes every trace, and a user created again under the same
//! name is someone else; a username cannot fold into another person's; enrollment is all or
//! nothing, also for a username with a `+`.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use facegate::admin::{Admin, Reply, Request};
use facegate::auth::DoorPolicy;
use facegate::backend::embedded::erase::rewrite_stores;
use facegate::backend::embedded::{EmbeddedConfig, Enrollment};
use facegate::backend::{BackendError, Directory, FaceIndex, FaceMatch, IdentityProvider};
use facegate::clock::{Clock, ManualClock};
use facegate::store::Sealer;
use facegate::store::grants::{Grant, GrantStore};

const START_MS: u64 = 1_800_000_000_000;

fn staff() -> DoorPolicy {
    DoorPolicy {
        allowed_groups: vec!["staff".into()],
    }
}

/// Every value of every tree of the sled store at `path` (which must not be open).
fn values(path: &Path) -> Vec<Vec<u8>> {
    let db = sled::open(path).unwrap();
    let mut out = Vec::new();
    for name in db.tree_names() {
        for entry in db.open_tree(&name).unwrap().iter() {
            let (key, value) = entry.unwrap();
            out.push(key.to_vec());
            out.push(value.to_vec());
        }
    }
    out
}

/// Whether any file under `dir` holds `needle`.
fn on_disk(dir: &Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().any(|e| {
        let path = e.unwrap().path();
        if path.is_dir() {
            on_disk(&path, needle)
        } else {
            let bytes = std::fs::read(&path).unwrap();
            bytes.windows(needle.len()).any(|w| w == needle)
        }
    })
}

#[tokio::test]
async fn deleting_a_person_removes_every_trace_and_their_name_does_not_revive_old_grants() {
    let Some(faces) = common::faces_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(START_MS);
    let config = EmbeddedConfig {
        photo_retention_days: 30,
        ..EmbeddedConfig::default()
    };
    let Some(backend) = common::embedded(dir.path(), &clock, &config) else {
        return;
    };
    let backend = Arc::new(backend);
    let people = common::enrollable_people(&backend, &faces, 3).await;
    let (ana, ben) = ("ana@example.com", "ben@example.com");
    backend
        .enroll(ana, "Ana", &[people[0].1.clone()], &["staff".into()])
        .await
        .unwrap();
    backend
        .enroll(ben, "Ben", &[people[1].1.clone()], &["staff".into()])
        .await
        .unwrap();
    let frame = std::fs::read(common::photo(&faces, &people[0].0, 2)).unwrap();
    let decision = common::flow(&backend, &clock)
        .authenticate(vec![frame], None, "front", &staff())
        .await
        .unwrap();
    assert!(decision.granted(), "{decision:?}");
    let refresh = decision.refresh_token.clone().expect("a refresh token");
    // The door keeps an offline grant for Ana, as the daemon does after an online success.
    {
        let db = sled::open(dir.path().join("daemon.sled")).unwrap();
        let sealer = Arc::new(Sealer::open_or_create(dir.path()).unwrap());
        GrantStore::open(&db, sealer)
            .unwrap()
            .record(&Grant {
                username: ana.into(),
                groups: vec!["staff".into()],
                online_at_ms: clock.now_ms(),
                embedding: vec![7; 512],
                refresh_token: Some(refresh.clone()),
                tokens_expire_at_secs: clock.now_secs() + 3600,
            })
            .unwrap();
        db.flush().unwrap();
    }
    backend.flush().unwrap();
    drop(backend);
    // Every record as stored before the deletion: Ana's are among them.
    let before: Vec<Vec<u8>> = values(&dir.path().join("backend.sled"))
        .into_iter()
        .chain(values(&dir.path().join("daemon.sled")))
        .filter(|v| v.len() >= 32)
        .collect();

    // What `facegate users delete` does with the service stopped: the administration handler
    // on the stores, then both stores rewritten.
    let backend = Arc::new(common::embedded(dir.path(), &clock, &config).unwrap());
    let reply = {
        let db = sled::open(dir.path().join("daemon.sled")).unwrap();
        let sealer = Arc::new(Sealer::open_or_create(dir.path()).unwrap());
        let admin = Admin::new(backend, Some(GrantStore::open(&db, sealer).unwrap()));
        let reply = admin.handle(Request::DeleteUser {
            user: "Ana@Example.com".into(),
        });
        reply.await.unwrap()
    };
    let Reply::Deleted {
        offline_grant,
        removed,
        ..
    } = reply
    else {
        panic!("not deleted: {reply:?}");
    };
    assert_eq!(
        (removed.faces, removed.photos, offline_grant),
        (1, 1, true),
        "{removed:?}"
    );
    assert!(removed.refresh_tokens >= 1, "{removed:?}");
    rewrite_stores(dir.path()).unwrap();

    let backend = common::embedded(dir.path(), &clock, &config).unwrap();
    assert!(backend.users.get(ben).unwrap().is_some(), "Ben stays");
    assert_eq!(backend.photos.count(ben), 1, "Ben's kept photo stays");
    assert!(backend.users.get(ana).unwrap().is_none());
    assert!(
        backend
            .directory
            .faces_of_user(ana)
            .await
            .unwrap()
            .is_empty()
    );
    // A new Ana (another person's face) does not inherit the old Ana's refresh token.
    backend
        .enroll(ana, "New Ana", &[people[2].1.clone()], &["staff".into()])
        .await
        .unwrap();
    let revived = backend.pool.refresh(ana, &refresh).await;
    assert!(
        matches!(revived, Err(BackendError::Denied(_))),
        "the deleted user's refresh token works again: {revived:?}"
    );
    backend.flush().unwrap();
    drop(backend);
    let kept: Vec<Vec<u8>> = values(&dir.path().join("backend.sled"))
        .into_iter()
        .chain(values(&dir.path().join("daemon.sled")))
        .collect();
    // Nothing of the deleted person is left in any file, live or in the log: every record
    // that existed before and is not still live (Ben's, the keys) is gone from the disk.
    for record in before.iter().filter(|r| !kept.contains(r)) {
        assert!(
            !on_disk(dir.path(), record),
            "a deleted record ({} bytes) is still on disk",
            record.len()
        );
    }
}

#[test]
fn users_delete_says_what_it_removed() {
    let (Some(faces), Some(_)) = (common::faces_dir(), common::model_dir()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let person = &common::people(&faces, 1)[0];
    let photo = common::photo(&faces, person, 1);
    let out = common::facegate(&[
        "--data",
        data,
        "enroll",
        "--user",
        "ana@example.com",
        "--photo",
        photo.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = common::facegate(&["--data", data, "users", "delete", "ana@example.com"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "1 face(s) with their embeddings",
        "refresh token",
        "rewritten",
    ] {
        assert!(said.contains(needle), "{needle:?} in {said}");
    }
    let out = common::facegate(&["--data", data, "users", "delete", "ana@example.com"]);
    assert_eq!(out.status.code(), Some(2), "a second delete finds no one");
}

#[test]
fn a_kelvin_sign_cannot_add_a_face_to_kim() {
    let (Some(faces), Some(_)) = (common::faces_dir(), common::model_dir()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let people = common::people(&faces, 2);
    let enroll = |user: &str, person: &str, extra: &[&str]| {
        let photo = common::photo(&faces, person, 1);
        let mut args = vec!["--data", data, "enroll", "--user", user, "--photo"];
        args.push(photo.to_str().unwrap());
        args.extend_from_slice(extra);
        common::facegate(&args)
    };
    let out = enroll("kim@example.com", &people[0], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // U+212A KELVIN SIGN folds into `k`: this would add the second person's face to kim.
    let out = enroll("\u{212a}im@example.com", &people[1], &[]);
    common::assert_clear_error(&out, "U+212A");
    let out = enroll("\u{212a}im@example.com", &people[1], &["--add-to-existing"]);
    common::assert_clear_error(&out, "U+212A");
    // The same username again is refused unless the operator says it is the same person.
    let out = enroll("KIM@example.com", &people[1], &[]);
    common::assert_clear_error(&out, "--add-to-existing");
    let show = common::facegate(&["--data", data, "users", "show", "kim@example.com", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(
        json["face_ids"].as_array().unwrap().len(),
        1,
        "kim still has one face"
    );
    let out = enroll("kim@example.com", &people[0], &["--add-to-existing"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_username_with_a_plus_is_enrolled_with_its_face() {
    let Some(faces) = common::faces_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(START_MS);
    let Some(backend) = common::embedded(dir.path(), &clock, &EmbeddedConfig::default()) else {
        return;
    };
    let backend = Arc::new(backend);
    let (person, photo) = common::enrollable_people(&backend, &faces, 1)
        .await
        .remove(0);
    let user = "ana+door@example.com";
    let report = backend
        .enroll(user, "Ana", &[photo], &["staff".into()])
        .await;
    let report = report.expect("a plus is a valid e-mail character");
    assert_eq!(report.face_ids.len(), 1);
    assert_eq!(
        backend.directory.faces_of_user(user).await.unwrap(),
        report.face_ids
    );
    let frame = std::fs::read(common::photo(&faces, &person, 2)).unwrap();
    let decision = common::flow(&backend, &clock)
        .authenticate(vec![frame], None, "front", &staff())
        .await;
    assert_eq!(decision.unwrap().user.as_deref(), Some(user));
}

/// A face index whose `index_face` fails from the `fail_from`-th call on: an enrollment that
/// breaks halfway.
struct BreaksHalfway {
    inner: Arc<dyn FaceIndex>,
    calls: AtomicUsize,
    fail_from: usize,
}

#[async_trait]
impl FaceIndex for BreaksHalfway {
    async fn index_face(&self, image: &[u8], external_id: &str) -> Result<String, BackendError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) + 1 >= self.fail_from {
            return Err(BackendError::Unavailable("the index broke halfway".into()));
        }
        self.inner.index_face(image, external_id).await
    }
    async fn search_by_image(
        &self,
        image: &[u8],
        n: usize,
    ) -> Result<Vec<FaceMatch>, BackendError> {
        self.inner.search_by_image(image, n).await
    }
    async fn compare(&self, a: &[u8], b: &[u8]) -> Result<f32, BackendError> {
        self.inner.compare(a, b).await
    }
    async fn delete_faces(&self, ids: &[String]) -> Result<(), BackendError> {
        self.inner.delete_faces(ids).await
    }
    async fn face_count(&self) -> Result<usize, BackendError> {
        self.inner.face_count().await
    }
}

#[tokio::test]
async fn an_enrollment_that_fails_halfway_leaves_no_user_group_face_or_photo_behind() {
    let Some(faces) = common::faces_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(START_MS);
    let config = EmbeddedConfig {
        photo_retention_days: 30,
        ..EmbeddedConfig::default()
    };
    let Some(mut backend) = common::embedded(dir.path(), &clock, &config) else {
        return;
    };
    let people = common::enrollable_people(&backend, &faces, 3).await;
    let existing = backend
        .enroll(
            "ben@example.com",
            "Ben",
            &[people[1].1.clone()],
            &["visitors".into()],
        )
        .await
        .unwrap();
    backend.ports.faces = Arc::new(BreaksHalfway {
        inner: backend.ports.faces.clone(),
        calls: AtomicUsize::new(0),
        fail_from: 2,
    });
    let photos = [people[0].1.clone(), people[2].1.clone()];
    // A new user: the first photo is indexed, the second fails.
    let staff = ["staff".to_string()];
    let request = |username| Enrollment {
        username,
        name: "Someone",
        photos: &photos,
        groups: &staff,
        add_to_existing: true,
    };
    assert!(
        backend
            .enroll_with(request("ana@example.com"))
            .await
            .is_err()
    );
    assert!(
        backend.users.get("ana@example.com").unwrap().is_none(),
        "a user was left behind"
    );
    assert!(
        backend
            .directory
            .faces_of_user("ana@example.com")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(backend.photos.count("ana@example.com"), 0);
    assert_eq!(backend.faces.len(), 1, "only Ben's face is indexed");
    // An existing user: their record, groups and faces are as before.
    backend.ports.faces = Arc::new(BreaksHalfway {
        inner: Arc::new(backend.faces.clone()),
        calls: AtomicUsize::new(0),
        fail_from: 2,
    });
    assert!(
        backend
            .enroll_with(request("ben@example.com"))
            .await
            .is_err()
    );
    let ben = backend.users.get("ben@example.com").unwrap().unwrap();
    assert_eq!(ben, existing.user, "Ben's record (groups, name) changed");
    assert_eq!(
        backend
            .directory
            .faces_of_user("ben@example.com")
            .await
            .unwrap(),
        existing.face_ids
    );
    assert_eq!(backend.photos.count("ben@example.com"), 1);
    assert_eq!(backend.faces.len(), 1);
}

#[tokio::test]
async fn a_person_deleted_while_the_service_runs_leaves_the_disk_at_its_next_start() {
    let Some(faces) = common::faces_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(START_MS);
    let config = EmbeddedConfig::default();
    let Some(backend) = common::embedded(dir.path(), &clock, &config) else {
        return;
    };
    let people = common::enrollable_people(&backend, &faces, 2).await;
    backend
        .enroll("ana@example.com", "Ana", &[people[0].1.clone()], &[])
        .await
        .unwrap();
    backend
        .enroll("ben@example.com", "Ben", &[people[1].1.clone()], &[])
        .await
        .unwrap();
    backend.flush().unwrap();
    drop(backend);
    let store = dir.path().join("backend.sled");
    let before: Vec<Vec<u8>> = values(&store)
        .into_iter()
        .filter(|v| v.len() >= 32)
        .collect();
    // The running service deletes Ana: it holds the store, so it cannot rewrite it now.
    let backend = Arc::new(common::embedded(dir.path(), &clock, &config).unwrap());
    let admin = Admin::new(backend, None);
    let reply = admin
        .handle(Request::DeleteUser {
            user: "ana@example.com".into(),
        })
        .await;
    assert!(
        matches!(
            reply,
            Ok(Reply::Deleted {
                rewritten: false,
                ..
            })
        ),
        "{reply:?}"
    );
    drop(admin);
    let kept = values(&store);
    let gone: Vec<&Vec<u8>> = before.iter().filter(|r| !kept.contains(r)).collect();
    assert!(!gone.is_empty(), "nothing of Ana's was deleted");
    assert!(
        gone.iter().any(|r| on_disk(dir.path(), r)),
        "sled dropped the deleted records by itself: this test would not see the rewrite"
    );
    // The next start (any open of the store) rewrites it.
    let backend = common::embedded(dir.path(), &clock, &config).unwrap();
    assert!(backend.users.get("ben@example.com").unwrap().is_some());
    drop(backend);
    for record in &gone {
        assert!(
            !on_disk(dir.path(), record),
            "a deleted record ({} bytes) is still on disk",
            record.len()
        );
    }
}
