//! Rewriting a sled store so that what was deleted is gone from the disk too. sled keeps
//! removed values in its log until it happens to reuse the segment; copying the live records
//! into a fresh store and swapping it in drops them for good.
//!
//! The swap survives a crash at any point: the fresh store is written beside the old one
//! (`NAME.compacting`), a marker (`NAME.compacted`) is made durable once it is complete, and
//! only then are the directories renamed. [`recover`] finishes or discards an interrupted
//! swap, so the store is always either the old one or the complete new one.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why a store could not be rewritten.
#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    #[error("cannot rewrite the store {path}: {error}")]
    Store { path: PathBuf, error: sled::Error },
    #[error("cannot rewrite the store {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// What a rewrite kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Compaction {
    pub trees: usize,
    pub records: usize,
}

/// The points of a rewrite, in order; tests stop after one to play a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Written,
    Marked,
    OldMoved,
    NewMoved,
    Done,
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

struct Paths {
    store: PathBuf,
    fresh: PathBuf,
    marker: PathBuf,
    old: PathBuf,
}

impl Paths {
    fn of(store: &Path) -> Self {
        Self {
            store: store.to_path_buf(),
            fresh: sibling(store, ".compacting"),
            marker: sibling(store, ".compacted"),
            old: sibling(store, ".old"),
        }
    }

    fn io(&self, error: std::io::Error) -> CompactError {
        CompactError::Io {
            path: self.store.clone(),
            error,
        }
    }

    fn sled(&self, error: sled::Error) -> CompactError {
        CompactError::Store {
            path: self.store.clone(),
            error,
        }
    }

    /// Makes the renames and removals in the store's directory durable.
    fn sync_dir(&self) -> Result<(), CompactError> {
        let dir = self.store.parent().unwrap_or(Path::new("."));
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| self.io(e))
    }
}

/// Rewrites the store at `path` with the live records of every tree `keep` accepts; `finish`
/// runs on the fresh store before it replaces the old one (a schema version, say). The store
/// must not be open.
pub fn compact(
    path: &Path,
    keep: impl Fn(&[u8]) -> bool,
    finish: impl FnOnce(&sled::Db) -> sled::Result<()>,
) -> Result<Compaction, CompactError> {
    compact_until(path, keep, finish, Step::Done)
}

fn compact_until(
    path: &Path,
    keep: impl Fn(&[u8]) -> bool,
    finish: impl FnOnce(&sled::Db) -> sled::Result<()>,
    stop: Step,
) -> Result<Compaction, CompactError> {
    recover(path)?;
    let paths = Paths::of(path);
    let copied = {
        let old = sled::open(&paths.store).map_err(|e| paths.sled(e))?;
        let fresh = sled::open(&paths.fresh).map_err(|e| paths.sled(e))?;
        let copied = copy_trees(&old, &fresh, &keep).map_err(|e| paths.sled(e))?;
        finish(&fresh).map_err(|e| paths.sled(e))?;
        fresh.flush().map_err(|e| paths.sled(e))?;
        copied
    };
    if stop == Step::Written {
        return Ok(copied);
    }
    let mut marker = File::create(&paths.marker).map_err(|e| paths.io(e))?;
    marker
        .write_all(b"complete\n")
        .and_then(|_| marker.sync_all())
        .map_err(|e| paths.io(e))?;
    paths.sync_dir()?;
    if stop == Step::Marked {
        return Ok(copied);
    }
    fs::rename(&paths.store, &paths.old).map_err(|e| paths.io(e))?;
    paths.sync_dir()?;
    if stop == Step::OldMoved {
        return Ok(copied);
    }
    fs::rename(&paths.fresh, &paths.store).map_err(|e| paths.io(e))?;
    paths.sync_dir()?;
    if stop == Step::NewMoved {
        return Ok(copied);
    }
    finish_swap(&paths)?;
    Ok(copied)
}

fn copy_trees(
    old: &sled::Db,
    fresh: &sled::Db,
    keep: &impl Fn(&[u8]) -> bool,
) -> sled::Result<Compaction> {
    let mut copied = Compaction::default();
    for name in old.tree_names() {
        if !keep(&name) {
            continue;
        }
        let (from, to) = (old.open_tree(&name)?, fresh.open_tree(&name)?);
        for entry in from.iter() {
            let (key, value) = entry?;
            to.insert(key, value)?;
            copied.records += 1;
        }
        copied.trees += 1;
    }
    Ok(copied)
}

