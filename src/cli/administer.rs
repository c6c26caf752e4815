//! Where `enroll`, `users` and `keys` run their request: through the running service's socket
//! when a service answers there (it holds the store), else on the store itself. The handler is
//! the same either way, so are the output and the exit codes.

use std::sync::Arc;

use super::{Failure, GlobalArgs, embedded_config, open_embedded_backend, runtime};
use crate::admin::{Admin, AdminError, Reply, Request, socket};
use crate::backend::embedded::erase;
use crate::store::grants::GrantStore;

/// Carries out `request` on the embedded backend of `global`'s config.
pub fn administer(global: &GlobalArgs, request: Request) -> Result<Reply, Failure> {
    let config = embedded_config(global)?;
    if let Some(reply) = socket::send(&config.data_dir, &request) {
        return reply.map_err(failure);
    }
    let backend = open_embedded_backend(&config)?;
    // With the service stopped, its store is free: a deleted person's offline grant goes too.
    let daemon_store = config.data_dir.join("daemon.sled");
    let daemon_db = match daemon_store.exists() {
        true => Some(crate::daemon::open_store(&config.data_dir).map_err(anyhow::Error::from)?),
        false => None,
    };
    let grants = match &daemon_db {
        Some(db) => {
            let sealer = Arc::new(
                crate::store::Sealer::open_or_create(&config.data_dir)
                    .map_err(anyhow::Error::from)?,
            );
            Some(GrantStore::open(db, sealer).map_err(anyhow::Error::from)?)
        }
        None => None,
    };
    let admin = Admin::new(Arc::new(backend), grants);
    let reply = runtime()?
        .block_on(admin.handle(request))
        .map_err(failure)?;
    // A deletion: with both stores closed, rewrite them so nothing deleted stays on disk.
    drop((admin, daemon_db));
    match reply {
        Reply::Deleted {
            user,
            offline_grant,
            removed,
            ..
        } => {
            erase::rewrite_stores(&config.data_dir).map_err(anyhow::Error::from)?;
            Ok(Reply::Deleted {
                user,
                offline_grant,
                removed,
                rewritten: true,
            })
        }
        other => Ok(other),
    }
}

fn failure(e: AdminError) -> Failure {
    anyhow::Error::from(e).into()
}
