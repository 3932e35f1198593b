//! In-memory pipeline benchmark (no criterion, to keep builds light).
//!
//! `CARGO_TARGET_DIR=/work/target-raft cargo run -p raft --release --example bench`
//!
//! Measures entries committed (and applied on the leader) per second for
//! 1. one 3-node group with batched proposals, and
//! 2. 100 3-node groups stepped together, their Readies "written" as one batch per round.
//!
//! Messages are delivered in-process; storage is MemStorage, so this measures the
//! library's CPU cost per entry, not disk or network.

use std::time::Instant;

use raft::eraftpb::{ConfState, Message};
use raft::{Config, MemStorage, RawNode, StateRole};

struct Group {
    nodes: Vec<RawNode<MemStorage>>,
    committed_on_leader: u64,
}

impl Group {
    fn new(group_id: u64) -> Group {
        let cs = ConfState {
            voters: vec![1, 2, 3],
            ..Default::default()
        };
        let nodes = (1..=3)
            .map(|id| {
                let c = Config {
                    id,
                    election_tick: 10,
                    heartbeat_tick: 2,
                    max_size_per_msg: 1 << 20,
                    max_inflight_msgs: 256,
                    seed: group_id * 10 + id,
                    ..Default::default()
                };
                RawNode::new(&c, MemStorage::new_bootstrapped(cs.clone())).unwrap()
            })
            .collect();
        let mut g = Group {
            nodes,
            committed_on_leader: 0,
        };
        g.nodes[0].campaign().unwrap();
        while g.pump() {}
        assert_eq!(g.nodes[0].role(), StateRole::Leader);
        g.committed_on_leader = 0;
        g
    }

    /// One round: handle every node's Ready (persist, apply) and deliver messages.
    /// Returns whether anything happened.
    fn pump(&mut self) -> bool {
        let mut msgs: Vec<Message> = Vec::new();
        let mut any = false;
        for (i, n) in self.nodes.iter_mut().enumerate() {
            if !n.has_ready() {
                continue;
            }
            any = true;
            let mut rd = n.ready();
            msgs.append(&mut rd.messages);
            {
                let s = n.store().clone();
                let mut w = s.wl();
                if let Some(snap) = &rd.snapshot {
                    w.apply_snapshot(snap.clone()).unwrap();
                }
                w.append(&rd.entries).unwrap();
                if let Some(hs) = &rd.hard_state {
                    w.set_hardstate(*hs);
                }
            }
            msgs.append(&mut rd.persisted_messages);
            if i == 0 {
                self.committed_on_leader += rd.committed_entries.len() as u64;
            }
            let mut l = n.advance(rd);
            if i == 0 {
                self.committed_on_leader += l.committed_entries.len() as u64;
            }
            msgs.append(&mut l.messages);
            n.advance_apply();
        }
        for m in msgs {
            let to = m.to as usize - 1;
            let _ = self.nodes[to].step(m);
        }
        any
    }

    fn compact(&mut self) {
        for n in self.nodes.iter_mut() {
            let applied = n.applied_index();
            let s = n.store().clone();
            let first = s.rl().all_entries().first().map(|e| e.index).unwrap_or(0);
            if applied > first + 10_000 {
                s.wl().compact(applied - 1000).unwrap();
            }
        }
    }
}

fn single_group(total: u64, batch: u64, payload: usize) -> f64 {
    let mut g = Group::new(1);
    let data = vec![0u8; payload];
    let start = Instant::now();
    let mut proposed = 0;
    while g.committed_on_leader < total {
        if proposed < total {
            for _ in 0..batch {
                g.nodes[0].propose(vec![], data.clone()).unwrap();
                proposed += 1;
            }
        }
        g.pump();
        if proposed % 20_000 == 0 {
            g.compact();
        }
    }
    g.committed_on_leader as f64 / start.elapsed().as_secs_f64()
}

fn many_groups(groups: u64, per_group: u64, batch: u64, payload: usize) -> f64 {
    let mut gs: Vec<Group> = (0..groups).map(Group::new).collect();
    let data = vec![0u8; payload];
    let start = Instant::now();
    let mut proposed = 0;
    loop {
        let mut done = true;
        for g in gs.iter_mut() {
            if proposed < per_group {
                for _ in 0..batch {
                    g.nodes[0].propose(vec![], data.clone()).unwrap();
                }
            }
            // In a real store the Readies of all groups go into one disk write here.
            g.pump();
            if g.committed_on_leader < per_group {
                done = false;
            }
        }
        proposed += batch;
        if done {
            break;
        }
    }
    let total: u64 = gs.iter().map(|g| g.committed_on_leader).sum();
    total as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let payload = 128;
    println!("raft in-memory pipeline benchmark ({payload}-byte entries, 3 replicas, MemStorage)");
    for batch in [1u64, 16, 256] {
        let r = single_group(200_000, batch, payload);
        println!("1 group,    batch {batch:>3}: {r:>12.0} entries committed/s");
    }
    for batch in [1u64, 16, 64] {
        let r = many_groups(100, 5_000, batch, payload);
        println!("100 groups, batch {batch:>3}: {r:>12.0} entries committed/s (all groups)");
    }
}
