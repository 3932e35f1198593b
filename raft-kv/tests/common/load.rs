//! Client load for the cluster tests: writers that remember what was acknowledged, and the
//! checks that every acknowledged write reads back.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::cluster::Cluster;
use super::retry;

/// Per writer: the last acknowledged value per key, and the stale-route refusals it was
/// given (which the nodes are meant to absorb by routing again).
pub type Writers = Vec<tokio::task::JoinHandle<(BTreeMap<String, String>, Vec<String>)>>;

/// One client per node in `through` writing `{prefix}{node}:{i % keys}` until stopped. Each
/// returns the last acknowledged value per key (a key whose last write failed, timed out or
/// is uncertain is left out: its value is not known).
pub async fn start_writers(
    c: &Cluster,
    through: &[usize],
    prefix: &str,
    keys: u64,
) -> (Arc<AtomicBool>, Writers) {
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for &n in through {
        let mut conn = c.nodes[n].conn().await;
        let stop = stop.clone();
        let prefix = format!("{prefix}{n}:");
        writers.push(tokio::spawn(async move {
            let mut acked = BTreeMap::new();
            let mut refusals = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let (k, v) = (format!("{prefix}{}", i % keys), format!("v{i}"));
                let r: redis::RedisResult<()> = tokio::time::timeout(
                    Duration::from_secs(8),
                    redis::cmd("SET").arg(&k).arg(&v).query_async(&mut conn),
                )
                .await
                .unwrap_or_else(|_| Err((redis::ErrorKind::IoError, "timeout").into()));
                match r {
                    Ok(()) => {
                        acked.insert(k, v);
                    }
                    Err(e) => {
                        let text = e.to_string();
                        if text.contains("shard changed")
                            || text.contains("shard moved")
                            || text.contains("host the shard")
                        {
                            refusals.push(text);
                        }
                        acked.remove(&k);
                        // A dead connection fails at once: pause, so the loop yields and a
                        // runtime shutting down can drop this task.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                i += 1;
            }
            (acked, refusals)
        }));
    }
    (stop, writers)
}

/// Stops the writers and merges what they acknowledged.
pub async fn stop_writers(stop: &AtomicBool, writers: Writers) -> BTreeMap<String, String> {
    stop_writers_with_refusals(stop, writers).await.0
}

/// Stops the writers: what they acknowledged, and every stale-route refusal they saw.
pub async fn stop_writers_with_refusals(
    stop: &AtomicBool,
    writers: Writers,
) -> (BTreeMap<String, String>, Vec<String>) {
    stop.store(true, Ordering::Relaxed);
    let mut acked = BTreeMap::new();
    let mut refusals = Vec::new();
    for w in writers {
        let (a, r) = w.await.expect("writer");
        acked.extend(a);
        refusals.extend(r);
    }
    (acked, refusals)
}

/// Every acknowledged key reads back with its last acknowledged value from node `i`.
pub async fn check_reads_on(c: &Cluster, i: usize, acked: &BTreeMap<String, String>) {
    let conn = c.nodes[i].conn().await;
    for (k, v) in acked {
        let got: Option<String> = retry(Duration::from_secs(30), || {
            let mut conn = conn.clone();
            let k = k.clone();
            async move { redis::cmd("GET").arg(&k).query_async(&mut conn).await }
        })
        .await;
        assert_eq!(
            got.as_deref(),
            Some(v.as_str()),
            "{k} on {}",
            c.nodes[i].name
        );
    }
}

/// The same from every node.
pub async fn check_reads(c: &Cluster, acked: &BTreeMap<String, String>) {
    for i in 0..c.nodes.len() {
        check_reads_on(c, i, acked).await;
    }
}
