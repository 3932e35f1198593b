//! Carries scheduling operations through their steps. Runs on every node and acts only while
//! the node leads the metadata group, so a new metadata leader picks up where the old one
//! stopped.
//!
//! Each pass looks at the shard group's real configuration (asked of its leader) and takes
//! the one step that follows from it, so a step repeated after a crash or a lost reply is
//! harmless. Migration of shard S's replica from A to B (PD's learner -> joint -> remove):
//! 1. metadata: B becomes a learner of S (B's node creates an empty replica);
//! 2. S's leader adds B as a learner; B catches up (snapshot, then the log);
//! 3. if A leads S, leadership moves to another voter;
//! 4. one joint change: B becomes a voter and A leaves (left automatically once committed);
//! 5. metadata: B replaces A in S's replica list; A's node removes its replica.
//!
//! The scheduler (same loop, same leader) starts moves by itself, one at a time and at most
//! one decision per `SCHEDULE_GAP`, unless paused: repair, decommission, automatic splits,
//! replica and leader balance, by the policies in `balance` over the nodes' load reports
//! (`heartbeat`). Every decision is logged, recorded as an operation with its kind as the
//! reason, and counted in `raftkv_scheduler_decisions_total{kind}`.
//!
//! Before step 4 the migration can be given up (the learner stays out of every quorum):
//! after `MIGRATE_TIMEOUT` without catching up, the learner is removed and the operation
//! fails. From step 4 on it only goes forward.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message as _;
use raft::eraftpb::{ConfChangeSingle, ConfChangeTransition, ConfChangeType, ConfChangeV2};

use super::balance::{self, Decision, Policy};
use super::{MetaCmd, MetaState, MetaView, OpKind, Operation, META_GROUP};
use crate::metrics::Metrics;
use crate::protocol::Frame;
use crate::raftstore::split::{AdminEntry, CommitMerge, PrepareMerge, SplitEntry};
use crate::raftstore::transport::pb::{GroupChange, GroupQuery, MetaProposal};
use crate::raftstore::GroupDetail;
use crate::routing::ShardSpec;
use crate::store::{now_ms, Store};

/// How often the metadata leader advances operations.
const PASS: Duration = Duration::from_millis(200);
/// A learner within this many entries of the commit index counts as caught up.
const CATCH_UP_SLACK: u64 = 100;
/// A migration whose learner has not caught up by then is given up.
const MIGRATE_TIMEOUT_MS: u64 = 10 * 60 * 1000;
/// Progress messages are recorded at most this often (each is a metadata write).
const MESSAGE_EVERY_MS: u64 = 2000;
const RPC_TIMEOUT: Duration = Duration::from_secs(3);
/// At most one scheduling decision this often (rate limit).
const SCHEDULE_GAP: Duration = Duration::from_secs(2);
/// A merge whose source replicas have not all applied the freeze by then is rolled back.
const MERGE_TIMEOUT_MS: u64 = 10 * 60 * 1000;
/// The merge steps that exclude each other (recorded by compare-and-set in the metadata).
const COMMITTING: &str = "committing";
const ROLLING_BACK: &str = "rolling_back";
/// A shard whose leader the scheduler moved is not moved again this soon.
const LEADER_COOLDOWN: Duration = Duration::from_secs(60);

/// This node's handle on the cluster: local runtime, peers' `Node` services, metadata.
pub struct Cluster {
    pub store: Arc<Store>,
    pub view: Arc<MetaView>,
    pub metrics: Arc<Metrics>,
    /// A node not heard from (`Hello`) for this long is down: its replicas are rebuilt
    /// elsewhere.
    pub down_after: Duration,
    pub started: Instant,
    /// Every node's latest load report (see `heartbeat`).
    pub load: super::load::LoadTable,
    /// Automatic split thresholds.
    pub policy: Policy,
}

