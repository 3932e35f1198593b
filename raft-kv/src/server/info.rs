//! INFO [section ...].

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use super::conn::Reply;
use super::{Server, REDIS_VERSION};
use crate::protocol::Frame;
use crate::storage::encoding::{Cf, Meta};
use crate::storage::Engine;
use crate::store::now_ms;

const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "raft",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
];

/// Most metadata records INFO keyspace counts exactly; beyond that it reports RocksDB's
/// estimate, so INFO stays cheap on big data sets.
const KEYSPACE_EXACT_LIMIT: usize = 1_000_000;

pub async fn info(srv: &Arc<Server>, args: &[Bytes]) -> Reply {
    let mut wanted: Vec<String> = Vec::new();
    let mut everything = false;
    if args.len() == 1 {
        wanted = DEFAULT_SECTIONS.iter().map(|s| s.to_string()).collect();
    } else {
        for a in &args[1..] {
            let s = String::from_utf8_lossy(a).to_lowercase();
            match s.as_str() {
                "default" => wanted.extend(DEFAULT_SECTIONS.iter().map(|s| s.to_string())),
                "all" | "everything" => {
                    everything = true;
                    wanted.extend(DEFAULT_SECTIONS.iter().map(|s| s.to_string()));
                    wanted.push("commandstats".into());
                    wanted.push("latencystats".into());
                }
                _ => wanted.push(s),
            }
        }
    }
    let _ = everything;
    let mut seen = std::collections::HashSet::new();
    let mut sections = Vec::new();
    for name in wanted {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(text) = section(srv, &name).await {
            sections.push(text);
        }
    }
    Frame::Verbatim(Bytes::from(sections.join("\r\n"))).into()
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}G", b / (1024.0 * 1024.0 * 1024.0))
    } else if b >= 1024.0 * 1024.0 {
        format!("{:.2}M", b / (1024.0 * 1024.0))
    } else if b >= 1024.0 {
        format!("{:.2}K", b / 1024.0)
    } else {
        format!("{bytes}B")
    }
}

fn cpu_times() -> (f64, f64) {
    // utime and stime (fields 14, 15) of /proc/self/stat, in clock ticks (100 Hz).
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return (0.0, 0.0);
    };
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 100.0
    };
    (tick(11), tick(12))
}

/// Counts live keys and keys with a TTL (exact up to `KEYSPACE_EXACT_LIMIT` records).
pub fn count_keys(engine: &Engine, now: u64) -> (u64, u64) {
    let mut keys = 0u64;
    let mut expires = 0u64;
    let mut seen = 0usize;
    let iter = engine
        .db()
        .iterator_cf(engine.cf(Cf::Meta), rocksdb::IteratorMode::Start);
    for item in iter {
        let Ok((_, v)) = item else { break };
        seen += 1;
        if seen > KEYSPACE_EXACT_LIMIT {
            let est = engine
                .db()
                .property_int_value_cf(engine.cf(Cf::Meta), "rocksdb.estimate-num-keys")
                .ok()
                .flatten()
                .unwrap_or(keys);
            return (est.max(keys), expires);
        }
        if let Some(m) = Meta::decode(&v) {
            if m.is_expired(now) {
                continue;
            }
            keys += 1;
            if m.expire_ms != 0 {
                expires += 1;
            }
        }
    }
    (keys, expires)
}

