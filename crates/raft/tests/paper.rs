//! One test per rule of the Raft paper (Ongaro & Ousterhout, "In Search of an
//! Understandable Consensus Algorithm"), modelled on etcd raft's raft_paper_test.go.
//! Section numbers refer to the paper.

mod common;

use common::*;
use raft::eraftpb::{Entry, Message, MessageType};
use raft::util::new_entry;
use raft::StateRole;

fn ents_of(terms: &[(u64, u64)]) -> Vec<Entry> {
    terms
        .iter()
        .map(|(t, i)| new_entry(*t, *i, vec![]))
        .collect()
}

fn sorted(mut v: Vec<Message>) -> Vec<Message> {
    v.sort_by_key(|m| (m.to, m.msg_type));
    v
}

/// Makes `node` leader of a 3-node group with the noop committed.
fn leader_with_noop_committed(node: &mut Node) {
    node.raft.become_candidate();
    node.raft.become_leader();
    let _ = read_messages(node);
    let li = node.raft.raft_log.last_index();
    for id in [2, 3] {
        if node.raft.prs.progress.contains_key(&id) {
            let mut m = msg(id, 1, MessageType::MsgAppendResponse, node.raft.term);
            m.index = li;
            node.raft.step(m).unwrap();
        }
    }
    let _ = read_messages(node);
    assert_eq!(node.raft.raft_log.committed, li);
}

// §5.1: if one server's current term is smaller than the other's, it updates its term
// to the larger value; a candidate or leader that discovers a higher term reverts to
// follower.
fn update_term_from_message(role: StateRole) {
    let mut n = new_node(1, &[1, 2, 3], 10, 1);
    match role {
        StateRole::Follower => n.raft.become_follower(1, 2),
        StateRole::Candidate => n.raft.become_candidate(),
        StateRole::Leader => {
            n.raft.become_candidate();
            n.raft.become_leader();
        }
        StateRole::PreCandidate => unreachable!(),
    }
    n.raft.step(msg(2, 1, MessageType::MsgAppend, 2)).unwrap();
    assert_eq!(n.raft.term, 2);
    assert_eq!(n.raft.state, StateRole::Follower);
}

#[test]
fn test_follower_update_term_from_message() {
    update_term_from_message(StateRole::Follower);
}

#[test]
fn test_candidate_update_term_from_message() {
    update_term_from_message(StateRole::Candidate);
}

#[test]
fn test_leader_update_term_from_message() {
    update_term_from_message(StateRole::Leader);
}

// §5.1: a server rejects (ignores) requests with a stale term.
#[test]
fn test_reject_stale_term_message() {
    let mut n = new_node(1, &[1, 2, 3], 10, 1);
    n.raft.become_follower(2, 0);
    let mut m = msg(2, 1, MessageType::MsgAppend, 1);
    m.entries = ents_of(&[(1, 1)]);
    n.raft.step(m).unwrap();
    assert_eq!(
        n.raft.raft_log.last_index(),
        0,
        "stale append must not be accepted"
    );
    assert_eq!(n.raft.term, 2);
}

// §5.2: when servers start up, they begin as followers.
#[test]
fn test_start_as_follower() {
    let n = new_node(1, &[1, 2, 3], 10, 1);
    assert_eq!(n.raft.state, StateRole::Follower);
}

// §5.2: a leader sends periodic heartbeats to all followers.
#[test]
fn test_leader_bcast_beat() {
    let hi = 1;
    let mut n = new_node(1, &[1, 2, 3], 10, hi);
    n.raft.become_candidate();
    n.raft.become_leader();
    let _ = read_messages(&mut n);
    for _ in 0..hi {
        n.tick();
    }
    let msgs = sorted(read_messages(&mut n));
    assert_eq!(msgs.len(), 2);
    for (m, to) in msgs.iter().zip([2, 3]) {
        assert_eq!(m.msg_type(), MessageType::MsgHeartbeat);
        assert_eq!(m.to, to);
        assert_eq!(m.term, 1);
        assert_eq!(m.commit, 0);
    }
}

