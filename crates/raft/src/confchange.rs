//! Membership changes: simple (one voter at a time) and joint consensus.
//!
//! Changes are computed on a copy of the configuration and progress map and validated
//! before they are installed, so a rejected change leaves the node untouched.

use std::collections::BTreeSet;

use crate::eraftpb::{
    ConfChangeSingle, ConfChangeTransition, ConfChangeType, ConfChangeV2, ConfState,
};
use crate::errors::{Error, Result};
use crate::progress::tracker::{Configuration, ProgressMap, ProgressTracker};
use crate::progress::Progress;

fn err<T>(s: impl Into<String>) -> Result<T> {
    Err(Error::ConfChangeError(s.into()))
}

/// If `cc` enters a joint configuration, returns `Some(auto_leave)`; `None` for a simple
/// change (or a leave-joint change, which has no changes).
pub fn enter_joint(cc: &ConfChangeV2) -> Option<bool> {
    if cc.changes.is_empty() {
        return None;
    }
    let transition = cc.transition();
    if transition != ConfChangeTransition::Auto || cc.changes.len() > 1 {
        let auto_leave = matches!(
            transition,
            ConfChangeTransition::Auto | ConfChangeTransition::JointImplicit
        );
        return Some(auto_leave);
    }
    None
}

/// Whether `cc` leaves a joint configuration.
pub fn leave_joint(cc: &ConfChangeV2) -> bool {
    cc.changes.is_empty()
}

/// Computes configuration changes against a tracker.
pub struct Changer<'a> {
    /// The current state.
    pub tracker: &'a ProgressTracker,
    /// Last log index (initial `next_idx` of new members is `last_index + 1`).
    pub last_index: u64,
}

impl Changer<'_> {
    /// Enters a joint configuration: the current voters become the outgoing half, the
    /// changes are applied to the incoming half.
    pub fn enter_joint(
        &self,
        auto_leave: bool,
        ccs: &[ConfChangeSingle],
    ) -> Result<(Configuration, ProgressMap)> {
        let (mut cfg, mut prs) = self.snapshot();
        if cfg.voters.is_joint() {
            return err("config is already joint");
        }
        if cfg.voters.incoming.is_empty() {
            return err("can't make a zero-voter config joint");
        }
        cfg.voters.outgoing = cfg.voters.incoming.clone();
        self.apply(&mut cfg, &mut prs, ccs)?;
        cfg.auto_leave = auto_leave;
        check_invariants(&cfg, &prs)?;
        Ok((cfg, prs))
    }

    /// Leaves the joint configuration: the incoming half becomes the configuration,
    /// `learners_next` become learners, and members that are in neither are dropped.
    pub fn leave_joint(&self) -> Result<(Configuration, ProgressMap)> {
        let (mut cfg, mut prs) = self.snapshot();
        if !cfg.voters.is_joint() {
            return err("can't leave a non-joint config");
        }
        let next: Vec<u64> = cfg.learners_next.iter().copied().collect();
        for id in next {
            cfg.learners.insert(id);
            if let Some(p) = prs.get_mut(&id) {
                p.is_learner = true;
            }
        }
        cfg.learners_next.clear();
        let outgoing = std::mem::take(&mut cfg.voters.outgoing);
        for id in outgoing {
            if !cfg.voters.incoming.contains(&id) && !cfg.learners.contains(&id) {
                prs.remove(&id);
            }
        }
        cfg.auto_leave = false;
        check_invariants(&cfg, &prs)?;
        Ok((cfg, prs))
    }

    /// A simple change: at most one voter may be added or removed.
    pub fn simple(&self, ccs: &[ConfChangeSingle]) -> Result<(Configuration, ProgressMap)> {
        let (mut cfg, mut prs) = self.snapshot();
        if cfg.voters.is_joint() {
            return err("can't apply simple config change in joint config");
        }
        self.apply(&mut cfg, &mut prs, ccs)?;
        let old = &self.tracker.conf.voters.incoming;
        let diff = old.symmetric_difference(&cfg.voters.incoming).count();
        if diff > 1 {
            return err("more than one voter changed without entering joint config");
        }
        check_invariants(&cfg, &prs)?;
        Ok((cfg, prs))
    }

    fn snapshot(&self) -> (Configuration, ProgressMap) {
        (self.tracker.conf.clone(), self.tracker.progress.clone())
    }

    fn apply(
        &self,
        cfg: &mut Configuration,
        prs: &mut ProgressMap,
        ccs: &[ConfChangeSingle],
    ) -> Result<()> {
        for cc in ccs {
            if cc.node_id == 0 {
                continue;
            }
            match cc.change_type() {
                ConfChangeType::AddNode => self.make_voter(cfg, prs, cc.node_id),
                ConfChangeType::AddLearnerNode => self.make_learner(cfg, prs, cc.node_id),
                ConfChangeType::RemoveNode => remove(cfg, prs, cc.node_id),
            }
        }
        if cfg.voters.incoming.is_empty() {
            return err("removed all voters");
        }
        Ok(())
    }

    fn init_progress(&self, prs: &mut ProgressMap, id: u64, is_learner: bool) {
        let mut p = Progress::new(self.last_index + 1, self.tracker.max_inflight);
        p.is_learner = is_learner;
        // A new member counts as active so that check-quorum does not fire before it
        // had a chance to respond.
        p.recent_active = true;
        prs.insert(id, p);
    }

    fn make_voter(&self, cfg: &mut Configuration, prs: &mut ProgressMap, id: u64) {
        if !prs.contains_key(&id) {
            self.init_progress(prs, id, false);
        }
        if let Some(p) = prs.get_mut(&id) {
            p.is_learner = false;
        }
        cfg.learners.remove(&id);
        cfg.learners_next.remove(&id);
        cfg.voters.incoming.insert(id);
    }

    fn make_learner(&self, cfg: &mut Configuration, prs: &mut ProgressMap, id: u64) {
        if !prs.contains_key(&id) {
            self.init_progress(prs, id, true);
        }
        if cfg.learners.contains(&id) {
            return;
        }
        cfg.voters.incoming.remove(&id);
        cfg.learners.remove(&id);
        cfg.learners_next.remove(&id);
        if cfg.voters.outgoing.contains(&id) {
            // Still a voter in the outgoing half: becomes a learner when leaving joint.
            cfg.learners_next.insert(id);
        } else {
            if let Some(p) = prs.get_mut(&id) {
                p.is_learner = true;
            }
            cfg.learners.insert(id);
        }
    }
}

