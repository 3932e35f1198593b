//! The raft log: stable storage plus unstable tail, with commit/persist/apply cursors.
//!
//! Invariants: `applied <= applying <= committed`, `committed <= last_index()`,
//! `persisted <= last_index()`. Entries handed to the application for apply are always
//! `<= min(committed, persisted)`.

use std::cmp;

use crate::eraftpb::{Entry, Snapshot};
use crate::errors::{Error, Result, StorageError};
use crate::log_unstable::Unstable;
use crate::storage::Storage;
use crate::util::limit_size;

/// The raft log.
pub struct RaftLog<T: Storage> {
    /// Stable storage.
    pub store: T,
    /// Not yet persisted entries/snapshot.
    pub unstable: Unstable,
    /// Highest index known to be committed.
    pub committed: u64,
    /// Highest index known to be durable locally (and matching this log).
    pub persisted: u64,
    /// Highest index the application has applied.
    pub applied: u64,
    /// Highest index handed out for applying (`applied <= applying`).
    pub applying: u64,
}

impl<T: Storage> std::fmt::Debug for RaftLog<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RaftLog{{committed: {}, persisted: {}, applied: {}, unstable.offset: {}, unstable.len: {}}}",
            self.committed,
            self.persisted,
            self.applied,
            self.unstable.offset,
            self.unstable.entries.len()
        )
    }
}

fn storage_fatal(e: Error) -> ! {
    panic!("[raft] unexpected storage error: {e}")
}

impl<T: Storage> RaftLog<T> {
    /// Opens the log over `store`.
    pub fn new(store: T) -> Self {
        let first = store.first_index().unwrap_or_else(|e| storage_fatal(e));
        let last = store.last_index().unwrap_or_else(|e| storage_fatal(e));
        RaftLog {
            store,
            unstable: Unstable::new(last + 1),
            committed: first - 1,
            persisted: last,
            applied: first - 1,
            applying: first - 1,
        }
    }

    /// First index still available.
    pub fn first_index(&self) -> u64 {
        match self.unstable.maybe_first_index() {
            Some(i) => i,
            None => self
                .store
                .first_index()
                .unwrap_or_else(|e| storage_fatal(e)),
        }
    }

    /// Last index of the log.
    pub fn last_index(&self) -> u64 {
        match self.unstable.maybe_last_index() {
            Some(i) => i,
            None => self.store.last_index().unwrap_or_else(|e| storage_fatal(e)),
        }
    }

    /// Term of the last entry.
    pub fn last_term(&self) -> u64 {
        self.term(self.last_index())
            .unwrap_or_else(|e| panic!("[raft] term of last index unavailable: {e}"))
    }

    /// Term of the entry at `idx`. Returns 0 for indices beyond the last index and
    /// `Err(Compacted)` for indices before the first index - 1.
    pub fn term(&self, idx: u64) -> Result<u64> {
        let dummy = self.first_index() - 1;
        if idx < dummy {
            return Err(StorageError::Compacted.into());
        }
        if idx > self.last_index() {
            return Ok(0);
        }
        if let Some(t) = self.unstable.maybe_term(idx) {
            return Ok(t);
        }
        match self.store.term(idx) {
            Ok(t) => Ok(t),
            Err(e @ Error::Storage(StorageError::Compacted))
            | Err(e @ Error::Storage(StorageError::Unavailable)) => Err(e),
            Err(e) => storage_fatal(e),
        }
    }

    /// Term, or 0 when compacted.
    pub fn term_or_zero(&self, idx: u64) -> u64 {
        self.term(idx).unwrap_or(0)
    }

    /// Whether the entry at `idx` has term `term`.
    pub fn match_term(&self, idx: u64, term: u64) -> bool {
        idx <= self.last_index() && matches!(self.term(idx), Ok(t) if t == term)
    }

    /// Whether a log ending at (`last_index`, `term`) is at least as up to date as ours.
    pub fn is_up_to_date(&self, last_index: u64, term: u64) -> bool {
        term > self.last_term() || (term == self.last_term() && last_index >= self.last_index())
    }

    /// Index of the first entry in `ents` that conflicts with (or is missing from) the log,
    /// or 0 if all match.
    pub fn find_conflict(&self, ents: &[Entry]) -> u64 {
        for e in ents {
            if !self.match_term(e.index, e.term) {
                return e.index;
            }
        }
        0
    }

    /// Largest index `<= index` whose term is `<= term`, with that term. Used for fast
    /// log-conflict backtracking on both sides.
    pub fn find_conflict_by_term(&self, index: u64, term: u64) -> (u64, u64) {
        let mut idx = cmp::min(index, self.last_index());
        loop {
            match self.term(idx) {
                Ok(t) if t > term && idx > 0 => idx -= 1,
                Ok(t) => return (idx, t),
                Err(_) => return (idx, 0),
            }
        }
    }

    /// Follower side of append: if the entry at `idx` has term `term`, appends `ents`
    /// (truncating conflicts), advances commit to `min(committed, last new index)` and
    /// returns `(conflict_index, last_new_index)`. The caller validated `ents`.
    pub fn maybe_append(
        &mut self,
        idx: u64,
        term: u64,
        committed: u64,
        ents: &[Entry],
    ) -> Option<(u64, u64)> {
        if !self.match_term(idx, term) {
            return None;
        }
        let last_new = idx + ents.len() as u64;
        let conflict = self.find_conflict(ents);
        if conflict != 0 {
            assert!(
                conflict > self.committed,
                "[raft] entry {conflict} conflicts with committed entry (committed {})",
                self.committed
            );
            let start = (conflict - (idx + 1)) as usize;
            self.append(&ents[start..]);
            if self.persisted >= conflict {
                self.persisted = conflict - 1;
            }
        }
        self.commit_to(cmp::min(committed, last_new));
        Some((conflict, last_new))
    }

