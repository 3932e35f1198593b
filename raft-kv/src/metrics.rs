//! Prometheus metrics of a node, served as text on `GET /metrics` (see FEATURES.md for the
//! list), through the `prometheus` crate (without its protobuf feature). Counters and
//! histograms are updated where things happen (connections, the raft runtime); gauges
//! describing state (raft indexes, disk usage, clients, keys, sizes) are refreshed at scrape
//! time.
//!
//! Label cardinality is bounded: `cmd` takes the command table's names (unknown commands are
//! counted as `unknown`), `result` is ok|error, `kind` and `route` are fixed sets, and `shard`
//! only names the shards hosted on this node (a node hosting thousands of shards exports
//! thousands of series per shard metric; aggregate with `sum without (shard)` on the
//! Prometheus side).

use prometheus::core::Collector;
use prometheus::{
    exponential_buckets, Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter,
    IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    pub operations: IntCounterVec,
    pub operation_duration: HistogramVec,
    pub raft_term: IntGaugeVec,
    pub raft_commit_index: IntGaugeVec,
    pub raft_applied_index: IntGaugeVec,
    pub raft_is_leader: IntGaugeVec,
    pub raft_proposals: IntCounter,
    pub raft_leader_changes: IntCounter,
    pub raft_log_fsync: Histogram,
    pub raft_batch_size: HistogramVec,
    pub raft_sent: IntCounterVec,
    pub snapshots: IntCounterVec,
    pub shard_writes: IntCounterVec,
    pub shard_reads: IntCounterVec,
    /// Data commands by how they were routed: local, proxied, split, all_shards, moved,
    /// crossslot, rerouted (refused for a stale route and sent again).
    pub routed: IntCounterVec,
    /// Scheduling decisions by kind.
    pub scheduler_decisions: IntCounterVec,
    pub disk_usage: IntGauge,
    pub connected_clients: IntGauge,
    pub keys: IntGaugeVec,
    pub shard_size: IntGaugeVec,
    /// Client requests per second for each shard arriving at this node (its last load
    /// report): summed over nodes, what the scheduler splits and balances leaders by.
    pub shard_requests: GaugeVec,
    registry: Registry,
}

/// Latency buckets: 50 µs doubling up to ~6.5 s.
fn latency_buckets() -> Vec<f64> {
    exponential_buckets(0.00005, 2.0, 18).unwrap_or_default()
}

/// Names, help texts and label sets are literals: a failure here is a programming error,
/// caught by the unit test below the first time it runs.
fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| panic!("metric {name}: {e}"))
}

fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| panic!("metric {name}: {e}"))
}

fn histogram_vec(name: &str, help: &str, labels: &[&str], buckets: Vec<f64>) -> HistogramVec {
    HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
        .unwrap_or_else(|e| panic!("metric {name}: {e}"))
}

