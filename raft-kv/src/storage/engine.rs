//! The RocksDB instance holding the state machine (all column families of `Cf`).

use std::path::{Path, PathBuf};

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, Options, WriteBatch,
    WriteOptions, DB,
};

use super::encoding::Cf;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("rocksdb at {path}: {source}")]
    Rocks {
        path: PathBuf,
        #[source]
        source: rocksdb::Error,
    },
    #[error("corrupt record in column family {cf}: {what}")]
    Corrupt { cf: &'static str, what: String },
}

/// What the node does when RocksDB reports corruption (a checksum mismatch) at run time;
/// set once at start. Unset (a lone node: nothing to rebuild from) the error is only
/// returned.
type CorruptionHook = Box<dyn Fn(&str) + Send + Sync>;
static ON_CORRUPTION: std::sync::OnceLock<CorruptionHook> = std::sync::OnceLock::new();

pub fn on_corruption(f: impl Fn(&str) + Send + Sync + 'static) {
    let _ = ON_CORRUPTION.set(Box::new(f));
}

/// Every RocksDB error of the state machine and the Raft log passes here: corrupt data must
/// stop the node before it is served or applied (replicas would diverge).
pub fn check_corruption(e: &rocksdb::Error) {
    if e.kind() == rocksdb::ErrorKind::Corruption {
        if let Some(f) = ON_CORRUPTION.get() {
            f(e.as_ref());
        }
    }
}

/// Tunables; the block cache bounds memory use independent of data size.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    pub block_cache_bytes: usize,
    /// fsync every state-machine write batch (on for a single node without a Raft log).
    pub sync_writes: bool,
    /// Memtable size per column family. Shard sizes are estimated from SST files, so data
    /// still in memtables counts only once flushed (at most this much per column family).
    pub write_buffer_bytes: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            block_cache_bytes: 64 << 20,
            sync_writes: true,
            write_buffer_bytes: 64 << 20,
        }
    }
}

pub struct Engine {
    db: DB,
    path: PathBuf,
    opts: EngineOptions,
    /// Counts events that may have left a key with a time to live (a write setting an
    /// expiry, a snapshot installed); starts at 1 since the data on disk is unknown. Active
    /// expiry sleeps while it stays where a scan that found no such key left it.
    volatile_events: std::sync::atomic::AtomicU64,
}

