//! Cluster members from `--cluster`, their Raft ids, and the data directory's identity.
//!
//! A node's Raft id is a stable hash of its name, so the `--cluster` list may be given in any
//! order. The identity file pins a data directory to one node of one cluster: starting it as
//! another node is refused, and so is starting
//! it with another member list.

use std::path::Path;

/// One member: name (as given to `--node-id`), Raft id, gRPC/admin address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub id: u64,
    pub addr: String,
}

/// FNV-1a, never 0 (Raft reserves 0 for "none").
pub fn raft_id(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h.max(1)
}

/// Parses `id=host:port,...`; names and ids must be unique.
pub fn parse_cluster(list: &str) -> Result<Vec<Member>, String> {
    let mut out: Vec<Member> = Vec::new();
    for part in list.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        let (name, addr) = part
            .split_once('=')
            .ok_or_else(|| format!("--cluster: expected id=host:port, got {part:?}"))?;
        if name.is_empty() || addr.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!("--cluster: expected id=host:port, got {part:?}"));
        }
        let id = raft_id(name);
        if let Some(dup) = out.iter().find(|m| m.name == name || m.id == id) {
            return Err(format!(
                "--cluster: duplicate member {name:?} (clashes with {:?})",
                dup.name
            ));
        }
        out.push(Member {
            name: name.to_string(),
            id,
            addr: addr.to_string(),
        });
    }
    if out.is_empty() {
        return Err("--cluster: no members given".into());
    }
    Ok(out)
}

pub fn format_cluster(members: &[Member]) -> String {
    members
        .iter()
        .map(|m| format!("{}={}", m.name, m.addr))
        .collect::<Vec<_>>()
        .join(",")
}

const IDENTITY: &str = "IDENTITY";

/// What a data directory was initialised with.
#[derive(Debug, PartialEq)]
pub struct Identity {
    /// The membership (the stored one once the directory is initialised).
    pub members: Vec<Member>,
    /// The number of shards the cluster started with.
    pub initial_shards: usize,
    /// Whether the directory was initialised just now.
    pub fresh: bool,
    /// Initialised before sharding: one group with every member as a voter.
    pub legacy: bool,
    /// The node joined a running cluster (`--join`): its membership is the metadata's, so
    /// its command line lists no members to check.
    pub joined: bool,
}

/// Whether `dir` holds an initialised data directory.
pub fn identity_exists(dir: &Path) -> bool {
    dir.join(IDENTITY).exists()
}

/// Loads the identity of an existing data directory, or writes it on first start.
/// `initial_shards` is only used by a new directory (one written before sharding has 1);
/// `joined` too (a directory of a node that joined a running cluster).
pub fn load_or_init_identity(
    dir: &Path,
    node: &str,
    members: Vec<Member>,
    initial_shards: usize,
    joined: bool,
) -> Result<Identity, String> {
    let path = dir.join(IDENTITY);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let mut stored_node = None;
            let mut stored_cluster = None;
            let mut shards = 1;
            let mut legacy = true;
            let mut was_joined = false;
            for line in text.lines() {
                if line == "joined=1" {
                    was_joined = true;
                }
                if let Some(v) = line.strip_prefix("initial_shards=") {
                    legacy = false;
                    shards = v
                        .parse()
                        .map_err(|_| format!("{} is corrupt", path.display()))?;
                }
                if let Some(v) = line.strip_prefix("node_id=") {
                    stored_node = Some(v.to_string());
                } else if let Some(v) = line.strip_prefix("cluster=") {
                    stored_cluster = Some(v.to_string());
                }
            }
            let (Some(stored_node), Some(stored_cluster)) = (stored_node, stored_cluster) else {
                return Err(format!("{} is corrupt", path.display()));
            };
            if stored_node != node {
                return Err(format!(
                    "data directory {} belongs to node {stored_node:?}, not {node:?}; use that \
                     node id or another directory",
                    dir.display()
                ));
            }
            let stored = parse_cluster(&stored_cluster)?;
            let mut given: Vec<_> = members.iter().map(|m| &m.name).collect();
            let mut have: Vec<_> = stored.iter().map(|m| &m.name).collect();
            given.sort();
            have.sort();
            if given != have && !was_joined {
                return Err(format!(
                    "data directory {} belongs to the cluster {stored_cluster}, but this node \
                     was started for {}; use the same --cluster or another directory",
                    dir.display(),
                    format_cluster(&members)
                ));
            }
            if shards != initial_shards {
                tracing::info!(
                    stored = shards,
                    "--initial-shards ignored: the data directory was initialised with {shards}"
                );
            }
            Ok(Identity {
                members: stored,
                initial_shards: shards,
                fresh: false,
                legacy,
                joined: was_joined,
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let text = format!(
                "node_id={node}\ncluster={}\ninitial_shards={initial_shards}\n{}",
                format_cluster(&members),
                if joined { "joined=1\n" } else { "" }
            );
            let tmp = dir.join("IDENTITY.tmp");
            std::fs::write(&tmp, text)
                .and_then(|_| std::fs::rename(&tmp, &path))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(Identity {
                members,
                initial_shards,
                fresh: true,
                legacy: false,
                joined,
            })
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rejects_malformed_and_duplicate_members() {
        let m = parse_cluster("node1=127.0.0.1:5001, node2=127.0.0.1:5002").expect("parse");
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].id, raft_id("node2"));
        assert_ne!(m[0].id, m[1].id);
        assert!(parse_cluster("node1").is_err());
        assert!(parse_cluster("node1=nothost").is_err());
        assert!(parse_cluster("a=127.0.0.1:1,a=127.0.0.1:2").is_err());
        assert!(parse_cluster("").is_err());
    }

    #[test]
    fn identity_pins_the_directory_to_one_node() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = parse_cluster("n1=127.0.0.1:1,n2=127.0.0.1:2").expect("parse");
        let id = load_or_init_identity(dir.path(), "n1", m.clone(), 4, false).expect("init");
        assert!(id.fresh);
        assert_eq!(id.members, m);
        let moved = parse_cluster("n2=127.0.0.1:4,n1=127.0.0.1:3").expect("parse");
        let id = load_or_init_identity(dir.path(), "n1", moved, 8, false).expect("reload");
        assert!(!id.fresh);
        assert_eq!(id.members, m, "the stored membership wins");
        assert_eq!(id.initial_shards, 4, "the stored shard count wins");
        let other = parse_cluster("n1=127.0.0.1:1").expect("parse");
        let err =
            load_or_init_identity(dir.path(), "n1", other, 4, false).expect_err("other cluster");
        assert!(err.contains("belongs to the cluster"), "{err}");
        assert!(!id.legacy);
        let err =
            load_or_init_identity(dir.path(), "n2", m.clone(), 4, false).expect_err("wrong node");
        assert!(err.contains("belongs to node"), "{err}");
        // A directory written before sharding: one shard, every member a voter.
        let old = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            old.path().join(IDENTITY),
            format!("node_id=n1\ncluster={}\n", format_cluster(&m)),
        )
        .expect("write");
        let id = load_or_init_identity(old.path(), "n1", m, 8, false).expect("legacy");
        assert_eq!((id.initial_shards, id.legacy), (1, true));
    }
}
