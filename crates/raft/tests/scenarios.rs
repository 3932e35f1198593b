//! Scenario tests: PreVote / CheckQuorum, joint consensus, learners, snapshots,
//! leadership transfer, ReadIndex and lease reads, quiescence, flow control, and
//! robustness against malformed input.

mod common;

use common::*;
use raft::eraftpb::{
    ConfChangeTransition, ConfChangeType, ConfChangeV2, ConfState, Entry, EntryType, Message,
    MessageType, Snapshot, SnapshotMetadata,
};
use raft::util::{new_entry, new_message, SplitMix64};
use raft::{Config, Error, ProgressState, ReadOnlyOption, StateRole};

fn cfg_pq(id: u64) -> Config {
    let mut c = cfg(id, 10, 1);
    c.pre_vote = true;
    c.check_quorum = true;
    c
}

fn leader_of(net: &mut Network, ids: &[u64]) -> Option<u64> {
    ids.iter()
        .copied()
        .find(|id| net.node(*id).raft.state == StateRole::Leader)
}

fn tick_n(net: &mut Network, id: u64, n: usize) {
    for _ in 0..n {
        net.tick(id);
    }
}

fn tick_all(net: &mut Network, n: usize) {
    let ids: Vec<u64> = net.peers.keys().copied().collect();
    for _ in 0..n {
        for id in &ids {
            net.node(*id).tick();
        }
        net.send(vec![]);
    }
}

fn conf(net: &mut Network, id: u64) -> ConfState {
    net.node(id).raft.prs.conf_state()
}

// ------------------------------------------------------------------ PreVote / CheckQuorum

#[test]
fn test_prevote_partitioned_node_does_not_disrupt() {
    let mut net = Network::new_with(3, cfg_pq);
    net.hup(1);
    assert_eq!(net.node(1).raft.state, StateRole::Leader);
    let term = net.node(1).raft.term;
    net.isolate(3);
    tick_n(&mut net, 3, 100);
    // PreVote never succeeds, so the isolated node does not inflate its term.
    assert_eq!(net.node(3).raft.term, term);
    assert_eq!(net.node(3).raft.state, StateRole::PreCandidate);
    net.recover();
    tick_n(&mut net, 1, 2); // heartbeats bring 3 back as follower
    assert_eq!(net.node(1).raft.state, StateRole::Leader);
    assert_eq!(net.node(1).raft.term, term);
    assert_eq!(net.node(3).raft.state, StateRole::Follower);
}

#[test]
fn test_without_prevote_partitioned_node_disrupts_on_return() {
    let mut net = Network::new(3);
    net.hup(1);
    let term = net.node(1).raft.term;
    net.isolate(3);
    tick_n(&mut net, 3, 50);
    assert!(net.node(3).raft.term > term + 1);
    net.recover();
    tick_n(&mut net, 3, 20);
    // Without PreVote/CheckQuorum the returning node forces the leader to step down.
    assert!(net.node(1).raft.term > term);
}

#[test]
fn test_check_quorum_leader_steps_down_when_isolated() {
    let mut net = Network::new_with(3, cfg_pq);
    net.hup(1);
    net.isolate(1);
    tick_n(&mut net, 1, 21);
    assert_eq!(net.node(1).raft.state, StateRole::Follower);
}

#[test]
fn test_check_quorum_follower_ignores_vote_while_in_lease() {
    let mut net = Network::new_with(3, |id| {
        let mut c = cfg(id, 10, 1);
        c.check_quorum = true;
        c
    });
    net.hup(1);
    let term = net.node(1).raft.term;
    // Node 3 campaigns without PreVote: followers that heard from the leader ignore it.
    net.isolate(1);
    net.hup(3);
    assert_eq!(net.node(2).raft.term, term);
    assert_eq!(net.node(3).raft.state, StateRole::Candidate);
    // Once the lease expired on 2, node 3 can win.
    tick_n(&mut net, 2, 10);
    net.hup(3);
    assert_eq!(net.node(3).raft.state, StateRole::Leader);
}

#[test]
fn test_leader_isolation_new_leader_and_old_leader_catches_up() {
    let mut net = Network::new_with(5, cfg_pq);
    net.hup(1);
    net.propose(1, b"a").unwrap();
    net.isolate(1);
    // The isolated leader accepts a proposal it can never commit.
    net.propose(1, b"lost").unwrap();
    tick_all(&mut net, 40);
    let l = leader_of(&mut net, &[2, 3, 4, 5]).expect("new leader");
    net.propose(l, b"b").unwrap();
    net.recover();
    tick_all(&mut net, 5);
    assert_eq!(net.node(1).raft.state, StateRole::Follower);
    for id in 1..=5 {
        assert_eq!(
            net.applied_data(id),
            vec![b"a".to_vec(), b"b".to_vec()],
            "node {id}"
        );
    }
}

// ------------------------------------------------------------------ membership

fn add_node(net: &mut Network, id: u64, c: Config) {
    let n = new_node_with(&c, raft::MemStorage::new());
    net.peers.insert(id, n);
    net.applied.insert(id, Vec::new());
}

fn propose_cc(net: &mut Network, leader: u64, cc: ConfChangeV2) -> raft::Result<()> {
    let r = net.node(leader).propose_conf_change(vec![], cc);
    net.send(vec![]);
    r
}

