//! Background work of a store: active expiry and the garbage sweeper.
//!
//! Active expiry finds expired keys with a rolling scan of the metadata records and deletes
//! them through the applier (an `Expire` op, re-checked at apply time), so deletions are
//! replicated like any write. The sweeper range-deletes the element records of collections that
//! were deleted or overwritten (named by `gc` records); those records are invisible to every
//! read, so the sweep is local work that needs no replication.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rocksdb::WriteBatch;

use super::{now_ms, Store};
use crate::protocol::Frame;
use crate::storage::encoding::{prefix_end, user_key_of_meta, Cf, Meta};
use crate::storage::slot::key_slot;
use crate::storage::Engine;

/// Metadata records examined per expiry round.
const EXPIRE_SCAN_PER_ROUND: usize = 2000;
/// Most keys deleted per expiry op.
const EXPIRE_KEYS_PER_OP: usize = 256;
const GC_PER_ROUND: usize = 256;

/// Runs active expiry forever (10 rounds a second), as a tokio task.
pub async fn run_active_expiry(store: Arc<Store>) {
    let mut cursor: Vec<u8> = Vec::new();
    let mut interval = tokio::time::interval(Duration::from_millis(100));
    // A pass over every key that met no time to live, and no volatile write since it began,
    // means nothing can expire: scanning sleeps until the engine notes a volatile event.
    let mut pass = Pass::default();
    loop {
        interval.tick().await;
        let events = store.engine().volatile_events();
        if pass.idle_at == Some(events) {
            continue;
        }
        // Only a shard's leader proposes its deletions; replicas apply them from the log.
        let layout = store.layout();
        let led: Vec<&crate::routing::ShardSpec> = layout
            .shards()
            .iter()
            .filter(|s| store.hosts(s) && store.is_leader(s.id))
            .collect();
        if led.is_empty() {
            continue;
        }
        if cursor.is_empty() {
            pass = Pass {
                began_at: events,
                ..Pass::default()
            };
        }
        let (due, volatile, next) = match find_expired(store.engine(), &cursor, now_ms()) {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "active expiry scan failed");
                continue;
            }
        };
        cursor = next;
        pass.volatile_seen |= volatile;
        if cursor.is_empty() && !pass.volatile_seen {
            pass.idle_at = Some(pass.began_at);
        }
        for shard in led {
            let mine: Vec<Bytes> = due
                .iter()
                .filter(|k| shard.contains(key_slot(k)))
                .cloned()
                .collect();
            for chunk in mine.chunks(EXPIRE_KEYS_PER_OP) {
                if let Frame::Integer(n) = store.expire_keys(shard, chunk.to_vec()).await {
                    store
                        .stats()
                        .expired_keys
                        .fetch_add(n as u64, Ordering::Relaxed);
                }
            }
        }
    }
}

/// One pass of active expiry over the whole keyspace.
#[derive(Default)]
struct Pass {
    /// The engine's volatile-event count when the pass began.
    began_at: u64,
    /// Whether the pass met a key with a time to live.
    volatile_seen: bool,
    /// Set when a pass met none: the event count at which scanning went idle.
    idle_at: Option<u64>,
}

/// Scans up to `EXPIRE_SCAN_PER_ROUND` metadata records from `cursor`; returns the expired
/// keys, whether any scanned key has a time to live, and where to continue (empty = wrap
/// around).
fn find_expired(
    engine: &Engine,
    cursor: &[u8],
    now: u64,
) -> Result<(Vec<Bytes>, bool, Vec<u8>), rocksdb::Error> {
    let mut due = Vec::new();
    let mut volatile = false;
    let mut next = Vec::new();
    let iter = engine.db().iterator_cf(
        engine.cf(Cf::Meta),
        rocksdb::IteratorMode::From(cursor, rocksdb::Direction::Forward),
    );
    for (seen, item) in iter.enumerate() {
        let (k, v) = item?;
        if seen == EXPIRE_SCAN_PER_ROUND {
            next = k.to_vec();
            break;
        }
        if let Some(m) = Meta::decode(&v) {
            volatile |= m.expire_ms != 0;
            if m.is_expired(now) {
                due.push(Bytes::copy_from_slice(user_key_of_meta(&k)));
            }
        }
    }
    Ok((due, volatile, next))
}

/// Runs the garbage sweeper on its own thread until `stop` is set.
pub fn run_gc(engine: Arc<Engine>, stop: Arc<std::sync::atomic::AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        match sweep_once(&engine) {
            Ok(n) if n == GC_PER_ROUND => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "garbage sweep failed"),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Deletes the element records of up to `GC_PER_ROUND` dead collections; returns how many.
pub fn sweep_once(engine: &Engine) -> Result<usize, rocksdb::Error> {
    let mut batch = WriteBatch::default();
    let mut n = 0;
    for item in engine
        .db()
        .iterator_cf(engine.cf(Cf::Gc), rocksdb::IteratorMode::Start)
        .take(GC_PER_ROUND)
    {
        let (prefix, _) = item?;
        let end = prefix_end(&prefix);
        for cf in [Cf::Sub, Cf::Score] {
            batch.delete_range_cf(engine.cf(cf), &prefix[..], &end[..]);
        }
        batch.delete_cf(engine.cf(Cf::Gc), &prefix);
        n += 1;
    }
    if n > 0 {
        engine.db().write(batch)?;
    }
    Ok(n)
}
