//! Prometheus metrics of a node, served as text on `GET /metrics` (see FEATURES.md for the
//! list). Counters, gauges and histograms with the exposition format are written here (about a
//! hundred lines) rather than pulled in: the crates for it changed feature unification of
//! shared dependencies enough to force a rebuild of RocksDB. Counters and histograms are updated where things happen (connections, the raft
//! runtime); gauges describing state (raft indexes, disk usage, clients, keys) are refreshed at
//! scrape time.
//!
//! Label cardinality is bounded: `cmd` takes the command table's names (unknown commands are
//! counted as `unknown`), `result` is ok|error, `kind` is a fixed set, and `shard` only names
//! the shards hosted on this node (a node hosting thousands of shards exports thousands of
//! series per shard metric; aggregate with `sum without (shard)` on the Prometheus side).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

/// A monotonically increasing count.
#[derive(Default)]
pub struct IntCounter(AtomicU64);

impl IntCounter {
    pub fn inc(&self) {
        self.inc_by(1);
    }
    pub fn inc_by(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Default)]
pub struct IntGauge(AtomicI64);

impl IntGauge {
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Observations counted into fixed cumulative buckets.
pub struct Histogram {
    bounds: Vec<f64>,
    buckets: Vec<AtomicU64>,
    /// (sum, count), updated together so a scrape sees a consistent pair.
    totals: Mutex<(f64, u64)>,
}

impl Histogram {
    fn new(bounds: &[f64]) -> Histogram {
        Histogram {
            bounds: bounds.to_vec(),
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            totals: Mutex::new((0.0, 0)),
        }
    }

    pub fn observe(&self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        let mut t = self.totals.lock();
        t.0 += v;
        t.1 += 1;
    }
}

/// `start * factor^i` for i in 0..n (Prometheus' exponential buckets).
fn exponential(start: f64, factor: f64, n: usize) -> Vec<f64> {
    (0..n).map(|i| start * factor.powi(i as i32)).collect()
}

/// A metric with labels: one series per distinct label-value tuple.
pub struct Family<T> {
    labels: &'static [&'static str],
    series: RwLock<BTreeMap<Vec<String>, Arc<T>>>,
    make: Box<dyn Fn() -> T + Send + Sync>,
}

impl<T> Family<T> {
    fn new(labels: &'static [&'static str], make: impl Fn() -> T + Send + Sync + 'static) -> Self {
        Family {
            labels,
            series: RwLock::new(BTreeMap::new()),
            make: Box::new(make),
        }
    }

    /// The series for these label values (in the order of the family's label names).
    pub fn with_label_values(&self, values: &[&str]) -> Arc<T> {
        let key: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        if let Some(s) = self.series.read().get(&key) {
            return s.clone();
        }
        self.series
            .write()
            .entry(key)
            .or_insert_with(|| Arc::new((self.make)()))
            .clone()
    }

    fn each(&self, mut f: impl FnMut(String, &T)) {
        for (values, s) in self.series.read().iter() {
            f(label_text(self.labels, values, None), s);
        }
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `{a="x",b="y"}` (with an extra `le` for histogram buckets), or "" without labels.
fn label_text(names: &[&str], values: &[String], le: Option<&str>) -> String {
    let mut parts: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n}=\"{}\"", escape(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn write_histogram(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    // Bucket lines need the `le` label merged into the series' labels.
    let inner = labels.trim_start_matches('{').trim_end_matches('}');
    let sep = if inner.is_empty() { "" } else { "," };
    let mut cumulative = 0;
    for (b, n) in h.bounds.iter().zip(&h.buckets) {
        cumulative += n.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{inner}{sep}le=\"{b}\"}} {cumulative}");
    }
    let (sum, count) = *h.totals.lock();
    let _ = writeln!(out, "{name}_bucket{{{inner}{sep}le=\"+Inf\"}} {count}");
    let _ = writeln!(out, "{name}_sum{labels} {sum}");
    let _ = writeln!(out, "{name}_count{labels} {count}");
}

pub type IntCounterVec = Family<IntCounter>;
pub type IntGaugeVec = Family<IntGauge>;
pub type HistogramVec = Family<Histogram>;

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
    pub snapshots: IntCounterVec,
    pub shard_writes: IntCounterVec,
    pub shard_reads: IntCounterVec,
    /// Data commands by how they were routed: local, proxied, split, all_shards, moved,
    /// crossslot.
    pub routed: IntCounterVec,
    /// Moves the scheduler started: repair, decommission, balance.
    pub scheduler_decisions: IntCounterVec,
    pub disk_usage: IntGauge,
    pub connected_clients: IntGauge,
    pub keys: IntGaugeVec,
    pub shard_size: IntGaugeVec,
}

/// Latency buckets: 50 µs doubling up to ~6.5 s.
fn latency_buckets() -> Vec<f64> {
    exponential(0.00005, 2.0, 18)
}

