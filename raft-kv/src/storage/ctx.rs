//! The view a command executes against.
//!
//! A read context reads one RocksDB snapshot, so a multi-record read (meta then elements) is
//! consistent. A write context is used by the single applier of a state machine: reads go to
//! the database through an overlay of the batch's own pending writes, so later commands of the
//! same batch see earlier ones; the overlay becomes one atomic `WriteBatch`.
//!
//! Determinism: everything a write command may depend on besides stored data (time, randomness,
//! version numbers) comes from the write op through this context, never from the local clock or
//! an OS RNG, so replicas applying the same log reach identical states.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use rocksdb::{Direction, IteratorMode, ReadOptions, SnapshotWithThreadMode, WriteBatch, DB};

use super::encoding::{meta_key, sub_prefix, Cf, DataType, Meta};
use super::engine::Engine;
use super::slot::SLOT_COUNT;
use crate::cmd::CmdError;

/// Seeds for read contexts' random numbers.
static READ_SEEDS: AtomicU64 = AtomicU64::new(0x2545_F491_4F6C_DD1D);

/// Engine records read by a write context, by (column family, key).
type ReadCache = HashMap<(Cf, Vec<u8>), Option<Vec<u8>>>;
type Overlay = BTreeMap<(Cf, Vec<u8>), Option<Vec<u8>>>;
type OverlayIter<'o> = Box<dyn Iterator<Item = (&'o (Cf, Vec<u8>), &'o Option<Vec<u8>>)> + 'o>;

pub struct Ctx<'a> {
    engine: &'a Engine,
    snapshot: Option<SnapshotWithThreadMode<'a, DB>>,
    overlay: Option<Overlay>,
    now_ms: u64,
    rng: u64,
    seq: u64,
    versions_issued: u64,
    touched: Vec<Bytes>,
    /// Whether this batch wrote a key with a time to live (see `Engine::note_volatile`).
    volatile: bool,
    /// The shard whose state this context works on: its group id and slot range. Keyspace-wide
    /// commands (KEYS, SCAN, FLUSHALL, ...) see only these slots.
    shard: (u64, u16, u16),
    /// See `set_version_base`.
    version_base: u64,
    /// Write contexts: records already read from the engine in this batch. The engine does
    /// not change while a batch is built (writes go to the overlay, which is checked first),
    /// so a command that reads a key twice (SET: its options, then the overwrite) pays for
    /// one engine lookup.
    read_cache: Option<RefCell<ReadCache>>,
}

impl<'a> Ctx<'a> {
    /// A read-only view of one consistent snapshot at local time `now_ms`.
    pub fn read(engine: &'a Engine, now_ms: u64) -> Ctx<'a> {
        Ctx {
            engine,
            snapshot: Some(engine.db().snapshot()),
            overlay: None,
            now_ms,
            // Reads are not replicated, so they may draw from a process-wide sequence: two
            // SRANDMEMBER calls in the same millisecond must not return the same pick.
            rng: now_ms ^ READ_SEEDS.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed),
            seq: 0,
            versions_issued: 0,
            touched: Vec::new(),
            volatile: false,
            shard: (0, 0, SLOT_COUNT - 1),
            version_base: 0,
            read_cache: None,
        }
    }

