//! The Raft log engine: one durable store for the logs and hard states of every group on a
//! node, written with one synced batch per runtime round (group commit across groups).
//!
//! Behind the [`LogEngine`] trait so a dedicated log engine (raft-engine style) can replace
//! the RocksDB implementation. Key layout of [`RocksLogEngine`] (its own RocksDB instance,
//! separate from the state machine, so the state machine can write without fsync):
//! - `0x01 | group (8B BE) | index (8B BE)` -> `raftpb.Entry`
//! - `0x02 | group (8B BE)` -> [`LocalState`] (hard state + truncation point)

use std::path::Path;

use prost::Message as _;
use raft::eraftpb::{Entry, HardState};
use rocksdb::{Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB};

use super::quarantine::StoreError;
use crate::storage::check_corruption;

const ENTRY: u8 = 0x01;
const STATE: u8 = 0x02;

/// What a group persists besides its entries: the hard state and where the log begins.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LocalState {
    pub hard_state: HardState,
    /// Index and term of the last entry removed by compaction or replaced by a snapshot.
    pub truncated_index: u64,
    pub truncated_term: u64,
}

impl LocalState {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(40);
        for v in [
            self.hard_state.term,
            self.hard_state.vote,
            self.hard_state.commit,
            self.truncated_index,
            self.truncated_term,
        ] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out
    }

    fn decode(raw: &[u8]) -> Option<LocalState> {
        if raw.len() != 40 {
            return None;
        }
        let f = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&raw[i * 8..i * 8 + 8]);
            u64::from_be_bytes(b)
        };
        Some(LocalState {
            hard_state: HardState {
                term: f(0),
                vote: f(1),
                commit: f(2),
            },
            truncated_index: f(3),
            truncated_term: f(4),
        })
    }
}

/// Writes for many groups, committed atomically by [`LogEngine::write`].
#[derive(Default)]
pub struct LogBatch {
    ops: Vec<LogOp>,
}

enum LogOp {
    Put {
        group: u64,
        entry: Entry,
    },
    /// Deletes the entries with index in `[from, to)`.
    DeleteRange {
        group: u64,
        from: u64,
        to: u64,
    },
    State {
        group: u64,
        state: LocalState,
    },
}

impl LogBatch {
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Appends `entries` (contiguous), dropping any old entries after the last new one
    /// (a conflicting suffix) up to `old_last`.
    pub fn append(&mut self, group: u64, entries: &[Entry], old_last: u64) {
        let Some(last) = entries.last() else { return };
        let new_last = last.index;
        for e in entries {
            self.ops.push(LogOp::Put {
                group,
                entry: e.clone(),
            });
        }
        if old_last > new_last {
            self.ops.push(LogOp::DeleteRange {
                group,
                from: new_last + 1,
                to: old_last + 1,
            });
        }
    }

    /// Removes entries with index in `[from, to)` (compaction, snapshot install).
    pub fn delete_entries(&mut self, group: u64, from: u64, to: u64) {
        if from < to {
            self.ops.push(LogOp::DeleteRange { group, from, to });
        }
    }

    pub fn put_state(&mut self, group: u64, state: LocalState) {
        self.ops.push(LogOp::State { group, state });
    }
}

/// Durable Raft log storage shared by all groups of a node.
pub trait LogEngine: Send + Sync {
    /// Commits a batch atomically; with `sync` it is durable when this returns.
    fn write(&self, batch: LogBatch, sync: bool) -> Result<(), String>;
    /// Entries `[low, high)` of a group, stopping once `max_size` bytes are exceeded (at least
    /// one entry is returned). Missing entries are an error.
    fn entries(
        &self,
        group: u64,
        low: u64,
        high: u64,
        max_size: Option<u64>,
    ) -> Result<Vec<Entry>, String>;
    /// The persisted local state of a group, if it was ever written.
    fn state(&self, group: u64) -> Result<Option<LocalState>, String>;
    /// The last entry of a group (index, term), if the group has entries.
    fn last_entry(&self, group: u64) -> Result<Option<(u64, u64)>, String>;
}

pub struct RocksLogEngine {
    db: DB,
}

fn entry_key(group: u64, index: u64) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[0] = ENTRY;
    k[1..9].copy_from_slice(&group.to_be_bytes());
    k[9..].copy_from_slice(&index.to_be_bytes());
    k
}

fn state_key(group: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = STATE;
    k[1..].copy_from_slice(&group.to_be_bytes());
    k
}

