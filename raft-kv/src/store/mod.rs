//! The store: the state machine over the engine, with its single applier.
//!
//! Writes become `WriteOp`s handed to one applier thread, which applies every op waiting in its
//! queue into one atomic RocksDB write batch (group commit: one fsync per round), then replies.
//! This is the seam where the Raft log goes: a replicated node proposes the same ops and applies
//! committed ones with the same `apply_op`. Reads run on the caller's thread against a snapshot.

pub mod apply;
pub mod background;
pub mod op;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::cmd::{self, args::cmd_name, CmdError, Kind};
use crate::protocol::Frame;
use crate::storage::encoding::Cf;
use crate::storage::{Ctx, Engine};
pub use op::{OpKind, WriteOp};

const SEQ_KEY: &[u8] = b"seq";
/// Most ops applied in one batch round (bounds reply latency of the first op).
const MAX_BATCH: usize = 1024;

struct Proposal {
    op: WriteOp,
    reply: oneshot::Sender<Frame>,
}

pub struct Store {
    engine: Arc<Engine>,
    tx: mpsc::Sender<Proposal>,
    touched: broadcast::Sender<Arc<Vec<Bytes>>>,
    last_ts: AtomicU64,
    stats: Arc<StoreStats>,
}

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
    /// Starts the applier thread over `engine`.
    pub fn start(engine: Arc<Engine>) -> Result<Arc<Store>, CmdError> {
        let seq = match engine
            .get(Cf::Sys, SEQ_KEY)
            .map_err(|e| CmdError::Storage(e.to_string()))?
        {
            Some(raw) => {
                let b: [u8; 8] = raw
                    .as_slice()
                    .try_into()
                    .map_err(|_| CmdError::Storage("corrupt sequence record".into()))?;
                u64::from_be_bytes(b)
            }
            None => 0,
        };
        let (tx, rx) = mpsc::channel(65536);
        let (touched, _) = broadcast::channel(1024);
        let stats = Arc::new(StoreStats::default());
        let store = Arc::new(Store {
            engine: engine.clone(),
            tx,
            touched: touched.clone(),
            last_ts: AtomicU64::new(0),
            stats: stats.clone(),
        });
        std::thread::Builder::new()
            .name("applier".into())
            .spawn(move || applier_loop(engine, rx, seq, touched, stats))
            .map_err(|e| CmdError::Storage(format!("spawn applier: {e}")))?;
        Ok(store)
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    pub fn stats(&self) -> &StoreStats {
        &self.stats
    }

    /// Keys changed by each applied batch (for blocked clients).
    pub fn subscribe_touched(&self) -> broadcast::Receiver<Arc<Vec<Bytes>>> {
        self.touched.subscribe()
    }

    /// A timestamp for a new op: wall clock, never behind the previous op's.
    fn next_ts(&self) -> u64 {
        let now = now_ms();
        let prev = self.last_ts.fetch_max(now, Ordering::AcqRel);
        now.max(prev)
    }

    /// Executes a read command against a snapshot.
    pub fn read(&self, args: &[Bytes]) -> Frame {
        let mut ctx = Ctx::read(&self.engine, now_ms());
        apply::run_command(&mut ctx, args)
    }

    /// Executes any data command: reads locally, writes through the applier.
    pub async fn execute(&self, args: Vec<Bytes>) -> Frame {
        match args.first().and_then(|n| cmd::lookup(n)) {
            Some(spec) if matches!(spec.kind, Kind::Read(_)) => self.read(&args),
            Some(spec) if spec.is_write() => self.propose(OpKind::Command(args)).await,
            Some(_) => CmdError::Other(format!("ERR '{}' is not a data command", cmd_name(&args)))
                .to_frame(),
            None => CmdError::err("unknown command").to_frame(),
        }
    }

    /// Proposes a write op and waits for its reply from the applier.
    pub async fn propose(&self, kind: OpKind) -> Frame {
        let op = WriteOp {
            ts_ms: self.next_ts(),
            seed: rand::random(),
            kind,
        };
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Proposal { op, reply }).await.is_err() {
            return CmdError::Other("ERR the state machine is stopped".into()).to_frame();
        }
        rx.await.unwrap_or_else(|_| {
            CmdError::Other("ERR the state machine stopped before replying".into()).to_frame()
        })
    }

    /// Current revisions of keys, for WATCH.
    pub fn key_revs(&self, keys: &[Bytes]) -> Result<Vec<u64>, CmdError> {
        let ctx = Ctx::read(&self.engine, now_ms());
        keys.iter().map(|k| ctx.key_rev(k)).collect()
    }
}

fn applier_loop(
    engine: Arc<Engine>,
    mut rx: mpsc::Receiver<Proposal>,
    mut seq: u64,
    touched_tx: broadcast::Sender<Arc<Vec<Bytes>>>,
    stats: Arc<StoreStats>,
) {
    let mut pending: Vec<Proposal> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        pending.push(first);
        while pending.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => pending.push(p),
                Err(_) => break,
            }
        }
        let start_seq = seq;
        let mut ctx = Ctx::write(&engine);
        let mut replies = Vec::with_capacity(pending.len());
        for p in &pending {
            seq += 1;
            replies.push(apply::apply_op(&mut ctx, seq, &p.op));
        }
        let touched = ctx.take_touched();
        let mut batch = ctx.into_batch();
        batch.put_cf(engine.cf(Cf::Sys), SEQ_KEY, seq.to_be_bytes());
        if let Err(e) = engine.write(batch) {
            // Nothing of this round is durable: fail every op and keep the old sequence.
            tracing::error!(error = %e, "state machine write failed; rejecting the batch");
            seq = start_seq;
            for p in pending.drain(..) {
                let _ = p
                    .reply
                    .send(CmdError::Storage(format!("write failed: {e}")).to_frame());
            }
            continue;
        }
        stats
            .ops_applied
            .fetch_add(pending.len() as u64, Ordering::Relaxed);
        stats.batches.fetch_add(1, Ordering::Relaxed);
        for (p, r) in pending.drain(..).zip(replies) {
            let _ = p.reply.send(r);
        }
        if !touched.is_empty() {
            let _ = touched_tx.send(Arc::new(touched));
        }
    }
}