/// Proposes an encoded metadata command to the local metadata replica.
pub async fn propose_local(store: &Store, cmd: Vec<u8>) -> Result<i64, String> {
    match store.raft().propose(META_GROUP, cmd).await {
        Frame::Integer(v) => Ok(v),
        Frame::Error(e) => Err(e.strip_prefix("ERR ").unwrap_or(&e).to_string()),
        other => Err(format!("unexpected metadata reply {other:?}")),
    }
}

impl Cluster {
    fn node_id(&self) -> u64 {
        self.store.node_id()
    }

    /// Proposes a metadata command (through a metadata replica if this node is none);
    /// returns the command's result (an operation id) or why it was refused.
    pub async fn propose(&self, cmd: &MetaCmd) -> Result<u64, String> {
        let data = serde_json::to_vec(cmd).map_err(|e| e.to_string())?;
        let replicas = self.view.current().meta_replicas.clone();
        // A node rebuilding its replicas may still be listed but hosts none: through others.
        if replicas.contains(&self.node_id()) && !self.view.replicas_held() {
            return propose_local(&self.store, data).await.map(|v| v as u64);
        }
        let proxy = self
            .store
            .proxy()
            .ok_or("no metadata replica is reachable")?;
        let mut last = String::from("no metadata replica is reachable");
        for node in replicas {
            let Some(mut c) = proxy.client(node) else {
                continue;
            };
            let req = proxy.request(MetaProposal {
                cmd: data.clone().into(),
            });
            match tokio::time::timeout(Duration::from_secs(8), c.propose_meta(req)).await {
                Ok(Ok(r)) => {
                    let r = r.into_inner();
                    if r.error.is_empty() {
                        return Ok(r.value as u64);
                    }
                    // Refused by the metadata itself: the same on every replica.
                    if !r.error.starts_with("TRYAGAIN") && !r.error.starts_with("UNCERTAIN") {
                        return Err(r.error);
                    }
                    last = r.error;
                }
                Ok(Err(s)) => last = s.message().to_string(),
                Err(_) => last = "metadata replica timed out".into(),
            }
        }
        Err(last)
    }

    /// Node `node`'s view of `shard` (None: it holds no replica).
    /// With `sync`, the node makes its applied state durable first.
    pub async fn detail(
        &self,
        node: u64,
        shard: u64,
        sync: bool,
    ) -> Result<Option<GroupDetail>, String> {
        if node == self.node_id() {
            return Ok(self.store.raft().detail(shard, sync).await);
        }
        let proxy = self.store.proxy().ok_or("no peers")?;
        let mut c = proxy.client(node).ok_or("unknown node")?;
        let req = proxy.request(GroupQuery { shard, sync });
        match tokio::time::timeout(RPC_TIMEOUT, c.detail(req)).await {
            Ok(Ok(r)) => Ok(crate::server::node_rpc::detail_from_pb(r.into_inner())),
            Ok(Err(s)) => Err(s.message().to_string()),
            Err(_) => Err("timed out".into()),
        }
    }

    /// Runs a membership change or a leadership transfer on `node` (the group's leader).
    pub async fn change(
        &self,
        node: u64,
        shard: u64,
        cc: Option<ConfChangeV2>,
        transfer_to: u64,
    ) -> Result<(), String> {
        if node == self.node_id() {
            let raft = self.store.raft();
            return match cc {
                Some(cc) => raft.change_conf(shard, cc).await,
                None => {
                    raft.transfer_leader(shard, transfer_to).await;
                    Ok(())
                }
            };
        }
        self.change_remote(
            node,
            GroupChange {
                shard,
                conf_change: cc.map(|c| c.encode_to_vec()).unwrap_or_default().into(),
                transfer_to,
                ..Default::default()
            },
        )
        .await
    }

    /// Compacts `node`'s log of `shard` up to its applied index.
    pub async fn compact(&self, node: u64, shard: u64) -> Result<(), String> {
        if node == self.node_id() {
            return match self.store.raft().compact_now(shard).await {
                Some(_) => Ok(()),
                None => Err("not hosted".into()),
            };
        }
        self.change_remote(
            node,
            GroupChange {
                shard,
                compact: true,
                ..Default::default()
            },
        )
        .await
    }

