//! Test harness shared by the paper and scenario tests: nodes driven through the real
//! RawNode/Ready contract over MemStorage, and an in-process network with drop/cut rules.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use prost::Message as _;
use raft::eraftpb::{ConfChangeV2, ConfState, Entry, EntryType, HardState, Message, MessageType};
use raft::util::{new_entry, new_message, SplitMix64};
use raft::{Config, MemStorage, RawNode, ReadState, Storage};

pub type Node = RawNode<MemStorage>;

/// A hook run on every message before delivery; returning false drops it.
pub type MsgHook = Box<dyn FnMut(&mut Message) -> bool>;

/// Config used by paper tests: no PreVote/CheckQuorum (pure paper Raft).
pub fn cfg(id: u64, election: usize, heartbeat: usize) -> Config {
    Config {
        id,
        election_tick: election,
        heartbeat_tick: heartbeat,
        max_size_per_msg: u64::MAX,
        max_inflight_msgs: 256,
        check_quorum: false,
        pre_vote: false,
        ..Default::default()
    }
}

pub fn voters(ids: &[u64]) -> ConfState {
    ConfState {
        voters: ids.to_vec(),
        ..Default::default()
    }
}

/// Storage bootstrapped with `peers` as voters.
pub fn new_storage(peers: &[u64]) -> MemStorage {
    MemStorage::new_with_conf_state(voters(peers))
}

pub fn new_node_with(c: &Config, store: MemStorage) -> Node {
    RawNode::new(c, store).expect("new node")
}

pub fn new_node(id: u64, peers: &[u64], election: usize, heartbeat: usize) -> Node {
    new_node_with(&cfg(id, election, heartbeat), new_storage(peers))
}

/// Storage holding the given (term) log: entry i+1 has term terms[i].
pub fn storage_with_log(peers: &[u64], terms: &[u64], hs_term: u64) -> MemStorage {
    let s = new_storage(peers);
    let ents: Vec<Entry> = terms
        .iter()
        .enumerate()
        .map(|(i, t)| new_entry(*t, i as u64 + 1, vec![]))
        .collect();
    s.wl().append(&ents).unwrap();
    s.wl().set_hardstate(HardState {
        term: hs_term,
        ..Default::default()
    });
    s
}

/// Handles every Ready: persists, applies (including conf changes), and returns all
/// outgoing messages (as if persisted and sent). Applied entries go to `applied`.
pub fn drain(node: &mut Node, applied: &mut Vec<Entry>) -> Vec<Message> {
    drain_with_reads(node, applied, &mut Vec::new())
}

/// Like [`drain`], also collecting read states.
pub fn drain_with_reads(
    node: &mut Node,
    applied: &mut Vec<Entry>,
    reads: &mut Vec<ReadState>,
) -> Vec<Message> {
    let mut out = Vec::new();
    while node.has_ready() {
        let mut rd = node.ready();
        reads.append(&mut rd.read_states);
        out.append(&mut rd.messages);
        {
            let store = node.store().clone();
            let mut w = store.wl();
            if let Some(s) = &rd.snapshot {
                w.apply_snapshot(s.clone()).unwrap();
            }
            w.append(&rd.entries).unwrap();
            if let Some(hs) = &rd.hard_state {
                w.set_hardstate(*hs);
            }
        }
        out.append(&mut rd.persisted_messages);
        let committed = std::mem::take(&mut rd.committed_entries);
        apply(node, &committed, applied);
        let mut light = node.advance(rd);
        out.append(&mut light.messages);
        let committed = std::mem::take(&mut light.committed_entries);
        apply(node, &committed, applied);
        node.advance_apply();
    }
    out
}

fn apply(node: &mut Node, ents: &[Entry], applied: &mut Vec<Entry>) {
    for e in ents {
        if e.entry_type() == EntryType::EntryConfChangeV2 {
            let cc = ConfChangeV2::decode(e.data.as_ref()).unwrap();
            if let Ok(cs) = node.apply_conf_change(&cc) {
                node.store().wl().set_conf_state(cs);
            }
        }
        applied.push(e.clone());
    }
}

/// Persists and returns the outgoing messages of one node, ignoring applied entries.
pub fn read_messages(node: &mut Node) -> Vec<Message> {
    let mut v = Vec::new();
    drain(node, &mut v)
}

pub fn msg(from: u64, to: u64, t: MessageType, term: u64) -> Message {
    let mut m = new_message(to, t, from);
    m.term = term;
    m
}

pub fn hup(node: &mut Node) {
    node.raft
        .step(new_message(node.raft.id, MessageType::MsgHup, node.raft.id))
        .unwrap();
}

pub fn propose(node: &mut Node, data: &[u8]) -> raft::Result<()> {
    node.propose(vec![], data.to_vec())
}

/// An in-process network of nodes. Messages are delivered in FIFO order until quiet.
pub struct Network {
    pub peers: BTreeMap<u64, Node>,
    pub applied: HashMap<u64, Vec<Entry>>,
    /// Read states handed out by each node's Ready.
    pub reads: HashMap<u64, Vec<ReadState>>,
    dropm: HashMap<(u64, u64), f64>,
    ignorem: HashSet<i32>,
    rng: SplitMix64,
    /// Called on every message before delivery; return false to drop it.
    pub msg_hook: Option<MsgHook>,
}

