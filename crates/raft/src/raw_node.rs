//! [`RawNode`]: the caller-facing driver API and the [`Ready`] / `advance` contract.

use std::mem;

use bytes::Bytes;
use prost::Message as _;

use crate::config::Config;
use crate::eraftpb::{
    ConfChangeV2, ConfState, Entry, EntryType, HardState, Message, MessageType, Snapshot,
};
use crate::errors::{Error, Result};
use crate::raft::{check_remote, Raft, SoftState, StateRole};
use crate::read_only::ReadState;
use crate::status::Status;
use crate::storage::Storage;
use crate::util::new_message;

/// Everything the caller must handle after driving the node. See the crate docs for the
/// exact handling order.
#[derive(Debug, Default, Clone)]
pub struct Ready {
    /// Changed soft state (leader / role), if any. Informational.
    pub soft_state: Option<SoftState>,
    /// Changed hard state to persist (atomically with `entries`), if any.
    pub hard_state: Option<HardState>,
    /// Reads that may be served once the state machine applied `index`.
    pub read_states: Vec<ReadState>,
    /// Entries to append to stable storage (truncating any conflicting suffix).
    pub entries: Vec<Entry>,
    /// Snapshot to persist and apply to the state machine, if any.
    pub snapshot: Option<Snapshot>,
    /// Committed entries to apply to the state machine (already durable locally).
    pub committed_entries: Vec<Entry>,
    /// Messages that may be sent right away, before the local write completes (e.g. the
    /// leader's appends: the leader writes its log in parallel with the followers).
    pub messages: Vec<Message>,
    /// Messages that may only be sent after `entries`, `hard_state` and `snapshot` of this
    /// Ready are durable (votes, append acknowledgements).
    pub persisted_messages: Vec<Message>,
    /// Whether the write must be synced (fsync) before `persisted_messages` are sent.
    pub must_sync: bool,
}

impl Ready {
    /// Whether there is anything to persist.
    pub fn needs_persist(&self) -> bool {
        self.hard_state.is_some() || !self.entries.is_empty() || self.snapshot.is_some()
    }

    /// Takes all messages (immediate ones first). Only valid after persisting.
    pub fn take_all_messages(&mut self) -> Vec<Message> {
        let mut m = mem::take(&mut self.messages);
        m.append(&mut self.persisted_messages);
        m
    }
}

/// What remains to do after [`RawNode::advance`]: newly committed entries and messages.
#[derive(Debug, Default, Clone)]
pub struct LightReady {
    /// New commit index, if it advanced (bounded by the durable log). Persisting it in
    /// the hard state is optional but avoids re-applying entries after a restart.
    pub commit_index: Option<u64>,
    /// Committed entries to apply.
    pub committed_entries: Vec<Entry>,
    /// Messages to send (immediately).
    pub messages: Vec<Message>,
}

/// The driver of one raft group member. Single-threaded, no I/O: see the crate docs.
pub struct RawNode<T: Storage> {
    /// The state machine (exposed for tests and advanced use).
    pub raft: Raft<T>,
    prev_ss: SoftState,
    prev_hs: HardState,
    max_committed_size_per_ready: u64,
    // (index, term) of the last entry handed out in a Ready not yet advanced.
    pending_entries: Option<(u64, u64)>,
    pending_snapshot: Option<u64>,
}

impl<T: Storage> RawNode<T> {
    /// Creates a node from a config and its storage (restarting from persisted state).
    pub fn new(config: &Config, store: T) -> Result<Self> {
        let raft = Raft::new(config, store)?;
        let prev_ss = raft.soft_state();
        let prev_hs = raft.hard_state();
        Ok(RawNode {
            raft,
            prev_ss,
            prev_hs,
            max_committed_size_per_ready: config.max_committed_size_per_ready,
            pending_entries: None,
            pending_snapshot: None,
        })
    }

    /// Advances the logical clock. Returns false if the tick was ignored (quiescent).
    pub fn tick(&mut self) -> bool {
        self.raft.tick()
    }

    /// Campaigns to become leader (no-op on leaders, learners and removed nodes).
    pub fn campaign(&mut self) -> Result<()> {
        self.raft.step(new_message(0, MessageType::MsgHup, 0))
    }

    /// Proposes `data` (with opaque `context`) to be appended. Only the leader accepts
    /// proposals; others return [`Error::NotLeader`] with a leader hint so the caller can
    /// forward or redirect. A leader may drop a proposal ([`Error::ProposalDropped`]) during
    /// a leadership transfer or when the uncommitted log is full. Acceptance does not mean
    /// commit: the entry may still be lost on a leader change.
    pub fn propose(&mut self, context: impl Into<Bytes>, data: impl Into<Bytes>) -> Result<()> {
        let mut m = new_message(0, MessageType::MsgPropose, 0);
        m.entries.push(Entry {
            data: data.into(),
            context: context.into(),
            ..Default::default()
        });
        self.raft.step(m)
    }