#[test]
fn test_learner_catches_up_does_not_vote_then_promoted() {
    let mut net = Network::new_bootstrapped(3, |id| cfg(id, 10, 1));
    net.hup(1);
    net.propose(1, b"x").unwrap();
    add_node(&mut net, 4, cfg(4, 10, 1));
    propose_cc(
        &mut net,
        1,
        ConfChangeV2::simple(ConfChangeType::AddLearnerNode, 4),
    )
    .unwrap();
    tick_n(&mut net, 1, 2);
    assert_eq!(conf(&mut net, 1).learners, vec![4]);
    assert_eq!(net.applied_data(4), vec![b"x".to_vec()]);
    assert!(net.node(4).raft.is_learner);
    // A learner never campaigns.
    tick_n(&mut net, 4, 50);
    assert_eq!(net.node(4).raft.state, StateRole::Follower);
    // Learner acks do not count towards the quorum.
    net.isolate(2);
    net.isolate(3);
    net.propose(1, b"y").unwrap();
    let c = net.node(1).raft.raft_log.committed;
    assert!(
        net.node(4).raft.raft_log.last_index() > c,
        "learner has it, not committed"
    );
    net.recover();
    propose_cc(
        &mut net,
        1,
        ConfChangeV2::simple(ConfChangeType::AddNode, 4),
    )
    .unwrap();
    assert_eq!(conf(&mut net, 1).voters, vec![1, 2, 3, 4]);
    assert!(!net.node(4).raft.is_learner);
}

#[test]
fn test_joint_consensus_auto_leave() {
    let mut net = Network::new_bootstrapped(3, |id| cfg(id, 10, 1));
    net.hup(1);
    add_node(&mut net, 4, cfg(4, 10, 1));
    propose_cc(
        &mut net,
        1,
        ConfChangeV2::simple(ConfChangeType::AddLearnerNode, 4),
    )
    .unwrap();
    tick_n(&mut net, 1, 2);
    // Replace voter 3 by 4 in one joint step, leaving automatically.
    let cc = ConfChangeV2::with_changes(
        ConfChangeTransition::JointImplicit,
        [
            (ConfChangeType::AddNode, 4),
            (ConfChangeType::RemoveNode, 3),
        ],
    );
    propose_cc(&mut net, 1, cc).unwrap();
    tick_n(&mut net, 1, 2);
    let cs = conf(&mut net, 1);
    assert_eq!(cs.voters, vec![1, 2, 4]);
    assert!(cs.voters_outgoing.is_empty(), "auto leave: {cs:?}");
    for id in [2, 4] {
        assert_eq!(conf(&mut net, id).voters, vec![1, 2, 4], "node {id}");
    }
    net.propose(1, b"after").unwrap();
    assert_eq!(net.applied_data(4), vec![b"after".to_vec()]);
}

#[test]
fn test_joint_explicit_requires_leave_and_refuses_other_changes() {
    let mut net = Network::new(3);
    net.hup(1);
    let cc = ConfChangeV2::with_changes(
        ConfChangeTransition::JointExplicit,
        [(ConfChangeType::AddLearnerNode, 3)],
    );
    propose_cc(&mut net, 1, cc).unwrap();
    let cs = conf(&mut net, 1);
    assert_eq!(cs.voters, vec![1, 2]);
    assert_eq!(cs.voters_outgoing, vec![1, 2, 3]);
    assert_eq!(cs.learners_next, vec![3]);
    // Another change while joint is refused.
    let r = propose_cc(
        &mut net,
        1,
        ConfChangeV2::simple(ConfChangeType::RemoveNode, 2),
    );
    assert!(matches!(r, Err(Error::ConfChangeError(_))));
    // In the joint config, a commit needs both majorities: {1,2} and {1,2,3}.
    net.isolate(2);
    net.propose(1, b"j").unwrap();
    let last = net.node(1).raft.raft_log.last_index();
    assert!(net.node(1).raft.raft_log.committed < last);
    net.recover();
    tick_n(&mut net, 1, 1);
    let last = net.node(1).raft.raft_log.last_index();
    assert_eq!(net.node(1).raft.raft_log.committed, last);
    propose_cc(&mut net, 1, ConfChangeV2::leave_joint()).unwrap();
    let cs = conf(&mut net, 1);
    assert_eq!(cs.voters, vec![1, 2]);
    assert_eq!(cs.learners, vec![3]);
    assert!(cs.voters_outgoing.is_empty());
    // Leaving again is refused.
    let r = propose_cc(&mut net, 1, ConfChangeV2::leave_joint());
    assert!(matches!(r, Err(Error::ConfChangeError(_))));
}

#[test]
fn test_conf_change_refused_while_one_is_pending() {
    let mut net = Network::new(3);
    net.hup(1);
    net.isolate(2);
    net.isolate(3);
    propose_cc(
        &mut net,
        1,
        ConfChangeV2::simple(ConfChangeType::AddLearnerNode, 4),
    )
    .unwrap();
    let r = propose_cc(
        &mut net,
        1,
        ConfChangeV2::simple(ConfChangeType::AddLearnerNode, 5),
    );
    assert!(matches!(r, Err(Error::ConfChangeError(_))));
}

#[test]
fn test_remove_leader_itself() {
    let mut net = Network::new_with(3, cfg_pq);
    net.hup(1);
    net.propose(1, b"a").unwrap();
    propose_cc(
        &mut net,
        1,
        ConfChangeV2::simple(ConfChangeType::RemoveNode, 1),
    )
    .unwrap();
    // The leader kept leading until the removal was committed and applied, then stepped
    // down; the remaining voters have the new config.
    assert_eq!(net.node(1).raft.state, StateRole::Follower);
    assert_eq!(conf(&mut net, 2).voters, vec![2, 3]);
    assert!(!net.node(1).raft.promotable());
    tick_all(&mut net, 30);
    let l = leader_of(&mut net, &[2, 3]).expect("new leader among remaining voters");
    net.propose(l, b"b").unwrap();
    for id in [2, 3] {
        assert_eq!(net.applied_data(id), vec![b"a".to_vec(), b"b".to_vec()]);
    }
}

