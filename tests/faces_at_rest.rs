//! Raw faces at rest (SECURITY.md rule 13): after enrollments and sign-ins, nothing carved out
//! of the data directory decodes as a photo — not a live record, not a deleted one left in
//! sled's log, not what an earlier version wrote.

mod common;

use std::path::{Path, PathBuf};

use facegate::auth::DoorPolicy;
use facegate::backend::embedded::{EmbeddedConfig, SCHEMA_VERSION};
use facegate::clock::ManualClock;

const START_MS: u64 = 1_800_000_000_000;

/// Every file under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// What a forensic carver gets back: every JPEG or PNG signature in any file under `dir` from
/// which an image of at least 16×16 pixels decodes.
fn carve(dir: &Path) -> Vec<String> {
    let signatures: [(&[u8], image::ImageFormat); 2] = [
        (b"\xff\xd8\xff", image::ImageFormat::Jpeg),
        (b"\x89PNG\r\n\x1a\n", image::ImageFormat::Png),
    ];
    let mut found = Vec::new();
    for path in files(dir) {
        let bytes = std::fs::read(&path).unwrap();
        for (signature, format) in signatures {
            for at in 0..bytes.len().saturating_sub(signature.len()) {
                if !bytes[at..].starts_with(signature) {
                    continue;
                }
                if let Ok(image) = image::load_from_memory_with_format(&bytes[at..], format)
                    && image.width() >= 16
                    && image.height() >= 16
                {
                    found.push(format!(
                        "{} at {at}: {format:?} {}x{}",
                        path.display(),
                        image.width(),
                        image.height()
                    ));
                }
            }
        }
    }
    found
}

fn staff() -> DoorPolicy {
    DoorPolicy {
        allowed_groups: vec!["staff".into()],
    }
}

fn email(person: &str) -> String {
    format!("{}@example.com", person.replace('_', "-"))
}

#[test]
fn the_carver_finds_a_photo_hidden_among_other_bytes() {
    let Some(faces) = common::faces_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let photo = std::fs::read(common::photo(&faces, &common::people(&faces, 1)[0], 1)).unwrap();
    let mut file = vec![0x5a; 5000];
    file.extend(&photo);
    file.extend([0xa5; 5000]);
    std::fs::write(dir.path().join("db"), file).unwrap();
    assert_eq!(carve(dir.path()).len(), 1, "the test could not fail");
}

#[tokio::test]
async fn no_photo_can_be_carved_from_the_store_after_enrollments_and_sign_ins() {
    let Some(faces) = common::faces_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(START_MS);
    let Some(backend) = common::embedded(dir.path(), &clock, &EmbeddedConfig::default()) else {
        return;
    };
    let backend = std::sync::Arc::new(backend);
    let people = common::enrollable_people(&backend, &faces, 4).await;
    for (person, photo) in &people[..3] {
        backend
            .enroll(
                &email(person),
                "Someone",
                std::slice::from_ref(photo),
                &["staff".into()],
            )
            .await
            .unwrap();
    }
    let flow = common::flow(&backend, &clock);
    let mut granted = 0;
    for (person, _) in &people {
        let frame = std::fs::read(common::photo(&faces, person, 2)).unwrap();
        let decision = flow
            .authenticate(vec![frame], None, "front", &staff())
            .await
            .unwrap();
        granted += decision.granted() as usize;
        clock.advance_ms(5_000);
    }
    assert!(granted >= 2, "the sign-ins worked ({granted} granted)");
    backend.flush().unwrap();
    drop((flow, backend));
    let carved = carve(dir.path());
    assert!(
        carved.is_empty(),
        "photos carved out of the store: {carved:#?}"
    );
}

#[tokio::test]
async fn kept_enrollment_photos_are_sealed_and_purged_after_their_retention() {
    let Some(faces) = common::faces_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(START_MS);
    let config = EmbeddedConfig {
        photo_retention_days: 2,
        ..EmbeddedConfig::default()
    };
    let Some(backend) = common::embedded(dir.path(), &clock, &config) else {
        return;
    };
    let (person, photo) = common::enrollable_people(&backend, &faces, 1)
        .await
        .remove(0);
    let user = email(&person);
    let report = backend
        .enroll(&user, "Kept", std::slice::from_ref(&photo), &[])
        .await
        .unwrap();
    assert_eq!(report.photos_kept, 1);
    assert_eq!(
        backend.photos.get(&user, &report.face_ids[0]).unwrap(),
        Some(photo),
        "the operator asked for the photo to be kept"
    );
    backend.flush().unwrap();
    drop(backend);
    let carved = carve(dir.path());
    assert!(carved.is_empty(), "a kept photo is not sealed: {carved:#?}");

    clock.advance_ms(2 * 86_400_000);
    let backend = common::embedded(dir.path(), &clock, &config).unwrap();
    assert_eq!(backend.photos.count(&user), 0, "purged after its retention");
}

#[tokio::test]
async fn an_upgrade_rewrites_an_old_store_without_its_plaintext_photos_and_loses_nothing() {
    let Some(faces) = common::faces_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(START_MS);
    let config = EmbeddedConfig::default();
    let Some(backend) = common::embedded(dir.path(), &clock, &config) else {
        return;
    };
    let (person, photo) = common::enrollable_people(&backend, &faces, 1)
        .await
        .remove(0);
    let user = email(&person);
    backend
        .enroll(
            &user,
            "Old",
            std::slice::from_ref(&photo),
            &["staff".into()],
        )
        .await
        .unwrap();
    backend.flush().unwrap();
    drop(backend);
    // Make it the store version 1 left: photos written unsealed into its object trees (one
    // deleted after indexing, one frame left behind), and no schema version.
    let store = dir.path().join("backend.sled");
    {
        let db = sled::open(&store).unwrap();
        let signup = db.open_tree("objects/signup/data").unwrap();
        signup.insert("signup/x/1.jpg", photo.as_slice()).unwrap();
        db.flush().unwrap();
        signup.remove("signup/x/1.jpg").unwrap();
        let frame = std::fs::read(common::photo(&faces, &person, 2)).unwrap();
        db.open_tree("objects/signin/data")
            .unwrap()
            .insert("signin/n.jpg", frame)
            .unwrap();
        db.open_tree("schema").unwrap().remove("version").unwrap();
        db.flush().unwrap();
    }
    assert!(
        carve(dir.path()).len() >= 2,
        "the old store holds the photos"
    );

    let backend = std::sync::Arc::new(common::embedded(dir.path(), &clock, &config).unwrap());
    let probe = std::fs::read(common::photo(&faces, &person, 2)).unwrap();
    let decision = common::flow(&backend, &clock)
        .authenticate(vec![probe], None, "front", &staff())
        .await
        .unwrap();
    assert!(
        decision.granted(),
        "the user survived the upgrade: {decision:?}"
    );
    backend.flush().unwrap();
    drop(backend);
    let carved = carve(dir.path());
    assert!(
        carved.is_empty(),
        "photos left after the upgrade: {carved:#?}"
    );
    let db = sled::open(&store).unwrap();
    let version = db
        .open_tree("schema")
        .unwrap()
        .get("version")
        .unwrap()
        .unwrap();
    assert_eq!(version.as_ref(), SCHEMA_VERSION.to_be_bytes());
    assert!(!db.tree_names().iter().any(|n| n.starts_with(b"objects/")));
}
