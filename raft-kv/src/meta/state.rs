//! The cluster's metadata: nodes, shards (slots, replicas, epochs) and the operations in
//! progress, as one value replicated by the metadata Raft group.
//!
//! Commands are validated and applied deterministically here (the same on every replica);
//! a refused command changes nothing and answers why. Times come from the proposer inside
//! the command, never from the applying node's clock.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::META_GROUP;
use crate::raftstore::members::Member;
use crate::routing::{Layout, ShardSpec};
use crate::server::acl::{User, DEFAULT_USER};

/// Finished operations kept for `GET /admin/operations`.
const KEEP_FINISHED: usize = 100;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeMeta {
    pub id: u64,
    pub name: String,
    /// gRPC/admin address (`--port`).
    pub addr: String,
    #[serde(default)]
    pub state: NodeState,
}

/// A node's place in the cluster (liveness is separate: observed, not replicated).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Holds replicas and takes new ones.
    #[default]
    Up,
    /// Its replicas are being moved away; it takes no new ones.
    Decommissioning,
    /// Holds nothing and never will again.
    Removed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpState {
    Running,
    Done,
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OpKind {
    /// Move the replica of `shard` on `from` to `to`.
    Migrate { shard: u64, from: u64, to: u64 },
    /// Move every replica off `node`, then mark it removed.
    Decommission { node: u64 },
    /// Split `shard` at slot `at`: slots `at..` go to the new group `new_id`, on the same
    /// replicas, without copying data (it is already on every replica).
    Split { shard: u64, at: u16, new_id: u64 },
    /// Merge `source` into its neighbour `target` (same replicas, so no data moves).
    Merge { source: u64, target: u64 },
    /// Create shard `id` owning `first..=last` on `nodes`: carried out as splits of the
    /// owning shard, then migrations onto the requested nodes.
    /// (`shard`, not `id`: the kind is flattened into the operation, which has an `id`.)
    Create {
        shard: u64,
        first: u16,
        last: u16,
        nodes: Vec<u64>,
    },
    /// Make `to` the preferred leader of `shard` (done when recorded; the group follows).
    TransferLeader { shard: u64, to: u64 },
    /// Rebuild `node`'s replica of `shard` from the others (its disk was found corrupt):
    /// removed from the group first, so it never votes or counts with what it forgot, then
    /// added back empty as a learner, sent a snapshot, and promoted into place `at`.
    Rebuild { shard: u64, node: u64, at: usize },
}

/// A long-running scheduling operation and its progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    pub id: u64,
    #[serde(flatten)]
    pub kind: OpKind,
    pub state: OpState,
    /// Who started it: `admin`, or the scheduler's `repair`, `balance`, `decommission`.
    #[serde(default)]
    pub reason: String,
    /// The step in progress (or the last one), for humans.
    pub step: String,
    /// Why it failed, or what it is waiting for.
    #[serde(default)]
    pub message: String,
    pub started_ms: u64,
    pub updated_ms: u64,
}

impl Operation {
    /// The shard a migration works on (None for node-wide operations).
    pub fn shard(&self) -> Option<u64> {
        match self.kind {
            OpKind::Migrate { shard, .. }
            | OpKind::Split { shard, .. }
            | OpKind::TransferLeader { shard, .. }
            | OpKind::Rebuild { shard, .. } => Some(shard),
            OpKind::Merge { target, .. } => Some(target),
            // Its steps are operations of their own, on the shards they touch.
            OpKind::Decommission { .. } | OpKind::Create { .. } => None,
        }
    }

    /// Whether the operation works on `shard`.
    pub fn touches(&self, shard: u64) -> bool {
        match self.kind {
            OpKind::Merge { source, target } => shard == source || shard == target,
            _ => self.shard() == Some(shard),
        }
    }
}

/// Changes to the metadata, proposed through the metadata group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum MetaCmd {
    /// Starts moving `shard`'s replica from `from` to `to`: `to` becomes a learner.
    BeginMigrate {
        shard: u64,
        from: u64,
        to: u64,
        #[serde(default)]
        reason: String,
        now_ms: u64,
    },
    /// Starts draining `node` (the scheduler moves its replicas away).
    Decommission { node: u64, now_ms: u64 },
    /// The draining node holds nothing any more: it is removed.
    FinishDecommission { op: u64, now_ms: u64 },
    /// Pauses or resumes the scheduler (repair, balance, decommission moves).
    SetSchedulerPaused { paused: bool },
    /// Starts splitting `shard` at slot `at` into a new group `new_id`.
    BeginSplit {
        shard: u64,
        at: u16,
        new_id: u64,
        /// `admin` (default), or the scheduler's `split_size` / `split_load`.
        #[serde(default)]
        reason: String,
        now_ms: u64,
    },
    /// Makes `node` (a voting replica) the shard's preferred leader: the group's leader hands
    /// leadership to it once it is caught up. Recorded as a finished operation.
    SetLeader {
        shard: u64,
        node: u64,
        #[serde(default)]
        reason: String,
        now_ms: u64,
    },
    /// The parent group applied the split (its range ends before `at`): route by it.
    FinishSplit { op: u64, now_ms: u64 },
    /// Starts merging `source` into its adjacent, co-located neighbour `target`.
    BeginMerge {
        source: u64,
        target: u64,
        now_ms: u64,
    },
    /// The target applied the merge (now at `epoch`): the source is gone.
    FinishMerge { op: u64, epoch: u64, now_ms: u64 },
    /// Starts creating shard `id` with slots `first..=last` (inside one shard) on `nodes`.
    BeginCreate {
        id: u64,
        first: u16,
        last: u16,
        nodes: Vec<u64>,
        now_ms: u64,
    },
    /// The created shard has its slots and replicas.
    FinishCreate { op: u64, now_ms: u64 },
    /// A new node joins (`--join`); joining again with the same name and address is a no-op.
    AddNode { id: u64, name: String, addr: String },
    /// Records the step a running operation reached; refused while it is at one of
    /// `unless` (a compare-and-set: a merge commits or rolls back, never both).
    Step {
        op: u64,
        step: String,
        message: String,
        now_ms: u64,
        #[serde(default)]
        unless: Vec<String>,
    },
    /// A merge rolled back: its source serves again at `source_epoch`.
    AbortMerge {
        op: u64,
        source_epoch: u64,
        reason: String,
        now_ms: u64,
    },
    /// The group's configuration has `to` as a voter and no `from`: make it the routing truth.
    FinishMigrate { op: u64, now_ms: u64 },
    /// Creates or changes a user by `ACL SETUSER` rules (passwords already hashed): all
    /// rules or none.
    SetUser {
        name: String,
        rules: Vec<String>,
        /// Names this request: proposed again (a retry after an uncertain outcome), it is
        /// not applied twice (`<password` would then fail). 0: no id.
        #[serde(default)]
        id: u64,
    },
    /// Deletes users (never `default`); the result is how many existed.
    DelUser { names: Vec<String> },
    /// Gives up a migration whose learner was never promoted (the learner was removed).
    FailOp {
        op: u64,
        reason: String,
        now_ms: u64,
    },
    /// `node` lost its replicas' state (a corrupt disk, set aside): every group it is in
    /// drops it and starts a `Rebuild`. `token` names this loss, so a retry of the same
    /// command changes nothing and a second loss starts over.
    RebuildNode {
        node: u64,
        token: String,
        now_ms: u64,
    },
    /// A rebuild's node is out of the group's configuration: it may now be created empty
    /// (it is listed as a learner).
    RebuildLearner { op: u64, now_ms: u64 },
    /// A rebuild's node is a voter again: it takes its old place in the replica list.
    FinishRebuild { op: u64, now_ms: u64 },
}