#[test]
fn test_remove_leader_via_joint_keeps_leading_joint_config() {
    let mut net = Network::new(3);
    net.hup(1);
    let cc = ConfChangeV2::with_changes(
        ConfChangeTransition::JointImplicit,
        [(ConfChangeType::RemoveNode, 1)],
    );
    propose_cc(&mut net, 1, cc).unwrap();
    tick_n(&mut net, 1, 2);
    assert_eq!(conf(&mut net, 2).voters, vec![2, 3]);
    assert!(conf(&mut net, 2).voters_outgoing.is_empty());
    assert_ne!(net.node(1).raft.state, StateRole::Leader);
}

#[test]
fn test_demote_leader_via_joint_keeps_leading_joint_config() {
    // A leader demoted to learner is in `learners_next` while joint: it is still a voter of
    // the outgoing half and keeps leading until the joint config is left (as for removal).
    let mut net = Network::new(3);
    net.hup(1);
    let cc = ConfChangeV2::with_changes(
        ConfChangeTransition::JointExplicit,
        [(ConfChangeType::AddLearnerNode, 1)],
    );
    propose_cc(&mut net, 1, cc).unwrap();
    let cs = conf(&mut net, 1);
    assert_eq!(cs.voters_outgoing, vec![1, 2, 3]);
    assert_eq!(cs.learners_next, vec![1]);
    assert_eq!(net.node(1).raft.state, StateRole::Leader);
    assert!(!net.node(1).raft.is_learner);
    net.propose(1, b"x").unwrap();
    assert_eq!(net.applied_data(2), vec![b"x".to_vec()]);
    propose_cc(&mut net, 1, ConfChangeV2::leave_joint()).unwrap();
    let cs = conf(&mut net, 2);
    assert_eq!((cs.voters, cs.learners), (vec![2, 3], vec![1]));
    assert_ne!(net.node(1).raft.state, StateRole::Leader);
    assert!(net.node(1).raft.is_learner);
}

// ------------------------------------------------------------------ snapshots

#[test]
fn test_snapshot_install_for_lagging_follower() {
    let mut net = Network::new(3);
    net.hup(1);
    net.isolate(3);
    for i in 0..10u8 {
        net.propose(1, &[i]).unwrap();
    }
    // Compact the leader's log so that 3 can only catch up by snapshot.
    let applied = net.node(1).raft.raft_log.applied;
    let cs = conf(&mut net, 1);
    net.node(1)
        .store()
        .wl()
        .create_snapshot(applied, cs, b"state".to_vec().into())
        .unwrap();
    net.recover();
    tick_n(&mut net, 1, 2);
    let c1 = net.node(1).raft.raft_log.committed;
    let n3 = net.node(3);
    assert_eq!(n3.raft.raft_log.first_index(), applied + 1);
    assert_eq!(n3.store().rl().snapshot().data.as_ref(), b"state");
    assert_eq!(n3.raft.raft_log.committed, c1);
    assert_eq!(
        net.node(1).raft.prs.progress[&3].state,
        ProgressState::Replicate
    );
    // The follower keeps replicating after the snapshot.
    net.propose(1, b"post").unwrap();
    assert_eq!(net.applied_data(3).last().unwrap(), b"post");
}

#[test]
fn test_snapshot_failure_is_retried() {
    let mut net = Network::new(3);
    net.hup(1);
    net.isolate(3);
    for i in 0..5u8 {
        net.propose(1, &[i]).unwrap();
    }
    let applied = net.node(1).raft.raft_log.applied;
    let cs = conf(&mut net, 1);
    net.node(1)
        .store()
        .wl()
        .create_snapshot(applied, cs, vec![].into())
        .unwrap();
    net.recover();
    net.ignore(MessageType::MsgSnapshot);
    tick_n(&mut net, 1, 2);
    assert_eq!(
        net.node(1).raft.prs.progress[&3].state,
        ProgressState::Snapshot
    );
    // The transport reports the failed transfer; the leader probes and retries.
    net.node(1).report_snapshot(3, false);
    net.recover();
    tick_n(&mut net, 1, 3);
    let c1 = net.node(1).raft.raft_log.committed;
    assert_eq!(net.node(3).raft.raft_log.committed, c1);
}

#[test]
fn test_snapshot_chunk_proto_roundtrip_and_transport_proto_parses() {
    // transport.proto must parse with pure-Rust protox (raft-kv compiles it with tonic).
    let fds = protox::compile(
        ["transport.proto"],
        [concat!(env!("CARGO_MANIFEST_DIR"), "/proto")],
    )
    .expect("transport.proto parses");
    let names: Vec<String> = fds.file.iter().map(|f| f.name().to_string()).collect();
    assert!(names.contains(&"transport.proto".to_string()));
    let transport = fds
        .file
        .iter()
        .find(|f| f.name() == "transport.proto")
        .unwrap();
    let msgs: Vec<&str> = transport.message_type.iter().map(|m| m.name()).collect();
    for want in ["GroupMessage", "MessageBatch", "SnapshotChunk"] {
        assert!(msgs.contains(&want), "{want} missing: {msgs:?}");
    }
    assert_eq!(transport.service[0].method.len(), 2);
    // Snapshot metadata round-trips.
    use prost::Message as _;
    let s = Snapshot {
        data: b"blob".to_vec().into(),
        metadata: Some(SnapshotMetadata {
            index: 5,
            term: 2,
            conf_state: Some(voters(&[1, 2])),
        }),
    };
    assert_eq!(Snapshot::decode(s.encode_to_vec().as_slice()).unwrap(), s);
}

// ------------------------------------------------------------------ leadership transfer

