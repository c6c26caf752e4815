//! The embedded object store and directory, in sled trees. Writes are flushed before they
//! return, so an acknowledged enrollment or frame survives a crash.

use async_trait::async_trait;

use crate::backend::{BackendError, Directory, FaceRecord, ObjectInfo, ObjectStore, TriggerLedger};
use crate::clock::{Clock, Millis};
use std::sync::Arc;

fn internal(e: impl std::fmt::Display) -> BackendError {
    BackendError::Internal(format!("store: {e}"))
}

/// Objects in two trees: metadata and bytes.
#[derive(Clone)]
pub struct SledObjectStore {
    meta: sled::Tree,
    data: sled::Tree,
    clock: Arc<dyn Clock>,
}

impl SledObjectStore {
    /// The store named `name` (`signin`, `signup`) in `db`.
    pub fn open(db: &sled::Db, name: &str, clock: Arc<dyn Clock>) -> Result<Self, BackendError> {
        Ok(Self {
            meta: db
                .open_tree(format!("objects/{name}/meta"))
                .map_err(internal)?,
            data: db
                .open_tree(format!("objects/{name}/data"))
                .map_err(internal)?,
            clock,
        })
    }

    /// Keys under `prefix`, for housekeeping and tests.
    pub fn keys(&self, prefix: &str) -> Result<Vec<String>, BackendError> {
        self.meta
            .scan_prefix(prefix.as_bytes())
            .keys()
            .map(|k| Ok(String::from_utf8_lossy(&k.map_err(internal)?).into_owned()))
            .collect()
    }
}

