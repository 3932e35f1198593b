//! The runtime thread: drives every Raft group of the node in rounds.
//!
//! One round: take everything waiting in the inbox (client proposals and reads, peer
//! messages), tick if due, propose each group's new requests as one batch, issue one
//! ReadIndex per group for all reads that arrived, then for every group with a Ready: send
//! its immediate messages (the leader's appends go out before its own fsync), stage its
//! entries and hard state into ONE log batch for all groups, fsync once, send the messages
//! that needed durability, apply the committed entries of all groups into ONE state-machine
//! batch (with each group's apply state), write it, and reply.
//!
//! Proposals carry a context `origin node | request id`; the node that took the client's
//! request replies when it applies that entry itself, so followers serve writes too (the
//! proposal is forwarded to the leader). An attempt that certainly failed (its log slot went
//! to another entry, or a later term's entry was applied first) is proposed again until the
//! request's deadline; a request that never found a leader gets TRYAGAIN, and one whose
//! attempt is still undecided at the deadline gets an "outcome unknown" error, never a guess.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use prost::Message as _;
use raft::eraftpb::{ConfChangeV2, Entry, EntryType, Message, MessageType, Snapshot};
use raft::{RawNode, ReadOnlyOption, StateRole};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::log_engine::{LogBatch, LogEngine};
use super::peer_storage::{ApplyState, PeerStorage};
use super::transport::Transport;
use super::{
    snapshot, split, tryagain, unknown_outcome, GroupDetail, GroupMessage, GroupStatus, Inbox,
    RaftHandle, RaftOptions, ReadMode, StatusMap,
};
use crate::meta::{MetaMachine, META_GROUP};
use crate::metrics::Metrics;
use crate::protocol::Frame;
use crate::storage::encoding::Cf;
use crate::storage::{Ctx, Engine};
use crate::store::apply::apply_op;
use crate::store::{StoreStats, WriteOp};

/// Most inbox messages handled per round (bounds the latency of the round's first request).
const MAX_INBOX_PER_ROUND: usize = 4096;
const INBOX_CAPACITY: usize = 65536;

/// A group (shard) hosted on this node: its slots, epoch and initial replicas.
pub type GroupSpec = crate::routing::ShardSpec;

struct Pending {
    reply: oneshot::Sender<Frame>,
    deadline: Instant,
    /// The encoded op, kept to propose again if this attempt certainly failed.
    data: Vec<u8>,
    /// Raft term at which the current attempt was proposed or forwarded (None: parked).
    term: Option<u64>,
}

struct ReadWaiter {
    reply: oneshot::Sender<Result<u64, Frame>>,
    deadline: Instant,
}

struct Peer {
    spec: GroupSpec,
    raw: RawNode<PeerStorage>,
    /// The metadata group's state machine (None for data shards).
    meta: Option<MetaMachine>,
    /// The range changed (a split) since it was last persisted.
    range_dirty: bool,
    /// Added to entry indexes for revisions and versions (see `split::RangeState`).
    version_base: u64,
    /// Client requests proposed through this node, by request id.
    pending: HashMap<u64, Pending>,
    /// Log positions (index -> term, request) where this node's proposals were appended.
    by_index: BTreeMap<u64, (u64, u64)>,
    /// Proposals to (re)propose at the next tick: no leader was known, a transfer was in
    /// progress, or an earlier attempt certainly failed.
    waiting: Vec<u64>,
    /// Client requests that arrived this round, proposed together when it starts.
    proposing: Vec<u64>,
    /// Proposals forwarded by followers this round (with the term they were accepted in),
    /// proposed with this node's own.
    forwarded: Vec<(u64, Vec<Entry>)>,
    reads_new: Vec<ReadWaiter>,
    reads_inflight: HashMap<u64, (Vec<ReadWaiter>, Instant)>,
    /// Reads confirmed by ReadIndex, served once `applied >= index`.
    reads_ready: Vec<(u64, Vec<ReadWaiter>)>,
    /// Data of snapshots received from the leader (by index), until Raft hands one out in a
    /// Ready (or a newer one supersedes them).
    incoming_snapshots: BTreeMap<u64, Vec<u8>>,
    last_status: GroupStatus,
    /// Role and term last seen, to log elections as they start.
    last_role: (StateRole, u64),
    /// Runtime tick of the last client request or applied entry (for quiescence).
    last_active_tick: u64,
    /// Runtime tick at which this node last became the group's leader.
    leader_since_tick: Option<u64>,
}

pub struct Runtime {
    node_id: u64,
    opts: RaftOptions,
    engine: Arc<Engine>,
    log: Arc<dyn LogEngine>,
    peers: BTreeMap<u64, Peer>,
    rx: mpsc::Receiver<Inbox>,
    transport: Option<Arc<Transport>>,
    status: StatusMap,
    touched: broadcast::Sender<Arc<Vec<Bytes>>>,
    stats: Arc<StoreStats>,
    metrics: Arc<Metrics>,
    next_req: u64,
    outbox: HashMap<u64, Vec<GroupMessage>>,
    shutdown: Option<oneshot::Sender<()>>,
    /// Groups that may have a Ready: touched by a message, request or tick since their last
    /// Ready was handled. Idle groups cost nothing per round.
    active: BTreeSet<u64>,
    /// Ticks since start.
    ticks: u64,
    /// Tick at which the transport last reported each peer node unreachable.
    unreachable_at: HashMap<u64, u64>,
    /// Vote requests for groups this node doesn't have yet (see [`Runtime::hold`]).
    held: VecDeque<(Instant, GroupMessage)>,
}

/// How long, and how many, messages for a not-yet-created group are kept.
const HELD_FOR: Duration = Duration::from_secs(2);
const MAX_HELD: usize = 256;

fn is_vote(t: MessageType) -> bool {
    matches!(
        t,
        MessageType::MsgRequestVote | MessageType::MsgRequestPreVote
    )
}

/// Ticks a leader waits without client activity before putting its group to sleep.
const QUIESCE_AFTER_TICKS: u64 = 20;

fn encode_ctx(node: u64, req: u64) -> Vec<u8> {
    let mut c = Vec::with_capacity(16);
    c.extend_from_slice(&node.to_be_bytes());
    c.extend_from_slice(&req.to_be_bytes());
    c
}

fn decode_ctx(ctx: &[u8]) -> Option<(u64, u64)> {
    if ctx.len() != 16 {
        return None;
    }
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    a.copy_from_slice(&ctx[..8]);
    b.copy_from_slice(&ctx[8..]);
    Some((u64::from_be_bytes(a), u64::from_be_bytes(b)))
}

/// A failure of the node's own disk: continuing could acknowledge writes that are not
/// durable, so the process stops (a restart recovers from the log).
fn fatal(what: &str) -> ! {
    tracing::error!("fatal: {what}; stopping the node");
    eprintln!("raft-kv: fatal: {what}");
    std::process::exit(1);
}

pub struct StartOptions {
    pub metrics: Arc<Metrics>,
    pub node_id: u64,
    /// The data groups this node hosts (their `bootstrap` voters are the initial ones).
    pub groups: Vec<GroupSpec>,
    /// The metadata group, when this node is one of its replicas.
    pub meta: Option<(GroupSpec, MetaMachine)>,
    /// Every shard known (to clear the slot range of a replica removed while down).
    pub stale_slots: Vec<GroupSpec>,
    /// Groups merged away: a replica left on disk goes, its data stays.
    pub tombstones: Vec<u64>,
    /// The data directory was just initialised: groups bootstrap from nothing. Otherwise a
    /// listed group without an apply state is left to the first reconcile, which clears
    /// leftovers and checks that no local group still owns its slots.
    pub fresh: bool,
    pub opts: RaftOptions,
    pub engine: Arc<Engine>,
    pub log: Arc<dyn LogEngine>,
    pub stats: Arc<StoreStats>,
}

/// Recovers (or bootstraps) every group and starts the runtime thread.
/// `transport_for` builds the transport from the inbox sender (it needs to feed the runtime).
pub fn start(
    so: StartOptions,
    transport_for: impl FnOnce(mpsc::Sender<Inbox>) -> Option<Arc<Transport>>,
) -> Result<RaftHandle, String> {
    let (tx, rx) = mpsc::channel(INBOX_CAPACITY);
    let transport = transport_for(tx.clone());
    let (touched, _) = broadcast::channel(1024);
    let status: StatusMap = Default::default();
    let mut peers = BTreeMap::new();
    // Replicas this node no longer holds (removed while it was down, or a destroy cut short
    // by a crash) are finished off first, so nothing stale is ever served or replayed.
    let wanted: BTreeSet<u64> = so.groups.iter().map(|g| g.id).collect();
    // Only groups the metadata knows are removed: one it doesn't know yet was just created
    // by a split whose metadata change this node has not seen.
    for group in ApplyState::list(&so.engine)? {
        if group == META_GROUP {
            // A metadata replica this node is no longer listed for (its removal cut short).
            if so.meta.is_none() {
                destroy_meta_replica(&so.engine, so.log.as_ref())?;
            }
            continue;
        }
        if so.tombstones.contains(&group) {
            destroy_group_data(&so.engine, so.log.as_ref(), group, None)?;
            continue;
        }
        let Some(known) = so.stale_slots.iter().find(|s| s.id == group) else {
            continue;
        };
        if !wanted.contains(&group) {
            let slots = Some((known.first_slot, known.last_slot));
            destroy_group_data(&so.engine, so.log.as_ref(), group, slots)?;
        }
    }
    let mut specs: Vec<(GroupSpec, Option<MetaMachine>)> = so
        .groups
        .into_iter()
        .filter(|g| !is_tombstoned(&so.engine, g.id))
        .filter(|g| so.fresh || matches!(ApplyState::load(&so.engine, g.id), Ok(Some(_))))
        .map(|g| (g, None))
        .collect();
    if let Some((spec, machine)) = so.meta {
        specs.push((spec, Some(machine)));
    }
    for (spec, meta) in specs {
        let peer = new_peer(so.node_id, &so.opts, &so.engine, &so.log, spec, meta, false)?;
        peers.insert(peer.spec.id, peer);
    }
    let peers_ids: BTreeSet<u64> = peers.keys().copied().collect();
    let thread: Arc<parking_lot::Mutex<Option<std::thread::JoinHandle<()>>>> = Default::default();
    let handle = RaftHandle {
        tx,
        node_id: so.node_id,
        status: status.clone(),
        touched: touched.clone(),
        transport: transport.clone(),
        thread: thread.clone(),
    };
    let rt = Runtime {
        node_id: so.node_id,
        opts: so.opts,
        engine: so.engine,
        log: so.log,
        peers,
        rx,
        transport,
        status,
        touched,
        stats: so.stats,
        metrics: so.metrics,
        next_req: 1,
        outbox: HashMap::new(),
        shutdown: None,
        active: peers_ids,
        ticks: 0,
        unreachable_at: HashMap::new(),
        held: VecDeque::new(),
    };
    let joiner = std::thread::Builder::new()
        .name("raftstore".into())
        .spawn(move || rt.run())
        .map_err(|e| format!("cannot start the raft runtime thread: {e}"))?;
    *thread.lock() = Some(joiner);
    Ok(handle)
}