#[test]
fn test_leader_transfer_to_up_to_date_follower() {
    let mut net = Network::new_with(3, cfg_pq);
    net.hup(1);
    net.propose(1, b"a").unwrap();
    net.node(1).transfer_leader(2);
    net.send(vec![]);
    assert_eq!(net.node(2).raft.state, StateRole::Leader);
    assert_eq!(net.node(1).raft.state, StateRole::Follower);
    net.propose(2, b"b").unwrap();
    assert_eq!(net.applied_data(1), vec![b"a".to_vec(), b"b".to_vec()]);
}

#[test]
fn test_leader_transfer_to_lagging_follower_catches_up_first() {
    let mut net = Network::new_with(3, cfg_pq);
    net.hup(1);
    net.isolate(3);
    net.propose(1, b"a").unwrap();
    net.recover();
    net.node(1).transfer_leader(3);
    // Proposals are dropped while the transfer is in progress.
    assert_eq!(
        net.node(1).propose(vec![], b"x".to_vec()),
        Err(Error::ProposalDropped)
    );
    net.send(vec![]);
    assert_eq!(net.node(3).raft.state, StateRole::Leader);
    assert_eq!(net.applied_data(3), vec![b"a".to_vec()]);
}

#[test]
fn test_leader_transfer_times_out_and_aborts() {
    let mut net = Network::new_with(3, cfg_pq);
    net.hup(1);
    net.isolate(3);
    net.node(1).transfer_leader(3);
    net.send(vec![]);
    assert_eq!(net.node(1).raft.lead_transferee, Some(3));
    tick_n(&mut net, 1, 10);
    assert_eq!(net.node(1).raft.lead_transferee, None);
    assert_eq!(net.node(1).raft.state, StateRole::Leader);
    net.propose(1, b"ok").unwrap();
}

#[test]
fn test_transfer_to_learner_or_self_ignored() {
    let mut net = Network::new(3);
    net.hup(1);
    net.node(1).transfer_leader(1);
    assert_eq!(net.node(1).raft.lead_transferee, None);
    net.node(1).transfer_leader(9);
    assert_eq!(net.node(1).raft.lead_transferee, None);
}

// ------------------------------------------------------------------ reads

fn read_states(net: &mut Network, id: u64) -> Vec<(u64, Vec<u8>)> {
    net.send(vec![]);
    net.take_reads(id)
}

/// Network that keeps read states for inspection (drain() would hand them to the app).
fn read_net(option: ReadOnlyOption) -> Network {
    Network::new_with(3, move |id| {
        let mut c = cfg_pq(id);
        c.read_only_option = option;
        c
    })
}

fn do_read(net: &mut Network, id: u64, ctx: &[u8]) -> Vec<(u64, Vec<u8>)> {
    net.node(id).read_index(ctx.to_vec()).unwrap();
    net.send(vec![]);
    net.take_reads(id)
}

#[test]
fn test_read_index_on_leader_confirms_with_heartbeat_round() {
    let mut net = read_net(ReadOnlyOption::Safe);
    net.hup(1);
    net.propose(1, b"a").unwrap();
    let commit = net.node(1).raft.raft_log.committed;
    // Isolated leader: the heartbeat round cannot complete, so no read is served.
    net.isolate(1);
    net.node(1).read_index(b"r1".to_vec()).unwrap();
    net.send(vec![]);
    assert!(read_states(&mut net, 1).is_empty());
    net.recover();
    let got = do_read(&mut net, 1, b"r2");
    assert!(got.contains(&(commit, b"r2".to_vec())), "{got:?}");
}

#[test]
fn test_read_index_forwarded_from_follower() {
    let mut net = read_net(ReadOnlyOption::Safe);
    net.hup(1);
    net.propose(1, b"a").unwrap();
    let commit = net.node(1).raft.raft_log.committed;
    let got = do_read(&mut net, 2, b"f1");
    assert_eq!(got, vec![(commit, b"f1".to_vec())]);
    // Without a known leader a follower rejects the read.
    let mut n = new_node(7, &[7, 8], 10, 1);
    assert!(matches!(
        n.read_index(b"x".to_vec()),
        Err(Error::NotLeader { leader: 0 })
    ));
}

#[test]
fn test_new_leader_serves_no_read_until_it_commits_in_its_term() {
    let mut net = Network::new(3);
    net.hup(1);
    // Stop appends so the new leader's noop cannot commit.
    net.ignore(MessageType::MsgAppendResponse);
    let t = net.node(1).raft.term;
    net.node(2).raft.become_follower(t, 0);
    net.hup(2);
    assert_eq!(net.node(2).raft.state, StateRole::Leader);
    net.node(2).read_index(b"early".to_vec()).unwrap();
    net.send(vec![]);
    assert!(read_states(&mut net, 2).is_empty());
    net.recover();
    tick_n(&mut net, 2, 2); // heartbeats resume replication; the noop commits
    let got = do_read(&mut net, 2, b"later");
    let commit = net.node(2).raft.raft_log.committed;
    assert!(got.contains(&(commit, b"early".to_vec())), "{got:?}");
    assert!(got.contains(&(commit, b"later".to_vec())), "{got:?}");
}

#[test]
fn test_lease_read_served_locally_and_falls_back_when_expired() {
    let mut net = read_net(ReadOnlyOption::LeaseBased);
    net.hup(1);
    tick_n(&mut net, 1, 2); // heartbeat round establishes the lease
    assert!(net.node(1).raft.lease_valid());
    let commit = net.node(1).raft.raft_log.committed;
    net.node(1).read_index(b"l1".to_vec()).unwrap();
    // Served immediately, without any message.
    assert!(net.node(1).raft.msgs.is_empty());
    assert_eq!(read_states(&mut net, 1), vec![(commit, b"l1".to_vec())]);
    // Isolated: the lease expires after election_tick - drift ticks.
    net.isolate(1);
    tick_n(&mut net, 1, 10);
    assert!(!net.node(1).raft.lease_valid());
    net.node(1).read_index(b"l2".to_vec()).unwrap();
    net.send(vec![]);
    assert!(read_states(&mut net, 1).is_empty());
}

