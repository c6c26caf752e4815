//! A bounded durable outbox in sled: records appended (and flushed) under growing sequence
//! numbers, read oldest first, forgotten once acknowledged. The audit trail and each webhook
//! target keep one; a crash or `kill -9` loses no record whose append returned.
//!
//! Full, it drops the oldest records and tells the caller how many, so the gap can be shipped
//! and counted. Handles are cheap clones of the same trees; sequence numbers are handed out
//! atomically, so several handles may append at once.

/// One stored record.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub seq: u64,
    pub bytes: Vec<u8>,
}

/// The outbox: `<name>/outbox` (records) and `<name>/meta` (the last sequence number).
#[derive(Clone)]
pub struct Outbox {
    tree: sled::Tree,
    meta: sled::Tree,
    capacity: usize,
}

impl Outbox {
    pub fn open(db: &sled::Db, name: &str, capacity: usize) -> sled::Result<Self> {
        Ok(Self {
            tree: db.open_tree(format!("{name}/outbox"))?,
            meta: db.open_tree(format!("{name}/meta"))?,
            capacity: capacity.max(1),
        })
    }

    /// Drops the oldest records until one more fits, then appends `encode(dropped)`; durable on
    /// disk when this returns. Returns the new record's sequence number and how many dropped.
    pub fn append(&self, encode: impl FnOnce(u64) -> Vec<u8>) -> sled::Result<(u64, u64)> {
        let mut dropped = 0;
        while self.tree.len() >= self.capacity {
            if self.tree.pop_min()?.is_none() {
                break;
            }
            dropped += 1;
        }
        let seq = self.next_seq()?;
        self.tree.insert(seq.to_be_bytes(), encode(dropped))?;
        self.tree.flush()?;
        Ok((seq, dropped))
    }

    /// Up to `limit` records, oldest first.
    pub fn pending(&self, limit: usize) -> sled::Result<Vec<Stored>> {
        self.tree
            .iter()
            .take(limit)
            .map(|entry| {
                let (key, value) = entry?;
                let seq = key.as_ref().try_into().map(u64::from_be_bytes).unwrap_or(0);
                Ok(Stored {
                    seq,
                    bytes: value.to_vec(),
                })
            })
            .collect()
    }

    /// Forgets every record up to and including `seq`.
    pub fn acknowledge(&self, seq: u64) -> sled::Result<()> {
        for key in self.tree.range(..=seq.to_be_bytes()).keys() {
            self.tree.remove(key?)?;
        }
        self.tree.flush()?;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.tree.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// One more than any sequence number ever handed out, kept in `meta` so numbers are never
    /// reused after the outbox empties; atomic, so concurrent appends never share one.
    fn next_seq(&self) -> sled::Result<u64> {
        let be = |v: &[u8]| v.try_into().ok().map(u64::from_be_bytes);
        let last = self.tree.last()?.and_then(|(k, _)| be(&k)).unwrap_or(0);
        let seq = self
            .meta
            .update_and_fetch(b"seq", |old| {
                let stored = old.and_then(be).unwrap_or(0);
                Some((stored.max(last) + 1).to_be_bytes().to_vec())
            })?
            .and_then(|v| be(&v))
            .unwrap_or(last + 1);
        self.meta.flush()?;
        Ok(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopening_and_numbers_are_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path().join("db")).unwrap();
            let outbox = Outbox::open(&db, "t", 10).unwrap();
            for i in 0..3u8 {
                outbox.append(|_| vec![i]).unwrap();
            }
        }
        let db = sled::open(dir.path().join("db")).unwrap();
        let outbox = Outbox::open(&db, "t", 10).unwrap();
        let pending = outbox.pending(10).unwrap();
        assert_eq!(pending.iter().map(|s| s.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(pending[2].bytes, [2]);
        outbox.acknowledge(3).unwrap();
        assert!(outbox.is_empty());
        assert_eq!(outbox.append(|_| vec![9]).unwrap(), (4, 0));
    }

    #[test]
    fn a_full_outbox_drops_the_oldest_and_says_how_many() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let outbox = Outbox::open(&db, "t", 2).unwrap();
        let mut seen = Vec::new();
        for i in 0..4u8 {
            outbox
                .append(|dropped| {
                    seen.push(dropped);
                    vec![i]
                })
                .unwrap();
        }
        assert_eq!(seen, [0, 0, 1, 1]);
        let seqs: Vec<u64> = outbox.pending(9).unwrap().iter().map(|s| s.seq).collect();
        assert_eq!(seqs, [3, 4]);
    }

    #[test]
    fn concurrent_handles_never_share_a_number() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let outbox = Outbox::open(&db, "t", 10_000).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let outbox = outbox.clone();
                std::thread::spawn(move || {
                    (0..50)
                        .map(|_| outbox.append(|_| vec![]).unwrap().0)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<u64> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 200);
        assert_eq!(outbox.len(), 200);
    }
}
