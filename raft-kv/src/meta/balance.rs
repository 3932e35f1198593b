//! The scheduler's policies: given the metadata, which nodes are alive and the cluster's
//! load, the one next move, if any. Pure (the driver proposes and rate-limits), in order:
//!
//! 1. repair: a replica on a node that is down is rebuilt on the live node with the least
//!    replica weight; decommission: the same for a draining node;
//! 2. split: a shard whose data passes `--split-size-mb` (at its size median, reported by its
//!    leader) or whose requests pass `--split-ops` (at a bucket boundary that leaves each
//!    half at least a quarter of the load; none for a single hot slot);
//! 3. replica balance: each node's weight is the sum of its replicas' sizes (a shard weighs at
//!    least `MIN_REPLICA_WEIGHT`, so while shards are small this counts replicas); a replica
//!    moves from the heaviest node to the lightest when their gap is at least twice its
//!    weight;
//! 4. leader balance: each node's leader load is the sum over shards it is preferred leader
//!    of `1 + requests/s / LEADER_OPS_UNIT` (idle: a leader count); a shard's preferred
//!    leader moves to another voter when the gap is at least twice the shard's weight. A
//!    shard whose leader moved recently is left alone for a while.
//!
//! "At least twice the weight" makes every move shrink the sum of squared node weights, so
//! with steady loads the moves stop instead of going back and forth.

use super::load::{load_split_slot, LoadSummary};
use super::{MetaState, NodeState};
use crate::routing::ShardSpec;

/// The least weight a replica counts for (bytes).
pub const MIN_REPLICA_WEIGHT: u64 = 1 << 20;
/// Requests per second that weigh as much as leading one more idle shard.
pub const LEADER_OPS_UNIT: f64 = 100.0;

/// Automatic split thresholds (0: never).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    pub split_size: u64,
    pub split_ops: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Migrate { shard: u64, from: u64, to: u64 },
    Split { shard: u64, at: u16 },
    Leader { shard: u64, to: u64 },
}

/// A decision with its kind (the metric label and the operation's reason) and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Proposal {
    pub decision: Decision,
    pub kind: &'static str,
    pub why: String,
}

pub struct Inputs<'a> {
    /// Whether a node is alive (heard from recently).
    pub alive: &'a dyn Fn(u64) -> bool,
    pub load: &'a LoadSummary,
    pub policy: Policy,
    /// Whether a shard's leader was moved by the scheduler too recently to move again.
    pub leader_cooling: &'a dyn Fn(u64) -> bool,
}

/// The next move. Nothing while another scheduler move (not an admin's) is running.
pub fn decide(state: &MetaState, inp: &Inputs) -> Option<Proposal> {
    let ours = state
        .running()
        .any(|o| o.reason != "admin" && o.shard().is_some());
    if ours {
        return None;
    }
    let targets: Vec<u64> = state
        .nodes
        .iter()
        .filter(|n| n.state == NodeState::Up && (inp.alive)(n.id))
        .map(|n| n.id)
        .collect();
    let w = Weights::new(state, inp, &targets);
    // Balancing on partial reports (a node's lapsed, a shard just split) would move
    // replicas and leaders one way and back once the reports are complete again.
    let informed = w.sized;
    repair(state, inp, &targets, &w)
        .or_else(|| split(state, inp))
        .or_else(|| {
            informed
                .then(|| balance_replicas(state, &targets, &w))
                .flatten()
        })
        .or_else(|| {
            informed
                .then(|| balance_leaders(state, inp, &targets))
                .flatten()
        })
}

fn busy(state: &MetaState, shard: u64) -> bool {
    state.running().any(|o| o.touches(shard))
}

/// Replica weights: sizes once every live node reported and every shard has a size from a
/// report about its current range, else one unit each (and no balancing).
struct Weights<'a> {
    state: &'a MetaState,
    load: &'a LoadSummary,
    sized: bool,
}

impl<'a> Weights<'a> {
    fn new(state: &'a MetaState, inp: &'a Inputs, targets: &[u64]) -> Weights<'a> {
        Weights {
            state,
            load: inp.load,
            sized: targets.iter().all(|n| inp.load.nodes.contains_key(n))
                && state.shards.iter().all(|s| {
                    inp.load
                        .shards
                        .get(&s.id)
                        .is_some_and(|l| l.size_bytes.is_some())
                }),
        }
    }

    fn shard(&self, s: &ShardSpec) -> u64 {
        let size = if self.sized {
            self.load
                .shards
                .get(&s.id)
                .and_then(|l| l.size_bytes)
                .unwrap_or(0)
        } else {
            0
        };
        size.max(MIN_REPLICA_WEIGHT)
    }

    fn node(&self, n: u64) -> u64 {
        self.state
            .shards
            .iter()
            .filter(|s| s.has_replica(n))
            .map(|s| self.shard(s))
            .sum()
    }
}

