//! Load statistics: what each node measures (client requests per slot, shard sizes, which
//! groups it leads), the report it sends the metadata replicas every heartbeat, and the
//! cluster-wide table the metadata leader schedules from (and `GET /admin/nodes|shards`
//! show). Like PD's store and region heartbeats, reports live in memory only: a new
//! metadata leader has them already (every replica receives them) or within one heartbeat.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use super::MetaState;
use crate::storage::slot::SLOT_COUNT;

const SLOTS: usize = SLOT_COUNT as usize;

/// Sub-ranges of a shard's slots that requests are counted in, for a load split's slot.
pub const BUCKETS: usize = 32;
/// Heartbeats a node's request rates are averaged over.
pub const WINDOWS: usize = 5;
/// A node's last report is forgotten after this long.
const KEEP: Duration = Duration::from_secs(120);

/// Client requests per slot since the last heartbeat, counted on the node the command
/// arrived at (whether it ran here or was proxied), so the sum over nodes is the cluster's.
pub struct SlotCounters {
    reads: Box<[AtomicU32]>,
    writes: Box<[AtomicU32]>,
}

impl Default for SlotCounters {
    fn default() -> Self {
        let zeros = || (0..SLOTS).map(|_| AtomicU32::new(0)).collect();
        SlotCounters {
            reads: zeros(),
            writes: zeros(),
        }
    }
}

impl SlotCounters {
    pub fn hit(&self, slot: u16, write: bool) {
        let c = if write { &self.writes } else { &self.reads };
        if let Some(c) = c.get(usize::from(slot)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The counts since the last call (reads, writes), resetting them.
    fn take(&self) -> (Vec<u32>, Vec<u32>) {
        let take = |v: &[AtomicU32]| v.iter().map(|c| c.swap(0, Ordering::Relaxed)).collect();
        (take(&self.reads), take(&self.writes))
    }
}

/// The last `WINDOWS` heartbeats' counts per slot, summed.
pub struct SlotWindow {
    windows: VecDeque<(Vec<u32>, Vec<u32>, Duration)>,
    reads: Vec<u64>,
    writes: Vec<u64>,
    span: Duration,
}

impl Default for SlotWindow {
    fn default() -> Self {
        SlotWindow {
            windows: VecDeque::new(),
            reads: vec![0; SLOTS],
            writes: vec![0; SLOTS],
            span: Duration::ZERO,
        }
    }
}

impl SlotWindow {
    /// Takes the counters' counts for the `elapsed` since the last push.
    pub fn push(&mut self, counters: &SlotCounters, elapsed: Duration) {
        let (r, w) = counters.take();
        for (sum, v) in self.reads.iter_mut().zip(&r) {
            *sum += u64::from(*v);
        }
        for (sum, v) in self.writes.iter_mut().zip(&w) {
            *sum += u64::from(*v);
        }
        self.span += elapsed;
        self.windows.push_back((r, w, elapsed));
        while self.windows.len() > WINDOWS {
            let Some((r, w, d)) = self.windows.pop_front() else {
                break;
            };
            for (sum, v) in self.reads.iter_mut().zip(&r) {
                *sum -= u64::from(*v);
            }
            for (sum, v) in self.writes.iter_mut().zip(&w) {
                *sum -= u64::from(*v);
            }
            self.span -= d;
        }
    }

    pub fn span(&self) -> Duration {
        self.span
    }

    /// Requests for slots `first..=last` in the window: (reads, writes, per bucket).
    pub fn range(&self, first: u16, last: u16) -> (u64, u64, Vec<u64>) {
        let (first, last) = (usize::from(first), usize::from(last).min(SLOTS - 1));
        let mut buckets = vec![0u64; bucket_count(first as u16, last as u16)];
        let (mut reads, mut writes) = (0, 0);
        if first > last {
            return (0, 0, buckets);
        }
        let width = bucket_width(first as u16, last as u16);
        for slot in first..=last {
            let (r, w) = (self.reads[slot], self.writes[slot]);
            reads += r;
            writes += w;
            if let Some(b) = buckets.get_mut((slot - first) / width) {
                *b += r + w;
            }
        }
        (reads, writes, buckets)
    }
}

/// Slots per bucket of a range (the last bucket may be shorter).
fn bucket_width(first: u16, last: u16) -> usize {
    let len = usize::from(last.saturating_sub(first)) + 1;
    len.div_ceil(BUCKETS)
}

fn bucket_count(first: u16, last: u16) -> usize {
    let len = usize::from(last.saturating_sub(first)) + 1;
    len.div_ceil(bucket_width(first, last))
}

/// One shard as one node sees it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardLoad {
    pub shard: u64,
    /// The slot range the counts and size refer to (the node's routing at the time).
    pub first_slot: u16,
    pub last_slot: u16,
    /// Whether this node hosts a replica, and leads the group.
    pub hosted: bool,
    pub leader: bool,
    /// Approximate bytes of the shard's data (replicas only).
    pub size_bytes: u64,
    /// The slot halving the data by size (the leader only).
    #[serde(default)]
    pub size_split_slot: Option<u16>,
    /// Client requests for these slots that arrived at this node in the window.
    pub reads: u64,
    pub writes: u64,
    /// The same requests over `BUCKETS` equal sub-ranges of the slots.
    pub buckets: Vec<u64>,
}

/// One node's heartbeat.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeLoad {
    pub node: u64,
    /// Seconds the request counts cover.
    pub window_secs: f64,
    pub shards: Vec<ShardLoad>,
}

