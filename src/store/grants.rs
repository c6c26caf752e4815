//! Offline grace: after each online success the device keeps a grant — user, groups, when they
//! last authenticated online, and the embedding of that frame — sealed at rest. When the
//! backend is unreachable, a face is matched against granted users only, with a stricter
//! threshold, and admitted only within the grace window of their last online success.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

use super::{SealError, Sealer};
use crate::clock::Millis;
use crate::vision::{Embedding, Gallery};

/// Why the grant store failed.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error("grant store: {0}")]
    Store(#[from] sled::Error),
    #[error(transparent)]
    Sealed(#[from] SealError),
    #[error("grant store: a record is not valid: {0}")]
    Corrupt(String),
}

/// One user's offline grant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    pub username: String,
    pub groups: Vec<String>,
    /// When the user last authenticated online.
    pub online_at_ms: Millis,
    /// The embedding of the frame of that authentication.
    pub embedding: Vec<u8>,
    /// The refresh token of that authentication: when the backend is back, it tells whether
    /// the user is still enabled and in which groups (sealed at rest like the whole grant).
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// When the tokens of the last authentication or refresh expire, Unix seconds.
    #[serde(default)]
    pub tokens_expire_at_secs: u64,
}

/// The offline answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum OfflineDecision {
    Admit {
        username: String,
        groups: Vec<String>,
        similarity: f32,
    },
    Deny {
        reason: String,
        username: Option<String>,
        similarity: Option<f32>,
    },
}

/// Grants by username, sealed.
pub struct GrantStore {
    tree: sled::Tree,
    sealer: Arc<Sealer>,
}

fn slot(username: &str) -> String {
    format!("grants/{username}")
}

impl GrantStore {
    pub fn open(db: &sled::Db, sealer: Arc<Sealer>) -> Result<Self, GrantError> {
        Ok(Self {
            tree: db.open_tree("grants")?,
            sealer,
        })
    }

    /// Records (or renews) a grant; durable when this returns.
    pub fn record(&self, grant: &Grant) -> Result<(), GrantError> {
        let plain = serde_json::to_vec(grant).map_err(|e| GrantError::Corrupt(e.to_string()))?;
        let sealed = self.sealer.seal(&plain, &slot(&grant.username));
        self.tree.insert(grant.username.as_bytes(), sealed)?;
        self.tree.flush()?;
        Ok(())
    }

    /// Drops a user's grant (disabled, deleted, or denied online).
    pub fn revoke(&self, username: &str) -> Result<bool, GrantError> {
        let removed = self.tree.remove(username.as_bytes())?.is_some();
        self.tree.flush()?;
        Ok(removed)
    }

    pub fn all(&self) -> Result<Vec<Grant>, GrantError> {
        self.tree
            .iter()
            .map(|entry| {
                let (key, sealed) = entry?;
                let username = String::from_utf8_lossy(&key).into_owned();
                let plain = self.sealer.open(&sealed, &slot(&username))?;
                serde_json::from_slice(&plain).map_err(|e| GrantError::Corrupt(e.to_string()))
            })
            .collect()
    }

    /// Decides offline for a face with `embedding` at `now`: the best-matching granted user at
    /// or above `threshold`, if their last online success is within `grace_ms`.
    pub fn decide(
        &self,
        embedding: &Embedding,
        threshold: f32,
        grace_ms: u64,
        now: Millis,
    ) -> Result<OfflineDecision, GrantError> {
        let grants = self.all()?;
        let mut gallery = Gallery::new();
        for grant in &grants {
            if let Some(e) = Embedding::from_bytes(&grant.embedding) {
                gallery.insert(grant.username.clone(), &e);
            }
        }
        let Some(best) = gallery.search(embedding, 1).into_iter().next() else {
            return Ok(OfflineDecision::Deny {
                reason: "offline, and no one holds a grant".into(),
                username: None,
                similarity: None,
            });
        };
        if best.similarity < threshold {
            return Ok(OfflineDecision::Deny {
                reason: format!(
                    "offline, and no granted face matches (best {:.3} < {threshold:.3})",
                    best.similarity
                ),
                username: None,
                similarity: Some(best.similarity),
            });
        }
        let grant = grants
            .into_iter()
            .find(|g| g.username == best.id)
            .ok_or_else(|| GrantError::Corrupt("a grant vanished".into()))?;
        let age = now.saturating_sub(grant.online_at_ms);
        if age > grace_ms {
            return Ok(OfflineDecision::Deny {
                reason: format!(
                    "offline, and {}'s last online sign-in was {} s ago (grace {} s)",
                    grant.username,
                    age / 1000,
                    grace_ms / 1000
                ),
                username: Some(grant.username),
                similarity: Some(best.similarity),
            });
        }
        Ok(OfflineDecision::Admit {
            username: grant.username,
            groups: grant.groups,
            similarity: best.similarity,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::embed::EMBEDDING_DIM;

    fn embedding(i: usize, noise: f32) -> Embedding {
        let mut v = [noise; EMBEDDING_DIM];
        v[i] = 1.0;
        Embedding::from_raw(&v).unwrap()
    }

    fn store() -> (tempfile::TempDir, GrantStore) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let store = GrantStore::open(&db, Arc::new(Sealer::with_key(&[3; 32]))).unwrap();
        (dir, store)
    }

    fn grant(name: &str, i: usize, at: Millis) -> Grant {
        Grant {
            username: name.into(),
            groups: vec!["staff".into()],
            online_at_ms: at,
            embedding: embedding(i, 0.0).to_bytes(),
            refresh_token: Some(format!("refresh-{name}")),
            tokens_expire_at_secs: 0,
        }
    }

    const HOUR: u64 = 3_600_000;

    #[test]
    fn grace_holds_just_inside_the_window_and_not_just_outside() {
        let (_dir, s) = store();
        s.record(&grant("ana@example.com", 0, 0)).unwrap();
        let face = embedding(0, 0.01);
        let inside = s.decide(&face, 0.5, HOUR, HOUR).unwrap();
        assert!(
            matches!(inside, OfflineDecision::Admit { ref username, .. } if username == "ana@example.com")
        );
        let outside = s.decide(&face, 0.5, HOUR, HOUR + 1).unwrap();
        assert!(
            matches!(outside, OfflineDecision::Deny { ref reason, .. } if reason.contains("grace"))
        );
    }

    #[test]
    fn strangers_and_revoked_users_are_denied() {
        let (_dir, s) = store();
        s.record(&grant("ana@example.com", 0, 0)).unwrap();
        let stranger = s.decide(&embedding(7, 0.0), 0.5, HOUR, 10).unwrap();
        assert!(matches!(stranger, OfflineDecision::Deny { .. }));
        assert!(s.revoke("ana@example.com").unwrap());
        let revoked = s.decide(&embedding(0, 0.0), 0.5, HOUR, 10).unwrap();
        assert!(
            matches!(revoked, OfflineDecision::Deny { ref reason, .. } if reason.contains("no one"))
        );
    }

    #[test]
    fn grants_are_sealed_at_rest() {
        let (_dir, s) = store();
        s.record(&grant("ana@example.com", 0, 0)).unwrap();
        let raw = s.tree.get("ana@example.com").unwrap().unwrap();
        assert!(
            !raw.windows(5).any(|w| w == b"staff"),
            "plaintext groups on disk"
        );
        assert!(
            !raw.windows(7).any(|w| w == b"refresh"),
            "plaintext refresh token on disk"
        );
        assert_eq!(s.all().unwrap(), vec![grant("ana@example.com", 0, 0)]);
    }
}