#[test]
fn test_lease_disabled_after_leadership_transfer_started() {
    let mut net = read_net(ReadOnlyOption::LeaseBased);
    net.hup(1);
    tick_n(&mut net, 1, 2);
    assert!(net.node(1).raft.lease_valid());
    // Drop TimeoutNow so that 1 stays leader after sending it.
    net.ignore(MessageType::MsgTimeoutNow);
    net.node(1).transfer_leader(2);
    net.send(vec![]);
    tick_n(&mut net, 1, 10); // transfer aborted
    assert_eq!(net.node(1).raft.state, StateRole::Leader);
    assert!(
        !net.node(1).raft.lease_valid(),
        "lease must stay disabled in this term"
    );
}

#[test]
fn test_lease_config_requires_check_quorum() {
    let mut c = cfg(1, 10, 1);
    c.read_only_option = ReadOnlyOption::LeaseBased;
    assert!(matches!(c.validate(), Err(Error::ConfigInvalid(_))));
}

// ------------------------------------------------------------------ quiescence

#[test]
fn test_quiescence_hibernate_and_wake() {
    let mut net = Network::new_with(3, cfg_pq);
    net.hup(1);
    net.propose(1, b"a").unwrap();
    tick_n(&mut net, 1, 2); // followers learn the commit index
    assert!(net.node(1).can_hibernate());
    assert!(net.node(1).hibernate());
    net.send(vec![]);
    for id in 1..=3 {
        assert!(net.node(id).is_hibernating(), "node {id}");
    }
    // Nobody campaigns while the group sleeps, however long it is ticked.
    tick_all(&mut net, 100);
    for id in 2..=3 {
        assert_eq!(net.node(id).raft.state, StateRole::Follower);
    }
    let term = net.node(1).raft.term;
    // A proposal wakes the leader, whose messages wake the followers.
    net.propose(1, b"b").unwrap();
    for id in 1..=3 {
        assert!(!net.node(id).is_hibernating(), "node {id}");
        assert_eq!(net.applied_data(id), vec![b"a".to_vec(), b"b".to_vec()]);
    }
    assert_eq!(net.node(1).raft.term, term);
    assert_eq!(net.node(1).raft.state, StateRole::Leader);
}

#[test]
fn test_quiescence_follower_woken_by_caller_elects_when_leader_gone() {
    let mut net = Network::new_with(3, cfg_pq);
    net.hup(1);
    tick_n(&mut net, 1, 2);
    assert!(net.node(1).hibernate());
    net.send(vec![]);
    // The leader crashes silently; the transport notices and wakes the followers.
    net.isolate(1);
    net.node(2).wake();
    net.node(3).wake();
    let ids = [2, 3];
    for _ in 0..40 {
        for id in ids {
            net.node(id).tick();
        }
        net.send(vec![]);
    }
    assert!(leader_of(&mut net, &ids).is_some());
}

#[test]
fn test_quiescence_spurious_wake_does_not_depose_sleeping_leader() {
    let mut net = Network::new_with(3, cfg_pq);
    net.hup(1);
    tick_n(&mut net, 1, 2);
    let term = net.node(1).raft.term;
    assert!(net.node(1).hibernate());
    net.send(vec![]);
    // The caller wakes node 3 by mistake; like a real driver, it ticks only awake nodes.
    net.node(3).wake();
    for _ in 0..60 {
        for id in 1..=3 {
            if !net.node(id).is_hibernating() {
                net.node(id).tick();
            }
        }
        net.send(vec![]);
    }
    assert_eq!(net.node(1).raft.state, StateRole::Leader);
    assert_eq!(net.node(1).raft.term, term);
}

#[test]
fn test_cannot_hibernate_with_lagging_follower() {
    let mut net = Network::new_with(3, cfg_pq);
    net.hup(1);
    net.isolate(3);
    net.propose(1, b"a").unwrap();
    assert!(!net.node(1).can_hibernate());
    assert!(
        !net.node(2).can_hibernate(),
        "followers never initiate hibernation"
    );
}

// ------------------------------------------------------------------ replication

#[test]
fn test_fast_log_backtracking_needs_few_round_trips() {
    // Follower 2 has a long divergent tail of an old term; the leader finds the conflict
    // point in a couple of round trips instead of one per entry.
    let leader_terms: Vec<u64> = std::iter::repeat_n(1, 10)
        .chain(std::iter::repeat_n(3, 50))
        .collect();
    let follower_terms: Vec<u64> = std::iter::repeat_n(1, 10)
        .chain(std::iter::repeat_n(2, 80))
        .collect();
    let l = new_node_with(
        &cfg(1, 10, 1),
        storage_with_log(&[1, 2, 3], &leader_terms, 3),
    );
    let f = new_node_with(
        &cfg(2, 10, 1),
        storage_with_log(&[1, 2, 3], &follower_terms, 3),
    );
    let t = new_node_with(
        &cfg(3, 10, 1),
        storage_with_log(&[1, 2, 3], &leader_terms, 3),
    );
    let mut peers = std::collections::BTreeMap::new();
    peers.insert(1, l);
    peers.insert(2, f);
    peers.insert(3, t);
    let mut net = Network::from_nodes(peers);
    let rejects = std::rc::Rc::new(std::cell::Cell::new(0));
    let r2 = rejects.clone();
    net.msg_hook = Some(Box::new(move |m: &mut Message| {
        if m.msg_type() == MessageType::MsgAppendResponse && m.reject {
            r2.set(r2.get() + 1);
        }
        true
    }));
    net.hup(1);
    assert_eq!(net.node(1).raft.state, StateRole::Leader);
    assert_eq!(net.log_of(1), net.log_of(2));
    assert!(rejects.get() <= 3, "{} rejections", rejects.get());
}

