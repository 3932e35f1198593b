//! Every node's load report, every `HEARTBEAT`: per shard it hosts or got requests for, the
//! requests per slot range (from the store's slot counters, over the last `WINDOWS`
//! heartbeats), and for hosted shards the approximate data size and leadership (the leader
//! adds the slot halving the data). Sent to every metadata replica, which keeps it and
//! answers with every node's latest, so any node can show the cluster's load.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::driver::Cluster;
use super::load::{NodeLoad, Relayed, ShardLoad, SlotWindow};
use crate::raftstore::transport::pb::LoadReport;

pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// Reports older than this are not used for scheduling.
pub const FRESH: Duration = Duration::from_secs(10);

pub async fn run(c: Arc<Cluster>) {
    let mut window = SlotWindow::default();
    let mut last = Instant::now();
    loop {
        tokio::time::sleep(HEARTBEAT).await;
        window.push(c.store.slot_load(), last.elapsed());
        last = Instant::now();
        // RocksDB size estimates: off the async workers.
        let report = {
            let c = c.clone();
            let taken = std::mem::take(&mut window);
            match tokio::task::spawn_blocking(move || {
                let r = collect(&c, &taken);
                (r, taken)
            })
            .await
            {
                Ok((r, w)) => {
                    window = w;
                    r
                }
                Err(e) => {
                    tracing::error!(error = %e, "collecting the load report failed");
                    continue;
                }
            }
        };
        c.load.put(report.clone());
        let Ok(json) = serde_json::to_vec(&report) else {
            continue;
        };
        let Some(proxy) = c.store.proxy() else {
            continue;
        };
        for node in c.view.current().meta_replicas.clone() {
            if node == c.store.node_id() {
                continue;
            }
            let Some(mut client) = proxy.client(node) else {
                continue;
            };
            let req = proxy.request(LoadReport {
                json: json.clone().into(),
            });
            match tokio::time::timeout(Duration::from_secs(1), client.heartbeat(req)).await {
                Ok(Ok(reply)) => {
                    match serde_json::from_slice::<Vec<Relayed>>(&reply.into_inner().json) {
                        Ok(relayed) => c.load.merge(relayed),
                        Err(e) => tracing::warn!(peer = node, error = %e, "bad load table"),
                    }
                }
                Ok(Err(s)) => tracing::debug!(peer = node, error = %s.message(), "heartbeat"),
                Err(_) => tracing::debug!(peer = node, "heartbeat timed out"),
            }
        }
    }
}

/// This node's report: every shard it hosts or received requests for.
fn collect(c: &Cluster, window: &SlotWindow) -> NodeLoad {
    let layout = c.store.layout();
    let engine = c.store.engine();
    let mut shards = Vec::new();
    for spec in layout.shards() {
        let (reads, writes, buckets) = window.range(spec.first_slot, spec.last_slot);
        let hosted = c.store.hosts(spec);
        if !hosted && reads + writes == 0 {
            continue;
        }
        let leader = hosted && c.store.raft().status(spec.id).is_leader;
        let size_bytes = if hosted {
            engine.approximate_size(spec.first_slot, spec.last_slot)
        } else {
            0
        };
        // The median search costs ~45 estimates: only for a shard about to be split.
        let split_size = c.policy.split_size;
        let size_split_slot = if leader && split_size > 0 && size_bytes >= split_size {
            engine.size_median_slot(spec.first_slot, spec.last_slot)
        } else {
            None
        };
        shards.push(ShardLoad {
            shard: spec.id,
            first_slot: spec.first_slot,
            last_slot: spec.last_slot,
            hosted,
            leader,
            size_bytes,
            size_split_slot,
            reads,
            writes,
            buckets,
        });
    }
    NodeLoad {
        node: c.store.node_id(),
        window_secs: window.span().as_secs_f64(),
        shards,
    }
}
