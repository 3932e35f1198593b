//! One group's view of the durable log ([`raft::Storage`]) plus the apply state that the state
//! machine stores atomically with the data it applied.
//!
//! Invariants (see DESIGN.md, "Log, apply and snapshot"):
//! - the log holds `truncated_index + 1 ..= last_index`, contiguous;
//! - `truncated_index <= applied_index <= commit <= last_index` once recovered;
//! - `ApplyState` is written in the same state-machine batch as the effects of the entries it
//!   covers, so after a crash the state machine is exactly "as of applied_index" and the log
//!   replays the rest.

use std::collections::VecDeque;
use std::sync::Arc;

use prost::Message as _;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{RaftState, Storage, StorageError};

use super::log_engine::{LocalState, LogEngine};
use crate::storage::encoding::Cf;
use crate::storage::Engine;

/// Where the state machine of a group stands; stored in the `sys` column family.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ApplyState {
    pub applied_index: u64,
    pub applied_term: u64,
    /// Membership as of `applied_index`.
    pub conf_state: ConfState,
}

impl ApplyState {
    pub fn key(group: u64) -> Vec<u8> {
        let mut k = b"apply|".to_vec();
        k.extend_from_slice(&group.to_be_bytes());
        k
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32);
        out.extend_from_slice(&self.applied_index.to_be_bytes());
        out.extend_from_slice(&self.applied_term.to_be_bytes());
        out.extend_from_slice(&self.conf_state.encode_to_vec());
        out
    }

    pub fn decode(raw: &[u8]) -> Option<ApplyState> {
        if raw.len() < 16 {
            return None;
        }
        let mut b = [0u8; 8];
        b.copy_from_slice(&raw[..8]);
        let applied_index = u64::from_be_bytes(b);
        b.copy_from_slice(&raw[8..16]);
        Some(ApplyState {
            applied_index,
            applied_term: u64::from_be_bytes(b),
            conf_state: ConfState::decode(&raw[16..]).ok()?,
        })
    }

    /// Groups that have an apply state on this node.
    pub fn list(engine: &Engine) -> Result<Vec<u64>, String> {
        let mut out = Vec::new();
        let iter = engine.db().iterator_cf(
            engine.cf(Cf::Sys),
            rocksdb::IteratorMode::From(b"apply|", rocksdb::Direction::Forward),
        );
        for item in iter {
            let (k, _) = item.map_err(|e| format!("cannot list groups: {e}"))?;
            let Some(id) = k.strip_prefix(b"apply|") else {
                break;
            };
            if let Ok(b) = <[u8; 8]>::try_from(id) {
                out.push(u64::from_be_bytes(b));
            }
        }
        Ok(out)
    }

    pub fn load(engine: &Engine, group: u64) -> Result<Option<ApplyState>, String> {
        match engine.get(Cf::Sys, &Self::key(group)) {
            Ok(Some(raw)) => ApplyState::decode(&raw)
                .map(Some)
                .ok_or_else(|| format!("corrupt apply state of group {group}")),
            Ok(None) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Entries kept in memory at the log's tail: the leader sends recent entries to followers
/// from here instead of reading them back from the log engine for every append message.
const CACHE_MAX_ENTRIES: usize = 8192;
const CACHE_MAX_BYTES: usize = 64 << 20;

pub struct PeerStorage {
    pub group: u64,
    log: Arc<dyn LogEngine>,
    /// Contiguous persisted entries ending at `last_index` (possibly empty).
    cache: VecDeque<Entry>,
    cache_bytes: usize,
    /// Persisted hard state and truncation point.
    pub local: LocalState,
    pub last_index: u64,
    pub last_term: u64,
    pub apply: ApplyState,
}

impl PeerStorage {
    /// Recovers a group from the log engine and its apply state.
    pub fn recover(
        group: u64,
        log: Arc<dyn LogEngine>,
        apply: ApplyState,
    ) -> Result<PeerStorage, String> {
        let mut local = log.state(group)?.unwrap_or_default();
        let (mut last_index, mut last_term) = log
            .last_entry(group)?
            .unwrap_or((local.truncated_index, local.truncated_term));
        if last_index < local.truncated_index {
            last_index = local.truncated_index;
            last_term = local.truncated_term;
        }
        // A snapshot was applied to the state machine but the crash came before the log's
        // record of it: the log restarts right after the snapshot.
        if apply.applied_index > last_index {
            local.truncated_index = apply.applied_index;
            local.truncated_term = apply.applied_term;
            local.hard_state.commit = apply.applied_index;
            last_index = apply.applied_index;
            last_term = apply.applied_term;
        }
        if local.hard_state.commit < apply.applied_index {
            local.hard_state.commit = apply.applied_index;
        }
        // A group created by a split starts at a synthetic (index, term) with no hard state
        // yet: its term is at least that of its log.
        if local.hard_state.term < last_term {
            local.hard_state.term = last_term;
        }
        Ok(PeerStorage {
            group,
            log,
            cache: VecDeque::new(),
            cache_bytes: 0,
            local,
            last_index,
            last_term,
            apply,
        })
    }

    pub fn first_index(&self) -> u64 {
        self.local.truncated_index + 1
    }

    pub fn hard_state(&self) -> &HardState {
        &self.local.hard_state
    }

    /// Records entries just persisted (a conflicting suffix is replaced).
    pub fn cache_append(&mut self, entries: &[Entry]) {
        let Some(first) = entries.first() else {
            return;
        };
        while self.cache.back().is_some_and(|e| e.index >= first.index) {
            self.pop_back();
        }
        if self
            .cache
            .back()
            .is_some_and(|e| e.index + 1 != first.index)
        {
            self.clear_cache();
        }
        for e in entries {
            self.cache_bytes += e.data.len() + e.context.len();
            self.cache.push_back(e.clone());
        }
        while self.cache.len() > CACHE_MAX_ENTRIES || self.cache_bytes > CACHE_MAX_BYTES {
            self.pop_front();
        }
    }

    /// Drops cached entries up to `index` (compaction).
    pub fn cache_compact(&mut self, index: u64) {
        while self.cache.front().is_some_and(|e| e.index <= index) {
            self.pop_front();
        }
    }

    pub fn clear_cache(&mut self) {
        self.cache.clear();
        self.cache_bytes = 0;
    }

    fn pop_front(&mut self) {
        if let Some(e) = self.cache.pop_front() {
            self.cache_bytes -= e.data.len() + e.context.len();
        }
    }

    fn pop_back(&mut self) {
        if let Some(e) = self.cache.pop_back() {
            self.cache_bytes -= e.data.len() + e.context.len();
        }
    }

    /// The cached entry at `idx`, if cached.
    fn cached(&self, idx: u64) -> Option<&Entry> {
        let first = self.cache.front()?.index;
        self.cache
            .get(usize::try_from(idx.checked_sub(first)?).ok()?)
    }
}

fn other(e: String) -> raft::Error {
    raft::Error::Storage(StorageError::Other(e))
}

impl Storage for PeerStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState {
            hard_state: self.local.hard_state,
            conf_state: self.apply.conf_state.clone(),
        })
    }

    fn entries(&self, low: u64, high: u64, max_size: Option<u64>) -> raft::Result<Vec<Entry>> {
        if low <= self.local.truncated_index {
            return Err(raft::Error::Storage(StorageError::Compacted));
        }
        if high > self.last_index + 1 {
            return Err(raft::Error::Storage(StorageError::Unavailable));
        }
        if low >= high {
            return Ok(Vec::new());
        }
        // The tail is in memory: appends to followers and committed entries to apply are
        // served from here, not read back from the log engine.
        if self.cached(low).is_some() {
            let mut out = Vec::with_capacity((high - low).min(1024) as usize);
            let mut size = 0u64;
            for idx in low..high {
                let Some(e) = self.cached(idx) else { break };
                size += (e.data.len() + e.context.len()) as u64;
                if !out.is_empty() && max_size.is_some_and(|m| size > m) {
                    break;
                }
                out.push(e.clone());
            }
            if out.len() as u64 == high - low || max_size.is_some_and(|m| size > m) {
                return Ok(out);
            }
        }
        self.log
            .entries(self.group, low, high, max_size)
            .map_err(other)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        if idx == self.local.truncated_index {
            return Ok(self.local.truncated_term);
        }
        if idx < self.local.truncated_index {
            return Err(raft::Error::Storage(StorageError::Compacted));
        }
        if idx > self.last_index {
            return Err(raft::Error::Storage(StorageError::Unavailable));
        }
        if idx == self.last_index {
            return Ok(self.last_term);
        }
        if let Some(e) = self.cached(idx) {
            return Ok(e.term);
        }
        let e = self
            .log
            .entries(self.group, idx, idx + 1, None)
            .map_err(other)?;
        e.first()
            .map(|e| e.term)
            .ok_or_else(|| other(format!("entry {idx} missing")))
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.local.truncated_index + 1)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last_index)
    }

    /// The snapshot is the state machine as of `applied_index`; the runtime fills in the data
    /// (the group's key range read at that same point) when it sends the message.
    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        if self.apply.applied_index < request_index || self.apply.applied_index == 0 {
            return Err(raft::Error::Storage(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        Ok(Snapshot {
            data: Default::default(),
            metadata: Some(SnapshotMetadata {
                conf_state: Some(self.apply.conf_state.clone()),
                index: self.apply.applied_index,
                term: self.apply.applied_term,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raftstore::log_engine::{LogBatch, RocksLogEngine};

    use crate::raftstore::log_engine::test_entry as ent;

    /// Appends through the log engine and the cache, as the runtime does.
    fn append(ps: &mut PeerStorage, log: &RocksLogEngine, ents: &[Entry]) {
        let mut b = LogBatch::default();
        b.append(ps.group, ents, ps.last_index);
        log.write(b, false).expect("write");
        ps.cache_append(ents);
        let last = ents.last().expect("entries");
        ps.last_index = last.index;
        ps.last_term = last.term;
    }

    #[test]
    fn cache_serves_the_same_entries_as_the_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = Arc::new(RocksLogEngine::open(dir.path()).expect("open"));
        let mut ps = PeerStorage::recover(1, log.clone(), ApplyState::default()).expect("recover");
        append(
            &mut ps,
            &log,
            &(1..=10).map(|i| ent(i, 1)).collect::<Vec<_>>(),
        );
        // A conflicting suffix from a new leader replaces 6..=10.
        append(&mut ps, &log, &[ent(6, 2), ent(7, 2)]);
        let from_cache = ps.entries(3, 8, None).expect("cached");
        ps.clear_cache();
        let from_log = ps.entries(3, 8, None).expect("log");
        assert_eq!(from_cache, from_log);
        assert_eq!(
            from_log
                .iter()
                .map(|e| (e.index, e.term))
                .collect::<Vec<_>>(),
            [(3, 1), (4, 1), (5, 1), (6, 2), (7, 2)]
        );
        assert_eq!(ps.term(6).expect("term"), 2);
        // After a clear, new appends start a fresh contiguous cache; compaction trims it.
        append(&mut ps, &log, &[ent(8, 2), ent(9, 3)]);
        assert_eq!(ps.cached(8).map(|e| e.term), Some(2));
        assert!(ps.cached(7).is_none());
        ps.cache_compact(8);
        assert!(ps.cached(8).is_none());
        assert_eq!(ps.entries(9, 10, None).expect("entries")[0].term, 3);
        assert_eq!(ps.entries(4, 6, Some(1)).expect("limited").len(), 1);
    }
}
