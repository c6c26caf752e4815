//! The embedded backend: the seed's cloud side, self-hosted on the device over one sled
//! database: user pool, face index, sign-in and sign-up stores, directory, token keys. It runs
//! the same trigger code as the Lambda.

mod face_index;
mod pool;
mod store;
pub mod tokens;
pub mod users;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use aws_lambda_events::event::s3::{S3Event, S3EventRecord};
use serde::{Deserialize, Serialize};

pub use face_index::{LocalFaceIndex, enrollable_face, enrollment_refusal};
pub use pool::UserPool;
pub use store::{SledDirectory, SledLedger, SledObjectStore};
pub use users::{User, UserStore, normalize_username};

use self::tokens::{Issuer, TokenSigner};
use super::triggers::{self, TriggerConfig, TriggerPorts};
use super::{BackendError, Directory, FaceIndex, ObjectStore};
use crate::backend::keys::Jwks;
use crate::clock::Clock;
use crate::matching::DecisionRule;
use crate::store::Sealer;
use crate::vision::FaceEngine;

/// Settings of the embedded backend (config section `[backend.embedded]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddedConfig {
    /// `iss` of the tokens this device issues.
    pub issuer: String,
    /// The app client id (`aud` / `client_id` of the tokens).
    pub client_id: String,
    /// Lifetime of ID and access tokens, seconds.
    pub token_validity_secs: u64,
    /// Lifetime of refresh tokens, seconds.
    pub refresh_validity_secs: u64,
    /// Largest sign-in frame or enrollment photo, bytes.
    pub max_image_bytes: u64,
    /// Failed face answers within `lockout_window_secs` that lock a user out until they age out.
    pub lockout_failures: usize,
    pub lockout_window_secs: u64,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        Self {
            issuer: "https://facegate.local/embedded".into(),
            client_id: "facegate-door".into(),
            token_validity_secs: 3600,
            refresh_validity_secs: 30 * 24 * 3600,
            max_image_bytes: 2 * 1024 * 1024,
            lockout_failures: 5,
            lockout_window_secs: 15 * 60,
        }
    }
}

/// What enrollment did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrollReport {
    pub user: User,
    pub created: bool,
    pub face_ids: Vec<String>,
    /// Other users whose faces match a photo above the threshold.
    pub warnings: Vec<String>,
}

/// Every embedded adapter, over one database.
pub struct EmbeddedBackend {
    pub users: UserStore,
    pub signin: SledObjectStore,
    pub signup: SledObjectStore,
    pub directory: SledDirectory,
    pub faces: LocalFaceIndex,
    pub pool: Arc<UserPool>,
    pub ports: TriggerPorts,
    sealer: Arc<Sealer>,
    db: sled::Db,
}

fn internal(e: impl std::fmt::Display) -> BackendError {
    BackendError::Internal(format!("embedded backend: {e}"))
}

const SIGNING_KEY: &[u8] = b"signing-key/es256";

/// Makes a signing key, stores it sealed (durably) and returns its signer.
fn store_new_signer(
    keys: &sled::Tree,
    sealer: &Sealer,
    issuer: Issuer,
) -> Result<TokenSigner, BackendError> {
    let (signer, secret) = TokenSigner::generate(issuer);
    keys.insert(SIGNING_KEY, sealer.seal(&secret, "keys/signing"))
        .map_err(internal)?;
    keys.flush().map_err(internal)?;
    Ok(signer)
}

