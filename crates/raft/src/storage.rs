//! The persistence contract ([`Storage`]) and an in-memory implementation ([`MemStorage`]).
//!
//! Raft reads *stable* state through `Storage`; it never writes it. The caller persists
//! what a [`crate::Ready`] hands out (entries, hard state, snapshot) into its storage and
//! then calls `advance`. Invariants a `Storage` must uphold:
//! * entries are contiguous from `first_index()` to `last_index()`;
//! * `term(first_index() - 1)` returns the term of the last compacted entry (the snapshot);
//! * `initial_state()` reflects the last persisted hard state and conf state.

use std::cmp;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use crate::errors::{Result, StorageError};
use crate::util::limit_size;

/// Persisted state read when a node starts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RaftState {
    /// Term, vote and commit.
    pub hard_state: HardState,
    /// Membership as of the last applied configuration entry / snapshot.
    pub conf_state: ConfState,
}

/// Read access to the stable log. Errors other than `Compacted`/`Unavailable` are treated
/// as fatal by raft for reads it cannot do without.
pub trait Storage {
    /// Hard state and conf state at startup.
    fn initial_state(&self) -> Result<RaftState>;
    /// Entries in `[low, high)`, at most `max_size` bytes (but at least one entry).
    fn entries(&self, low: u64, high: u64, max_size: Option<u64>) -> Result<Vec<Entry>>;
    /// Term of the entry at `idx`; valid for `first_index() - 1 ..= last_index()`.
    fn term(&self, idx: u64) -> Result<u64>;
    /// Index of the first available entry (snapshot index + 1).
    fn first_index(&self) -> Result<u64>;
    /// Index of the last entry (snapshot index if the log is empty).
    fn last_index(&self) -> Result<u64>;
    /// The most recent snapshot, whose index must be `>= request_index`. `to` is the peer
    /// it is for. May return `SnapshotTemporarilyUnavailable` while one is being built.
    fn snapshot(&self, request_index: u64, to: u64) -> Result<Snapshot>;
}

/// The state of a [`MemStorage`].
#[derive(Debug, Default)]
pub struct MemStorageCore {
    hard_state: HardState,
    conf_state: ConfState,
    snapshot_metadata: SnapshotMetadata,
    snapshot_data: bytes::Bytes,
    // entries[i].index == snapshot_metadata.index + 1 + i
    entries: Vec<Entry>,
    // `compact` moved the compaction point past the last snapshot: `snapshot_data` and the
    // conf state no longer describe `snapshot_metadata.index`.
    snapshot_stale: bool,
    /// When set, `snapshot()` returns `SnapshotTemporarilyUnavailable` (for tests).
    pub trigger_snap_unavailable: bool,
}

impl MemStorageCore {
    fn first_index(&self) -> u64 {
        self.snapshot_metadata.index + 1
    }

    fn last_index(&self) -> u64 {
        self.snapshot_metadata.index + self.entries.len() as u64
    }

    /// Persisted hard state.
    pub fn hard_state(&self) -> &HardState {
        &self.hard_state
    }

    /// Saves the hard state.
    pub fn set_hardstate(&mut self, hs: HardState) {
        self.hard_state = hs;
    }

    /// Saves the conf state.
    pub fn set_conf_state(&mut self, cs: ConfState) {
        self.conf_state = cs;
    }

    /// Sets the commit index of the hard state.
    pub fn commit_to(&mut self, index: u64) -> Result<()> {
        if index > self.last_index() {
            return Err(StorageError::Unavailable.into());
        }
        self.hard_state.commit = index;
        Ok(())
    }

    /// Appends entries, truncating any conflicting suffix. Entries older than the first
    /// index are ignored. Panics if the entries leave a gap.
    pub fn append(&mut self, ents: &[Entry]) -> Result<()> {
        if ents.is_empty() {
            return Ok(());
        }
        let first = self.first_index();
        if ents[0].index + ents.len() as u64 <= first {
            return Ok(());
        }
        let ents = if ents[0].index < first {
            &ents[(first - ents[0].index) as usize..]
        } else {
            ents
        };
        let idx = ents[0].index;
        assert!(
            idx <= self.last_index() + 1,
            "[raft] MemStorage: gap appending entry {idx}, last index {}",
            self.last_index()
        );
        self.entries.truncate((idx - first) as usize);
        self.entries.extend_from_slice(ents);
        Ok(())
    }

