//! One group's view of the durable log ([`raft::Storage`]) plus the apply state that the state
//! machine stores atomically with the data it applied.
//!
//! Invariants (see DESIGN.md, "Log, apply and snapshot"):
//! - the log holds `truncated_index + 1 ..= last_index`, contiguous;
//! - `truncated_index <= applied_index <= commit <= last_index` once recovered;
//! - `ApplyState` is written in the same state-machine batch as the effects of the entries it
//!   covers, so after a crash the state machine is exactly "as of applied_index" and the log
//!   replays the rest.

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

pub struct PeerStorage {
    pub group: u64,
    log: Arc<dyn LogEngine>,
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
        Ok(PeerStorage {
            group,
            log,
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
}

fn other(e: String) -> raft::Error {
    raft::Error::Storage(StorageError::Other(e))
}

impl Storage for PeerStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState {
            hard_state: self.local.hard_state.clone(),
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
