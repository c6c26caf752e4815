//! Index faces: an enrollment photo landed in the sign-up store; index its one face and link
//! the FaceId to the user. The user comes from the object's key, under the admin-only sign-up
//! prefix, and must exist in the user pool: never from uploader-chosen metadata.
//!
//! S3 delivers each notification at least once and the Lambda's asynchronous invocation
//! retries a failed one, so indexing is idempotent: a photo indexed and linked is marked in the
//! ledger and a second delivery skips it, and a face indexed but not linked is deleted again
//! before the error goes back for the retry.

use aws_lambda_events::event::s3::S3Event;
use serde::Serialize;

use super::TriggerPorts;
use crate::backend::{BackendError, FaceRecord};

/// The outcome for one enrollment photo.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndexedFace {
    pub key: String,
    pub username: String,
    pub face_id: String,
}

/// The sign-up key for a photo of `username`.
pub fn signup_key(prefix: &str, username: &str, photo_id: &str) -> String {
    format!("{prefix}{username}/{photo_id}.jpg")
}

/// How long a photo's "indexed" mark is kept: longer than S3 and Lambda go on redelivering.
pub const INDEXED_MARK_MS: u64 = 7 * 24 * 60 * 60 * 1000;

/// The ledger id marking the photo at `key` as indexed and linked.
fn indexed_mark(key: &str) -> String {
    format!("photo#{key}")
}

/// Indexes every record of `event` not indexed before (a redelivered photo is skipped); the
/// first failure stops and is returned with its key.
pub async fn index_faces(
    event: &S3Event,
    ports: &TriggerPorts,
) -> Result<Vec<IndexedFace>, BackendError> {
    let mut indexed = Vec::new();
    for record in &event.records {
        let raw_key = record.s3.object.key.as_deref().unwrap_or_default();
        let key = url_decode(raw_key).ok_or_else(|| {
            BackendError::Rejected(format!("object key {raw_key:?} is not valid URL encoding"))
        })?;
        if ports.ledger.verdict(&indexed_mark(&key)).await? == Some(true) {
            tracing::info!(%key, "already indexed: a redelivered notification");
            continue;
        }
        let face = index_one(&key, ports).await?;
        let until = ports.clock.now_ms() + INDEXED_MARK_MS;
        ports
            .ledger
            .file_verdict(&indexed_mark(&key), true, until)
            .await?;
        indexed.push(face);
    }
    Ok(indexed)
}

async fn index_one(key: &str, ports: &TriggerPorts) -> Result<IndexedFace, BackendError> {
    let config = &ports.config;
    let rest = key.strip_prefix(&config.signup_prefix).ok_or_else(|| {
        BackendError::Rejected(format!(
            "{key} is not under the sign-up prefix {}",
            config.signup_prefix
        ))
    })?;
    let username = match rest.split_once('/') {
        Some((user, file)) if !user.is_empty() && !file.is_empty() && !file.contains('/') => user,
        _ => {
            return Err(BackendError::Rejected(format!(
                "{key} is not of the form {}USER/PHOTO.jpg",
                config.signup_prefix
            )));
        }
    };
    if !ports.users.user_exists(username).await? {
        return Err(BackendError::Rejected(format!(
            "{key}: no user {username} in the user pool"
        )));
    }
    let info = ports
        .signup
        .head(key)
        .await?
        .ok_or_else(|| BackendError::Rejected(format!("{key} does not exist")))?;
    if info.size > config.max_image_bytes {
        return Err(BackendError::Rejected(format!(
            "{key} is {} bytes, over the limit of {}",
            info.size, config.max_image_bytes
        )));
    }
    let photo = ports
        .signup
        .get(key)
        .await?
        .ok_or_else(|| BackendError::Rejected(format!("{key} vanished")))?;
    let face_id = ports.faces.index_face(&photo, username).await?;
    let linked = ports
        .directory
        .put_face(FaceRecord {
            face_id: face_id.clone(),
            username: username.to_string(),
            indexed_at_ms: ports.clock.now_ms(),
        })
        .await;
    if let Err(e) = linked {
        // An unlinked face would be "someone else" to the decision rule, next to its owner's
        // own faces: undo it, so the retry starts clean.
        if let Err(undo) = ports
            .faces
            .delete_faces(std::slice::from_ref(&face_id))
            .await
        {
            tracing::warn!(%key, %face_id, %undo, "could not delete an unlinked face");
        }
        return Err(e);
    }
    Ok(IndexedFace {
        key: key.to_string(),
        username: username.to_string(),
        face_id,
    })
}

/// Decodes an S3 event key: `+` is a space and `%XX` a byte; `None` for broken escapes or
/// bytes that are not UTF-8.
pub fn url_decode(key: &str) -> Option<String> {
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_url_decoded_like_s3_events() {
        assert_eq!(
            url_decode("signup/a%40b.com/x+y.jpg").unwrap(),
            "signup/a@b.com/x y.jpg"
        );
        assert_eq!(url_decode("plain").unwrap(), "plain");
        assert_eq!(url_decode("bad%4"), None);
        assert_eq!(url_decode("bad%zz"), None);
        assert_eq!(url_decode("%ff"), None, "not UTF-8");
    }

    #[test]
    fn signup_keys_put_the_user_in_the_path() {
        assert_eq!(
            signup_key("signup/", "ana@example.com", "p1"),
            "signup/ana@example.com/p1.jpg"
        );
    }
}