    /// Replaces the state with a snapshot (log is discarded).
    pub fn apply_snapshot(&mut self, snap: Snapshot) -> Result<()> {
        let meta = snap.metadata.clone().unwrap_or_default();
        if self.first_index() > meta.index {
            return Err(StorageError::SnapshotOutOfDate.into());
        }
        self.hard_state.commit = cmp::max(self.hard_state.commit, meta.index);
        if self.hard_state.term < meta.term {
            self.hard_state.term = meta.term;
        }
        self.conf_state = meta.conf_state.clone().unwrap_or_default();
        self.snapshot_metadata = meta;
        self.snapshot_data = snap.data;
        self.snapshot_stale = false;
        self.entries.clear();
        Ok(())
    }

    /// Discards entries up to and including `compact_index - 1` (`compact_index` becomes the
    /// first index). The term of `compact_index - 1` is remembered. Compacting past the last
    /// snapshot makes `Storage::snapshot` return `SnapshotTemporarilyUnavailable` until
    /// `create_snapshot` is called again.
    pub fn compact(&mut self, compact_index: u64) -> Result<()> {
        if compact_index <= self.first_index() {
            return Ok(());
        }
        if compact_index > self.last_index() + 1 {
            return Err(StorageError::Unavailable.into());
        }
        let n = (compact_index - self.first_index()) as usize;
        let last_compacted = &self.entries[n - 1];
        self.snapshot_metadata.index = last_compacted.index;
        self.snapshot_metadata.term = last_compacted.term;
        // The stored snapshot data is older than the new compaction point: it must not be
        // sent labelled with this index (a follower would install an old state as if it
        // were the state at `compact_index - 1`). `create_snapshot` makes it valid again.
        self.snapshot_stale = true;
        self.entries.drain(..n);
        Ok(())
    }

    /// Records a snapshot at `index` with the application's `data` and the membership
    /// `cs` as of that index, then compacts the log up to it. `index` must be in the log.
    /// The conf state returned by `initial_state` becomes `cs`.
    pub fn create_snapshot(&mut self, index: u64, cs: ConfState, data: bytes::Bytes) -> Result<()> {
        if index < self.snapshot_metadata.index {
            return Err(StorageError::SnapshotOutOfDate.into());
        }
        if index > self.last_index() {
            return Err(StorageError::Unavailable.into());
        }
        let term = if index == self.snapshot_metadata.index {
            self.snapshot_metadata.term
        } else {
            self.entries[(index - self.first_index()) as usize].term
        };
        let n = (index + 1 - self.first_index()) as usize;
        self.entries.drain(..n);
        self.conf_state = cs.clone();
        self.snapshot_metadata = SnapshotMetadata {
            conf_state: Some(cs),
            index,
            term,
        };
        self.snapshot_data = data;
        self.snapshot_stale = false;
        Ok(())
    }

    /// The current snapshot (metadata + data). After `compact` past the last snapshot the
    /// metadata index is the compaction point while the data is older; use
    /// `Storage::snapshot`, which refuses to hand out such a snapshot.
    pub fn snapshot(&self) -> Snapshot {
        let mut meta = self.snapshot_metadata.clone();
        if meta.conf_state.is_none() {
            meta.conf_state = Some(self.conf_state.clone());
        }
        Snapshot {
            data: self.snapshot_data.clone(),
            metadata: Some(meta),
        }
    }

    /// All entries currently in the log.
    pub fn all_entries(&self) -> &[Entry] {
        &self.entries
    }
}

/// A thread-safe in-memory [`Storage`], cheap to clone (shared state). Meant for tests and
/// for the benchmark; durable storage lives in the application.
#[derive(Clone, Default, Debug)]
pub struct MemStorage {
    core: Arc<RwLock<MemStorageCore>>,
}

impl MemStorage {
    /// An empty storage (no configuration). Use [`MemStorage::new_with_conf_state`] to
    /// bootstrap a new cluster.
    pub fn new() -> Self {
        Self::default()
    }

    /// A storage with the given membership at index 0 (empty log). Convenient for tests
    /// where every member starts with the same membership; for nodes that may join later,
    /// bootstrap founders with [`MemStorage::new_bootstrapped`] instead.
    pub fn new_with_conf_state(cs: ConfState) -> Self {
        let s = Self::default();
        s.wl().conf_state = cs;
        s
    }

    /// A storage for a founding member of a new group: the membership `cs` is recorded
    /// as a snapshot at index 1, term 1 (like raft-rs). Nodes that join later start from
    /// [`MemStorage::new`] (index 0): the gap forces the leader to send them a snapshot,
    /// which carries the initial membership they could not otherwise learn from the log.
    pub fn new_bootstrapped(cs: ConfState) -> Self {
        let s = Self::default();
        {
            let mut c = s.wl();
            c.conf_state = cs.clone();
            c.snapshot_metadata = SnapshotMetadata {
                conf_state: Some(cs),
                index: 1,
                term: 1,
            };
            c.hard_state = HardState {
                term: 1,
                vote: 0,
                commit: 1,
            };
        }
        s
    }

