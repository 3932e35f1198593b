//! Redis Cluster's view of RaftKV: CLUSTER SLOTS/SHARDS/NODES/INFO/..., READONLY/READWRITE,
//! and `-MOVED` redirects, so cluster-aware clients send each command straight to the leader
//! of its shard.
//!
//! A shard's leader is its "master" and its other replicas are "replicas". A connection
//! becomes cluster-aware once it asks for the topology (CLUSTER SLOTS/SHARDS/NODES) or sends
//! READONLY/READWRITE; with `--route-mode redirect` every connection is. A cluster-aware
//! connection gets `-MOVED slot host:port` for a shard led elsewhere, and keyspace-wide
//! commands (DBSIZE, KEYS, SCAN, FLUSHALL) cover only the shards this node leads, as a Redis
//! Cluster master answers for its own slots. Other connections are proxied.

use bytes::Bytes;

use super::conn::{err, unknown_subcommand, Conn, Reply};
use super::Server;
use crate::cmd::args::parse_i64_opt;
use crate::cmd::{CommandSpec, Kind};
use crate::protocol::Frame;
use crate::routing::{Plan, ShardSpec, CROSSSLOT};
use crate::storage::slot::key_slot;

fn bulk(s: &str) -> Frame {
    Frame::bulk(s.as_bytes().to_vec())
}

/// A node's 40-hex-digit cluster id, stable for its Raft id.
pub fn cluster_node_id(id: u64) -> String {
    let b = id.rotate_left(29) ^ 0x9E37_79B9_7F4A_7C15;
    format!("{id:016x}{b:016x}{:08x}", (id ^ b) as u32)
}

fn split_addr(addr: &str) -> (String, u16) {
    match addr.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse().unwrap_or(0)),
        None => (addr.to_string(), 0),
    }
}

/// The leader of a shard as this node knows it: from its own replica, else as its peers
/// report it, else the preferred leader (that node redirects further if needed).
pub fn shard_leader(srv: &Server, shard: &ShardSpec) -> u64 {
    srv.store
        .leader_hint(shard)
        .or_else(|| shard.replicas.first().copied())
        .unwrap_or(srv.node_id)
}

/// The shards this node advertises itself as master of (CLUSTER SLOTS/NODES): a
/// cluster-aware client sends it their keyspace-wide commands (DBSIZE, KEYS, SCAN, ...), so
/// it answers for exactly those, even a shard whose leader it no longer is.
pub fn advertised_shards(srv: &Server) -> Vec<ShardSpec> {
    srv.store
        .layout()
        .shards()
        .iter()
        .filter(|s| shard_leader(srv, s) == srv.node_id)
        .cloned()
        .collect()
}

/// Replicas with the leader first.
fn ordered_replicas(shard: &ShardSpec, leader: u64) -> Vec<u64> {
    let mut v = vec![leader];
    v.extend(shard.replicas.iter().copied().filter(|r| *r != leader));
    v
}

/// A node's Redis address; empty host and port 0 while a peer has not told us yet (Redis
/// shows a node without a known address the same way, flagged `noaddr`).
fn node_addr(srv: &Server, id: u64) -> (String, u16) {
    match srv.redis_addr_of(id) {
        Some(a) => split_addr(&a),
        None => (String::new(), 0),
    }
}

impl Conn {
    pub fn is_cluster_aware(&self) -> bool {
        self.cluster_aware || self.srv.route_mode == crate::config::RouteMode::Redirect
    }

    pub fn cmd_readonly(&mut self, readonly: bool) -> Reply {
        self.cluster_aware = true;
        self.readonly = readonly;
        Frame::ok().into()
    }

