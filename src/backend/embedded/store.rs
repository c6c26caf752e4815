//! The embedded object store and directory. Objects (sign-in frames, enrollment photos on
//! their way to the index) live in memory only: raw faces never reach the disk, where sled
//! would keep them in its log long after they were deleted. The directory is in sled trees,
//! flushed before a write returns, so an acknowledged enrollment survives a crash.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::backend::{BackendError, Directory, FaceRecord, ObjectInfo, ObjectStore, TriggerLedger};
use crate::clock::{Clock, Millis};

fn internal(e: impl std::fmt::Display) -> BackendError {
    BackendError::Internal(format!("store: {e}"))
}

/// Objects held at once; the oldest goes first. A sign-in frame is read (and deleted) within
/// its challenge, an enrollment photo within its enrollment; Verify's verdicts are ~100 bytes.
const MAX_OBJECTS: usize = 256;

type Objects = BTreeMap<String, (ObjectInfo, Vec<u8>)>;

/// Objects in memory, for one process's lifetime. Each expires `ttl_ms` after its upload, and
/// at most [`MAX_OBJECTS`] objects and `max_bytes` bytes are held (the oldest are dropped
/// first), so frames that are never answered cannot pile up.
#[derive(Clone)]
pub struct MemoryObjectStore {
    objects: Arc<Mutex<Objects>>,
    clock: Arc<dyn Clock>,
    ttl_ms: Millis,
    max_bytes: u64,
}

impl MemoryObjectStore {
    /// An empty store whose objects expire `ttl_ms` after upload, holding at most `max_bytes`.
    pub fn new(clock: Arc<dyn Clock>, ttl_ms: Millis, max_bytes: u64) -> Self {
        Self {
            objects: Arc::new(Mutex::new(BTreeMap::new())),
            clock,
            ttl_ms,
            max_bytes,
        }
    }

    /// Keys under `prefix`, for housekeeping and tests.
    pub fn keys(&self, prefix: &str) -> Result<Vec<String>, BackendError> {
        Ok(self
            .live()?
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }

    /// The objects, with the expired ones dropped.
    fn live(&self) -> Result<std::sync::MutexGuard<'_, Objects>, BackendError> {
        let mut objects = self.objects.lock().map_err(internal)?;
        let now = self.clock.now_ms();
        objects.retain(|_, (info, _)| info.uploaded_at_ms.saturating_add(self.ttl_ms) > now);
        Ok(objects)
    }
}

#[async_trait]
impl ObjectStore for MemoryObjectStore {
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), BackendError> {
        let info = ObjectInfo {
            size: bytes.len() as u64,
            uploaded_at_ms: self.clock.now_ms(),
            content_type: content_type.to_string(),
        };
        let mut objects = self.live()?;
        objects.remove(key);
        let held = |objects: &Objects| objects.values().map(|(i, _)| i.size).sum::<u64>();
        while objects.len() >= MAX_OBJECTS
            || (!objects.is_empty() && held(&objects) + info.size > self.max_bytes)
        {
            let oldest = objects
                .iter()
                .min_by_key(|(_, (info, _))| info.uploaded_at_ms)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(oldest) => objects.remove(&oldest),
                None => break,
            };
        }
        objects.insert(key.to_string(), (info, bytes));
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        Ok(self.live()?.get(key).map(|(_, bytes)| bytes.clone()))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, BackendError> {
        Ok(self.live()?.get(key).map(|(info, _)| info.clone()))
    }

    async fn delete(&self, key: &str) -> Result<(), BackendError> {
        self.live()?.remove(key);
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
    use crate::clock::ManualClock;

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

    #[tokio::test]
    async fn objects_expire_and_never_pile_up() {
        let clock = ManualClock::at(1_000);
        let store = MemoryObjectStore::new(Arc::new(clock.clone()), 60_000, 1_000);
        store.put("a", vec![1], "image/jpeg").await.unwrap();
        assert_eq!(store.get("a").await.unwrap(), Some(vec![1]));
        clock.advance_ms(60_000);
        assert_eq!(store.head("a").await.unwrap(), None, "expired");
        for i in 0..1000 {
            store
                .put(&format!("k{i:04}"), vec![0; 3], "image/jpeg")
                .await
                .unwrap();
            clock.advance_ms(1);
        }
        let keys = store.keys("k").unwrap();
        assert_eq!(keys.len(), MAX_OBJECTS);
        assert_eq!(
            keys.last().map(String::as_str),
            Some("k0999"),
            "the newest stays"
        );
        for i in 0..5 {
            store
                .put(&format!("big{i}"), vec![0; 300], "image/jpeg")
                .await
                .unwrap();
            clock.advance_ms(1);
        }
        assert_eq!(
            store.keys("big").unwrap(),
            ["big2", "big3", "big4"],
            "at most 1000 bytes"
        );
        assert!(store.keys("k").unwrap().is_empty(), "the oldest went first");
        store.delete("big4").await.unwrap();
        assert_eq!(store.get("big4").await.unwrap(), None);
    }
}