// §5.2: a follower that hears nothing for an election timeout becomes a candidate,
// increments its term, votes for itself and requests votes from all others.
fn nonleader_start_election(role: StateRole) {
    let et = 10;
    let mut n = new_node(1, &[1, 2, 3], et, 1);
    match role {
        StateRole::Follower => n.raft.become_follower(1, 2),
        _ => n.raft.become_candidate(),
    }
    for _ in 1..2 * et {
        n.tick();
    }
    assert_eq!(n.raft.term, 2);
    assert_eq!(n.raft.state, StateRole::Candidate);
    assert_eq!(n.raft.vote, 1);
    let msgs = sorted(read_messages(&mut n));
    assert_eq!(msgs.len(), 2);
    for (m, to) in msgs.iter().zip([2, 3]) {
        assert_eq!(m.msg_type(), MessageType::MsgRequestVote);
        assert_eq!((m.to, m.term), (to, 2));
    }
}

#[test]
fn test_follower_start_election() {
    nonleader_start_election(StateRole::Follower);
}

#[test]
fn test_candidate_start_new_election() {
    nonleader_start_election(StateRole::Candidate);
}

// §5.2: a candidate wins with a majority, stays candidate if undecided and becomes a
// follower when a majority rejects.
#[test]
fn test_leader_election_in_one_round_rpc() {
    type Case = (u64, Vec<(u64, bool)>, StateRole);
    let cases: Vec<Case> = vec![
        (1, vec![], StateRole::Leader),
        (3, vec![(2, true), (3, true)], StateRole::Leader),
        (3, vec![(2, true)], StateRole::Leader),
        (
            5,
            vec![(2, true), (3, true), (4, true), (5, true)],
            StateRole::Leader,
        ),
        (5, vec![(2, true), (3, true), (4, true)], StateRole::Leader),
        (5, vec![(2, true), (3, true)], StateRole::Leader),
        (3, vec![(2, false), (3, false)], StateRole::Follower),
        (
            5,
            vec![(2, false), (3, false), (4, false), (5, false)],
            StateRole::Follower,
        ),
        (
            5,
            vec![(2, true), (3, false), (4, false), (5, false)],
            StateRole::Follower,
        ),
        (3, vec![], StateRole::Candidate),
        (5, vec![(2, true)], StateRole::Candidate),
        (5, vec![(2, false), (3, false)], StateRole::Candidate),
        (5, vec![], StateRole::Candidate),
    ];
    for (i, (size, votes, want)) in cases.into_iter().enumerate() {
        let ids: Vec<u64> = (1..=size).collect();
        let mut n = new_node(1, &ids, 10, 1);
        hup(&mut n);
        for (id, granted) in votes {
            let mut m = msg(id, 1, MessageType::MsgRequestVoteResponse, n.raft.term);
            m.reject = !granted;
            n.raft.step(m).unwrap();
        }
        assert_eq!(n.raft.state, want, "case {i}");
        assert_eq!(n.raft.term, 1, "case {i}");
    }
}

// §5.2: each server votes for at most one candidate per term, first come first served.
#[test]
fn test_follower_vote() {
    let cases = [
        (0, 2, false),
        (0, 3, false),
        (2, 2, false),
        (3, 3, false),
        (2, 3, true),
        (3, 2, true),
    ];
    for (i, (vote, nvote, wreject)) in cases.into_iter().enumerate() {
        let mut n = new_node(1, &[1, 2, 3], 10, 1);
        n.raft.term = 1;
        n.raft.vote = vote;
        n.raft
            .step(msg(nvote, 1, MessageType::MsgRequestVote, 1))
            .unwrap();
        let msgs = read_messages(&mut n);
        assert_eq!(msgs.len(), 1, "case {i}");
        assert_eq!(msgs[0].msg_type(), MessageType::MsgRequestVoteResponse);
        assert_eq!(msgs[0].reject, wreject, "case {i}");
    }
}

// §5.2: a candidate that receives an append from a leader with term >= its own becomes
// a follower.
#[test]
fn test_candidate_fallback() {
    for term in [1, 2] {
        let mut n = new_node(1, &[1, 2, 3], 10, 1);
        hup(&mut n);
        assert_eq!(n.raft.state, StateRole::Candidate);
        n.raft
            .step(msg(2, 1, MessageType::MsgAppend, term))
            .unwrap();
        assert_eq!(n.raft.state, StateRole::Follower);
        assert_eq!(n.raft.term, term);
    }
}