/// The replicated metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaState {
    /// Bumped by every applied change; caches only take newer versions.
    pub version: u64,
    pub nodes: Vec<NodeMeta>,
    pub shards: Vec<ShardSpec>,
    /// Raft ids of the metadata group's voters.
    pub meta_replicas: Vec<u64>,
    /// Nodes being added to the metadata group (a migration of `META_GROUP`).
    #[serde(default)]
    pub meta_learners: Vec<u64>,
    pub operations: Vec<Operation>,
    pub next_op: u64,
    #[serde(default)]
    pub scheduler_paused: bool,
    /// Groups merged away (never reused): replicas left of them are dropped, data kept.
    #[serde(default)]
    pub tombstones: Vec<u64>,
    /// ACL users by name (`default` only once changed); see `server::acl`.
    #[serde(default)]
    pub users: BTreeMap<String, User>,
    /// The token of each node's last `RebuildNode`: a rebuilding node sees its own here
    /// once every group has dropped it.
    #[serde(default)]
    pub rebuilds: BTreeMap<u64, String>,
    /// The last `SetUser` request id per user and the version it created (retries).
    #[serde(default)]
    pub setuser_ids: BTreeMap<String, (u64, u64)>,
}

impl MetaState {
    /// The metadata of a new cluster (every member derives the same).
    pub fn initial(nodes: Vec<NodeMeta>, layout: &Layout, meta_replicas: Vec<u64>) -> MetaState {
        MetaState {
            version: 1,
            nodes,
            shards: layout.shards().to_vec(),
            meta_replicas,
            meta_learners: Vec::new(),
            operations: Vec::new(),
            next_op: 1,
            scheduler_paused: false,
            tombstones: Vec::new(),
            users: BTreeMap::new(),
            rebuilds: BTreeMap::new(),
            setuser_ids: BTreeMap::new(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(raw: &[u8]) -> Result<MetaState, String> {
        serde_json::from_slice(raw).map_err(|e| format!("corrupt metadata: {e}"))
    }

    pub fn layout(&self) -> Result<Layout, String> {
        Layout::new(self.shards.clone())
    }

    pub fn shard(&self, id: u64) -> Option<&ShardSpec> {
        self.shards.iter().find(|s| s.id == id)
    }

    /// A data shard, or the metadata group as a shard-like spec (its replicas and learners;
    /// it owns no slots), for what both share: migrations, repair, decommission.
    pub fn group(&self, id: u64) -> Option<ShardSpec> {
        if id != META_GROUP {
            return self.shard(id).cloned();
        }
        Some(ShardSpec {
            id: META_GROUP,
            first_slot: 0,
            last_slot: 0,
            epoch: 0,
            replicas: self.meta_replicas.clone(),
            learners: self.meta_learners.clone(),
            conf_ver: 0,
            bootstrap: Vec::new(),
        })
    }

    /// Every data shard, then the metadata group.
    pub fn groups(&self) -> impl Iterator<Item = ShardSpec> + '_ {
        self.shards.iter().cloned().chain(self.group(META_GROUP))
    }

    pub fn node(&self, id: u64) -> Option<&NodeMeta> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// Nodes not removed, as cluster members.
    pub fn members(&self) -> Vec<Member> {
        self.nodes
            .iter()
            .filter(|n| n.state != NodeState::Removed)
            .map(|n| Member {
                name: n.name.clone(),
                id: n.id,
                addr: n.addr.clone(),
            })
            .collect()
    }

    pub fn node_by_name(&self, name: &str) -> Option<&NodeMeta> {
        self.nodes.iter().find(|n| n.name == name)
    }

    pub fn name_of(&self, id: u64) -> String {
        self.node(id)
            .map_or_else(|| id.to_string(), |n| n.name.clone())
    }

    pub fn operation(&self, id: u64) -> Option<&Operation> {
        self.operations.iter().find(|o| o.id == id)
    }

    pub fn running(&self) -> impl Iterator<Item = &Operation> {
        self.operations
            .iter()
            .filter(|o| o.state == OpState::Running)
    }

    /// Applies a command: Ok with a short result (the operation id for a new one), or the
    /// reason it was refused (then nothing changed).
    pub fn apply(&mut self, cmd: &MetaCmd) -> Result<u64, String> {
        let r = match cmd {
            MetaCmd::BeginMigrate {
                shard,
                from,
                to,
                reason,
                now_ms,
            } => self.begin_migrate(*shard, *from, *to, reason, *now_ms),
            MetaCmd::Decommission { node, now_ms } => self.decommission(*node, *now_ms),
            MetaCmd::FinishDecommission { op, now_ms } => self.finish_decommission(*op, *now_ms),
            MetaCmd::AddNode { id, name, addr } => self.add_node(*id, name, addr),
            MetaCmd::BeginSplit {
                shard,
                at,
                new_id,
                reason,
                now_ms,
            } => self.begin_split(*shard, *at, *new_id, reason, *now_ms),
            MetaCmd::SetLeader {
                shard,
                node,
                reason,
                now_ms,
            } => self.set_leader(*shard, *node, reason, *now_ms),
            MetaCmd::FinishSplit { op, now_ms } => self.finish_split(*op, *now_ms),
            MetaCmd::BeginMerge {
                source,
                target,
                now_ms,
            } => self.begin_merge(*source, *target, *now_ms),
            MetaCmd::FinishMerge { op, epoch, now_ms } => self.finish_merge(*op, *epoch, *now_ms),
            MetaCmd::BeginCreate {
                id,
                first,
                last,
                nodes,
                now_ms,
            } => self.begin_create(*id, *first, *last, nodes, *now_ms),
            MetaCmd::FinishCreate { op, now_ms } => {
                let o = self.running_op(*op)?;
                if !matches!(o.kind, OpKind::Create { .. }) {
                    return Err(format!("operation {op} is not a create"));
                }
                self.finish_op(*op, *now_ms)
            }
            MetaCmd::SetSchedulerPaused { paused } => {
                self.scheduler_paused = *paused;
                Ok(u64::from(*paused))
            }
            MetaCmd::Step {
                op,
                step,
                message,
                now_ms,
                unless,
            } => {
                let o = self.running_op(*op)?;
                if unless.contains(&o.step) {
                    return Err(format!("operation {op} is {}", o.step));
                }
                o.step = step.clone();
                o.message = message.clone();
                o.updated_ms = *now_ms;
                Ok(*op)
            }
            MetaCmd::FinishMigrate { op, now_ms } => self.finish_migrate(*op, *now_ms),
            MetaCmd::AbortMerge {
                op,
                source_epoch,
                reason,
                now_ms,
            } => self.abort_merge(*op, *source_epoch, reason, *now_ms),
            MetaCmd::FailOp { op, reason, now_ms } => self.fail_op(*op, reason, *now_ms),
            MetaCmd::SetUser { name, rules, id } => self.set_user(name, rules, *id),
            MetaCmd::DelUser { names } => Ok(self.del_users(names)),
            MetaCmd::RebuildNode {
                node,
                token,
                now_ms,
            } => self.rebuild_node(*node, token, *now_ms),
            MetaCmd::RebuildLearner { op, now_ms } => self.rebuild_learner(*op, *now_ms),
            MetaCmd::FinishRebuild { op, now_ms } => self.finish_rebuild(*op, *now_ms),
        };
        if r.is_ok() {
            self.version += 1;
        }
        r
    }

    /// Returns the version this change creates, so the proposer can wait to see it applied.
    fn set_user(&mut self, name: &str, rules: &[String], id: u64) -> Result<u64, String> {
        if let Some(&(last, version)) = self.setuser_ids.get(name) {
            if id != 0 && last == id {
                return Ok(version);
            }
        }
        let mut user = match self.users.get(name) {
            Some(u) => u.clone(),
            None if name == DEFAULT_USER => User::builtin_default(),
            None => User {
                born: self.version + 1,
                ..User::default()
            },
        };
        user.apply_all(rules)?;
        self.users.insert(name.to_string(), user);
        if id != 0 {
            self.setuser_ids
                .insert(name.to_string(), (id, self.version + 1));
        }
        Ok(self.version + 1)
    }

    fn del_users(&mut self, names: &[String]) -> u64 {
        for n in names {
            self.setuser_ids.remove(n);
        }
        names
            .iter()
            .filter(|n| n.as_str() != DEFAULT_USER && self.users.remove(n.as_str()).is_some())
            .count() as u64
    }

    fn running_op(&mut self, id: u64) -> Result<&mut Operation, String> {
        self.operations
            .iter_mut()
            .find(|o| o.id == id && o.state == OpState::Running)
            .ok_or_else(|| format!("operation {id} is not running"))
    }

    /// Refuses when an operation is running on `shard` (named `name` in the error).
    fn check_free(&self, shard: u64, name: &str) -> Result<(), String> {
        match self.running().find(|o| o.touches(shard)) {
            Some(op) => Err(format!(
                "{name} is busy with operation {} ({})",
                op.id, op.step
            )),
            None => Ok(()),
        }
    }

    /// Records a new running operation; returns its id.
    fn start_op(&mut self, kind: OpKind, reason: &str, step: &str, now_ms: u64) -> u64 {
        let id = self.next_op;
        self.next_op += 1;
        self.operations.push(Operation {
            id,
            kind,
            state: OpState::Running,
            reason: reason.into(),
            step: step.into(),
            message: String::new(),
            started_ms: now_ms,
            updated_ms: now_ms,
        });
        self.trim_finished();
        id
    }

    /// Marks a running operation done (its progress message cleared).
    fn finish_op(&mut self, op: u64, now_ms: u64) -> Result<u64, String> {
        let o = self.running_op(op)?;
        o.state = OpState::Done;
        o.step = "done".into();
        o.message = String::new();
        o.updated_ms = now_ms;
        Ok(op)
    }

    fn shard_mut(&mut self, id: u64) -> Result<&mut ShardSpec, String> {
        self.shards
            .iter_mut()
            .find(|s| s.id == id)
            .ok_or_else(|| format!("no shard {id}"))
    }

    fn begin_migrate(
        &mut self,
        shard: u64,
        from: u64,
        to: u64,
        reason: &str,
        now_ms: u64,
    ) -> Result<u64, String> {
        let spec = self
            .group(shard)
            .ok_or_else(|| format!("unknown shard {}", shard.saturating_sub(1)))?;
        let name = spec.name();
        self.check_free(shard, &name)?;
        match self.node(to).map(|n| n.state) {
            None => return Err(format!("unknown node {to}")),
            Some(NodeState::Up) => {}
            Some(st) => {
                return Err(format!(
                    "{} is {} and takes no replicas",
                    self.name_of(to),
                    serde_json::to_value(st).map_or_else(|_| "?".into(), |v| v.to_string())
                ))
            }
        }
        if !spec.replicas.contains(&from) {
            return Err(format!("{} has no replica of {name}", self.name_of(from)));
        }
        if spec.has_replica(to) {
            return Err(format!(
                "{} already has a replica of {name}",
                self.name_of(to)
            ));
        }
        if shard == META_GROUP {
            self.meta_learners.push(to);
        } else {
            let spec = self.shard_mut(shard)?;
            spec.learners.push(to);
            spec.conf_ver += 1;
        }
        Ok(self.start_op(
            OpKind::Migrate { shard, from, to },
            if reason.is_empty() { "admin" } else { reason },
            "adding_learner",
            now_ms,
        ))
    }

    fn migration(&mut self, op: u64) -> Result<(u64, u64, u64), String> {
        match self.running_op(op)?.kind {
            OpKind::Migrate { shard, from, to } => Ok((shard, from, to)),
            _ => Err(format!("operation {op} is not a migration")),
        }
    }

    /// A group id no shard uses and none used: the next after the largest, or the lowest
    /// free one once ids reach 16384.
    pub fn next_shard_id(&self) -> u64 {
        let taken = |id: u64| self.shard(id).is_some() || self.tombstones.contains(&id);
        let used = self.shards.iter().map(|s| s.id);
        let next = used
            .chain(self.tombstones.iter().copied())
            .max()
            .unwrap_or(0)
            + 1;
        if next <= 16384 {
            return next;
        }
        (1..=16384).find(|id| !taken(*id)).unwrap_or(next)
    }

    fn begin_create(
        &mut self,
        id: u64,
        first: u16,
        last: u16,
        nodes: &[u64],
        now_ms: u64,
    ) -> Result<u64, String> {
        if id == 0 || id > 16384 || self.shard(id).is_some() || self.tombstones.contains(&id) {
            return Err(format!("shard_{} already exists", id.saturating_sub(1)));
        }
        if first > last || last >= 16384 {
            return Err(format!("bad slot range {first}..={last}"));
        }
        let owner = self.shard_of_slot(first).ok_or("no shard owns that slot")?;
        if last > owner.last_slot {
            return Err(format!(
                "slots {first}..={last} span more than one shard ({} ends at {}); merge first",
                owner.name(),
                owner.last_slot
            ));
        }
        if owner.first_slot == first {
            return Err(format!(
                "{} starts at slot {first}: a new shard takes slots after an existing shard's \
                 first one (split it or pick a later first slot)",
                owner.name()
            ));
        }
        let want = owner.replicas.len();
        if nodes.len() != want {
            return Err(format!(
                "a shard has {want} replicas here; give {want} nodes"
            ));
        }
        let mut seen = nodes.to_vec();
        seen.sort_unstable();
        seen.dedup();
        if seen.len() != nodes.len() {
            return Err("a node is named twice".into());
        }
        for n in nodes {
            match self.node(*n).map(|m| m.state) {
                Some(NodeState::Up) => {}
                Some(_) => return Err(format!("{} takes no replicas", self.name_of(*n))),
                None => return Err(format!("unknown node {n}")),
            }
        }
        if self.running().any(|o| {
            o.touches(owner.id) || matches!(&o.kind, OpKind::Create { shard: c, .. } if *c == id)
        }) {
            return Err(format!("{} is busy", owner.name()));
        }
        Ok(self.start_op(
            OpKind::Create {
                shard: id,
                first,
                last,
                nodes: nodes.to_vec(),
            },
            "admin",
            "splitting",
            now_ms,
        ))
    }

    pub fn shard_of_slot(&self, slot: u16) -> Option<&ShardSpec> {
        self.shards
            .iter()
            .find(|s| (s.first_slot..=s.last_slot).contains(&slot))
    }

    fn begin_merge(&mut self, source: u64, target: u64, now_ms: u64) -> Result<u64, String> {
        let unknown = |id: u64| format!("unknown shard {}", id.saturating_sub(1));
        let src = self.shard(source).ok_or_else(|| unknown(source))?.clone();
        let tgt = self.shard(target).ok_or_else(|| unknown(target))?.clone();
        if source == target {
            return Err("a shard cannot be merged into itself".into());
        }
        for s in [&src, &tgt] {
            self.check_free(s.id, &s.name())?;
        }
        let adjacent = u32::from(src.last_slot) + 1 == u32::from(tgt.first_slot)
            || u32::from(tgt.last_slot) + 1 == u32::from(src.first_slot);
        if !adjacent {
            return Err(format!(
                "{} and {} are not adjacent (slots {}..={} and {}..={})",
                src.name(),
                tgt.name(),
                src.first_slot,
                src.last_slot,
                tgt.first_slot,
                tgt.last_slot
            ));
        }
        let mut a = src.replicas.clone();
        let mut b = tgt.replicas.clone();
        a.sort_unstable();
        b.sort_unstable();
        if a != b || !src.learners.is_empty() || !tgt.learners.is_empty() {
            return Err(format!(
                "{} and {} are not on the same nodes; co-locate their replicas first (migrate)",
                src.name(),
                tgt.name()
            ));
        }
        Ok(self.start_op(
            OpKind::Merge { source, target },
            "admin",
            "freezing",
            now_ms,
        ))
    }

    fn finish_merge(&mut self, op: u64, epoch: u64, now_ms: u64) -> Result<u64, String> {
        let OpKind::Merge { source, target } = self.running_op(op)?.kind else {
            return Err(format!("operation {op} is not a merge"));
        };
        let src = self
            .shard(source)
            .cloned()
            .ok_or_else(|| format!("no shard {source}"))?;
        let tgt = self.shard_mut(target)?;
        tgt.first_slot = tgt.first_slot.min(src.first_slot);
        tgt.last_slot = tgt.last_slot.max(src.last_slot);
        tgt.epoch = epoch;
        self.shards.retain(|s| s.id != source);
        self.tombstones.push(source);
        self.finish_op(op, now_ms)
    }

    fn abort_merge(
        &mut self,
        op: u64,
        source_epoch: u64,
        reason: &str,
        now_ms: u64,
    ) -> Result<u64, String> {
        let o = self.running_op(op)?;
        let OpKind::Merge { source, .. } = o.kind else {
            return Err(format!("operation {op} is not a merge"));
        };
        if o.step != "rolling_back" {
            return Err(format!("operation {op} is not rolling back"));
        }
        let src = self.shard_mut(source)?;
        src.epoch = src.epoch.max(source_epoch);
        let o = self.running_op(op)?;
        o.state = OpState::Failed;
        o.message = reason.to_string();
        o.updated_ms = now_ms;
        Ok(op)
    }

    fn begin_split(
        &mut self,
        shard: u64,
        at: u16,
        new_id: u64,
        reason: &str,
        now_ms: u64,
    ) -> Result<u64, String> {
        let spec = self
            .shard(shard)
            .ok_or_else(|| format!("unknown shard {}", shard.saturating_sub(1)))?;
        let name = spec.name();
        self.check_free(shard, &name)?;
        if spec.first_slot == spec.last_slot {
            return Err(format!("{name} owns one slot and cannot be split"));
        }
        if at <= spec.first_slot || at > spec.last_slot {
            return Err(format!(
                "split slot {at} is not inside {name}'s slots {}..={} (the new shard takes {at}..)",
                spec.first_slot + 1,
                spec.last_slot
            ));
        }
        if !spec.learners.is_empty() {
            return Err(format!("{name} is changing replicas"));
        }
        if new_id == 0
            || new_id > 16384
            || self.shard(new_id).is_some()
            || self.tombstones.contains(&new_id)
        {
            return Err(format!("shard_{} already exists", new_id.saturating_sub(1)));
        }
        if self
            .running()
            .any(|o| matches!(o.kind, OpKind::Split { new_id: n, .. } if n == new_id))
        {
            return Err(format!("shard_{} is being created", new_id - 1));
        }
        Ok(self.start_op(
            OpKind::Split { shard, at, new_id },
            if reason.is_empty() { "admin" } else { reason },
            "splitting",
            now_ms,
        ))
    }

    /// Moves `node` to the front of the shard's replicas (the preferred leader).
    fn set_leader(
        &mut self,
        shard: u64,
        node: u64,
        reason: &str,
        now_ms: u64,
    ) -> Result<u64, String> {
        let spec = self
            .shard(shard)
            .ok_or_else(|| format!("unknown shard {}", shard.saturating_sub(1)))?;
        let name = spec.name();
        if !spec.replicas.contains(&node) {
            return Err(format!(
                "{} is not a voting replica of {name}",
                self.name_of(node)
            ));
        }
        // A migration moves leadership off its `from`: a preference for it would fight that.
        self.check_free(shard, &name)?;
        let spec = self.shard_mut(shard)?;
        spec.replicas.retain(|r| *r != node);
        spec.replicas.insert(0, node);
        let op = self.start_op(
            OpKind::TransferLeader { shard, to: node },
            if reason.is_empty() { "admin" } else { reason },
            "done",
            now_ms,
        );
        self.finish_op(op, now_ms)
    }

    fn finish_split(&mut self, op: u64, now_ms: u64) -> Result<u64, String> {
        let OpKind::Split { shard, at, new_id } = self.running_op(op)?.kind else {
            return Err(format!("operation {op} is not a split"));
        };
        let parent = self.shard_mut(shard)?;
        let child = ShardSpec {
            id: new_id,
            first_slot: at,
            last_slot: parent.last_slot,
            epoch: parent.epoch + 1,
            replicas: parent.replicas.clone(),
            learners: Vec::new(),
            conf_ver: parent.conf_ver,
            bootstrap: parent.replicas.clone(),
        };
        parent.last_slot = at - 1;
        parent.epoch += 1;
        self.shards.push(child);
        self.shards.sort_by_key(|s| s.first_slot);
        self.finish_op(op, now_ms)
    }

    fn add_node(&mut self, id: u64, name: &str, addr: &str) -> Result<u64, String> {
        if name.is_empty() || addr.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!(
                "a node needs a name and a host:port, got {name:?} {addr:?}"
            ));
        }
        if let Some(n) = self.nodes.iter().find(|n| n.name == name || n.id == id) {
            if n.name == name && n.id == id && n.addr == addr && n.state == NodeState::Up {
                return Ok(id);
            }
            return Err(format!(
                "node name {name:?} is taken (by {} at {}, {:?}); node ids are never reused",
                n.name, n.addr, n.state
            ));
        }
        if let Some(n) = self
            .nodes
            .iter()
            .find(|n| n.addr == addr && n.state != NodeState::Removed)
        {
            return Err(format!("address {addr} belongs to {}", n.name));
        }
        self.nodes.push(NodeMeta {
            id,
            name: name.to_string(),
            addr: addr.to_string(),
            state: NodeState::Up,
        });
        Ok(id)
    }

