//! Splitting and merging groups inside their own logs, and the slot range a group persists.
//!
//! A split is an entry in the parent's log (not a write op): every replica applies it at the
//! same index, shrinks the parent's range to `..at`, bumps its epoch, and creates the child
//! group for `at..` on the same voters. The child's data is already on every replica (one
//! RocksDB per node, keys prefixed by slot), so nothing is copied. The child's log starts at
//! `INIT_INDEX` (TiKV's trick): a replica added to it later cannot replay entries before
//! that and gets a snapshot, which carries the inherited data.
//!
//! Because a group's range can change through its log, it is persisted with the apply state
//! (`range|<group>`): after a restart the group's own record wins over a metadata cache that
//! may not know of the split yet.

use crate::storage::encoding::Cf;
use crate::storage::Engine;

/// First byte of an admin entry (write ops start with their format version, 1 or 2).
pub const ADMIN_MAGIC: u8 = 0xA0;
const SPLIT: u8 = 1;
const PREPARE_MERGE: u8 = 2;
const COMMIT_MERGE: u8 = 3;
const ROLLBACK_MERGE: u8 = 4;

/// Where a group created by a split starts its log (index and term).
pub const INIT_INDEX: u64 = 5;
pub const INIT_TERM: u64 = 5;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitEntry {
    /// The first slot of the new group.
    pub at: u16,
    pub new_id: u64,
    /// The parent's epoch the split was proposed for (a stale one is ignored).
    pub epoch: u64,
}

impl SplitEntry {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![ADMIN_MAGIC, SPLIT];
        out.extend_from_slice(&self.at.to_be_bytes());
        out.extend_from_slice(&self.new_id.to_be_bytes());
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out
    }

    pub fn decode(raw: &[u8]) -> Result<SplitEntry, String> {
        if raw.len() != 20 || raw[0] != ADMIN_MAGIC || raw[1] != SPLIT {
            return Err("not a split entry".into());
        }
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&raw[i..i + 8]);
            u64::from_be_bytes(b)
        };
        Ok(SplitEntry {
            at: u16::from_be_bytes([raw[2], raw[3]]),
            new_id: u64_at(4),
            epoch: u64_at(12),
        })
    }
}

/// Freezes a group about to be merged away: its epoch goes up, so every request routed with
/// the old one is refused from here on (its data stops changing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrepareMerge {
    pub epoch: u64,
}

/// Extends the target over the (frozen) source's slots; replicas drop the source group but
/// keep its data, which is the target's now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitMerge {
    pub source: u64,
    pub source_first: u16,
    pub source_last: u16,
    /// The source's epoch once frozen.
    pub source_epoch: u64,
    /// The target's epoch the merge was proposed for (a stale one is ignored).
    pub target_epoch: u64,
    /// The source's version base and an index at or past its last write: the target's
    /// versions continue past them.
    pub source_version_base: u64,
    pub source_last_index: u64,
}

/// Unfreezes a merge's source that will never be merged (a replica of it is down, say):
/// from epoch `to_epoch - 2` (the merge's PrepareMerge may still be in flight: it is then
/// refused) or `to_epoch - 1` (frozen) to `to_epoch`, which the metadata routes with next.
/// Proposed only once the metadata recorded that the merge will not commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RollbackMerge {
    pub to_epoch: u64,
}

/// Any admin entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminEntry {
    Split(SplitEntry),
    PrepareMerge(PrepareMerge),
    CommitMerge(CommitMerge),
    RollbackMerge(RollbackMerge),
}

fn be_u64(raw: &[u8], i: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&raw[i..i + 8]);
    u64::from_be_bytes(b)
}

impl PrepareMerge {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![ADMIN_MAGIC, PREPARE_MERGE];
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out
    }
}

impl CommitMerge {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![ADMIN_MAGIC, COMMIT_MERGE];
        out.extend_from_slice(&self.source.to_be_bytes());
        out.extend_from_slice(&self.source_first.to_be_bytes());
        out.extend_from_slice(&self.source_last.to_be_bytes());
        out.extend_from_slice(&self.source_epoch.to_be_bytes());
        out.extend_from_slice(&self.target_epoch.to_be_bytes());
        out.extend_from_slice(&self.source_version_base.to_be_bytes());
        out.extend_from_slice(&self.source_last_index.to_be_bytes());
        out
    }
}