    /// Proposes several entries (`(context, data)` each) at once: one append and one
    /// message per follower carry them all, where proposing them one by one would send a
    /// message per entry. All or none are accepted, with the errors of [`RawNode::propose`].
    pub fn propose_batch(&mut self, entries: Vec<(Bytes, Bytes)>) -> Result<()> {
        let mut m = new_message(0, MessageType::MsgPropose, 0);
        m.entries = entries
            .into_iter()
            .map(|(context, data)| Entry {
                data,
                context,
                ..Default::default()
            })
            .collect();
        self.raft.step(m)
    }

    /// Proposes a membership change. Once the entry is committed and the caller applies it,
    /// the caller must call [`RawNode::apply_conf_change`].
    pub fn propose_conf_change(
        &mut self,
        context: impl Into<Bytes>,
        cc: ConfChangeV2,
    ) -> Result<()> {
        let mut e = Entry {
            data: cc.encode_to_vec().into(),
            context: context.into(),
            ..Default::default()
        };
        e.set_entry_type(EntryType::EntryConfChangeV2);
        let mut m = new_message(0, MessageType::MsgPropose, 0);
        m.entries.push(e);
        self.raft.step(m)
    }

    /// Applies a committed membership change; returns the new configuration, which the
    /// caller persists (with the applied index).
    pub fn apply_conf_change(&mut self, cc: &ConfChangeV2) -> Result<ConfState> {
        self.raft.apply_conf_change(cc)
    }

    /// Steps a message received from a peer. Local-only message types are rejected;
    /// malformed or stale messages are ignored.
    pub fn step(&mut self, m: Message) -> Result<()> {
        check_remote(&m)?;
        if m.msg_type() == MessageType::MsgPropose {
            return Err(Error::StepLocalMsg);
        }
        // Peer messages carry a term and a sender; only reads forwarded by followers are
        // term-less. Anything else is malformed and ignored.
        if m.from == 0
            || m.term == u64::MAX
            || (m.term == 0 && m.msg_type() != MessageType::MsgReadIndex)
        {
            return Ok(());
        }
        let from = m.from;
        if m.term != 0
            && !self.raft.prs.progress.contains_key(&from)
            && !crate::util::is_response_msg(m.msg_type())
            && self.raft.state == StateRole::Leader
            && m.msg_type() != MessageType::MsgRequestVote
            && m.msg_type() != MessageType::MsgRequestPreVote
            && m.msg_type() != MessageType::MsgTransferLeader
        {
            // A leader ignores requests from non-members (except elections).
            return Ok(());
        }
        self.raft.step(m)
    }

    /// Requests a linearizable read. `ctx` must be unique per request; it is returned in a
    /// [`ReadState`] whose `index` the state machine must have applied before the read is
    /// served. On followers the request is forwarded to the leader.
    pub fn read_index(&mut self, ctx: impl Into<Bytes>) -> Result<()> {
        let mut m = new_message(0, MessageType::MsgReadIndex, 0);
        m.entries.push(Entry {
            data: ctx.into(),
            ..Default::default()
        });
        self.raft.step(m)
    }

    /// Asks the leader to transfer leadership to `transferee`. The transfer completes when
    /// the transferee (once caught up) receives MsgTimeoutNow and wins the election; it is
    /// aborted after an election timeout. Proposals are dropped while it is in progress.
    pub fn transfer_leader(&mut self, transferee: u64) {
        let mut m = new_message(0, MessageType::MsgTransferLeader, transferee);
        m.from = transferee;
        let _ = self.raft.step(m);
    }

    /// Reports that a message to `id` could not be delivered.
    pub fn report_unreachable(&mut self, id: u64) {
        let _ = self
            .raft
            .step(new_message(0, MessageType::MsgUnreachable, id));
    }

    /// Reports the outcome of sending a snapshot to `id` (true = installed / sent).
    pub fn report_snapshot(&mut self, id: u64, ok: bool) {
        let mut m = new_message(0, MessageType::MsgSnapStatus, id);
        m.reject = !ok;
        let _ = self.raft.step(m);
    }

    /// Whether the leader may enter quiescence (see the crate docs).
    pub fn can_hibernate(&self) -> bool {
        self.raft.can_hibernate()
    }

    /// Enters quiescence if possible; the resulting Ready carries the final heartbeat.
    pub fn hibernate(&mut self) -> bool {
        self.raft.hibernate()
    }

    /// Whether the node is quiescent (the caller may stop ticking it).
    pub fn is_hibernating(&self) -> bool {
        self.raft.hibernating
    }

    /// Leaves quiescence (e.g. on a proposal, a read, or when the transport suspects the
    /// leader failed). Incoming messages wake a node automatically.
    pub fn wake(&mut self) {
        self.raft.wake()
    }

    /// The entries proposed so far have waiters on other nodes (proposals a follower
    /// forwarded): with `skip_bcast_commit`, their commit is still broadcast at once.
    pub fn expedite_commit(&mut self) {
        self.raft.expedite_commit()
    }