    pub async fn cmd_cluster(&mut self, args: &[Bytes]) -> Reply {
        let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
        let srv = self.srv.clone();
        let layout = srv.store.layout();
        match sub.as_str() {
            "slots" => {
                self.cluster_aware = true;
                let out = layout
                    .shards()
                    .iter()
                    .map(|s| {
                        let mut e = vec![
                            Frame::Integer(s.first_slot.into()),
                            Frame::Integer(s.last_slot.into()),
                        ];
                        for r in ordered_replicas(s, shard_leader(&srv, s)) {
                            let (host, port) = node_addr(&srv, r);
                            e.push(Frame::Array(vec![
                                bulk(&host),
                                Frame::Integer(port.into()),
                                bulk(&cluster_node_id(r)),
                                Frame::Array(vec![]),
                            ]));
                        }
                        Frame::Array(e)
                    })
                    .collect();
                Frame::Array(out).into()
            }
            "shards" => {
                self.cluster_aware = true;
                let out = layout
                    .shards()
                    .iter()
                    .map(|s| {
                        let leader = shard_leader(&srv, s);
                        let applied = srv.store.raft().status(s.id).applied as i64;
                        let nodes = ordered_replicas(s, leader)
                            .into_iter()
                            .map(|r| {
                                let (host, port) = node_addr(&srv, r);
                                Frame::Map(vec![
                                    (bulk("id"), bulk(&cluster_node_id(r))),
                                    (bulk("port"), Frame::Integer(port.into())),
                                    (bulk("ip"), bulk(&host)),
                                    (bulk("endpoint"), bulk(&host)),
                                    (
                                        bulk("role"),
                                        bulk(if r == leader { "master" } else { "replica" }),
                                    ),
                                    (bulk("replication-offset"), Frame::Integer(applied)),
                                    (bulk("health"), bulk("online")),
                                ])
                            })
                            .collect();
                        Frame::Map(vec![
                            (
                                bulk("slots"),
                                Frame::Array(vec![
                                    Frame::Integer(s.first_slot.into()),
                                    Frame::Integer(s.last_slot.into()),
                                ]),
                            ),
                            (bulk("nodes"), Frame::Array(nodes)),
                        ])
                    })
                    .collect();
                Frame::Array(out).into()
            }
            "nodes" => {
                self.cluster_aware = true;
                Frame::Verbatim(Bytes::from(cluster_nodes_text(&srv))).into()
            }
            "info" => {
                let n = layout.shards().len();
                let text = format!(
                    "cluster_enabled:1\r\ncluster_state:ok\r\ncluster_slots_assigned:16384\r\n\
                     cluster_slots_ok:16384\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:0\r\n\
                     cluster_known_nodes:{}\r\ncluster_size:{}\r\ncluster_current_epoch:{}\r\n\
                     cluster_my_epoch:{}\r\ncluster_shards:{n}\r\n",
                    srv.members().len(),
                    srv.members().len().min(n),
                    layout.shards().iter().map(|s| s.epoch).max().unwrap_or(0),
                    layout.shards().iter().map(|s| s.epoch).max().unwrap_or(0),
                );
                Frame::Verbatim(Bytes::from(text)).into()
            }
            "myid" => bulk(&cluster_node_id(srv.node_id)).into(),
            "myshardid" => {
                let led = layout
                    .shards()
                    .iter()
                    .find(|s| shard_leader(&srv, s) == srv.node_id)
                    .or_else(|| layout.hosted_by(srv.node_id).next());
                match led {
                    Some(s) => bulk(&format!("{:040x}", s.id)).into(),
                    None => err("ERR this node hosts no shard"),
                }
            }
            "keyslot" if args.len() == 3 => Frame::Integer(key_slot(&args[2]).into()).into(),
            "countkeysinslot" if args.len() == 3 => match slot_arg(&args[2]) {
                Ok(slot) => match srv.store.keys_in_slot(slot).await {
                    Ok(keys) => Frame::Integer(keys.len() as i64).into(),
                    Err(e) => e.into(),
                },
                Err(e) => e,
            },
            "getkeysinslot" if args.len() == 4 => {
                let slot = match slot_arg(&args[2]) {
                    Ok(s) => s,
                    Err(e) => return e,
                };
                match parse_i64_opt(&args[3]) {
                    Some(n) if n >= 0 => match srv.store.keys_in_slot(slot).await {
                        Ok(mut keys) => {
                            keys.truncate(n as usize);
                            Frame::Array(keys.into_iter().map(Frame::Bulk).collect()).into()
                        }
                        Err(e) => e.into(),
                    },
                    _ => err("ERR Invalid number of keys"),
                }
            }
            "help" => Frame::Array(
                [
                    "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                    "COUNTKEYSINSLOT <slot>",
                    "GETKEYSINSLOT <slot> <count>",
                    "INFO",
                    "KEYSLOT <key>",
                    "MYID",
                    "MYSHARDID",
                    "NODES",
                    "SHARDS",
                    "SLOTS",
                ]
                .iter()
                .map(|s| Frame::Simple((*s).into()))
                .collect(),
            )
            .into(),
            "keyslot" | "countkeysinslot" | "getkeysinslot" => err(format!(
                "ERR wrong number of arguments for 'cluster|{sub}' command"
            )),
            _ => unknown_subcommand("cluster", &args[1]),
        }
    }