    /// Asks the group's leader on `node` to propose an admin entry (split, merge).
    pub async fn admin(&self, node: u64, shard: u64, entry: AdminEntry) -> Result<(), String> {
        if node == self.node_id() {
            return self.store.raft().propose_admin(shard, entry).await;
        }
        self.change_remote(
            node,
            GroupChange {
                shard,
                admin: entry.encode().into(),
                ..Default::default()
            },
        )
        .await
    }

    /// Sends a `ChangeGroup` to `node` (its answer's error, or the transport's).
    async fn change_remote(&self, node: u64, change: GroupChange) -> Result<(), String> {
        let proxy = self.store.proxy().ok_or("no peers")?;
        let mut c = proxy.client(node).ok_or("unknown node")?;
        let req = proxy.request(change);
        match tokio::time::timeout(RPC_TIMEOUT, c.change_group(req)).await {
            Ok(Ok(r)) if r.get_ref().error.is_empty() => Ok(()),
            Ok(Ok(r)) => Err(r.into_inner().error),
            Ok(Err(s)) => Err(s.message().to_string()),
            Err(_) => Err("timed out".into()),
        }
    }

    /// The shard's leader and its view of the group, asking the replicas in turn.
    pub async fn leader_of(&self, spec: &ShardSpec) -> Option<(u64, GroupDetail)> {
        let mut hint = 0;
        for node in spec.replicas.iter().chain(&spec.learners) {
            if let Ok(Some(d)) = self.detail(*node, spec.id, false).await {
                if d.is_leader {
                    return Some((*node, d));
                }
                if d.leader != 0 {
                    hint = d.leader;
                    break;
                }
            }
        }
        if hint == 0 {
            return None;
        }
        match self.detail(hint, spec.id, false).await {
            Ok(Some(d)) if d.is_leader => Some((hint, d)),
            _ => None,
        }
    }
}

/// Advances operations and schedules new ones whenever this node leads the metadata group.
pub async fn run(c: Arc<Cluster>) {
    let mut last_decision: Option<Instant> = None;
    // Shards whose leader the scheduler moved lately (left alone for a while).
    let mut leader_moved: std::collections::HashMap<u64, Instant> = Default::default();
    loop {
        tokio::time::sleep(PASS).await;
        if !c.store.raft().status(META_GROUP).is_leader {
            continue;
        }
        let state = c.view.current();
        for op in state.running() {
            let r = match op.kind {
                OpKind::Migrate { .. } => advance(&c, &state, op).await,
                OpKind::Decommission { node } => drain(&c, &state, op, node).await,
                OpKind::Split { shard, at, new_id } => {
                    split(&c, &state, op, shard, at, new_id).await
                }
                OpKind::Merge { source, target } => merge(&c, &state, op, source, target).await,
                OpKind::Create {
                    shard,
                    first,
                    last,
                    ref nodes,
                } => create(&c, &state, op, shard, (first, last), nodes).await,
                OpKind::Rebuild { shard, node, .. } => rebuild(&c, &state, op, shard, node).await,
                // Done when recorded.
                OpKind::TransferLeader { .. } => Ok(()),
            };
            if let Err(e) = r {
                tracing::debug!(op = op.id, error = %e, "operation step failed; retrying");
            }
        }
        if state.scheduler_paused || last_decision.is_some_and(|t| t.elapsed() < SCHEDULE_GAP) {
            continue;
        }
        leader_moved.retain(|_, t: &mut Instant| t.elapsed() < LEADER_COOLDOWN);
        let decided = {
            let load = c.load.summary(&state, super::heartbeat::FRESH);
            let alive = |n: u64| alive(&c, n);
            let cooling = |s: u64| leader_moved.contains_key(&s);
            let inputs = balance::Inputs {
                alive: &alive,
                load: &load,
                policy: c.policy,
                leader_cooling: &cooling,
            };
            balance::decide(&state, &inputs)
        };
        let Some(p) = decided else {
            continue;
        };
        last_decision = Some(Instant::now());
        let now = now_ms();
        let reason = p.kind.to_string();
        let cmd = match p.decision {
            Decision::Migrate { shard, from, to } => MetaCmd::BeginMigrate {
                shard,
                from,
                to,
                reason,
                now_ms: now,
            },
            Decision::Split { shard, at } => MetaCmd::BeginSplit {
                shard,
                at,
                new_id: state.next_shard_id(),
                reason,
                now_ms: now,
            },
            Decision::Leader { shard, to } => {
                leader_moved.insert(shard, Instant::now());
                MetaCmd::SetLeader {
                    shard,
                    node: to,
                    reason,
                    now_ms: now,
                }
            }
        };
        match c.propose(&cmd).await {
            Ok(op) => {
                tracing::info!(op, kind = p.kind, why = %p.why, "scheduling decision");
                c.metrics
                    .scheduler_decisions
                    .with_label_values(&[p.kind])
                    .inc();
            }
            Err(e) => {
                tracing::info!(kind = p.kind, why = %p.why, error = %e, "scheduling decision refused")
            }
        }
    }
}

