//! Offline grace: after each online success the device keeps a grant — user, groups, when they
//! last authenticated online, and the embedding of that frame — sealed at rest. When the
//! backend is unreachable, a face is matched against granted users only, by the decision rule
//! with a stricter threshold, and admitted only within the grace window of their last online
//! success and never past their tokens' own expiry.
//!
//! The wall clock can be moved: the store keeps the latest time it has seen (persisted), and an
//! offline decision on a clock behind it, or on a grant from the clock's future, is a denial.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

use super::{SealError, Sealer};
use crate::clock::Millis;
use crate::matching::{DecisionRule, Identification};
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

/// Grants by username, sealed, and the latest time seen.
pub struct GrantStore {
    tree: sled::Tree,
    clock_tree: sled::Tree,
    sealer: Arc<Sealer>,
    /// The latest time seen, in memory; persisted when it moves by [`PERSIST_EVERY_MS`].
    high_water: std::sync::atomic::AtomicU64,
}

/// How far the latest time seen may run ahead of its persisted copy.
const PERSIST_EVERY_MS: Millis = 60_000;
const HIGH_WATER: &[u8] = b"high-water-ms";

fn slot(username: &str) -> String {
    format!("grants/{username}")
}

impl GrantStore {
    pub fn open(db: &sled::Db, sealer: Arc<Sealer>) -> Result<Self, GrantError> {
        let clock_tree = db.open_tree("clock")?;
        let persisted = match clock_tree.get(HIGH_WATER)? {
            Some(bytes) => u64::from_le_bytes(
                bytes
                    .as_ref()
                    .try_into()
                    .map_err(|_| GrantError::Corrupt("the clock record".into()))?,
            ),
            None => 0,
        };
        Ok(Self {
            tree: db.open_tree("grants")?,
            clock_tree,
            sealer,
            high_water: persisted.into(),
        })
    }

    /// Notes that the clock read `now`; returns the latest time ever seen (maybe `now`).
    pub fn observe_time(&self, now: Millis) -> Result<Millis, GrantError> {
        use std::sync::atomic::Ordering;
        let before = self.high_water.fetch_max(now, Ordering::SeqCst);
        if now > before && now / PERSIST_EVERY_MS != before / PERSIST_EVERY_MS {
            self.clock_tree.insert(HIGH_WATER, &now.to_le_bytes())?;
            self.clock_tree.flush()?;
        }
        Ok(before.max(now))
    }

