//! The multi-raft runtime: every write goes through a Raft log before the state machine.
//!
//! - [`log_engine`]: the durable Raft log shared by all groups (one synced batch per round).
//! - [`peer_storage`]: one group's `raft::Storage` view plus its apply state.
//! - [`runtime`]: one thread drives all groups of the node (TiKV's batch system in miniature):
//!   it steps messages, ticks, collects every group's Ready, persists them with one fsync,
//!   sends messages, applies committed entries to RocksDB in one batch and replies.
//! - [`transport`]: tonic gRPC streams between nodes. [`snapshot`]: a group's data as a
//!   snapshot. [`members`]: node ids, cluster membership and the data-dir identity.
//!
//! Clients talk to the runtime through a [`RaftHandle`]: `propose` (a write op, replied once
//! applied locally) and `read_barrier` (ReadIndex / lease: returns once a local read is
//! linearizable). Any node serves both: a follower forwards the proposal to the leader and
//! replies from its own applied state, and confirms reads with the leader's ReadIndex.

pub mod auth;
pub mod dial;
pub mod log_engine;
pub mod members;
pub mod peer_storage;
pub mod quarantine;
pub mod runtime;
pub mod snapshot;
pub mod split;
pub mod transport;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::RwLock;
use raft::eraftpb::Message;
use tokio::sync::{mpsc, oneshot};

use crate::cmd::CmdError;
use crate::protocol::Frame;
pub use transport::pb::GroupMessage;

/// How reads are made linearizable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReadMode {
    /// ReadIndex: the leader confirms its leadership with a heartbeat round per batch.
    ReadIndex,
    /// LeaderLease: the leader serves reads locally while its lease (< election timeout)
    /// holds; relies on bounded clock drift. Followers still use ReadIndex.
    Lease,
}

/// Timing and limits of the runtime.
#[derive(Clone, Debug)]
pub struct RaftOptions {
    pub tick: Duration,
    pub election_ticks: usize,
    pub heartbeat_ticks: usize,
    pub read_mode: ReadMode,
    /// Compact a group's log once it holds this many applied entries.
    pub log_gc_threshold: u64,
    /// How long a client request waits for its outcome before giving up.
    pub request_timeout: Duration,
}

