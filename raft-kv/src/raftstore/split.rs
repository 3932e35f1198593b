//! Splitting a group inside its own log, and the slot range a group persists.
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

pub fn is_admin(data: &[u8]) -> bool {
    data.first() == Some(&ADMIN_MAGIC)
}

/// A group's slot range and epoch as its own log last set them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RangeState {
    pub first: u16,
    pub last: u16,
    pub epoch: u64,
}

impl RangeState {
    pub fn key(group: u64) -> Vec<u8> {
        let mut k = b"range|".to_vec();
        k.extend_from_slice(&group.to_be_bytes());
        k
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12);
        out.extend_from_slice(&self.first.to_be_bytes());
        out.extend_from_slice(&self.last.to_be_bytes());
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out
    }

    pub fn decode(raw: &[u8]) -> Option<RangeState> {
        if raw.len() != 12 {
            return None;
        }
        let mut b = [0u8; 8];
        b.copy_from_slice(&raw[4..]);
        Some(RangeState {
            first: u16::from_be_bytes([raw[0], raw[1]]),
            last: u16::from_be_bytes([raw[2], raw[3]]),
            epoch: u64::from_be_bytes(b),
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
        let r = RangeState {
            first: 1,
            last: 16383,
            epoch: 7,
        };
        assert_eq!(RangeState::decode(&r.encode()), Some(r));
        assert_eq!(RangeState::decode(b"short"), None);
    }
}
