//! The store: the state machine's client-facing side.
//!
//! Writes become `WriteOp`s proposed to the shard's Raft group and answered once applied on
//! this node (see `raftstore`); reads wait for a ReadIndex/lease barrier and then run on the
//! caller's thread against a RocksDB snapshot. The state machine transition itself is
//! `apply::apply_op`, run by the raft runtime for every committed entry on every replica.

pub mod apply;
pub mod background;
pub mod op;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::broadcast;

use crate::cmd::{self, args::cmd_name, CmdError, Kind};
use crate::protocol::Frame;
use crate::raftstore::RaftHandle;
use crate::storage::{Ctx, Engine};
pub use op::{OpKind, WriteOp};

pub struct Store {
    engine: Arc<Engine>,
    raft: RaftHandle,
    last_ts: AtomicU64,
    stats: Arc<StoreStats>,
}

/// The one group serving every slot until sharding splits the key space.
pub const DEFAULT_GROUP: u64 = 1;

/// Counters for INFO.
#[derive(Default)]
pub struct StoreStats {
    pub ops_applied: AtomicU64,
    pub batches: AtomicU64,
    pub expired_keys: AtomicU64,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Store {
    pub fn new(engine: Arc<Engine>, raft: RaftHandle, stats: Arc<StoreStats>) -> Arc<Store> {
        Arc::new(Store {
            engine,
            raft,
            last_ts: AtomicU64::new(0),
            stats,
        })
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    pub fn raft(&self) -> &RaftHandle {
        &self.raft
    }

    pub fn stats(&self) -> &StoreStats {
        &self.stats
    }

    /// Whether this node leads the group that owns `key`'s slot.
    pub fn is_leader(&self, group: u64) -> bool {
        self.raft.status(group).is_leader
    }

    /// Keys changed by each applied batch (for blocked clients).
    pub fn subscribe_touched(&self) -> broadcast::Receiver<Arc<Vec<Bytes>>> {
        self.raft.touched.subscribe()
    }

    /// A timestamp for a new op: wall clock, never behind the previous op's.
    fn next_ts(&self) -> u64 {
        let now = now_ms();
        let prev = self.last_ts.fetch_max(now, Ordering::AcqRel);
        now.max(prev)
    }

    /// Executes a read command against a local snapshot, without a linearizability barrier
    /// (for callers that already passed one).
    pub fn read(&self, args: &[Bytes]) -> Frame {
        let mut ctx = Ctx::read(&self.engine, now_ms());
        apply::run_command(&mut ctx, args)
    }

    /// Waits until local reads are linearizable (ReadIndex or lease).
    pub async fn read_barrier(&self) -> Result<(), Frame> {
        self.raft.read_barrier(DEFAULT_GROUP).await
    }

    /// Executes any data command: reads behind a barrier, writes through Raft.
    pub async fn execute(&self, args: Vec<Bytes>) -> Frame {
        match args.first().and_then(|n| cmd::lookup(n)) {
            Some(spec) if matches!(spec.kind, Kind::Read(_)) => {
                // Arity and similar errors need no barrier: they depend on no data.
                if !spec.arity_ok(args.len()) {
                    return self.read(&args);
                }
                match self.read_barrier().await {
                    Ok(()) => self.read(&args),
                    Err(e) => e,
                }
            }
            Some(spec) if spec.is_write() => self.propose(OpKind::Command(args)).await,
            Some(_) => CmdError::Other(format!("ERR '{}' is not a data command", cmd_name(&args)))
                .to_frame(),
            None => CmdError::err("unknown command").to_frame(),
        }
    }

    /// Proposes a write op and waits for its reply (once applied on this node).
    pub async fn propose(&self, kind: OpKind) -> Frame {
        let op = WriteOp {
            ts_ms: self.next_ts(),
            seed: rand::random(),
            kind,
        };
        self.raft.propose(DEFAULT_GROUP, op.encode()).await
    }

    /// Current revisions of keys, for WATCH (behind a read barrier).
    pub async fn key_revs(&self, keys: &[Bytes]) -> Result<Vec<u64>, Frame> {
        self.read_barrier().await?;
        let ctx = Ctx::read(&self.engine, now_ms());
        keys.iter()
            .map(|k| ctx.key_rev(k))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_frame())
    }
}