impl Metrics {
    pub fn new() -> Metrics {
        let shard: &'static [&'static str] = &["shard"];
        Metrics {
            operations: Family::new(&["cmd", "result"], IntCounter::default),
            operation_duration: Family::new(&["cmd"], || Histogram::new(&latency_buckets())),
            raft_term: Family::new(shard, IntGauge::default),
            raft_commit_index: Family::new(shard, IntGauge::default),
            raft_applied_index: Family::new(shard, IntGauge::default),
            raft_is_leader: Family::new(shard, IntGauge::default),
            raft_proposals: IntCounter::default(),
            raft_leader_changes: IntCounter::default(),
            raft_log_fsync: Histogram::new(&latency_buckets()),
            raft_batch_size: Family::new(&["kind"], || Histogram::new(&exponential(1.0, 2.0, 14))),
            snapshots: Family::new(&["kind"], IntCounter::default),
            shard_writes: Family::new(shard, IntCounter::default),
            shard_reads: Family::new(shard, IntCounter::default),
            routed: Family::new(&["route"], IntCounter::default),
            scheduler_decisions: Family::new(&["kind"], IntCounter::default),
            disk_usage: IntGauge::default(),
            connected_clients: IntGauge::default(),
            keys: Family::new(shard, IntGauge::default),
            shard_size: Family::new(shard, IntGauge::default),
        }
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
        let mut out = String::with_capacity(16 * 1024);
        let counters: [(&str, &str, &IntCounterVec); 6] = [
            (
                "raftkv_operations_total",
                "Commands executed, by command and result.",
                &self.operations,
            ),
            (
                "raftkv_snapshots_total",
                "Snapshots by kind: sent, received, applied, failed.",
                &self.snapshots,
            ),
            (
                "raftkv_shard_writes_total",
                "Write ops applied per shard (rate = write load).",
                &self.shard_writes,
            ),
            (
                "raftkv_shard_reads_total",
                "Linearizable read barriers served per shard (rate = read load).",
                &self.shard_reads,
            ),
            (
                "raftkv_routed_requests_total",
                "Routing decisions: shard requests run locally or proxied to another node; \
                 commands split across shards or run on all shards (their shard requests count \
                 too); -MOVED and -CROSSSLOT replies.",
                &self.routed,
            ),
            (
                "raftkv_scheduler_decisions_total",
                "Scheduling decisions by kind: repair, decommission, balance (replicas), leader, \
                 split_size, split_load.",
                &self.scheduler_decisions,
            ),
        ];
        for (name, help, fam) in counters {
            header(&mut out, name, help, "counter");
            fam.each(|l, c| {
                let _ = writeln!(out, "{name}{l} {}", c.get());
            });
        }
        let plain_counters = [
            (
                "raftkv_raft_proposals_total",
                "Client writes proposed through this node (including forwarded ones).",
                &self.raft_proposals,
            ),
            (
                "raftkv_raft_leader_changes_total",
                "Leader changes observed by this node, all shards.",
                &self.raft_leader_changes,
            ),
        ];
        for (name, help, c) in plain_counters {
            header(&mut out, name, help, "counter");
            let _ = writeln!(out, "{name} {}", c.get());
        }
        let gauges: [(&str, &str, &IntGaugeVec); 6] = [
            ("raftkv_raft_term", "Raft term.", &self.raft_term),
            (
                "raftkv_raft_commit_index",
                "Raft commit index.",
                &self.raft_commit_index,
            ),
            (
                "raftkv_raft_applied_index",
                "Index applied to the state machine.",
                &self.raft_applied_index,
            ),
            (
                "raftkv_raft_is_leader",
                "1 if this node leads the shard.",
                &self.raft_is_leader,
            ),
            (
                "raftkv_keys",
                "Estimated number of keys per shard (RocksDB estimate).",
                &self.keys,
            ),
            (
                "raftkv_shard_size_bytes",
                "Approximate data size per shard hosted here (SST files; what automatic \
                 splits and replica balance use).",
                &self.shard_size,
            ),
        ];
        for (name, help, fam) in gauges {
            header(&mut out, name, help, "gauge");
            fam.each(|l, g| {
                let _ = writeln!(out, "{name}{l} {}", g.get());
            });
        }
        let plain_gauges = [
            (
                "raftkv_storage_disk_usage_bytes",
                "State machine size on disk (SST files + memtables).",
                &self.disk_usage,
            ),
            (
                "raftkv_connected_clients",
                "Redis client connections.",
                &self.connected_clients,
            ),
        ];
        for (name, help, g) in plain_gauges {
            header(&mut out, name, help, "gauge");
            let _ = writeln!(out, "{name} {}", g.get());
        }
        let hists: [(&str, &str, &HistogramVec); 2] = [
            ("raftkv_operation_duration_seconds", "Command latency as seen by the connection (pipelined writes: their batch).", &self.operation_duration),
            ("raftkv_raft_batch_size", "Per batch round: entries persisted (kind=entries), shards with work (kind=groups).", &self.raft_batch_size),
        ];
        for (name, help, fam) in hists {
            header(&mut out, name, help, "histogram");
            fam.each(|l, h| write_histogram(&mut out, name, &l, h));
        }
        let name = "raftkv_raft_log_fsync_duration_seconds";
        header(
            &mut out,
            name,
            "Duration of one synced Raft log write (one per batch round, all shards).",
            "histogram",
        );
        write_histogram(&mut out, name, "", &self.raft_log_fsync);
        out
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
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
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
    }
}