fn migrate(s: &ShardSpec, from: u64, to: u64, kind: &'static str, why: String) -> Proposal {
    Proposal {
        decision: Decision::Migrate {
            shard: s.id,
            from,
            to,
        },
        kind,
        why,
    }
}

fn repair(state: &MetaState, inp: &Inputs, targets: &[u64], w: &Weights) -> Option<Proposal> {
    // The metadata group's replicas too (it weighs like the smallest shard).
    for s in state.groups().filter(|s| !busy(state, s.id)) {
        let s = &s;
        for &r in &s.replicas {
            let draining = state.node(r).is_some_and(|n| n.state != NodeState::Up);
            let down = !(inp.alive)(r);
            if !draining && !down {
                continue;
            }
            let Some(to) = targets
                .iter()
                .copied()
                .filter(|t| !s.has_replica(*t))
                .min_by_key(|t| (w.node(*t), *t))
            else {
                continue;
            };
            let kind = if draining { "decommission" } else { "repair" };
            let why = format!(
                "{} of {} is on {} node {}; rebuilding it on {}",
                if draining {
                    "a replica"
                } else {
                    "a lost replica"
                },
                s.name(),
                if draining { "draining" } else { "down" },
                state.name_of(r),
                state.name_of(to)
            );
            return Some(migrate(s, r, to, kind, why));
        }
    }
    None
}

fn split(state: &MetaState, inp: &Inputs) -> Option<Proposal> {
    let Policy {
        split_size,
        split_ops,
    } = inp.policy;
    let mut best: Option<(f64, Proposal)> = None;
    for s in state.shards.iter() {
        if s.first_slot >= s.last_slot || busy(state, s.id) || !s.learners.is_empty() {
            continue;
        }
        let Some(l) = inp.load.shards.get(&s.id) else {
            continue;
        };
        let size = l.size_bytes.unwrap_or(0);
        let ops = l.ops_per_sec();
        let found = if split_size > 0 && size >= split_size {
            let at = l
                .size_split_slot
                .filter(|at| *at > s.first_slot && *at <= s.last_slot)
                .unwrap_or(s.first_slot + (s.last_slot - s.first_slot).div_ceil(2));
            let why = format!(
                "{} holds {} MiB, over the split size of {} MiB; splitting at slot {at}",
                s.name(),
                size >> 20,
                split_size >> 20
            );
            Some((size as f64 / split_size as f64, at, "split_size", why))
        } else if split_ops > 0 && ops >= split_ops as f64 {
            load_split_slot(s.first_slot, s.last_slot, &l.buckets).map(|at| {
                let why = format!(
                    "{} serves {ops:.0} requests/s, over the split load of {split_ops}; \
                     splitting at slot {at}",
                    s.name()
                );
                (ops / split_ops as f64, at, "split_load", why)
            })
        } else {
            None
        };
        if let Some((ratio, at, kind, why)) = found {
            if best.as_ref().is_none_or(|(r, _)| ratio > *r) {
                let decision = Decision::Split { shard: s.id, at };
                best = Some((
                    ratio,
                    Proposal {
                        decision,
                        kind,
                        why,
                    },
                ));
            }
        }
    }
    best.map(|(_, p)| p)
}

fn balance_replicas(state: &MetaState, targets: &[u64], w: &Weights) -> Option<Proposal> {
    let mut by_weight: Vec<(u64, u64)> = targets.iter().map(|n| (w.node(*n), *n)).collect();
    by_weight.sort_unstable();
    let &(light, least) = by_weight.first()?;
    for &(heavy, most) in by_weight.iter().rev() {
        let gap = heavy.saturating_sub(light);
        let pick = state
            .shards
            .iter()
            .filter(|s| !busy(state, s.id) && s.replicas.contains(&most) && !s.has_replica(least))
            .filter(|s| gap >= 2 * w.shard(s))
            .max_by_key(|s| (w.shard(s), std::cmp::Reverse(s.id)));
        if let Some(s) = pick {
            let unit = if w.sized {
                "MiB of replicas"
            } else {
                "replicas"
            };
            let scale = |v: u64| v / MIN_REPLICA_WEIGHT;
            let why = format!(
                "{} holds {} {unit} and {} holds {}: moving {}",
                state.name_of(most),
                scale(heavy),
                state.name_of(least),
                scale(light),
                s.name()
            );
            return Some(migrate(s, most, least, "balance", why));
        }
    }
    None
}

