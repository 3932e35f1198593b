//! Entries and snapshot that are not yet persisted ("unstable").

use crate::eraftpb::{Entry, Snapshot};

/// The unstable part of the log: an incoming snapshot and/or entries not yet written to
/// stable storage. Invariant: if `snapshot` is set, `offset == snapshot.index + 1`;
/// `entries[i].index == offset + i`.
#[derive(Debug, Default)]
pub struct Unstable {
    /// A snapshot received from the leader, not yet persisted.
    pub snapshot: Option<Snapshot>,
    /// Entries not yet persisted.
    pub entries: Vec<Entry>,
    /// Index of `entries[0]` (or where it would be).
    pub offset: u64,
}

fn snap_index(s: &Snapshot) -> (u64, u64) {
    s.metadata
        .as_ref()
        .map(|m| (m.index, m.term))
        .unwrap_or((0, 0))
}

impl Unstable {
    /// New unstable log starting at `offset`.
    pub fn new(offset: u64) -> Self {
        Unstable {
            offset,
            ..Default::default()
        }
    }

    /// First index, if there is an unstable snapshot.
    pub fn maybe_first_index(&self) -> Option<u64> {
        self.snapshot.as_ref().map(|s| snap_index(s).0 + 1)
    }

    /// Last index, if there are unstable entries or an unstable snapshot.
    pub fn maybe_last_index(&self) -> Option<u64> {
        match self.entries.len() {
            0 => self.snapshot.as_ref().map(|s| snap_index(s).0),
            n => Some(self.offset + n as u64 - 1),
        }
    }

    /// Term of the entry at `idx`, if known to the unstable log.
    pub fn maybe_term(&self, idx: u64) -> Option<u64> {
        if idx < self.offset {
            let (si, st) = self.snapshot.as_ref().map(snap_index)?;
            return if si == idx { Some(st) } else { None };
        }
        let last = self.maybe_last_index()?;
        if idx > last {
            return None;
        }
        Some(self.entries[(idx - self.offset) as usize].term)
    }

    /// Entries up to `idx` (with term `term`) were persisted: drop them.
    /// Returns false if the entry does not match (it was replaced meanwhile).
    pub fn stable_to(&mut self, idx: u64, term: u64) -> bool {
        match self.maybe_term(idx) {
            Some(t) if t == term && idx >= self.offset => {
                let n = (idx + 1 - self.offset) as usize;
                self.entries.drain(..n);
                self.offset = idx + 1;
                true
            }
            _ => false,
        }
    }

    /// The snapshot at `idx` was persisted.
    pub fn stable_snap_to(&mut self, idx: u64) -> bool {
        if let Some(s) = &self.snapshot {
            if snap_index(s).0 == idx {
                self.snapshot = None;
                return true;
            }
        }
        false
    }

    /// Replaces everything with a snapshot.
    pub fn restore(&mut self, snap: Snapshot) {
        self.entries.clear();
        self.offset = snap_index(&snap).0 + 1;
        self.snapshot = Some(snap);
    }

    /// Appends entries, truncating any conflicting unstable suffix. The caller guarantees
    /// `ents[0].index <= last_index + 1` and `ents[0].index >= first_index`.
    pub fn truncate_and_append(&mut self, ents: &[Entry]) {
        let after = ents[0].index;
        if after == self.offset + self.entries.len() as u64 {
            self.entries.extend_from_slice(ents);
        } else if after <= self.offset {
            // Replace all unstable entries (the caller truncated into the stable log).
            self.offset = after;
            self.entries.clear();
            self.entries.extend_from_slice(ents);
        } else {
            self.entries.truncate((after - self.offset) as usize);
            self.entries.extend_from_slice(ents);
        }
    }

    /// Entries in `[lo, hi)`; both bounds must lie within the unstable entries.
    pub fn slice(&self, lo: u64, hi: u64) -> &[Entry] {
        assert!(
            lo >= self.offset && hi <= self.offset + self.entries.len() as u64 && lo <= hi,
            "[raft] unstable.slice[{lo},{hi}) out of bound [{},{}]",
            self.offset,
            self.offset + self.entries.len() as u64
        );
        &self.entries[(lo - self.offset) as usize..(hi - self.offset) as usize]
    }
}