    /// A writable view for the applier. Call `begin_op` before each op.
    pub fn write(engine: &'a Engine) -> Ctx<'a> {
        Ctx {
            engine,
            snapshot: None,
            overlay: Some(Overlay::new()),
            now_ms: 0,
            rng: 0,
            seq: 0,
            versions_issued: 0,
            touched: Vec::new(),
            volatile: false,
            shard: (0, 0, SLOT_COUNT - 1),
            version_base: 0,
            read_cache: Some(RefCell::new(HashMap::new())),
        }
    }

    /// Starts the next write op: its sequence number (unique, increasing per state machine),
    /// its timestamp and random seed as chosen by the proposer.
    pub fn begin_op(&mut self, seq: u64, now_ms: u64, seed: u64) {
        self.seq = seq;
        self.now_ms = now_ms;
        self.rng = seed;
        self.versions_issued = 0;
    }

    /// Confines keyspace-wide commands to one shard's slots; its group id keeps collection
    /// versions unique across shards (a key may move between shards).
    pub fn set_shard(&mut self, group: u64, first_slot: u16, last_slot: u16) {
        self.shard = (group, first_slot, last_slot.min(SLOT_COUNT - 1));
    }

    /// What the group adds to entry indexes, so revisions and versions stay unique along
    /// splits and merges (`raftstore::split::RangeState`).
    pub fn set_version_base(&mut self, base: u64) {
        self.version_base = base;
    }

    /// The slot range keyspace-wide commands cover.
    pub fn slot_range(&self) -> (u16, u16) {
        (self.shard.1, self.shard.2)
    }

    pub fn is_writable(&self) -> bool {
        self.overlay.is_some()
    }

    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// The sequence number of the op being applied (0 in a read context).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Deterministic random numbers (splitmix64 seeded by the op).
    pub fn rand_u64(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniformly random index below `n` (n > 0).
    pub fn rand_below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        self.rand_u64() % n
    }

    /// A version for a newly created collection: unique across the state machine's life,
    /// even for several creations within one op.
    /// Layout: `base + seq (36 bits) | group (8 bits) | n (20 bits)`; always above the
    /// versions of the earlier `seq << 20 | n` layout for the same sequence number. The
    /// version base makes `base + seq` unique along splits and merges (a key only ever
    /// moves between groups that way), so the group bits need not be unique.
    pub fn new_version(&mut self) -> u64 {
        self.versions_issued += 1;
        (self.version_base.wrapping_add(self.seq) << 28)
            | ((self.shard.0 & 0xff) << 20)
            | (self.versions_issued & 0xf_ffff)
    }

    /// User keys modified since the last `take_touched` (for WATCH and blocked clients).
    pub fn take_touched(&mut self) -> Vec<Bytes> {
        std::mem::take(&mut self.touched)
    }

    /// Whether this batch wrote a key with a time to live; the caller tells the engine once
    /// the batch is written (a scan must be able to see the key when it learns of it).
    pub fn wrote_volatile(&self) -> bool {
        self.volatile
    }

    /// Consumes a write context into the batch to commit.
    pub fn into_batch(self) -> WriteBatch {
        let mut batch = WriteBatch::default();
        if let Some(overlay) = self.overlay {
            for ((cf, key), val) in overlay {
                let handle = self.engine.cf(cf);
                match val {
                    Some(v) => batch.put_cf(handle, key, v),
                    None => batch.delete_cf(handle, key),
                }
            }
        }
        batch
    }

    pub fn engine(&self) -> &'a Engine {
        self.engine
    }

    fn read_opts(&self) -> ReadOptions {
        let mut ro = ReadOptions::default();
        if let Some(s) = &self.snapshot {
            ro.set_snapshot(s);
        }
        ro
    }

    // ---- raw record access ----

    pub fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, CmdError> {
        let Some(overlay) = &self.overlay else {
            return Ok(self
                .engine
                .db()
                .get_cf_opt(self.engine.cf(cf), key, &self.read_opts())?);
        };
        let k = (cf, key.to_vec());
        if let Some(v) = overlay.get(&k) {
            return Ok(v.clone());
        }
        if let Some(v) = self
            .read_cache
            .as_ref()
            .and_then(|c| c.borrow().get(&k).cloned())
        {
            return Ok(v);
        }
        let v = self
            .engine
            .db()
            .get_cf_opt(self.engine.cf(cf), key, &self.read_opts())?;
        // Large values are not kept: the cache must not double a batch's memory.
        if let Some(c) = self
            .read_cache
            .as_ref()
            .filter(|_| v.as_ref().is_none_or(|v| v.len() <= 16 << 10))
        {
            c.borrow_mut().insert(k, v.clone());
        }
        Ok(v)
    }

    pub fn put(&mut self, cf: Cf, key: Vec<u8>, value: Vec<u8>) -> Result<(), CmdError> {
        self.overlay_mut()?.insert((cf, key), Some(value));
        Ok(())
    }

    pub fn delete(&mut self, cf: Cf, key: Vec<u8>) -> Result<(), CmdError> {
        self.overlay_mut()?.insert((cf, key), None);
        Ok(())
    }

    fn overlay_mut(&mut self) -> Result<&mut Overlay, CmdError> {
        self.overlay
            .as_mut()
            .ok_or_else(|| CmdError::err("internal: write in a read-only context"))
    }