/// Recovers a group, or bootstraps it with its initial voters when it has no apply state.
/// A replica `created` at run time (not at the cluster's start) first clears anything left
/// in its slot range and log, so it starts from a snapshot or from log index 1 on nothing.
fn new_peer(
    node_id: u64,
    opts: &RaftOptions,
    engine: &Arc<Engine>,
    log: &Arc<dyn LogEngine>,
    spec: GroupSpec,
    meta: Option<MetaMachine>,
    created: bool,
) -> Result<Peer, String> {
    let apply = match ApplyState::load(engine, spec.id)? {
        Some(a) => a,
        None => {
            if created && meta.is_none() {
                destroy_group_data(
                    engine,
                    log.as_ref(),
                    spec.id,
                    Some((spec.first_slot, spec.last_slot)),
                )?;
            } else if created {
                // A metadata replica's log left by a removal cut short must not be replayed
                // onto today's metadata.
                destroy_meta_replica(engine, log.as_ref())?;
            }
            let voters = if spec.bootstrap.is_empty() {
                spec.replicas.clone()
            } else {
                spec.bootstrap.clone()
            };
            let a = ApplyState {
                conf_state: raft::eraftpb::ConfState {
                    voters: voters.clone(),
                    ..Default::default()
                },
                ..Default::default()
            };
            let mut wb = rocksdb::WriteBatch::default();
            wb.put_cf(engine.cf(Cf::Sys), ApplyState::key(spec.id), a.encode());
            let mut wo = rocksdb::WriteOptions::default();
            wo.set_sync(true);
            engine
                .db()
                .write_opt(wb, &wo)
                .map_err(|e| format!("cannot bootstrap group {}: {e}", spec.id))?;
            tracing::info!(group = spec.id, ?voters, created, "bootstrapped group");
            a
        }
    };
    // The group's own record of its range wins: the metadata may not know of a split yet.
    let mut spec = spec;
    let mut version_base = 0;
    match split::RangeState::load(engine, spec.id)? {
        Some(r) => {
            spec.first_slot = r.first;
            spec.last_slot = r.last;
            spec.epoch = r.epoch;
            version_base = r.version_base;
        }
        // First recovery of a group (or of one from before ranges were recorded, when
        // ranges never changed): record it now, so the epoch its log is replayed against is
        // always the group's own, never a newer metadata view's.
        None if meta.is_none() => {
            let r = split::RangeState {
                first: spec.first_slot,
                last: spec.last_slot,
                epoch: spec.epoch,
                version_base: 0,
            };
            let mut wo = rocksdb::WriteOptions::default();
            wo.set_sync(true);
            engine
                .db()
                .put_cf_opt(
                    engine.cf(Cf::Sys),
                    split::RangeState::key(spec.id),
                    r.encode(),
                    &wo,
                )
                .map_err(|e| format!("cannot record the range of group {}: {e}", spec.id))?;
        }
        None => {}
    }
    let ps = PeerStorage::recover(spec.id, log.clone(), apply)?;
    tracing::info!(
        group = spec.id,
        applied = ps.apply.applied_index,
        first = ps.first_index(),
        last = ps.last_index,
        term = ps.hard_state().term,
        "recovered group"
    );
    let cfg = raft::Config {
        id: node_id,
        election_tick: opts.election_ticks,
        heartbeat_tick: opts.heartbeat_ticks,
        applied: ps.apply.applied_index,
        max_size_per_msg: 1 << 20,
        max_inflight_msgs: 256,
        check_quorum: true,
        pre_vote: true,
        read_only_option: match opts.read_mode {
            ReadMode::ReadIndex => ReadOnlyOption::Safe,
            ReadMode::Lease => ReadOnlyOption::LeaseBased,
        },
        seed: node_id ^ spec.id ^ crate::store::now_ms(),
        // A commit goes to the followers with the next appends (the next tick at the
        // latest), not in an append of its own: under load that halves the messages.
        skip_bcast_commit: true,
        ..Default::default()
    };
    let sole_voter = ps.apply.conf_state.voters == [node_id];
    let mut raw =
        RawNode::new(&cfg, ps).map_err(|e| format!("cannot start raft group {}: {e}", spec.id))?;
    if sole_voter {
        // A single-node group needs no election timeout to pass.
        let _ = raw.campaign();
    }
    Ok(Peer {
        spec,
        raw,
        meta,
        range_dirty: false,
        version_base,
        pending: HashMap::new(),
        by_index: BTreeMap::new(),
        waiting: Vec::new(),
        proposing: Vec::new(),
        forwarded: Vec::new(),
        reads_new: Vec::new(),
        reads_inflight: HashMap::new(),
        reads_ready: Vec::new(),
        incoming_snapshots: BTreeMap::new(),
        // Never equal to a real status: the first round publishes every group.
        last_role: (StateRole::Follower, 0),
        last_status: GroupStatus {
            term: u64::MAX,
            ..Default::default()
        },
        last_active_tick: 0,
        leader_since_tick: None,
    })
}

fn tombstone_key(group: u64) -> Vec<u8> {
    let mut k = b"tomb|".to_vec();
    k.extend_from_slice(&group.to_be_bytes());
    k
}

/// Whether `group` was merged away on this node.
fn is_tombstoned(engine: &Engine, group: u64) -> bool {
    matches!(engine.get(Cf::Sys, &tombstone_key(group)), Ok(Some(_)))
}

/// Removes a replica's state from this node: its slot range's data (or, for a group merged
/// away, whose data is the target's now, a tombstone instead), its apply state, then its log. The state machine goes first (synced): a crash in between leaves a
/// log without apply state, which `new_peer` clears before bootstrapping.
fn destroy_group_data(
    engine: &Engine,
    log: &dyn LogEngine,
    group: u64,
    slots: Option<(u16, u16)>,
) -> Result<(), String> {
    let mut batch = rocksdb::WriteBatch::default();
    match slots {
        Some((first, last)) => snapshot::clear_range(engine, &mut batch, first, last),
        // Merged away: the data is the target's now, and the group must never come back
        // (a stale metadata view could otherwise recreate it over the target's slots).
        None => batch.put_cf(engine.cf(Cf::Sys), tombstone_key(group), b""),
    }
    drop_state_and_log(engine, log, group, batch)
}

/// Removes a metadata replica's apply state, applied metadata and log.
fn destroy_meta_replica(engine: &Engine, log: &dyn LogEngine) -> Result<(), String> {
    let mut batch = rocksdb::WriteBatch::default();
    crate::meta::clear_applied(engine, &mut batch);
    drop_state_and_log(engine, log, META_GROUP, batch)
}

/// Writes `batch` with the group's apply state and range removed, then drops its log.
fn drop_state_and_log(
    engine: &Engine,
    log: &dyn LogEngine,
    group: u64,
    mut batch: rocksdb::WriteBatch,
) -> Result<(), String> {
    batch.delete_cf(engine.cf(Cf::Sys), ApplyState::key(group));
    batch.delete_cf(engine.cf(Cf::Sys), split::RangeState::key(group));
    let mut wo = rocksdb::WriteOptions::default();
    wo.set_sync(true);
    engine
        .db()
        .write_opt(batch, &wo)
        .map_err(|e| format!("cannot remove the replica of group {group}: {e}"))?;
    let mut lb = LogBatch::default();
    lb.delete_entries(group, 0, u64::MAX);
    lb.put_state(group, Default::default());
    log.write(lb, true)
        .map_err(|e| format!("cannot remove the log of group {group}: {e}"))?;
    tracing::info!(group, "removed the local replica");
    Ok(())
}

