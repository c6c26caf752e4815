//! The embedded object store and directory, in sled trees. Writes are flushed before they
//! return, so an acknowledged enrollment or frame survives a crash.

use async_trait::async_trait;

use crate::backend::{BackendError, Directory, FaceRecord, ObjectInfo, ObjectStore};
use crate::clock::Clock;
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
