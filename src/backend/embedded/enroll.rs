//! The administrative enrollment path of the embedded backend. All or nothing: every photo is
//! checked before anything is written, and a failure after that undoes what was done (the
//! user, their groups, faces, kept photos), so a refused enrollment leaves no one behind.
//! Photos go through the in-memory sign-up store and the Index-faces trigger, like the Lambda.

use std::collections::BTreeSet;

use aws_lambda_events::event::s3::{S3Event, S3EventRecord};
use serde::{Deserialize, Serialize};

use super::EmbeddedBackend;
use super::users::{User, normalize_username};
use crate::auth::policy::group_name_problem;
use crate::backend::triggers;
use crate::backend::{BackendError, Directory, ObjectStore};

/// One enrollment: who, from which photos, into which groups.
#[derive(Debug, Clone, Copy)]
pub struct Enrollment<'a> {
    pub username: &'a str,
    /// The display name; empty keeps an existing user's.
    pub name: &'a str,
    pub photos: &'a [Vec<u8>],
    pub groups: &'a [String],
    /// Adding faces to a user who already exists must be asked for: otherwise a typo, or a
    /// username that folds into someone else's, would add a face to another person.
    pub add_to_existing: bool,
}

/// What enrollment did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrollReport {
    pub user: User,
    pub created: bool,
    pub face_ids: Vec<String>,
    /// Other users whose faces match a photo above the threshold.
    pub warnings: Vec<String>,
    /// Photos kept sealed (only with `backend.embedded.photo_retention_days`).
    #[serde(default)]
    pub photos_kept: usize,
}

/// What to undo when an enrollment fails halfway.
#[derive(Default)]
struct Undo {
    /// The user as it was before (`None`: the enrollment created it).
    before: Option<User>,
    touched_user: bool,
    faces: Vec<String>,
    signup_keys: Vec<String>,
}

impl EmbeddedBackend {
    /// Enrolls `username`, creating the user or adding faces to an existing one.
    pub async fn enroll(
        &self,
        username: &str,
        name: &str,
        photos: &[Vec<u8>],
        groups: &[String],
    ) -> Result<EnrollReport, BackendError> {
        self.enroll_with(Enrollment {
            username,
            name,
            photos,
            groups,
            add_to_existing: true,
        })
        .await
    }

    /// Enrolls as `request` says, all or nothing.
    pub async fn enroll_with(&self, request: Enrollment<'_>) -> Result<EnrollReport, BackendError> {
        let username = normalize_username(request.username)?;
        if let Some(problem) = request.groups.iter().find_map(|g| group_name_problem(g)) {
            return Err(BackendError::Rejected(problem));
        }
        if request.photos.is_empty() {
            return Err(BackendError::Rejected(
                "enrollment needs at least one photo".into(),
            ));
        }
        let warnings = self.check_photos(&username, request.photos).await?;
        let before = self.users.get(&username)?;
        if before.is_some() && !request.add_to_existing {
            return Err(BackendError::Rejected(format!(
                "user {username} already exists: to add these faces to that person, say so \
                 (facegate enroll --add-to-existing)"
            )));
        }
        let mut undo = Undo {
            before,
            ..Undo::default()
        };
        match self.apply(&username, request, &mut undo).await {
            Ok((user, face_ids, photos_kept)) => Ok(EnrollReport {
                created: undo.before.is_none(),
                user,
                face_ids,
                warnings,
                photos_kept,
            }),
            Err(error) => {
                if let Err(undo_error) = self.undo(&username, undo).await {
                    tracing::error!(%username, %undo_error, "undoing a failed enrollment failed");
                }
                Err(error)
            }
        }
    }