    /// Whether there is anything to handle.
    pub fn has_ready(&self) -> bool {
        let r = &self.raft;
        r.soft_state() != self.prev_ss
            || r.hard_state() != self.prev_hs
            || !r.msgs.is_empty()
            || !r.msgs_after_append.is_empty()
            || !r.read_states.is_empty()
            || r.raft_log.unstable.snapshot.is_some()
            || !r.raft_log.unstable.entries.is_empty()
            || r.raft_log.has_next_entries()
    }

    fn max_committed(&self) -> Option<u64> {
        match self.max_committed_size_per_ready {
            u64::MAX => None,
            n => Some(n),
        }
    }

    fn take_committed(&mut self) -> Vec<Entry> {
        let ents = self
            .raft
            .raft_log
            .next_entries(self.max_committed())
            .unwrap_or_default();
        if let Some(last) = ents.last() {
            self.raft.raft_log.applying = last.index;
        }
        self.raft.reduce_uncommitted_size(&ents);
        ents
    }

    /// Returns the pending work. Must be followed by [`RawNode::advance`] (or
    /// `advance_append`) before the next call.
    pub fn ready(&mut self) -> Ready {
        let mut rd = Ready::default();
        let ss = self.raft.soft_state();
        if ss != self.prev_ss {
            rd.soft_state = Some(ss);
            self.prev_ss = ss;
        }
        let hs = self.raft.hard_state();
        if hs != self.prev_hs {
            rd.must_sync = hs.term != self.prev_hs.term || hs.vote != self.prev_hs.vote;
            rd.hard_state = Some(hs);
        }
        if let Some(s) = &self.raft.raft_log.unstable.snapshot {
            rd.snapshot = Some(s.clone());
            self.pending_snapshot = s.metadata.as_ref().map(|m| m.index);
            rd.must_sync = true;
        }
        rd.entries = self.raft.raft_log.unstable.entries.clone();
        if let Some(e) = rd.entries.last() {
            self.pending_entries = Some((e.index, e.term));
            rd.must_sync = true;
        }
        rd.committed_entries = self.take_committed();
        rd.read_states = mem::take(&mut self.raft.read_states);
        rd.messages = mem::take(&mut self.raft.msgs);
        rd.persisted_messages = mem::take(&mut self.raft.msgs_after_append);
        rd
    }

    /// Acknowledges that the Ready's entries, hard state and snapshot are durable (and the
    /// snapshot applied), without marking its committed entries applied.
    pub fn advance_append(&mut self, rd: &Ready) {
        if let Some(hs) = &rd.hard_state {
            self.prev_hs = *hs;
        }
        if let Some(idx) = self.pending_snapshot.take() {
            self.raft.on_persist_snap(idx);
        }
        if let Some((idx, term)) = self.pending_entries.take() {
            self.raft.on_persist_entries(idx, term);
        }
    }

    /// Acknowledges a handled Ready: its state is durable and its committed entries are
    /// applied. Returns what became ready meanwhile (commit advanced by the local write,
    /// newly applicable entries, messages); apply those and call
    /// [`RawNode::advance_apply`].
    pub fn advance(&mut self, rd: Ready) -> LightReady {
        self.advance_append(&rd);
        if let Some(e) = rd.committed_entries.last() {
            self.raft.commit_apply(e.index);
        }
        let mut lrd = LightReady::default();
        // Only report a commit index covered by durable entries, so that persisting it
        // can never leave a hard state whose commit is beyond the stored log.
        let commit = std::cmp::min(self.raft.raft_log.committed, self.raft.raft_log.persisted);
        if commit > self.prev_hs.commit {
            lrd.commit_index = Some(commit);
            self.prev_hs.commit = commit;
        }
        lrd.committed_entries = self.take_committed();
        lrd.messages = mem::take(&mut self.raft.msgs);
        lrd
    }

    /// Marks everything handed out so far as applied.
    pub fn advance_apply(&mut self) {
        let applying = self.raft.raft_log.applying;
        self.raft.commit_apply(applying);
    }

    /// Marks entries up to `applied` as applied.
    pub fn advance_apply_to(&mut self, applied: u64) {
        self.raft.commit_apply(applied);
    }

    /// A snapshot of the node's status.
    pub fn status(&self) -> Status {
        Status::new(&self.raft)
    }

    /// Current term.
    pub fn term(&self) -> u64 {
        self.raft.term
    }

    /// Known leader id (0 = none).
    pub fn leader_id(&self) -> u64 {
        self.raft.leader_id
    }

    /// Current role.
    pub fn role(&self) -> StateRole {
        self.raft.state
    }

    /// Commit index.
    pub fn commit_index(&self) -> u64 {
        self.raft.raft_log.committed
    }

    /// Applied index.
    pub fn applied_index(&self) -> u64 {
        self.raft.raft_log.applied
    }

    /// The storage.
    pub fn store(&self) -> &T {
        &self.raft.raft_log.store
    }

    /// The storage (mutable).
    pub fn mut_store(&mut self) -> &mut T {
        &mut self.raft.raft_log.store
    }
}