impl RocksLogEngine {
    pub fn open(path: &Path) -> Result<RocksLogEngine, StoreError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.set_max_background_jobs(2);
        // The log is written once, read mostly from the memtable and deleted soon: favour
        // write throughput over read amplification.
        // Bounded: entries are deleted soon after they apply, and memory must not grow
        // with the number of groups.
        opts.set_write_buffer_size(32 << 20);
        opts.set_db_write_buffer_size(32 << 20);
        opts.set_compression_type(rocksdb::DBCompressionType::None);
        // A record cut short at the end is a torn write that was never acknowledged: drop
        // it. Anything else unreadable (a checksum mismatch mid-log) may be an entry this
        // node acknowledged, so refuse to start rather than replay a log with a hole (the
        // default, point-in-time recovery, would silently stop at it).
        opts.set_wal_recovery_mode(rocksdb::DBRecoveryMode::TolerateCorruptedTailRecords);
        let db = DB::open(&opts, path).map_err(|e| {
            StoreError::from_text(format!(
                "cannot open the raft log at {}: {e}",
                path.display()
            ))
        })?;
        Ok(RocksLogEngine { db })
    }

    /// Reads the whole log once, as a start-up check: every record must pass RocksDB's
    /// checksums and decode, and each group's entries must follow each other without a
    /// hole (a hole is entries this node may have acknowledged, lost).
    pub fn verify(&self) -> Result<(), StoreError> {
        let mut last: Option<(u64, u64)> = None;
        for item in self.db.iterator(IteratorMode::Start) {
            let (k, v) =
                item.map_err(|e| StoreError::from_text(format!("cannot read the raft log: {e}")))?;
            match (k.first(), k.len()) {
                (Some(&ENTRY), 17) => {
                    let group = u64::from_be_bytes(k[1..9].try_into().unwrap_or_default());
                    let index = u64::from_be_bytes(k[9..17].try_into().unwrap_or_default());
                    let e = Entry::decode(&*v).map_err(|e| {
                        StoreError::corrupt(format!(
                            "corrupt raft log entry {index} of group {group}: {e}"
                        ))
                    })?;
                    if e.index != index {
                        return Err(StoreError::corrupt(format!(
                            "corrupt raft log: entry {index} of group {group} says it is {}",
                            e.index
                        )));
                    }
                    if let Some((g, i)) = last {
                        if g == group && i + 1 != index {
                            return Err(StoreError::corrupt(format!(
                                "corrupt raft log: group {group} has entries {i} and {index} \
                                 but none between"
                            )));
                        }
                    }
                    last = Some((group, index));
                }
                (Some(&STATE), 9) => {
                    if LocalState::decode(&v).is_none() {
                        let group = u64::from_be_bytes(k[1..9].try_into().unwrap_or_default());
                        return Err(StoreError::corrupt(format!(
                            "corrupt raft state record of group {group}"
                        )));
                    }
                }
                _ => {
                    return Err(StoreError::corrupt(format!(
                        "corrupt raft log: unknown key {k:02x?}"
                    )))
                }
            }
        }
        Ok(())
    }
}

impl LogEngine for RocksLogEngine {
    fn write(&self, batch: LogBatch, sync: bool) -> Result<(), String> {
        let mut wb = WriteBatch::default();
        for op in batch.ops {
            match op {
                LogOp::Put { group, entry } => {
                    wb.put(entry_key(group, entry.index), entry.encode_to_vec())
                }
                LogOp::DeleteRange { group, from, to } => {
                    wb.delete_range(entry_key(group, from), entry_key(group, to))
                }
                LogOp::State { group, state } => wb.put(state_key(group), state.encode()),
            }
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(sync);
        self.db.write_opt(wb, &wo).map_err(|e| {
            check_corruption(&e);
            format!("raft log write failed: {e}")
        })
    }

    fn entries(
        &self,
        group: u64,
        low: u64,
        high: u64,
        max_size: Option<u64>,
    ) -> Result<Vec<Entry>, String> {
        let mut out = Vec::with_capacity((high - low).min(1024) as usize);
        let mut size = 0u64;
        let end = entry_key(group, high);
        // Bounded: without an upper bound the iterator would walk on into the next group's
        // key range, over every entry compaction deleted there.
        let mut ro = rocksdb::ReadOptions::default();
        ro.set_iterate_upper_bound(end.to_vec());
        let iter = self.db.iterator_opt(
            IteratorMode::From(&entry_key(group, low), Direction::Forward),
            ro,
        );
        for (expect, item) in (low..).zip(iter) {
            let (k, v) = item.map_err(read_failed)?;
            if k.as_ref() >= &end[..] {
                break;
            }
            let e = Entry::decode(v.as_ref())
                .map_err(|e| format!("corrupt raft log entry in group {group}: {e}"))?;
            if e.index != expect {
                return Err(format!(
                    "raft log of group {group} has a gap: expected entry {expect}, found {}",
                    e.index
                ));
            }
            size += v.len() as u64;
            if !out.is_empty() && max_size.is_some_and(|m| size > m) {
                break;
            }
            out.push(e);
        }
        if out.is_empty() && low < high {
            return Err(format!("raft log of group {group} is missing entry {low}"));
        }
        Ok(out)
    }

    fn state(&self, group: u64) -> Result<Option<LocalState>, String> {
        match self.db.get(state_key(group)) {
            Ok(Some(raw)) => LocalState::decode(&raw)
                .map(Some)
                .ok_or_else(|| format!("corrupt raft state record of group {group}")),
            Ok(None) => Ok(None),
            Err(e) => Err(read_failed(e)),
        }
    }

    fn last_entry(&self, group: u64) -> Result<Option<(u64, u64)>, String> {
        let mut ro = rocksdb::ReadOptions::default();
        ro.set_iterate_lower_bound(entry_key(group, 0).to_vec());
        let mut iter = self.db.iterator_opt(
            IteratorMode::From(&entry_key(group, u64::MAX), Direction::Reverse),
            ro,
        );
        match iter.next() {
            Some(Ok((k, v)))
                if k.len() == 17 && k[0] == ENTRY && k[1..9] == group.to_be_bytes() =>
            {
                let e = Entry::decode(v.as_ref())
                    .map_err(|e| format!("corrupt raft log entry in group {group}: {e}"))?;
                Ok(Some((e.index, e.term)))
            }
            Some(Err(e)) => Err(read_failed(e)),
            _ => Ok(None),
        }
    }
}

fn read_failed(e: rocksdb::Error) -> String {
    check_corruption(&e);
    format!("raft log read failed: {e}")
}

/// A log entry for tests: `index`, `term` and 10 bytes of data.
#[cfg(test)]
pub(crate) fn test_entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: vec![index as u8; 10].into(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::test_entry as ent;

    #[test]
    fn append_truncates_conflicting_suffix_and_keeps_groups_apart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let eng = RocksLogEngine::open(dir.path()).expect("open");
        let mut b = LogBatch::default();
        b.append(1, &(1..=5).map(|i| ent(i, 1)).collect::<Vec<_>>(), 0);
        b.append(2, &(1..=3).map(|i| ent(i, 7)).collect::<Vec<_>>(), 0);
        eng.write(b, true).expect("write");
        let mut b = LogBatch::default();
        b.append(1, &[ent(3, 2)], 5);
        eng.write(b, true).expect("write");
        assert_eq!(eng.last_entry(1).expect("last"), Some((3, 2)));
        assert_eq!(eng.last_entry(2).expect("last"), Some((3, 7)));
        assert_eq!(eng.last_entry(3).expect("last"), None);
        let got = eng.entries(1, 1, 4, None).expect("entries");
        assert_eq!(
            got.iter().map(|e| (e.index, e.term)).collect::<Vec<_>>(),
            [(1, 1), (2, 1), (3, 2)]
        );
        assert!(eng.entries(1, 4, 5, None).is_err(), "entry 4 was truncated");
        let limited = eng.entries(2, 1, 4, Some(1)).expect("entries");
        assert_eq!(limited.len(), 1, "size limit still returns one entry");
    }

