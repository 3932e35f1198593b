//! The shard layout: which shard (Raft group) owns each of the 16384 slots, its epoch and
//! its replicas.
//!
//! A new cluster divides the slots into `--initial-shards` contiguous ranges of (nearly)
//! equal size. Shard `i` (group id `i + 1`) is replicated on `min(3, n)` of the `n` members,
//! starting at member `i mod n` and wrapping, so replicas and preferred leaders (the first
//! replica) are spread evenly. Every node computes the same layout from the same member list
//! and shard count, both pinned in the data directory's identity file.

use crate::storage::slot::SLOT_COUNT;

/// Replicas per shard (fewer when the cluster is smaller).
pub const REPLICATION_FACTOR: usize = 3;

/// One shard: a Raft group owning a contiguous slot range.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShardSpec {
    /// Raft group id (never 0; shard `i` of the initial layout is group `i + 1`).
    pub id: u64,
    pub first_slot: u16,
    pub last_slot: u16,
    /// The slot-range version: bumped whenever the shard's slots change. Requests carry
    /// the epoch they were routed with and the state machine refuses a stale one.
    pub epoch: u64,
    /// Raft ids of the nodes holding a voting replica; the first is the preferred leader.
    pub replicas: Vec<u64>,
    /// Nodes receiving a replica that does not vote yet (a migration in progress).
    #[serde(default)]
    pub learners: Vec<u64>,
    /// The configuration version: bumped whenever replicas or learners change (TiKV's
    /// conf_ver). Writes are not checked against it: moving a replica does not move data.
    #[serde(default)]
    pub conf_ver: u64,
    /// The voters the group was bootstrapped with (its configuration before log index 1),
    /// so a replica created later replays the log from the start correctly.
    #[serde(default)]
    pub bootstrap: Vec<u64>,
}

impl ShardSpec {
    pub fn contains(&self, slot: u16) -> bool {
        (self.first_slot..=self.last_slot).contains(&slot)
    }

    /// The shard's name in the admin API and logs.
    pub fn name(&self) -> String {
        Self::name_of(self.id)
    }

    /// The name of group `id`: `shard_<id - 1>`, or `meta` for the metadata group.
    pub fn name_of(id: u64) -> String {
        if id == crate::meta::META_GROUP {
            return "meta".into();
        }
        format!("shard_{}", id.saturating_sub(1))
    }

    /// Parses a shard name (`shard_3`) or a group id (`4`) into a group id.
    pub fn parse_name(name: &str) -> Option<u64> {
        if name == "meta" {
            return Some(crate::meta::META_GROUP);
        }
        match name.strip_prefix("shard_") {
            Some(n) => n.parse::<u64>().ok().and_then(|n| n.checked_add(1)),
            None => name.parse::<u64>().ok().filter(|&id| id > 0),
        }
    }

    /// Whether `node` holds a replica, voting or not.
    pub fn has_replica(&self, node: u64) -> bool {
        self.replicas.contains(&node) || self.learners.contains(&node)
    }
}

/// Every shard of the cluster, with a slot -> shard index.
#[derive(Clone, Debug)]
pub struct Layout {
    shards: Vec<ShardSpec>,
    /// Index into `shards` for every slot.
    by_slot: Vec<u16>,
}

impl Layout {
    /// Builds a layout from shards that must cover every slot exactly once.
    pub fn new(mut shards: Vec<ShardSpec>) -> Result<Layout, String> {
        shards.sort_by_key(|s| s.first_slot);
        let mut by_slot = vec![u16::MAX; SLOT_COUNT as usize];
        for (i, s) in shards.iter().enumerate() {
            if s.first_slot > s.last_slot || s.last_slot >= SLOT_COUNT || s.id == 0 {
                return Err(format!("invalid shard {s:?}"));
            }
            for slot in s.first_slot..=s.last_slot {
                if by_slot[slot as usize] != u16::MAX {
                    return Err(format!("slot {slot} is owned by two shards"));
                }
                by_slot[slot as usize] = i as u16;
            }
        }
        if let Some(slot) = by_slot.iter().position(|&i| i == u16::MAX) {
            return Err(format!("slot {slot} is not owned by any shard"));
        }
        Ok(Layout { shards, by_slot })
    }