// §5.2: election timeouts are chosen randomly from [et, 2et).
fn election_timeout_randomized(role: StateRole) {
    let et = 10;
    let mut n = new_node(1, &[1, 2, 3], et, 1);
    let mut seen = std::collections::HashSet::new();
    for round in 0..50 * et {
        match role {
            StateRole::Follower => n.raft.become_follower(n.raft.term + 1, 2),
            _ => n.raft.become_candidate(),
        }
        let mut time = 0;
        while read_messages(&mut n).is_empty() {
            n.tick();
            time += 1;
            assert!(time < 3 * et, "round {round}: no election");
        }
        seen.insert(time);
    }
    for d in et..2 * et {
        assert!(seen.contains(&d), "timeout {d} never chosen: {seen:?}");
    }
    assert!(seen.iter().all(|t| (et..2 * et).contains(t)));
}

#[test]
fn test_follower_election_timeout_randomized() {
    election_timeout_randomized(StateRole::Follower);
}

#[test]
fn test_candidate_election_timeout_randomized() {
    election_timeout_randomized(StateRole::Candidate);
}

// §5.2: randomized timeouts make it rare that two servers time out together.
#[test]
fn test_follower_election_timeout_nonconflict() {
    let et = 10;
    let size = 5u64;
    let ids: Vec<u64> = (1..=size).collect();
    let mut conflicts = 0;
    for round in 0..1000u64 {
        let mut nodes: Vec<Node> = ids
            .iter()
            .map(|id| {
                let mut c = cfg(*id, et, 1);
                c.seed = round * 31 + id;
                new_node_with(&c, new_storage(&ids))
            })
            .collect();
        for n in nodes.iter_mut() {
            n.raft.become_follower(n.raft.term + 1, 0);
        }
        let mut timed_out = 0;
        while timed_out == 0 {
            for n in nodes.iter_mut() {
                n.tick();
                if !read_messages(n).is_empty() {
                    timed_out += 1;
                }
            }
        }
        if timed_out > 1 {
            conflicts += 1;
        }
    }
    assert!(conflicts <= 300, "conflict rate too high: {conflicts}/1000");
}

// §5.3: the leader appends a proposal to its log and issues AppendEntries in parallel.
#[test]
fn test_leader_start_replication() {
    let mut n = new_node(1, &[1, 2, 3], 10, 1);
    leader_with_noop_committed(&mut n);
    let li = n.raft.raft_log.last_index();
    propose(&mut n, b"some data").unwrap();
    assert_eq!(n.raft.raft_log.last_index(), li + 1);
    let mut rd = n.ready();
    // The appends may be sent before the leader persisted its own entry.
    let msgs = sorted(std::mem::take(&mut rd.messages));
    assert_eq!(rd.entries.len(), 1);
    assert_eq!(msgs.len(), 2);
    for (m, to) in msgs.iter().zip([2, 3]) {
        assert_eq!(m.msg_type(), MessageType::MsgAppend);
        assert_eq!((m.to, m.index, m.log_term, m.commit), (to, li, 1, li));
        assert_eq!(m.entries.len(), 1);
        assert_eq!(m.entries[0].data.as_ref(), b"some data");
    }
}

// §5.3: an entry is committed once replicated on a majority; the leader then applies it.
#[test]
fn test_leader_commit_entry() {
    let mut n = new_node(1, &[1, 2, 3], 10, 1);
    leader_with_noop_committed(&mut n);
    let li = n.raft.raft_log.last_index();
    propose(&mut n, b"some data").unwrap();
    for m in read_messages(&mut n) {
        let mut r = msg(m.to, 1, MessageType::MsgAppendResponse, m.term);
        r.index = m.index + m.entries.len() as u64;
        n.raft.step(r).unwrap();
    }
    assert_eq!(n.raft.raft_log.committed, li + 1);
    let mut applied = Vec::new();
    let msgs = sorted(drain(&mut n, &mut applied));
    assert_eq!(applied.last().unwrap().data.as_ref(), b"some data");
    for (m, to) in msgs.iter().zip([2, 3]) {
        assert_eq!(m.to, to);
        assert_eq!(m.msg_type(), MessageType::MsgAppend);
        assert_eq!(m.commit, li + 1);
    }
}