impl Runtime {
    /// A write to this node's disk failed. Fail-stop, as etcd and TiKV: a failed fsync is
    /// never retried (the kernel may have dropped the dirty pages, so a retry can "succeed"
    /// over lost data), and a node that cannot persist must neither vote nor acknowledge.
    /// First every request still waiting here (and `waiting`, replies computed but not yet
    /// sent) gets an error, so clients hear why instead of a dropped connection; the outcome
    /// is unknown, as after a timeout (the entry may be durable elsewhere, or replayed).
    fn fail_stop(&mut self, what: &str, waiting: Vec<oneshot::Sender<Frame>>) -> ! {
        tracing::error!("{what}: stopping this node (fail-stop); fix the disk and restart it");
        let msg = format!(
            "MISCONF this node cannot write to its disk ({what}) and is stopping; the outcome of \
             this request is unknown"
        );
        for tx in waiting {
            let _ = tx.send(Frame::Error(msg.clone()));
        }
        for peer in self.peers.values_mut() {
            for (_, p) in peer.pending.drain() {
                let _ = p.reply.send(Frame::Error(msg.clone()));
            }
            let inflight = peer.reads_inflight.drain().flat_map(|(_, (ws, _))| ws);
            let ready = peer.reads_ready.drain(..).flat_map(|(_, ws)| ws);
            for w in peer.reads_new.drain(..).chain(inflight).chain(ready) {
                let _ = w.reply.send(Err(Frame::Error(msg.clone())));
            }
        }
        // The connections (other threads) write those answers out meanwhile. Requests that
        // arrive in the meantime get the same answer; nothing is proposed or acknowledged.
        let deadline = Instant::now() + Duration::from_millis(300);
        while Instant::now() < deadline {
            match self.rx.try_recv() {
                Ok(Inbox::Propose { reply, .. }) => {
                    let _ = reply.send(Frame::Error(msg.clone()));
                }
                Ok(Inbox::Read { reply, .. }) => {
                    let _ = reply.send(Err(Frame::Error(msg.clone())));
                }
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        fatal(what)
    }

    fn run(mut self) {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => fatal(&format!("cannot build the runtime's event loop: {e}")),
        };
        rt.block_on(async move {
            let tick = self.opts.tick;
            let mut next_tick = tokio::time::Instant::now() + tick;
            self.round(Instant::now());
            loop {
                tokio::select! {
                    m = self.rx.recv() => match m {
                        Some(m) => self.on_inbox(m),
                        None => break,
                    },
                    _ = tokio::time::sleep_until(next_tick) => {}
                }
                for _ in 0..MAX_INBOX_PER_ROUND {
                    match self.rx.try_recv() {
                        Ok(m) => self.on_inbox(m),
                        Err(_) => break,
                    }
                }
                let now = tokio::time::Instant::now();
                if now >= next_tick {
                    // Count every interval that passed, not one per wake-up: a process that
                    // was paused or starved (SIGSTOP, a stalled VM) must see the time it
                    // missed, or a leader would serve lease reads on a lease that ran out
                    // while it slept. Past a few election timeouts every timer has fired, so
                    // the catch-up is bounded.
                    let missed = (now - next_tick).as_nanos() / tick.as_nanos().max(1);
                    let ticks = (missed as u64 + 1).min(self.opts.election_ticks as u64 * 3);
                    for _ in 0..ticks {
                        self.tick_all(Instant::now());
                    }
                    next_tick = now + tick;
                }
                self.round(Instant::now());
                if let Some(done) = self.shutdown.take() {
                    let _ = done.send(());
                    break;
                }
            }
        });
        tracing::info!("raft runtime stopped");
    }

    fn round(&mut self, now: Instant) {
        self.propose_queued();
        self.issue_reads(now);
        self.handle_readies();
        // Whatever is still queued (forwarded proposals, commit broadcasts) goes now.
        self.flush_outbox();
        self.publish_status();
    }

    fn on_inbox(&mut self, m: Inbox) {
        let now = Instant::now();
        match m {
            Inbox::Propose { group, data, reply } => {
                let Some(peer) = self.peers.get_mut(&group) else {
                    let _ = reply.send(tryagain("this node does not serve that shard"));
                    return;
                };
                let req = self.next_req;
                self.next_req += 1;
                self.metrics.raft_proposals.inc();
                peer.last_active_tick = self.ticks;
                self.active.insert(group);
                peer.pending.insert(
                    req,
                    Pending {
                        reply,
                        deadline: now + self.opts.request_timeout,
                        data,
                        term: None,
                    },
                );
                peer.proposing.push(req);
            }
            Inbox::Read { group, reply } => match self.peers.get_mut(&group) {
                Some(peer) => {
                    peer.last_active_tick = self.ticks;
                    self.active.insert(group);
                    peer.reads_new.push(ReadWaiter {
                        reply,
                        deadline: now + self.opts.request_timeout,
                    })
                }
                None => {
                    let _ = reply.send(Err(tryagain("this node does not serve that shard")));
                }
            },
            Inbox::Raft(msgs) => {
                for gm in msgs {
                    let Some(peer) = self.peers.get_mut(&gm.group_id) else {
                        if gm.msg.as_ref().is_some_and(|m| is_vote(m.msg_type())) {
                            self.hold(gm);
                        }
                        continue;
                    };
                    let Some(msg) = gm.msg else {
                        continue;
                    };
                    self.active.insert(gm.group_id);
                    if msg.msg_type() == MessageType::MsgPropose {
                        // A follower forwarded its client's write. Only the leader of the
                        // term the follower saw takes it (see `fail_superseded`).
                        if msg.term != peer.raw.term() || peer.raw.role() != StateRole::Leader {
                            continue;
                        }
                        peer.forwarded.push((msg.term, msg.entries));
                        continue;
                    }
                    if let Err(err) = peer.raw.step(msg) {
                        tracing::debug!(group = gm.group_id, error = %err, "message rejected");
                    }
                }
            }
            Inbox::Snapshot { group, msg, data } => {
                self.active.insert(group);
                if let Some(peer) = self.peers.get_mut(&group) {
                    let index = msg
                        .snapshot
                        .as_ref()
                        .and_then(|s| s.metadata.as_ref())
                        .map_or(0, |m| m.index);
                    self.metrics
                        .snapshots
                        .with_label_values(&["received"])
                        .inc();
                    peer.incoming_snapshots.insert(index, data);
                    // Only the newest few can still be handed out; bound the memory.
                    while peer.incoming_snapshots.len() > 2 {
                        peer.incoming_snapshots.pop_first();
                    }
                    if let Err(err) = peer.raw.step(*msg) {
                        tracing::warn!(group, error = %err, "snapshot rejected");
                    }
                }
            }
            Inbox::SnapshotStatus { group, to, ok } => {
                let kind = if ok { "sent" } else { "failed" };
                self.metrics.snapshots.with_label_values(&[kind]).inc();
                if let Some(peer) = self.peers.get_mut(&group) {
                    peer.raw.report_snapshot(to, ok);
                    self.active.insert(group);
                }
            }
            Inbox::Unreachable(node) => {
                self.unreachable_at.insert(node, self.ticks);
                for (group, peer) in self.peers.iter_mut() {
                    if !peer.raw.store().apply.conf_state.voters.contains(&node)
                        && !peer.raw.store().apply.conf_state.learners.contains(&node)
                    {
                        continue;
                    }
                    peer.raw.report_unreachable(node);
                    // A suspected leader must not leave the group asleep: woken, followers
                    // time out and elect if it is gone. Losing a follower changes nothing
                    // for a sleeping group, so then nobody is woken.
                    let leader = peer.raw.leader_id();
                    if peer.raw.is_hibernating()
                        && peer.raw.role() != StateRole::Leader
                        && (leader == node || leader == 0)
                    {
                        peer.raw.wake();
                    }
                    self.active.insert(*group);
                }
            }
            Inbox::TransferLeader { group, to } => {
                if let Some(peer) = self.peers.get_mut(&group) {
                    peer.raw.transfer_leader(to);
                    self.active.insert(group);
                }
            }
            Inbox::Reconcile { shards, tombstones } => self.reconcile(shards, &tombstones),
            Inbox::HostMeta(Some(replica)) => {
                let (spec, machine) = *replica;
                if let Some(peer) = self.peers.get_mut(&META_GROUP) {
                    // Already hosted: the preferred leader follows the metadata's list.
                    peer.spec.replicas = spec.replicas;
                    peer.spec.learners = spec.learners;
                    return;
                }
                self.add_peer(spec, Some(machine), true);
                tracing::info!("created a metadata replica");
            }
            Inbox::HostMeta(None) => {
                self.drop_meta_replica();
            }
            Inbox::CompactNow { group, reply } => {
                self.compact(Some(group));
                let first = self.peers.get(&group).map(|p| p.raw.store().first_index());
                let _ = reply.send(first);
            }
            Inbox::Detail { group, sync, reply } => {
                // The applied index reported is then durable (a merge counts on it).
                if sync {
                    if let Err(e) = self.engine.db().flush_wal(true) {
                        tracing::warn!(error = %e, "cannot sync the state machine");
                        let _ = reply.send(None);
                        return;
                    }
                }
                let _ = reply.send(self.peers.get(&group).map(detail));
            }
            Inbox::ProposeAdmin {
                group,
                entry,
                reply,
            } => {
                let r = self.awake_leader(group).and_then(|peer| {
                    peer.raw
                        .propose(Vec::new(), entry.encode())
                        .map_err(|e| format!("admin entry refused: {e}"))
                });
                let _ = reply.send(r);
            }
            Inbox::ConfChange { group, cc, reply } => {
                let r = self.awake_leader(group).and_then(|peer| {
                    peer.raw
                        .propose_conf_change(Vec::new(), cc)
                        .map_err(|e| format!("membership change refused: {e}"))
                });
                let _ = reply.send(r);
            }
            Inbox::Shutdown(done) => self.shutdown = Some(done),
        }
    }

    /// The group's peer if this node leads it, woken and marked active for a proposal.
    fn awake_leader(&mut self, group: u64) -> Result<&mut Peer, String> {
        let peer = self
            .peers
            .get_mut(&group)
            .ok_or("this node does not serve that shard")?;
        if peer.raw.role() != StateRole::Leader {
            return Err(format!("not the leader (leader: {})", peer.raw.leader_id()));
        }
        self.active.insert(group);
        peer.last_active_tick = self.ticks;
        if peer.raw.is_hibernating() {
            peer.raw.wake();
        }
        Ok(peer)
    }

    /// Removes a peer from the runtime, answering what waits on it.
    fn take_peer(&mut self, group: u64) -> Option<Peer> {
        let mut peer = self.peers.remove(&group)?;
        // An attempt already forwarded or appended may still commit on the group's remaining
        // replicas: its outcome is unknown. Only parked ones certainly failed.
        for (_, p) in peer.pending.drain() {
            let reply = if p.term.is_some() {
                unknown_outcome()
            } else {
                tryagain("the replica moved away")
            };
            let _ = p.reply.send(reply);
        }
        for w in peer.reads_new.drain(..) {
            let _ = w.reply.send(Err(tryagain("the replica moved away")));
        }
        self.active.remove(&group);
        self.status.write().remove(&group);
        Some(peer)
    }

    /// Recovers or creates a group's replica and starts driving it (a failure is fatal: the
    /// node's storage can't be trusted then); returns it for the caller's log line.
    fn add_peer(&mut self, spec: GroupSpec, meta: Option<MetaMachine>, created: bool) -> &Peer {
        let peer = new_peer(
            self.node_id,
            &self.opts,
            &self.engine,
            &self.log,
            spec,
            meta,
            created,
        )
        .unwrap_or_else(|e| fatal(&e));
        let id = peer.spec.id;
        self.active.insert(id);
        self.peers.insert(id, peer);
        &self.peers[&id]
    }

    /// Removes this node's metadata replica, if it has one: state, applied metadata, log.
    fn drop_meta_replica(&mut self) {
        if self.take_peer(META_GROUP).is_some() {
            if let Err(e) = destroy_meta_replica(&self.engine, self.log.as_ref()) {
                fatal(&e);
            }
        }
    }

    /// Drops a group merged into its neighbour: its state and log go, its data stays (the
    /// target owns those slots now).
    fn drop_merged(&mut self, group: u64) {
        if self.take_peer(group).is_some() {
            tracing::info!(group, "dropped a group merged into its neighbour");
            if let Err(e) = destroy_group_data(&self.engine, self.log.as_ref(), group, None) {
                fatal(&e);
            }
        }
    }

    /// Starts a group just split off (its apply state was written with the split).
    fn start_child(&mut self, child: GroupSpec, campaign: bool) {
        let id = child.id;
        if self.peers.contains_key(&id) {
            return;
        }
        let peer = self.add_peer(child, None, false);
        tracing::info!(
            group = id,
            first = peer.spec.first_slot,
            last = peer.spec.last_slot,
            campaign,
            "started a group split off"
        );
        // The child's replicas start with no leader. Left to their election timers, the
        // child's slots take a write for 1-2 s after every split; the replica beside the
        // parent's leader campaigns at once instead (TiKV does the same). Its votes can reach
        // a node that has not applied the split yet: those are held (`held`) and delivered
        // when that node starts the child.
        if campaign {
            if let Some(peer) = self.peers.get_mut(&id) {
                let _ = peer.raw.campaign();
                self.active.insert(id);
            }
        }
        self.deliver_held(id);
    }

    /// Keeps a message for a group this node doesn't have yet, briefly: a split child's
    /// first votes can arrive before this node applies the split that creates it.
    fn hold(&mut self, gm: GroupMessage) {
        self.drop_expired_held();
        if self.held.len() >= MAX_HELD {
            self.held.pop_front();
        }
        self.held.push_back((Instant::now(), gm));
    }

    /// Drops held messages older than `HELD_FOR` (the queue is in arrival order).
    fn drop_expired_held(&mut self) {
        let now = Instant::now();
        while self
            .held
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > HELD_FOR)
        {
            self.held.pop_front();
        }
    }

