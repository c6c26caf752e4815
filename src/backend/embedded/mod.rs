//! The embedded backend: the seed's cloud side, self-hosted on the device over one sled
//! database: user pool, face index, directory, token keys; the sign-in and sign-up stores are
//! in memory, so no raw face reaches the disk. It runs the same trigger code as the Lambda.

mod enroll;
pub mod erase;
mod face_index;
mod photos;
mod pool;
mod store;
pub mod tokens;
mod upgrade;
pub mod users;

use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

pub use enroll::{EnrollReport, Enrollment};
pub use face_index::{LocalFaceIndex, enrollable_face, enrollment_refusal};
pub use photos::KeptPhotos;
pub use pool::UserPool;
pub use store::{MemoryObjectStore, SledDirectory, SledLedger};
pub use upgrade::SCHEMA_VERSION;
pub use users::{User, UserStore, normalize_username};

use self::tokens::{Issuer, TokenSigner};
use super::triggers::{TriggerConfig, TriggerPorts};
use super::{BackendError, Directory, FaceIndex};
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
    /// Days an enrollment photo is kept (sealed) after its face is indexed; 0: not kept.
    pub photo_retention_days: u32,
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
            photo_retention_days: 0,
            lockout_failures: 5,
            lockout_window_secs: 15 * 60,
        }
    }
}

/// The longest `photo_retention_days` a config may set.
pub const MAX_PHOTO_RETENTION_DAYS: u32 = 365;
/// The longest `refresh_validity_secs` a config may set (Cognito's own limit, ten years).
pub const MAX_REFRESH_VALIDITY_SECS: u64 = 3650 * 86_400;

impl EmbeddedConfig {
    /// Values out of their safe range, naming the key (`config.rs` checks the rest).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(60..=MAX_REFRESH_VALIDITY_SECS).contains(&self.refresh_validity_secs) {
            problems.push(format!(
                "backend.embedded.refresh_validity_secs = {} must be 60 to {MAX_REFRESH_VALIDITY_SECS} \
                 (ten years)",
                self.refresh_validity_secs
            ));
        }
        let max_bytes = crate::vision::image_io::MAX_BYTES_LIMIT;
        if self.max_image_bytes > max_bytes {
            problems.push(format!(
                "backend.embedded.max_image_bytes = {} must be at most {max_bytes} (64 MiB)",
                self.max_image_bytes
            ));
        }
        if self.photo_retention_days > MAX_PHOTO_RETENTION_DAYS {
            problems.push(format!(
                "backend.embedded.photo_retention_days = {} must be 0 (photos are not kept) to \
                 {MAX_PHOTO_RETENTION_DAYS}",
                self.photo_retention_days
            ));
        }
        problems
    }
}

/// Every embedded adapter, over one database.
pub struct EmbeddedBackend {
    pub users: UserStore,
    /// Sign-in frames, in memory only.
    pub signin: MemoryObjectStore,
    /// Enrollment photos on their way to the index, in memory only.
    pub signup: MemoryObjectStore,
    pub directory: SledDirectory,
    pub faces: LocalFaceIndex,
    /// Enrollment photos kept sealed when `photo_retention_days` asks for it.
    pub photos: KeptPhotos,
    pub pool: Arc<UserPool>,
    pub ports: TriggerPorts,
    photo_retention_days: u32,
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
        let db = upgrade::open_current(&store_path(data_dir))?;
        let sealer = Arc::new(Sealer::open_or_create(data_dir).map_err(internal)?);
        let users = UserStore::new(db.open_tree("users").map_err(internal)?);
        let trigger_config = TriggerConfig {
            max_image_bytes: config.max_image_bytes,
            rule,
            lockout_failures: config.lockout_failures,
            lockout_window_ms: config.lockout_window_secs * 1000,
            ..TriggerConfig::default()
        };
        // A few frames or photos at once at most (each one is read within its challenge or its
        // enrollment), and none past the challenge's lifetime.
        let (ttl, room) = (trigger_config.challenge_ttl_ms, 4 * config.max_image_bytes);
        let signin = MemoryObjectStore::new(clock.clone(), ttl, room);
        let signup = MemoryObjectStore::new(clock.clone(), ttl, room);
        let directory = SledDirectory::open(&db)?;
        let faces = LocalFaceIndex::open(&db, engine, sealer.clone())?;
        let photos = KeptPhotos::open(&db, sealer.clone(), clock.clone())?;
        photos.purge_expired()?;
        let ports = TriggerPorts {
            signin: Arc::new(signin.clone()),
            signup: Arc::new(signup.clone()),
            faces: Arc::new(faces.clone()),
            directory: Arc::new(directory.clone()),
            users: Arc::new(users.clone()),
            ledger: Arc::new(SledLedger::open(&db)?),
            clock,
            config: trigger_config,
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
        pool.prune_refresh_tokens()?;
        Ok(Self {
            users,
            signin,
            signup,
            directory,
            faces,
            photos,
            pool,
            ports,
            photo_retention_days: config.photo_retention_days,
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

    /// Deletes a person with every trace the backend holds: faces (embeddings and directory
    /// records), refresh tokens, failed answers in the ledger, kept photos and the user. `None` when there is no such user.
    /// The records leave the disk when the store is rewritten: at once when the caller can
    /// close it ([`erase::rewrite_stores`]), else at its next open (it is marked).
    pub async fn delete_user(&self, username: &str) -> Result<Option<Deleted>, BackendError> {
        let username = normalize_username(username)?;
        let faces = self.directory.faces_of_user(&username).await?;
        self.faces.delete_faces(&faces).await?;
        for face in &faces {
            self.directory.delete_face(face).await?;
        }
        let refresh_tokens = self.pool.revoke_refresh_tokens(&username)?;
        self.ports.ledger.clear_failures(&username).await?;
        let photos = self.photos.forget(&username)?;
        let existed = self.users.delete(&username)?;
        if existed {
            upgrade::mark_for_rewrite(&self.db)?;
        }
        Ok(existed.then_some(Deleted {
            username,
            faces: faces.len(),
            refresh_tokens,
            photos,
        }))
    }

    /// Flushes everything to disk.
    pub fn flush(&self) -> Result<(), BackendError> {
        self.db.flush().map(|_| ()).map_err(internal)
    }
}

/// What deleting a person removed from the backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    pub username: String,
    /// Faces: their embeddings and directory records.
    pub faces: usize,
    pub refresh_tokens: usize,
    /// Kept enrollment photos.
    pub photos: usize,
}

/// The backend's sled store in `data_dir`.
pub fn store_path(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("backend.sled")
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
