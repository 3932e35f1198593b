//! Quorum arithmetic for majority and joint (two-majority) configurations.

use std::collections::{BTreeSet, HashMap};

/// Outcome of an election tally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoteResult {
    /// Not decided yet.
    Pending,
    /// Lost: a quorum can no longer be reached.
    Lost,
    /// Won: a quorum granted the vote.
    Won,
}

/// A set of voters deciding by simple majority.
pub type MajorityConfig = BTreeSet<u64>;

/// Largest index acknowledged by a majority of `voters`. `acked(id)` returns the
/// acknowledged index of a voter (None = nothing). An empty config returns `u64::MAX` so
/// that it does not constrain a joint configuration.
pub fn majority_committed_index(
    voters: &MajorityConfig,
    acked: &impl Fn(u64) -> Option<u64>,
) -> u64 {
    if voters.is_empty() {
        return u64::MAX;
    }
    let mut v: Vec<u64> = voters.iter().map(|id| acked(*id).unwrap_or(0)).collect();
    v.sort_unstable_by(|a, b| b.cmp(a));
    v[v.len() / 2]
}

/// Tallies `votes` (true = granted) over `voters`. An empty config wins.
pub fn majority_vote_result(voters: &MajorityConfig, votes: &HashMap<u64, bool>) -> VoteResult {
    if voters.is_empty() {
        return VoteResult::Won;
    }
    let (mut yes, mut missing) = (0, 0);
    for id in voters {
        match votes.get(id) {
            Some(true) => yes += 1,
            Some(false) => {}
            None => missing += 1,
        }
    }
    let q = voters.len() / 2 + 1;
    if yes >= q {
        VoteResult::Won
    } else if yes + missing >= q {
        VoteResult::Pending
    } else {
        VoteResult::Lost
    }
}

/// A joint configuration: `incoming` and `outgoing` must both agree. Outside of joint
/// consensus `outgoing` is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JointConfig {
    /// The new (or only) voter set.
    pub incoming: MajorityConfig,
    /// The old voter set while in a joint configuration, else empty.
    pub outgoing: MajorityConfig,
}

impl JointConfig {
    /// Whether in a joint configuration.
    pub fn is_joint(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// Whether `id` is a voter in either half.
    pub fn contains(&self, id: u64) -> bool {
        self.incoming.contains(&id) || self.outgoing.contains(&id)
    }

    /// All voter ids (union).
    pub fn ids(&self) -> BTreeSet<u64> {
        self.incoming.union(&self.outgoing).copied().collect()
    }

    /// Largest index committed by both halves.
    pub fn committed_index(&self, acked: &impl Fn(u64) -> Option<u64>) -> u64 {
        let i = majority_committed_index(&self.incoming, acked);
        let o = majority_committed_index(&self.outgoing, acked);
        std::cmp::min(i, o)
    }

    /// Tally: won only if both halves won; lost if either lost.
    pub fn vote_result(&self, votes: &HashMap<u64, bool>) -> VoteResult {
        let i = majority_vote_result(&self.incoming, votes);
        let o = majority_vote_result(&self.outgoing, votes);
        match (i, o) {
            (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
            (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
            _ => VoteResult::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(ids: &[u64]) -> MajorityConfig {
        ids.iter().copied().collect()
    }

    #[test]
    fn committed_index() {
        let m: HashMap<u64, u64> = [(1, 5), (2, 3), (3, 9)].into_iter().collect();
        let acked = |id| m.get(&id).copied();
        assert_eq!(majority_committed_index(&cfg(&[1, 2, 3]), &acked), 5);
        assert_eq!(majority_committed_index(&cfg(&[1, 2, 3, 4]), &acked), 3);
        assert_eq!(majority_committed_index(&cfg(&[]), &acked), u64::MAX);
        let j = JointConfig {
            incoming: cfg(&[1, 3]),
            outgoing: cfg(&[2, 3, 4]),
        };
        // incoming: {5,9} -> 5; outgoing {3,9,0} -> 3
        assert_eq!(j.committed_index(&acked), 3);
    }

    #[test]
    fn votes() {
        let v: HashMap<u64, bool> = [(1, true), (2, false)].into_iter().collect();
        assert_eq!(
            majority_vote_result(&cfg(&[1, 2, 3]), &v),
            VoteResult::Pending
        );
        assert_eq!(majority_vote_result(&cfg(&[1, 2]), &v), VoteResult::Lost);
        assert_eq!(majority_vote_result(&cfg(&[1]), &v), VoteResult::Won);
        let j = JointConfig {
            incoming: cfg(&[1]),
            outgoing: cfg(&[1, 2]),
        };
        assert_eq!(j.vote_result(&v), VoteResult::Lost);
    }
}
