//! Rewriting the stores after a person is deleted, so that none of their records stays in
//! sled's log. With the stores free (the service stopped) it happens at once; a deletion by
//! the running service marks the backend's store instead, and the next start rewrites it.

use std::path::{Path, PathBuf};

use super::{store_path, upgrade};
use crate::backend::BackendError;
use crate::store::compact;

fn internal(e: impl std::fmt::Display) -> BackendError {
    BackendError::Internal(format!("rewriting the stores: {e}"))
}

/// Rewrites the backend's store and the daemon's (grants, audit outbox) in `data_dir`, which
/// must both be closed; the paths rewritten.
pub fn rewrite_stores(data_dir: &Path) -> Result<Vec<PathBuf>, BackendError> {
    let mut rewritten = Vec::new();
    let backend = store_path(data_dir);
    upgrade::rewrite(&backend)?;
    rewritten.push(backend);
    let daemon = data_dir.join("daemon.sled");
    if daemon.exists() {
        compact::compact(&daemon, |_| true, |_| Ok(())).map_err(internal)?;
        rewritten.push(daemon);
    }
    Ok(rewritten)
}
