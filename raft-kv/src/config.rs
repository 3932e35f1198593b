//! Command-line configuration.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::raftstore::members::{parse_cluster, Member};
use crate::raftstore::{RaftOptions, ReadMode};
use crate::tls::{AuthClients, TlsFiles};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "raft-kv",
    version,
    about = "Redis-compatible, strongly consistent KV store"
)]
pub struct Config {
    /// This node's id (unique in the cluster, never reused).
    #[arg(long, default_value = "node1")]
    pub node_id: String,
    /// Where this node keeps its data (default: ./data/<node-id>).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Port of the node-to-node gRPC service, the HTTP admin API and /metrics.
    #[arg(long, default_value_t = 5001)]
    pub port: u16,
    /// Port of the Redis protocol listener.
    #[arg(long, default_value_t = 6379)]
    pub redis_port: u16,
    /// Cluster members: node1=127.0.0.1:5001,node2=127.0.0.1:5002,...
    #[arg(long, conflicts_with = "join")]
    pub cluster: Option<String>,
    /// Join a running cluster through any of its nodes (its --port address). Only on the
    /// first start of a data directory; later starts rejoin as they are.
    #[arg(long)]
    pub join: Option<String>,
    /// Address to listen on. Without `--requirepass` the default is loopback only.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
    /// Require clients to AUTH with this password.
    #[arg(long)]
    pub requirepass: Option<String>,
    /// Log level (overridden by RUST_LOG).
    #[arg(long, default_value = "info")]
    pub log_level: String,
    /// RocksDB block cache size in MiB (bounds memory independent of data size).
    #[arg(long, default_value_t = 64)]
    pub block_cache_mb: usize,
    /// Maximum number of connected clients.
    #[arg(long, default_value_t = 10000)]
    pub maxclients: usize,
    /// How reads are made linearizable: ReadIndex (a heartbeat round per batch of reads) or
    /// a leader lease (no round trip; assumes bounded clock drift).
    #[arg(long, value_enum, default_value = "read-index")]
    pub read_mode: ReadMode,
    /// Raft tick interval in ms (heartbeat = 2 ticks; election timeout = N..2N ticks).
    #[arg(long, default_value_t = 100)]
    pub raft_tick_ms: u64,
    /// Election timeout in ticks.
    #[arg(long, default_value_t = 10)]
    pub raft_election_ticks: usize,
    /// Compact a shard's Raft log once it holds this many applied entries.
    #[arg(long, default_value_t = 10000)]
    pub raft_log_gc_threshold: u64,
    /// Log a warning for requests slower than this many ms (0 = never).
    #[arg(long, default_value_t = 500)]
    pub slow_request_ms: u64,
    /// How long a client request may wait for Raft before it gets an error (ms).
    #[arg(long, default_value_t = 5000)]
    pub request_timeout_ms: u64,
    /// Shards (Raft groups) a new cluster divides the 16384 slots into. Default: 8 with
    /// `--cluster`, 1 for a single node (so multi-key commands and MULTI work on any keys, as
    /// on a plain Redis). Fixed once the data directory is initialised.
    #[arg(long)]
    pub initial_shards: Option<usize>,
    /// What a node does with a command for a shard led elsewhere, on connections that are
    /// not cluster-aware: forward it (proxy) or answer -MOVED (redirect). Cluster-aware
    /// connections (after CLUSTER SLOTS/SHARDS/NODES or READONLY) always get -MOVED.
    #[arg(long, value_enum, default_value = "proxy")]
    pub route_mode: RouteMode,
    /// Nodes (the first N members by name) replicating the metadata group. Fixed once the
    /// cluster is initialised.
    #[arg(long, default_value_t = crate::meta::DEFAULT_META_REPLICAS)]
    pub meta_replicas: usize,
    /// A node not heard from for this many seconds is down: the scheduler rebuilds its
    /// replicas on other nodes.
    #[arg(long, default_value_t = 60)]
    pub node_down_after_secs: u64,
    /// File holding the cluster secret: node-to-node gRPC and the admin HTTP routes then
    /// require it (every member must use the same). `RAFTKV_CLUSTER_SECRET` sets it too.
    #[arg(long)]
    pub cluster_secret_file: Option<PathBuf>,
    /// Split a shard automatically once its data passes this many MiB (0: never).
    /// Default: 96 in a cluster (`--cluster`, `--join`); never for a lone node, which keeps
    /// one shard so multi-key commands work on any keys.
    #[arg(long)]
    pub split_size_mb: Option<u64>,
    /// Split a shard automatically once it serves this many requests per second (reads and
    /// writes, averaged over 10 s; 0: never). Default: 5000 in a cluster, never for a lone
    /// node.
    #[arg(long)]
    pub split_ops: Option<u64>,
    /// RocksDB memtable budget of the state machine (all column families), in MiB.
    #[arg(long, default_value_t = 64)]
    pub write_buffer_mb: usize,
    /// Threads serving clients and peers (the Raft runtime has its own). Default: the
    /// number of cores; lower it when several nodes share one machine.
    #[arg(long)]
    pub worker_threads: Option<usize>,
    /// TLS certificate (PEM, leaf first). With `--tls-key-file` and `--tls-ca-cert-file`
    /// (all three or none) the Redis port, `--port` and peer connections all use TLS.
    #[arg(long)]
    pub tls_cert_file: Option<PathBuf>,
    /// Private key of `--tls-cert-file` (PEM).
    #[arg(long)]
    pub tls_key_file: Option<PathBuf>,
    /// CA certificates (PEM) that sign peers' and clients' certificates.
    #[arg(long)]
    pub tls_ca_cert_file: Option<PathBuf>,
    /// Whether Redis clients must present a certificate signed by the CA (as Redis'
    /// `tls-auth-clients`).
    #[arg(long, value_enum, default_value = "yes")]
    pub tls_auth_clients: AuthClients,
}

