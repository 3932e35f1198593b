//! The core Raft state machine: roles, elections, replication, reads, membership.
//!
//! `Raft` is pure: it consumes messages and ticks and produces outgoing messages in
//! `msgs` (safe to send at once) and `msgs_after_append` (only after the current unstable
//! entries and hard state are durable). It never performs I/O.
//!
//! Invariants (checked by the scenario and simulation tests):
//! * Election safety: at most one leader per term (a node votes at most once per term,
//!   and the vote is persisted before the vote response is sent).
//! * The leader never overwrites or deletes entries in its log; it only appends.
//! * Log matching: an append is accepted only if the entry before it matches
//!   (`index`, `log_term`).
//! * A leader only commits entries of its own term by counting replicas (§5.4.2); earlier
//!   entries are committed indirectly.
//! * Committed entries are never truncated (asserted in `RaftLog::maybe_append`).

use std::cmp;

use bytes::Bytes;
use prost::Message as _;

use crate::confchange::{self, Changer};
use crate::config::{Config, ReadOnlyOption};
use crate::eraftpb::{
    ConfChangeV2, ConfState, Entry, EntryType, HardState, Message, MessageType, Snapshot,
};
use crate::errors::{Error, Result, StorageError};
use crate::progress::tracker::ProgressTracker;
use crate::progress::ProgressState;
use crate::quorum::VoteResult;
use crate::raft_log::RaftLog;
use crate::read_only::{ReadOnly, ReadState};
use crate::storage::Storage;
use crate::util::{is_local_msg, new_message, payload_size, vote_resp_msg_type, SplitMix64};

/// Context marking a vote request as part of a leadership transfer: it bypasses the
/// check-quorum lease of voters.
pub const CAMPAIGN_TRANSFER: &[u8] = b"CampaignTransfer";

/// The role of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StateRole {
    /// Follower.
    #[default]
    Follower,
    /// Candidate.
    Candidate,
    /// Leader.
    Leader,
    /// PreVote candidate.
    PreCandidate,
}

/// Volatile state that the application may want to observe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SoftState {
    /// Known leader (0 = none).
    pub leader_id: u64,
    /// Role.
    pub raft_state: StateRole,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CampaignType {
    PreElection,
    Election,
    Transfer,
}

/// The Raft state machine.
pub struct Raft<T: Storage> {
    /// This node's id.
    pub id: u64,
    /// Current term.
    pub term: u64,
    /// Candidate voted for in the current term (0 = none).
    pub vote: u64,
    /// The log.
    pub raft_log: RaftLog<T>,
    /// Configuration and progress.
    pub prs: ProgressTracker,
    /// Role.
    pub state: StateRole,
    /// Whether this node is a learner (cannot vote or campaign).
    pub is_learner: bool,
    /// Messages that may be sent immediately.
    pub msgs: Vec<Message>,
    /// Messages that may only be sent once the unstable log and hard state are durable.
    pub msgs_after_append: Vec<Message>,
    /// Known leader (0 = none).
    pub leader_id: u64,
    /// Target of an ongoing leadership transfer.
    pub lead_transferee: Option<u64>,
    /// Index of the latest conf change entry appended by this leader; no new conf change
    /// is accepted until it is applied.
    pub pending_conf_index: u64,
    /// Pending ReadIndex requests.
    pub read_only: ReadOnly,
    /// Reads ready to be served once applied reaches their index.
    pub read_states: Vec<ReadState>,
    /// Reads received before this leader committed an entry of its term.
    pending_read_index_msgs: Vec<Message>,
    /// Total payload of uncommitted entries (leader flow control).
    pub uncommitted_size: u64,
    /// Quiescent: ticks are ignored until woken.
    pub hibernating: bool,

    election_elapsed: usize,
    heartbeat_elapsed: usize,
    /// Highest heartbeat stamp seen from the current leader (orders hibernate flags).
    leader_stamp: u64,
    /// A restarted node honours leases for this many ticks (it may have acked a
    /// heartbeat before crashing).
    restart_lease_guard: u64,
    /// Monotonic tick counter (lease reads).
    ticks: u64,
    lease_disabled: bool,
    randomized_election_timeout: usize,
    rng: SplitMix64,

    /// Configuration values.
    pub check_quorum: bool,
    /// PreVote enabled.
    pub pre_vote: bool,
    heartbeat_timeout: usize,
    election_timeout: usize,
    min_election_timeout: usize,
    max_election_timeout: usize,
    max_msg_size: u64,
    max_uncommitted_size: u64,
    read_only_option: ReadOnlyOption,
    lease_ticks: u64,
    skip_bcast_commit: bool,
    /// A commit advanced by an acknowledgement that no append has carried to every
    /// follower yet (only with `skip_bcast_commit`; see [`Raft::announce_commit`]).
    commit_unannounced: bool,
    /// Last index of proposals forwarded by followers: their commit is broadcast at once,
    /// since the forwarder answers its client only once it learns it.
    eager_commit_to: u64,
    /// Election priority (carried in vote requests).
    pub priority: u64,
}

fn hard_state_empty(hs: &HardState) -> bool {
    *hs == HardState::default()
}

fn valid_entries(m: &Message) -> bool {
    let mut prev_term = m.log_term;
    for (i, e) in m.entries.iter().enumerate() {
        let want = m.index.checked_add(1 + i as u64);
        if want != Some(e.index) || e.term < prev_term || e.term > m.term {
            return false;
        }
        prev_term = e.term;
    }
    true
}