    /// Appends entries to the unstable log; returns the new last index.
    pub fn append(&mut self, ents: &[Entry]) -> u64 {
        if ents.is_empty() {
            return self.last_index();
        }
        let after = ents[0].index - 1;
        assert!(
            after >= self.committed,
            "[raft] appending after {after} is out of range [committed {}]",
            self.committed
        );
        self.unstable.truncate_and_append(ents);
        self.last_index()
    }

    /// Advances the commit index (never decreases it).
    pub fn commit_to(&mut self, to: u64) {
        if self.committed < to {
            assert!(
                to <= self.last_index(),
                "[raft] commit to {to} out of range [last index {}]",
                self.last_index()
            );
            self.committed = to;
        }
    }

    /// Leader commit rule: commits `max_index` only if its entry is of `term` (Raft §5.4.2,
    /// the "figure 8" rule). Returns whether the commit index changed.
    pub fn maybe_commit(&mut self, max_index: u64, term: u64) -> bool {
        if max_index > self.committed && self.term_or_zero(max_index) == term {
            self.commit_to(max_index);
            true
        } else {
            false
        }
    }

    /// Marks entries up to `idx` as applied.
    pub fn applied_to(&mut self, idx: u64) {
        if idx == 0 {
            return;
        }
        assert!(
            idx <= self.committed && idx >= self.applied,
            "[raft] applied({idx}) out of range [prev applied {}, committed {}]",
            self.applied,
            self.committed
        );
        self.applied = idx;
        if self.applying < idx {
            self.applying = idx;
        }
    }

    /// Entries up to (`idx`, `term`) were persisted.
    pub fn stable_to(&mut self, idx: u64, term: u64) {
        if self.unstable.stable_to(idx, term) && idx > self.persisted {
            self.persisted = idx;
        }
    }

    /// The unstable snapshot at `idx` was persisted.
    pub fn stable_snap_to(&mut self, idx: u64) {
        if self.unstable.stable_snap_to(idx) {
            self.persisted = cmp::max(self.persisted, idx);
        }
    }

    /// Entries not yet persisted.
    pub fn unstable_entries(&self) -> &[Entry] {
        &self.unstable.entries
    }

    /// Whether committed, persisted entries are waiting to be handed out for apply.
    pub fn has_next_entries(&self) -> bool {
        self.unstable.snapshot.is_none()
            && cmp::max(self.applying + 1, self.first_index())
                <= cmp::min(self.committed, self.persisted)
    }

    /// Committed, persisted entries not yet handed out, at most `max_size` bytes.
    pub fn next_entries(&self, max_size: Option<u64>) -> Option<Vec<Entry>> {
        if !self.has_next_entries() {
            return None;
        }
        let lo = cmp::max(self.applying + 1, self.first_index());
        let hi = cmp::min(self.committed, self.persisted) + 1;
        match self.slice(lo, hi, max_size) {
            Ok(v) if !v.is_empty() => Some(v),
            Ok(_) => None,
            Err(e) => panic!("[raft] committed entries [{lo},{hi}) unavailable: {e}"),
        }
    }

    /// Entries from `idx` to the end, at most `max_size` bytes (at least one entry).
    pub fn entries(&self, idx: u64, max_size: Option<u64>) -> Result<Vec<Entry>> {
        let last = self.last_index();
        if idx > last {
            return Ok(Vec::new());
        }
        self.slice(idx, last + 1, max_size)
    }

    /// Entries in `[lo, hi)`, at most `max_size` bytes (at least one entry).
    pub fn slice(&self, lo: u64, hi: u64, max_size: Option<u64>) -> Result<Vec<Entry>> {
        if lo >= hi {
            return Ok(Vec::new());
        }
        let first = self.first_index();
        if lo < first {
            return Err(StorageError::Compacted.into());
        }
        let last = self.last_index();
        assert!(
            hi <= last + 1,
            "[raft] slice[{lo},{hi}) out of bound [{first},{last}]"
        );
        let mut ents = Vec::new();
        let off = self.unstable.offset;
        if lo < off {
            let stored = self.store.entries(lo, cmp::min(hi, off), max_size);
            match stored {
                Ok(v) => {
                    let full = v.len() as u64 == cmp::min(hi, off) - lo;
                    ents = v;
                    if !full {
                        return Ok(ents);
                    }
                }
                Err(e @ Error::Storage(StorageError::Compacted)) => return Err(e),
                Err(Error::Storage(StorageError::Unavailable)) => {
                    panic!(
                        "[raft] entries[{lo}:{}) unavailable from storage",
                        cmp::min(hi, off)
                    )
                }
                Err(e) => storage_fatal(e),
            }
        }
        if hi > off {
            let u = self.unstable.slice(cmp::max(lo, off), hi);
            ents.extend_from_slice(u);
        }
        limit_size(&mut ents, max_size);
        Ok(ents)
    }

    /// The snapshot to send to a follower: the unstable one if any, else from storage.
    pub fn snapshot(&self, request_index: u64, to: u64) -> Result<Snapshot> {
        if let Some(s) = &self.unstable.snapshot {
            return Ok(s.clone());
        }
        self.store.snapshot(request_index, to)
    }

    /// Replaces the log with a snapshot (follower install).
    pub fn restore(&mut self, snap: Snapshot) {
        let idx = snap.metadata.as_ref().map(|m| m.index).unwrap_or(0);
        self.committed = idx;
        self.persisted = cmp::min(self.persisted, idx);
        self.unstable.restore(snap);
    }
}