    /// Visits records of `cf` in `[lower, upper)` (an empty `upper` is unbounded) in key order,
    /// or reverse order, merging pending writes. `f` returns `false` to stop.
    pub fn scan(
        &self,
        cf: Cf,
        lower: &[u8],
        upper: &[u8],
        reverse: bool,
        mut f: impl FnMut(&[u8], &[u8]) -> Result<bool, CmdError>,
    ) -> Result<(), CmdError> {
        let mut ro = self.read_opts();
        ro.set_iterate_lower_bound(lower.to_vec());
        if !upper.is_empty() {
            ro.set_iterate_upper_bound(upper.to_vec());
        }
        let mode = if reverse {
            IteratorMode::End
        } else {
            IteratorMode::From(lower, Direction::Forward)
        };
        let mut db_iter = self
            .engine
            .db()
            .iterator_cf_opt(self.engine.cf(cf), ro, mode)
            .peekable();

        let empty = Overlay::new();
        let overlay = self.overlay.as_ref().unwrap_or(&empty);
        let lo = Bound::Included((cf, lower.to_vec()));
        let hi = if upper.is_empty() {
            // All keys of this column family: bounded by the next column family.
            match next_cf(cf) {
                Some(next) => Bound::Excluded((next, Vec::new())),
                None => Bound::Unbounded,
            }
        } else {
            Bound::Excluded((cf, upper.to_vec()))
        };
        let range = overlay.range((lo, hi));
        let mut ov: OverlayIter = if reverse {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };
        let mut ov_next = ov.next();

        loop {
            let db_key: Option<&[u8]> = match db_iter.peek() {
                Some(Ok((k, _))) => Some(k),
                Some(Err(e)) => return Err(CmdError::Storage(e.to_string())),
                None => None,
            };
            let take_overlay = match (db_key, ov_next) {
                (None, None) => return Ok(()),
                (None, Some(_)) => true,
                (Some(_), None) => false,
                (Some(dk), Some(((_, ok), _))) => {
                    if reverse {
                        ok.as_slice() >= dk
                    } else {
                        ok.as_slice() <= dk
                    }
                }
            };
            if take_overlay {
                let Some(((_, ok), ov_val)) = ov_next else {
                    return Ok(());
                };
                // An overlay entry shadows the database record with the same key.
                if db_key == Some(ok.as_slice()) {
                    db_iter.next();
                }
                ov_next = ov.next();
                if let Some(v) = ov_val {
                    if !f(ok, v)? {
                        return Ok(());
                    }
                }
            } else {
                match db_iter.next() {
                    Some(Ok((k, v))) => {
                        if !f(&k, &v)? {
                            return Ok(());
                        }
                    }
                    Some(Err(e)) => return Err(CmdError::Storage(e.to_string())),
                    None => return Ok(()),
                }
            }
        }
    }

    // ---- key-level access used by the data types ----

    /// The live metadata of `key`, treating an expired key as absent.
    pub fn meta(&self, key: &[u8]) -> Result<Option<Meta>, CmdError> {
        match self.get(Cf::Meta, &meta_key(key))? {
            None => Ok(None),
            Some(raw) => {
                let meta = Meta::decode(&raw).ok_or_else(|| {
                    CmdError::Storage(format!(
                        "corrupt metadata for key {:?}",
                        String::from_utf8_lossy(key)
                    ))
                })?;
                if meta.is_expired(self.now_ms) {
                    Ok(None)
                } else {
                    Ok(Some(meta))
                }
            }
        }
    }

    /// The live metadata of `key` if it holds `dtype`; `WRONGTYPE` if it holds another type.
    pub fn meta_of(&self, key: &[u8], dtype: DataType) -> Result<Option<Meta>, CmdError> {
        match self.meta(key)? {
            Some(m) if m.dtype != dtype => Err(CmdError::WrongType),
            other => Ok(other),
        }
    }

    /// Writes `key`'s metadata, stamping it with this op's sequence number. Every write
    /// command that changes a key calls this (WATCH compares the stamp).
    pub fn put_meta(&mut self, key: &[u8], meta: &mut Meta) -> Result<(), CmdError> {
        meta.rev = self.version_base.wrapping_add(self.seq);
        self.volatile |= meta.expire_ms != 0;
        self.touched.push(Bytes::copy_from_slice(key));
        self.put(Cf::Meta, meta_key(key), meta.encode())
    }

    /// Deletes `key` whatever its type, in O(1): a collection's elements are left to the
    /// garbage sweeper through a `gc` record. An expired record is removed too. Returns
    /// whether a live key was deleted.
    pub fn delete_key(&mut self, key: &[u8]) -> Result<bool, CmdError> {
        let mk = meta_key(key);
        let Some(raw) = self.get(Cf::Meta, &mk)? else {
            return Ok(false);
        };
        let meta = Meta::decode(&raw).ok_or_else(|| {
            CmdError::Storage(format!(
                "corrupt metadata for key {:?}",
                String::from_utf8_lossy(key)
            ))
        })?;
        if meta.dtype != DataType::String {
            self.put(Cf::Gc, sub_prefix(key, meta.version), Vec::new())?;
        }
        self.delete(Cf::Meta, mk)?;
        self.touched.push(Bytes::copy_from_slice(key));
        Ok(!meta.is_expired(self.now_ms))
    }

    /// Revision of `key` for WATCH: the version base plus the seq of the op that last wrote
    /// it, 0 if absent.
    pub fn key_rev(&self, key: &[u8]) -> Result<u64, CmdError> {
        Ok(self.meta(key)?.map(|m| m.rev).unwrap_or(0))
    }
}

/// The column family after `cf` in the overlay's ordering (`Cf` derives `Ord`).
fn next_cf(cf: Cf) -> Option<Cf> {
    match cf {
        Cf::Meta => Some(Cf::Sub),
        Cf::Sub => Some(Cf::Score),
        Cf::Score => Some(Cf::Gc),
        Cf::Gc => Some(Cf::Sys),
        Cf::Sys => None,
    }
}