#[test]
fn test_propose_batch_sends_one_append_per_follower() {
    let mut net = Network::new(3);
    net.hup(1);
    // Followers in Replicate state: every proposal would otherwise go out on its own.
    net.propose(1, b"warm").unwrap();
    let batch: Vec<(bytes::Bytes, bytes::Bytes)> = (0..5u8)
        .map(|i| (vec![i].into(), vec![b'v', i].into()))
        .collect();
    net.node(1).propose_batch(batch).unwrap();
    let out = net.drain_node(1);
    let appends: Vec<&Message> = out
        .iter()
        .filter(|m| m.msg_type() == MessageType::MsgAppend)
        .collect();
    assert_eq!(appends.len(), 2, "{appends:?}");
    for m in &appends {
        assert_eq!(m.entries.len(), 5);
        assert_eq!(m.entries[4].data.as_ref(), b"v\x04");
        assert_eq!(m.entries[4].context.as_ref(), &[4u8]);
    }
    net.send(out);
    for id in 1..=3 {
        let data = net.applied_data(id);
        assert_eq!(data.len(), 6, "node {id}: {data:?}");
        assert_eq!(data[5], b"v\x04".to_vec());
    }
    // A follower refuses a batch as it refuses one proposal, naming the leader.
    let r = net
        .node(2)
        .propose_batch(vec![(bytes::Bytes::new(), bytes::Bytes::from_static(b"x"))]);
    assert!(matches!(r, Err(Error::NotLeader { leader: 1 })), "{r:?}");
}

#[test]
fn test_inflight_window_bounds_pipelined_appends() {
    let mut c = cfg(1, 10, 1);
    c.max_inflight_msgs = 2;
    let mut n = new_node_with(&c, new_storage(&[1, 2]));
    n.raft.become_candidate();
    n.raft.become_leader();
    let _ = read_messages(&mut n);
    let mut r = msg(2, 1, MessageType::MsgAppendResponse, 1);
    r.index = 1;
    n.raft.step(r).unwrap();
    let _ = read_messages(&mut n);
    assert_eq!(n.raft.prs.progress[&2].state, ProgressState::Replicate);
    let mut sent = 0;
    for i in 0..5u8 {
        propose(&mut n, &[i]).unwrap();
        sent += read_messages(&mut n)
            .iter()
            .filter(|m| m.msg_type() == MessageType::MsgAppend)
            .count();
    }
    assert_eq!(sent, 2, "window of 2 in-flight appends");
    assert!(n.raft.prs.progress[&2].is_paused());
    // An ack frees the window and the rest is sent in one batch.
    let mut r = msg(2, 1, MessageType::MsgAppendResponse, 1);
    r.index = 3;
    n.raft.step(r).unwrap();
    let msgs = read_messages(&mut n);
    let ents: usize = msgs.iter().map(|m| m.entries.len()).sum();
    assert_eq!(ents, 3);
}

#[test]
fn test_entries_batched_per_message_by_size() {
    let mut net = Network::new_with(2, |id| {
        let mut c = cfg(id, 10, 1);
        c.max_size_per_msg = 64;
        c
    });
    net.hup(1);
    net.isolate(2);
    for _ in 0..20 {
        net.propose(1, &[7u8; 20]).unwrap();
    }
    net.recover();
    let max_batch = std::rc::Rc::new(std::cell::Cell::new(0usize));
    let mb = max_batch.clone();
    net.msg_hook = Some(Box::new(move |m: &mut Message| {
        if m.msg_type() == MessageType::MsgAppend {
            mb.set(mb.get().max(m.entries.len()));
        }
        true
    }));
    tick_n(&mut net, 1, 1);
    assert_eq!(net.applied_data(2).len(), 20);
    let b = max_batch.get();
    assert!((2..=3).contains(&b), "batch size {b}");
}

#[test]
fn test_max_uncommitted_size_drops_proposals() {
    let mut c = cfg(1, 10, 1);
    c.max_uncommitted_size = 100;
    let mut n = new_node_with(&c, new_storage(&[1, 2]));
    n.raft.become_candidate();
    n.raft.become_leader();
    propose(&mut n, &[0u8; 60]).unwrap();
    propose(&mut n, &[0u8; 30]).unwrap();
    assert_eq!(propose(&mut n, &[0u8; 30]), Err(Error::ProposalDropped));
}

#[test]
fn test_proposal_on_follower_returns_not_leader_hint() {
    let mut net = Network::new(3);
    net.hup(1);
    assert_eq!(
        net.node(2).propose(vec![], b"x".to_vec()),
        Err(Error::NotLeader { leader: 1 })
    );
    let e = net
        .node(2)
        .step(new_message(2, MessageType::MsgHup, 2))
        .unwrap_err();
    assert_eq!(e, Error::StepLocalMsg);
    assert!(!e.to_string().is_empty());
}

#[test]
fn test_ready_separates_immediate_and_persisted_messages() {
    let mut n = new_node(1, &[1, 2, 3], 10, 1);
    hup(&mut n);
    let rd = n.ready();
    // Votes are only sent once the vote for self (hard state) is durable.
    assert!(rd.messages.is_empty());
    assert_eq!(rd.persisted_messages.len(), 2);
    assert!(rd.hard_state.is_some() && rd.must_sync);
    let _ = n.advance(rd);
    for id in [2, 3] {
        n.raft
            .step(msg(id, 1, MessageType::MsgRequestVoteResponse, 1))
            .unwrap();
    }
    let rd = n.ready();
    // The new leader's appends may go out before its own entries are durable.
    assert_eq!(rd.entries.len(), 1);
    assert!(rd
        .messages
        .iter()
        .all(|m| m.msg_type() == MessageType::MsgAppend));
    assert_eq!(rd.messages.len(), 2);
    assert!(rd.persisted_messages.is_empty());
}