    /// Read lock.
    pub fn rl(&self) -> RwLockReadGuard<'_, MemStorageCore> {
        self.core.read().expect("MemStorage lock poisoned")
    }

    /// Write lock.
    pub fn wl(&self) -> RwLockWriteGuard<'_, MemStorageCore> {
        self.core.write().expect("MemStorage lock poisoned")
    }
}

impl Storage for MemStorage {
    fn initial_state(&self) -> Result<RaftState> {
        let c = self.rl();
        Ok(RaftState {
            hard_state: c.hard_state,
            conf_state: c.conf_state.clone(),
        })
    }

    fn entries(&self, low: u64, high: u64, max_size: Option<u64>) -> Result<Vec<Entry>> {
        let c = self.rl();
        if low < c.first_index() {
            return Err(StorageError::Compacted.into());
        }
        if high > c.last_index() + 1 {
            return Err(StorageError::Unavailable.into());
        }
        let off = c.first_index();
        let mut v = c.entries[(low - off) as usize..(high - off) as usize].to_vec();
        limit_size(&mut v, max_size);
        Ok(v)
    }

    fn term(&self, idx: u64) -> Result<u64> {
        let c = self.rl();
        if idx == c.snapshot_metadata.index {
            return Ok(c.snapshot_metadata.term);
        }
        if idx < c.first_index() {
            return Err(StorageError::Compacted.into());
        }
        if idx > c.last_index() {
            return Err(StorageError::Unavailable.into());
        }
        Ok(c.entries[(idx - c.first_index()) as usize].term)
    }

    fn first_index(&self) -> Result<u64> {
        Ok(self.rl().first_index())
    }

    fn last_index(&self) -> Result<u64> {
        Ok(self.rl().last_index())
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> Result<Snapshot> {
        let c = self.rl();
        if c.trigger_snap_unavailable || c.snapshot_stale {
            return Err(StorageError::SnapshotTemporarilyUnavailable.into());
        }
        let mut snap = c.snapshot();
        let meta = snap.metadata.get_or_insert_with(Default::default);
        if meta.index < request_index {
            meta.index = request_index;
        }
        Ok(snap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::new_entry;

    fn ents(r: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
        r.map(|i| new_entry(term, i, vec![])).collect()
    }

    #[test]
    fn append_compact_term() {
        let s = MemStorage::new();
        s.wl().append(&ents(1..=5, 1)).unwrap();
        assert_eq!(s.last_index().unwrap(), 5);
        s.wl().append(&ents(4..=6, 2)).unwrap();
        assert_eq!(s.term(3).unwrap(), 1);
        assert_eq!(s.term(4).unwrap(), 2);
        s.wl().compact(3).unwrap();
        assert_eq!(s.first_index().unwrap(), 3);
        assert_eq!(s.term(2).unwrap(), 1);
        assert_eq!(s.term(1), Err(StorageError::Compacted.into()));
        assert_eq!(s.entries(2, 4, None), Err(StorageError::Compacted.into()));
        assert_eq!(s.entries(3, 8, None), Err(StorageError::Unavailable.into()));
        assert_eq!(s.entries(3, 7, None).unwrap().len(), 4);
        s.wl()
            .create_snapshot(5, ConfState::default(), "x".into())
            .unwrap();
        assert_eq!(s.first_index().unwrap(), 6);
        assert_eq!(s.term(5).unwrap(), 2);
        let snap = s.snapshot(0, 2).unwrap();
        assert_eq!(snap.metadata.unwrap().index, 5);
    }

    #[test]
    fn compact_past_snapshot_makes_it_unavailable_until_recreated() {
        let s = MemStorage::new();
        s.wl().append(&ents(1..=10, 1)).unwrap();
        s.wl()
            .create_snapshot(5, ConfState::default(), "state@5".into())
            .unwrap();
        // Compacting further used to relabel the snapshot taken at 5 as the state at 7.
        s.wl().compact(8).unwrap();
        assert_eq!(s.first_index().unwrap(), 8);
        assert_eq!(s.term(7).unwrap(), 1);
        assert_eq!(
            s.snapshot(0, 2),
            Err(StorageError::SnapshotTemporarilyUnavailable.into())
        );
        s.wl()
            .create_snapshot(9, ConfState::default(), "state@9".into())
            .unwrap();
        let snap = s.snapshot(0, 2).unwrap();
        assert_eq!(snap.metadata.unwrap().index, 9);
        assert_eq!(snap.data.as_ref(), b"state@9");
    }
}