    fn decommission(&mut self, node: u64, now_ms: u64) -> Result<u64, String> {
        let n = self
            .node(node)
            .ok_or_else(|| format!("unknown node {node}"))?;
        let name = n.name.clone();
        if n.state != NodeState::Up {
            return Err(format!("{name} is already being decommissioned or removed"));
        }
        let others = self
            .nodes
            .iter()
            .filter(|m| m.id != node && m.state == NodeState::Up)
            .count();
        let needed = self.groups().map(|s| s.replicas.len()).max().unwrap_or(0);
        if others < needed {
            return Err(format!(
                "{name} cannot go: the other {others} node(s) cannot hold {needed} replicas of a shard"
            ));
        }
        if let Some(n) = self.nodes.iter_mut().find(|m| m.id == node) {
            n.state = NodeState::Decommissioning;
        }
        Ok(self.start_op(
            OpKind::Decommission { node },
            "admin",
            "moving_replicas",
            now_ms,
        ))
    }

    fn finish_decommission(&mut self, op: u64, now_ms: u64) -> Result<u64, String> {
        let OpKind::Decommission { node } = self.running_op(op)?.kind else {
            return Err(format!("operation {op} is not a decommission"));
        };
        if self.groups().any(|s| s.has_replica(node)) {
            return Err(format!("{} still holds replicas", self.name_of(node)));
        }
        if let Some(n) = self.nodes.iter_mut().find(|m| m.id == node) {
            n.state = NodeState::Removed;
        }
        self.finish_op(op, now_ms)
    }