    /// Steps the held messages of a group just created (votes of its first election).
    fn deliver_held(&mut self, group: u64) {
        self.drop_expired_held();
        if self.held.iter().all(|(_, gm)| gm.group_id != group) {
            return;
        }
        let (mine, rest): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|(_, gm)| gm.group_id == group);
        self.held = rest;
        let Some(peer) = self.peers.get_mut(&group) else {
            return;
        };
        for (_, gm) in mine {
            if let Some(msg) = gm.msg {
                if let Err(err) = peer.raw.step(msg) {
                    tracing::debug!(group, error = %err, "held message rejected");
                }
            }
        }
        self.active.insert(group);
    }

    /// Creates the replicas `shards` lists that are missing here, removes those it doesn't
    /// list (the metadata says they moved away, after the group's own configuration did),
    /// and refreshes the replica lists the others keep.
    fn reconcile(&mut self, all: Vec<GroupSpec>, tombstones: &[u64]) {
        for &group in tombstones {
            if self.peers.contains_key(&group) {
                self.drop_merged(group);
            }
        }
        let known: BTreeSet<u64> = all.iter().map(|s| s.id).collect();
        let all_ranges: HashMap<u64, (u16, u16)> = all
            .iter()
            .map(|s| (s.id, (s.first_slot, s.last_slot)))
            .collect();
        let shards: Vec<GroupSpec> = all
            .into_iter()
            .filter(|s| s.has_replica(self.node_id))
            .collect();
        let wanted: BTreeSet<u64> = shards.iter().map(|s| s.id).collect();
        // A group the metadata doesn't know yet (just split off) stays.
        let gone: Vec<u64> = self
            .peers
            .iter()
            .filter(|(id, p)| p.meta.is_none() && known.contains(*id) && !wanted.contains(*id))
            .map(|(id, _)| *id)
            .collect();
        for group in gone {
            let Some(peer) = self.take_peer(group) else {
                continue;
            };
            // The metadata's range: a lagging local replica may still think it owns slots
            // that a split gave to a group this node keeps.
            let slots = all_ranges
                .get(&group)
                .copied()
                .or(Some((peer.spec.first_slot, peer.spec.last_slot)));
            drop(peer);
            if let Err(e) = destroy_group_data(&self.engine, self.log.as_ref(), group, slots) {
                fatal(&e);
            }
        }
        for spec in shards {
            if let Some(peer) = self.peers.get_mut(&spec.id) {
                // Slots and epoch change only through the group's own log.
                peer.spec.replicas = spec.replicas;
                peer.spec.learners = spec.learners;
                peer.spec.conf_ver = spec.conf_ver;
                continue;
            }
            let id = spec.id;
            if is_tombstoned(&self.engine, id) {
                // Merged away here; the metadata will catch up.
                continue;
            }
            // A local group still owns some of these slots (it has not applied the split
            // that gave them away, say): creating the replica now would let that group's
            // older writes land on the new replica's data. Retried at the next reconcile.
            if let Some(other) = self.peers.values().find(|p| {
                p.meta.is_none()
                    && p.spec.first_slot <= spec.last_slot
                    && spec.first_slot <= p.spec.last_slot
            }) {
                tracing::debug!(
                    group = id,
                    overlapping = other.spec.id,
                    "replica creation deferred"
                );
                continue;
            }
            let mut spec = spec;
            if spec.learners.contains(&self.node_id) {
                // A learner being added starts empty and learns the configuration from the
                // leader's snapshot; it never starts out counting itself a voter (the
                // voters it was bootstrapped with, long ago, may have included it).
                spec.bootstrap = spec
                    .replicas
                    .iter()
                    .copied()
                    .filter(|r| *r != self.node_id)
                    .collect();
            }
            self.add_peer(spec, None, true);
            tracing::info!(group = id, "created a replica");
        }
    }

    fn tick_all(&mut self, now: Instant) {
        let election = self.opts.tick * self.opts.election_ticks as u32;
        self.ticks += 1;
        let ticks = self.ticks;
        let election_ticks = self.opts.election_ticks as u64;
        for (group, peer) in self.peers.iter_mut() {
            let idle = peer.pending.is_empty()
                && peer.reads_new.is_empty()
                && peer.reads_inflight.is_empty()
                && peer.reads_ready.is_empty();
            if peer.raw.role() == StateRole::Leader {
                let since = *peer.leader_since_tick.get_or_insert(ticks);
                // Never towards a node the transport recently could not reach (`wake` marks
                // every peer recently active, so Raft's own view is not enough).
                let reachable = |n: u64| {
                    self.unreachable_at
                        .get(&n)
                        .is_none_or(|&t| ticks > t + 2 * election_ticks)
                };
                if !peer.raw.is_hibernating()
                    && peer.spec.replicas.first().is_some_and(|&p| reachable(p))
                    && balance_leader(self.node_id, peer, ticks, since, election_ticks)
                {
                    self.active.insert(*group);
                }
            } else {
                peer.leader_since_tick = None;
            }
            if idle && peer.raw.is_hibernating() {
                continue;
            }
            peer.raw.tick();
            self.active.insert(*group);
            if peer.raw.role() == StateRole::Leader {
                // A leader that is not the preferred one stays awake a few election timeouts
                // so balancing can hand the group over first (it needs live heartbeats).
                let settled = peer.spec.replicas.first() == Some(&self.node_id)
                    || peer
                        .leader_since_tick
                        .is_some_and(|t| ticks >= t + 3 * election_ticks);
                if idle
                    && settled
                    && ticks.saturating_sub(peer.last_active_tick) >= QUIESCE_AFTER_TICKS
                    && peer.raw.can_hibernate()
                    && peer.raw.hibernate()
                {
                    tracing::debug!(group, "group quiescent");
                }
            }
            if idle {
                continue;
            }
            // Retry proposals that found no leader or certainly failed.
            let retry = std::mem::take(&mut peer.waiting);
            propose_many(self.node_id, peer, retry, &mut self.outbox, &self.transport);
            // Requests past their deadline: a parked one was certainly not applied.
            let expired: Vec<u64> = peer
                .pending
                .iter()
                .filter(|(_, p)| p.deadline <= now)
                .map(|(r, _)| *r)
                .collect();
            for req in expired {
                if let Some(p) = peer.pending.remove(&req) {
                    let reply = if p.term.is_none() {
                        tryagain("no leader is available for this shard; retry")
                    } else {
                        unknown_outcome()
                    };
                    let _ = p.reply.send(reply);
                }
            }
            peer.waiting.retain(|r| peer.pending.contains_key(r));
            peer.by_index
                .retain(|_, (_, r)| peer.pending.contains_key(r));
            // Reads: re-issue ReadIndex requests that got lost (leader change), fail old ones.
            let stale: Vec<u64> = peer
                .reads_inflight
                .iter()
                .filter(|(_, (_, at))| now.duration_since(*at) >= election)
                .map(|(c, _)| *c)
                .collect();
            for c in stale {
                if let Some((ws, _)) = peer.reads_inflight.remove(&c) {
                    peer.reads_new.extend(ws);
                }
            }
            let mut kept = Vec::new();
            for w in peer.reads_new.drain(..) {
                if w.deadline <= now {
                    let _ = w
                        .reply
                        .send(Err(tryagain("no quorum confirmed the read in time")));
                } else {
                    kept.push(w);
                }
            }
            peer.reads_new = kept;
            for (_, ws) in peer.reads_ready.iter_mut() {
                for w in std::mem::take(ws) {
                    if w.deadline <= now {
                        let _ = w
                            .reply
                            .send(Err(tryagain("this node did not catch up in time")));
                    } else {
                        ws.push(w);
                    }
                }
            }
            peer.reads_ready.retain(|(_, ws)| !ws.is_empty());
        }
        self.flush_outbox();
    }

    /// One ReadIndex request per group covers every read that arrived since the last one.
    fn issue_reads(&mut self, now: Instant) {
        for peer in self.peers.values_mut() {
            if peer.reads_new.is_empty() {
                continue;
            }
            let req = self.next_req;
            self.next_req += 1;
            match peer.raw.read_index(encode_ctx(self.node_id, req)) {
                Ok(()) => {
                    let ws = std::mem::take(&mut peer.reads_new);
                    peer.reads_inflight.insert(req, (ws, now));
                }
                Err(e) => {
                    // No leader yet: keep them; the next tick retries.
                    tracing::trace!(group = peer.spec.id, error = %e, "read index deferred");
                }
            }
        }
    }

    /// Proposes each group's requests of this round as one batch: one append and one
    /// message per follower for all of them, instead of one per request.
    fn propose_queued(&mut self) {
        for group in &self.active {
            let Some(peer) = self.peers.get_mut(group) else {
                continue;
            };
            if peer.proposing.is_empty() && peer.forwarded.is_empty() {
                continue;
            }
            let reqs = std::mem::take(&mut peer.proposing);
            propose_many(self.node_id, peer, reqs, &mut self.outbox, &self.transport);
        }
    }

    fn queue(&mut self, group: u64, msgs: Vec<Message>) {
        queue_msgs(&mut self.outbox, group, msgs);
    }

    fn flush_outbox(&mut self) {
        let Some(t) = &self.transport else {
            self.outbox.clear();
            return;
        };
        if self.outbox.is_empty() {
            return;
        }
        let sent = &self.metrics.raft_sent;
        let (messages, batches) = (
            sent.with_label_values(&["messages"]),
            sent.with_label_values(&["batches"]),
        );
        for (to, msgs) in self.outbox.drain() {
            messages.inc_by(msgs.len() as u64);
            batches.inc();
            t.send(to, msgs);
        }
    }

    /// Sends a message, turning a MsgSnapshot into a streamed snapshot of the group's data.
    fn send_or_snapshot(&mut self, group: u64, mut msgs: Vec<Message>) {
        let snaps: Vec<Message> = msgs
            .iter()
            .filter(|m| m.msg_type() == MessageType::MsgSnapshot)
            .cloned()
            .collect();
        msgs.retain(|m| m.msg_type() != MessageType::MsgSnapshot);
        self.queue(group, msgs);
        for mut m in snaps {
            let Some(peer) = self.peers.get(&group) else {
                continue;
            };
            // The data is read now, on this thread, so it is exactly the state at the apply
            // state below (raft may have asked for the snapshot a few applies ago).
            let apply = peer.raw.store().apply.clone();
            let spec = &peer.spec;
            crate::failpoint::hit("snapshot_send");
            let built = match &peer.meta {
                Some(m) => Ok(m.snapshot()),
                None => snapshot::build(&self.engine, spec.first_slot, spec.last_slot)
                    .map(|d| snapshot::with_range(peer.range(), d)),
            };
            let data = match built {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(group, error = %e, "cannot build snapshot");
                    continue;
                }
            };
            m.snapshot = Some(Snapshot {
                data: Default::default(),
                metadata: Some(raft::eraftpb::SnapshotMetadata {
                    conf_state: Some(apply.conf_state.clone()),
                    index: apply.applied_index,
                    term: apply.applied_term,
                }),
            });
            match &self.transport {
                Some(t) => t.send_snapshot(m.to, group, m, data),
                None => continue,
            }
        }
    }

    fn handle_readies(&mut self) {
        let mut log_batch = LogBatch::default();
        let mut sync = false;
        let mut readies = Vec::new();
        let groups: Vec<u64> = std::mem::take(&mut self.active).into_iter().collect();
        for group in &groups {
            let Some(peer) = self.peers.get_mut(group) else {
                continue;
            };
            if !peer.raw.has_ready() {
                continue;
            }
            let mut rd = peer.raw.ready();
            let msgs = std::mem::take(&mut rd.messages);
            if let Some(snap) = &rd.snapshot {
                install_snapshot(&self.engine, peer, snap, &mut log_batch);
                self.metrics.snapshots.with_label_values(&["applied"]).inc();
            }
            if !rd.entries.is_empty() {
                let node = self.node_id;
                for e in &rd.entries {
                    if let Some((origin, req)) = decode_ctx(&e.context) {
                        if origin == node && peer.pending.contains_key(&req) {
                            peer.by_index.insert(e.index, (e.term, req));
                        }
                    }
                }
                let ps = peer.raw.mut_store();
                log_batch.append(*group, &rd.entries, ps.last_index);
                ps.cache_append(&rd.entries);
                if let Some(last) = rd.entries.last() {
                    ps.last_index = last.index;
                    ps.last_term = last.term;
                }
            }
            if let Some(hs) = &rd.hard_state {
                peer.raw.mut_store().local.hard_state = *hs;
            }
            if rd.needs_persist() {
                log_batch.put_state(*group, peer.raw.store().local.clone());
            }
            sync |= rd.must_sync;
            self.send_or_snapshot(*group, msgs);
            readies.push((*group, rd));
        }
        if readies.is_empty() {
            return;
        }
        // The leader's appends are on the wire while it writes its own log.
        self.flush_outbox();
        let groups_with_work = readies.len();
        let entries: usize = readies.iter().map(|(_, rd)| rd.entries.len()).sum();
        self.metrics
            .raft_batch_size
            .with_label_values(&["groups"])
            .observe(groups_with_work as f64);
        if entries > 0 {
            self.metrics
                .raft_batch_size
                .with_label_values(&["entries"])
                .observe(entries as f64);
        }
        if !log_batch.is_empty() {
            let started = Instant::now();
            crate::failpoint::hit("log_write_before");
            let written = if crate::failpoint::armed("log_write_error") {
                Err("fsync: Input/output error (os error 5) (fail point)".to_string())
            } else {
                self.log.write(log_batch, sync)
            };
            if let Err(e) = written {
                self.fail_stop(&format!("Raft log write failed: {e}"), Vec::new());
            }
            crate::failpoint::hit("log_write_after");
            if sync {
                self.metrics
                    .raft_log_fsync
                    .observe(started.elapsed().as_secs_f64());
            }
        }
        // What waited for the log write (a follower's acks) goes now, not after this node's
        // apply: the leader's commit, and so every client's reply, waits on these.
        for (group, rd) in readies.iter_mut() {
            let persisted = std::mem::take(&mut rd.persisted_messages);
            queue_msgs(&mut self.outbox, *group, persisted);
        }
        self.flush_outbox();

        let engine = self.engine.clone();
        let mut ctx = Ctx::write(&engine);
        let mut replies: Vec<(oneshot::Sender<Frame>, Frame)> = Vec::new();
        let mut applied_groups = Vec::new();
        let mut later_msgs: Vec<(u64, Vec<Message>)> = Vec::new();
        let mut ops = 0u64;
        let mut effects = AdminEffects::default();
        for (group, mut rd) in readies {
            let Some(peer) = self.peers.get_mut(&group) else {
                continue;
            };
            for rs in std::mem::take(&mut rd.read_states) {
                if let Some((_, req)) = decode_ctx(&rs.request_ctx) {
                    if let Some((ws, _)) = peer.reads_inflight.remove(&req) {
                        peer.reads_ready.push((rs.index, ws));
                    }
                }
            }
            let committed = std::mem::take(&mut rd.committed_entries);
            let mut apply = peer.raw.store().apply.clone();
            ctx.set_shard(group, peer.spec.first_slot, peer.spec.last_slot);
            ctx.set_version_base(peer.version_base);
            let mut group_ops = apply_entries(
                self.node_id,
                peer,
                &mut ctx,
                &committed,
                &mut apply,
                &mut replies,
                &mut effects,
            );
            let light = peer.raw.advance(rd);
            group_ops += apply_entries(
                self.node_id,
                peer,
                &mut ctx,
                &light.committed_entries,
                &mut apply,
                &mut replies,
                &mut effects,
            );
            fail_superseded(peer, apply.applied_term);
            ops += group_ops;
            if let Some(c) = light.commit_index {
                peer.raw.mut_store().local.hard_state.commit = c;
            }
            later_msgs.push((group, light.messages));
            if apply != peer.raw.store().apply {
                applied_groups.push((group, apply));
            }
            if group_ops > 0 {
                peer.last_active_tick = self.ticks;
                self.metrics
                    .shard_writes
                    .with_label_values(&[&group.to_string()])
                    .inc_by(group_ops);
            }
        }
        if !applied_groups.is_empty() {
            let touched = ctx.take_touched();
            let volatile = ctx.wrote_volatile();
            let mut batch = ctx.into_batch();
            let mut meta_changed = false;
            for (group, apply) in &applied_groups {
                batch.put_cf(
                    self.engine.cf(Cf::Sys),
                    ApplyState::key(*group),
                    apply.encode(),
                );
                if let Some(peer) = self.peers.get_mut(group) {
                    if std::mem::take(&mut peer.range_dirty) {
                        let r = peer.range();
                        batch.put_cf(
                            self.engine.cf(Cf::Sys),
                            split::RangeState::key(*group),
                            r.encode(),
                        );
                    }
                    if let Some(m) = peer.meta.as_mut() {
                        meta_changed |= m.persist(&self.engine, &mut batch);
                    }
                }
            }
            // Children of splits are born in the same batch as the split's apply.
            for (child, version_base, _) in &effects.splits {
                if self.peers.contains_key(&child.id) {
                    continue;
                }
                let a = ApplyState {
                    applied_index: split::INIT_INDEX,
                    applied_term: split::INIT_TERM,
                    conf_state: raft::eraftpb::ConfState {
                        voters: child.bootstrap.clone(),
                        ..Default::default()
                    },
                };
                let r = split::RangeState {
                    first: child.first_slot,
                    last: child.last_slot,
                    epoch: child.epoch,
                    version_base: *version_base,
                };
                batch.put_cf(
                    self.engine.cf(Cf::Sys),
                    ApplyState::key(child.id),
                    a.encode(),
                );
                batch.put_cf(
                    self.engine.cf(Cf::Sys),
                    split::RangeState::key(child.id),
                    r.encode(),
                );
            }
            // Not synced: the log is, and replays whatever a crash takes from here.
            crate::failpoint::hit("apply_before_write");
            if let Err(e) = self.engine.db().write(batch) {
                let waiting = replies.into_iter().map(|(tx, _)| tx).collect();
                self.fail_stop(&format!("state machine write failed: {e}"), waiting);
            }
            crate::failpoint::hit("apply_after_write");
            if volatile {
                self.engine.note_volatile();
            }
            self.stats.ops_applied.fetch_add(ops, Ordering::Relaxed);
            self.stats.batches.fetch_add(1, Ordering::Relaxed);
            for (group, apply) in applied_groups {
                if let Some(peer) = self.peers.get_mut(&group) {
                    peer.raw.mut_store().apply = apply;
                    peer.raw.advance_apply();
                    if meta_changed {
                        if let Some(m) = &peer.meta {
                            m.publish();
                        }
                    }
                }
            }
            if self
                .peers
                .get(&META_GROUP)
                .and_then(|p| p.meta.as_ref())
                .is_some_and(|m| m.broken)
            {
                // Entries came before the snapshot: drop everything of this replica (it is
                // created again from the metadata, and the migration retries or times out).
                tracing::error!("metadata replica got log entries before a snapshot; dropping it");
                self.drop_meta_replica();
            }
            if !touched.is_empty() {
                let _ = self.touched.send(Arc::new(touched));
            }
            for (child, _, campaign) in std::mem::take(&mut effects.splits) {
                self.start_child(child, campaign);
            }
            for group in std::mem::take(&mut effects.merged) {
                self.drop_merged(group);
            }
        } else {
            drop(ctx);
            for group in &groups {
                if let Some(peer) = self.peers.get_mut(group) {
                    peer.raw.advance_apply();
                }
            }
        }
        for (reply, frame) in replies {
            let _ = reply.send(frame);
        }
        // After the apply is written: a snapshot built here must match the apply state.
        for (group, msgs) in later_msgs {
            self.send_or_snapshot(group, msgs);
        }
        for (group, peer) in self.peers.iter_mut() {
            let served = serve_reads(peer);
            if served > 0 {
                self.metrics
                    .shard_reads
                    .with_label_values(&[&group.to_string()])
                    .inc_by(served);
            }
        }
        // Anything left to do (e.g. entries committed by this round's acks) is picked up by
        // the next round.
        for group in groups {
            if self.peers.get(&group).is_some_and(|p| p.raw.has_ready()) {
                self.active.insert(group);
            }
        }
        self.compact_logs();
    }

    /// Drops log entries well behind the applied index once a group's log grows past the
    /// threshold, keeping half of it for followers that are a little behind.
    fn compact_logs(&mut self) {
        self.compact(None);
    }

    /// Compacts logs past the threshold or, with `force`, that group's log up to its
    /// applied index (before a replica is added: a new replica must then be sent a
    /// snapshot, never a replay from index 1 under today's range and epoch).
    fn compact(&mut self, force: Option<u64>) {
        let threshold = self.opts.log_gc_threshold.max(2);
        let mut batch = LogBatch::default();
        let mut flushed = false;
        for (group, peer) in self.peers.iter_mut() {
            if force.is_some_and(|g| g != *group) {
                continue;
            }
            let ps = peer.raw.store();
            let applied = ps.apply.applied_index;
            let compact_to = if force.is_some() {
                applied
            } else if applied.saturating_sub(ps.local.truncated_index) <= threshold {
                continue;
            } else {
                applied - threshold / 2
            };
            if compact_to <= ps.local.truncated_index {
                continue;
            }
            let Ok(term) = raft::Storage::term(ps, compact_to) else {
                continue;
            };
            // The state machine must be durable up to the compaction point first: its
            // writes are not synced and the log is what replays them.
            if !flushed {
                if let Err(e) = self.engine.db().flush_wal(true) {
                    tracing::warn!(error = %e, "cannot sync the state machine; compaction skipped");
                    return;
                }
                flushed = true;
            }
            let from = ps.local.truncated_index + 1;
            let ps = peer.raw.mut_store();
            ps.local.truncated_index = compact_to;
            ps.local.truncated_term = term;
            ps.cache_compact(compact_to);
            batch.delete_entries(*group, from, compact_to + 1);
            batch.put_state(*group, ps.local.clone());
            tracing::debug!(group, compact_to, "compacted raft log");
        }
        if !batch.is_empty() {
            if let Err(e) = self.log.write(batch, false) {
                fatal(&e);
            }
        }
    }

    fn publish_status(&mut self) {
        let mut changed = Vec::new();
        for (group, peer) in self.peers.iter_mut() {
            let role = (peer.raw.role(), peer.raw.term());
            if role != peer.last_role {
                if matches!(role.0, StateRole::Candidate | StateRole::PreCandidate) {
                    // The raft crate is pure (no logging): elections are logged from here.
                    let pre = role.0 == StateRole::PreCandidate;
                    tracing::info!(group, term = role.1, pre_vote = pre, "election started");
                }
                peer.last_role = role;
            }
            let ps = peer.raw.store();
            let last = &peer.last_status;
            // Compare in place first: most groups change nothing in most rounds.
            if last.leader == peer.raw.leader_id()
                && last.is_leader == (peer.raw.role() == StateRole::Leader)
                && last.term == peer.raw.term()
                && last.commit == peer.raw.commit_index()
                && last.applied == ps.apply.applied_index
                && last.first_index == ps.first_index()
                && last.last_index == ps.last_index
                && last.voters == ps.apply.conf_state.voters
            {
                continue;
            }
            let s = GroupStatus {
                leader: peer.raw.leader_id(),
                is_leader: peer.raw.role() == StateRole::Leader,
                term: peer.raw.term(),
                commit: peer.raw.commit_index(),
                applied: ps.apply.applied_index,
                first_index: ps.first_index(),
                last_index: ps.last_index,
                voters: ps.apply.conf_state.voters.clone(),
            };
            if s != peer.last_status {
                if s.leader != peer.last_status.leader {
                    tracing::info!(group, leader = s.leader, term = s.term, "leader changed");
                    self.metrics.raft_leader_changes.inc();
                    // ReadIndex requests in flight went to the old leader and may be lost:
                    // ask the new one now rather than after an election timeout (a late
                    // answer to an old request finds nothing waiting and is ignored).
                    let lost: Vec<ReadWaiter> = peer
                        .reads_inflight
                        .drain()
                        .flat_map(|(_, (ws, _))| ws)
                        .collect();
                    peer.reads_new.extend(lost);
                }
                peer.last_status = s.clone();
                changed.push((*group, s));
            }
        }
        if !changed.is_empty() {
            let mut map = self.status.write();
            for (g, s) in changed {
                map.insert(g, s);
            }
        }
    }
}