impl<T: Storage> Raft<T> {
    /// Creates a node from config and storage (restoring persisted state).
    pub fn new(c: &Config, store: T) -> Result<Self> {
        c.validate()?;
        let rs = store.initial_state()?;
        let raft_log = RaftLog::new(store);
        let last = raft_log.last_index();
        let prs = confchange::restore(&rs.conf_state, last, c.max_inflight_msgs);
        let seed = if c.seed == 0 {
            c.id.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        } else {
            c.seed
        };
        let mut r = Raft {
            id: c.id,
            term: 0,
            vote: 0,
            raft_log,
            prs,
            state: StateRole::Follower,
            is_learner: false,
            msgs: Vec::new(),
            msgs_after_append: Vec::new(),
            leader_id: 0,
            lead_transferee: None,
            pending_conf_index: 0,
            read_only: ReadOnly::default(),
            read_states: Vec::new(),
            pending_read_index_msgs: Vec::new(),
            uncommitted_size: 0,
            hibernating: false,
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            leader_stamp: 0,
            restart_lease_guard: 0,
            ticks: 0,
            lease_disabled: false,
            randomized_election_timeout: 0,
            rng: SplitMix64::new(seed),
            check_quorum: c.check_quorum,
            pre_vote: c.pre_vote,
            heartbeat_timeout: c.heartbeat_tick,
            election_timeout: c.election_tick,
            min_election_timeout: c.min_election_tick(),
            max_election_timeout: c.max_election_tick(),
            max_msg_size: c.max_size_per_msg,
            max_uncommitted_size: c.max_uncommitted_size,
            read_only_option: c.read_only_option,
            lease_ticks: (c.election_tick - c.lease_drift_ticks) as u64,
            skip_bcast_commit: c.skip_bcast_commit,
            commit_unannounced: false,
            eager_commit_to: 0,
            priority: c.priority,
        };
        r.is_learner = r.prs.conf.learners.contains(&r.id);
        if !hard_state_empty(&rs.hard_state) {
            r.load_state(&rs.hard_state)?;
            // With lease reads, a restarted node may have acknowledged the current
            // leader's heartbeat just before it crashed: honour that lease for one election
            // timeout before granting (pre-)votes. (Delays only elections right after a
            // restart; campaigns from leadership transfer are not affected.)
            if r.term > 0 && c.read_only_option == ReadOnlyOption::LeaseBased {
                r.restart_lease_guard = c.election_tick as u64;
            }
        }
        if c.applied > 0 {
            if c.applied > r.raft_log.committed {
                return Err(Error::ConfigInvalid(format!(
                    "applied index {} is beyond the commit index {}",
                    c.applied, r.raft_log.committed
                )));
            }
            if c.applied >= r.raft_log.applied {
                r.commit_apply(c.applied);
            }
        }
        let term = r.term;
        r.become_follower(term, 0);
        Ok(r)
    }

    fn load_state(&mut self, hs: &HardState) -> Result<()> {
        if hs.commit > self.raft_log.last_index() {
            return Err(Error::Storage(StorageError::Other(format!(
                "hard state commit {} is beyond the last index {}",
                hs.commit,
                self.raft_log.last_index()
            ))));
        }
        // A snapshot newer than the persisted commit index implies its commit.
        self.raft_log.committed = cmp::max(hs.commit, self.raft_log.committed);
        self.term = hs.term;
        self.vote = hs.vote;
        Ok(())
    }

    /// Current soft state.
    pub fn soft_state(&self) -> SoftState {
        SoftState {
            leader_id: self.leader_id,
            raft_state: self.state,
        }
    }

