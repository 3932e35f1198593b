//! Command-line configuration.

use std::path::PathBuf;

use clap::Parser;

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
    #[arg(long)]
    pub cluster: Option<String>,
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
}

impl Config {
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("data").join(&self.node_id))
    }
}