impl Peer {
    /// The group's range record as its log has set it.
    fn range(&self) -> split::RangeState {
        split::RangeState {
            first: self.spec.first_slot,
            last: self.spec.last_slot,
            epoch: self.spec.epoch,
            version_base: self.version_base,
        }
    }
}

fn detail(peer: &Peer) -> GroupDetail {
    let st = peer.raw.status();
    GroupDetail {
        leader: peer.raw.leader_id(),
        is_leader: peer.raw.role() == StateRole::Leader,
        term: peer.raw.term(),
        commit: peer.raw.commit_index(),
        applied: peer.raw.store().apply.applied_index,
        last_index: st.last_index,
        voters: st.conf_state.voters.clone(),
        learners: st.conf_state.learners.clone(),
        version_base: peer.version_base,
        first_slot: peer.spec.first_slot,
        last_slot: peer.spec.last_slot,
        epoch: peer.spec.epoch,
        voters_outgoing: st.conf_state.voters_outgoing.clone(),
        progress: st
            .progress
            .iter()
            .map(|(id, p)| (*id, p.matched, p.recent_active))
            .collect(),
    }
}

/// Hands leadership to the shard's preferred leader (its first replica) once that replica is
/// caught up, so leaders spread evenly over the nodes (and return after a failover). Checked
/// once per election timeout, after this node led for a full one.
fn balance_leader(node: u64, peer: &mut Peer, ticks: u64, since: u64, election_ticks: u64) -> bool {
    let Some(&preferred) = peer.spec.replicas.first() else {
        return false;
    };
    if preferred == node
        || ticks < since + election_ticks
        || !(ticks - since).is_multiple_of(election_ticks)
        || !peer
            .raw
            .store()
            .apply
            .conf_state
            .voters
            .contains(&preferred)
    {
        return false;
    }
    let status = peer.raw.status();
    let caught_up = status
        .progress
        .get(&preferred)
        .is_some_and(|p| p.matched == status.last_index && p.recent_active);
    if caught_up {
        tracing::info!(
            group = peer.spec.id,
            to = preferred,
            "transferring leadership to the shard's preferred leader"
        );
        peer.raw.transfer_leader(preferred);
    }
    caught_up
}

