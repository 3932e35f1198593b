//! The membership configuration and the progress of every member.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::Progress;
use crate::eraftpb::ConfState;
use crate::quorum::{JointConfig, VoteResult};

/// Progress of every member, by id.
pub type ProgressMap = BTreeMap<u64, Progress>;

/// A membership configuration.
///
/// Invariants: `learners` and `learners_next` are disjoint from `voters.incoming`;
/// `learners` is disjoint from `voters.outgoing`; `learners_next` ⊆ `voters.outgoing`
/// (nodes demoted from voter to learner by a joint change, which become learners when the
/// joint configuration is left).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Configuration {
    /// Voters (possibly joint).
    pub voters: JointConfig,
    /// Learners.
    pub learners: BTreeSet<u64>,
    /// Voters of the outgoing config that become learners on leaving joint.
    pub learners_next: BTreeSet<u64>,
    /// Leave the joint configuration automatically once it is applied.
    pub auto_leave: bool,
}

impl Configuration {
    /// The configuration as a [`ConfState`].
    pub fn to_conf_state(&self) -> ConfState {
        ConfState {
            voters: self.voters.incoming.iter().copied().collect(),
            voters_outgoing: self.voters.outgoing.iter().copied().collect(),
            learners: self.learners.iter().copied().collect(),
            learners_next: self.learners_next.iter().copied().collect(),
            auto_leave: self.auto_leave,
        }
    }
}

/// Tracks configuration, per-member progress and votes.
#[derive(Debug, Clone)]
pub struct ProgressTracker {
    /// Current configuration.
    pub conf: Configuration,
    /// Progress of voters and learners.
    pub progress: ProgressMap,
    /// Votes received in the current election.
    pub votes: HashMap<u64, bool>,
    /// Inflight window size for new progresses.
    pub max_inflight: usize,
}

impl ProgressTracker {
    /// Empty tracker.
    pub fn new(max_inflight: usize) -> Self {
        ProgressTracker {
            conf: Configuration::default(),
            progress: BTreeMap::new(),
            votes: HashMap::new(),
            max_inflight,
        }
    }

    /// Largest index replicated on a (joint) quorum of voters.
    pub fn maximal_committed_index(&self) -> u64 {
        let prs = &self.progress;
        self.conf
            .voters
            .committed_index(&|id| prs.get(&id).map(|p| p.matched))
    }

    /// Records a vote (first vote per peer wins).
    pub fn record_vote(&mut self, id: u64, granted: bool) {
        self.votes.entry(id).or_insert(granted);
    }

    /// Clears votes.
    pub fn reset_votes(&mut self) {
        self.votes.clear();
    }

    /// Current tally.
    pub fn tally_votes(&self) -> VoteResult {
        self.conf.voters.vote_result(&self.votes)
    }

    /// Whether a quorum of voters was recently active (self always counts).
    pub fn quorum_recently_active(&self, self_id: u64) -> bool {
        let votes: HashMap<u64, bool> = self
            .progress
            .iter()
            .filter(|(id, _)| self.conf.voters.contains(**id))
            .map(|(id, p)| (*id, *id == self_id || p.recent_active))
            .collect();
        self.conf.voters.vote_result(&votes) == VoteResult::Won
    }

    /// Whether `id` is a voter (in either half).
    pub fn is_voter(&self, id: u64) -> bool {
        self.conf.voters.contains(id)
    }

    /// Whether the only voter is `id` (no quorum round trips needed).
    pub fn is_singleton(&self, id: u64) -> bool {
        self.conf.voters.outgoing.is_empty()
            && self.conf.voters.incoming.len() == 1
            && self.conf.voters.incoming.contains(&id)
    }

    /// The configuration as a [`ConfState`].
    pub fn conf_state(&self) -> ConfState {
        self.conf.to_conf_state()
    }
}