/// Whether `node` counts as alive: heard from recently (or not observed long enough yet).
fn alive(c: &Cluster, node: u64) -> bool {
    node == c.store.node_id()
        || c.started.elapsed() < c.down_after
        || c.load.seen_within(node, c.down_after)
        || c.store
            .proxy()
            .is_some_and(|p| p.seen_within(node, c.down_after))
}

/// A decommission ends once its node holds nothing (the scheduler moves the replicas).
async fn drain(c: &Cluster, state: &MetaState, op: &Operation, node: u64) -> Result<(), String> {
    let left = state.groups().filter(|s| s.has_replica(node)).count();
    if left == 0 {
        c.propose(&MetaCmd::FinishDecommission {
            op: op.id,
            now_ms: now_ms(),
        })
        .await?;
        tracing::info!(op = op.id, node = %state.name_of(node), "node decommissioned");
        return Ok(());
    }
    let msg = if state.scheduler_paused {
        format!("{left} replica(s) left; the scheduler is paused")
    } else {
        format!("{left} replica(s) left")
    };
    note(c, op, "moving_replicas", msg).await
}

fn single(t: ConfChangeType, node: u64) -> ConfChangeSingle {
    let mut s = ConfChangeSingle {
        node_id: node,
        ..Default::default()
    };
    s.set_change_type(t);
    s
}

fn conf_change(changes: Vec<ConfChangeSingle>) -> ConfChangeV2 {
    let mut cc = ConfChangeV2 {
        changes,
        ..Default::default()
    };
    cc.set_transition(ConfChangeTransition::Auto);
    cc
}

/// Records the step an operation is at (rate-limited when only the message changes).
async fn note(c: &Cluster, op: &Operation, step: &str, message: String) -> Result<(), String> {
    let now = now_ms();
    if op.step == step && (op.message == message || now < op.updated_ms + MESSAGE_EVERY_MS) {
        return Ok(());
    }
    if op.step != step {
        tracing::info!(op = op.id, step, %message, "operation step");
    }
    // Nothing overwrites a merge's decision to commit or to roll back.
    let unless = [COMMITTING, ROLLING_BACK]
        .iter()
        .filter(|s| **s != step)
        .map(|s| s.to_string())
        .collect();
    c.propose(&MetaCmd::Step {
        op: op.id,
        step: step.into(),
        message,
        now_ms: now,
        unless,
    })
    .await
    .map(|_| ())
}