impl Metrics {
    pub fn new() -> Metrics {
        let shard = &["shard"];
        let m = Metrics {
            operations: counter_vec(
                "raftkv_operations_total",
                "Commands executed, by command and result.",
                &["cmd", "result"],
            ),
            operation_duration: histogram_vec(
                "raftkv_operation_duration_seconds",
                "Command latency as seen by the connection (pipelined writes: their batch).",
                &["cmd"],
                latency_buckets(),
            ),
            raft_term: gauge_vec("raftkv_raft_term", "Raft term.", shard),
            raft_commit_index: gauge_vec("raftkv_raft_commit_index", "Raft commit index.", shard),
            raft_applied_index: gauge_vec(
                "raftkv_raft_applied_index",
                "Index applied to the state machine.",
                shard,
            ),
            raft_is_leader: gauge_vec(
                "raftkv_raft_is_leader",
                "1 if this node leads the shard.",
                shard,
            ),
            raft_proposals: IntCounter::new(
                "raftkv_raft_proposals_total",
                "Client writes proposed through this node (including forwarded ones).",
            )
            .unwrap_or_else(|e| panic!("metric: {e}")),
            raft_leader_changes: IntCounter::new(
                "raftkv_raft_leader_changes_total",
                "Leader changes observed by this node, all shards.",
            )
            .unwrap_or_else(|e| panic!("metric: {e}")),
            raft_log_fsync: Histogram::with_opts(
                HistogramOpts::new(
                    "raftkv_raft_log_fsync_duration_seconds",
                    "Duration of one synced Raft log write (one per batch round, all shards).",
                )
                .buckets(latency_buckets()),
            )
            .unwrap_or_else(|e| panic!("metric: {e}")),
            raft_batch_size: histogram_vec(
                "raftkv_raft_batch_size",
                "Per batch round: entries persisted (kind=entries), shards with work \
                 (kind=groups).",
                &["kind"],
                exponential_buckets(1.0, 2.0, 14).unwrap_or_default(),
            ),
            raft_sent: counter_vec(
                "raftkv_raft_sent_total",
                "Raft messages handed to the transport (kind=messages), and the per-node \
                 batches carrying them (kind=batches).",
                &["kind"],
            ),
            snapshots: counter_vec(
                "raftkv_snapshots_total",
                "Snapshots by kind: sent, received, applied, failed.",
                &["kind"],
            ),
            shard_writes: counter_vec(
                "raftkv_shard_writes_total",
                "Write ops applied per shard (rate = write load).",
                shard,
            ),
            shard_reads: counter_vec(
                "raftkv_shard_reads_total",
                "Linearizable read barriers served per shard (rate = read load).",
                shard,
            ),
            routed: counter_vec(
                "raftkv_routed_requests_total",
                "Routing decisions: shard requests run locally or proxied to another node; \
                 commands split across shards or run on all shards (their shard requests count \
                 too); -MOVED and -CROSSSLOT replies.",
                &["route"],
            ),
            scheduler_decisions: counter_vec(
                "raftkv_scheduler_decisions_total",
                "Scheduling decisions by kind: repair, decommission, balance (replicas), leader, \
                 split_size, split_load.",
                &["kind"],
            ),
            disk_usage: IntGauge::new(
                "raftkv_storage_disk_usage_bytes",
                "State machine size on disk (SST files + memtables).",
            )
            .unwrap_or_else(|e| panic!("metric: {e}")),
            connected_clients: IntGauge::new(
                "raftkv_connected_clients",
                "Redis client connections.",
            )
            .unwrap_or_else(|e| panic!("metric: {e}")),
            keys: gauge_vec(
                "raftkv_keys",
                "Estimated number of keys per shard hosted here (RocksDB's estimate for the node, \
                 shared out by the shards' data sizes).",
                shard,
            ),
            shard_size: gauge_vec(
                "raftkv_shard_size_bytes",
                "Approximate data size per shard hosted here (SST files; what automatic splits \
                 and replica balance use).",
                shard,
            ),
            shard_requests: GaugeVec::new(
                Opts::new(
                    "raftkv_shard_requests_per_second",
                    "Client requests per second for a shard arriving at this node, by kind \
                     (reads, writes), over the last 10 s; summed over nodes, the load the \
                     scheduler uses.",
                ),
                &["shard", "kind"],
            )
            .unwrap_or_else(|e| panic!("metric: {e}")),
            registry: Registry::new(),
        };
        let all: [Box<dyn Collector>; 21] = [
            Box::new(m.shard_requests.clone()),
            Box::new(m.operations.clone()),
            Box::new(m.operation_duration.clone()),
            Box::new(m.raft_term.clone()),
            Box::new(m.raft_commit_index.clone()),
            Box::new(m.raft_applied_index.clone()),
            Box::new(m.raft_is_leader.clone()),
            Box::new(m.raft_proposals.clone()),
            Box::new(m.raft_leader_changes.clone()),
            Box::new(m.raft_log_fsync.clone()),
            Box::new(m.raft_batch_size.clone()),
            Box::new(m.raft_sent.clone()),
            Box::new(m.snapshots.clone()),
            Box::new(m.shard_writes.clone()),
            Box::new(m.shard_reads.clone()),
            Box::new(m.routed.clone()),
            Box::new(m.scheduler_decisions.clone()),
            Box::new(m.disk_usage.clone()),
            Box::new(m.connected_clients.clone()),
            Box::new(m.keys.clone()),
            Box::new(m.shard_size.clone()),
        ];
        for c in all {
            if let Err(e) = m.registry.register(c) {
                tracing::error!(error = %e, "a metric could not be registered");
            }
        }
        // Series with a fixed set of labels exist from the start (at 0), so dashboards and
        // alerts see them before the first event.
        let fixed: [(&IntCounterVec, &[&str]); 4] = [
            (&m.raft_sent, &["messages", "batches"]),
            (&m.snapshots, &["sent", "received", "applied", "failed"]),
            (
                &m.routed,
                &[
                    "local",
                    "proxied",
                    "split",
                    "all_shards",
                    "moved",
                    "crossslot",
                    "rerouted",
                ],
            ),
            (
                &m.scheduler_decisions,
                &[
                    "repair",
                    "decommission",
                    "balance",
                    "leader",
                    "split_size",
                    "split_load",
                ],
            ),
        ];
        for (family, kinds) in fixed {
            for kind in kinds {
                family.with_label_values(&[*kind]).inc_by(0);
            }
        }
        for kind in ["entries", "groups"] {
            let _ = m.raft_batch_size.with_label_values(&[kind]);
        }
        m
    }

    /// Records one executed command (its latency unless it blocks by design).
    pub fn observe_command(&self, cmd: &str, error: bool, seconds: Option<f64>) {
        self.operations
            .with_label_values(&[cmd, if error { "error" } else { "ok" }])
            .inc();
        if let Some(s) = seconds {
            self.operation_duration.with_label_values(&[cmd]).observe(s);
        }
    }

    /// The Prometheus text exposition (format 0.0.4) of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::with_capacity(16 * 1024);
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_bounded_labels() {
        let m = Metrics::new();
        m.observe_command("set", false, Some(0.001));
        m.observe_command("get", true, Some(0.002));
        m.observe_command("blpop", false, None);
        m.raft_term.with_label_values(&["1"]).set(3);
        m.raft_batch_size
            .with_label_values(&["entries"])
            .observe(4.0);
        let text = m.render();
        assert!(
            text.contains("raftkv_operations_total{cmd=\"set\",result=\"ok\"} 1"),
            "{text}"
        );
        assert!(text.contains("raftkv_operations_total{cmd=\"get\",result=\"error\"} 1"));
        assert!(text.contains("raftkv_operation_duration_seconds_bucket{cmd=\"set\""));
        assert!(!text.contains("raftkv_operation_duration_seconds_bucket{cmd=\"blpop\""));
        assert!(text.contains("raftkv_raft_term{shard=\"1\"} 3"));
        assert!(text.contains("# TYPE raftkv_raft_log_fsync_duration_seconds histogram"));
        assert!(
            text.contains("raftkv_raft_batch_size_bucket{kind=\"entries\",le=\"4\"} 1"),
            "{text}"
        );
        assert!(text.contains("raftkv_raft_log_fsync_duration_seconds_bucket{le=\"+Inf\"} 0"));
        assert!(text.contains("raftkv_operation_duration_seconds_count{cmd=\"set\"} 1"));
        assert!(text.contains("raftkv_connected_clients 0"));
    }
}
