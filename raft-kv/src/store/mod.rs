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
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::broadcast;

use parking_lot::RwLock;

use crate::cmd::{self, args::cmd_name, CmdError, Kind};
use crate::meta::load::SlotCounters;
use crate::metrics::Metrics;
use crate::protocol::Frame;
use crate::raftstore::transport::pb::exec_request::Kind as ExecKind;
use crate::raftstore::{tryagain, RaftHandle};
use crate::routing::proxy::Proxy;
use crate::routing::{plan, Layout, Plan, ShardSpec, CROSSSLOT};
use crate::storage::slot::key_slot;
use crate::storage::{Ctx, Engine};
use crate::types::keyspace;
pub use op::{OpKind, WriteOp};

pub struct Store {
    engine: Arc<Engine>,
    raft: RaftHandle,
    last_ts: AtomicU64,
    stats: Arc<StoreStats>,
    /// This node's Raft id.
    node_id: u64,
    /// The routing table, swapped as a whole when the metadata changes.
    layout: RwLock<Arc<Layout>>,
    /// Reaches shards this node does not host (None: a single-node cluster).
    proxy: Option<Arc<Proxy>>,
    metrics: Arc<Metrics>,
    /// Client requests per slot, for the load report.
    slot_load: SlotCounters,
    /// Woken whenever the layout is replaced (requests refused for a stale route wait on it).
    layout_changed: tokio::sync::Notify,
}

/// How long a request refused for a stale route keeps being re-routed before the refusal
/// reaches the client (a split or merge settles in well under a second).
const REROUTE_WINDOW: Duration = Duration::from_secs(3);

/// Refusals that happen before a request runs anywhere (the route was stale): retrying them
/// with a fresh layout cannot apply a write twice.
const ROUTE_REFUSALS: [&str; 5] = [
    "the shard changed",
    "the shard moved",
    "does not serve that shard",
    "does not host the shard",
    "unknown shard",
];

fn is_route_refusal(f: &Frame) -> bool {
    matches!(f, Frame::Error(e) if e.starts_with("TRYAGAIN") && ROUTE_REFUSALS.iter().any(|m| e.contains(m)))
}

/// Shard 0's group (the only one of a single-shard cluster).
pub const DEFAULT_GROUP: u64 = 1;

/// A request for one shard.
pub enum ShardRequest {
    /// A read command, run behind a read barrier.
    Read(Vec<Bytes>),
    /// A write op, proposed to the shard's Raft group.
    Write(OpKind),
    /// Current revisions of keys (WATCH).
    KeyRevs(Vec<Bytes>),
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
    pub fn new(
        engine: Arc<Engine>,
        raft: RaftHandle,
        stats: Arc<StoreStats>,
        layout: Layout,
        proxy: Option<Arc<Proxy>>,
        metrics: Arc<Metrics>,
    ) -> Arc<Store> {
        Arc::new(Store {
            engine,
            node_id: raft.node_id,
            raft,
            last_ts: AtomicU64::new(0),
            stats,
            layout: RwLock::new(Arc::new(layout)),
            proxy,
            metrics,
            slot_load: SlotCounters::default(),
            layout_changed: tokio::sync::Notify::new(),
        })
    }

    pub fn layout(&self) -> Arc<Layout> {
        self.layout.read().clone()
    }

    /// Routes by `layout` from now on (the metadata changed).
    pub fn set_layout(&self, layout: Layout) {
        *self.layout.write() = Arc::new(layout);
        self.layout_changed.notify_waiters();
    }

    /// Waits until the layout differs from `old`, at most `REROUTE_PAUSE` (a group's own range
    /// can run ahead of the metadata, and a replica can be starting) or until `deadline`.
    async fn await_new_layout(&self, old: &Arc<Layout>, deadline: tokio::time::Instant) {
        const REROUTE_PAUSE: Duration = Duration::from_millis(100);
        if let Some(p) = &self.proxy {
            p.refresh_now();
        }
        let notified = self.layout_changed.notified();
        if !Arc::ptr_eq(&self.layout(), old) {
            return;
        }
        let until = (tokio::time::Instant::now() + REROUTE_PAUSE).min(deadline);
        let _ = tokio::time::timeout_at(until, notified).await;
    }