async fn advance(c: &Cluster, state: &MetaState, op: &Operation) -> Result<(), String> {
    let OpKind::Migrate { shard, from, to } = op.kind else {
        return Ok(());
    };
    let spec = &state.group(shard).ok_or("the shard is gone")?;
    let Some((leader, d)) = c.leader_of(spec).await else {
        return note(
            c,
            op,
            &op.step,
            "waiting for the shard to have a leader".into(),
        )
        .await;
    };
    if !d.voters_outgoing.is_empty() {
        // Joint: the leader leaves it by itself once the change is committed.
        return note(c, op, "promoting", "in a joint configuration".into()).await;
    }
    let is_voter = |n: u64| d.voters.contains(&n);
    if is_voter(to) && !is_voter(from) {
        c.propose(&MetaCmd::FinishMigrate {
            op: op.id,
            now_ms: now_ms(),
        })
        .await?;
        tracing::info!(
            op = op.id,
            shard = %spec.name(),
            from = %state.name_of(from),
            to = %state.name_of(to),
            "migration done"
        );
        return Ok(());
    }
    let timed_out = now_ms() > op.started_ms + MIGRATE_TIMEOUT_MS;
    if !is_voter(to) && !d.learners.contains(&to) {
        if timed_out {
            return give_up(c, op, "the new replica could not be added in time").await;
        }
        return add_learner(c, state, op, (shard, leader), &d, to).await;
    }
    if d.learners.contains(&to) {
        if let Some(lag) = behind(&d, to) {
            if timed_out {
                // Given up once a leader no longer lists the learner (next passes).
                c.change(
                    leader,
                    shard,
                    Some(conf_change(vec![single(ConfChangeType::RemoveNode, to)])),
                    0,
                )
                .await?;
                return note(c, op, "giving_up", "removing the learner".into()).await;
            }
            return note(c, op, "catching_up", lag).await;
        }
    }
    if leader == from {
        // A leader could leave through the joint change, but handing over first keeps
        // clients from waiting out an election.
        let target = d
            .voters
            .iter()
            .copied()
            .filter(|v| *v != from)
            .max_by_key(|v| d.progress.iter().find(|p| p.0 == *v).map_or(0, |p| p.1));
        let Some(t) = target else {
            // The only voter: the new one becomes a voter first; leadership moves to it on
            // the next pass, and the removal follows.
            c.change(
                leader,
                shard,
                Some(conf_change(vec![single(ConfChangeType::AddNode, to)])),
                0,
            )
            .await?;
            return note(c, op, "promoting", "adding a second voter first".into()).await;
        };
        c.change(leader, shard, None, t).await?;
        return note(c, op, "transferring_leader", String::new()).await;
    }
    let changes = if is_voter(to) {
        // Only the removal is left (a change made by hand, or an older attempt).
        vec![single(ConfChangeType::RemoveNode, from)]
    } else if is_voter(from) {
        vec![
            single(ConfChangeType::AddNode, to),
            single(ConfChangeType::RemoveNode, from),
        ]
    } else {
        vec![single(ConfChangeType::AddNode, to)]
    };
    crate::failpoint::hit("migrate_promote");
    c.change(leader, shard, Some(conf_change(changes)), 0)
        .await?;
    note(c, op, "promoting", String::new()).await
}

/// How far learner `node` is behind, while it is too far to be promoted (within
/// `CATCH_UP_SLACK` entries of the commit index is close enough).
fn behind(d: &GroupDetail, node: u64) -> Option<String> {
    let matched = d.progress.iter().find(|p| p.0 == node).map_or(0, |p| p.1);
    (matched == 0 || matched + CATCH_UP_SLACK < d.commit)
        .then(|| format!("learner at index {matched} of {}", d.commit))
}

/// Adds `node` to the group `leader` leads as a learner, to be sent a snapshot.
async fn add_learner(
    c: &Cluster,
    state: &MetaState,
    op: &Operation,
    (shard, leader): (u64, u64),
    d: &GroupDetail,
    node: u64,
) -> Result<(), String> {
    // Every voter that may lead drops its log up to what it applied: the new replica
    // is then always sent a snapshot (with the group's current range and epoch), never
    // a replay from index 1 checked against today's epoch (or missing a merged
    // source's data). The leader must; a voter that is down (a repair's `from`) can't.
    for &v in &d.voters {
        if let Err(e) = c.compact(v, shard).await {
            if v == leader {
                let msg = format!("compacting the log on {}: {e}", state.name_of(v));
                return note(c, op, "adding_learner", msg).await;
            }
            tracing::info!(node = %state.name_of(v), error = %e, "log not compacted on a voter");
        }
    }
    c.change(
        leader,
        shard,
        Some(conf_change(vec![single(
            ConfChangeType::AddLearnerNode,
            node,
        )])),
        0,
    )
    .await?;
    note(c, op, "adding_learner", String::new()).await
}

