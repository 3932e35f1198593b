//! The metadata group: one Raft group (on `--meta-replicas` nodes) holding the cluster's
//! truth, and how every node follows it.
//!
//! - [`state`]: the replicated value (nodes, shards, operations, ACL users) and its commands.
//! - [`MetaMachine`]: the metadata group's state machine inside the runtime.
//! - [`MetaView`]: every node's latest known metadata (applied locally on metadata replicas,
//!   learned from peers' Hello replies elsewhere); only newer versions replace it.
//! - [`sync`]: follows the view: swaps the routing layout, creates and destroys local
//!   replicas. [`driver`]: on the metadata leader, carries operations (migrations) through
//!   their steps, and schedules new ones by the policies in [`balance`].
//! - [`load`]: load statistics each node measures and reports ([`heartbeat`]), and the
//!   table the scheduler reads them from.

pub mod balance;
pub mod driver;
pub mod heartbeat;
pub mod join;
pub mod load;
pub mod rebuild;
pub mod state;
pub mod sync;

use std::sync::Arc;

use tokio::sync::watch;

use crate::protocol::Frame;
use crate::storage::encoding::Cf;
use crate::storage::Engine;
pub use state::{MetaCmd, MetaState, NodeMeta, NodeState, OpKind, OpState, Operation};

/// The metadata group's Raft group id (data shards use 1..=16384).
pub const META_GROUP: u64 = 1 << 40;

/// Nodes in the metadata group unless `--meta-replicas` says otherwise.
pub const DEFAULT_META_REPLICAS: usize = 3;

/// Sys-CF key of the metadata group's applied state (written with its apply state).
const STATE_KEY: &[u8] = b"meta|state";
/// Sys-CF key of the latest metadata this node knows (any node; read at start).
const CACHE_KEY: &[u8] = b"meta|cache";

/// The latest metadata this node knows.
pub struct MetaView {
    tx: watch::Sender<Arc<MetaState>>,
    /// Set while this node rebuilds after corruption (`rebuild`): it creates no replica
    /// until the metadata has dropped it from every group it was in.
    held: std::sync::atomic::AtomicBool,
}

impl MetaView {
    pub fn new(initial: MetaState) -> Arc<MetaView> {
        Arc::new(MetaView {
            tx: watch::channel(Arc::new(initial)).0,
            held: Default::default(),
        })
    }