#[test]
fn test_batched_ready_of_many_groups_in_one_write() {
    // 50 single-node groups; collect all Readies, "write" them together, then advance.
    let mut groups: Vec<Node> = (0..50).map(|_| new_node(1, &[1], 10, 1)).collect();
    for g in groups.iter_mut() {
        g.campaign().unwrap();
    }
    for round in 0..3 {
        let mut readies = Vec::new();
        for g in groups.iter_mut() {
            if round > 0 {
                g.propose(vec![], vec![round as u8]).unwrap();
            }
            readies.push(g.ready());
        }
        // One combined write for all groups.
        for (g, rd) in groups.iter_mut().zip(readies.iter()) {
            let s = g.store().clone();
            let mut w = s.wl();
            w.append(&rd.entries).unwrap();
            if let Some(hs) = &rd.hard_state {
                w.set_hardstate(*hs);
            }
        }
        for (g, rd) in groups.iter_mut().zip(readies) {
            let l = g.advance(rd);
            let _ = l;
            g.advance_apply();
        }
    }
    for g in &groups {
        assert_eq!(g.raft.state, StateRole::Leader);
        assert_eq!(g.raft.raft_log.committed, 3);
    }
}

// ------------------------------------------------------------------ robustness

#[test]
fn test_malformed_messages_never_panic() {
    let mut rng = SplitMix64::new(7);
    for round in 0..600u64 {
        let mut net = Network::new_with(3, cfg_pq);
        net.hup(1);
        net.propose(1, b"a").unwrap();
        for _ in 0..20 {
            let mut m = Message {
                msg_type: (rng.next_u64() % 22) as i32,
                to: 1 + rng.next_u64() % 3,
                from: rng.next_u64() % 5,
                term: rng.next_u64() % 4,
                index: rng.next_u64() % 10,
                log_term: rng.next_u64() % 4,
                commit: rng.next_u64() % 12,
                reject: rng.next_u64().is_multiple_of(2),
                reject_hint: rng.next_u64() % 10,
                ..Default::default()
            };
            for _ in 0..rng.next_u64() % 3 {
                let mut e = new_entry(rng.next_u64() % 4, rng.next_u64() % 10, vec![1]);
                if rng.next_u64().is_multiple_of(4) {
                    e.set_entry_type(EntryType::EntryConfChangeV2);
                    e.data = vec![0xff, 0x01].into();
                }
                m.entries.push(e);
            }
            if rng.next_u64().is_multiple_of(5) {
                m.snapshot = Some(Snapshot {
                    data: Default::default(),
                    metadata: Some(SnapshotMetadata {
                        index: rng.next_u64() % 10,
                        term: rng.next_u64() % 4,
                        conf_state: Some(voters(&[1, 2, 3])),
                    }),
                });
            }
            if rng.next_u64().is_multiple_of(7) {
                // Extreme values.
                let pick = |x: u64| [0, 1, u64::MAX, u64::MAX - 1, 1 << 40][(x % 5) as usize];
                m.index = pick(rng.next_u64());
                m.commit = pick(rng.next_u64());
                m.reject_hint = pick(rng.next_u64());
                m.log_term = pick(rng.next_u64());
                if rng.next_u64().is_multiple_of(2) {
                    m.term = pick(rng.next_u64());
                }
            }
            let to = m.to;
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let _ = net.node(to).step(m.clone());
                let _ = read_messages(net.node(to));
            }));
            assert!(r.is_ok(), "round {round}: panicked on {m:?}");
        }
    }
}

#[test]
fn test_snapshot_with_extreme_index_or_term_is_ignored() {
    // A MsgSnapshot at index u64::MAX used to overflow `index + 1` in the unstable log
    // (panic in debug builds, wrapped offset in release).
    let mut net = Network::new_with(3, cfg_pq);
    net.hup(1);
    let term = net.node(2).raft.term;
    let committed = net.node(2).raft.raft_log.committed;
    for (index, sterm) in [(u64::MAX, term), (u64::MAX - 1, term + 1), (50, 0)] {
        let mut m = msg(1, 2, MessageType::MsgSnapshot, term);
        m.snapshot = Some(Snapshot {
            data: Default::default(),
            metadata: Some(SnapshotMetadata {
                index,
                term: sterm,
                conf_state: Some(voters(&[1, 2, 3])),
            }),
        });
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = net.node(2).step(m);
            let _ = read_messages(net.node(2));
        }));
        assert!(r.is_ok(), "panicked on snapshot ({index}, {sterm})");
        assert_eq!(net.node(2).raft.raft_log.committed, committed);
        assert!(net.node(2).raft.raft_log.unstable.snapshot.is_none());
    }
}

#[test]
fn test_entry_helpers() {
    let e: Entry = new_entry(1, 2, b"x".to_vec());
    assert_eq!((e.term, e.index), (1, 2));
}