/// A rebuild (`OpKind::Rebuild`): the lost replica leaves the group's configuration (a
/// majority of the others commits that, so everything committed is then on a majority
/// without it), is created again empty as a learner, gets a snapshot, catches up and is
/// promoted. It never gives up: the node has nothing else to serve from.
async fn rebuild(
    c: &Cluster,
    state: &MetaState,
    op: &Operation,
    shard: u64,
    node: u64,
) -> Result<(), String> {
    let spec = &state.group(shard).ok_or("the shard is gone")?;
    let Some((leader, d)) = c.leader_of(spec).await else {
        let msg = "waiting for the shard to have a leader".to_string();
        return note(c, op, &op.step, msg).await;
    };
    if !d.voters_outgoing.is_empty() {
        return note(c, op, &op.step, "in a joint configuration".into()).await;
    }
    if leader == node {
        return Err("the lost replica is reported leading".into());
    }
    let in_config = d.voters.contains(&node) || d.learners.contains(&node);
    if op.step == "removing" {
        if in_config {
            let cc = conf_change(vec![single(ConfChangeType::RemoveNode, node)]);
            c.change(leader, shard, Some(cc), 0).await?;
            let msg = "taking the lost replica out of the group".to_string();
            return note(c, op, "removing", msg).await;
        }
        c.propose(&MetaCmd::RebuildLearner {
            op: op.id,
            now_ms: now_ms(),
        })
        .await?;
        tracing::info!(op = op.id, shard = %spec.name(), node = %state.name_of(node),
            "lost replica out of the group; adding it back empty");
        return Ok(());
    }
    if d.voters.contains(&node) {
        c.propose(&MetaCmd::FinishRebuild {
            op: op.id,
            now_ms: now_ms(),
        })
        .await?;
        tracing::info!(op = op.id, shard = %spec.name(), node = %state.name_of(node), "replica rebuilt");
        return Ok(());
    }
    if !d.learners.contains(&node) {
        return add_learner(c, state, op, (shard, leader), &d, node).await;
    }
    if let Some(lag) = behind(&d, node) {
        return note(c, op, "catching_up", lag).await;
    }
    let cc = conf_change(vec![single(ConfChangeType::AddNode, node)]);
    c.change(leader, shard, Some(cc), 0).await?;
    note(c, op, "promoting", String::new()).await
}

/// A split: proposed into the parent's log (all replicas split at the same index); once the
/// parent's leader reports the shorter range, the metadata follows.
async fn split(
    c: &Cluster,
    state: &MetaState,
    op: &Operation,
    shard: u64,
    at: u16,
    new_id: u64,
) -> Result<(), String> {
    let spec = state.shard(shard).ok_or("the shard is gone")?;
    let Some((leader, d)) = c.leader_of(spec).await else {
        return note(
            c,
            op,
            &op.step,
            "waiting for the shard to have a leader".into(),
        )
        .await;
    };
    if d.epoch > spec.epoch && d.last_slot + 1 == at {
        c.propose(&MetaCmd::FinishSplit {
            op: op.id,
            now_ms: now_ms(),
        })
        .await?;
        tracing::info!(op = op.id, shard = %spec.name(), at, new = new_id - 1, "split done");
        return Ok(());
    }
    if d.epoch != spec.epoch {
        return note(
            c,
            op,
            "splitting",
            "the shard's range changed; waiting".into(),
        )
        .await;
    }
    let entry = AdminEntry::Split(SplitEntry {
        at,
        new_id,
        epoch: spec.epoch,
    });
    c.admin(leader, shard, entry).await?;
    note(c, op, "splitting", String::new()).await
}

