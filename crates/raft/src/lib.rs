//! A pure, deterministic Raft consensus library: no I/O, no clocks, no threads, no async.
//!
//! The caller owns time, disk and network. It drives a [`RawNode`] with
//! [`RawNode::tick`], [`RawNode::step`], [`RawNode::propose`],
//! [`RawNode::propose_conf_change`], [`RawNode::read_index`] and
//! [`RawNode::transfer_leader`], and handles each [`Ready`] in this order:
//!
//! 1. send `messages` right away (safe before the local write: the leader's appends);
//! 2. persist `snapshot`, `entries` and `hard_state` atomically (may be batched with the
//!    Readies of other groups into one disk write);
//! 3. send `persisted_messages` (votes, acks: only once step 2 is durable);
//! 4. apply `committed_entries` (call [`RawNode::apply_conf_change`] for conf changes) and
//!    serve `read_states` whose index is applied;
//! 5. call [`RawNode::advance`], handle the returned [`LightReady`], then
//!    [`RawNode::advance_apply`].
//!
//! Reads and proposals may be dropped silently when leadership changes: callers retry on
//! timeout. See README.md for guarantees, quiescence and the simulator. Quick start:
//!
//! ```
//! use raft::{Config, MemStorage, RawNode, StateRole};
//! use raft::eraftpb::ConfState;
//!
//! // A single-node group bootstrapped with voter 1.
//! let storage = MemStorage::new_with_conf_state(ConfState { voters: vec![1], ..Default::default() });
//! let mut node = RawNode::new(&Config::new(1), storage).unwrap();
//! node.campaign().unwrap();
//! let mut applied = Vec::new();
//! // Drive the node: handle Ready until idle.
//! let mut drive = |node: &mut RawNode<MemStorage>, applied: &mut Vec<Vec<u8>>| {
//!     while node.has_ready() {
//!         let mut rd = node.ready();
//!         // 1. Messages that may be sent right away (none here: single node).
//!         let _send_now = std::mem::take(&mut rd.messages);
//!         // 2. Persist snapshot, entries and hard state (atomically).
//!         if let Some(s) = &rd.snapshot { node.mut_store().wl().apply_snapshot(s.clone()).unwrap(); }
//!         node.mut_store().wl().append(&rd.entries).unwrap();
//!         if let Some(hs) = &rd.hard_state { node.mut_store().wl().set_hardstate(hs.clone()); }
//!         // 3. Now send rd.persisted_messages; 4. apply committed entries.
//!         for e in &rd.committed_entries { if !e.data.is_empty() { applied.push(e.data.to_vec()); } }
//!         let light = node.advance(rd);
//!         for e in &light.committed_entries { if !e.data.is_empty() { applied.push(e.data.to_vec()); } }
//!         node.advance_apply();
//!     }
//! };
//! drive(&mut node, &mut applied);
//! assert_eq!(node.role(), StateRole::Leader);
//! node.propose(vec![], b"set x 1".to_vec()).unwrap();
//! drive(&mut node, &mut applied);
//! assert_eq!(applied, vec![b"set x 1".to_vec()]);
//! ```
#![deny(missing_docs)]

/// Generated protobuf types (`proto/raftpb.proto`).
pub mod eraftpb {
    #![allow(missing_docs)]
    #![allow(clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/raftpb.rs"));
}

pub mod confchange;
pub mod config;
pub mod errors;
pub mod log_unstable;
pub mod progress;
pub mod quorum;
pub mod raft;
pub mod raft_log;
pub mod raw_node;
pub mod read_only;
pub mod status;
pub mod storage;
pub mod util;

pub use crate::config::{Config, ReadOnlyOption};
pub use crate::errors::{Error, Result, StorageError};
pub use crate::progress::{Progress, ProgressState};
pub use crate::raft::{Raft, SoftState, StateRole, CAMPAIGN_TRANSFER};
pub use crate::raw_node::{LightReady, RawNode, Ready};
pub use crate::read_only::ReadState;
pub use crate::status::Status;
pub use crate::storage::{MemStorage, RaftState, Storage};