#[test]
fn test_restart_from_storage_with_applied_index() {
    let mut net = Network::new(3);
    net.hup(1);
    for i in 0..5u8 {
        net.propose(1, &[i]).unwrap();
    }
    let store = net.node(2).store().clone();
    let commit = store.rl().hard_state().commit;
    assert!(commit >= 6);
    // Restart node 2 from its storage, telling raft what the state machine applied.
    let mut c = cfg(2, 10, 1);
    c.applied = commit - 2;
    let mut n = new_node_with(&c, store.clone());
    assert_eq!(n.raft.term, net.node(1).raft.term);
    let mut applied = Vec::new();
    let _ = drain(&mut n, &mut applied);
    let idx: Vec<u64> = applied.iter().map(|e| e.index).collect();
    assert_eq!(idx, vec![commit - 1, commit]);
    // An applied index beyond the commit index is a configuration error, not a panic.
    c.applied = commit + 10;
    assert!(matches!(
        raft::RawNode::new(&c, store),
        Err(Error::ConfigInvalid(_))
    ));
}

/// A 3-node network with `skip_bcast_commit` and heartbeats rare enough not to interfere.
fn lazy_commit_net(option: ReadOnlyOption) -> Network {
    Network::new_with(3, move |id| {
        let mut c = cfg_pq(id);
        c.heartbeat_tick = 5;
        c.skip_bcast_commit = true;
        c.read_only_option = option;
        c
    })
}

/// Delivers by hand what node 1 (the leader) has to send, then the followers' acks, and
/// nothing the acks cause; returns the leader's commit index after the acks.
fn append_and_ack_by_hand(net: &mut Network) -> u64 {
    for m in net.drain_node(1) {
        net.node(m.to).step(m).unwrap();
    }
    for id in [2, 3] {
        for m in net.drain_node(id) {
            net.node(1).step(m).unwrap();
        }
    }
    net.node(1).raft.raft_log.committed
}

/// Proposes `data` on node 1 (the leader), then [`append_and_ack_by_hand`].
fn commit_by_hand(net: &mut Network, data: &[u8]) -> u64 {
    net.node(1).propose(vec![], data.to_vec()).unwrap();
    append_and_ack_by_hand(net)
}

fn appends(out: &[Message]) -> Vec<&Message> {
    out.iter()
        .filter(|m| m.msg_type() == MessageType::MsgAppend)
        .collect()
}

#[test]
fn test_skip_bcast_commit_rides_on_the_next_append() {
    let mut net = lazy_commit_net(ReadOnlyOption::Safe);
    net.hup(1);
    net.propose(1, b"warm").unwrap();
    let commit = commit_by_hand(&mut net, b"a");
    // The acks committed "a", but no append goes out for that alone.
    let out = net.drain_node(1);
    assert!(appends(&out).is_empty(), "{out:?}");
    assert!(net.node(2).raft.raft_log.committed < commit);
    // The next proposal's appends carry it: one message per follower, not two.
    net.node(1).propose(vec![], b"b".to_vec()).unwrap();
    let out = net.drain_node(1);
    let a = appends(&out);
    assert_eq!(a.len(), 2, "{out:?}");
    for m in &a {
        assert_eq!(m.commit, commit);
        assert_eq!(m.entries.len(), 1);
    }
    net.send(out);
    assert!(net.node(2).raft.raft_log.committed >= commit);
}

#[test]
fn test_skip_bcast_commit_is_sent_at_the_next_tick_when_nothing_is_proposed() {
    let mut net = lazy_commit_net(ReadOnlyOption::Safe);
    net.hup(1);
    net.propose(1, b"warm").unwrap();
    let commit = commit_by_hand(&mut net, b"a");
    assert!(appends(&net.drain_node(1)).is_empty());
    // One tick later (well before a heartbeat is due) the followers hear of it.
    net.node(1).tick();
    let out = net.drain_node(1);
    let a = appends(&out);
    assert_eq!(a.len(), 2, "{out:?}");
    assert!(a.iter().all(|m| m.commit == commit && m.entries.is_empty()));
    // Announced once: the next tick sends nothing more.
    net.send(out);
    net.node(1).tick();
    assert!(appends(&net.drain_node(1)).is_empty());
    for id in [2, 3] {
        assert_eq!(net.node(id).raft.raft_log.committed, commit, "node {id}");
    }
}

#[test]
fn test_skip_bcast_commit_announces_a_forwarded_proposal_at_once() {
    let mut net = lazy_commit_net(ReadOnlyOption::Safe);
    net.hup(1);
    net.propose(1, b"warm").unwrap();
    // Node 2 forwards its client's write; it answers the client when it learns the commit.
    let mut m = msg(2, 1, MessageType::MsgPropose, 0);
    m.entries = vec![new_entry(0, 0, &b"fwd"[..])];
    net.node(1).raft.step(m).unwrap();
    let commit = append_and_ack_by_hand(&mut net);
    let out = net.drain_node(1);
    let a = appends(&out);
    assert_eq!(a.len(), 2, "{out:?}");
    assert!(a.iter().all(|m| m.commit == commit));
    net.send(out);
    assert_eq!(net.node(2).raft.raft_log.committed, commit);
    assert_eq!(
        net.applied_data(2).last().map(|d| d.as_slice()),
        Some(&b"fwd"[..])
    );
}

#[test]
fn test_skip_bcast_commit_read_response_carries_the_commit_to_the_follower() {
    let mut net = lazy_commit_net(ReadOnlyOption::LeaseBased);
    net.hup(1);
    tick_n(&mut net, 1, 5); // a heartbeat round establishes the lease
    assert!(net.node(1).raft.lease_valid());
    let commit = commit_by_hand(&mut net, b"a");
    net.send(vec![]);
    assert!(net.node(2).raft.raft_log.committed < commit);
    // The lease answers at once, without a heartbeat that would carry the commit; the
    // response itself does, so the follower can apply up to the read index right away.
    let got = do_read(&mut net, 2, b"r");
    assert_eq!(got, vec![(commit, b"r".to_vec())]);
    assert_eq!(net.node(2).raft.raft_log.committed, commit);
}