    fn finish_migrate(&mut self, op: u64, now_ms: u64) -> Result<u64, String> {
        let (shard, from, to) = self.migration(op)?;
        let (replicas, learners) = self.lists_mut(shard)?;
        match replicas.iter().position(|r| *r == from) {
            // The new replica takes the old one's place, so preferred leaders stay spread.
            Some(i) => replicas[i] = to,
            None => replicas.push(to),
        }
        learners.retain(|l| *l != to);
        self.finish_op(op, now_ms)
    }

    /// The replica and learner lists of a data shard (its `conf_ver` bumped: they are about
    /// to change) or of the metadata group.
    fn lists_mut(&mut self, group: u64) -> Result<(&mut Vec<u64>, &mut Vec<u64>), String> {
        if group == META_GROUP {
            return Ok((&mut self.meta_replicas, &mut self.meta_learners));
        }
        let spec = self.shard_mut(group)?;
        spec.conf_ver += 1;
        Ok((&mut spec.replicas, &mut spec.learners))
    }

    /// Drops `node` from every group it is in and starts (or restarts) a rebuild of each.
    /// Refused, changing nothing, while another operation works on one of those groups or
    /// when a group has no other replica to rebuild from. Returns how many groups it took.
    fn rebuild_node(&mut self, node: u64, token: &str, now_ms: u64) -> Result<u64, String> {
        match self.node(node).map(|n| n.state) {
            None => return Err(format!("unknown node {node}")),
            Some(NodeState::Removed) => return Err(format!("{} was removed", self.name_of(node))),
            Some(_) => {}
        }
        if token.is_empty() {
            return Err("a rebuild needs a token".into());
        }
        if self.rebuilds.get(&node).map(String::as_str) == Some(token) {
            return Ok(0);
        }
        let groups: Vec<ShardSpec> = self.groups().filter(|g| g.has_replica(node)).collect();
        for g in &groups {
            let other = self.running().find(|o| {
                o.touches(g.id) && !matches!(o.kind, OpKind::Rebuild { node: n, .. } if n == node)
            });
            if let Some(op) = other {
                return Err(format!(
                    "{} is busy with operation {} ({}); the rebuild of {} waits",
                    g.name(),
                    op.id,
                    op.step,
                    self.name_of(node)
                ));
            }
            if !g.replicas.iter().any(|r| *r != node) {
                return Err(format!(
                    "{} has no replica but {}'s to rebuild it from",
                    g.name(),
                    self.name_of(node)
                ));
            }
        }
        for g in &groups {
            let (replicas, learners) = self.lists_mut(g.id)?;
            let at = replicas.iter().position(|r| *r == node);
            replicas.retain(|r| *r != node);
            learners.retain(|l| *l != node);
            // A rebuild of this replica cut short by another loss starts over (its place
            // is kept).
            let running = self.operations.iter_mut().find(|o| {
                o.state == OpState::Running
                    && matches!(o.kind, OpKind::Rebuild { shard, node: n, .. } if shard == g.id && n == node)
            });
            match running {
                Some(o) => {
                    o.step = "removing".into();
                    o.message = "the replica was lost again".into();
                    o.updated_ms = now_ms;
                }
                None => {
                    let at = at.unwrap_or(usize::MAX);
                    self.start_op(
                        OpKind::Rebuild {
                            shard: g.id,
                            node,
                            at,
                        },
                        "corruption",
                        "removing",
                        now_ms,
                    );
                }
            }
        }
        self.rebuilds.insert(node, token.to_string());
        Ok(groups.len() as u64)
    }

