//! Per-follower replication progress, tracked by the leader.

pub mod inflights;
pub mod tracker;

use std::cmp;
use std::fmt;

pub use inflights::Inflights;

/// Replication state of a follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProgressState {
    /// Probing for the last matching index: at most one append per heartbeat interval.
    #[default]
    Probe,
    /// Optimistically streaming appends, bounded by the inflight window.
    Replicate,
    /// Waiting for a snapshot to be installed.
    Snapshot,
}

/// The leader's view of one follower (or learner).
///
/// Invariant: `matched < next_idx`.
#[derive(Clone, PartialEq, Eq)]
pub struct Progress {
    /// Highest index known to be replicated on the follower.
    pub matched: u64,
    /// Next index to send.
    pub next_idx: u64,
    /// Replication state.
    pub state: ProgressState,
    /// In Probe state: an append was sent and we wait for a response/heartbeat.
    pub probe_sent: bool,
    /// In Snapshot state: index of the snapshot being installed.
    pub pending_snapshot: u64,
    /// Heard from the follower since the last check-quorum round.
    pub recent_active: bool,
    /// In-flight append window.
    pub ins: Inflights,
    /// Whether this peer is a learner.
    pub is_learner: bool,
    /// Leader tick stamp (+1) of the latest heartbeat this follower acknowledged (0 = none).
    /// Used for lease reads.
    pub lease_stamp: u64,
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} match={} next={} inflight={}{}{}",
            self.state,
            self.matched,
            self.next_idx,
            self.ins.count(),
            if self.probe_sent { " paused" } else { "" },
            if self.is_learner { " learner" } else { "" }
        )
    }
}

impl Progress {
    /// New progress in Probe state with `next_idx`.
    pub fn new(next_idx: u64, ins_size: usize) -> Self {
        Progress {
            matched: 0,
            next_idx,
            state: ProgressState::Probe,
            probe_sent: false,
            pending_snapshot: 0,
            recent_active: false,
            ins: Inflights::new(ins_size),
            is_learner: false,
            lease_stamp: 0,
        }
    }

    fn reset_state(&mut self, state: ProgressState) {
        self.probe_sent = false;
        self.pending_snapshot = 0;
        self.state = state;
        self.ins.reset();
    }

    /// Resets to Probe state with `next_idx` (used when a node becomes leader).
    pub fn reset(&mut self, next_idx: u64) {
        self.matched = 0;
        self.next_idx = next_idx;
        self.lease_stamp = 0;
        self.reset_state(ProgressState::Probe);
    }

    /// Switches to Probe.
    pub fn become_probe(&mut self) {
        if self.state == ProgressState::Snapshot {
            let pending = self.pending_snapshot;
            self.reset_state(ProgressState::Probe);
            self.next_idx = cmp::max(self.matched + 1, pending + 1);
        } else {
            self.reset_state(ProgressState::Probe);
            self.next_idx = self.matched + 1;
        }
    }

    /// Switches to Replicate.
    pub fn become_replicate(&mut self) {
        self.reset_state(ProgressState::Replicate);
        self.next_idx = self.matched + 1;
    }

    /// Switches to Snapshot, waiting for the snapshot at `snapshot_idx`.
    pub fn become_snapshot(&mut self, snapshot_idx: u64) {
        self.reset_state(ProgressState::Snapshot);
        self.pending_snapshot = snapshot_idx;
    }

    /// The follower acknowledged `n`. Returns true if `matched` increased.
    pub fn maybe_update(&mut self, n: u64) -> bool {
        let updated = self.matched < n;
        if updated {
            self.matched = n;
            self.probe_sent = false;
        }
        self.next_idx = cmp::max(self.next_idx, n + 1);
        updated
    }

    /// Optimistically advances `next_idx` after sending entries up to `n`.
    pub fn optimistic_update(&mut self, n: u64) {
        self.next_idx = n + 1;
    }

    /// The follower rejected an append at `rejected`; `match_hint` is the index it
    /// suggests probing next. Returns false if the rejection is stale.
    pub fn maybe_decr_to(&mut self, rejected: u64, match_hint: u64) -> bool {
        if self.state == ProgressState::Replicate {
            if rejected <= self.matched {
                return false;
            }
            self.next_idx = self.matched + 1;
            return true;
        }
        if self.next_idx == 0 || self.next_idx - 1 != rejected {
            return false;
        }
        if rejected <= self.matched && match_hint < self.matched {
            // It rejects an index it acknowledged: it lost acknowledged entries (a disk that
            // did not keep a synced write). Without probing below `matched` it would never be
            // caught up again. Lowering `matched` is safe: the commit index never moves back,
            // later commits just wait for real acknowledgements. A delayed rejection from
            // before the acknowledgement lands here too and costs one resend.
            self.matched = match_hint;
            self.next_idx = match_hint + 1;
            self.probe_sent = false;
            return true;
        }
        self.next_idx = cmp::max(
            cmp::min(rejected, match_hint.saturating_add(1)),
            self.matched + 1,
        );
        self.probe_sent = false;
        true
    }

    /// Whether sending appends to this peer is currently paused.
    pub fn is_paused(&self) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => self.ins.full(),
            ProgressState::Snapshot => true,
        }
    }

    /// Bookkeeping after sending an append with entries up to `last` (None = no entries).
    pub fn sent_append(&mut self, last: Option<u64>) {
        match self.state {
            ProgressState::Replicate => {
                if let Some(last) = last {
                    self.optimistic_update(last);
                    self.ins.add(last);
                }
            }
            ProgressState::Probe => self.probe_sent = true,
            ProgressState::Snapshot => {
                panic!("[raft] sending append in unhandled state {:?}", self.state)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decr_to() {
        let mut p = Progress::new(10, 4);
        p.matched = 5;
        // stale: next-1 != rejected
        assert!(!p.maybe_decr_to(5, 5));
        assert!(p.maybe_decr_to(9, 7));
        assert_eq!(p.next_idx, 8);
        p.become_replicate();
        assert_eq!(p.next_idx, 6);
        p.sent_append(Some(9));
        assert_eq!(p.next_idx, 10);
        assert!(!p.maybe_decr_to(4, 4));
        assert!(p.maybe_decr_to(8, 3));
        assert_eq!(p.next_idx, 6);
    }

    #[test]
    fn a_follower_that_lost_acknowledged_entries_is_probed_below_them() {
        let mut p = Progress::new(541, 4);
        p.matched = 540;
        // Probing at 540 (next - 1): it answers that its log ends at 533.
        assert!(p.maybe_decr_to(540, 533));
        assert_eq!((p.matched, p.next_idx), (533, 534));
        // A rejection at another index is still stale.
        assert!(!p.maybe_decr_to(540, 500));
    }

    #[test]
    fn snapshot_to_probe() {
        let mut p = Progress::new(3, 4);
        p.matched = 2;
        p.become_snapshot(10);
        assert!(p.is_paused());
        p.become_probe();
        assert_eq!(p.next_idx, 11);
    }
}