    pub fn proxy(&self) -> Option<&Arc<Proxy>> {
        self.proxy.as_ref()
    }

    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// Whether this node holds a replica of `shard`.
    pub fn hosts(&self, shard: &ShardSpec) -> bool {
        shard.replicas.contains(&self.node_id)
    }

    /// The shard owning `key`.
    pub fn shard_of_key(&self, key: &[u8]) -> ShardSpec {
        self.layout().shard_of_slot(key_slot(key)).clone()
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    pub fn raft(&self) -> &RaftHandle {
        &self.raft
    }

    /// Client requests per slot since the last load report.
    pub fn slot_load(&self) -> &SlotCounters {
        &self.slot_load
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

    /// Executes a read command against a local snapshot of every slot, without a
    /// linearizability barrier (for callers that already passed one).
    pub fn read(&self, args: &[Bytes]) -> Frame {
        let mut ctx = Ctx::read(&self.engine, now_ms());
        apply::run_command(&mut ctx, args)
    }

    /// Executes a read command against a local snapshot of one shard's slots.
    fn read_shard(&self, shard: &ShardSpec, args: &[Bytes]) -> Frame {
        let mut ctx = Ctx::read(&self.engine, now_ms());
        ctx.set_shard(shard.id, shard.first_slot, shard.last_slot);
        apply::run_command(&mut ctx, args)
    }

    /// Waits until local reads of every shard holding one of `keys` are linearizable.
    pub async fn read_barrier_keys(&self, keys: &[Bytes]) -> Result<(), Frame> {
        let layout = self.layout();
        let mut shards: Vec<u64> = keys
            .iter()
            .map(|k| layout.shard_of_slot(key_slot(k)).id)
            .collect();
        shards.sort_unstable();
        shards.dedup();
        for s in shards {
            if let Some(spec) = layout.shard(s).filter(|s| self.hosts(s)) {
                if self.raft.read_barrier(s).await? != spec.epoch {
                    return Err(stale_route());
                }
            }
        }
        Ok(())
    }

    /// Executes any data command: routed to its shard (or split across shards, or run on
    /// every shard), reads behind a barrier, writes through Raft.
    /// Runs a data command wherever its keys live. A single-shard command refused because
    /// its route was stale (a split, merge or move since) is routed again with the newer
    /// layout, for up to `REROUTE_WINDOW`, so plain clients never see a shard change.
    pub async fn execute(&self, args: Vec<Bytes>) -> Frame {
        let deadline = tokio::time::Instant::now() + REROUTE_WINDOW;
        loop {
            let layout = self.layout();
            let reply = self.execute_once(&layout, args.clone()).await;
            if !is_route_refusal(&reply) || tokio::time::Instant::now() >= deadline {
                return reply;
            }
            self.count_route("rerouted");
            self.await_new_layout(&layout, deadline).await;
        }
    }

    async fn execute_once(&self, layout: &Arc<Layout>, args: Vec<Bytes>) -> Frame {
        let Some(spec) = args.first().and_then(|n| cmd::lookup(n)) else {
            return CmdError::err("unknown command").to_frame();
        };
        let write = match spec.kind {
            Kind::Read(_) => false,
            Kind::Write(_) => true,
            Kind::Server => {
                return CmdError::Other(format!("ERR '{}' is not a data command", cmd_name(&args)))
                    .to_frame()
            }
        };
        // Arity and similar errors need no barrier: they depend on no data.
        if !spec.arity_ok(args.len()) {
            return self.read(&args);
        }
        match plan::plan(layout, spec, &args) {
            Plan::One { shard, slot } => {
                self.slot_load.hit(slot, write);
                let Some(shard) = layout.shard(shard) else {
                    return tryagain("the shard moved; retry");
                };
                let req = if write {
                    ShardRequest::Write(OpKind::Command(args))
                } else {
                    ShardRequest::Read(args)
                };
                self.on_shard(shard, req).await
            }
            Plan::CrossSlot => {
                self.count_route("crossslot");
                Frame::Error(CROSSSLOT.into())
            }
            Plan::Split(parts) => {
                self.count_route("split");
                let merge = plan::merge_kind(spec.name).unwrap_or(plan::Merge::Sum);
                for p in &parts {
                    if let Some(key) = p.args.get(1) {
                        self.slot_load.hit(key_slot(key), write);
                    }
                }
                let futs = parts.iter().map(|p| {
                    let req = if write {
                        ShardRequest::Write(OpKind::Command(p.args.clone()))
                    } else {
                        ShardRequest::Read(p.args.clone())
                    };
                    let shard = layout.shard(p.shard).cloned();
                    async move {
                        match shard {
                            Some(s) => self.on_shard(&s, req).await,
                            None => tryagain("the shard moved; retry"),
                        }
                    }
                });
                let replies = join_in_order(futs.collect()).await;
                if let Some(e) = plan::first_failure(write, &replies) {
                    return e;
                }
                plan::merge(merge, &parts, replies)
            }
            Plan::AllShards => {
                self.count_route("all_shards");
                self.all_shards(spec.name, args, layout.shards()).await
            }
        }
    }

    /// A keyspace-wide command over only `shards` (in slot order): the ones a cluster-aware
    /// client was told this node is master of (it sends the command to every master and
    /// combines the replies itself).
    pub async fn execute_on(&self, args: Vec<Bytes>, shards: &[ShardSpec]) -> Frame {
        let Some(spec) = args.first().and_then(|n| cmd::lookup(n)) else {
            return CmdError::err("unknown command").to_frame();
        };
        if !spec.arity_ok(args.len()) {
            return self.read(&args);
        }
        self.all_shards(spec.name, args, shards).await
    }

    /// KEYS, SCAN, DBSIZE, RANDOMKEY, FLUSHALL/FLUSHDB over every shard.
    /// `shards` are in slot order.
    async fn all_shards(&self, name: &str, args: Vec<Bytes>, shards: &[ShardSpec]) -> Frame {
        match name {
            "scan" => {
                // The cursor is a position in key order, which starts with the slot: continue
                // in the shard owning that slot; at its end, go on at the next shard.
                let Some(cursor) = keyspace::parse_cursor(&args[1]) else {
                    return CmdError::err("invalid cursor").to_frame();
                };
                let slot = cursor >> keyspace::CURSOR_SLOT_SHIFT;
                let Some(i) = shards.iter().position(|s| u64::from(s.last_slot) >= slot) else {
                    return Frame::Array(vec![
                        Frame::Bulk(Bytes::from_static(b"0")),
                        Frame::Array(vec![]),
                    ]);
                };
                // A shard that ends before COUNT keys were found goes on into the next
                // ones (a few per call, so one call stays bounded), instead of handing the
                // client an empty page per shard.
                let want = scan_count(&args);
                let mut args = args;
                let mut found: Vec<Frame> = Vec::new();
                for (visited, i) in (0..SCAN_SHARDS_PER_CALL).zip(i..) {
                    let shard = &shards[i];
                    if visited > 0 || slot < u64::from(shard.first_slot) {
                        let start = u64::from(shard.first_slot) << keyspace::CURSOR_SLOT_SHIFT;
                        args[1] = Bytes::from(start.to_string());
                    }
                    let (cursor, keys) = match self
                        .on_shard(shard, ShardRequest::Read(args.clone()))
                        .await
                    {
                        Frame::Array(v) if v.len() == 2 => {
                            let mut v = v.into_iter();
                            match (v.next(), v.next()) {
                                (Some(c), Some(Frame::Array(keys))) => (c, keys),
                                _ => {
                                    return Frame::Error("ERR unexpected reply from a shard".into())
                                }
                            }
                        }
                        other => return other,
                    };
                    found.extend(keys);
                    if cursor != Frame::Bulk(Bytes::from_static(b"0")) {
                        return Frame::Array(vec![cursor, Frame::Array(found)]);
                    }
                    let Some(next) = shards.get(i + 1) else {
                        return Frame::Array(vec![cursor, Frame::Array(found)]);
                    };
                    if found.len() >= want || visited + 1 == SCAN_SHARDS_PER_CALL {
                        let c = u64::from(next.first_slot) << keyspace::CURSOR_SLOT_SHIFT;
                        return Frame::Array(vec![
                            Frame::Bulk(Bytes::from(c.to_string())),
                            Frame::Array(found),
                        ]);
                    }
                }
                Frame::Error("ERR scan did not finish".into())
            }
            "randomkey" => {
                let mut shards = shards.to_vec();
                let start = rand::random::<usize>() % shards.len().max(1);
                shards.rotate_left(start);
                for s in shards {
                    let r = self.on_shard(&s, ShardRequest::Read(args.clone())).await;
                    if r != Frame::Null {
                        return r;
                    }
                }
                Frame::Null
            }
            _ => {
                let write = name.starts_with("flush");
                let futs = shards.iter().map(|s| {
                    let req = if write {
                        ShardRequest::Write(OpKind::Command(args.clone()))
                    } else {
                        ShardRequest::Read(args.clone())
                    };
                    async move { self.on_shard(s, req).await }
                });
                let replies = join_in_order(futs.collect()).await;
                if let Some(e) = plan::first_failure(write, &replies) {
                    return e;
                }
                match name {
                    "dbsize" => Frame::Integer(
                        replies
                            .iter()
                            .map(|r| if let Frame::Integer(n) = r { *n } else { 0 })
                            .sum(),
                    ),
                    "keys" => Frame::Array(
                        replies
                            .into_iter()
                            .flat_map(|r| match r {
                                Frame::Array(v) => v,
                                _ => Vec::new(),
                            })
                            .collect(),
                    ),
                    _ => Frame::ok(),
                }
            }
        }
    }

    /// Runs a request on one shard: here if this node hosts it, else on a node that does.
    /// A refusal for a stale route asks peers for newer metadata at once (instead of at the
    /// next periodic exchange), so the client's retry is routed right.
    pub async fn on_shard(&self, shard: &ShardSpec, req: ShardRequest) -> Frame {
        let reply = self.on_shard_routed(shard, req).await;
        if let (Frame::Error(e), Some(p)) = (&reply, &self.proxy) {
            if e.starts_with("TRYAGAIN") && e.contains("shard changed") {
                p.refresh_now();
            }
        }
        reply
    }

    async fn on_shard_routed(&self, shard: &ShardSpec, req: ShardRequest) -> Frame {
        if self.hosts(shard) {
            self.count_route("local");
            return self.on_local_shard(shard, req).await;
        }
        self.count_route("proxied");
        let Some(proxy) = &self.proxy else {
            return tryagain("no node serving this shard is known");
        };
        let (kind, payload) = match req {
            ShardRequest::Read(args) => (ExecKind::Read, encode_args(&args)),
            ShardRequest::KeyRevs(keys) => (ExecKind::KeyRevs, encode_args(&keys)),
            ShardRequest::Write(kind) => (ExecKind::Write, self.new_op(shard, kind).encode()),
        };
        // The leader saves a hop; any replica would forward.
        // (The test fault hook's partitions apply to proxied requests too.)
        let cut = |n: &u64| {
            self.raft
                .transport
                .as_ref()
                .is_some_and(|t| t.is_partitioned(*n))
        };
        let Some(to) = self
            .leader_hint(shard)
            .into_iter()
            .chain(shard.replicas.iter().copied())
            .find(|n| !cut(n))
        else {
            return tryagain("no node serving this shard is reachable");
        };
        proxy
            .execute(to, shard.id, shard.epoch, kind, payload)
            .await
    }

    /// Counts a data command's route (`raftkv_routed_requests_total`).
    pub fn count_route(&self, how: &str) {
        self.metrics.routed.with_label_values(&[how]).inc();
    }

    /// The shard's leader if a local replica knows it, else (for a shard not hosted here)
    /// as peers last reported it.
    pub fn leader_hint(&self, shard: &ShardSpec) -> Option<u64> {
        let st = self.raft.status(shard.id);
        if st.leader != 0 && shard.replicas.contains(&st.leader) {
            return Some(st.leader);
        }
        if self.hosts(shard) {
            return None;
        }
        self.proxy
            .as_ref()
            .and_then(|p| p.reported_leader(shard.id))
            .filter(|l| shard.replicas.contains(l))
    }

    /// Runs a request on a shard this node hosts.
    async fn on_local_shard(&self, shard: &ShardSpec, req: ShardRequest) -> Frame {
        match req {
            ShardRequest::Read(args) => match self.raft.read_barrier(shard.id).await {
                Ok(epoch) if epoch == shard.epoch => self.read_shard(shard, &args),
                Ok(_) => stale_route(),
                Err(e) => e,
            },
            ShardRequest::Write(kind) => {
                let op = self.new_op(shard, kind);
                self.raft.propose(shard.id, op.encode()).await
            }
            ShardRequest::KeyRevs(keys) => {
                match self.raft.read_barrier(shard.id).await {
                    Ok(epoch) if epoch == shard.epoch => {}
                    Ok(_) => return stale_route(),
                    Err(e) => return e,
                }
                let ctx = Ctx::read(&self.engine, now_ms());
                match keys
                    .iter()
                    .map(|k| ctx.key_rev(k).map(|r| Frame::Integer(r as i64)))
                    .collect::<Result<Vec<_>, _>>()
                {
                    Ok(v) => Frame::Array(v),
                    Err(e) => e.to_frame(),
                }
            }
        }
    }

    /// Serves a request proxied from another node: the routing epoch must be current.
    pub async fn serve_proxied(
        &self,
        shard: u64,
        epoch: u64,
        kind: ExecKind,
        payload: &[u8],
    ) -> Frame {
        let Some(spec) = self.layout().shard(shard).cloned() else {
            return tryagain("unknown shard");
        };
        if !self.hosts(&spec) {
            return tryagain("this node does not host the shard");
        }
        if epoch != 0 && epoch != spec.epoch {
            return tryagain("the shard changed; refresh the routing and retry");
        }
        match kind {
            // Decoded only to refuse garbage before it enters the log; the bytes are the op.
            ExecKind::Write => match WriteOp::decode(payload) {
                Ok(_) => self.raft.propose(spec.id, payload.to_vec()).await,
                Err(e) => CmdError::Other(format!("ERR bad proxied write: {e}")).to_frame(),
            },
            ExecKind::Read | ExecKind::KeyRevs => match decode_args(payload) {
                Ok(args) if kind == ExecKind::Read => {
                    self.on_local_shard(&spec, ShardRequest::Read(args)).await
                }
                Ok(keys) => {
                    self.on_local_shard(&spec, ShardRequest::KeyRevs(keys))
                        .await
                }
                Err(e) => CmdError::Other(format!("ERR bad proxied request: {e}")).to_frame(),
            },
        }
    }

    fn new_op(&self, shard: &ShardSpec, kind: OpKind) -> WriteOp {
        WriteOp {
            ts_ms: self.next_ts(),
            seed: rand::random(),
            epoch: shard.epoch,
            kind,
        }
    }

    /// Whether every key of `args` lives in a shard hosted here (so pipelined writes keep
    /// their order through the local runtime's FIFO inbox).
    pub fn is_local(&self, args: &[Bytes]) -> bool {
        let Some(spec) = args.first().and_then(|n| cmd::lookup(n)) else {
            return true;
        };
        let layout = self.layout();
        let keys = spec.key_indexes(args);
        if keys.is_empty() {
            return layout.shards().iter().all(|s| self.hosts(s));
        }
        keys.iter()
            .all(|&i| self.hosts(layout.shard_of_slot(key_slot(&args[i]))))
    }

    /// MULTI/EXEC: every watched and written key must be in one shard.
    pub async fn exec_multi(&self, watched: Vec<(Bytes, u64)>, cmds: Vec<Vec<Bytes>>) -> Frame {
        let layout = self.layout();
        let mut shard: Option<u64> = None;
        let mut keys: Vec<&Bytes> = watched.iter().map(|(k, _)| k).collect();
        for c in &cmds {
            if let Some(spec) = c.first().and_then(|n| cmd::lookup(n)) {
                if plan::is_keyspace_wide(spec.name) && layout.shards().len() > 1 {
                    return Frame::Error(format!(
                        "ERR {} is not allowed in a transaction on a cluster with several shards",
                        spec.name.to_uppercase()
                    ));
                }
                keys.extend(spec.keys(c));
            }
        }
        for k in keys {
            let s = layout.shard_of_slot(key_slot(k)).id;
            if shard.is_some_and(|x| x != s) {
                return Frame::Error(CROSSSLOT.into());
            }
            shard = Some(s);
        }
        let id = shard.unwrap_or_else(|| layout.shard_of_slot(0).id);
        let Some(spec) = layout.shard(id).cloned() else {
            return tryagain("the shard moved; retry");
        };
        self.on_shard(&spec, ShardRequest::Write(OpKind::Multi { watched, cmds }))
            .await
    }

    /// The live keys of one slot, in key order (CLUSTER COUNTKEYSINSLOT / GETKEYSINSLOT).
    pub async fn keys_in_slot(&self, slot: u16) -> Result<Vec<Bytes>, Frame> {
        let shard = self.layout().shard_of_slot(slot).clone();
        let args = vec![Bytes::from_static(b"keys"), Bytes::from_static(b"*")];
        match self.on_shard(&shard, ShardRequest::Read(args)).await {
            Frame::Array(v) => Ok(v
                .into_iter()
                .filter_map(|f| match f {
                    Frame::Bulk(k) if key_slot(&k) == slot => Some(k),
                    _ => None,
                })
                .collect()),
            e if e.is_error() => Err(e),
            _ => Err(Frame::Error("ERR unexpected reply from a shard".into())),
        }
    }

    /// Active expiry: deletes `keys` (all in `shard`) if still expired when applied.
    pub async fn expire_keys(&self, shard: &ShardSpec, keys: Vec<Bytes>) -> Frame {
        self.on_local_shard(shard, ShardRequest::Write(OpKind::Expire(keys)))
            .await
    }

    /// Current revisions of keys, for WATCH (behind a read barrier of their shards).
    pub async fn key_revs(&self, keys: &[Bytes]) -> Result<Vec<u64>, Frame> {
        let layout = self.layout();
        let mut out = vec![0u64; keys.len()];
        let mut by_shard: Vec<(u64, Vec<usize>)> = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            let s = layout.shard_of_slot(key_slot(k)).id;
            match by_shard.iter_mut().find(|(id, _)| *id == s) {
                Some((_, v)) => v.push(i),
                None => by_shard.push((s, vec![i])),
            }
        }
        for (s, idx) in by_shard {
            let Some(spec) = layout.shard(s) else {
                return Err(tryagain("the shard moved; retry"));
            };
            let ks: Vec<Bytes> = idx.iter().map(|&i| keys[i].clone()).collect();
            match self.on_shard(spec, ShardRequest::KeyRevs(ks)).await {
                Frame::Array(revs) if revs.len() == idx.len() => {
                    for (&i, r) in idx.iter().zip(revs) {
                        if let Frame::Integer(r) = r {
                            out[i] = r as u64;
                        }
                    }
                }
                e if e.is_error() => return Err(e),
                _ => return Err(Frame::Error("ERR unexpected reply from a shard".into())),
            }
        }
        Ok(out)
    }
}

/// Most shards one SCAN call visits when they are (nearly) empty.
const SCAN_SHARDS_PER_CALL: usize = 16;

/// SCAN's COUNT (default 10; a bad value is reported by the shard that parses it).
fn scan_count(args: &[Bytes]) -> usize {
    args.get(2..)
        .unwrap_or_default()
        .chunks(2)
        .find(|w| w.len() == 2 && w[0].eq_ignore_ascii_case(b"count"))
        .and_then(|w| std::str::from_utf8(&w[1]).ok()?.parse::<usize>().ok())
        .unwrap_or(10)
}

/// Polls every future in order on each wake-up: each one's request is sent on its first
/// poll, so requests leave in order (the runtime's inbox is FIFO) and run concurrently.
pub async fn join_in_order<'a>(
    futs: Vec<impl std::future::Future<Output = Frame> + Send + 'a>,
) -> Vec<Frame> {
    use std::task::Poll;
    let mut futs: Vec<_> = futs.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<Frame>> = vec![None; futs.len()];
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (fut, slot) in futs.iter_mut().zip(results.iter_mut()) {
            if slot.is_none() {
                match fut.as_mut().poll(cx) {
                    Poll::Ready(v) => *slot = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Frame::Error("ERR missing reply".into())))
        .collect()
}

/// A read routed by a layout older than the shard's own range (a split since): not served,
/// since the slots may belong to another group now.
fn stale_route() -> Frame {
    tryagain("the shard changed since the request was routed; retry")
}

fn encode_args(args: &[Bytes]) -> Vec<u8> {
    WriteOp {
        ts_ms: 0,
        seed: 0,
        epoch: 0,
        kind: OpKind::Command(args.to_vec()),
    }
    .encode()
}

fn decode_args(raw: &[u8]) -> Result<Vec<Bytes>, String> {
    match WriteOp::decode(raw)?.kind {
        OpKind::Command(args) => Ok(args),
        _ => Err("expected a command".into()),
    }
}