/// A report as a metadata replica relays it: how old it was there.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Relayed {
    pub age_ms: u64,
    pub load: NodeLoad,
}

/// The newest report of every node, with when it was received (or relayed as of).
#[derive(Default)]
pub struct LoadTable {
    nodes: RwLock<HashMap<u64, (Instant, NodeLoad)>>,
}

impl LoadTable {
    /// A report received directly from its node. Reports older than `KEEP` (nodes gone or
    /// removed) are dropped, so the table and its relays stay bounded.
    pub fn put(&self, load: NodeLoad) {
        let mut nodes = self.nodes.write();
        nodes.retain(|_, (t, _)| t.elapsed() < KEEP);
        nodes.insert(load.node, (Instant::now(), load));
    }

    /// Reports relayed by a metadata replica; kept where newer than what is here.
    pub fn merge(&self, relayed: Vec<Relayed>) {
        let now = Instant::now();
        let mut nodes = self.nodes.write();
        for r in relayed {
            let at = now
                .checked_sub(Duration::from_millis(r.age_ms))
                .unwrap_or(now);
            let newer = nodes.get(&r.load.node).is_none_or(|(t, _)| *t < at);
            if newer {
                nodes.insert(r.load.node, (at, r.load));
            }
        }
    }

    /// Whether `node` reported within `window`.
    pub fn seen_within(&self, node: u64, window: Duration) -> bool {
        self.nodes
            .read()
            .get(&node)
            .is_some_and(|(t, _)| t.elapsed() < window)
    }

    /// `node`'s latest report.
    pub fn get(&self, node: u64) -> Option<NodeLoad> {
        self.nodes.read().get(&node).map(|(_, l)| l.clone())
    }

    /// Every report, for relaying.
    pub fn relay(&self) -> Vec<Relayed> {
        self.nodes
            .read()
            .values()
            .map(|(t, l)| Relayed {
                age_ms: t.elapsed().as_millis() as u64,
                load: l.clone(),
            })
            .collect()
    }

    /// The cluster's load from reports younger than `fresh`, against the current shards.
    pub fn summary(&self, state: &MetaState, fresh: Duration) -> LoadSummary {
        let reports: Vec<NodeLoad> = self
            .nodes
            .read()
            .values()
            .filter(|(t, _)| t.elapsed() < fresh)
            .map(|(_, l)| l.clone())
            .collect();
        LoadSummary::build(state, &reports)
    }
}

/// A shard's load summed over the nodes' reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShardSummary {
    /// Approximate bytes (its leader's report, else the largest replica's).
    pub size_bytes: Option<u64>,
    pub size_split_slot: Option<u16>,
    pub reads_per_sec: f64,
    pub writes_per_sec: f64,
    /// Requests per second over the shard's `BUCKETS` sub-ranges.
    pub buckets: Vec<f64>,
    /// The node whose report says it leads the shard.
    pub leader: Option<u64>,
}

impl ShardSummary {
    pub fn ops_per_sec(&self) -> f64 {
        self.reads_per_sec + self.writes_per_sec
    }
}