impl EmbeddedBackend {
    /// Opens (or creates) the backend's store under `data_dir`.
    pub fn open(
        data_dir: &Path,
        engine: Arc<Mutex<FaceEngine>>,
        config: &EmbeddedConfig,
        rule: DecisionRule,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, BackendError> {
        create_private_dir(data_dir)?;
        let db = sled::open(data_dir.join("backend.sled")).map_err(|e| {
            BackendError::Internal(format!(
                "cannot open the store in {} ({e}); is another facegate process using it?",
                data_dir.display()
            ))
        })?;
        let sealer = Arc::new(Sealer::open_or_create(data_dir).map_err(internal)?);
        let users = UserStore::new(db.open_tree("users").map_err(internal)?);
        let signin = SledObjectStore::open(&db, "signin", clock.clone())?;
        let signup = SledObjectStore::open(&db, "signup", clock.clone())?;
        let directory = SledDirectory::open(&db)?;
        let faces = LocalFaceIndex::open(&db, engine, sealer.clone())?;
        let ports = TriggerPorts {
            signin: Arc::new(signin.clone()),
            signup: Arc::new(signup.clone()),
            faces: Arc::new(faces.clone()),
            directory: Arc::new(directory.clone()),
            users: Arc::new(users.clone()),
            ledger: Arc::new(SledLedger::open(&db)?),
            clock,
            config: TriggerConfig {
                max_image_bytes: config.max_image_bytes,
                rule,
                lockout_failures: config.lockout_failures,
                lockout_window_ms: config.lockout_window_secs * 1000,
                ..TriggerConfig::default()
            },
        };
        let issuer = Issuer {
            issuer: config.issuer.clone(),
            client_id: config.client_id.clone(),
            token_validity_secs: config.token_validity_secs,
        };
        let keys = db.open_tree("keys").map_err(internal)?;
        let signer = match keys.get(SIGNING_KEY).map_err(internal)? {
            Some(sealed) => {
                let secret = sealer.open(&sealed, "keys/signing").map_err(internal)?;
                TokenSigner::from_secret(&secret, issuer)
                    .ok_or_else(|| internal("the stored signing key is damaged"))?
            }
            None => store_new_signer(&keys, &sealer, issuer)?,
        };
        let refresh = db.open_tree("refresh-tokens").map_err(internal)?;
        let pool = Arc::new(UserPool::new(
            users.clone(),
            ports.clone(),
            signer,
            refresh,
            config.refresh_validity_secs,
        ));
        Ok(Self {
            users,
            signin,
            signup,
            directory,
            faces,
            pool,
            ports,
            sealer,
            db,
        })
    }

    /// Replaces the token signing key with a new one (a new `kid` in the JWKS), stored first
    /// and then signing at once, and returns the new key set. Tokens signed with the old key stop
    /// verifying; refresh tokens are not signed and keep working.
    pub fn rotate_signing_key(&self) -> Result<Jwks, BackendError> {
        let keys = self.db.open_tree("keys").map_err(internal)?;
        let signer = store_new_signer(&keys, &self.sealer, self.pool.issuer())?;
        let jwks = signer.jwks();
        self.pool.replace_signer(signer);
        Ok(jwks)
    }

    /// The administrative enrollment path: creates the user if needed, adds groups, and
    /// indexes every photo through the sign-up store and the Index-faces trigger. All photos
    /// are checked first, so a refused photo leaves nothing behind. The photos themselves are
    /// deleted once indexed: only embeddings are kept.
    pub async fn enroll(
        &self,
        username: &str,
        name: &str,
        photos: &[Vec<u8>],
        groups: &[String],
    ) -> Result<EnrollReport, BackendError> {
        let username = normalize_username(username)?;
        if photos.is_empty() {
            return Err(BackendError::Rejected(
                "enrollment needs at least one photo".into(),
            ));
        }
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
                if let Some(other) = other.filter(|other| *other != username) {
                    warnings.push(format!(
                        "photo {} also matches {other} (similarity {:.3})",
                        i + 1,
                        hit.similarity
                    ));
                }
            }
        }
        let created = match self.users.get(&username)? {
            Some(_) => false,
            None => {
                self.users.create(&User {
                    username: username.clone(),
                    sub: uuid::Uuid::new_v4().to_string(),
                    name: name.to_string(),
                    enabled: true,
                    groups: BTreeSet::new(),
                    created_at_ms: self.ports.clock.now_ms(),
                })?;
                true
            }
        };
        let user = self.users.update(&username, |u| {
            u.groups.extend(groups.iter().cloned());
            if !name.is_empty() {
                u.name = name.to_string();
            }
        })?;
        let mut face_ids = Vec::new();
        for photo in photos {
            let key = triggers::signup_key(
                &self.ports.config.signup_prefix,
                &username,
                &uuid::Uuid::new_v4().to_string(),
            );
            self.signup.put(&key, photo.clone(), "image/jpeg").await?;
            let indexed = triggers::index_faces(&s3_event(&key), &self.ports).await;
            self.signup.delete(&key).await?;
            face_ids.extend(indexed?.into_iter().map(|f| f.face_id));
        }
        Ok(EnrollReport {
            user,
            created,
            face_ids,
            warnings,
        })
    }

    /// Deletes a user with every face and record.
    pub async fn delete_user(&self, username: &str) -> Result<bool, BackendError> {
        let username = normalize_username(username)?;
        let faces = self.directory.faces_of_user(&username).await?;
        self.faces.delete_faces(&faces).await?;
        for face in &faces {
            self.directory.delete_face(face).await?;
        }
        self.users.delete(&username)
    }

    /// Flushes everything to disk.
    pub fn flush(&self) -> Result<(), BackendError> {
        self.db.flush().map(|_| ()).map_err(internal)
    }
}

fn prefix(photo: usize, e: BackendError) -> BackendError {
    match e {
        BackendError::Rejected(reason) => {
            BackendError::Rejected(format!("photo {}: {reason}", photo + 1))
        }
        other => other,
    }
}

/// An S3 `ObjectCreated` event for `key`, as the sign-up bucket would send it.
fn s3_event(key: &str) -> S3Event {
    let mut record = S3EventRecord::default();
    record.event_name = Some("ObjectCreated:Put".into());
    record.s3.object.key = Some(key.replace(' ', "+"));
    let mut event = S3Event::default();
    event.records = vec![record];
    event
}

/// Creates `dir` readable by its owner only.
fn create_private_dir(dir: &Path) -> Result<(), BackendError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| BackendError::Internal(format!("cannot create {}: {e}", dir.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    Ok(())
}