async fn section(srv: &Arc<Server>, name: &str) -> Option<String> {
    let mut s = String::new();
    let st = &srv.stats;
    let uptime = srv.started.elapsed().as_secs();
    match name {
        "server" => {
            let _ = write!(
                s,
                "# Server\r\nredis_version:{REDIS_VERSION}\r\nredis_git_sha1:00000000\r\n\
                 redis_git_dirty:0\r\nredis_build_id:0\r\nredis_mode:standalone\r\n\
                 raftkv_version:{}\r\nos:{} {}\r\narch_bits:64\r\nmultiplexing_api:epoll\r\n\
                 process_id:{}\r\nprocess_supervised:no\r\nrun_id:{}\r\ntcp_port:{}\r\n\
                 server_time_usec:{}\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\n\
                 hz:10\r\nconfigured_hz:10\r\nexecutable:{}\r\nconfig_file:\r\nio_threads_active:0\r\n",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::OS,
                std::env::consts::ARCH,
                std::process::id(),
                srv.run_id,
                srv.redis_addr.port(),
                now_ms() * 1000,
                uptime / 86400,
                std::env::current_exe()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            );
        }
        "clients" => {
            let _ = write!(
                s,
                "# Clients\r\nconnected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\n\
                 client_recent_max_input_buffer:0\r\nclient_recent_max_output_buffer:0\r\n\
                 blocked_clients:{}\r\ntracking_clients:0\r\nclients_in_timeout_table:0\r\n\
                 pubsub_clients:{}\r\n",
                srv.clients.count(),
                srv.settings.maxclients(),
                srv.clients.blocked_count(),
                srv.clients.pubsub_count(),
            );
        }
        "memory" => {
            let rss = rss_bytes();
            let disk = srv.store.engine().disk_usage();
            let _ = write!(
                s,
                "# Memory\r\nused_memory:{rss}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\n\
                 used_memory_rss_human:{}\r\nused_memory_peak:{rss}\r\nused_memory_peak_human:{}\r\n\
                 maxmemory:0\r\nmaxmemory_human:0B\r\nmaxmemory_policy:noeviction\r\n\
                 mem_allocator:libc\r\nused_disk:{disk}\r\nused_disk_human:{}\r\n",
                human(rss),
                human(rss),
                human(rss),
                human(disk),
            );
        }
        "persistence" => {
            let _ = write!(
                s,
                "# Persistence\r\nloading:0\r\nasync_loading:0\r\nrdb_changes_since_last_save:0\r\n\
                 rdb_bgsave_in_progress:0\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:ok\r\n\
                 aof_enabled:0\r\naof_rewrite_in_progress:0\r\naof_last_write_status:ok\r\n\
                 storage_engine:rocksdb\r\n",
                srv.last_save.load(Ordering::Relaxed),
            );
        }
        "stats" => {
            let ss = srv.store.stats();
            let (channels, patterns, shard) = srv.pubsub.counts();
            let _ = write!(
                s,
                "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n\
                 instantaneous_ops_per_sec:0\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\n\
                 rejected_connections:{}\r\nexpired_keys:{}\r\nevicted_keys:0\r\n\
                 keyspace_hits:0\r\nkeyspace_misses:0\r\npubsub_channels:{channels}\r\n\
                 pubsub_patterns:{patterns}\r\npubsubshard_channels:{shard}\r\n\
                 total_error_replies:{}\r\nstate_machine_ops_applied:{}\r\nstate_machine_batches:{}\r\n",
                st.connections_received.load(Ordering::Relaxed),
                st.commands_processed.load(Ordering::Relaxed),
                st.net_input_bytes.load(Ordering::Relaxed),
                st.net_output_bytes.load(Ordering::Relaxed),
                st.rejected_connections.load(Ordering::Relaxed),
                ss.expired_keys.load(Ordering::Relaxed),
                st.error_replies.load(Ordering::Relaxed),
                ss.ops_applied.load(Ordering::Relaxed),
                ss.batches.load(Ordering::Relaxed),
            );
        }
        "replication" => {
            // Every node accepts writes (followers forward them through Raft), so to Redis
            // clients each one is a master; the raft_* fields describe the consensus role.
            let g = srv.store.raft().status(crate::store::DEFAULT_GROUP);
            let name = |id: u64| {
                srv.members()
                    .iter()
                    .find(|m| m.id == id)
                    .map_or_else(|| "none".to_string(), |m| m.name.clone())
            };
            let _ = write!(
                s,
                "# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_failover_state:no-failover\r\n\
                 master_replid:{}\r\nmaster_replid2:0000000000000000000000000000000000000000\r\n\
                 master_repl_offset:{}\r\nsecond_repl_offset:-1\r\nrepl_backlog_active:0\r\n\
                 raft_node_id:{}\r\nraft_role:{}\r\nraft_leader:{}\r\nraft_term:{}\r\n\
                 raft_commit_index:{}\r\nraft_applied_index:{}\r\nraft_members:{}\r\n",
                srv.run_id,
                g.applied,
                name(srv.node_id),
                if g.is_leader { "leader" } else { "follower" },
                name(g.leader),
                g.term,
                g.commit,
                g.applied,
                srv.members().iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(","),
            );
        }
        "raft" => {
            let name = |id: u64| {
                srv.members()
                    .iter()
                    .find(|m| m.id == id)
                    .map_or_else(|| "none".to_string(), |m| m.name.clone())
            };
            let mut map = srv.store.raft().status.read().clone();
            let meta = map.remove(&crate::meta::META_GROUP);
            let mut groups: Vec<_> = map.into_iter().collect();
            groups.sort_by_key(|(id, _)| *id);
            let leading = groups.iter().filter(|(_, g)| g.is_leader).count();
            let _ = write!(
                s,
                "# Raft\r\nraft_node_id:{}\r\nraft_shards:{}\r\nraft_shards_leading:{leading}\r\n",
                name(srv.node_id),
                groups.len()
            );
            if let Some(g) = meta {
                let _ = write!(
                    s,
                    "raft_meta:role={},leader={},term={},applied={},version={}\r\n",
                    if g.is_leader { "leader" } else { "follower" },
                    name(g.leader),
                    g.term,
                    g.applied,
                    srv.meta.current().version,
                );
            }
            for (id, g) in groups {
                let _ = write!(
                    s,
                    "shard_{id}:role={},leader={},term={},commit={},applied={},first_index={},\
                     last_index={},voters={}\r\n",
                    if g.is_leader { "leader" } else { "follower" },
                    name(g.leader),
                    g.term,
                    g.commit,
                    g.applied,
                    g.first_index,
                    g.last_index,
                    g.voters
                        .iter()
                        .map(|v| name(*v))
                        .collect::<Vec<_>>()
                        .join("|"),
                );
            }
        }
        "cpu" => {
            let (user, sys) = cpu_times();
            let _ = write!(
                s,
                "# CPU\r\nused_cpu_sys:{sys:.6}\r\nused_cpu_user:{user:.6}\r\n\
                 used_cpu_sys_children:0.000000\r\nused_cpu_user_children:0.000000\r\n"
            );
        }
        "modules" => s.push_str("# Modules\r\n"),
        "errorstats" => s.push_str("# Errorstats\r\n"),
        "commandstats" => s.push_str("# Commandstats\r\n"),
        "latencystats" => s.push_str("# Latencystats\r\n"),
        "cluster" => {
            let sharded = srv.members().len() > 1 || srv.store.layout().shards().len() > 1;
            s.push_str(&format!(
                "# Cluster\r\ncluster_enabled:{}\r\n",
                u8::from(sharded)
            ))
        }
        "keyspace" => {
            let engine = srv.store.engine().clone();
            let now = now_ms();
            let (keys, expires) = tokio::task::spawn_blocking(move || count_keys(&engine, now))
                .await
                .unwrap_or((0, 0));
            s.push_str("# Keyspace\r\n");
            if keys > 0 {
                let _ = write!(s, "db0:keys={keys},expires={expires},avg_ttl=0\r\n");
            }
        }
        _ => return None,
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human(10), "10B");
        assert_eq!(human(2048), "2.00K");
        assert_eq!(human(3 << 20), "3.00M");
    }
}