impl Engine {
    pub fn open(path: &Path, opts: EngineOptions) -> Result<Engine, StorageError> {
        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.set_max_background_jobs(2);
        db_opts.set_bytes_per_sync(1 << 20);
        // One memtable budget for all column families (RocksDB flushes the largest past it),
        // so memory stays bounded whatever the mix of data types: each family alone may use
        // half of it.
        let budget = opts.write_buffer_bytes.max(128 << 10);
        db_opts.set_db_write_buffer_size(budget);
        let cache = Cache::new_lru_cache(opts.block_cache_bytes);
        let cfs = Cf::ALL.iter().map(|cf| {
            let mut o = Options::default();
            let mut bb = BlockBasedOptions::default();
            bb.set_block_cache(&cache);
            bb.set_bloom_filter(10.0, false);
            o.set_block_based_table_factory(&bb);
            o.set_compression_type(rocksdb::DBCompressionType::Lz4);
            o.set_write_buffer_size(budget / 2);
            if *cf == Cf::Meta {
                // Every write command looks its key up first; a memtable bloom filter answers
                // "absent" (new keys) without walking the memtable's skiplist.
                o.set_memtable_whole_key_filtering(true);
                o.set_memtable_prefix_bloom_ratio(0.05);
            }
            ColumnFamilyDescriptor::new(cf.name(), o)
        });
        let db =
            DB::open_cf_descriptors(&db_opts, path, cfs).map_err(|source| StorageError::Rocks {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Engine {
            db,
            path: path.to_path_buf(),
            opts,
            volatile_events: std::sync::atomic::AtomicU64::new(1),
        })
    }

    /// Records that a key with a time to live may have been written.
    pub fn note_volatile(&self) {
        self.volatile_events
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// See [`Engine::note_volatile`].
    pub fn volatile_events(&self) -> u64 {
        self.volatile_events
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn db(&self) -> &DB {
        &self.db
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The handle of a column family. Every `Cf` is created at open, so a miss is a bug.
    pub fn cf(&self, cf: Cf) -> &ColumnFamily {
        self.db
            .cf_handle(cf.name())
            .unwrap_or_else(|| panic!("column family {} missing after open", cf.name()))
    }

    pub fn write(&self, batch: WriteBatch) -> Result<(), StorageError> {
        let mut wo = WriteOptions::default();
        wo.set_sync(self.opts.sync_writes);
        self.db.write_opt(batch, &wo).map_err(|e| self.err(e))
    }

    pub fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.db.get_cf(self.cf(cf), key).map_err(|e| self.err(e))
    }

    pub fn err(&self, source: rocksdb::Error) -> StorageError {
        check_corruption(&source);
        StorageError::Rocks {
            path: self.path.clone(),
            source,
        }
    }

    /// RocksDB's estimate of the number of keys (metadata records), for metrics.
    pub fn estimate_keys(&self) -> u64 {
        self.db
            .property_int_value_cf(self.cf(Cf::Meta), "rocksdb.estimate-num-keys")
            .ok()
            .flatten()
            .unwrap_or(0)
    }

    /// Approximate bytes on disk of the data in slots `first..=last` (every slot-keyed
    /// column family; SST files only, see `write_buffer_bytes`).
    pub fn approximate_size(&self, first: u16, last: u16) -> u64 {
        let start = first.to_be_bytes();
        let end = (u32::from(last) + 1).min(0xFFFF) as u16;
        let end = end.to_be_bytes();
        [Cf::Meta, Cf::Sub, Cf::Score]
            .iter()
            .map(|cf| {
                let range = rocksdb::Range::new(&start, &end);
                self.db
                    .get_approximate_sizes_cf(self.cf(*cf), &[range])
                    .first()
                    .copied()
                    .unwrap_or(0)
            })
            .sum()
    }

    /// The slot splitting `first..=last` into halves of about equal size (None when the
    /// range is one slot or holds nothing measurable).
    pub fn size_median_slot(&self, first: u16, last: u16) -> Option<u16> {
        if first >= last {
            return None;
        }
        let total = self.approximate_size(first, last);
        if total == 0 {
            return None;
        }
        // The smallest `at` whose lower part `first..at` holds at least half (at most 14
        // steps over the 16384 slots).
        let (mut lo, mut hi) = (first + 1, last);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.approximate_size(first, mid - 1) * 2 >= total {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Some(lo)
    }

    /// Approximate bytes on disk (SST + memtables), for INFO and metrics.
    pub fn disk_usage(&self) -> u64 {
        Cf::ALL
            .iter()
            .map(|cf| {
                let sst = self
                    .db
                    .property_int_value_cf(self.cf(*cf), "rocksdb.total-sst-files-size")
                    .ok()
                    .flatten()
                    .unwrap_or(0);
                let mem = self
                    .db
                    .property_int_value_cf(self.cf(*cf), "rocksdb.cur-size-all-mem-tables")
                    .ok()
                    .flatten()
                    .unwrap_or(0);
                sst + mem
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_slots_and_the_median_halves_them() {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = Engine::open(
            dir.path(),
            EngineOptions {
                sync_writes: false,
                ..Default::default()
            },
        )
        .expect("open");
        // 64 KiB under each of slots 100..=199 (random bytes: compression keeps them).
        let mut batch = WriteBatch::default();
        for slot in 100u16..200 {
            for i in 0..16u8 {
                let mut key = slot.to_be_bytes().to_vec();
                key.push(i);
                let value: Vec<u8> = (0..4096).map(|_| rand::random::<u8>()).collect();
                batch.put_cf(engine.cf(Cf::Meta), key, value);
            }
        }
        engine.write(batch).expect("write");
        engine.db().flush_cf(engine.cf(Cf::Meta)).expect("flush");
        let all = engine.approximate_size(0, 16383);
        assert!(all >= 5 << 20, "{all}");
        assert_eq!(engine.approximate_size(200, 16383), 0);
        assert_eq!(engine.approximate_size(0, 99), 0);
        let at = engine.size_median_slot(0, 16383).expect("a median");
        assert!((130..=170).contains(&at), "median slot {at}");
        assert_eq!(engine.size_median_slot(5, 5), None);
        assert_eq!(engine.size_median_slot(300, 400), None);
    }
}
