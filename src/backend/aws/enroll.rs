//! Enrollment against AWS: the user is created in the pool (no usable password), added to
//! groups, and each photo — checked on this device first, so a bad photo is refused with the
//! reason before anything is stored — is uploaded to the admin-only sign-up bucket under
//! `signup/USER/ID.jpg`. The index-faces Lambda links the FaceId to the user from that key
//! (never from uploader metadata); this waits for the links to appear in the directory.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::AwsBackend;
use crate::auth::policy::group_name_problem;
use crate::backend::embedded::normalize_username;
use crate::backend::triggers::{TriggerConfig, signup_key};
use crate::backend::{BackendError, Directory, ObjectStore};

/// What an AWS enrollment did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AwsEnrollReport {
    pub username: String,
    pub created: bool,
    pub groups: Vec<String>,
    pub uploaded: Vec<String>,
    /// The user's faces in the directory after the wait.
    pub face_ids: Vec<String>,
    /// Photos the Lambda had not indexed when the wait ended.
    pub pending: usize,
}

impl AwsBackend {
    /// Enrolls with photos already checked by the caller; waits up to `wait` for indexing.
    /// A user who exists already is refused unless `add_to_existing` (a second person of the
    /// same name must not get the first one's door): Cognito's `UsernameExistsException`
    /// says so, with no `AdminGetUser` grant needed.
    pub async fn enroll(
        &self,
        username: &str,
        name: &str,
        photos: &[Vec<u8>],
        groups: &[String],
        add_to_existing: bool,
        wait: Duration,
    ) -> Result<AwsEnrollReport, BackendError> {
        let username = normalize_username(username)?;
        if let Some(problem) = groups.iter().find_map(|g| group_name_problem(g)) {
            return Err(BackendError::Rejected(problem));
        }
        if photos.is_empty() {
            return Err(BackendError::Rejected(
                "enrollment needs at least one photo".into(),
            ));
        }
        let before = self.directory.faces_of_user(&username).await?.len();
        let created = self.pool.create_user(&username, name).await?;
        if !created && !add_to_existing {
            return Err(BackendError::Rejected(format!(
                "user {username} already exists in Cognito: to add these faces to that person, \
                 say so (--add-to-existing)"
            )));
        }
        for group in groups {
            self.pool.add_to_group(&username, group).await?;
        }
        let prefix = TriggerConfig::default().signup_prefix;
        let mut uploaded = Vec::new();
        for photo in photos {
            let key = signup_key(&prefix, &username, &uuid::Uuid::new_v4().to_string());
            self.signup.put(&key, photo.clone(), "image/jpeg").await?;
            uploaded.push(key);
        }
        let started = Instant::now();
        let mut face_ids = self.directory.faces_of_user(&username).await?;
        while face_ids.len() < before + photos.len() && started.elapsed() < wait {
            tokio::time::sleep(Duration::from_millis(500)).await;
            face_ids = self.directory.faces_of_user(&username).await?;
        }
        let pending = (before + photos.len()).saturating_sub(face_ids.len());
        Ok(AwsEnrollReport {
            username,
            created,
            groups: groups.to_vec(),
            uploaded,
            face_ids,
            pending,
        })
    }
}