fn remove(cfg: &mut Configuration, prs: &mut ProgressMap, id: u64) {
    if !prs.contains_key(&id) {
        return;
    }
    cfg.voters.incoming.remove(&id);
    cfg.learners.remove(&id);
    cfg.learners_next.remove(&id);
    if !cfg.voters.outgoing.contains(&id) {
        prs.remove(&id);
    }
}

fn check_invariants(cfg: &Configuration, prs: &ProgressMap) -> Result<()> {
    let all: BTreeSet<u64> = cfg
        .voters
        .ids()
        .into_iter()
        .chain(cfg.learners.iter().copied())
        .chain(cfg.learners_next.iter().copied())
        .collect();
    for id in &all {
        if !prs.contains_key(id) {
            return err(format!("no progress for {id}"));
        }
    }
    for id in &cfg.learners_next {
        if !cfg.voters.outgoing.contains(id) {
            return err(format!("{id} is in learners_next, but not outgoing"));
        }
        if !prs[id].is_learner && cfg.voters.incoming.contains(id) {
            return err(format!("{id} is in learners_next and incoming"));
        }
    }
    for id in &cfg.learners {
        if cfg.voters.contains(*id) {
            return err(format!("{id} is in learners and voters"));
        }
        if !prs[id].is_learner {
            return err(format!("{id} is in learners, but is not marked as learner"));
        }
    }
    if !cfg.voters.is_joint() && (!cfg.learners_next.is_empty() || cfg.auto_leave) {
        return err("learners_next/auto_leave set outside joint config");
    }
    Ok(())
}

/// Builds a tracker from a persisted [`ConfState`].
pub fn restore(cs: &ConfState, last_index: u64, max_inflight: usize) -> ProgressTracker {
    let mut t = ProgressTracker::new(max_inflight);
    t.conf.voters.incoming = cs.voters.iter().copied().collect();
    t.conf.voters.outgoing = cs.voters_outgoing.iter().copied().collect();
    t.conf.learners = cs.learners.iter().copied().collect();
    t.conf.learners_next = cs.learners_next.iter().copied().collect();
    t.conf.auto_leave = cs.auto_leave && t.conf.voters.is_joint();
    let ids: BTreeSet<u64> = t
        .conf
        .voters
        .ids()
        .into_iter()
        .chain(t.conf.learners.iter().copied())
        .chain(t.conf.learners_next.iter().copied())
        .collect();
    for id in ids {
        let mut p = Progress::new(last_index + 1, max_inflight);
        p.is_learner = t.conf.learners.contains(&id);
        p.recent_active = true;
        t.progress.insert(id, p);
    }
    t
}