    /// The embedding of every photo (nothing is written yet), and the other users each matches.
    async fn check_photos(
        &self,
        username: &str,
        photos: &[Vec<u8>],
    ) -> Result<Vec<String>, BackendError> {
        let mut warnings = Vec::new();
        for (i, photo) in photos.iter().enumerate() {
            let embedding = self
                .faces
                .enrollable_embedding(photo)
                .await
                .map_err(|e| prefix(i, e))?;
            // Another person this close makes the two ambiguous at the door.
            let rule = &self.ports.config.rule;
            let close = rule.threshold(self.faces.len()) - rule.margin();
            let nearest = self.faces.search_embedding(&embedding, 3);
            for hit in nearest.iter().filter(|h| h.similarity >= close) {
                let other = self.directory.user_of_face(&hit.face_id).await?;
                if let Some(other) = other.filter(|other| other != username) {
                    warnings.push(format!(
                        "photo {} also matches {other} (similarity {:.3})",
                        i + 1,
                        hit.similarity
                    ));
                }
            }
        }
        Ok(warnings)
    }

    async fn apply(
        &self,
        username: &str,
        request: Enrollment<'_>,
        undo: &mut Undo,
    ) -> Result<(User, Vec<String>, usize), BackendError> {
        if undo.before.is_none() {
            self.users.create(&User {
                username: username.to_string(),
                sub: uuid::Uuid::new_v4().to_string(),
                name: request.name.to_string(),
                enabled: true,
                groups: BTreeSet::new(),
                created_at_ms: self.ports.clock.now_ms(),
            })?;
        }
        undo.touched_user = true;
        let user = self.users.update(username, |u| {
            u.groups.extend(request.groups.iter().cloned());
            if !request.name.is_empty() {
                u.name = request.name.to_string();
            }
        })?;
        let mut kept = 0;
        for (i, photo) in request.photos.iter().enumerate() {
            let key = triggers::signup_key(
                &self.ports.config.signup_prefix,
                username,
                &uuid::Uuid::new_v4().to_string(),
            );
            undo.signup_keys.push(key.clone());
            self.signup.put(&key, photo.clone(), "image/jpeg").await?;
            let indexed = triggers::index_faces(&s3_event(&key), &self.ports).await;
            self.signup.delete(&key).await?;
            for face in indexed.map_err(|e| prefix(i, e))? {
                undo.faces.push(face.face_id.clone());
                if self.photo_retention_days > 0 {
                    self.photos
                        .keep(username, &face.face_id, photo, self.photo_retention_days)?;
                    kept += 1;
                }
            }
        }
        Ok((user, undo.faces.clone(), kept))
    }

    /// Puts everything back as it was before the enrollment began.
    async fn undo(&self, username: &str, undo: Undo) -> Result<(), BackendError> {
        for key in &undo.signup_keys {
            self.signup.delete(key).await?;
        }
        self.ports.faces.delete_faces(&undo.faces).await?;
        for face in &undo.faces {
            self.directory.delete_face(face).await?;
            self.photos.forget_face(username, face)?;
        }
        if undo.touched_user {
            match &undo.before {
                Some(user) => self.users.restore(user)?,
                None => {
                    self.users.delete(username)?;
                }
            }
        }
        Ok(())
    }
}

fn prefix(photo: usize, e: BackendError) -> BackendError {
    match e {
        BackendError::Rejected(reason) if !reason.starts_with("photo ") => {
            BackendError::Rejected(format!("photo {}: {reason}", photo + 1))
        }
        other => other,
    }
}

/// An S3 `ObjectCreated` event for `key`, as the sign-up bucket would send it: the key
/// URL-encoded the way S3 does (a space as `+`, a plus as `%2B`), so the trigger decodes
/// exactly the key that was stored.
fn s3_event(key: &str) -> S3Event {
    let mut record = S3EventRecord::default();
    record.event_name = Some("ObjectCreated:Put".into());
    record.s3.object.key = Some(s3_key_encode(key));
    let mut event = S3Event::default();
    event.records = vec![record];
    event
}

fn s3_key_encode(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for byte in key.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_keys_decode_to_the_stored_key() {
        for key in [
            "signup/ana+door@example.com/1.jpg",
            "signup/a b@example.com/x y.jpg",
            "signup/o'brien%@example.com/é.jpg",
        ] {
            let encoded = s3_key_encode(key);
            assert_eq!(
                triggers::url_decode(&encoded).as_deref(),
                Some(key),
                "{encoded}"
            );
        }
        assert_eq!(s3_key_encode("a+b c"), "a%2Bb+c");
    }
}