/// A merge: freeze the source in its own log, wait until every replica of it has that state
/// durably applied, then extend the target over it in the target's log (every replica
/// drops its source replica there, keeping the data), then the metadata follows.
async fn merge(
    c: &Cluster,
    state: &MetaState,
    op: &Operation,
    source: u64,
    target: u64,
) -> Result<(), String> {
    let src = state.shard(source).ok_or("the source is gone")?;
    let tgt = state.shard(target).ok_or("the target is gone")?;
    if op.step == ROLLING_BACK {
        return roll_back(c, op, src).await;
    }
    let Some((tl, td)) = c.leader_of(tgt).await else {
        return note(
            c,
            op,
            &op.step,
            "waiting for the target to have a leader".into(),
        )
        .await;
    };
    let covers = td.first_slot <= src.first_slot.min(tgt.first_slot)
        && td.last_slot >= src.last_slot.max(tgt.last_slot);
    if td.epoch > tgt.epoch && covers {
        c.propose(&MetaCmd::FinishMerge {
            op: op.id,
            epoch: td.epoch,
            now_ms: now_ms(),
        })
        .await?;
        tracing::info!(op = op.id, source = %src.name(), target = %tgt.name(), "merge done");
        return Ok(());
    }
    // The source's version base and last index (frozen: no write after it) let the target's
    // revisions and versions continue past the source's.
    let commit = |sd: &GroupDetail| {
        AdminEntry::CommitMerge(CommitMerge {
            source,
            source_first: src.first_slot,
            source_last: src.last_slot,
            // Frozen by this merge's PrepareMerge (nothing else changes a busy shard's epoch).
            source_epoch: src.epoch + 1,
            target_epoch: tgt.epoch,
            source_version_base: sd.version_base,
            source_last_index: sd.last_index,
        })
    };
    if op.step == COMMITTING {
        // Decided: only forward from here (CommitMerge again is harmless: once applied,
        // its target epoch is stale and it changes nothing).
        if td.epoch == tgt.epoch {
            let (_, sd) = c.leader_of(src).await.ok_or("the source has no leader")?;
            c.admin(tl, target, commit(&sd)).await?;
        }
        return Ok(());
    }
    if td.epoch != tgt.epoch {
        return note(c, op, &op.step, "waiting for the target's range".into()).await;
    }
    let Some((sl, sd)) = c.leader_of(src).await else {
        return note(
            c,
            op,
            &op.step,
            "waiting for the source to have a leader".into(),
        )
        .await;
    };
    if sd.epoch == src.epoch {
        c.admin(
            sl,
            source,
            AdminEntry::PrepareMerge(PrepareMerge { epoch: src.epoch }),
        )
        .await?;
        return note(c, op, "freezing", String::new()).await;
    }
    if sd.epoch != src.epoch + 1 {
        return note(c, op, "freezing", "the source changed; waiting".into()).await;
    }
    // Frozen: nothing after the source's commit index changes data. Every replica must hold
    // all of it durably before the target takes the slots over.
    // A replica that is down (or a wait past MERGE_TIMEOUT) would keep the source frozen:
    // the merge is rolled back instead, unless it already decided to commit.
    let upto = sd.commit;
    for &r in &src.replicas {
        match c.detail(r, source, true).await {
            Ok(Some(d)) if d.applied >= upto && d.epoch == sd.epoch => {}
            _ => {
                let down = !alive(c, r);
                if down || now_ms() > op.started_ms + MERGE_TIMEOUT_MS {
                    let why = if down {
                        format!("{} is down", state.name_of(r))
                    } else {
                        format!("{} did not apply the freeze in time", state.name_of(r))
                    };
                    tracing::warn!(op = op.id, source = %src.name(), %why, "rolling the merge back");
                    c.propose(&MetaCmd::Step {
                        op: op.id,
                        step: ROLLING_BACK.into(),
                        message: why,
                        now_ms: now_ms(),
                        unless: vec![COMMITTING.into()],
                    })
                    .await?;
                    return Ok(());
                }
                let msg = format!(
                    "waiting for {} to apply the source up to {upto}",
                    state.name_of(r)
                );
                return note(c, op, "catching_up", msg).await;
            }
        }
    }
    // Recorded (compare-and-set) right before the entry is proposed, by whichever driver
    // proposes it: from here on it never rolls back.
    c.propose(&MetaCmd::Step {
        op: op.id,
        step: COMMITTING.into(),
        message: String::new(),
        now_ms: now_ms(),
        unless: vec![ROLLING_BACK.into()],
    })
    .await?;
    c.admin(tl, target, commit(&sd)).await
}