/// Convenience constructors for [`ConfChangeV2`].
impl ConfChangeV2 {
    /// A change list with the given transition.
    pub fn with_changes(
        transition: ConfChangeTransition,
        changes: impl IntoIterator<Item = (ConfChangeType, u64)>,
    ) -> Self {
        let mut cc = ConfChangeV2 {
            changes: changes
                .into_iter()
                .map(|(t, id)| {
                    let mut c = ConfChangeSingle {
                        node_id: id,
                        ..Default::default()
                    };
                    c.set_change_type(t);
                    c
                })
                .collect(),
            ..Default::default()
        };
        cc.set_transition(transition);
        cc
    }

    /// A single (simple) change.
    pub fn simple(t: ConfChangeType, id: u64) -> Self {
        Self::with_changes(ConfChangeTransition::Auto, [(t, id)])
    }

    /// The change that leaves a joint configuration.
    pub fn leave_joint() -> Self {
        ConfChangeV2::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConfChangeType::*;

    fn tracker(voters: &[u64], learners: &[u64]) -> ProgressTracker {
        let cs = ConfState {
            voters: voters.to_vec(),
            learners: learners.to_vec(),
            ..Default::default()
        };
        restore(&cs, 10, 8)
    }

    fn install(t: &mut ProgressTracker, r: (Configuration, ProgressMap)) {
        t.conf = r.0;
        t.progress = r.1;
    }

    #[test]
    fn simple_rejects_two_voters() {
        let t = tracker(&[1, 2, 3], &[]);
        let ch = Changer {
            tracker: &t,
            last_index: 10,
        };
        let cc =
            ConfChangeV2::with_changes(ConfChangeTransition::Auto, [(AddNode, 4), (AddNode, 5)]);
        assert!(ch.simple(&cc.changes).is_err());
        assert!(ch.simple(&ConfChangeV2::simple(AddNode, 4).changes).is_ok());
    }

    #[test]
    fn joint_enter_leave_with_demotion() {
        let mut t = tracker(&[1, 2, 3], &[]);
        let cc = ConfChangeV2::with_changes(
            ConfChangeTransition::JointExplicit,
            [(AddLearnerNode, 3), (AddNode, 4), (RemoveNode, 2)],
        );
        let r = Changer {
            tracker: &t,
            last_index: 10,
        }
        .enter_joint(false, &cc.changes)
        .unwrap();
        install(&mut t, r);
        let cs = t.conf_state();
        assert_eq!(cs.voters, vec![1, 4]);
        assert_eq!(cs.voters_outgoing, vec![1, 2, 3]);
        assert_eq!(cs.learners_next, vec![3]);
        assert!(t.progress.contains_key(&2));
        // Entering twice is rejected.
        assert!(Changer {
            tracker: &t,
            last_index: 10
        }
        .enter_joint(false, &cc.changes)
        .is_err());
        let r = Changer {
            tracker: &t,
            last_index: 10,
        }
        .leave_joint()
        .unwrap();
        install(&mut t, r);
        let cs = t.conf_state();
        assert_eq!(cs.voters, vec![1, 4]);
        assert!(cs.voters_outgoing.is_empty());
        assert_eq!(cs.learners, vec![3]);
        assert!(!t.progress.contains_key(&2));
        assert!(t.progress[&3].is_learner);
        // Leaving a non-joint config is rejected.
        assert!(Changer {
            tracker: &t,
            last_index: 10
        }
        .leave_joint()
        .is_err());
    }

    #[test]
    fn cannot_remove_all_voters() {
        let t = tracker(&[1], &[2]);
        let ch = Changer {
            tracker: &t,
            last_index: 10,
        };
        assert!(ch
            .simple(&ConfChangeV2::simple(RemoveNode, 1).changes)
            .is_err());
    }

    #[test]
    fn learner_promotion() {
        let mut t = tracker(&[1], &[2]);
        let r = Changer {
            tracker: &t,
            last_index: 10,
        }
        .simple(&ConfChangeV2::simple(AddNode, 2).changes)
        .unwrap();
        install(&mut t, r);
        assert_eq!(t.conf_state().voters, vec![1, 2]);
        assert!(t.conf_state().learners.is_empty());
        assert!(!t.progress[&2].is_learner);
    }
}