// §5.3: the leader commits an entry once a majority acknowledges it (and not before).
#[test]
fn test_leader_acknowledge_commit() {
    let cases: Vec<(u64, Vec<u64>, bool)> = vec![
        (1, vec![], true),
        (3, vec![], false),
        (3, vec![2], true),
        (3, vec![2, 3], true),
        (5, vec![], false),
        (5, vec![2], false),
        (5, vec![2, 3], true),
        (5, vec![2, 3, 4], true),
        (5, vec![2, 3, 4, 5], true),
    ];
    for (i, (size, acceptors, wack)) in cases.into_iter().enumerate() {
        let ids: Vec<u64> = (1..=size).collect();
        let mut n = new_node(1, &ids, 10, 1);
        n.raft.become_candidate();
        n.raft.become_leader();
        let _ = read_messages(&mut n);
        let li = n.raft.raft_log.last_index();
        for id in 2..=size {
            let mut m = msg(id, 1, MessageType::MsgAppendResponse, 1);
            m.index = li;
            n.raft.step(m).unwrap();
        }
        let _ = read_messages(&mut n);
        propose(&mut n, b"some data").unwrap();
        for m in read_messages(&mut n) {
            if acceptors.contains(&m.to) {
                let mut r = msg(m.to, 1, MessageType::MsgAppendResponse, m.term);
                r.index = m.index + m.entries.len() as u64;
                n.raft.step(r).unwrap();
            }
        }
        assert_eq!(n.raft.raft_log.committed > li, wack, "case {i}");
    }
}

// §5.3: committing an entry also commits all preceding entries, including those of
// previous leaders.
#[test]
fn test_leader_commit_preceding_entries() {
    let cases: Vec<Vec<u64>> = vec![vec![], vec![2], vec![1, 1], vec![1, 2]];
    for (i, terms) in cases.into_iter().enumerate() {
        let store = storage_with_log(&[1, 2, 3], &terms, 2);
        let mut n = new_node_with(&cfg(1, 10, 1), store);
        n.raft.become_candidate();
        n.raft.become_leader();
        propose(&mut n, b"some data").unwrap();
        for m in read_messages(&mut n) {
            let mut r = msg(m.to, 1, MessageType::MsgAppendResponse, m.term);
            r.index = m.index + m.entries.len() as u64;
            n.raft.step(r).unwrap();
        }
        let mut applied = Vec::new();
        let _ = drain(&mut n, &mut applied);
        let li = terms.len() as u64;
        assert_eq!(applied.len() as u64, li + 2, "case {i}");
        assert_eq!(n.raft.raft_log.committed, li + 2, "case {i}");
    }
}

// §5.3: once a follower learns an entry is committed, it applies it.
#[test]
fn test_follower_commit_entry() {
    let cases: Vec<(Vec<Entry>, u64)> = vec![
        (ents_of(&[(1, 1)]), 1),
        (ents_of(&[(1, 1), (1, 2)]), 2),
        (ents_of(&[(1, 1), (1, 2)]), 1),
    ];
    for (i, (ents, commit)) in cases.into_iter().enumerate() {
        let mut n = new_node(1, &[1, 2, 3], 10, 1);
        n.raft.become_follower(1, 2);
        let mut m = msg(2, 1, MessageType::MsgAppend, 1);
        m.entries = ents.clone();
        m.commit = commit;
        n.raft.step(m).unwrap();
        assert_eq!(n.raft.raft_log.committed, commit, "case {i}");
        let mut applied = Vec::new();
        let _ = drain(&mut n, &mut applied);
        assert_eq!(applied.len() as u64, commit, "case {i}");
    }
}