impl AdminEntry {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            AdminEntry::Split(e) => e.encode(),
            AdminEntry::PrepareMerge(e) => e.encode(),
            AdminEntry::CommitMerge(e) => e.encode(),
            AdminEntry::RollbackMerge(e) => {
                let mut out = vec![ADMIN_MAGIC, ROLLBACK_MERGE];
                out.extend_from_slice(&e.to_epoch.to_be_bytes());
                out
            }
        }
    }

    pub fn decode(raw: &[u8]) -> Result<AdminEntry, String> {
        match (raw.first(), raw.get(1), raw.len()) {
            (Some(&ADMIN_MAGIC), Some(&SPLIT), _) => SplitEntry::decode(raw).map(AdminEntry::Split),
            (Some(&ADMIN_MAGIC), Some(&PREPARE_MERGE), 10) => {
                Ok(AdminEntry::PrepareMerge(PrepareMerge {
                    epoch: be_u64(raw, 2),
                }))
            }
            // 30 bytes: written before version bases (then 0).
            (Some(&ADMIN_MAGIC), Some(&COMMIT_MERGE), n @ (30 | 46)) => {
                Ok(AdminEntry::CommitMerge(CommitMerge {
                    source: be_u64(raw, 2),
                    source_first: u16::from_be_bytes([raw[10], raw[11]]),
                    source_last: u16::from_be_bytes([raw[12], raw[13]]),
                    source_epoch: be_u64(raw, 14),
                    target_epoch: be_u64(raw, 22),
                    source_version_base: if n == 46 { be_u64(raw, 30) } else { 0 },
                    source_last_index: if n == 46 { be_u64(raw, 38) } else { 0 },
                }))
            }
            (Some(&ADMIN_MAGIC), Some(&ROLLBACK_MERGE), 10) => {
                Ok(AdminEntry::RollbackMerge(RollbackMerge {
                    to_epoch: be_u64(raw, 2),
                }))
            }
            _ => Err("unknown admin entry".into()),
        }
    }
}

pub fn is_admin(data: &[u8]) -> bool {
    data.first() == Some(&ADMIN_MAGIC)
}

/// A group's slot range and epoch as its own log last set them, and its version base.
///
/// The version base keeps WATCH revisions and collection versions (both derived from the
/// applying entry's index) unique along a lineage of splits and merges: a group counts from
/// `version_base + index`, a child from past its parent's split index, and a merge's target
/// from past its source's last index (see `store::apply` and `Ctx::new_version`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RangeState {
    pub first: u16,
    pub last: u16,
    pub epoch: u64,
    pub version_base: u64,
}

impl RangeState {
    pub fn key(group: u64) -> Vec<u8> {
        let mut k = b"range|".to_vec();
        k.extend_from_slice(&group.to_be_bytes());
        k
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(20);
        out.extend_from_slice(&self.first.to_be_bytes());
        out.extend_from_slice(&self.last.to_be_bytes());
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(&self.version_base.to_be_bytes());
        out
    }

    /// 12 bytes (from before version bases: 0) or 20.
    pub fn decode(raw: &[u8]) -> Option<RangeState> {
        if raw.len() != 12 && raw.len() != 20 {
            return None;
        }
        Some(RangeState {
            first: u16::from_be_bytes([raw[0], raw[1]]),
            last: u16::from_be_bytes([raw[2], raw[3]]),
            epoch: be_u64(raw, 4),
            version_base: if raw.len() == 20 { be_u64(raw, 12) } else { 0 },
        })
    }

    pub fn load(engine: &Engine, group: u64) -> Result<Option<RangeState>, String> {
        match engine.get(Cf::Sys, &Self::key(group)) {
            Ok(Some(raw)) => RangeState::decode(&raw)
                .map(Some)
                .ok_or_else(|| format!("corrupt range of group {group}")),
            Ok(None) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_ranges_round_trip() {
        let e = SplitEntry {
            at: 8192,
            new_id: 9,
            epoch: 3,
        };
        let raw = e.encode();
        assert!(is_admin(&raw));
        assert_eq!(SplitEntry::decode(&raw), Ok(e));
        assert!(SplitEntry::decode(&raw[..10]).is_err());
        assert!(!is_admin(&[2, 0, 0]));
        let all = [
            AdminEntry::Split(SplitEntry {
                at: 1,
                new_id: 2,
                epoch: 3,
            }),
            AdminEntry::PrepareMerge(PrepareMerge { epoch: 4 }),
            AdminEntry::CommitMerge(CommitMerge {
                source: 5,
                source_first: 6,
                source_last: 7,
                source_epoch: 8,
                target_epoch: 9,
                source_version_base: 11,
                source_last_index: 12,
            }),
            AdminEntry::RollbackMerge(RollbackMerge { to_epoch: 10 }),
        ];
        for e in all {
            assert_eq!(AdminEntry::decode(&e.encode()), Ok(e.clone()));
            assert!(AdminEntry::decode(&e.encode()[..9]).is_err());
        }
        let r = RangeState {
            first: 1,
            last: 16383,
            epoch: 7,
            version_base: 99,
        };
        assert_eq!(RangeState::decode(&r.encode()), Some(r));
        let old = RangeState {
            version_base: 0,
            ..r
        };
        assert_eq!(RangeState::decode(&r.encode()[..12]), Some(old));
        assert_eq!(RangeState::decode(b"short"), None);
    }
}