impl Default for RaftOptions {
    fn default() -> Self {
        RaftOptions {
            tick: Duration::from_millis(100),
            election_ticks: 10,
            heartbeat_ticks: 2,
            read_mode: ReadMode::ReadIndex,
            log_gc_threshold: 10_000,
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// What the runtime thread receives.
pub enum Inbox {
    Propose {
        group: u64,
        data: Vec<u8>,
        reply: oneshot::Sender<Frame>,
    },
    Read {
        group: u64,
        /// Ok carries the group's epoch at the read point (the caller checks its route).
        reply: oneshot::Sender<Result<u64, Frame>>,
    },
    Raft(Vec<GroupMessage>),
    Snapshot {
        group: u64,
        /// Boxed: a raft message is large next to the other variants.
        msg: Box<Message>,
        data: Vec<u8>,
    },
    SnapshotStatus {
        group: u64,
        to: u64,
        ok: bool,
    },
    Unreachable(u64),
    TransferLeader {
        group: u64,
        to: u64,
    },
    /// Every shard of the metadata: missing local replicas are created, replicas of shards
    /// that no longer list this node are removed, replica lists are refreshed.
    Reconcile {
        shards: Vec<crate::routing::ShardSpec>,
        /// Groups merged away: their replicas go, their data stays (the target's now).
        tombstones: Vec<u64>,
    },
    /// A group's configuration and (on its leader) its followers' progress.
    Detail {
        group: u64,
        /// Make the applied state durable first.
        sync: bool,
        reply: oneshot::Sender<Option<GroupDetail>>,
    },
    /// Creates this node's metadata replica (Some: joining the metadata group as a
    /// learner) or removes it (None: moved to another node).
    HostMeta(Option<Box<(crate::routing::ShardSpec, crate::meta::MetaMachine)>>),
    /// Compacts the group's log up to its applied index; replies with its first index.
    CompactNow {
        group: u64,
        reply: oneshot::Sender<Option<u64>>,
    },
    /// Proposes an admin entry (split, merge) into the group's log (leader only).
    ProposeAdmin {
        group: u64,
        entry: split::AdminEntry,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Proposes a membership change (leader only).
    ConfChange {
        group: u64,
        cc: raft::eraftpb::ConfChangeV2,
        reply: oneshot::Sender<Result<(), String>>,
    },
    Shutdown(oneshot::Sender<()>),
}

/// A group's configuration and replication progress, for the operation driver and admin.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupDetail {
    pub leader: u64,
    pub is_leader: bool,
    pub term: u64,
    pub commit: u64,
    pub applied: u64,
    pub last_index: u64,
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    /// The slot range and epoch the group's log has set.
    pub first_slot: u16,
    pub last_slot: u16,
    pub epoch: u64,
    /// Added to entry indexes for revisions and versions (`split::RangeState`).
    pub version_base: u64,
    /// Non-empty while in a joint configuration.
    pub voters_outgoing: Vec<u64>,
    /// (node, matched index, recently active) per member; leader only.
    pub progress: Vec<(u64, u64, bool)>,
}

/// A group's state as last seen by the runtime (for INFO, routing and admin).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupStatus {
    pub leader: u64,
    pub is_leader: bool,
    pub term: u64,
    pub commit: u64,
    pub applied: u64,
    pub first_index: u64,
    pub last_index: u64,
    pub voters: Vec<u64>,
}

pub type StatusMap = Arc<RwLock<HashMap<u64, GroupStatus>>>;

/// Error text for a request that certainly was not applied (safe to retry).
pub fn tryagain(why: &str) -> Frame {
    CmdError::Other(format!("TRYAGAIN {why}")).to_frame()
}

/// Error text for a write whose outcome is unknown (it may still be applied).
pub fn unknown_outcome() -> Frame {
    CmdError::Other(
        "UNCERTAIN the write was proposed but its outcome is unknown (it may or may not be \
         applied); check before retrying"
            .into(),
    )
    .to_frame()
}

/// The client side of the runtime.
#[derive(Clone)]
pub struct RaftHandle {
    tx: mpsc::Sender<Inbox>,
    pub node_id: u64,
    pub status: StatusMap,
    /// Keys changed by each applied batch (wakes blocked clients).
    pub touched: tokio::sync::broadcast::Sender<Arc<Vec<Bytes>>>,
    pub transport: Option<Arc<transport::Transport>>,
    /// The runtime thread, joined at shutdown so it releases the storage engines before exit.
    thread: Arc<parking_lot::Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl RaftHandle {
    /// Proposes an encoded write op; resolves with its reply once applied on this node.
    pub async fn propose(&self, group: u64, data: Vec<u8>) -> Frame {
        let (reply, rx) = oneshot::channel();
        if self
            .tx
            .send(Inbox::Propose { group, data, reply })
            .await
            .is_err()
        {
            return tryagain("the node is shutting down");
        }
        rx.await.unwrap_or_else(|_| unknown_outcome())
    }

    /// Waits until a local read of `group` is linearizable; returns the group's epoch then
    /// (a read routed with another epoch must not be served: the slots may have moved).
    pub async fn read_barrier(&self, group: u64) -> Result<u64, Frame> {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Inbox::Read { group, reply }).await.is_err() {
            return Err(tryagain("the node is shutting down"));
        }
        rx.await
            .unwrap_or_else(|_| Err(tryagain("the node is shutting down")))
    }

    pub fn status(&self, group: u64) -> GroupStatus {
        self.status.read().get(&group).cloned().unwrap_or_default()
    }

    pub async fn transfer_leader(&self, group: u64, to: u64) {
        let _ = self.tx.send(Inbox::TransferLeader { group, to }).await;
    }

    /// Makes the local replicas match the metadata's `shards` (every shard of the cluster).
    pub async fn reconcile(&self, shards: Vec<crate::routing::ShardSpec>, tombstones: Vec<u64>) {
        let _ = self.tx.send(Inbox::Reconcile { shards, tombstones }).await;
    }

    /// The group's configuration and progress (None: not hosted here).
    pub async fn detail(&self, group: u64, sync: bool) -> Option<GroupDetail> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Inbox::Detail { group, sync, reply })
            .await
            .ok()?;
        rx.await.ok().flatten()
    }

    /// Whether this node hosts a replica of `group`.
    pub fn hosts(&self, group: u64) -> bool {
        self.status.read().contains_key(&group)
    }

    /// Creates (Some) or removes (None) this node's metadata replica.
    pub async fn host_meta(
        &self,
        replica: Option<(crate::routing::ShardSpec, crate::meta::MetaMachine)>,
    ) {
        let _ = self.tx.send(Inbox::HostMeta(replica.map(Box::new))).await;
    }

    /// Compacts the local replica's log up to its applied index; returns its first index
    /// (None: not hosted here).
    pub async fn compact_now(&self, group: u64) -> Option<u64> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Inbox::CompactNow { group, reply })
            .await
            .ok()?;
        rx.await.ok().flatten()
    }

    /// Proposes an admin entry on this node's replica (which must lead the group).
    pub async fn propose_admin(&self, group: u64, entry: split::AdminEntry) -> Result<(), String> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Inbox::ProposeAdmin {
                group,
                entry,
                reply,
            })
            .await
            .map_err(|_| "the node is shutting down".to_string())?;
        rx.await
            .unwrap_or_else(|_| Err("the node is shutting down".into()))
    }

    /// Proposes a membership change on this node's replica (which must lead the group).
    pub async fn change_conf(
        &self,
        group: u64,
        cc: raft::eraftpb::ConfChangeV2,
    ) -> Result<(), String> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Inbox::ConfChange { group, cc, reply })
            .await
            .map_err(|_| "the node is shutting down".to_string())?;
        rx.await
            .unwrap_or_else(|_| Err("the node is shutting down".into()))
    }

    /// Stops the runtime after its current round and waits for its thread to end.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Inbox::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
        let thread = self.thread.lock().take();
        if let Some(t) = thread {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}