    /// For a cluster-aware connection: the `-MOVED` (or `-CROSSSLOT`) reply if the command
    /// must be sent elsewhere; None to run it here.
    pub fn redirect(&self, spec: &CommandSpec, args: &[Bytes]) -> Option<Frame> {
        if !self.is_cluster_aware() || matches!(spec.kind, Kind::Server) {
            return None;
        }
        let layout = self.srv.store.layout();
        match crate::routing::plan::plan(&layout, spec, args) {
            Plan::One { shard, slot } => {
                let shard = layout.shard(shard)?;
                let here = shard.replicas.contains(&self.srv.node_id);
                // READONLY: a replica serves reads (still linearizable: ReadIndex).
                if here && self.readonly && !spec.is_write() {
                    return None;
                }
                let st = self.srv.store.raft().status(shard.id);
                let target = if here {
                    if st.is_leader || st.leader == 0 {
                        return None; // leader here, or an election: run (it waits for one)
                    }
                    st.leader
                } else {
                    shard_leader(&self.srv, shard)
                };
                let addr = self.srv.redis_addr_of(target)?;
                Some(Frame::Error(format!("MOVED {slot} {addr}")))
            }
            Plan::Split(_) | Plan::CrossSlot => Some(Frame::Error(CROSSSLOT.into())),
            Plan::AllShards => None,
        }
    }
}

fn slot_arg(raw: &[u8]) -> Result<u16, Reply> {
    match parse_i64_opt(raw) {
        Some(n) if (0..16384).contains(&n) => Ok(n as u16),
        _ => Err(err("ERR Invalid slot")),
    }
}

/// `CLUSTER NODES`: one line per node, with the slot ranges of the shards it leads.
fn cluster_nodes_text(srv: &Server) -> String {
    let layout = srv.store.layout();
    let mut out = String::new();
    let mut members = srv.members();
    members.sort_by(|a, b| a.name.cmp(&b.name));
    for m in &members {
        let (host, port) = node_addr(srv, m.id);
        let led: Vec<String> = layout
            .shards()
            .iter()
            .filter(|s| shard_leader(srv, s) == m.id)
            .map(|s| {
                if s.first_slot == s.last_slot {
                    s.first_slot.to_string()
                } else {
                    format!("{}-{}", s.first_slot, s.last_slot)
                }
            })
            .collect();
        let myself = if m.id == srv.node_id { "myself," } else { "" };
        let noaddr = if port == 0 { ",noaddr" } else { "" };
        // Nodes that lead nothing are listed as masters without slots (Redis Cluster
        // clients only need the masters' slot ranges).
        let cport = if port == 0 {
            "0"
        } else {
            m.addr.rsplit_once(':').map_or("0", |(_, p)| p)
        };
        out.push_str(&format!(
            "{} {host}:{port}@{cport} {myself}master{noaddr} - 0 0 {} connected{}{}\n",
            cluster_node_id(m.id),
            layout.shards().iter().map(|s| s.epoch).max().unwrap_or(0),
            if led.is_empty() { "" } else { " " },
            led.join(" ")
        ));
    }
    out
}