    fn rebuilding(&mut self, op: u64) -> Result<(u64, u64, usize), String> {
        match self.running_op(op)?.kind {
            OpKind::Rebuild { shard, node, at } => Ok((shard, node, at)),
            _ => Err(format!("operation {op} is not a rebuild")),
        }
    }

    fn rebuild_learner(&mut self, op: u64, now_ms: u64) -> Result<u64, String> {
        let (shard, node, _) = self.rebuilding(op)?;
        if self.running_op(op)?.step != "removing" {
            return Err(format!("operation {op} already added its learner"));
        }
        if self
            .group(shard)
            .is_some_and(|g| g.replicas.contains(&node))
        {
            return Err(format!("operation {op}: the node is a voter"));
        }
        let (_, learners) = self.lists_mut(shard)?;
        if !learners.contains(&node) {
            learners.push(node);
        }
        let o = self.running_op(op)?;
        o.step = "adding_learner".into();
        o.message = String::new();
        o.updated_ms = now_ms;
        Ok(op)
    }

    fn finish_rebuild(&mut self, op: u64, now_ms: u64) -> Result<u64, String> {
        let (shard, node, at) = self.rebuilding(op)?;
        if self.running_op(op)?.step == "removing" {
            return Err(format!("operation {op} has not added its learner"));
        }
        let (replicas, learners) = self.lists_mut(shard)?;
        learners.retain(|l| *l != node);
        if !replicas.contains(&node) {
            let at = at.min(replicas.len());
            replicas.insert(at, node);
        }
        self.finish_op(op, now_ms)
    }

    fn fail_op(&mut self, op: u64, reason: &str, now_ms: u64) -> Result<u64, String> {
        let (shard, _, to) = self.migration(op)?;
        let (replicas, learners) = self.lists_mut(shard)?;
        if replicas.contains(&to) {
            return Err(format!("operation {op} already promoted its replica"));
        }
        learners.retain(|l| *l != to);
        let o = self.running_op(op)?;
        o.state = OpState::Failed;
        o.message = reason.to_string();
        o.updated_ms = now_ms;
        Ok(op)
    }