/// A node's load, from its own report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeSummary {
    pub leaders: usize,
    pub size_bytes: u64,
    pub reads_per_sec: f64,
    pub writes_per_sec: f64,
}

#[derive(Clone, Debug, Default)]
pub struct LoadSummary {
    pub shards: HashMap<u64, ShardSummary>,
    /// Nodes with a fresh report.
    pub nodes: HashMap<u64, NodeSummary>,
}

impl LoadSummary {
    /// Sums reports; a report about a different slot range than the metadata's (taken
    /// before a split or merge) is left out for that shard.
    pub fn build(state: &MetaState, reports: &[NodeLoad]) -> LoadSummary {
        let mut sum = LoadSummary::default();
        for r in reports {
            let secs = r.window_secs.max(0.001);
            let node = sum.nodes.entry(r.node).or_default();
            for s in &r.shards {
                node.reads_per_sec += s.reads as f64 / secs;
                node.writes_per_sec += s.writes as f64 / secs;
                if s.hosted {
                    node.size_bytes += s.size_bytes;
                    node.leaders += usize::from(s.leader);
                }
            }
        }
        for spec in &state.shards {
            let mut out = ShardSummary {
                buckets: vec![0.0; bucket_count(spec.first_slot, spec.last_slot)],
                ..Default::default()
            };
            for r in reports {
                let secs = r.window_secs.max(0.001);
                let Some(s) = r.shards.iter().find(|s| {
                    s.shard == spec.id
                        && s.first_slot == spec.first_slot
                        && s.last_slot == spec.last_slot
                }) else {
                    continue;
                };
                out.reads_per_sec += s.reads as f64 / secs;
                out.writes_per_sec += s.writes as f64 / secs;
                for (b, v) in out.buckets.iter_mut().zip(&s.buckets) {
                    *b += *v as f64 / secs;
                }
                if s.leader {
                    out.leader = Some(r.node);
                    out.size_bytes = Some(s.size_bytes);
                    out.size_split_slot = s.size_split_slot;
                } else if s.hosted && out.leader.is_none() {
                    out.size_bytes = Some(out.size_bytes.unwrap_or(0).max(s.size_bytes));
                }
            }
            sum.shards.insert(spec.id, out);
        }
        sum
    }
}