impl Network {
    /// A network of nodes with ids 1..=n using `f` to build each config.
    pub fn new_with(n: u64, f: impl Fn(u64) -> Config) -> Network {
        let ids: Vec<u64> = (1..=n).collect();
        let mut peers = BTreeMap::new();
        for id in &ids {
            peers.insert(*id, new_node_with(&f(*id), new_storage(&ids)));
        }
        Self::from_nodes(peers)
    }

    /// Like `new_with`, but founders start from a bootstrap snapshot at index 1 so that
    /// nodes added later (with empty storage) can catch up by snapshot.
    pub fn new_bootstrapped(n: u64, f: impl Fn(u64) -> Config) -> Network {
        let ids: Vec<u64> = (1..=n).collect();
        let mut peers = BTreeMap::new();
        for id in &ids {
            peers.insert(
                *id,
                new_node_with(&f(*id), MemStorage::new_bootstrapped(voters(&ids))),
            );
        }
        Self::from_nodes(peers)
    }

    pub fn new(n: u64) -> Network {
        Self::new_with(n, |id| cfg(id, 10, 1))
    }

    pub fn from_nodes(peers: BTreeMap<u64, Node>) -> Network {
        Network {
            applied: peers.keys().map(|id| (*id, Vec::new())).collect(),
            reads: HashMap::new(),
            peers,
            dropm: HashMap::new(),
            ignorem: HashSet::new(),
            rng: SplitMix64::new(42),
            msg_hook: None,
        }
    }

    fn filter(&mut self, msgs: Vec<Message>) -> Vec<Message> {
        let mut out = Vec::new();
        for mut m in msgs {
            if self.ignorem.contains(&m.msg_type) {
                continue;
            }
            let p = self.dropm.get(&(m.from, m.to)).copied().unwrap_or(0.0);
            if p > 0.0 && (self.rng.next_u64() % 10_000) as f64 / 10_000.0 < p {
                continue;
            }
            if let Some(h) = self.msg_hook.as_mut() {
                if !h(&mut m) {
                    continue;
                }
            }
            out.push(m);
        }
        out
    }

    /// Delivers `msgs` and everything they cause until the network is quiet.
    pub fn send(&mut self, msgs: Vec<Message>) {
        let mut q: VecDeque<Message> = VecDeque::new();
        // Flush anything pending on every node first (e.g. after direct raft calls).
        for id in self.peers.keys().copied().collect::<Vec<_>>() {
            let out = self.drain_node(id);
            q.extend(self.filter(out));
        }
        q.extend(msgs);
        let mut steps = 0;
        while let Some(m) = q.pop_front() {
            steps += 1;
            assert!(steps < 1_000_000, "network did not quiesce");
            let to = m.to;
            let Some(p) = self.peers.get_mut(&to) else {
                continue;
            };
            let _ = p.raft.step(m);
            let out = self.drain_node(to);
            q.extend(self.filter(out));
        }
    }

    pub fn drain_node(&mut self, id: u64) -> Vec<Message> {
        let p = self.peers.get_mut(&id).unwrap();
        let applied = self.applied.entry(id).or_default();
        let reads = self.reads.entry(id).or_default();
        drain_with_reads(p, applied, reads)
    }

    /// Campaign at `id`.
    pub fn hup(&mut self, id: u64) {
        self.send(vec![new_message(id, MessageType::MsgHup, id)]);
    }

    /// Proposes `data` at `id` and delivers.
    pub fn propose(&mut self, id: u64, data: &[u8]) -> raft::Result<()> {
        let r = self
            .peers
            .get_mut(&id)
            .unwrap()
            .propose(vec![], data.to_vec());
        self.send(vec![]);
        r
    }

    pub fn tick(&mut self, id: u64) {
        self.peers.get_mut(&id).unwrap().tick();
        self.send(vec![]);
    }

    pub fn cut(&mut self, a: u64, b: u64) {
        self.drop(a, b, 1.0);
        self.drop(b, a, 1.0);
    }

    pub fn drop(&mut self, from: u64, to: u64, p: f64) {
        self.dropm.insert((from, to), p);
    }

    pub fn isolate(&mut self, id: u64) {
        let ids: Vec<u64> = self.peers.keys().copied().collect();
        for other in ids {
            if other != id {
                self.cut(id, other);
            }
        }
    }

    pub fn ignore(&mut self, t: MessageType) {
        self.ignorem.insert(t as i32);
    }

    pub fn recover(&mut self) {
        self.dropm.clear();
        self.ignorem.clear();
    }

    /// Takes the read states collected at `id` as (index, ctx).
    pub fn take_reads(&mut self, id: u64) -> Vec<(u64, Vec<u8>)> {
        self.reads
            .remove(&id)
            .unwrap_or_default()
            .into_iter()
            .map(|r| (r.index, r.request_ctx.to_vec()))
            .collect()
    }

    pub fn node(&mut self, id: u64) -> &mut Node {
        self.peers.get_mut(&id).unwrap()
    }

    /// Normal entries (non-empty data) applied at `id`.
    pub fn applied_data(&self, id: u64) -> Vec<Vec<u8>> {
        self.applied[&id]
            .iter()
            .filter(|e| e.entry_type() == EntryType::EntryNormal && !e.data.is_empty())
            .map(|e| e.data.to_vec())
            .collect()
    }

    /// (index, term) of every entry in the node's stable log.
    pub fn log_of(&self, id: u64) -> Vec<(u64, u64)> {
        let s = self.peers[&id].store();
        let first = s.first_index().unwrap();
        let last = s.last_index().unwrap();
        s.entries(first, last + 1, None)
            .unwrap()
            .iter()
            .map(|e| (e.index, e.term))
            .collect()
    }
}