fn queue_msgs(outbox: &mut HashMap<u64, Vec<GroupMessage>>, group: u64, msgs: Vec<Message>) {
    for m in msgs {
        outbox.entry(m.to).or_default().push(GroupMessage {
            group_id: group,
            msg: Some(m),
        });
    }
}

/// Proposes `reqs` (this node's) and the group's forwarded proposals as one batch, forwards
/// them to the known leader, or parks them until one is known. When a batch of several is
/// refused as a whole (a transfer in progress, the uncommitted log full), each is tried on
/// its own. A forwarded proposal carries the forwarder's term; the leader accepts it only in
/// that same term, so an attempt can only ever commit with that term (see `fail_superseded`).
fn propose_many(
    node: u64,
    peer: &mut Peer,
    reqs: Vec<u64>,
    outbox: &mut HashMap<u64, Vec<GroupMessage>>,
    transport: &Option<Arc<Transport>>,
) {
    let term = peer.raw.term();
    let leads = peer.raw.role() == StateRole::Leader;
    let local: Vec<(u64, Bytes, Bytes)> = reqs
        .into_iter()
        .filter_map(|req| {
            let p = peer.pending.get(&req)?;
            Some((req, encode_ctx(node, req).into(), p.data.clone().into()))
        })
        .collect();
    // Forwarded proposals are only taken by the leader of the term they were sent in.
    let forwarded: Vec<(Bytes, Bytes)> = std::mem::take(&mut peer.forwarded)
        .into_iter()
        .filter(|(t, _)| leads && *t == term)
        .flat_map(|(_, es)| es)
        .map(|e| (e.context, e.data))
        .collect();
    let batch: Vec<(Bytes, Bytes)> = local
        .iter()
        .map(|(_, c, d)| (c.clone(), d.clone()))
        .chain(forwarded.iter().cloned())
        .collect();
    let n = batch.len();
    if n == 0 {
        return;
    }
    match peer.raw.propose_batch(batch) {
        Ok(()) => {
            if !forwarded.is_empty() {
                // The forwarders answer their clients once they learn of the commit.
                peer.raw.expedite_commit();
            }
            for (req, _, _) in &local {
                if let Some(p) = peer.pending.get_mut(req) {
                    p.term = Some(term);
                }
            }
        }
        Err(raft::Error::NotLeader { leader }) if leader != 0 && transport.is_some() => {
            // One forwarded message carries them all (a follower has no forwarded ones).
            let mut entries = Vec::with_capacity(local.len());
            for (req, context, data) in local {
                if let Some(p) = peer.pending.get_mut(&req) {
                    p.term = Some(term);
                }
                entries.push(Entry {
                    data,
                    context,
                    ..Default::default()
                });
            }
            let m = Message {
                msg_type: MessageType::MsgPropose as i32,
                to: leader,
                from: node,
                term,
                entries,
                ..Default::default()
            };
            queue_msgs(outbox, peer.spec.id, vec![m]);
        }
        Err(_) if n > 1 => {
            for (req, _, _) in local {
                propose_many(node, peer, vec![req], outbox, transport);
            }
            for (context, data) in forwarded {
                match peer.raw.propose(context, data) {
                    Ok(()) => peer.raw.expedite_commit(),
                    Err(err) => {
                        tracing::debug!(group = peer.spec.id, error = %err, "forwarded proposal dropped")
                    }
                }
            }
        }
        Err(err) => {
            for (req, _, _) in local {
                if let Some(p) = peer.pending.get_mut(&req) {
                    p.term = None;
                    peer.waiting.push(req);
                }
            }
            if !forwarded.is_empty() {
                tracing::debug!(group = peer.spec.id, error = %err, "forwarded proposal dropped");
            }
        }
    }
}

