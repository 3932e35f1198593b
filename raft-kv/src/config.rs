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

    /// Checks `--cluster`: a malformed list or one naming other nodes is refused, because a
    /// node that silently ran alone would acknowledge writes that are not replicated.
    pub fn validate_cluster(&self) -> Result<(), String> {
        let Some(list) = &self.cluster else {
            return Ok(());
        };
        let mut ids = Vec::new();
        for member in list.split(',').filter(|m| !m.is_empty()) {
            let (id, addr) = member
                .split_once('=')
                .ok_or_else(|| format!("--cluster: expected id=host:port, got {member:?}"))?;
            if id.is_empty() || addr.parse::<std::net::SocketAddr>().is_err() {
                return Err(format!("--cluster: expected id=host:port, got {member:?}"));
            }
            ids.push(id);
        }
        if !ids.contains(&self.node_id.as_str()) {
            return Err(format!(
                "--cluster does not list this node ({}); members: {}",
                self.node_id,
                ids.join(",")
            ));
        }
        if ids.len() > 1 {
            return Err(
                "--cluster with several members is not implemented yet (replication is the next \
                 milestone); run without --cluster for a single-node server"
                    .into(),
            );
        }
        Ok(())
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
        assert!(with_cluster("node1=127.0.0.1:5001")
            .validate_cluster()
            .is_ok());
        assert!(with_cluster("node1=nonsense").validate_cluster().is_err());
        assert!(with_cluster("node2=127.0.0.1:5002")
            .validate_cluster()
            .is_err());
        let multi = with_cluster("node1=127.0.0.1:5001,node2=127.0.0.1:5002");
        assert!(multi
            .validate_cluster()
            .unwrap_err()
            .contains("not implemented"));
    }
}
