//! A read-only snapshot of a node's state.

use std::collections::BTreeMap;

use crate::eraftpb::{ConfState, HardState};
use crate::progress::Progress;
use crate::raft::{Raft, SoftState};
use crate::storage::Storage;

/// Status of a node.
#[derive(Debug, Clone)]
pub struct Status {
    /// Node id.
    pub id: u64,
    /// Term, vote, commit.
    pub hs: HardState,
    /// Leader and role.
    pub ss: SoftState,
    /// Applied index.
    pub applied: u64,
    /// Last log index.
    pub last_index: u64,
    /// Current configuration.
    pub conf_state: ConfState,
    /// Progress of every member (leader only; empty otherwise).
    pub progress: BTreeMap<u64, Progress>,
    /// Whether quiescent.
    pub hibernating: bool,
}

impl Status {
    /// Collects the status of `raft`.
    pub fn new<T: Storage>(raft: &Raft<T>) -> Self {
        let progress = if raft.state == crate::raft::StateRole::Leader {
            raft.prs.progress.clone()
        } else {
            BTreeMap::new()
        };
        Status {
            id: raft.id,
            hs: raft.hard_state(),
            ss: raft.soft_state(),
            applied: raft.raft_log.applied,
            last_index: raft.raft_log.last_index(),
            conf_state: raft.prs.conf_state(),
            progress,
            hibernating: raft.hibernating,
        }
    }
}