/// An attempt proposed in term T that is not applied by the time an entry of a later term is
/// applied can never commit (log terms only grow with the index, and leaders accept forwarded
/// proposals only in the forwarder's term): propose it again, it is certainly not applied.
fn fail_superseded(peer: &mut Peer, applied_term: u64) {
    for (req, p) in peer.pending.iter_mut() {
        if p.term.is_some_and(|t| t < applied_term) {
            p.term = None;
            peer.waiting.push(*req);
        }
    }
}

/// Applies committed entries into `ctx`, advancing `apply`; returns the number of ops.
fn apply_entries(
    node: u64,
    peer: &mut Peer,
    ctx: &mut Ctx,
    entries: &[Entry],
    apply: &mut ApplyState,
    replies: &mut Vec<(oneshot::Sender<Frame>, Frame)>,
    effects: &mut AdminEffects,
) -> u64 {
    let mut ops = 0;
    for e in entries {
        if e.index <= apply.applied_index {
            continue;
        }
        let mut reply = None;
        match e.entry_type() {
            EntryType::EntryNormal if !e.data.is_empty() && peer.meta.is_some() => {
                if let Some(m) = peer.meta.as_mut() {
                    reply = Some(m.apply(&e.data));
                }
            }
            EntryType::EntryNormal if split::is_admin(&e.data) => {
                reply = Some(match split::AdminEntry::decode(&e.data) {
                    Ok(split::AdminEntry::Split(sp)) => {
                        apply_split(peer, &sp, e.index, apply, &mut effects.splits)
                    }
                    Ok(split::AdminEntry::PrepareMerge(pm)) => apply_prepare_merge(peer, &pm),
                    Ok(split::AdminEntry::RollbackMerge(rb)) => apply_rollback_merge(peer, &rb),
                    Ok(split::AdminEntry::CommitMerge(cm)) => {
                        apply_commit_merge(peer, &cm, e.index, &mut effects.merged)
                    }
                    Err(err) => crate::cmd::CmdError::Other(format!("ERR {err}")).to_frame(),
                });
                // Later entries of this round apply to the new range (keyspace-wide
                // commands like FLUSHALL walk it).
                ctx.set_shard(peer.spec.id, peer.spec.first_slot, peer.spec.last_slot);
                ctx.set_version_base(peer.version_base);
            }
            EntryType::EntryNormal if !e.data.is_empty() => {
                reply = Some(match WriteOp::decode(&e.data) {
                    // Routed with a stale layout: refused on every replica alike, so the
                    // client may retry it with a fresh route.
                    Ok(op) if op.epoch != 0 && op.epoch != peer.spec.epoch => {
                        tryagain("the shard changed since the request was routed; retry")
                    }
                    Ok(op) => {
                        ops += 1;
                        apply_op(ctx, e.index, &op)
                    }
                    Err(err) => {
                        tracing::error!(group = peer.spec.id, index = e.index, error = %err, "undecodable entry skipped");
                        crate::cmd::CmdError::Other(format!("ERR undecodable write: {err}"))
                            .to_frame()
                    }
                });
            }
            EntryType::EntryNormal => {}
            EntryType::EntryConfChangeV2 => match ConfChangeV2::decode(e.data.as_ref()) {
                Ok(cc) => match peer.raw.apply_conf_change(&cc) {
                    Ok(cs) => {
                        tracing::info!(group = peer.spec.id, conf = ?cs, "membership changed");
                        apply.conf_state = cs;
                    }
                    Err(err) => {
                        tracing::warn!(group = peer.spec.id, error = %err, "conf change rejected")
                    }
                },
                Err(err) => {
                    tracing::error!(group = peer.spec.id, error = %err, "undecodable conf change")
                }
            },
        }
        apply.applied_index = e.index;
        apply.applied_term = e.term;
        // Our own proposals that were appended at or before this index: the one whose
        // context matches gets the reply, any other lost its slot to another entry.
        let mine = decode_ctx(&e.context).filter(|(origin, _)| *origin == node);
        while let Some((&idx, &(_, req))) = peer.by_index.iter().next() {
            if idx > e.index {
                break;
            }
            peer.by_index.remove(&idx);
            if mine.map(|(_, r)| r) != Some(req) {
                // Another entry took the slot: this attempt is lost, propose it again.
                if let Some(p) = peer.pending.get_mut(&req) {
                    if p.term.is_some() {
                        p.term = None;
                        peer.waiting.push(req);
                    }
                }
            }
        }
        if let (Some((_, req)), Some(r)) = (mine, reply) {
            if let Some(p) = peer.pending.remove(&req) {
                replies.push((p.reply, r));
            }
        }
    }
    ops
}