// §5.3 (log matching): a follower refuses an append whose preceding entry (index, term)
// does not match its log.
#[test]
fn test_follower_check_msg_append() {
    let cases = [
        (0, 0, 1, false, 0), // matches committed entries
        (1, 1, 1, false, 0), // matches committed entries
        (2, 2, 2, false, 0), // matches uncommitted entries
        (1, 2, 2, true, 1),  // mismatch with an existing entry
        (3, 3, 3, true, 2),  // entry does not exist
    ];
    for (i, (term, index, windex, wreject, whint)) in cases.into_iter().enumerate() {
        let store = storage_with_log(&[1, 2, 3], &[1, 2], 0);
        let mut n = new_node_with(&cfg(1, 10, 1), store);
        n.raft.raft_log.commit_to(1);
        n.raft.become_follower(2, 2);
        let mut m = msg(2, 1, MessageType::MsgAppend, 2);
        m.log_term = term;
        m.index = index;
        n.raft.step(m).unwrap();
        let msgs = read_messages(&mut n);
        assert_eq!(msgs.len(), 1, "case {i}");
        assert_eq!(msgs[0].msg_type(), MessageType::MsgAppendResponse);
        assert_eq!(msgs[0].reject, wreject, "case {i}");
        assert_eq!(msgs[0].index, windex, "case {i}");
        if wreject {
            assert_eq!(msgs[0].reject_hint, whint, "case {i}");
        }
    }
}

// §5.3: a follower deletes conflicting entries and appends new ones; matching entries
// are kept.
#[test]
fn test_follower_append_entries() {
    type Case = (u64, u64, Vec<(u64, u64)>, Vec<(u64, u64)>);
    let cases: Vec<Case> = vec![
        (2, 2, vec![(3, 3)], vec![(1, 1), (2, 2), (3, 3)]),
        (1, 1, vec![(3, 2), (4, 3)], vec![(1, 1), (3, 2), (4, 3)]),
        (0, 0, vec![(1, 1)], vec![(1, 1), (2, 2)]),
        (0, 0, vec![(3, 1)], vec![(3, 1)]),
    ];
    for (i, (index, term, ents, want)) in cases.into_iter().enumerate() {
        let store = storage_with_log(&[1, 2, 3], &[1, 2], 0);
        let mut n = new_node_with(&cfg(1, 10, 1), store);
        n.raft.become_follower(2, 2);
        let mut m = msg(2, 1, MessageType::MsgAppend, 4);
        m.log_term = term;
        m.index = index;
        m.entries = ents
            .iter()
            .map(|(t, idx)| new_entry(*t, *idx, vec![]))
            .collect();
        n.raft.step(m).unwrap();
        let _ = read_messages(&mut n);
        let li = n.raft.raft_log.last_index();
        let got: Vec<(u64, u64)> = n
            .raft
            .raft_log
            .slice(1, li + 1, None)
            .unwrap()
            .iter()
            .map(|e| (e.term, e.index))
            .collect();
        assert_eq!(got, want, "case {i}");
    }
}