    /// Current hard state.
    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.raft_log.committed,
        }
    }

    /// Randomized election timeout currently in effect.
    pub fn randomized_election_timeout(&self) -> usize {
        self.randomized_election_timeout
    }

    /// Election timeout (base).
    pub fn election_timeout(&self) -> usize {
        self.election_timeout
    }

    /// Heartbeat timeout.
    pub fn heartbeat_timeout(&self) -> usize {
        self.heartbeat_timeout
    }

    /// Ticks since the last election reset.
    pub fn election_elapsed(&self) -> usize {
        self.election_elapsed
    }

    /// Whether this node may campaign: it is a voter and has no pending snapshot.
    pub fn promotable(&self) -> bool {
        self.prs.is_voter(self.id) && self.raft_log.unstable.snapshot.is_none()
    }

    fn send(&mut self, mut m: Message) {
        if m.from == 0 {
            m.from = self.id;
        }
        let t = m.msg_type();
        if matches!(
            t,
            MessageType::MsgRequestVote
                | MessageType::MsgRequestVoteResponse
                | MessageType::MsgRequestPreVote
                | MessageType::MsgRequestPreVoteResponse
        ) {
            assert!(m.term != 0, "[raft] term should be set when sending {t:?}");
        } else if t != MessageType::MsgPropose && t != MessageType::MsgReadIndex {
            // Proposals and reads forwarded to the leader carry no term (they are
            // "local" to the leader); everything else carries ours.
            m.term = self.term;
        }
        // Messages that acknowledge local durable state wait for persistence.
        if matches!(
            t,
            MessageType::MsgAppendResponse
                | MessageType::MsgRequestVote
                | MessageType::MsgRequestVoteResponse
        ) {
            self.msgs_after_append.push(m);
        } else {
            self.msgs.push(m);
        }
    }

    // ---------------------------------------------------------------- replication

    /// Sends an append (or snapshot) to `to` if allowed by its progress. Returns whether a
    /// message was sent.
    fn maybe_send_append(&mut self, to: u64, send_if_empty: bool) -> bool {
        let pr = match self.prs.progress.get(&to) {
            Some(p) => p,
            None => return false,
        };
        if pr.is_paused() {
            return false;
        }
        let next = pr.next_idx;
        let prev_term = self.raft_log.term(next - 1);
        let ents = self.raft_log.entries(next, Some(self.max_msg_size));
        let (prev_term, ents) = match (prev_term, ents) {
            (Ok(t), Ok(e)) => (t, e),
            _ => return self.send_snapshot(to),
        };
        if ents.is_empty() && !send_if_empty {
            return false;
        }
        let mut m = new_message(to, MessageType::MsgAppend, self.id);
        m.index = next - 1;
        m.log_term = prev_term;
        m.commit = self.raft_log.committed;
        let last = ents.last().map(|e| e.index);
        m.entries = ents;
        self.prs.progress.get_mut(&to).unwrap().sent_append(last);
        self.send(m);
        true
    }

    fn send_snapshot(&mut self, to: u64) -> bool {
        let pr = &self.prs.progress[&to];
        if !pr.recent_active {
            return false;
        }
        let snap = match self.raft_log.snapshot(0, to) {
            Ok(s) => s,
            Err(Error::Storage(StorageError::SnapshotTemporarilyUnavailable)) => return false,
            Err(e) => panic!("[raft] {} failed to get snapshot for {to}: {e}", self.id),
        };
        let sidx = snap.metadata.as_ref().map(|m| m.index).unwrap_or(0);
        assert!(sidx != 0, "[raft] need non-empty snapshot");
        self.prs
            .progress
            .get_mut(&to)
            .unwrap()
            .become_snapshot(sidx);
        let mut m = new_message(to, MessageType::MsgSnapshot, self.id);
        m.snapshot = Some(snap);
        self.send(m);
        true
    }

    fn send_append(&mut self, to: u64) {
        self.maybe_send_append(to, true);
    }

    fn peer_ids(&self) -> Vec<u64> {
        self.prs
            .progress
            .keys()
            .copied()
            .filter(|id| *id != self.id)
            .collect()
    }

    /// Sends appends to every peer.
    pub fn bcast_append(&mut self) {
        for id in self.peer_ids() {
            self.send_append(id);
        }
        self.commit_unannounced = false;
    }

    /// After the commit index advanced from `old_commit`: broadcast it, or (with
    /// `skip_bcast_commit`) leave it to the next appends, the next tick at the latest.
    /// Entries a follower forwarded are announced at once: the follower answers its client
    /// when it learns their commit.
    fn commit_advanced(&mut self, old_commit: u64) {
        if !self.skip_bcast_commit || self.eager_commit_to > old_commit {
            self.bcast_append();
        } else {
            self.commit_unannounced = true;
        }
    }

    /// Entries proposed so far have waiters on other nodes (proposals forwarded by
    /// followers): their commit is broadcast as soon as it happens.
    pub fn expedite_commit(&mut self) {
        self.eager_commit_to = self.raft_log.last_index();
    }

    /// Sends a commit index no append has carried yet (see `skip_bcast_commit`).
    fn announce_commit(&mut self) {
        if std::mem::take(&mut self.commit_unannounced) && self.state == StateRole::Leader {
            self.bcast_append();
        }
    }

    fn bcast_heartbeat(&mut self, ctx: Option<Bytes>, hibernate: bool) {
        for id in self.peer_ids() {
            let pr = &self.prs.progress[&id];
            let mut m = new_message(id, MessageType::MsgHeartbeat, self.id);
            m.commit = cmp::min(pr.matched, self.raft_log.committed);
            m.index = self.ticks + 1;
            m.hibernate = hibernate;
            if let Some(c) = &ctx {
                m.context = c.clone();
            }
            self.send(m);
        }
    }

    /// Advances the commit index if a quorum replicated further. Returns whether it moved.
    pub fn maybe_commit(&mut self) -> bool {
        let mci = self.prs.maximal_committed_index();
        if self.raft_log.maybe_commit(mci, self.term) {
            self.release_pending_read_index();
            true
        } else {
            false
        }
    }

    fn committed_entry_in_current_term(&self) -> bool {
        self.raft_log.term_or_zero(self.raft_log.committed) == self.term
    }

    fn append_entries(&mut self, es: &mut [Entry]) -> bool {
        let size: u64 = es.iter().map(payload_size).sum();
        if self.uncommitted_size > 0
            && size > 0
            && self.uncommitted_size + size > self.max_uncommitted_size
        {
            return false;
        }
        self.uncommitted_size += size;
        let li = self.raft_log.last_index();
        for (i, e) in es.iter_mut().enumerate() {
            e.term = self.term;
            e.index = li + 1 + i as u64;
        }
        self.raft_log.append(es);
        true
    }

    /// Reduces the uncommitted size after entries were committed (called when they are
    /// handed out for apply).
    pub fn reduce_uncommitted_size(&mut self, ents: &[Entry]) {
        if self.state != StateRole::Leader {
            return;
        }
        let s: u64 = ents.iter().map(payload_size).sum();
        self.uncommitted_size = self.uncommitted_size.saturating_sub(s);
    }

    /// Called once entries up to (`index`, `term`) are durable.
    pub fn on_persist_entries(&mut self, index: u64, term: u64) {
        self.raft_log.stable_to(index, term);
        if self.state == StateRole::Leader {
            let persisted = self.raft_log.persisted;
            let id = self.id;
            if let Some(pr) = self.prs.progress.get_mut(&id) {
                let old_commit = self.raft_log.committed;
                if pr.maybe_update(persisted) && self.maybe_commit() {
                    self.commit_advanced(old_commit);
                }
            }
        }
    }

    /// Called once the unstable snapshot at `index` is durable and applied.
    pub fn on_persist_snap(&mut self, index: u64) {
        self.raft_log.stable_snap_to(index);
        if self.raft_log.applied < index && index <= self.raft_log.committed {
            self.raft_log.applied = index;
            self.raft_log.applying = cmp::max(self.raft_log.applying, index);
        }
    }

    /// Marks entries up to `applied` as applied. A leader in an auto-leave joint
    /// configuration proposes leaving it once the joint entry is applied.
    pub fn commit_apply(&mut self, applied: u64) {
        let old = self.raft_log.applied;
        self.raft_log.applied_to(applied);
        if self.prs.conf.auto_leave
            && old <= self.pending_conf_index
            && applied >= self.pending_conf_index
            && self.state == StateRole::Leader
        {
            let data = ConfChangeV2::leave_joint().encode_to_vec();
            let mut e = Entry {
                data: data.into(),
                ..Default::default()
            };
            e.set_entry_type(EntryType::EntryConfChangeV2);
            let mut es = [e];
            // Uncommitted size does not apply to empty data; always accepted.
            if self.append_entries(&mut es) {
                self.pending_conf_index = self.raft_log.last_index();
                self.bcast_append();
            }
        }
    }

    // ---------------------------------------------------------------- roles

    fn reset(&mut self, term: u64) {
        if self.term != term {
            self.term = term;
            self.vote = 0;
        }
        self.leader_id = 0;
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        self.leader_stamp = 0;
        self.reset_randomized_election_timeout();
        self.abort_leader_transfer();
        self.prs.reset_votes();
        self.pending_conf_index = 0;
        self.uncommitted_size = 0;
        self.read_only = ReadOnly::default();
        self.pending_read_index_msgs.clear();
        self.hibernating = false;
        self.commit_unannounced = false;
        self.eager_commit_to = 0;
        let last = self.raft_log.last_index();
        let persisted = self.raft_log.persisted;
        let id = self.id;
        for (pid, pr) in self.prs.progress.iter_mut() {
            pr.reset(last + 1);
            if *pid == id {
                pr.matched = persisted;
            }
        }
    }

    fn reset_randomized_election_timeout(&mut self) {
        self.randomized_election_timeout = self
            .rng
            .gen_range(self.min_election_timeout, self.max_election_timeout);
    }

    /// Becomes a follower of `leader_id` at `term`.
    pub fn become_follower(&mut self, term: u64, leader_id: u64) {
        self.reset(term);
        self.leader_id = leader_id;
        self.state = StateRole::Follower;
    }

    /// Becomes a candidate (increments the term, votes for itself).
    pub fn become_candidate(&mut self) {
        assert!(
            self.state != StateRole::Leader,
            "[raft] invalid transition [leader -> candidate]"
        );
        let term = self.term.saturating_add(1);
        self.reset(term);
        self.vote = self.id;
        self.state = StateRole::Candidate;
    }

    /// Becomes a pre-candidate (term and vote unchanged).
    pub fn become_pre_candidate(&mut self) {
        assert!(
            self.state != StateRole::Leader,
            "[raft] invalid transition [leader -> pre-candidate]"
        );
        self.prs.reset_votes();
        self.leader_id = 0;
        self.state = StateRole::PreCandidate;
        self.hibernating = false;
    }

    /// Becomes leader and appends an empty entry of the new term.
    pub fn become_leader(&mut self) {
        assert!(
            self.state != StateRole::Follower,
            "[raft] invalid transition [follower -> leader]"
        );
        let term = self.term;
        self.reset(term);
        self.leader_id = self.id;
        self.state = StateRole::Leader;
        self.lease_disabled = false;
        let id = self.id;
        if let Some(pr) = self.prs.progress.get_mut(&id) {
            pr.become_replicate();
            pr.recent_active = true;
        }
        // Conservatively assume the tail may hold an unapplied conf change.
        self.pending_conf_index = self.raft_log.last_index();
        let mut es = [Entry::default()];
        assert!(
            self.append_entries(&mut es),
            "[raft] empty entry was dropped"
        );
        // The noop does not count against the uncommitted size.
        self.uncommitted_size = 0;
    }

    fn has_unapplied_conf_change(&self) -> bool {
        let lo = self.raft_log.applied + 1;
        let hi = self.raft_log.committed + 1;
        if lo >= hi {
            return false;
        }
        match self.raft_log.slice(lo, hi, None) {
            Ok(es) => es
                .iter()
                .any(|e| e.entry_type() == EntryType::EntryConfChangeV2),
            Err(_) => false,
        }
    }

    fn hup(&mut self, transfer: bool) {
        if self.state == StateRole::Leader {
            return;
        }
        if !self.promotable() {
            return;
        }
        if self.has_unapplied_conf_change() {
            return;
        }
        if transfer {
            self.campaign(CampaignType::Transfer);
        } else if self.pre_vote {
            self.campaign(CampaignType::PreElection);
        } else {
            self.campaign(CampaignType::Election);
        }
    }

    fn campaign(&mut self, t: CampaignType) {
        let (vote_msg, term) = if t == CampaignType::PreElection {
            self.become_pre_candidate();
            (MessageType::MsgRequestPreVote, self.term.saturating_add(1))
        } else {
            self.become_candidate();
            (MessageType::MsgRequestVote, self.term)
        };
        let id = self.id;
        if self.poll(id, vote_resp_msg_type(vote_msg), true) == VoteResult::Won {
            if t == CampaignType::PreElection {
                self.campaign(CampaignType::Election);
            } else {
                self.become_leader();
                self.bcast_append();
            }
            return;
        }
        let voters: Vec<u64> = self
            .prs
            .conf
            .voters
            .ids()
            .into_iter()
            .filter(|v| *v != id)
            .collect();
        let (li, lt) = (self.raft_log.last_index(), self.raft_log.last_term());
        for v in voters {
            let mut m = new_message(v, vote_msg, id);
            m.term = term;
            m.index = li;
            m.log_term = lt;
            m.priority = self.priority;
            if t == CampaignType::Transfer {
                m.context = Bytes::from_static(CAMPAIGN_TRANSFER);
            }
            self.send(m);
        }
    }

    fn poll(&mut self, id: u64, _t: MessageType, granted: bool) -> VoteResult {
        self.prs.record_vote(id, granted);
        self.prs.tally_votes()
    }

    // ---------------------------------------------------------------- ticks

    /// Advances the logical clock by one tick. Returns false if ignored (hibernating).
    pub fn tick(&mut self) -> bool {
        if self.hibernating {
            return false;
        }
        self.ticks += 1;
        match self.state {
            StateRole::Leader => self.tick_heartbeat(),
            _ => self.tick_election(),
        }
        true
    }

    fn tick_election(&mut self) {
        self.election_elapsed += 1;
        if self.promotable() && self.election_elapsed >= self.randomized_election_timeout {
            self.election_elapsed = 0;
            self.hup(false);
        }
    }

    fn tick_heartbeat(&mut self) {
        self.heartbeat_elapsed += 1;
        self.election_elapsed += 1;
        if self.election_elapsed >= self.election_timeout {
            self.election_elapsed = 0;
            if self.check_quorum {
                self.check_quorum_active();
            }
            if self.state == StateRole::Leader && self.lead_transferee.is_some() {
                self.abort_leader_transfer();
            }
        }
        if self.state != StateRole::Leader {
            return;
        }
        if self.heartbeat_elapsed >= self.heartbeat_timeout {
            self.heartbeat_elapsed = 0;
            self.bcast_heartbeat(self.read_only.last_pending_request_ctx(), false);
        }
        // A commit the appends did not carry (nothing was proposed since): one tick late.
        self.announce_commit();
    }

    fn check_quorum_active(&mut self) {
        if !self.prs.quorum_recently_active(self.id) {
            let term = self.term;
            self.become_follower(term, 0);
            return;
        }
        let id = self.id;
        for (pid, pr) in self.prs.progress.iter_mut() {
            pr.recent_active = *pid == id;
        }
    }

    // ---------------------------------------------------------------- quiescence

    /// Whether this leader may enter quiescence: everything is replicated, committed and
    /// applied everywhere it can tell, and nothing is pending.
    pub fn can_hibernate(&self) -> bool {
        if self.state != StateRole::Leader || self.hibernating {
            return false;
        }
        let last = self.raft_log.last_index();
        self.raft_log.committed == last
            && self.committed_entry_in_current_term()
            && self.raft_log.applied == last
            && self.raft_log.persisted == last
            && self.raft_log.unstable_entries().is_empty()
            && !self.prs.conf.voters.is_joint()
            && self.lead_transferee.is_none()
            && self.read_only.pending_read_count() == 0
            && self.pending_read_index_msgs.is_empty()
            && self.pending_conf_index <= self.raft_log.applied
            && self.prs.progress.values().all(|p| p.matched == last)
    }

    /// Enters quiescence (leader only, see [`Raft::can_hibernate`]): sends a final heartbeat
    /// flagged `hibernate` and ignores ticks until woken. Returns whether it hibernated.
    pub fn hibernate(&mut self) -> bool {
        if !self.can_hibernate() {
            return false;
        }
        self.bcast_heartbeat(None, true);
        self.hibernating = true;
        true
    }

    /// Leaves quiescence. A leader resumes heartbeats (waking followers); its lease is
    /// invalidated because the time spent asleep is unknown. A follower resumes ticking.
    pub fn wake(&mut self) {
        if !self.hibernating {
            return;
        }
        self.hibernating = false;
        self.election_elapsed = 0;
        if self.state == StateRole::Leader {
            self.ticks += self.election_timeout as u64 + 1;
            for pr in self.prs.progress.values_mut() {
                pr.lease_stamp = 0;
                pr.recent_active = true;
            }
            self.heartbeat_elapsed = 0;
            self.bcast_heartbeat(None, false);
        }
    }

    // ---------------------------------------------------------------- step

    /// Processes a message. Malformed or stale messages from peers are ignored.
    pub fn step(&mut self, m: Message) -> Result<()> {
        let t = m.msg_type();
        // Any message other than the hibernate heartbeat (or the acks to it) wakes a
        // hibernating node.
        if self.hibernating
            && !(t == MessageType::MsgHeartbeat && m.hibernate)
            && t != MessageType::MsgHeartbeatResponse
        {
            self.wake();
        }
        if m.term == 0 {
            // local message (or forwarded proposal / read)
        } else if m.term > self.term {
            if t == MessageType::MsgRequestVote || t == MessageType::MsgRequestPreVote {
                let force = m.context.as_ref() == CAMPAIGN_TRANSFER;
                // A node that (re)started less than an election timeout ago may have
                // acknowledged a leader's heartbeat before it crashed, so it also honours
                // the lease (this keeps lease reads safe across restarts).
                let recently_started = self.ticks < self.restart_lease_guard;
                // A node woken from quiescence restarted its election timer when it woke,
                // so a single spuriously woken peer cannot depose a sleeping leader.
                let in_lease = self.check_quorum
                    && ((self.leader_id != 0 && self.election_elapsed < self.election_timeout)
                        || recently_started);
                if !force && in_lease {
                    // Heard from a leader recently: ignore (protects the lease).
                    return Ok(());
                }
            }
            if t == MessageType::MsgRequestPreVote
                || (t == MessageType::MsgRequestPreVoteResponse && !m.reject)
            {
                // PreVote does not change our term.
            } else if matches!(
                t,
                MessageType::MsgAppend | MessageType::MsgHeartbeat | MessageType::MsgSnapshot
            ) {
                self.become_follower(m.term, m.from);
            } else {
                self.become_follower(m.term, 0);
            }
        } else if m.term < self.term {
            if (self.check_quorum || self.pre_vote)
                && matches!(t, MessageType::MsgHeartbeat | MessageType::MsgAppend)
            {
                // A stale leader (e.g. after a partition) learns about the new term.
                let r = new_message(m.from, MessageType::MsgAppendResponse, self.id);
                self.send(r);
            } else if t == MessageType::MsgRequestPreVote {
                let mut r = new_message(m.from, MessageType::MsgRequestPreVoteResponse, self.id);
                r.term = self.term;
                r.reject = true;
                self.send(r);
            }
            return Ok(());
        }

        match t {
            MessageType::MsgHup => {
                self.hup(false);
                Ok(())
            }
            MessageType::MsgRequestVote | MessageType::MsgRequestPreVote => {
                self.handle_vote_request(m);
                Ok(())
            }
            _ => match self.state {
                StateRole::Leader => self.step_leader(m),
                StateRole::Candidate | StateRole::PreCandidate => self.step_candidate(m),
                StateRole::Follower => self.step_follower(m),
            },
        }
    }

    fn handle_vote_request(&mut self, m: Message) {
        let t = m.msg_type();
        let can_vote = self.vote == m.from
            || (self.vote == 0 && self.leader_id == 0)
            || (t == MessageType::MsgRequestPreVote && m.term > self.term);
        let mut r = new_message(m.from, vote_resp_msg_type(t), self.id);
        if can_vote && m.from != 0 && self.raft_log.is_up_to_date(m.index, m.log_term) {
            // Respond with the requested term (a pre-vote grant is for a future term).
            r.term = m.term;
            if t == MessageType::MsgRequestVote {
                self.election_elapsed = 0;
                self.vote = m.from;
            }
        } else {
            r.term = self.term;
            r.reject = true;
        }
        if r.term == 0 {
            return;
        }
        self.send(r);
    }

    fn step_leader(&mut self, mut m: Message) -> Result<()> {
        match m.msg_type() {
            MessageType::MsgBeat => {
                self.bcast_heartbeat(self.read_only.last_pending_request_ctx(), false);
                return Ok(());
            }
            MessageType::MsgCheckQuorum => {
                self.check_quorum_active();
                return Ok(());
            }
            MessageType::MsgPropose => {
                if m.entries.is_empty() {
                    return Err(Error::ProposalDropped);
                }
                if !self.prs.progress.contains_key(&self.id) || self.lead_transferee.is_some() {
                    return Err(Error::ProposalDropped);
                }
                for e in m.entries.iter_mut() {
                    if e.entry_type() != EntryType::EntryConfChangeV2 {
                        continue;
                    }
                    let cc = ConfChangeV2::decode(e.data.as_ref())
                        .map_err(|err| Error::Decode(err.to_string()))?;
                    let already_pending = self.pending_conf_index > self.raft_log.applied;
                    let already_joint = self.prs.conf.voters.is_joint();
                    let wants_leave = cc.changes.is_empty();
                    let refused = if already_pending {
                        Some("possible unapplied conf change")
                    } else if already_joint && !wants_leave {
                        Some("must transition out of joint config first")
                    } else if !already_joint && wants_leave {
                        Some("not in joint state; refusing empty conf change")
                    } else {
                        None
                    };
                    if let Some(reason) = refused {
                        return Err(Error::ConfChangeError(reason.to_string()));
                    }
                }
                let has_cc = m
                    .entries
                    .iter()
                    .any(|e| e.entry_type() == EntryType::EntryConfChangeV2);
                if !self.append_entries(&mut m.entries) {
                    return Err(Error::ProposalDropped);
                }
                if has_cc {
                    self.pending_conf_index = self.raft_log.last_index();
                }
                if m.from != self.id && m.from != 0 {
                    self.expedite_commit();
                }
                self.bcast_append();
                return Ok(());
            }
            MessageType::MsgReadIndex => {
                if m.entries.is_empty() {
                    return Ok(());
                }
                if !self.committed_entry_in_current_term() {
                    // A new leader serves no read until it committed an entry of its term.
                    self.pending_read_index_msgs.push(m);
                    return Ok(());
                }
                self.send_read_index(m);
                return Ok(());
            }
            _ => {}
        }

        let from = m.from;
        if !self.prs.progress.contains_key(&from) {
            return Ok(());
        }
        match m.msg_type() {
            MessageType::MsgAppendResponse => self.handle_append_response(&m),
            MessageType::MsgHeartbeatResponse => self.handle_heartbeat_response(&m),
            MessageType::MsgSnapStatus => {
                let pr = self.prs.progress.get_mut(&from).unwrap();
                if pr.state != ProgressState::Snapshot {
                    return Ok(());
                }
                if m.reject {
                    pr.pending_snapshot = 0;
                }
                pr.become_probe();
                // Wait for a heartbeat/append response before probing again.
                pr.probe_sent = true;
            }
            MessageType::MsgUnreachable => {
                let pr = self.prs.progress.get_mut(&from).unwrap();
                if pr.state == ProgressState::Replicate {
                    pr.become_probe();
                }
            }
            MessageType::MsgTransferLeader => {
                if self.prs.progress[&from].is_learner || !self.prs.is_voter(from) {
                    return Ok(());
                }
                let transferee = from;
                if let Some(last) = self.lead_transferee {
                    if last == transferee {
                        return Ok(());
                    }
                    self.abort_leader_transfer();
                }
                if transferee == self.id {
                    return Ok(());
                }
                self.election_elapsed = 0;
                self.lead_transferee = Some(transferee);
                if self.prs.progress[&transferee].matched == self.raft_log.last_index() {
                    self.send_timeout_now(transferee);
                } else {
                    self.send_append(transferee);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn handle_append_response(&mut self, m: &Message) {
        let old_commit = self.raft_log.committed;
        let from = m.from;
        let last_index = self.raft_log.last_index();
        {
            let pr = self.prs.progress.get_mut(&from).unwrap();
            pr.recent_active = true;
        }
        if m.reject {
            let mut next_probe = m.reject_hint;
            if m.log_term > 0 {
                next_probe = self
                    .raft_log
                    .find_conflict_by_term(m.reject_hint, m.log_term)
                    .0;
            }
            let pr = self.prs.progress.get_mut(&from).unwrap();
            if pr.maybe_decr_to(m.index, next_probe) {
                if pr.state == ProgressState::Replicate {
                    pr.become_probe();
                }
                self.send_append(from);
            }
            return;
        }
        if m.index > last_index {
            // Acknowledges entries we never had: malformed, ignore.
            return;
        }
        let pr = self.prs.progress.get_mut(&from).unwrap();
        let old_paused = pr.is_paused();
        if !pr.maybe_update(m.index) {
            return;
        }
        match pr.state {
            ProgressState::Probe => pr.become_replicate(),
            ProgressState::Snapshot if pr.matched + 1 >= self.raft_log.first_index() => {
                pr.become_probe();
                pr.become_replicate();
            }
            ProgressState::Snapshot => {}
            ProgressState::Replicate => pr.ins.free_to(m.index),
        }
        if self.maybe_commit() {
            self.commit_advanced(old_commit);
        } else if old_paused {
            self.send_append(from);
        }
        // Pipeline: keep sending while the window allows.
        while self.maybe_send_append(from, false) {}
        if self.lead_transferee == Some(from)
            && self.prs.progress[&from].matched == self.raft_log.last_index()
        {
            self.send_timeout_now(from);
        }
    }

    fn handle_heartbeat_response(&mut self, m: &Message) {
        let from = m.from;
        let last_index = self.raft_log.last_index();
        let now = self.ticks + 1;
        let pr = self.prs.progress.get_mut(&from).unwrap();
        pr.recent_active = true;
        pr.probe_sent = false;
        if m.index <= now && m.index > pr.lease_stamp {
            pr.lease_stamp = m.index;
        }
        if pr.state == ProgressState::Replicate && pr.ins.full() {
            pr.ins.free_first_one();
        }
        if pr.matched < last_index {
            self.send_append(from);
        }
        if self.read_only_option != ReadOnlyOption::Safe && self.read_only.pending_read_count() == 0
        {
            return;
        }
        if m.context.is_empty() {
            return;
        }
        let acked = match self.read_only.recv_ack(from, &m.context) {
            Some(acks) => acks.clone(),
            None => return,
        };
        let votes = acked.into_iter().map(|id| (id, true)).collect();
        if self.prs.conf.voters.vote_result(&votes) != VoteResult::Won {
            return;
        }
        for rs in self.read_only.advance(&m.context) {
            self.respond_read(rs.req, rs.index);
        }
    }

    fn respond_read(&mut self, req: Message, index: u64) {
        let ctx = req
            .entries
            .first()
            .map(|e| e.data.clone())
            .unwrap_or_default();
        if req.from == 0 || req.from == self.id {
            self.read_states.push(ReadState {
                index,
                request_ctx: ctx,
            });
        } else {
            let mut r = new_message(req.from, MessageType::MsgReadIndexResp, self.id);
            r.index = index;
            // What the follower must apply before serving the read: let it learn the commit
            // now (as a heartbeat would) rather than from the next append.
            if let Some(pr) = self.prs.progress.get(&req.from) {
                r.commit = cmp::min(pr.matched, self.raft_log.committed);
            }
            r.entries = req.entries;
            self.send(r);
        }
    }

    /// Whether this leader holds a valid read lease (LeaseBased reads only).
    pub fn lease_valid(&self) -> bool {
        if self.read_only_option != ReadOnlyOption::LeaseBased
            || !self.check_quorum
            || self.state != StateRole::Leader
            || self.lease_disabled
            || self.hibernating
            || self.lead_transferee.is_some()
        {
            return false;
        }
        let now = self.ticks + 1;
        let id = self.id;
        let prs = &self.prs.progress;
        let stamp = self.prs.conf.voters.committed_index(&|v| {
            if v == id {
                Some(now)
            } else {
                prs.get(&v).map(|p| p.lease_stamp)
            }
        });
        // The stamp is the send time (+1) of a heartbeat acked by a quorum; voters that
        // acked it will not vote for another candidate for `election_timeout` ticks.
        stamp != 0 && stamp + self.lease_ticks > now
    }

    fn send_read_index(&mut self, m: Message) {
        if self.prs.is_singleton(self.id) {
            let idx = self.raft_log.committed;
            self.respond_read(m, idx);
            return;
        }
        if self.lease_valid() {
            let idx = self.raft_log.committed;
            self.respond_read(m, idx);
            return;
        }
        let ctx = m.entries[0].data.clone();
        let idx = self.raft_log.committed;
        self.read_only.add_request(idx, m, ctx.clone(), self.id);
        self.bcast_heartbeat(Some(ctx), false);
    }

    fn release_pending_read_index(&mut self) {
        if self.pending_read_index_msgs.is_empty() || !self.committed_entry_in_current_term() {
            return;
        }
        for m in std::mem::take(&mut self.pending_read_index_msgs) {
            self.send_read_index(m);
        }
    }

    fn send_timeout_now(&mut self, to: u64) {
        // A forced election may elect `to` while our followers' leases still point at us:
        // never serve lease reads again in this term.
        self.lease_disabled = true;
        let m = new_message(to, MessageType::MsgTimeoutNow, self.id);
        self.send(m);
    }

    /// Cancels an ongoing leadership transfer.
    pub fn abort_leader_transfer(&mut self) {
        self.lead_transferee = None;
    }

    fn step_candidate(&mut self, m: Message) -> Result<()> {
        let my_resp = if self.state == StateRole::PreCandidate {
            MessageType::MsgRequestPreVoteResponse
        } else {
            MessageType::MsgRequestVoteResponse
        };
        match m.msg_type() {
            MessageType::MsgPropose => return Err(Error::NotLeader { leader: 0 }),
            MessageType::MsgAppend => {
                self.become_follower(m.term, m.from);
                self.handle_append(m);
            }
            MessageType::MsgHeartbeat => {
                self.become_follower(m.term, m.from);
                self.handle_heartbeat(m);
            }
            MessageType::MsgSnapshot => {
                self.become_follower(m.term, m.from);
                self.handle_snapshot(m);
            }
            t if t == my_resp => match self.poll(m.from, t, !m.reject) {
                VoteResult::Won => {
                    if self.state == StateRole::PreCandidate {
                        self.campaign(CampaignType::Election);
                    } else {
                        self.become_leader();
                        self.bcast_append();
                    }
                }
                VoteResult::Lost => {
                    let term = self.term;
                    self.become_follower(term, 0);
                }
                VoteResult::Pending => {}
            },
            MessageType::MsgReadIndex => return Err(Error::NotLeader { leader: 0 }),
            _ => {}
        }
        Ok(())
    }

    fn step_follower(&mut self, mut m: Message) -> Result<()> {
        match m.msg_type() {
            MessageType::MsgPropose => {
                return Err(Error::NotLeader {
                    leader: self.leader_id,
                })
            }
            MessageType::MsgAppend => {
                self.election_elapsed = 0;
                self.leader_id = m.from;
                self.handle_append(m);
            }
            MessageType::MsgHeartbeat => {
                self.election_elapsed = 0;
                self.leader_id = m.from;
                self.handle_heartbeat(m);
            }
            MessageType::MsgSnapshot => {
                self.election_elapsed = 0;
                self.leader_id = m.from;
                self.handle_snapshot(m);
            }
            MessageType::MsgTransferLeader => {
                if self.leader_id == 0 {
                    return Err(Error::NotLeader { leader: 0 });
                }
                m.to = self.leader_id;
                self.send(m);
            }
            MessageType::MsgTimeoutNow => {
                // Leadership transfer: campaign at once, bypassing PreVote and leases.
                self.hup(true);
            }
            MessageType::MsgReadIndex => {
                if self.leader_id == 0 || m.entries.is_empty() {
                    return Err(Error::NotLeader { leader: 0 });
                }
                m.to = self.leader_id;
                self.send(m);
            }
            MessageType::MsgReadIndexResp => {
                if m.entries.len() != 1 {
                    return Ok(());
                }
                let commit = cmp::min(m.commit, self.raft_log.last_index());
                self.raft_log.commit_to(commit);
                self.read_states.push(ReadState {
                    index: m.index,
                    request_ctx: m.entries[0].data.clone(),
                });
            }
            _ => {}
        }
        Ok(())
    }

    fn handle_append(&mut self, m: Message) {
        if m.index < self.raft_log.committed {
            let mut r = new_message(m.from, MessageType::MsgAppendResponse, self.id);
            r.index = self.raft_log.committed;
            self.send(r);
            return;
        }
        if !valid_entries(&m) {
            return;
        }
        let mut r = new_message(m.from, MessageType::MsgAppendResponse, self.id);
        match self
            .raft_log
            .maybe_append(m.index, m.log_term, m.commit, &m.entries)
        {
            Some((_, last_new)) => {
                r.index = last_new;
            }
            None => {
                // Fast backtracking: hint the largest index whose term <= the leader's
                // term at m.index, so the leader can skip a whole term per round trip.
                let hint = cmp::min(m.index, self.raft_log.last_index());
                let (hint_index, hint_term) = self.raft_log.find_conflict_by_term(hint, m.log_term);
                r.index = m.index;
                r.reject = true;
                r.reject_hint = hint_index;
                r.log_term = hint_term;
            }
        }
        self.send(r);
    }

    fn handle_heartbeat(&mut self, m: Message) {
        let commit = cmp::min(m.commit, self.raft_log.last_index());
        self.raft_log.commit_to(commit);
        let mut r = new_message(m.from, MessageType::MsgHeartbeatResponse, self.id);
        r.index = m.index;
        r.context = m.context;
        self.send(r);
        // Stamps order heartbeats from one leader: a delayed "hibernate" heartbeat must
        // not put us to sleep after the leader woke up again.
        if m.index >= self.leader_stamp {
            self.leader_stamp = m.index;
            if m.hibernate {
                self.hibernating = true;
            }
        }
    }

    fn handle_snapshot(&mut self, m: Message) {
        // A snapshot's (index, term) must be plausible: index + 1 must not overflow (the
        // unstable log starts at index + 1) and its term cannot exceed the sender's.
        let snap = match m.snapshot {
            Some(s)
                if s.metadata.as_ref().is_some_and(|md| {
                    md.index > 0 && md.index < u64::MAX && md.term > 0 && md.term <= m.term
                }) =>
            {
                s
            }
            _ => return,
        };
        let mut r = new_message(m.from, MessageType::MsgAppendResponse, self.id);
        if self.restore(snap) {
            r.index = self.raft_log.last_index();
        } else {
            r.index = self.raft_log.committed;
        }
        self.send(r);
    }

    /// Installs a snapshot received from the leader. Returns false if it is stale or
    /// already covered by the log (in which case the commit index is fast-forwarded).
    pub fn restore(&mut self, snap: Snapshot) -> bool {
        let meta = snap.metadata.clone().unwrap_or_default();
        if meta.index <= self.raft_log.committed {
            return false;
        }
        if self.state != StateRole::Follower {
            // Only followers install snapshots (candidates step down before handling one).
            return false;
        }
        // The snapshot's configuration may predate this node's addition (the leader's
        // snapshot can be older than the conf change adding us). We install it anyway: the
        // log after it carries our membership, and until that is applied we are not a
        // voter, so we cannot campaign.
        let cs = meta.conf_state.clone().unwrap_or_default();
        if self.raft_log.match_term(meta.index, meta.term) {
            self.raft_log.commit_to(meta.index);
            return false;
        }
        self.raft_log.restore(snap);
        let last = self.raft_log.last_index();
        let max_inflight = self.prs.max_inflight;
        self.prs = confchange::restore(&cs, last, max_inflight);
        // A node in `learners_next` is still a voter of the outgoing joint half.
        self.is_learner = self.prs.conf.learners.contains(&self.id);
        true
    }

    // ---------------------------------------------------------------- membership

    /// Applies a committed configuration change and returns the new [`ConfState`]. The
    /// caller calls this when it applies a `EntryConfChangeV2` entry.
    pub fn apply_conf_change(&mut self, cc: &ConfChangeV2) -> Result<ConfState> {
        let changer = Changer {
            tracker: &self.prs,
            last_index: self.raft_log.last_index(),
        };
        let (cfg, prs) = if confchange::leave_joint(cc) {
            changer.leave_joint()?
        } else if let Some(auto_leave) = confchange::enter_joint(cc) {
            changer.enter_joint(auto_leave, &cc.changes)?
        } else {
            changer.simple(&cc.changes)?
        };
        self.prs.conf = cfg;
        self.prs.progress = prs;
        Ok(self.post_conf_change())
    }

    fn post_conf_change(&mut self) -> ConfState {
        let cs = self.prs.conf_state();
        let in_prs = self.prs.progress.contains_key(&self.id);
        // A node in `learners_next` is still a voter of the outgoing joint half.
        self.is_learner = self.prs.conf.learners.contains(&self.id);
        if (!in_prs || self.is_learner) && self.state == StateRole::Leader {
            // The leader was removed (or demoted): step down so the remaining voters
            // elect a new leader. It kept leading the joint configuration until now.
            let term = self.term;
            self.become_follower(term, 0);
            return cs;
        }
        if self.state != StateRole::Leader || cs.voters.is_empty() {
            return cs;
        }
        if self.maybe_commit() {
            self.bcast_append();
        } else {
            for id in self.peer_ids() {
                self.maybe_send_append(id, false);
            }
        }
        if let Some(t) = self.lead_transferee {
            if !self.prs.is_voter(t) {
                self.abort_leader_transfer();
            }
        }
        cs
    }

    /// Number of ticks counted (monotonic, used for leases).
    pub fn ticks(&self) -> u64 {
        self.ticks
    }
}

/// Checks that a message from the network is not a local-only type.
pub(crate) fn check_remote(m: &Message) -> Result<()> {
    if is_local_msg(m.msg_type()) {
        return Err(Error::StepLocalMsg);
    }
    Ok(())
}