    /// The layout of a new cluster: `count` shards over `members` (Raft ids, in `--cluster`
    /// order).
    pub fn initial(members: &[u64], count: usize) -> Result<Layout, String> {
        Layout::initial_with_replicas(members, count, REPLICATION_FACTOR)
    }

    /// As `initial`, with `rf` replicas per shard (capped at the member count).
    pub fn initial_with_replicas(
        members: &[u64],
        count: usize,
        rf: usize,
    ) -> Result<Layout, String> {
        if count == 0 || count > SLOT_COUNT as usize {
            return Err(format!(
                "--initial-shards must be between 1 and {SLOT_COUNT}, got {count}"
            ));
        }
        if members.is_empty() {
            return Err("a cluster needs at least one member".into());
        }
        let rf = rf.clamp(1, members.len());
        let total = SLOT_COUNT as usize;
        let shards = (0..count)
            .map(|i| {
                let replicas: Vec<u64> =
                    (0..rf).map(|r| members[(i + r) % members.len()]).collect();
                ShardSpec {
                    id: i as u64 + 1,
                    first_slot: (i * total / count) as u16,
                    last_slot: ((i + 1) * total / count - 1) as u16,
                    epoch: 1,
                    bootstrap: replicas.clone(),
                    replicas,
                    learners: Vec::new(),
                    conf_ver: 1,
                }
            })
            .collect();
        Layout::new(shards)
    }

    pub fn shards(&self) -> &[ShardSpec] {
        &self.shards
    }

    pub fn shard_of_slot(&self, slot: u16) -> &ShardSpec {
        &self.shards[self.by_slot[(slot & (SLOT_COUNT - 1)) as usize] as usize]
    }

    pub fn shard(&self, id: u64) -> Option<&ShardSpec> {
        self.shards.iter().find(|s| s.id == id)
    }

    /// Shards that have a replica on `node`.
    pub fn hosted_by(&self, node: u64) -> impl Iterator<Item = &ShardSpec> {
        self.shards
            .iter()
            .filter(move |s| s.replicas.contains(&node))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_layout_covers_every_slot_and_spreads_replicas() {
        let members = [11, 22, 33];
        let l = Layout::initial(&members, 8).expect("layout");
        assert_eq!(l.shards().len(), 8);
        assert_eq!(l.shards()[0].first_slot, 0);
        assert_eq!(l.shards()[7].last_slot, 16383);
        for w in l.shards().windows(2) {
            assert_eq!(w[0].last_slot + 1, w[1].first_slot);
        }
        for slot in [0u16, 2047, 2048, 16383] {
            assert!(l.shard_of_slot(slot).contains(slot));
        }
        // Preferred leaders rotate over the members.
        let leaders: Vec<u64> = l.shards().iter().map(|s| s.replicas[0]).collect();
        for m in members {
            let n = leaders.iter().filter(|&&x| x == m).count();
            assert!((2..=3).contains(&n), "{m} leads {n} shards");
        }
        assert!(l.shards().iter().all(|s| s.replicas.len() == 3));
    }

    #[test]
    fn small_and_large_clusters() {
        let one = Layout::initial(&[7], 1).expect("layout");
        assert_eq!(one.shards()[0].replicas, vec![7]);
        assert_eq!(
            (one.shards()[0].first_slot, one.shards()[0].last_slot),
            (0, 16383)
        );
        let five = Layout::initial(&[1, 2, 3, 4, 5], 5).expect("layout");
        assert!(five.shards().iter().all(|s| s.replicas.len() == 3));
        assert_eq!(five.hosted_by(1).count(), 3);
        assert!(Layout::initial(&[1], 0).is_err());
        assert!(Layout::initial(&[1], 16385).is_err());
        assert_eq!(
            Layout::initial(&[1], 16384).map(|l| l.shards().len()),
            Ok(16384)
        );
    }

    #[test]
    fn gaps_and_overlaps_are_refused() {
        let s = |id, a, b| ShardSpec {
            id,
            first_slot: a,
            last_slot: b,
            epoch: 1,
            replicas: vec![1],
            learners: vec![],
            conf_ver: 1,
            bootstrap: vec![1],
        };
        assert!(Layout::new(vec![s(1, 0, 100)]).is_err());
        assert!(Layout::new(vec![s(1, 0, 9000), s(2, 9000, 16383)]).is_err());
        assert!(Layout::new(vec![s(2, 9001, 16383), s(1, 0, 9000)]).is_ok());
    }
}