// §5.3, figure 7: the leader brings every follower's log into consistency with its own.
#[test]
fn test_leader_sync_follower_log() {
    let leader_log = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
    let followers: Vec<Vec<u64>> = vec![
        vec![1, 1, 1, 4, 4, 5, 5, 6, 6],
        vec![1, 1, 1, 4],
        vec![1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
        vec![1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
        vec![1, 1, 1, 4, 4, 4, 4],
        vec![1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
    ];
    for (i, flog) in followers.into_iter().enumerate() {
        let lead = new_node_with(&cfg(1, 10, 1), storage_with_log(&[1, 2, 3], &leader_log, 8));
        let mut fol = new_node_with(&cfg(2, 10, 1), storage_with_log(&[1, 2, 3], &flog, 8 - 1));
        fol.raft.term = 7;
        let _ = read_messages(&mut fol);
        // Node 3 votes for the leader (its log is empty), so the leader wins term 8.
        let third = new_node(3, &[1, 2, 3], 10, 1);
        let mut peers = std::collections::BTreeMap::new();
        peers.insert(1, lead);
        peers.insert(2, fol);
        peers.insert(3, third);
        let mut net = Network::from_nodes(peers);
        net.node(1).raft.term = 7;
        net.hup(1);
        assert_eq!(net.node(1).raft.state, StateRole::Leader, "case {i}");
        net.propose(1, b"x").unwrap();
        assert_eq!(net.log_of(1), net.log_of(2), "case {i}");
    }
}

// §5.4.1: a vote request carries the candidate's last log index and term.
#[test]
fn test_vote_request() {
    let cases = [(vec![(1u64, 1u64)], 2u64), (vec![(1, 1), (2, 2)], 3)];
    for (i, (ents, wterm)) in cases.into_iter().enumerate() {
        let mut n = new_node(1, &[1, 2, 3], 10, 1);
        let mut m = msg(2, 1, MessageType::MsgAppend, wterm - 1);
        m.entries = ents
            .iter()
            .map(|(t, idx)| new_entry(*t, *idx, vec![]))
            .collect();
        n.raft.step(m).unwrap();
        let _ = read_messages(&mut n);
        for _ in 1..20 {
            n.tick();
        }
        let msgs = sorted(read_messages(&mut n));
        assert_eq!(msgs.len(), 2, "case {i}");
        for m in msgs {
            assert_eq!(m.msg_type(), MessageType::MsgRequestVote);
            assert_eq!(m.term, wterm);
            assert_eq!(m.index, ents.last().unwrap().1);
            assert_eq!(m.log_term, ents.last().unwrap().0);
        }
    }
}

// §5.4.1: a voter denies its vote if its own log is more up to date than the candidate's.
#[test]
fn test_voter() {
    let cases: Vec<(Vec<u64>, u64, u64, bool)> = vec![
        (vec![1], 1, 1, false),
        (vec![1], 1, 2, false),
        (vec![1, 1], 1, 1, true),
        (vec![1], 2, 1, false),
        (vec![1], 2, 2, false),
        (vec![1, 1], 2, 1, false),
        (vec![2], 1, 1, true),
        (vec![2], 1, 2, true),
        (vec![2, 2], 1, 1, true),
        (vec![1], 1, 0, true),
    ];
    for (i, (log, logterm, index, wreject)) in cases.into_iter().enumerate() {
        let store = storage_with_log(&[1, 2], &log, 0);
        let mut n = new_node_with(&cfg(1, 10, 1), store);
        let mut m = msg(2, 1, MessageType::MsgRequestVote, 3);
        m.log_term = logterm;
        m.index = index;
        n.raft.step(m).unwrap();
        let msgs = read_messages(&mut n);
        assert_eq!(msgs.len(), 1, "case {i}");
        assert_eq!(msgs[0].msg_type(), MessageType::MsgRequestVoteResponse);
        assert_eq!(msgs[0].reject, wreject, "case {i}");
    }
}

// §5.4.2 (figure 8): a leader only commits entries of its current term by counting
// replicas; entries of earlier terms commit indirectly.
#[test]
fn test_leader_only_commits_log_from_current_term() {
    let cases = [(1, 0), (2, 0), (3, 3)];
    for (i, (index, wcommit)) in cases.into_iter().enumerate() {
        let store = storage_with_log(&[1, 2], &[1, 2], 2);
        let mut n = new_node_with(&cfg(1, 10, 1), store);
        // Become leader at term 3.
        n.raft.become_candidate();
        n.raft.become_leader();
        let _ = read_messages(&mut n);
        // Propose an entry of the current term.
        let mut r = msg(2, 1, MessageType::MsgAppendResponse, n.raft.term);
        r.index = index;
        n.raft.step(r).unwrap();
        let _ = read_messages(&mut n);
        assert_eq!(n.raft.raft_log.committed, wcommit, "case {i}");
    }
}

// Figure 8 replayed: S1 (term 4 leader) replicates an entry of term 2 to a majority.
// It must NOT be committed by counting replicas, because S5 (last term 3) can still win
// an election and overwrite it (figure 8 (d)). Once an entry of the current term is on a
// majority, both commit (figure 8 (e)).
fn figure8_network(block_current_term: bool) -> Network {
    let logs: [(u64, Vec<u64>, u64); 5] = [
        (1, vec![1, 2], 3),
        (2, vec![1, 2], 3),
        (3, vec![1], 3),
        (4, vec![1], 3),
        (5, vec![1, 3], 3),
    ];
    let mut peers = std::collections::BTreeMap::new();
    for (id, log, term) in logs {
        let mut c = cfg(id, 10, 1);
        c.max_size_per_msg = 0; // one entry per append
        peers.insert(
            id,
            new_node_with(&c, storage_with_log(&[1, 2, 3, 4, 5], &log, term)),
        );
    }
    let mut net = Network::from_nodes(peers);
    // S5 is partitioned from S1 (otherwise S1 would overwrite S5's term-3 entry).
    net.cut(1, 5);
    if block_current_term {
        // Strip entries of the new term from appends: only old entries get through.
        net.msg_hook = Some(Box::new(|m: &mut Message| {
            if m.msg_type() == MessageType::MsgAppend {
                m.entries.retain(|e| e.term != 4);
            }
            true
        }));
    }
    net
}

#[test]
fn test_figure_8_commit_rule() {
    let mut net = figure8_network(true);
    net.hup(1);
    assert_eq!(net.node(1).raft.state, StateRole::Leader);
    assert_eq!(net.node(1).raft.term, 4);
    // The term-2 entry at index 2 is now on S1, S2 and S3: a majority.
    for id in [1, 2, 3] {
        assert_eq!(net.node(id).raft.raft_log.term(2).unwrap(), 2, "node {id}");
    }
    assert!(
        net.node(1).raft.raft_log.committed < 2,
        "figure 8: old-term entry committed"
    );
    // (d) S1 crashes; S5 wins (its last term 3 beats 2) and overwrites index 2.
    net.msg_hook = None;
    net.recover();
    net.isolate(1);
    net.hup(5); // term 4: everyone already voted for S1
    net.hup(5); // term 5
    assert_eq!(net.node(5).raft.state, StateRole::Leader);
    for id in 2..=5 {
        assert_eq!(net.node(id).raft.raft_log.term(2).unwrap(), 3, "node {id}");
        assert_eq!(net.log_of(id), net.log_of(5));
    }

    // (e) Alternatively, once S1 replicates an entry of its own term, both commit.
    let mut net = figure8_network(false);
    net.hup(1);
    assert_eq!(net.node(1).raft.state, StateRole::Leader);
    assert!(net.node(1).raft.raft_log.committed >= 3);
    assert_eq!(net.node(1).raft.raft_log.term(2).unwrap(), 2);
    // S5 can no longer win.
    net.recover();
    net.isolate(1);
    net.hup(5);
    net.hup(5);
    assert_ne!(net.node(5).raft.state, StateRole::Leader);
}

// ---------------------------------------------------------------------------------
// Figure 3 safety properties, checked on randomized runs of a 5-node network with
// message loss, competing candidates and proposals (no PreVote / CheckQuorum, the
// paper's algorithm).

struct History {
    /// term -> leader
    leaders: std::collections::HashMap<u64, u64>,
    /// (term, leader) -> log of the leader when first seen as leader
    leader_logs: std::collections::HashMap<u64, Vec<(u64, u64)>>,
    /// index -> (term of the entry, term in which it was first seen committed)
    committed: std::collections::BTreeMap<u64, (u64, u64)>,
}

fn raft_log_of(n: &mut Node) -> Vec<(u64, u64)> {
    let li = n.raft.raft_log.last_index();
    n.raft
        .raft_log
        .slice(1, li + 1, None)
        .unwrap()
        .iter()
        .map(|e| (e.index, e.term))
        .collect()
}

/// Runs `rounds` random rounds and calls `check` after every round.
fn random_run(
    seed: u64,
    rounds: usize,
    mut check: impl FnMut(&mut Network, &mut History),
) -> History {
    let mut rng = raft::util::SplitMix64::new(seed);
    let mut net = Network::new(5);
    let mut h = History {
        leaders: Default::default(),
        leader_logs: Default::default(),
        committed: Default::default(),
    };
    for _ in 0..rounds {
        net.recover();
        for a in 1..=5 {
            for b in 1..=5 {
                if a != b && rng.next_u64().is_multiple_of(3) {
                    net.drop(a, b, 0.5);
                }
            }
        }
        match rng.next_u64() % 3 {
            0 => net.hup(1 + rng.next_u64() % 5),
            1 => {
                let id = 1 + rng.next_u64() % 5;
                let _ = net.propose(id, &rng.next_u64().to_le_bytes());
            }
            _ => {
                let id = 1 + rng.next_u64() % 5;
                net.tick(id);
            }
        }
        check(&mut net, &mut h);
    }
    record(&mut net, &mut h);
    h
}

fn record(net: &mut Network, h: &mut History) {
    for id in 1..=5 {
        let n = net.node(id);
        let (term, c) = (n.raft.term, n.raft.raft_log.committed);
        for i in 1..=c {
            let t = n.raft.raft_log.term(i).unwrap();
            h.committed.entry(i).or_insert((t, term));
        }
    }
}

// §5.2, figure 3 "Election Safety": at most one leader can be elected in a given term.
#[test]
fn test_election_safety() {
    let mut terms_with_leader = 0;
    let mut committed = 0;
    for seed in 0..30 {
        let h = random_run(seed, 150, |net, h| {
            for id in 1..=5 {
                let n = net.node(id);
                if n.raft.state == StateRole::Leader {
                    let l = *h.leaders.entry(n.raft.term).or_insert(id);
                    assert_eq!(l, id, "seed {seed}: two leaders in term {}", n.raft.term);
                }
            }
        });
        terms_with_leader += h.leaders.len();
        committed += h.committed.len();
    }
    // The runs are not vacuous: many elections and commits happened.
    assert!(
        terms_with_leader > 100 && committed > 300,
        "{terms_with_leader} {committed}"
    );
}

// §5.3, figure 3 "Leader Append-Only": a leader never overwrites or deletes entries in
// its log; it only appends new entries.
#[test]
fn test_leader_append_only() {
    for seed in 0..30 {
        random_run(seed, 150, |net, h| {
            for id in 1..=5 {
                let n = net.node(id);
                if n.raft.state != StateRole::Leader {
                    continue;
                }
                let term = n.raft.term;
                let log = raft_log_of(n);
                let prev = h.leader_logs.entry(term).or_insert_with(|| log.clone());
                assert!(
                    log.starts_with(prev),
                    "seed {seed}: leader {id} rewrote its log in term {term}"
                );
                *prev = log;
            }
        });
    }
}

// §5.3, figure 3 "Log Matching": if two logs contain an entry with the same index and
// term, the logs are identical in all entries up through that index.
#[test]
fn test_log_matching() {
    for seed in 0..30 {
        random_run(seed, 150, |net, _| {
            let logs: Vec<Vec<(u64, u64)>> = (1..=5).map(|id| raft_log_of(net.node(id))).collect();
            for a in &logs {
                for b in &logs {
                    for (i, (ea, eb)) in a.iter().zip(b.iter()).enumerate() {
                        if ea == eb {
                            assert_eq!(
                                a[..=i],
                                b[..=i],
                                "seed {seed}: log matching violated at {}",
                                ea.0
                            );
                        }
                    }
                }
            }
        });
    }
}

// §5.4, figure 3 "Leader Completeness": if an entry is committed in a term, it is present
// in the logs of the leaders of all higher terms.
#[test]
fn test_leader_completeness() {
    for seed in 0..30 {
        random_run(seed, 150, |net, h| {
            record(net, h);
            for id in 1..=5 {
                let n = net.node(id);
                if n.raft.state != StateRole::Leader {
                    continue;
                }
                for (&i, &(t, seen)) in h.committed.iter() {
                    if n.raft.term > seen {
                        assert_eq!(
                            n.raft.raft_log.term(i).unwrap(),
                            t,
                            "seed {seed}: leader {id} of term {} lacks committed entry {i}",
                            n.raft.term
                        );
                    }
                }
            }
        });
    }
}

// §5.4.3, figure 3 "State Machine Safety": if a server has applied a log entry at a given
// index, no other server will ever apply a different entry for that index.
#[test]
fn test_state_machine_safety() {
    for seed in 0..30 {
        random_run(seed, 150, |net, _| {
            let applied: Vec<Vec<(u64, u64, Vec<u8>)>> = (1..=5)
                .map(|id| {
                    net.applied[&id]
                        .iter()
                        .map(|e| (e.index, e.term, e.data.to_vec()))
                        .collect()
                })
                .collect();
            for a in &applied {
                for b in &applied {
                    let n = a.len().min(b.len());
                    assert_eq!(
                        a[..n],
                        b[..n],
                        "seed {seed}: nodes applied different entries"
                    );
                }
            }
        });
    }
}