/// The secret travels in gRPC metadata and HTTP headers: printable ASCII only (a secret
/// that cannot be sent would silently cut the node off from its peers).
fn check_secret(secret: String, source: &str) -> Result<String, String> {
    if secret.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        Ok(secret)
    } else {
        Err(format!(
            "{source}: the cluster secret must be printable ASCII (it is sent in headers)"
        ))
    }
}

/// How requests for shards led by another node are answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RouteMode {
    Proxy,
    Redirect,
}

impl Config {
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("data").join(&self.node_id))
    }

    /// The cluster members: `--cluster`, or this node alone (a single-node cluster).
    pub fn members(&self) -> Result<Vec<Member>, String> {
        let members = match &self.cluster {
            Some(list) => parse_cluster(list)?,
            None => parse_cluster(&format!("{}={}:{}", self.node_id, self.bind, self.port))?,
        };
        if !members.iter().any(|m| m.name == self.node_id) {
            return Err(format!(
                "--cluster does not list this node ({}); members: {}",
                self.node_id,
                members
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ));
        }
        if self.node_id.is_empty() {
            return Err("--node-id must not be empty".into());
        }
        Ok(members)
    }

    /// The cluster secret from `--cluster-secret-file` or `RAFTKV_CLUSTER_SECRET` (not a
    /// flag of its own: command lines are visible to every user of the machine).
    pub fn cluster_secret(&self) -> Result<Option<String>, String> {
        if let Some(path) = &self.cluster_secret_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                format!("cannot read --cluster-secret-file {}: {e}", path.display())
            })?;
            let secret = text.trim().to_string();
            if secret.is_empty() {
                return Err(format!("--cluster-secret-file {} is empty", path.display()));
            }
            return check_secret(secret, "--cluster-secret-file").map(Some);
        }
        match std::env::var("RAFTKV_CLUSTER_SECRET") {
            Ok(s) if !s.trim().is_empty() => {
                check_secret(s.trim().to_string(), "RAFTKV_CLUSTER_SECRET").map(Some)
            }
            _ => Ok(None),
        }
    }

    /// The TLS files, if TLS is configured (all three files or none).
    pub fn tls_files(&self) -> Result<Option<TlsFiles>, String> {
        match (
            &self.tls_cert_file,
            &self.tls_key_file,
            &self.tls_ca_cert_file,
        ) {
            (None, None, None) => Ok(None),
            (Some(cert), Some(key), Some(ca)) => Ok(Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                ca: ca.clone(),
                auth_clients: self.tls_auth_clients,
            })),
            _ => Err(
                "TLS needs all of --tls-cert-file, --tls-key-file and --tls-ca-cert-file".into(),
            ),
        }
    }

    /// Automatic split thresholds (bytes, requests per second); 0 = never.
    pub fn split_thresholds(&self) -> (u64, u64) {
        let clustered = self.cluster.is_some() || self.join.is_some();
        let pick = |v: Option<u64>, default: u64| v.unwrap_or(if clustered { default } else { 0 });
        (
            pick(self.split_size_mb, 96) << 20,
            pick(self.split_ops, 5000),
        )
    }

    /// `--initial-shards`, or the default for this cluster's size.
    pub fn initial_shards(&self) -> usize {
        self.initial_shards
            .unwrap_or(if self.cluster.is_some() { 8 } else { 1 })
    }

    pub fn raft_options(&self) -> Result<RaftOptions, String> {
        if self.raft_tick_ms == 0 || self.raft_election_ticks <= 2 {
            return Err("--raft-tick-ms must be > 0 and --raft-election-ticks > 2".into());
        }
        Ok(RaftOptions {
            tick: Duration::from_millis(self.raft_tick_ms),
            election_ticks: self.raft_election_ticks,
            heartbeat_ticks: 2.min(self.raft_election_ticks - 1),
            read_mode: self.read_mode,
            log_gc_threshold: self.raft_log_gc_threshold.max(2),
            request_timeout: Duration::from_millis(self.request_timeout_ms.max(100)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cluster(c: &str) -> Config {
        Config::parse_from(["raft-kv", "--node-id", "node1", "--cluster", c])
    }

    #[test]
    fn cluster_flag_is_checked() {
        assert_eq!(
            with_cluster("node1=127.0.0.1:5001")
                .members()
                .map(|m| m.len()),
            Ok(1)
        );
        assert!(with_cluster("node1=nonsense").members().is_err());
        assert!(with_cluster("node2=127.0.0.1:5002").members().is_err());
        let multi = with_cluster("node1=127.0.0.1:5001,node2=127.0.0.1:5002");
        assert_eq!(multi.members().map(|m| m.len()), Ok(2));
        assert!(check_secret("ok secret".into(), "x").is_ok());
        assert!(check_secret("bad\u{e9}".into(), "x").is_err());
        assert!(check_secret("bad\nline".into(), "x").is_err());
        let half_tls = Config::parse_from(["raft-kv", "--tls-cert-file", "c.pem"]);
        assert!(half_tls.tls_files().is_err());
        let alone = Config::parse_from(["raft-kv", "--node-id", "n9", "--port", "7001"]);
        assert!(matches!(alone.tls_files(), Ok(None)));
        let m = alone.members().expect("single node");
        assert_eq!(
            (m[0].name.as_str(), m[0].addr.as_str()),
            ("n9", "127.0.0.1:7001")
        );
    }
}