    #[test]
    fn state_round_trips_and_survives_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let st = LocalState {
            hard_state: HardState {
                term: 3,
                vote: 2,
                commit: 9,
            },
            truncated_index: 5,
            truncated_term: 2,
        };
        {
            let eng = RocksLogEngine::open(dir.path()).expect("open");
            assert_eq!(eng.state(1).expect("state"), None);
            let mut b = LogBatch::default();
            b.put_state(1, st.clone());
            b.append(1, &[ent(6, 2), ent(7, 3)], 0);
            b.delete_entries(1, 0, 6);
            eng.write(b, true).expect("write");
        }
        let eng = RocksLogEngine::open(dir.path()).expect("reopen");
        assert_eq!(eng.state(1).expect("state"), Some(st));
        assert_eq!(eng.last_entry(1).expect("last"), Some((7, 3)));
    }

    #[test]
    fn verify_finds_undecodable_records_and_holes_but_not_compaction() {
        let dir = tempfile::tempdir().expect("tempdir");
        let eng = RocksLogEngine::open(dir.path()).expect("open");
        let mut b = LogBatch::default();
        b.append(1, &(1..=9).map(|i| ent(i, 1)).collect::<Vec<_>>(), 0);
        b.append(2, &(4..=6).map(|i| ent(i, 2)).collect::<Vec<_>>(), 0);
        b.put_state(1, LocalState::default());
        eng.write(b, true).expect("write");
        // Compaction and a conflicting suffix leave no hole.
        let mut b = LogBatch::default();
        b.delete_entries(1, 1, 4);
        b.append(1, &[ent(7, 2)], 9);
        eng.write(b, true).expect("write");
        eng.verify().expect("a healthy log");

        eng.db.delete(entry_key(1, 5)).expect("delete");
        let e = eng.verify().expect_err("a hole");
        assert!(e.corrupt && e.text.contains("4 and 6"), "{e:?}");
        eng.db.put(entry_key(1, 5), b"\xff\xff\xff").expect("put");
        let e = eng.verify().expect_err("garbage");
        assert!(e.corrupt && e.text.contains("entry 5 of group 1"), "{e:?}");
        eng.db
            .put(entry_key(1, 5), ent(6, 1).encode_to_vec())
            .expect("put");
        assert!(eng.verify().expect_err("misplaced").corrupt);
        eng.db
            .put(entry_key(1, 5), ent(5, 1).encode_to_vec())
            .expect("put");
        eng.verify().expect("repaired");
        eng.db.put(state_key(2), b"short").expect("put");
        assert!(eng
            .verify()
            .expect_err("bad state")
            .text
            .contains("state record"));
    }
}