#[async_trait]
impl ObjectStore for SledObjectStore {
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), BackendError> {
        let info = ObjectInfo {
            size: bytes.len() as u64,
            uploaded_at_ms: self.clock.now_ms(),
            content_type: content_type.to_string(),
        };
        self.data.insert(key.as_bytes(), bytes).map_err(internal)?;
        let meta = serde_json::to_vec(&info).map_err(internal)?;
        self.meta.insert(key.as_bytes(), meta).map_err(internal)?;
        self.meta.flush_async().await.map_err(internal)?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        Ok(self
            .data
            .get(key.as_bytes())
            .map_err(internal)?
            .map(|v| v.to_vec()))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, BackendError> {
        match self.meta.get(key.as_bytes()).map_err(internal)? {
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(internal),
            None => Ok(None),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), BackendError> {
        self.meta.remove(key.as_bytes()).map_err(internal)?;
        self.data.remove(key.as_bytes()).map_err(internal)?;
        self.meta.flush_async().await.map_err(internal)?;
        Ok(())
    }
}

/// FaceId → record, and user → FaceIds (as `user\0face_id` keys, so a prefix scan lists them).
#[derive(Clone)]
pub struct SledDirectory {
    faces: sled::Tree,
    by_user: sled::Tree,
}

impl SledDirectory {
    pub fn open(db: &sled::Db) -> Result<Self, BackendError> {
        Ok(Self {
            faces: db.open_tree("directory/faces").map_err(internal)?,
            by_user: db.open_tree("directory/by_user").map_err(internal)?,
        })
    }

    fn user_key(username: &str, face_id: &str) -> Vec<u8> {
        [username.as_bytes(), b"\0", face_id.as_bytes()].concat()
    }
}

#[async_trait]
impl Directory for SledDirectory {
    async fn put_face(&self, record: FaceRecord) -> Result<(), BackendError> {
        let bytes = serde_json::to_vec(&record).map_err(internal)?;
        self.faces
            .insert(record.face_id.as_bytes(), bytes)
            .map_err(internal)?;
        self.by_user
            .insert(Self::user_key(&record.username, &record.face_id), &[])
            .map_err(internal)?;
        self.faces.flush_async().await.map_err(internal)?;
        Ok(())
    }

    async fn user_of_face(&self, face_id: &str) -> Result<Option<String>, BackendError> {
        match self.faces.get(face_id.as_bytes()).map_err(internal)? {
            Some(bytes) => {
                let record: FaceRecord = serde_json::from_slice(&bytes).map_err(internal)?;
                Ok(Some(record.username))
            }
            None => Ok(None),
        }
    }

    async fn faces_of_user(&self, username: &str) -> Result<Vec<String>, BackendError> {
        let prefix = [username.as_bytes(), b"\0"].concat();
        self.by_user
            .scan_prefix(&prefix)
            .keys()
            .map(|k| {
                let k = k.map_err(internal)?;
                Ok(String::from_utf8_lossy(&k[prefix.len()..]).into_owned())
            })
            .collect()
    }

    async fn delete_face(&self, face_id: &str) -> Result<(), BackendError> {
        if let Some(bytes) = self.faces.remove(face_id.as_bytes()).map_err(internal)? {
            let record: FaceRecord = serde_json::from_slice(&bytes).map_err(internal)?;
            self.by_user
                .remove(Self::user_key(&record.username, face_id))
                .map_err(internal)?;
        }
        self.faces.flush_async().await.map_err(internal)?;
        Ok(())
    }
}

/// The triggers' ledger in two trees of the backend's store: verdicts by private challenge id,
/// and each user's recent failed answers. Only the trigger code reaches it.
#[derive(Clone)]
pub struct SledLedger {
    verdicts: sled::Tree,
    failures: sled::Tree,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct FiledVerdict {
    correct: bool,
    expires_at_ms: Millis,
}

/// Verdicts kept before expired ones are swept.
const VERDICTS_BEFORE_SWEEP: usize = 4096;

impl SledLedger {
    pub fn open(db: &sled::Db) -> Result<Self, BackendError> {
        Ok(Self {
            verdicts: db.open_tree("ledger/verdicts").map_err(internal)?,
            failures: db.open_tree("ledger/failures").map_err(internal)?,
        })
    }

    fn times(&self, username: &str) -> Result<Vec<(Millis, Millis)>, BackendError> {
        match self.failures.get(username.as_bytes()).map_err(internal)? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(internal),
            None => Ok(Vec::new()),
        }
    }

    fn sweep(&self, now: Millis) -> Result<(), BackendError> {
        for entry in self.verdicts.iter() {
            let (id, bytes) = entry.map_err(internal)?;
            let expired = serde_json::from_slice::<FiledVerdict>(&bytes)
                .map_or(true, |v| v.expires_at_ms < now);
            if expired {
                self.verdicts.remove(id).map_err(internal)?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl TriggerLedger for SledLedger {
    async fn verdict(&self, id: &str) -> Result<Option<bool>, BackendError> {
        match self.verdicts.get(id.as_bytes()).map_err(internal)? {
            Some(bytes) => {
                let filed: FiledVerdict = serde_json::from_slice(&bytes).map_err(internal)?;
                Ok(Some(filed.correct))
            }
            None => Ok(None),
        }
    }

    async fn file_verdict(
        &self,
        id: &str,
        correct: bool,
        expires_at_ms: Millis,
    ) -> Result<bool, BackendError> {
        if self.verdicts.len() >= VERDICTS_BEFORE_SWEEP {
            self.sweep(expires_at_ms.saturating_sub(3_600_000))?;
        }
        let filed = serde_json::to_vec(&FiledVerdict {
            correct,
            expires_at_ms,
        })
        .map_err(internal)?;
        let previous = self
            .verdicts
            .compare_and_swap(id.as_bytes(), None as Option<&[u8]>, Some(filed))
            .map_err(internal)?;
        self.verdicts.flush_async().await.map_err(internal)?;
        match previous {
            Ok(()) => Ok(correct),
            Err(existing) => {
                let bytes = existing
                    .current
                    .ok_or_else(|| internal("a verdict vanished"))?;
                let first: FiledVerdict = serde_json::from_slice(&bytes).map_err(internal)?;
                Ok(first.correct)
            }
        }
    }

    async fn failures_since(
        &self,
        username: &str,
        since_ms: Millis,
    ) -> Result<usize, BackendError> {
        Ok(self
            .times(username)?
            .iter()
            .filter(|(at, _)| *at >= since_ms)
            .count())
    }

    async fn record_failure(
        &self,
        username: &str,
        at_ms: Millis,
        keep_until_ms: Millis,
    ) -> Result<(), BackendError> {
        let mut times = self.times(username)?;
        times.retain(|(_, keep)| *keep >= at_ms);
        times.push((at_ms, keep_until_ms));
        let bytes = serde_json::to_vec(&times).map_err(internal)?;
        self.failures
            .insert(username.as_bytes(), bytes)
            .map_err(internal)?;
        self.failures.flush_async().await.map_err(internal)?;
        Ok(())
    }

    async fn clear_failures(&self, username: &str) -> Result<(), BackendError> {
        self.failures
            .remove(username.as_bytes())
            .map_err(internal)?;
        self.failures.flush_async().await.map_err(internal)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger() -> SledLedger {
        let db = sled::Config::new().temporary(true).open().unwrap();
        SledLedger::open(&db).unwrap()
    }

    #[tokio::test]
    async fn the_first_verdict_wins() {
        let l = ledger();
        assert_eq!(l.verdict("a").await.unwrap(), None);
        assert!(!l.file_verdict("a", false, 10).await.unwrap());
        assert!(
            !l.file_verdict("a", true, 10).await.unwrap(),
            "a second verdict does not replace the first"
        );
        assert_eq!(l.verdict("a").await.unwrap(), Some(false));
    }

    #[tokio::test]
    async fn failures_are_counted_in_their_window_and_cleared() {
        let l = ledger();
        for at in [100, 200, 300] {
            l.record_failure("ana@example.com", at, at + 1_000)
                .await
                .unwrap();
        }
        assert_eq!(l.failures_since("ana@example.com", 0).await.unwrap(), 3);
        assert_eq!(l.failures_since("ana@example.com", 250).await.unwrap(), 1);
        assert_eq!(l.failures_since("bob@example.com", 0).await.unwrap(), 0);
        // Old failures are dropped as new ones arrive.
        l.record_failure("ana@example.com", 5_000, 6_000)
            .await
            .unwrap();
        assert_eq!(l.times("ana@example.com").unwrap().len(), 1);
        l.clear_failures("ana@example.com").await.unwrap();
        assert_eq!(l.failures_since("ana@example.com", 0).await.unwrap(), 0);
    }
}