/// Finishes or discards a rewrite that a crash interrupted; does nothing otherwise. Run before
/// opening the store.
pub fn recover(path: &Path) -> Result<(), CompactError> {
    let paths = Paths::of(path);
    if paths.marker.exists() {
        // The fresh store is complete: finish the swap wherever it stopped.
        if paths.fresh.exists() {
            if paths.store.exists() && !paths.old.exists() {
                fs::rename(&paths.store, &paths.old).map_err(|e| paths.io(e))?;
                paths.sync_dir()?;
            }
            if !paths.store.exists() {
                fs::rename(&paths.fresh, &paths.store).map_err(|e| paths.io(e))?;
                paths.sync_dir()?;
            }
        }
        return finish_swap(&paths);
    }
    // No marker: a fresh store is unfinished, and the old one is still the store.
    if paths.fresh.exists() {
        fs::remove_dir_all(&paths.fresh).map_err(|e| paths.io(e))?;
    }
    if paths.old.exists() {
        if paths.store.exists() {
            erase_dir(&paths.old).map_err(|e| paths.io(e))?;
        } else {
            fs::rename(&paths.old, &paths.store).map_err(|e| paths.io(e))?;
        }
    }
    paths.sync_dir()
}

/// Drops the marker, then overwrites and removes the old store.
fn finish_swap(paths: &Paths) -> Result<(), CompactError> {
    fs::remove_file(&paths.marker).map_err(|e| paths.io(e))?;
    paths.sync_dir()?;
    if paths.old.exists() {
        erase_dir(&paths.old).map_err(|e| paths.io(e))?;
    }
    paths.sync_dir()
}

/// Overwrites every file under `dir` with zeros, then removes it. On a plain file system that
/// clears the blocks the old records were in; flash wear levelling may still keep copies,
/// which only full-disk encryption rules out (docs/operations.md).
fn erase_dir(dir: &Path) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            erase_dir(&entry.path())?;
        } else if kind.is_file() {
            let mut file = OpenOptions::new().write(true).open(entry.path())?;
            let mut left = file.metadata()?.len();
            let zeros = [0u8; 64 * 1024];
            while left > 0 {
                let n = left.min(zeros.len() as u64) as usize;
                file.write_all(&zeros[..n])?;
                left -= n as u64;
            }
            file.sync_all()?;
        }
    }
    fs::remove_dir_all(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"PLAINTEXT-FACE-PHOTO-0123456789";

    /// A store with a kept record in `users`, a deleted secret in `objects`, and a tree to drop.
    fn store(dir: &Path) -> PathBuf {
        let path = dir.join("backend.sled");
        let db = sled::open(&path).unwrap();
        db.open_tree("users").unwrap().insert("ana", "Ana").unwrap();
        let objects = db.open_tree("objects").unwrap();
        objects.insert("photo", SECRET).unwrap();
        objects.remove("photo").unwrap();
        db.open_tree("dropped")
            .unwrap()
            .insert("frame", SECRET)
            .unwrap();
        db.flush().unwrap();
        path
    }

    fn files_hold(dir: &Path, needle: &[u8]) -> bool {
        fs::read_dir(dir).unwrap().any(|e| {
            let path = e.unwrap().path();
            if path.is_dir() {
                files_hold(&path, needle)
            } else {
                let bytes = fs::read(&path).unwrap();
                bytes.windows(needle.len()).any(|w| w == needle)
            }
        })
    }

    fn user(path: &Path) -> Option<Vec<u8>> {
        let db = sled::open(path).unwrap();
        let value = db.open_tree("users").unwrap().get("ana").unwrap();
        value.map(|v| v.to_vec())
    }

    fn keep(name: &[u8]) -> bool {
        name != b"dropped"
    }

    #[test]
    fn deleted_records_are_gone_from_the_disk_after_a_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = store(dir.path());
        assert!(files_hold(dir.path(), SECRET), "sled keeps deleted values");
        let done = compact(&path, keep, |db| db.insert("schema", "2").map(|_| ())).unwrap();
        assert!(done.records >= 1, "{done:?}");
        assert!(
            !files_hold(dir.path(), SECRET),
            "the secret is still on disk"
        );
        assert_eq!(user(&path), Some(b"Ana".to_vec()));
        let db = sled::open(&path).unwrap();
        assert!(db.get("schema").unwrap().is_some());
        assert!(!db.tree_names().iter().any(|n| &n[..] == b"dropped"));
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("backend.sled")],
            "leftovers"
        );
    }

    #[test]
    fn a_crash_at_any_point_of_the_rewrite_loses_nothing() {
        for stop in [Step::Written, Step::Marked, Step::OldMoved, Step::NewMoved] {
            let dir = tempfile::tempdir().unwrap();
            let path = store(dir.path());
            compact_until(&path, keep, |_| Ok(()), stop).unwrap();
            recover(&path).unwrap();
            assert_eq!(
                user(&path),
                Some(b"Ana".to_vec()),
                "after a crash at {stop:?}"
            );
            let names: Vec<_> = fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(
                names.len(),
                1,
                "leftovers after a crash at {stop:?}: {names:?}"
            );
            // From `Marked` on, the rewrite completes; before it, the old store stays.
            assert_eq!(
                files_hold(dir.path(), SECRET),
                stop == Step::Written,
                "after a crash at {stop:?}"
            );
        }
    }
}
