//! Forgetting a person: everything this device holds about them goes — faces (embeddings and
//! directory records), refresh tokens, kept photos, the user, and the door's offline grant —
//! and then the stores are rewritten, so none of it lingers in sled's log either.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Deleted, EmbeddedBackend, store_path, upgrade};
use crate::backend::BackendError;
use crate::store::compact;
use crate::store::grants::GrantStore;

/// What forgetting a person removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Erasure {
    #[serde(flatten)]
    pub deleted: Deleted,
    /// Whether the door held an offline grant for them.
    pub offline_grant: bool,
    /// The stores rewritten without the deleted records.
    pub rewritten: Vec<PathBuf>,
}

fn internal(e: impl std::fmt::Display) -> BackendError {
    BackendError::Internal(format!("erasing a person: {e}"))
}

/// The daemon's store in `data_dir` (grants, audit outbox).
fn daemon_store(data_dir: &Path) -> PathBuf {
    data_dir.join("daemon.sled")
}

/// Deletes `username` from `backend` (which is closed afterwards: the stores are rewritten),
/// revokes their offline grant, and rewrites both stores. `None` when there is no such user;
/// nothing is changed then.
pub async fn erase_person(
    data_dir: &Path,
    backend: EmbeddedBackend,
    username: &str,
) -> Result<Option<Erasure>, BackendError> {
    let sealer = backend.sealer.clone();
    let Some(deleted) = backend.delete_user(username).await? else {
        return Ok(None);
    };
    backend.flush()?;
    drop(backend);
    let mut rewritten = Vec::new();
    let backend_store = store_path(data_dir);
    upgrade::rewrite(&backend_store)?;
    rewritten.push(backend_store);
    let mut offline_grant = false;
    let grants_store = daemon_store(data_dir);
    if grants_store.exists() {
        {
            let db = sled::open(&grants_store).map_err(internal)?;
            let grants = GrantStore::open(&db, sealer).map_err(internal)?;
            offline_grant = grants.revoke(&deleted.username).map_err(internal)?;
            db.flush().map_err(internal)?;
        }
        compact::compact(&grants_store, |_| true, |_| Ok(())).map_err(internal)?;
        rewritten.push(grants_store);
    }
    Ok(Some(Erasure {
        deleted,
        offline_grant,
        rewritten,
    }))
}