/// What admin entries applied in a round leave to do once the round's batch is written.
#[derive(Default)]
struct AdminEffects {
    /// Groups split off, to start, with their version bases and whether this node's replica
    /// of the parent led it (that replica's child campaigns at once).
    splits: Vec<(GroupSpec, u64, bool)>,
    /// Groups merged into a neighbour, to drop (keeping their data).
    merged: Vec<u64>,
}

/// Freezes a group about to be merged away: with its epoch bumped, every request routed
/// with the old one is refused, so its data stops changing.
fn apply_prepare_merge(peer: &mut Peer, pm: &split::PrepareMerge) -> Frame {
    if pm.epoch != peer.spec.epoch {
        return tryagain("the merge no longer matches the shard");
    }
    peer.spec.epoch += 1;
    peer.range_dirty = true;
    tracing::info!(
        group = peer.spec.id,
        epoch = peer.spec.epoch,
        "frozen for a merge"
    );
    Frame::Integer(peer.spec.epoch as i64)
}

/// Unfreezes a merge's source (or pre-empts a PrepareMerge still in flight): the group
/// serves again at the epoch the metadata will route with.
fn apply_rollback_merge(peer: &mut Peer, rb: &split::RollbackMerge) -> Frame {
    let epoch = peer.spec.epoch;
    if epoch == rb.to_epoch {
        return Frame::Integer(epoch as i64);
    }
    if epoch + 1 != rb.to_epoch && epoch + 2 != rb.to_epoch {
        return tryagain("the rollback no longer matches the shard");
    }
    peer.spec.epoch = rb.to_epoch;
    peer.range_dirty = true;
    tracing::warn!(
        group = peer.spec.id,
        epoch = rb.to_epoch,
        "merge rolled back; serving again"
    );
    Frame::Integer(rb.to_epoch as i64)
}

/// Extends the target over the frozen source's adjacent slots (epoch above both); the
/// source's local replica is dropped after the batch, its data kept.
fn apply_commit_merge(
    peer: &mut Peer,
    cm: &split::CommitMerge,
    index: u64,
    merged: &mut Vec<u64>,
) -> Frame {
    let spec = &mut peer.spec;
    let adjacent = u32::from(cm.source_last) + 1 == u32::from(spec.first_slot)
        || u32::from(spec.last_slot) + 1 == u32::from(cm.source_first);
    if cm.target_epoch != spec.epoch || !adjacent || cm.source == spec.id {
        return tryagain("the merge no longer matches the shard");
    }
    crate::failpoint::hit("merge_commit_apply");
    spec.first_slot = spec.first_slot.min(cm.source_first);
    spec.last_slot = spec.last_slot.max(cm.source_last);
    spec.epoch = spec.epoch.max(cm.source_epoch) + 1;
    // From the next entry on, the target counts past everything the source wrote.
    let past_source = cm.source_version_base + cm.source_last_index;
    peer.version_base = peer.version_base.max(past_source.saturating_sub(index));
    peer.range_dirty = true;
    tracing::info!(
        group = spec.id,
        source = cm.source,
        first = spec.first_slot,
        last = spec.last_slot,
        "merge applied"
    );
    merged.push(cm.source);
    Frame::Integer(spec.epoch as i64)
}

/// Applies a split entry: the parent keeps slots `..at` (epoch + 1) and the child, started
/// after the batch is written, takes `at..` on the same voters. A split proposed for another
/// epoch or outside the range changes nothing, on every replica alike.
fn apply_split(
    peer: &mut Peer,
    sp: &split::SplitEntry,
    index: u64,
    apply: &ApplyState,
    splits: &mut Vec<(GroupSpec, u64, bool)>,
) -> Frame {
    let spec = &mut peer.spec;
    if sp.epoch != spec.epoch || sp.at <= spec.first_slot || sp.at > spec.last_slot {
        return tryagain("the split no longer matches the shard");
    }
    crate::failpoint::hit("split_apply");
    let child = GroupSpec {
        id: sp.new_id,
        first_slot: sp.at,
        last_slot: spec.last_slot,
        epoch: spec.epoch + 1,
        replicas: spec.replicas.clone(),
        learners: Vec::new(),
        conf_ver: spec.conf_ver,
        bootstrap: apply.conf_state.voters.clone(),
    };
    tracing::info!(
        group = spec.id,
        child = sp.new_id,
        at = sp.at,
        "split applied"
    );
    spec.last_slot = sp.at - 1;
    spec.epoch += 1;
    peer.range_dirty = true;
    // The child's entries start at INIT_INDEX + 1: counted from past the split's index.
    let led = peer.raw.role() == StateRole::Leader;
    splits.push((child, peer.version_base + index, led));
    Frame::Integer(sp.new_id as i64)
}

/// Replaces the group's data with a received snapshot and resets its log.
fn install_snapshot(engine: &Engine, peer: &mut Peer, snap: &Snapshot, log_batch: &mut LogBatch) {
    crate::failpoint::hit("snapshot_install");
    let Some(meta) = snap.metadata.clone() else {
        return;
    };
    let data = peer.incoming_snapshots.remove(&meta.index);
    peer.incoming_snapshots.retain(|idx, _| *idx > meta.index);
    let data = match data {
        Some(data) => data,
        None => fatal(&format!(
            "raft handed out snapshot {} of group {} without its data",
            meta.index, peer.spec.id
        )),
    };
    let mut data = data;
    if crate::failpoint::armed("snapshot_corrupt") {
        let mid = data.len() / 2;
        if let Some(b) = data.get_mut(mid) {
            *b ^= 0x5a;
        }
    }
    let mut batch = rocksdb::WriteBatch::default();
    let installed = match peer.meta.as_mut() {
        Some(m) => m.install(&data).map(|()| {
            m.persist(engine, &mut batch);
            1
        }),
        None => snapshot::range_of(&data).and_then(|(range, records)| {
            // The sender's range at the snapshot point is the group's range from now on.
            if let Some(r) = range {
                peer.spec.first_slot = r.first;
                peer.spec.last_slot = r.last;
                peer.spec.epoch = r.epoch;
                peer.version_base = r.version_base;
                batch.put_cf(
                    engine.cf(Cf::Sys),
                    split::RangeState::key(peer.spec.id),
                    r.encode(),
                );
            }
            snapshot::install(
                engine,
                &mut batch,
                peer.spec.first_slot,
                peer.spec.last_slot,
                records,
            )
        }),
    };
    let n = match installed {
        Ok(n) => n,
        Err(e) => fatal(&format!(
            "snapshot of group {} is corrupt: {e}",
            peer.spec.id
        )),
    };
    let apply = ApplyState {
        applied_index: meta.index,
        applied_term: meta.term,
        conf_state: meta.conf_state.clone().unwrap_or_default(),
    };
    batch.put_cf(
        engine.cf(Cf::Sys),
        ApplyState::key(peer.spec.id),
        apply.encode(),
    );
    let mut wo = rocksdb::WriteOptions::default();
    wo.set_sync(true);
    if let Err(e) = engine.db().write_opt(batch, &wo) {
        fatal(&format!("cannot install snapshot: {e}"));
    }
    // The installed keys may carry times to live: active expiry must look again.
    engine.note_volatile();
    tracing::info!(
        group = peer.spec.id,
        index = meta.index,
        records = n,
        "installed snapshot"
    );
    if let Some(m) = &peer.meta {
        m.publish();
    }
    let group = peer.spec.id;
    let ps = peer.raw.mut_store();
    log_batch.delete_entries(
        group,
        ps.local.truncated_index + 1,
        ps.last_index.max(meta.index) + 1,
    );
    ps.local.truncated_index = meta.index;
    ps.local.truncated_term = meta.term;
    ps.clear_cache();
    ps.last_index = meta.index;
    ps.last_term = meta.term;
    ps.apply = apply;
    // Proposals appended before the snapshot point can no longer be matched to entries.
    peer.by_index.retain(|idx, _| *idx > meta.index);
    // An attempt in flight may be inside the snapshot (applied, but never seen here), so it
    // must not be retried as "superseded": leave it to time out as an unknown outcome.
    for p in peer.pending.values_mut() {
        if p.term.is_some() {
            p.term = Some(u64::MAX);
        }
    }
}

/// Answers the reads whose index is applied; returns how many.
fn serve_reads(peer: &mut Peer) -> u64 {
    if peer.reads_ready.is_empty() {
        return 0;
    }
    let mut served = 0;
    let applied = peer.raw.store().apply.applied_index;
    let mut kept = Vec::new();
    for (index, ws) in peer.reads_ready.drain(..) {
        if index <= applied {
            for w in ws {
                served += 1;
                let _ = w.reply.send(Ok(peer.spec.epoch));
            }
        } else {
            kept.push((index, ws));
        }
    }
    peer.reads_ready = kept;
    served
}