    fn trim_finished(&mut self) {
        let finished = self
            .operations
            .iter()
            .filter(|o| o.state != OpState::Running)
            .count();
        let mut drop = finished.saturating_sub(KEEP_FINISHED);
        self.operations.retain(|o| {
            if drop > 0 && o.state != OpState::Running {
                drop -= 1;
                return false;
            }
            true
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> MetaState {
        let nodes = (1..=4)
            .map(|i| NodeMeta {
                id: i,
                name: format!("node{i}"),
                addr: format!("127.0.0.1:500{i}"),
                state: NodeState::Up,
            })
            .collect();
        let layout = Layout::initial(&[1, 2, 3], 2).expect("layout");
        MetaState::initial(nodes, &layout, vec![1, 2, 3])
    }

    #[test]
    fn users_are_set_deleted_and_decode_from_old_states() {
        let mut s = state();
        let v = s.version;
        let set = |name: &str, rules: &[&str]| MetaCmd::SetUser {
            name: name.into(),
            rules: rules.iter().map(|r| r.to_string()).collect(),
            id: 0,
        };
        assert_eq!(s.apply(&set("alice", &["on", "~k*", "+get"])), Ok(v + 1));
        assert_eq!(s.version, v + 1);
        assert!(s.users["alice"].enabled);
        // All or nothing, and a refusal changes no version.
        assert!(s.apply(&set("alice", &["off", "bogus"])).is_err());
        assert!(s.users["alice"].enabled);
        assert_eq!(s.version, v + 1);
        // `default` starts from the built-in one.
        // Deleted and created again, a user is another user.
        let born = s.users["alice"].born;
        assert_eq!(born, v + 1);
        s.apply(&MetaCmd::DelUser {
            names: vec!["alice".into()],
        })
        .expect("delete");
        s.apply(&set("alice", &["on", "~k*", "+get"]))
            .expect("again");
        assert!(s.users["alice"].born > born);
        s.apply(&set("alice", &["+set"])).expect("change");
        assert!(s.users["alice"].born > born);
        assert_eq!(s.users["alice"].born, s.version - 1);
        s.apply(&set("default", &["-flushall"])).expect("default");
        assert_eq!(s.users["default"].born, 0);
        assert!(s.users["default"].nopass && s.users["default"].all_keys);
        let del = MetaCmd::DelUser {
            names: vec!["alice".into(), "default".into(), "nosuch".into()],
        };
        assert_eq!(s.apply(&del), Ok(1));
        assert!(!s.users.contains_key("alice") && s.users.contains_key("default"));
        // A request proposed twice (a retry after an uncertain outcome) applies once.
        let once = MetaCmd::SetUser {
            name: "erin".into(),
            rules: vec!["on".into(), format!("#{}", "a".repeat(64))],
            id: 42,
        };
        let v1 = s.apply(&once).expect("first");
        let remove = MetaCmd::SetUser {
            name: "erin".into(),
            rules: vec![format!("!{}", "a".repeat(64))],
            id: 43,
        };
        let v2 = s.apply(&remove).expect("remove the password");
        assert_eq!(s.apply(&remove), Ok(v2), "the retry is not applied again");
        assert!(s.users["erin"].passwords.is_empty());
        let again = MetaCmd::SetUser {
            name: "erin".into(),
            rules: vec![format!("!{}", "a".repeat(64))],
            id: 44,
        };
        assert!(
            s.apply(&again).is_err(),
            "a new request is applied (and refused)"
        );
        assert!(v2 > v1);
        // Round trip, and states written before users existed still decode.
        assert_eq!(MetaState::decode(&s.encode()), Ok(s.clone()));
        let mut old: serde_json::Value = serde_json::from_slice(&s.encode()).expect("json");
        old.as_object_mut().expect("object").remove("users");
        let old = MetaState::decode(&serde_json::to_vec(&old).expect("json")).expect("old");
        assert!(old.users.is_empty());
    }

    fn begin(s: &mut MetaState, shard: u64, from: u64, to: u64) -> Result<u64, String> {
        s.apply(&MetaCmd::BeginMigrate {
            shard,
            from,
            to,
            reason: String::new(),
            now_ms: 5,
        })
    }

    #[test]
    fn migrate_adds_a_learner_then_swaps_the_replica_in_place() {
        let mut s = state();
        let v = s.version;
        let op = begin(&mut s, 1, 1, 4).expect("begin");
        assert_eq!(s.version, v + 1);
        let spec = s.shard(1).expect("shard").clone();
        assert_eq!(spec.learners, vec![4]);
        assert_eq!(spec.conf_ver, 2);
        assert!(spec.has_replica(4));
        s.apply(&MetaCmd::FinishMigrate { op, now_ms: 9 })
            .expect("finish");
        let spec = s.shard(1).expect("shard");
        assert_eq!(spec.replicas, vec![4, 2, 3]);
        assert!(spec.learners.is_empty());
        assert_eq!(spec.conf_ver, 3);
        assert_eq!(
            spec.epoch, 1,
            "moving a replica does not change the slot version"
        );
        assert_eq!(s.operation(op).map(|o| o.state), Some(OpState::Done));
        // Finished operations can't be finished again.
        assert!(s.apply(&MetaCmd::FinishMigrate { op, now_ms: 9 }).is_err());
    }

    fn rebuild(s: &mut MetaState, node: u64, token: &str) -> Result<u64, String> {
        s.apply(&MetaCmd::RebuildNode {
            node,
            token: token.into(),
            now_ms: 7,
        })
    }

    fn rebuild_ops(s: &MetaState, node: u64) -> Vec<(u64, u64, String)> {
        s.running()
            .filter_map(|o| match o.kind {
                OpKind::Rebuild { shard, node: n, .. } if n == node => {
                    Some((o.id, shard, o.step.clone()))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_lost_node_leaves_every_group_then_comes_back_in_its_place() {
        let mut s = state();
        // Node 2 is in both shards and the metadata group.
        assert_eq!(rebuild(&mut s, 2, "t1"), Ok(3));
        assert_eq!(s.rebuilds[&2], "t1");
        for g in s.groups() {
            assert!(!g.has_replica(2), "{} still lists node 2", g.name());
        }
        let ops = rebuild_ops(&s, 2);
        assert_eq!(ops.len(), 3);
        assert!(ops.iter().all(|o| o.2 == "removing"));
        // The same loss again (a retried command) changes nothing.
        let before = s.clone();
        assert_eq!(rebuild(&mut s, 2, "t1"), Ok(0));
        assert_eq!(s.version, before.version + 1);
        assert_eq!(s.operations, before.operations);
        // Other operations wait for the rebuild of those shards.
        assert!(begin(&mut s, 1, 1, 4).expect_err("busy").contains("busy"));
        // Out of the group: listed as a learner, to be created empty.
        for (op, shard, _) in &ops {
            assert!(s
                .apply(&MetaCmd::FinishRebuild { op: *op, now_ms: 8 })
                .is_err());
            s.apply(&MetaCmd::RebuildLearner { op: *op, now_ms: 8 })
                .expect("learner");
            assert!(s
                .apply(&MetaCmd::RebuildLearner { op: *op, now_ms: 8 })
                .is_err());
            assert_eq!(s.group(*shard).expect("group").learners, vec![2]);
        }
        // Lost again before it was promoted: out of the lists again, the same operations
        // start over.
        assert_eq!(rebuild(&mut s, 2, "t2"), Ok(3));
        assert_eq!(
            rebuild_ops(&s, 2).iter().map(|o| o.0).collect::<Vec<_>>(),
            ops.iter().map(|o| o.0).collect::<Vec<_>>()
        );
        assert!(rebuild_ops(&s, 2).iter().all(|o| o.2 == "removing"));
        for (op, _, _) in &ops {
            s.apply(&MetaCmd::RebuildLearner { op: *op, now_ms: 9 })
                .expect("learner");
            s.apply(&MetaCmd::FinishRebuild { op: *op, now_ms: 9 })
                .expect("finish");
        }
        let fresh = state();
        for (a, b) in s.groups().zip(fresh.groups()) {
            assert_eq!(a.replicas, b.replicas, "{} is back in its place", a.name());
            assert!(a.learners.is_empty());
        }
        assert!(rebuild_ops(&s, 2).is_empty());
        assert_eq!(MetaState::decode(&s.encode()), Ok(s.clone()));
    }

    #[test]
    fn a_rebuild_waits_for_busy_shards_and_needs_another_replica() {
        let mut s = state();
        // A node in no group: registered, nothing to do.
        assert_eq!(rebuild(&mut s, 4, "u"), Ok(0));
        assert_eq!(s.rebuilds[&4], "u");
        let op = begin(&mut s, 1, 1, 4).expect("migrate");
        let before = s.clone();
        let e = rebuild(&mut s, 3, "t").expect_err("busy");
        assert!(e.contains("busy") && e.contains("waits"), "{e}");
        assert_eq!(s, before, "a refusal changes nothing");
        assert!(rebuild(&mut s, 9, "t").is_err());
        assert!(rebuild(&mut s, 3, "").is_err());
        s.apply(&MetaCmd::FinishMigrate { op, now_ms: 9 })
            .expect("finish");
        assert_eq!(rebuild(&mut s, 3, "t"), Ok(3));
        // A group whose only replica was lost can't be rebuilt.
        let nodes = vec![NodeMeta {
            id: 1,
            name: "node1".into(),
            addr: "127.0.0.1:5001".into(),
            state: NodeState::Up,
        }];
        let layout = Layout::initial(&[1], 1).expect("layout");
        let mut one = MetaState::initial(nodes, &layout, vec![1]);
        let e = rebuild(&mut one, 1, "t").expect_err("no other replica");
        assert!(e.contains("no replica but"), "{e}");
    }

    #[test]
    fn bad_migrations_are_refused_and_change_nothing() {
        let mut s = state();
        let before = s.clone();
        assert!(begin(&mut s, 9, 1, 4)
            .unwrap_err()
            .contains("unknown shard"));
        assert!(begin(&mut s, 1, 1, 7).unwrap_err().contains("unknown node"));
        assert!(begin(&mut s, 1, 4, 1)
            .unwrap_err()
            .contains("has no replica"));
        assert!(begin(&mut s, 1, 1, 2).unwrap_err().contains("already has"));
        assert_eq!(s, before);
        let op = begin(&mut s, 1, 1, 4).expect("begin");
        let after_begin = s.clone();
        assert!(begin(&mut s, 1, 2, 4).unwrap_err().contains("busy"));
        assert_eq!(s, after_begin);
        // Another shard is not blocked.
        begin(&mut s, 2, 2, 4).expect("other shard");
        s.apply(&MetaCmd::FailOp {
            op,
            reason: "target down".into(),
            now_ms: 7,
        })
        .expect("fail");
        assert!(s.shard(1).is_some_and(|sh| sh.learners.is_empty()));
        assert_eq!(s.operation(op).map(|o| o.state), Some(OpState::Failed));
    }

    #[test]
    fn decommission_drains_then_removes() {
        let mut s = state();
        // Unknown nodes are refused.
        assert!(s
            .apply(&MetaCmd::Decommission { node: 9, now_ms: 1 })
            .is_err());
        let op = s
            .apply(&MetaCmd::Decommission { node: 4, now_ms: 1 })
            .expect("decommission");
        // A draining node takes no new replicas, and can't be drained twice.
        assert!(begin(&mut s, 1, 1, 4)
            .unwrap_err()
            .contains("takes no replicas"));
        assert!(s
            .apply(&MetaCmd::Decommission { node: 4, now_ms: 1 })
            .is_err());
        s.apply(&MetaCmd::FinishDecommission { op, now_ms: 2 })
            .expect("nothing to move");
        assert_eq!(s.node(4).map(|n| n.state), Some(NodeState::Removed));
    }

    #[test]
    fn the_metadata_group_migrates_like_a_shard() {
        let mut s = state();
        s.meta_replicas = vec![1, 2, 3];
        let op = begin(&mut s, META_GROUP, 1, 4).expect("begin");
        assert_eq!(s.meta_learners, vec![4]);
        assert!(begin(&mut s, META_GROUP, 2, 4)
            .unwrap_err()
            .contains("busy"));
        let mut failed = s.clone();
        failed
            .apply(&MetaCmd::FailOp {
                op,
                reason: "slow".into(),
                now_ms: 2,
            })
            .expect("give up");
        assert!(failed.meta_learners.is_empty());
        assert_eq!(failed.meta_replicas, vec![1, 2, 3]);
        s.apply(&MetaCmd::FinishMigrate { op, now_ms: 2 })
            .expect("finish");
        assert_eq!(s.meta_replicas, vec![4, 2, 3]);
        assert!(s.meta_learners.is_empty());
        // A metadata replica's node can be decommissioned (its replica moves first).
        let op = s
            .apply(&MetaCmd::Decommission { node: 2, now_ms: 3 })
            .expect("decommission");
        assert!(s
            .apply(&MetaCmd::FinishDecommission { op, now_ms: 4 })
            .unwrap_err()
            .contains("still holds"));
    }

    #[test]
    fn a_node_with_replicas_is_not_removed() {
        let mut s = state();
        s.meta_replicas = vec![1];
        let op = s
            .apply(&MetaCmd::Decommission { node: 3, now_ms: 1 })
            .expect("decommission");
        assert!(s
            .apply(&MetaCmd::FinishDecommission { op, now_ms: 2 })
            .unwrap_err()
            .contains("still holds"));
        // Too few nodes left for three replicas.
        assert!(s
            .apply(&MetaCmd::Decommission { node: 2, now_ms: 1 })
            .unwrap_err()
            .contains("cannot go"));
    }

    #[test]
    fn nodes_join_once_by_name_and_address() {
        let mut s = state();
        let add = |s: &mut MetaState, id: u64, name: &str, addr: &str| {
            s.apply(&MetaCmd::AddNode {
                id,
                name: name.into(),
                addr: addr.into(),
            })
        };
        let v = s.version;
        assert_eq!(add(&mut s, 5, "node5", "127.0.0.1:5005"), Ok(5));
        assert_eq!(s.version, v + 1);
        // The same join again (a retry) is fine and changes nothing visible.
        assert_eq!(add(&mut s, 5, "node5", "127.0.0.1:5005"), Ok(5));
        assert_eq!(s.nodes.len(), 5);
        assert!(add(&mut s, 6, "node5", "127.0.0.1:5006").is_err());
        assert!(add(&mut s, 6, "node6", "127.0.0.1:5005").is_err());
        assert!(add(&mut s, 6, "node6", "nowhere").is_err());
        assert!(add(&mut s, 6, "", "127.0.0.1:5006").is_err());
        assert_eq!(s.nodes.len(), 5);
    }

    #[test]
    fn split_takes_the_upper_slots_into_a_new_shard() {
        let mut s = state();
        let split = |s: &mut MetaState, shard: u64, at: u16, new_id: u64| {
            s.apply(&MetaCmd::BeginSplit {
                shard,
                at,
                new_id,
                reason: String::new(),
                now_ms: 1,
            })
        };
        let (first, last) = s
            .shard(1)
            .map(|p| (p.first_slot, p.last_slot))
            .expect("shard");
        let before = s.clone();
        assert!(split(&mut s, 1, first, 3)
            .unwrap_err()
            .contains("not inside"));
        assert!(split(&mut s, 1, last + 1, 3)
            .unwrap_err()
            .contains("not inside"));
        assert!(split(&mut s, 1, 100, 2)
            .unwrap_err()
            .contains("already exists"));
        assert!(split(&mut s, 9, 100, 3)
            .unwrap_err()
            .contains("unknown shard"));
        assert_eq!(s, before);
        let op = split(&mut s, 1, 100, 3).expect("split");
        assert!(split(&mut s, 1, 200, 4).unwrap_err().contains("busy"));
        s.apply(&MetaCmd::FinishSplit { op, now_ms: 2 })
            .expect("finish");
        let parent = s.shard(1).expect("parent").clone();
        let child = s.shard(3).expect("child").clone();
        assert_eq!((parent.first_slot, parent.last_slot), (first, 99));
        assert_eq!((child.first_slot, child.last_slot), (100, last));
        assert_eq!(parent.epoch, 2);
        assert_eq!(child.epoch, 2);
        assert_eq!(child.replicas, parent.replicas);
        assert!(s.layout().is_ok(), "slots still covered exactly once");
        assert_eq!(s.next_shard_id(), 4);
    }

    /// `state()` with shard 1 split at slot 100: shard 1 = 0..99, shard 3 = 100..8191.
    fn split_state() -> MetaState {
        let mut s = state();
        let op = s
            .apply(&MetaCmd::BeginSplit {
                shard: 1,
                at: 100,
                new_id: 3,
                reason: String::new(),
                now_ms: 1,
            })
            .expect("split");
        s.apply(&MetaCmd::FinishSplit { op, now_ms: 2 })
            .expect("finish split");
        s
    }

    #[test]
    fn a_merge_commits_or_rolls_back_never_both() {
        let mut s = split_state();
        let op = s
            .apply(&MetaCmd::BeginMerge {
                source: 3,
                target: 1,
                now_ms: 3,
            })
            .expect("merge");
        let step = |step: &str, unless: &str| MetaCmd::Step {
            op,
            step: step.into(),
            message: "n3 is down".into(),
            now_ms: 4,
            unless: vec![unless.into()],
        };
        let abort = MetaCmd::AbortMerge {
            op,
            source_epoch: 4,
            reason: "rolled back".into(),
            now_ms: 5,
        };
        // Not rolling back yet: no abort.
        assert!(s.apply(&abort).is_err());
        let mut committing = s.clone();
        committing
            .apply(&step("committing", "rolling_back"))
            .expect("commit wins");
        assert!(committing
            .apply(&step("rolling_back", "committing"))
            .is_err());
        s.apply(&step("rolling_back", "committing"))
            .expect("rollback wins");
        assert!(s.apply(&step("committing", "rolling_back")).is_err());
        let epoch_before = s.shard(3).map(|x| x.epoch);
        s.apply(&abort).expect("abort");
        assert_eq!(s.shard(3).map(|x| x.epoch), Some(4));
        assert_ne!(epoch_before, Some(4));
        let o = s.operation(op).expect("op");
        assert_eq!(o.state, OpState::Failed);
        assert_eq!(o.message, "rolled back");
        // Both shards are free again.
        assert!(s
            .apply(&MetaCmd::BeginMerge {
                source: 3,
                target: 1,
                now_ms: 6,
            })
            .is_ok());
    }

    #[test]
    fn merge_joins_adjacent_co_located_shards() {
        let mut s = split_state();
        let merge = |s: &mut MetaState, source: u64, target: u64| {
            s.apply(&MetaCmd::BeginMerge {
                source,
                target,
                now_ms: 3,
            })
        };
        let before = s.clone();
        // shard 1 = 0..99, shard 3 = 100..8191, shard 2 = 8192..
        assert!(merge(&mut s, 1, 2).unwrap_err().contains("not adjacent"));
        assert!(merge(&mut s, 1, 1).unwrap_err().contains("itself"));
        assert!(merge(&mut s, 1, 9).unwrap_err().contains("unknown"));
        assert_eq!(s, before);
        let op = merge(&mut s, 3, 1).expect("merge");
        assert!(merge(&mut s, 3, 2).unwrap_err().contains("busy"));
        assert!(s
            .apply(&MetaCmd::BeginSplit {
                shard: 1,
                at: 50,
                new_id: 4,
                reason: String::new(),
                now_ms: 4,
            })
            .unwrap_err()
            .contains("busy"));
        s.apply(&MetaCmd::FinishMerge {
            op,
            epoch: 4,
            now_ms: 5,
        })
        .expect("finish merge");
        let t = s.shard(1).expect("target");
        assert_eq!((t.first_slot, t.last_slot, t.epoch), (0, 8191, 4));
        assert!(s.shard(3).is_none());
        assert_eq!(s.tombstones, vec![3]);
        assert_eq!(s.next_shard_id(), 4, "a merged-away id is never reused");
        assert!(s.layout().is_ok());
    }

    #[test]
    fn shards_on_other_nodes_are_not_merged() {
        let mut s = state();
        // Move shard 2's replica from node 2 to node 4: shards 1 and 2 are then apart.
        let op = begin(&mut s, 2, 2, 4).expect("migrate");
        s.apply(&MetaCmd::FinishMigrate { op, now_ms: 1 })
            .expect("finish");
        let err = s
            .apply(&MetaCmd::BeginMerge {
                source: 2,
                target: 1,
                now_ms: 2,
            })
            .unwrap_err();
        assert!(err.contains("co-locate"), "{err}");
    }

    #[test]
    fn a_one_slot_shard_cannot_split() {
        let nodes = vec![NodeMeta {
            id: 1,
            name: "n1".into(),
            addr: "127.0.0.1:1".into(),
            state: NodeState::Up,
        }];
        let layout = Layout::initial(&[1], 16384).expect("layout");
        let mut s = MetaState::initial(nodes, &layout, vec![1]);
        let err = s
            .apply(&MetaCmd::BeginSplit {
                shard: 1,
                at: 1,
                new_id: 20000,
                reason: String::new(),
                now_ms: 1,
            })
            .unwrap_err();
        assert!(err.contains("one slot"), "{err}");
    }

    #[test]
    fn encoding_round_trips() {
        let mut s = state();
        begin(&mut s, 1, 1, 4).expect("begin");
        // Every kind of operation survives encoding (kinds are flattened into operations,
        // so a field named like one of the operation's own would break decoding).
        s.apply(&MetaCmd::Decommission { node: 4, now_ms: 1 })
            .expect("decommission");
        s.apply(&MetaCmd::BeginSplit {
            shard: 2,
            at: 9000,
            new_id: 7,
            reason: String::new(),
            now_ms: 1,
        })
        .expect("split");
        let mut t = state();
        t.apply(&MetaCmd::BeginCreate {
            id: 9,
            first: 10,
            last: 20,
            nodes: vec![1, 2, 3],
            now_ms: 1,
        })
        .expect("create");
        let op = t
            .apply(&MetaCmd::BeginSplit {
                shard: 2,
                at: 9000,
                new_id: 7,
                reason: String::new(),
                now_ms: 1,
            })
            .expect("split");
        t.apply(&MetaCmd::FinishSplit { op, now_ms: 2 })
            .expect("finish");
        t.apply(&MetaCmd::BeginMerge {
            source: 7,
            target: 2,
            now_ms: 3,
        })
        .expect("merge");
        for st in [&s, &t] {
            assert_eq!(&MetaState::decode(&st.encode()).expect("decode"), st);
        }
        let back = MetaState::decode(&s.encode()).expect("decode");
        assert_eq!(back, s);
        assert!(MetaState::decode(b"{").is_err());
    }
}