/// The slot splitting `first..=last` into parts of about equal load (a bucket boundary),
/// or None when no boundary leaves each part at least a quarter of it (one hot slot, say:
/// splitting would not spread anything).
pub fn load_split_slot(first: u16, last: u16, buckets: &[f64]) -> Option<u16> {
    let total: f64 = buckets.iter().sum();
    if first >= last || total <= 0.0 {
        return None;
    }
    let width = bucket_width(first, last);
    let mut below = 0.0;
    for (i, b) in buckets.iter().enumerate() {
        // Boundary before bucket i+1.
        below += b;
        if below * 2.0 >= total {
            // The boundary on whichever side of this bucket is more even.
            let before = below - b;
            let (cut, lower) = if i > 0 && (total / 2.0 - before) < (below - total / 2.0) {
                (i, before)
            } else {
                (i + 1, below)
            };
            let at = usize::from(first) + cut * width;
            if at > usize::from(last) || lower.min(total - lower) * 4.0 < total {
                return None;
            }
            return u16::try_from(at).ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::ShardSpec;

    #[test]
    fn buckets_cover_the_range() {
        assert_eq!(bucket_count(0, 16383), 32);
        assert_eq!(bucket_width(0, 16383), 512);
        assert_eq!(bucket_count(10, 14), 5);
        assert_eq!(bucket_count(0, 32), 17); // width 2: the last bucket holds one slot
        assert_eq!(bucket_count(7, 7), 1);
    }

    #[test]
    fn window_sums_and_forgets() {
        let c = SlotCounters::default();
        let mut w = SlotWindow::default();
        c.hit(5, false);
        c.hit(5, true);
        c.hit(600, true);
        w.push(&c, Duration::from_secs(2));
        let (r, wr, b) = w.range(0, 16383);
        assert_eq!((r, wr), (1, 2));
        assert_eq!(b[0], 2);
        assert_eq!(b[1], 1);
        assert_eq!(w.range(6, 16383).1, 1);
        for _ in 0..WINDOWS {
            w.push(&c, Duration::from_secs(2));
        }
        assert_eq!(w.range(0, 16383), (0, 0, vec![0; 32]));
        assert_eq!(w.span(), Duration::from_secs(2 * WINDOWS as u64));
    }

    #[test]
    fn load_split_finds_the_even_boundary() {
        // 32 buckets of 512 slots; load in buckets 0..8 and 24..32 evenly.
        let mut b = vec![0.0; 32];
        for (i, v) in b.iter_mut().enumerate() {
            if !(8..24).contains(&i) {
                *v = 10.0;
            }
        }
        let at = load_split_slot(0, 16383, &b).expect("a split");
        assert!((8 * 512..=24 * 512).contains(&usize::from(at)), "{at}");
        // All load on one bucket: no boundary spreads it.
        let mut hot = vec![0.0; 32];
        hot[3] = 100.0;
        assert_eq!(load_split_slot(0, 16383, &hot), None);
        // Two hot buckets: split between them.
        hot[20] = 100.0;
        let at = load_split_slot(0, 16383, &hot).expect("a split");
        assert!((4 * 512..=20 * 512).contains(&usize::from(at)), "{at}");
        assert_eq!(load_split_slot(5, 5, &[1.0]), None);
        assert_eq!(load_split_slot(0, 100, &[0.0; 26]), None);
    }

    fn state(shards: Vec<ShardSpec>) -> MetaState {
        MetaState {
            version: 1,
            nodes: Vec::new(),
            shards,
            meta_replicas: Vec::new(),
            meta_learners: Vec::new(),
            operations: Vec::new(),
            next_op: 1,
            scheduler_paused: false,
            tombstones: Vec::new(),
            users: Default::default(),
            rebuilds: Default::default(),
            setuser_ids: Default::default(),
        }
    }

    fn spec(id: u64, first: u16, last: u16) -> ShardSpec {
        ShardSpec {
            id,
            first_slot: first,
            last_slot: last,
            epoch: 1,
            replicas: vec![1, 2, 3],
            learners: Vec::new(),
            conf_ver: 1,
            bootstrap: Vec::new(),
        }
    }

    #[test]
    fn summary_sums_nodes_and_skips_other_ranges() {
        let st = state(vec![spec(1, 0, 8191), spec(2, 8192, 16383)]);
        let shard = |shard, first, last, leader, reads| ShardLoad {
            shard,
            first_slot: first,
            last_slot: last,
            hosted: true,
            leader,
            size_bytes: 100,
            size_split_slot: leader.then_some(10),
            reads,
            writes: 0,
            buckets: vec![reads; 32],
        };
        let reports = vec![
            NodeLoad {
                node: 1,
                window_secs: 2.0,
                shards: vec![shard(1, 0, 8191, true, 20), shard(2, 8192, 16383, false, 4)],
            },
            NodeLoad {
                node: 2,
                window_secs: 2.0,
                // An old range (before a split): left out of shard 1's sums.
                shards: vec![shard(1, 0, 16383, false, 1000)],
            },
        ];
        let sum = LoadSummary::build(&st, &reports);
        let s1 = &sum.shards[&1];
        assert_eq!(s1.reads_per_sec, 10.0);
        assert_eq!(s1.leader, Some(1));
        assert_eq!(s1.size_split_slot, Some(10));
        let s2 = &sum.shards[&2];
        assert_eq!(s2.reads_per_sec, 2.0);
        assert_eq!(s2.leader, None);
        assert_eq!(s2.size_bytes, Some(100));
        assert_eq!(sum.nodes[&1].leaders, 1);
        assert_eq!(sum.nodes[&1].size_bytes, 200);
        assert_eq!(sum.nodes[&2].reads_per_sec, 500.0);
    }

    #[test]
    fn relayed_reports_keep_the_newest() {
        let t = LoadTable::default();
        t.put(NodeLoad {
            node: 1,
            window_secs: 1.0,
            ..Default::default()
        });
        t.merge(vec![Relayed {
            age_ms: 60_000,
            load: NodeLoad {
                node: 1,
                window_secs: 9.0,
                ..Default::default()
            },
        }]);
        let relayed = t.relay();
        assert_eq!(relayed.len(), 1);
        assert_eq!(relayed[0].load.window_secs, 1.0);
        let st = state(Vec::new());
        assert!(t
            .summary(&st, Duration::from_secs(5))
            .nodes
            .contains_key(&1));
    }
}