    pub fn hold_replicas(&self, held: bool) {
        self.held.store(held, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn replicas_held(&self) -> bool {
        self.held.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn current(&self) -> Arc<MetaState> {
        self.tx.borrow().clone()
    }

    /// Takes `s` if it is newer than what is known; returns whether it did.
    pub fn offer(&self, s: MetaState) -> bool {
        self.tx.send_if_modified(|cur| {
            if s.version > cur.version {
                *cur = Arc::new(s);
                true
            } else {
                false
            }
        })
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<MetaState>> {
        self.tx.subscribe()
    }
}

/// Loads the metadata this node last knew, if any.
pub fn load_cache(engine: &Engine) -> Result<Option<MetaState>, String> {
    let applied = match engine.get(Cf::Sys, STATE_KEY) {
        Ok(Some(raw)) => Some(MetaState::decode(&raw)?),
        Ok(None) => None,
        Err(e) => return Err(format!("cannot read metadata: {e}")),
    };
    let cached = match engine.get(Cf::Sys, CACHE_KEY) {
        Ok(Some(raw)) => Some(MetaState::decode(&raw)?),
        Ok(None) => None,
        Err(e) => return Err(format!("cannot read metadata: {e}")),
    };
    Ok(match (applied, cached) {
        (Some(a), Some(c)) => Some(if a.version >= c.version { a } else { c }),
        (a, c) => a.or(c),
    })
}

/// Remembers `s` as this node's latest metadata (synced: replicas are created from it).
pub fn store_cache(engine: &Engine, s: &MetaState) -> Result<(), String> {
    let mut wo = rocksdb::WriteOptions::default();
    wo.set_sync(true);
    engine
        .db()
        .put_cf_opt(engine.cf(Cf::Sys), CACHE_KEY, s.encode(), &wo)
        .map_err(|e| format!("cannot persist metadata: {e}"))
}

/// Adds the removal of this node's applied metadata (its metadata replica is going) to
/// `batch`.
pub fn clear_applied(engine: &Engine, batch: &mut rocksdb::WriteBatch) {
    batch.delete_cf(engine.cf(Cf::Sys), STATE_KEY);
}

/// The metadata group's state machine (lives in the runtime with the group's peer).
pub struct MetaMachine {
    pub state: MetaState,
    view: Arc<MetaView>,
    /// Changed since last persisted.
    dirty: bool,
    /// Created at run time (a metadata migration's learner): its state is only a seed until
    /// the leader's snapshot replaces it, so log entries can't be applied before that.
    awaiting_snapshot: bool,
    /// Entries arrived before the snapshot (a leader whose log was never compacted): the
    /// replica must be dropped and created again, nothing of it kept.
    pub broken: bool,
    from_disk: bool,
}

impl MetaMachine {
    /// The applied state from disk, or `initial` for a group never applied to.
    pub fn load(engine: &Engine, initial: MetaState, view: Arc<MetaView>) -> Result<Self, String> {
        let (state, from_disk) = match engine.get(Cf::Sys, STATE_KEY) {
            Ok(Some(raw)) => (MetaState::decode(&raw)?, true),
            Ok(None) => (initial, false),
            Err(e) => return Err(format!("cannot read metadata: {e}")),
        };
        view.offer(state.clone());
        Ok(MetaMachine {
            state,
            view,
            dirty: false,
            awaiting_snapshot: false,
            broken: false,
            from_disk,
        })
    }

    /// Whether the state came from this node's applied metadata (not the seed).
    pub fn from_disk(&self) -> bool {
        self.from_disk
    }

    /// A replica created at run time: it waits for a snapshot before applying entries.
    pub fn await_snapshot(mut self) -> Self {
        self.awaiting_snapshot = true;
        self
    }

    /// Applies one committed entry; the reply is the new operation id or the refusal.
    pub fn apply(&mut self, data: &[u8]) -> Frame {
        if self.awaiting_snapshot || self.broken {
            // Replayed from index 1 onto a seed, they would build a wrong metadata value.
            self.broken = true;
            return Frame::Error("ERR metadata replica has no snapshot yet".into());
        }
        let cmd: MetaCmd = match serde_json::from_slice(data) {
            Ok(c) => c,
            Err(e) => return Frame::Error(format!("ERR undecodable metadata command: {e}")),
        };
        match self.state.apply(&cmd) {
            Ok(v) => {
                self.dirty = true;
                Frame::Integer(v as i64)
            }
            Err(e) => Frame::Error(format!("ERR {e}")),
        }
    }

    /// Replaces the state with a snapshot's.
    pub fn install(&mut self, data: &[u8]) -> Result<(), String> {
        self.state = MetaState::decode(data)?;
        self.dirty = true;
        self.awaiting_snapshot = false;
        Ok(())
    }

    pub fn snapshot(&self) -> Vec<u8> {
        self.state.encode()
    }

    /// Adds the state to `batch` if it changed (written with the group's apply state).
    pub fn persist(&mut self, engine: &Engine, batch: &mut rocksdb::WriteBatch) -> bool {
        if !std::mem::take(&mut self.dirty) || self.broken {
            return false;
        }
        batch.put_cf(engine.cf(Cf::Sys), STATE_KEY, self.state.encode());
        true
    }

    /// Tells the node about the state once it is written.
    pub fn publish(&self) {
        self.view.offer(self.state.clone());
    }
}

/// The first `n` members by name host the metadata group.
pub fn meta_replicas(members_by_name: &[u64], n: usize) -> Vec<u64> {
    members_by_name.iter().take(n.max(1)).copied().collect()
}
