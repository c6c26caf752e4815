//! The embedded store's schema version, and the one rewrite an upgrade needs. Before version 2
//! sign-in frames and enrollment photos were written into the store unsealed, and sled keeps
//! deleted values in its log: opening such a store rewrites it without them, once, crash-safe
//! (`store::compact`). A deletion the store could not be rewritten for at once (the service
//! held it) marks it, and the next open rewrites it the same way.

use std::path::Path;

use crate::backend::BackendError;
use crate::store::compact;

/// The version of the store this build writes.
pub const SCHEMA_VERSION: u32 = 2;

const SCHEMA_TREE: &str = "schema";
const VERSION_KEY: &[u8] = b"version";
/// Set when records were deleted while the store could not be rewritten (the service held
/// it): the next open rewrites it.
const REWRITE_KEY: &[u8] = b"rewrite-pending";

/// The trees of version 1 that held raw images: dropped by the rewrite.
const RAW_IMAGE_TREES: [&[u8]; 4] = [
    b"objects/signin/meta",
    b"objects/signin/data",
    b"objects/signup/meta",
    b"objects/signup/data",
];

fn internal(e: impl std::fmt::Display) -> BackendError {
    BackendError::Internal(format!("embedded store: {e}"))
}

fn open(path: &Path) -> Result<sled::Db, BackendError> {
    sled::open(path).map_err(|e| {
        BackendError::Internal(format!(
            "cannot open the store {} ({e}); is another facegate process using it?",
            path.display()
        ))
    })
}

/// The version `db` was written at; `None` before versions were recorded.
pub(super) fn version(db: &sled::Db) -> Result<Option<u32>, BackendError> {
    let tree = db.open_tree(SCHEMA_TREE).map_err(internal)?;
    let Some(bytes) = tree.get(VERSION_KEY).map_err(internal)? else {
        return Ok(None);
    };
    let bytes: [u8; 4] = bytes[..]
        .try_into()
        .map_err(|_| internal("the schema version is damaged"))?;
    Ok(Some(u32::from_be_bytes(bytes)))
}

fn set_version(db: &sled::Db) -> sled::Result<()> {
    let schema = db.open_tree(SCHEMA_TREE)?;
    schema.insert(VERSION_KEY, &SCHEMA_VERSION.to_be_bytes())?;
    schema.remove(REWRITE_KEY)?;
    db.flush().map(|_| ())
}

/// Marks `db` to be rewritten at its next open: something was deleted.
pub(super) fn mark_for_rewrite(db: &sled::Db) -> Result<(), BackendError> {
    let schema = db.open_tree(SCHEMA_TREE).map_err(internal)?;
    schema.insert(REWRITE_KEY, &[1]).map_err(internal)?;
    schema.flush().map_err(internal)?;
    Ok(())
}

fn rewrite_pending(db: &sled::Db) -> Result<bool, BackendError> {
    let schema = db.open_tree(SCHEMA_TREE).map_err(internal)?;
    schema.contains_key(REWRITE_KEY).map_err(internal)
}

/// Opens the store at `path` at [`SCHEMA_VERSION`], finishing an interrupted rewrite and
/// rewriting a store of an earlier version first.
pub(super) fn open_current(path: &Path) -> Result<sled::Db, BackendError> {
    compact::recover(path).map_err(internal)?;
    let db = open(path)?;
    match version(&db)? {
        Some(SCHEMA_VERSION) if !rewrite_pending(&db)? => return Ok(db),
        Some(SCHEMA_VERSION) => {}
        Some(newer) if newer > SCHEMA_VERSION => {
            return Err(BackendError::Internal(format!(
                "the store {} was written by a newer facegate (schema {newer}, this one reads \
                 {SCHEMA_VERSION}); install that version again",
                path.display()
            )));
        }
        None if !db.was_recovered() => {
            set_version(&db).map_err(internal)?;
            return Ok(db);
        }
        _ => {}
    }
    drop(db);
    tracing::warn!(
        store = %path.display(),
        "rewriting the store without what was deleted from it (and the raw images versions \
         before schema 2 left in it)"
    );
    compact::compact(path, |name| !RAW_IMAGE_TREES.contains(&name), set_version)
        .map_err(internal)?;
    open(path)
}

/// Rewrites the store at `path` (not open) so that deleted records leave the disk.
pub fn rewrite(path: &Path) -> Result<compact::Compaction, BackendError> {
    compact::compact(path, |name| !RAW_IMAGE_TREES.contains(&name), set_version).map_err(internal)
}
