//! Enrollment photos kept after indexing, only when the operator asks for it
//! (`backend.embedded.photo_retention_days`): sealed with the store key, each until its
//! retention ends, and gone with the person. By default no photo is kept at all.

use std::sync::Arc;

use crate::backend::BackendError;
use crate::clock::{Clock, Millis};
use crate::store::Sealer;

fn internal(e: impl std::fmt::Display) -> BackendError {
    BackendError::Internal(format!("kept photos: {e}"))
}

/// Sealed photos by `username\0face_id`; each value is the 8-byte big-endian time it may be
/// kept until, then the sealed photo.
#[derive(Clone)]
pub struct KeptPhotos {
    tree: sled::Tree,
    sealer: Arc<Sealer>,
    clock: Arc<dyn Clock>,
}

impl KeptPhotos {
    pub fn open(
        db: &sled::Db,
        sealer: Arc<Sealer>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, BackendError> {
        Ok(Self {
            tree: db.open_tree("photos/kept").map_err(internal)?,
            sealer,
            clock,
        })
    }

    fn key(username: &str, face_id: &str) -> Vec<u8> {
        [username.as_bytes(), b"\0", face_id.as_bytes()].concat()
    }

    fn slot(username: &str, face_id: &str) -> String {
        format!("photos/kept/{username}/{face_id}")
    }

    /// Keeps `photo` of `username`'s face `face_id` sealed for `days`.
    pub fn keep(
        &self,
        username: &str,
        face_id: &str,
        photo: &[u8],
        days: u32,
    ) -> Result<(), BackendError> {
        let until = self
            .clock
            .now_ms()
            .saturating_add(days as Millis * 86_400_000);
        let sealed = self.sealer.seal(photo, &Self::slot(username, face_id));
        let value = [until.to_be_bytes().as_slice(), &sealed].concat();
        self.tree
            .insert(Self::key(username, face_id), value)
            .map_err(internal)?;
        self.tree.flush().map_err(internal)?;
        Ok(())
    }

    /// The kept photo of `username`'s face `face_id`, if its retention has not ended.
    pub fn get(&self, username: &str, face_id: &str) -> Result<Option<Vec<u8>>, BackendError> {
        let Some(value) = self
            .tree
            .get(Self::key(username, face_id))
            .map_err(internal)?
        else {
            return Ok(None);
        };
        if value.len() < 8 || until(&value) <= self.clock.now_ms() {
            return Ok(None);
        }
        let photo = self
            .sealer
            .open(&value[8..], &Self::slot(username, face_id))
            .map_err(internal)?;
        Ok(Some(photo))
    }

    /// How many photos of `username` are kept.
    pub fn count(&self, username: &str) -> usize {
        self.tree.scan_prefix(Self::key(username, "")).count()
    }

    /// Removes the photos of `username`; how many there were.
    pub fn forget(&self, username: &str) -> Result<usize, BackendError> {
        self.remove_where(|key, _| key.starts_with(&Self::key(username, "")))
    }

    /// Removes `username`'s photo of face `face_id` (undoing a failed enrollment).
    pub fn forget_face(&self, username: &str, face_id: &str) -> Result<(), BackendError> {
        self.tree
            .remove(Self::key(username, face_id))
            .map_err(internal)?;
        self.tree.flush().map_err(internal)?;
        Ok(())
    }

    /// Removes every photo whose retention has ended; how many.
    pub fn purge_expired(&self) -> Result<usize, BackendError> {
        let now = self.clock.now_ms();
        self.remove_where(|_, value| value.len() < 8 || until(value) <= now)
    }

    fn remove_where(&self, doomed: impl Fn(&[u8], &[u8]) -> bool) -> Result<usize, BackendError> {
        let mut removed = 0;
        for entry in self.tree.iter() {
            let (key, value) = entry.map_err(internal)?;
            if doomed(&key, &value) {
                self.tree.remove(key).map_err(internal)?;
                removed += 1;
            }
        }
        self.tree.flush().map_err(internal)?;
        Ok(removed)
    }
}

fn until(value: &[u8]) -> Millis {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&value[..8]);
    Millis::from_be_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn kept_photos_are_sealed_expire_and_go_with_the_person() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let clock = ManualClock::at(1_000);
        let photos = KeptPhotos::open(
            &db,
            Arc::new(Sealer::with_key(&[3; 32])),
            Arc::new(clock.clone()),
        )
        .unwrap();
        let jpeg = b"\xff\xd8\xff\xe0 a face".to_vec();
        photos.keep("ana@example.com", "f1", &jpeg, 30).unwrap();
        photos.keep("ana@example.com", "f2", &jpeg, 1).unwrap();
        photos.keep("ben@example.com", "f3", &jpeg, 30).unwrap();
        let raw = photos
            .tree
            .get(KeptPhotos::key("ana@example.com", "f1"))
            .unwrap()
            .unwrap();
        assert!(
            !raw.windows(jpeg.len()).any(|w| w == jpeg),
            "stored unsealed"
        );
        assert_eq!(photos.get("ana@example.com", "f1").unwrap(), Some(jpeg));
        clock.advance_ms(86_400_000);
        assert_eq!(
            photos.get("ana@example.com", "f2").unwrap(),
            None,
            "past its retention"
        );
        assert_eq!(photos.purge_expired().unwrap(), 1);
        assert_eq!(photos.forget("ana@example.com").unwrap(), 1);
        assert_eq!(photos.count("ana@example.com"), 0);
        assert_eq!(
            photos.count("ben@example.com"),
            1,
            "another person's photos stay"
        );
    }
}