    /// Records (or renews) a grant; durable when this returns.
    pub fn record(&self, grant: &Grant) -> Result<(), GrantError> {
        self.observe_time(grant.online_at_ms)?;
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

    /// Decides offline at `now` for the frames of one attempt: the first frame's best-matching
    /// granted user must be a match by `rule` (with a threshold of at least `floor`, among the
    /// granted users) and every other frame must match the same user; then their last online
    /// success must be within `grace_ms`, before `now`, and their tokens still valid.
    pub fn decide(
        &self,
        frames: &[Embedding],
        rule: &DecisionRule,
        floor: f32,
        grace_ms: u64,
        now: Millis,
    ) -> Result<OfflineDecision, GrantError> {
        let deny = |reason: String, username: Option<String>, similarity: Option<f32>| {
            Ok(OfflineDecision::Deny {
                reason,
                username,
                similarity,
            })
        };
        let latest = self.observe_time(now)?;
        if now < latest {
            return deny(
                format!(
                    "offline, and the clock reads {} s before a time already seen: it was moved \
                     back",
                    (latest - now) / 1000
                ),
                None,
                None,
            );
        }
        let grants = self.all()?;
        let mut gallery = Gallery::new();
        for grant in &grants {
            if let Some(e) = Embedding::from_bytes(&grant.embedding) {
                gallery.insert(grant.username.clone(), &e);
            }
        }
        let Some(first) = frames.first() else {
            return deny("offline, and no frame".into(), None, None);
        };
        let judge = |frame: &Embedding| {
            let hits = gallery.search(frame, 2);
            let verdict = rule.decide(
                hits.first().map(|h| h.similarity),
                hits.get(1).map(|h| h.similarity),
                gallery.len(),
            );
            let threshold = verdict.threshold().max(floor);
            let user = hits.first().map(|h| h.id.clone());
            match verdict {
                Identification::Match { score, .. } if score >= threshold => (user, Ok(score)),
                Identification::Ambiguous {
                    score, runner_up, ..
                } => (
                    user,
                    Err(format!(
                        "offline, and two granted faces match almost equally ({score:.3}, \
                         {runner_up:.3})"
                    )),
                ),
                other => (
                    None,
                    Err(match other.score() {
                        Some(best) => format!(
                            "offline, and no granted face matches (best {best:.3} < \
                             {threshold:.3})"
                        ),
                        None => "offline, and no one holds a grant".into(),
                    }),
                ),
            }
        };
        let (user, similarity) = match judge(first) {
            (Some(user), Ok(score)) => (user, score),
            (_, Err(reason)) => return deny(reason, None, None),
            (None, Ok(_)) => return deny("offline, and no one holds a grant".into(), None, None),
        };
        for frame in &frames[1..] {
            if judge(frame).0.as_deref() != Some(user.as_str()) {
                return deny(
                    "offline, and the frames do not all match the same grant".into(),
                    Some(user),
                    Some(similarity),
                );
            }
        }
        let grant = grants
            .into_iter()
            .find(|g| g.username == user)
            .ok_or_else(|| GrantError::Corrupt("a grant vanished".into()))?;
        if grant.online_at_ms > now {
            return deny(
                format!(
                    "offline, and {}'s grant is from the clock's future: it was moved",
                    grant.username
                ),
                Some(grant.username),
                Some(similarity),
            );
        }
        let age = now - grant.online_at_ms;
        if age > grace_ms {
            return deny(
                format!(
                    "offline, and {}'s last online sign-in was {} s ago (grace {} s)",
                    grant.username,
                    age / 1000,
                    grace_ms / 1000
                ),
                Some(grant.username),
                Some(similarity),
            );
        }
        if grant.tokens_expire_at_secs.saturating_mul(1000) <= now {
            return deny(
                format!(
                    "offline, and {}'s tokens have expired (the backend was last reached too \
                     long ago)",
                    grant.username
                ),
                Some(grant.username),
                Some(similarity),
            );
        }
        Ok(OfflineDecision::Admit {
            username: grant.username,
            groups: grant.groups,
            similarity,
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

    fn rule() -> DecisionRule {
        DecisionRule::new(crate::matching::Threshold::Fixed(0.3), 0.05)
    }

    fn valid_grant(name: &str, i: usize, at: Millis) -> Grant {
        Grant {
            tokens_expire_at_secs: (at + 10 * HOUR) / 1000,
            ..grant(name, i, at)
        }
    }

    fn decide(s: &GrantStore, face: &Embedding, grace: u64, now: Millis) -> OfflineDecision {
        s.decide(std::slice::from_ref(face), &rule(), 0.5, grace, now)
            .unwrap()
    }

    fn denied_because(d: &OfflineDecision, why: &str) -> bool {
        matches!(d, OfflineDecision::Deny { reason, .. } if reason.contains(why))
    }

    #[test]
    fn grace_holds_just_inside_the_window_and_not_just_outside() {
        let (_dir, s) = store();
        s.record(&valid_grant("ana@example.com", 0, 0)).unwrap();
        let face = embedding(0, 0.01);
        let inside = decide(&s, &face, HOUR, HOUR);
        assert!(
            matches!(inside, OfflineDecision::Admit { ref username, .. } if username == "ana@example.com"),
            "{inside:?}"
        );
        let outside = decide(&s, &face, HOUR, HOUR + 1);
        assert!(denied_because(&outside, "grace"), "{outside:?}");
    }

    #[test]
    fn strangers_and_revoked_users_are_denied() {
        let (_dir, s) = store();
        s.record(&valid_grant("ana@example.com", 0, 0)).unwrap();
        let stranger = decide(&s, &embedding(7, 0.0), HOUR, 10);
        assert!(denied_because(&stranger, "no granted face"), "{stranger:?}");
        assert!(s.revoke("ana@example.com").unwrap());
        let revoked = decide(&s, &embedding(0, 0.0), HOUR, 10);
        assert!(denied_because(&revoked, "no one"), "{revoked:?}");
    }

    #[test]
    fn the_offline_threshold_is_stricter_than_the_rule() {
        let (_dir, s) = store();
        s.record(&valid_grant("ana@example.com", 0, 0)).unwrap();
        // Cosine ≈ 0.45 with Ana's grant: a match by the rule's 0.3, not by the 0.5 floor.
        let mut v = [0.0; EMBEDDING_DIM];
        v[0] = 0.45;
        v[1] = (1.0f32 - 0.45 * 0.45).sqrt();
        let near = Embedding::from_raw(&v).unwrap();
        assert!(denied_because(
            &decide(&s, &near, HOUR, 10),
            "no granted face"
        ));
    }

    #[test]
    fn two_granted_look_alikes_are_ambiguous() {
        let (_dir, s) = store();
        s.record(&valid_grant("ana@example.com", 0, 0)).unwrap();
        let twin = Grant {
            username: "ann@example.com".into(),
            embedding: embedding(0, 0.02).to_bytes(),
            ..valid_grant("ann@example.com", 0, 0)
        };
        s.record(&twin).unwrap();
        let d = decide(&s, &embedding(0, 0.01), HOUR, 10);
        assert!(denied_because(&d, "almost equally"), "{d:?}");
    }

    #[test]
    fn every_frame_must_match_the_same_grant() {
        let (_dir, s) = store();
        s.record(&valid_grant("ana@example.com", 0, 0)).unwrap();
        s.record(&valid_grant("bob@example.com", 3, 0)).unwrap();
        let frames = [embedding(0, 0.01), embedding(3, 0.01)];
        let d = s.decide(&frames, &rule(), 0.5, HOUR, 10).unwrap();
        assert!(denied_because(&d, "same grant"), "{d:?}");
    }

    #[test]
    fn a_clock_moved_back_is_refused_offline() {
        let (dir, s) = store();
        s.record(&valid_grant("ana@example.com", 0, 10 * 60_000))
            .unwrap();
        let face = embedding(0, 0.01);
        assert!(matches!(
            decide(&s, &face, HOUR, 20 * 60_000),
            OfflineDecision::Admit { .. }
        ));
        // Set back by five minutes: refused, even though the grant's age would be fine.
        let back = decide(&s, &face, HOUR, 15 * 60_000);
        assert!(denied_because(&back, "moved back"), "{back:?}");
        // The latest time seen survives a restart.
        drop(s);
        let db = sled::open(dir.path().join("db")).unwrap();
        let s = GrantStore::open(&db, Arc::new(Sealer::with_key(&[3; 32]))).unwrap();
        assert!(denied_because(
            &decide(&s, &face, HOUR, 15 * 60_000),
            "moved back"
        ));
    }

    #[test]
    fn a_grant_from_the_clocks_future_is_refused() {
        let (_dir, s) = store();
        let face = embedding(0, 0.01);
        // Recorded while the clock ran an hour ahead; by then the mark is an hour ahead too.
        s.record(&valid_grant("ana@example.com", 0, 2 * HOUR))
            .unwrap();
        let d = decide(&s, &face, 24 * HOUR, HOUR);
        assert!(denied_because(&d, "moved"), "{d:?}");
    }

    #[test]
    fn grace_never_outlives_the_tokens() {
        let (_dir, s) = store();
        let g = Grant {
            tokens_expire_at_secs: HOUR / 1000,
            ..grant("ana@example.com", 0, 0)
        };
        s.record(&g).unwrap();
        let face = embedding(0, 0.01);
        assert!(matches!(
            decide(&s, &face, 24 * HOUR, HOUR - 1_000),
            OfflineDecision::Admit { .. }
        ));
        let d = decide(&s, &face, 24 * HOUR, HOUR + 1_000);
        assert!(denied_because(&d, "tokens have expired"), "{d:?}");
        // A grant whose tokens' expiry is unknown admits no one offline.
        s.record(&grant("ana@example.com", 0, HOUR)).unwrap();
        assert!(denied_because(
            &decide(&s, &face, 24 * HOUR, HOUR + 2_000),
            "expired"
        ));
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