/// Unfreezes a merge's source (the merge never committed: see `merge`), then records the
/// failure and the source's new epoch, which routing uses from then on.
async fn roll_back(c: &Cluster, op: &Operation, src: &ShardSpec) -> Result<(), String> {
    let Some((leader, d)) = c.leader_of(src).await else {
        return Err("the source has no leader".into());
    };
    let to_epoch = src.epoch + 2;
    if d.epoch == to_epoch {
        c.propose(&MetaCmd::AbortMerge {
            op: op.id,
            source_epoch: to_epoch,
            reason: format!("rolled back: {}", op.message),
            now_ms: now_ms(),
        })
        .await?;
        tracing::warn!(op = op.id, source = %src.name(), "merge rolled back");
        return Ok(());
    }
    let entry = AdminEntry::RollbackMerge(crate::raftstore::split::RollbackMerge { to_epoch });
    c.admin(leader, src.id, entry).await
}

/// A create, as operations of their own: split the owning shard at `first` (the new shard
/// is the upper part), split again after `last` if needed, then move replicas onto the
/// requested nodes one at a time.
async fn create(
    c: &Cluster,
    state: &MetaState,
    op: &Operation,
    id: u64,
    (first, last): (u16, u16),
    nodes: &[u64],
) -> Result<(), String> {
    let now = now_ms();
    let waiting = |s: &ShardSpec| state.running().any(|o| o.id != op.id && o.touches(s.id));
    let Some(s) = state.shard(id) else {
        let owner = state
            .shard_of_slot(first)
            .ok_or("no shard owns the first slot")?;
        if waiting(owner) {
            let msg = format!("waiting for {} to be free", owner.name());
            return note(c, op, "splitting", msg).await;
        }
        c.propose(&MetaCmd::BeginSplit {
            shard: owner.id,
            at: first,
            new_id: id,
            reason: String::new(),
            now_ms: now,
        })
        .await?;
        return note(c, op, "splitting", format!("splitting {}", owner.name())).await;
    };
    if waiting(s) {
        return note(
            c,
            op,
            &op.step,
            "waiting for the shard's current step".into(),
        )
        .await;
    }
    if s.last_slot > last {
        c.propose(&MetaCmd::BeginSplit {
            shard: id,
            at: last + 1,
            new_id: state.next_shard_id(),
            reason: String::new(),
            now_ms: now,
        })
        .await?;
        return note(c, op, "splitting", format!("cutting at slot {}", last + 1)).await;
    }
    let to = nodes.iter().copied().find(|n| !s.replicas.contains(n));
    let from = s.replicas.iter().copied().find(|r| !nodes.contains(r));
    if let (Some(to), Some(from)) = (to, from) {
        c.propose(&MetaCmd::BeginMigrate {
            shard: id,
            from,
            to,
            reason: "create".into(),
            now_ms: now,
        })
        .await?;
        let msg = format!("{} -> {}", state.name_of(from), state.name_of(to));
        return note(c, op, "moving_replicas", msg).await;
    }
    c.propose(&MetaCmd::FinishCreate {
        op: op.id,
        now_ms: now,
    })
    .await?;
    tracing::info!(op = op.id, shard = %s.name(), "shard created");
    Ok(())
}

async fn give_up(c: &Cluster, op: &Operation, reason: &str) -> Result<(), String> {
    tracing::warn!(op = op.id, reason, "operation failed");
    c.propose(&MetaCmd::FailOp {
        op: op.id,
        reason: reason.into(),
        now_ms: now_ms(),
    })
    .await
    .map(|_| ())
}