fn balance_leaders(state: &MetaState, inp: &Inputs, targets: &[u64]) -> Option<Proposal> {
    let weight = |s: &ShardSpec| {
        1.0 + inp
            .load
            .shards
            .get(&s.id)
            .map_or(0.0, |l| l.ops_per_sec() / LEADER_OPS_UNIT)
    };
    let led = |n: u64| -> f64 {
        state
            .shards
            .iter()
            .filter(|s| s.replicas.first() == Some(&n))
            .map(weight)
            .sum()
    };
    let mut by_load: Vec<(f64, u64)> = targets.iter().map(|n| (led(*n), *n)).collect();
    by_load.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(heavy, most) in &by_load {
        let mut best: Option<(f64, &ShardSpec, u64, f64)> = None;
        for s in state.shards.iter().filter(|s| {
            s.replicas.first() == Some(&most)
                && !busy(state, s.id)
                && s.learners.is_empty()
                && !(inp.leader_cooling)(s.id)
        }) {
            let ws = weight(s);
            let to = s
                .replicas
                .iter()
                .copied()
                .filter(|r| *r != most && targets.contains(r))
                .map(|r| (led(r), r))
                .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            if let Some((light, to)) = to {
                let fits = heavy - light >= 2.0 * ws;
                if fits && best.as_ref().is_none_or(|b| ws > b.0) {
                    best = Some((ws, s, to, light));
                }
            }
        }
        if let Some((_, s, to, light)) = best {
            let why = format!(
                "{} leads a load of {heavy:.1} and {} of {light:.1}: moving {}'s leader",
                state.name_of(most),
                state.name_of(to),
                s.name()
            );
            return Some(Proposal {
                decision: Decision::Leader { shard: s.id, to },
                kind: "leader",
                why,
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::load::ShardSummary;
    use crate::meta::NodeMeta;

    fn spec(id: u64, first: u16, last: u16, replicas: &[u64]) -> ShardSpec {
        ShardSpec {
            id,
            first_slot: first,
            last_slot: last,
            epoch: 1,
            replicas: replicas.to_vec(),
            learners: Vec::new(),
            conf_ver: 1,
            bootstrap: replicas.to_vec(),
        }
    }

    fn state(nodes: &[u64], shards: Vec<ShardSpec>) -> MetaState {
        MetaState {
            version: 1,
            nodes: nodes
                .iter()
                .map(|&id| NodeMeta {
                    id,
                    name: format!("n{id}"),
                    addr: String::new(),
                    state: NodeState::Up,
                })
                .collect(),
            shards,
            meta_replicas: vec![1],
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

    fn run(st: &MetaState, load: &LoadSummary, policy: Policy) -> Option<Proposal> {
        let alive = |_: u64| true;
        let cooling = |_: u64| false;
        decide(
            st,
            &Inputs {
                alive: &alive,
                load,
                policy,
                leader_cooling: &cooling,
            },
        )
    }

    /// Every node reported; shard sizes and request rates as given.
    fn load(st: &MetaState, shards: &[(u64, u64, f64)]) -> LoadSummary {
        let mut l = LoadSummary::default();
        for n in &st.nodes {
            l.nodes.insert(n.id, Default::default());
        }
        for &(id, size, ops) in shards {
            l.shards.insert(
                id,
                ShardSummary {
                    size_bytes: Some(size),
                    reads_per_sec: ops,
                    buckets: vec![ops / 4.0; 4],
                    ..Default::default()
                },
            );
        }
        l
    }

    #[test]
    fn balanced_idle_cluster_stays_put() {
        let st = state(
            &[1, 2, 3],
            vec![
                spec(1, 0, 5000, &[1, 2, 3]),
                spec(2, 5001, 10000, &[2, 3, 1]),
                spec(3, 10001, 16383, &[3, 1, 2]),
            ],
        );
        assert_eq!(run(&st, &LoadSummary::default(), Policy::default()), None);
    }

    #[test]
    fn counts_even_out_while_shards_are_small() {
        let st = state(
            &[1, 2, 3, 4],
            vec![
                spec(1, 0, 5000, &[1, 2, 3]),
                spec(2, 5001, 10000, &[1, 2, 3]),
                spec(3, 10001, 16383, &[1, 2, 3]),
            ],
        );
        // Nothing without reports from every node.
        assert_eq!(run(&st, &LoadSummary::default(), Policy::default()), None);
        let l = load(&st, &[(1, 0, 0.0), (2, 0, 0.0), (3, 0, 0.0)]);
        let p = run(&st, &l, Policy::default()).expect("a move");
        assert_eq!(p.kind, "balance");
        assert!(
            matches!(p.decision, Decision::Migrate { to: 4, .. }),
            "{p:?}"
        );
    }

    #[test]
    fn sizes_weigh_replicas() {
        // Same counts (two each on 1..=3, none on 4 would differ) but node 1 holds the big
        // shard: 3 nodes, shard 1 = 300 MiB on {1,2}, shards 2,3 small on {2,3},{3,1}...
        let st = state(
            &[1, 2, 3],
            vec![
                spec(1, 0, 5000, &[1]),
                spec(2, 5001, 10000, &[2]),
                spec(3, 10001, 12000, &[1]),
                spec(4, 12001, 16383, &[3]),
            ],
        );
        // Counts: n1=2, n2=1, n3=1: no count move. Sizes: n1 = 300+200, n2 = 10, n3 = 10.
        let l = load(
            &st,
            &[
                (1, 300 << 20, 0.0),
                (2, 10 << 20, 0.0),
                (3, 200 << 20, 0.0),
                (4, 10 << 20, 0.0),
            ],
        );
        let p = run(&st, &l, Policy::default()).expect("a move");
        // Moving the 300 MiB shard (gap 490 >= 600? no); the 200 MiB one fits (490 >= 400).
        assert_eq!(
            p.decision,
            Decision::Migrate {
                shard: 3,
                from: 1,
                to: 2
            }
        );
        // Without sizes, nothing moves (counts are even enough anyway).
        assert_eq!(run(&st, &LoadSummary::default(), Policy::default()), None);
        let tiny = load(&st, &[(1, 1, 0.0), (2, 1, 0.0), (3, 1, 0.0), (4, 1, 0.0)]);
        assert_eq!(run(&st, &tiny, Policy::default()), None);
    }

    #[test]
    fn hot_leaders_spread() {
        // Node 1 is preferred leader of all three shards; shard 1 is hot.
        let st = state(
            &[1, 2, 3],
            vec![
                spec(1, 0, 5000, &[1, 2, 3]),
                spec(2, 5001, 10000, &[1, 2, 3]),
                spec(3, 10001, 16383, &[1, 2, 3]),
            ],
        );
        let l = load(&st, &[(1, 0, 2000.0), (2, 0, 0.0), (3, 0, 0.0)]);
        let p = run(&st, &l, Policy::default()).expect("a move");
        // The hot shard stays (moving it would only move the imbalance); an idle one goes.
        assert_eq!(p.kind, "leader");
        assert!(
            matches!(
                p.decision,
                Decision::Leader {
                    shard: 2 | 3,
                    to: 2 | 3
                }
            ),
            "{p:?}"
        );
        // Once the idle leaders moved, nothing more.
        let mut st2 = st.clone();
        st2.shards[1].replicas = vec![2, 1, 3];
        st2.shards[2].replicas = vec![3, 1, 2];
        assert_eq!(run(&st2, &l, Policy::default()), None);
    }

    #[test]
    fn splits_by_size_and_by_load() {
        let st = state(&[1, 2, 3], vec![spec(1, 0, 16383, &[1, 2, 3])]);
        let mut l = load(&st, &[(1, 200 << 20, 0.0)]);
        if let Some(s) = l.shards.get_mut(&1) {
            s.size_split_slot = Some(1234);
        }
        let policy = Policy {
            split_size: 96 << 20,
            split_ops: 1000,
        };
        let p = run(&st, &l, policy).expect("a split");
        assert_eq!(p.decision, Decision::Split { shard: 1, at: 1234 });
        assert_eq!(p.kind, "split_size");
        let l = load(&st, &[(1, 0, 4000.0)]);
        let p = run(&st, &l, policy).expect("a split");
        assert_eq!(p.kind, "split_load");
        assert!(matches!(p.decision, Decision::Split { shard: 1, at } if at > 0));
        // Off by default; a one-slot shard never splits.
        assert_eq!(run(&st, &l, Policy::default()), None);
        let one = state(&[1, 2, 3], vec![spec(1, 7, 7, &[1, 2, 3])]);
        assert_eq!(run(&one, &load(&one, &[(1, 1 << 40, 1e9)]), policy), None);
    }

    #[test]
    fn repair_comes_first() {
        let st = state(
            &[1, 2, 3, 4],
            vec![
                spec(1, 0, 8000, &[1, 2, 3]),
                spec(2, 8001, 16383, &[2, 3, 4]),
            ],
        );
        let alive = |n: u64| n != 3;
        let cooling = |_: u64| false;
        let l = load(&st, &[(1, 500 << 20, 0.0)]);
        let p = decide(
            &st,
            &Inputs {
                alive: &alive,
                load: &l,
                policy: Policy {
                    split_size: 1,
                    split_ops: 0,
                },
                leader_cooling: &cooling,
            },
        )
        .expect("a repair");
        assert_eq!(p.kind, "repair");
        assert_eq!(
            p.decision,
            Decision::Migrate {
                shard: 1,
                from: 3,
                to: 4
            }
        );
    }
}
