//! Connection and server commands. They are `Kind::Server`: the connection layer in `server/`
//! executes them; the table here gives their arity, flags and key positions exactly as Redis
//! 7.0's `COMMAND INFO` reports them.

use super::{flag, spec, CommandSpec, Kind};

const LOADING_STALE: u32 = flag::LOADING | flag::STALE;
const CONN: u32 = flag::NOSCRIPT | flag::LOADING | flag::STALE | flag::FAST;

pub const COMMANDS: &[CommandSpec] = &[
    spec("ping", -1, flag::FAST, (0, 0, 0), Kind::Server),
    spec(
        "echo",
        2,
        LOADING_STALE | flag::FAST,
        (0, 0, 0),
        Kind::Server,
    ),
    spec("quit", -1, CONN, (0, 0, 0), Kind::Server),
    spec("hello", -1, CONN, (0, 0, 0), Kind::Server),
    spec("auth", -2, CONN, (0, 0, 0), Kind::Server),
    spec(
        "select",
        2,
        LOADING_STALE | flag::FAST,
        (0, 0, 0),
        Kind::Server,
    ),
    spec("client", -2, 0, (0, 0, 0), Kind::Server),
    spec("command", -1, LOADING_STALE, (0, 0, 0), Kind::Server),
    spec("info", -1, LOADING_STALE, (0, 0, 0), Kind::Server),
    spec("config", -2, 0, (0, 0, 0), Kind::Server),
    spec(
        "time",
        1,
        LOADING_STALE | flag::FAST,
        (0, 0, 0),
        Kind::Server,
    ),
    spec(
        "lastsave",
        1,
        LOADING_STALE | flag::FAST,
        (0, 0, 0),
        Kind::Server,
    ),
    spec(
        "save",
        1,
        flag::ADMIN | flag::NOSCRIPT | flag::NO_MULTI,
        (0, 0, 0),
        Kind::Server,
    ),
    spec(
        "bgsave",
        -1,
        flag::ADMIN | flag::NOSCRIPT,
        (0, 0, 0),
        Kind::Server,
    ),
    spec(
        "debug",
        -2,
        flag::ADMIN | flag::NOSCRIPT | LOADING_STALE,
        (0, 0, 0),
        Kind::Server,
    ),
    spec(
        "shutdown",
        -1,
        flag::ADMIN | flag::NOSCRIPT | LOADING_STALE | flag::NO_MULTI,
        (0, 0, 0),
        Kind::Server,
    ),
    spec("reset", 1, CONN, (0, 0, 0), Kind::Server),
    spec("wait", 3, flag::NOSCRIPT, (0, 0, 0), Kind::Server),
    spec(
        "swapdb",
        3,
        flag::WRITE | flag::FAST,
        (0, 0, 0),
        Kind::Server,
    ),
    spec(
        "lolwut",
        -1,
        flag::READONLY | flag::FAST,
        (0, 0, 0),
        Kind::Server,
    ),
    spec("role", 1, CONN, (0, 0, 0), Kind::Server),
    spec("cluster", -2, 0, (0, 0, 0), Kind::Server),
    spec(
        "readonly",
        1,
        LOADING_STALE | flag::FAST,
        (0, 0, 0),
        Kind::Server,
    ),
    spec(
        "readwrite",
        1,
        LOADING_STALE | flag::FAST,
        (0, 0, 0),
        Kind::Server,
    ),
    // Transactions.
    spec("multi", 1, CONN, (0, 0, 0), Kind::Server),
    spec(
        "exec",
        1,
        flag::NOSCRIPT | LOADING_STALE,
        (0, 0, 0),
        Kind::Server,
    ),
    spec("discard", 1, CONN, (0, 0, 0), Kind::Server),
    spec("watch", -2, CONN, (1, -1, 1), Kind::Server),
    spec("unwatch", 1, CONN, (0, 0, 0), Kind::Server),
    // Pub/Sub.
    spec(
        "subscribe",
        -2,
        flag::PUBSUB | flag::NOSCRIPT | LOADING_STALE,
        (0, 0, 0),
        Kind::Server,
    ),
    spec(
        "psubscribe",
        -2,
        flag::PUBSUB | flag::NOSCRIPT | LOADING_STALE,
        (0, 0, 0),
        Kind::Server,
    ),
    spec(
        "unsubscribe",
        -1,
        flag::PUBSUB | flag::NOSCRIPT | LOADING_STALE,
        (0, 0, 0),
        Kind::Server,
    ),
    spec(
        "punsubscribe",
        -1,
        flag::PUBSUB | flag::NOSCRIPT | LOADING_STALE,
        (0, 0, 0),
        Kind::Server,
    ),
    spec(
        "ssubscribe",
        -2,
        flag::PUBSUB | flag::NOSCRIPT | LOADING_STALE,
        (1, -1, 1),
        Kind::Server,
    ),
    spec(
        "sunsubscribe",
        -1,
        flag::PUBSUB | flag::NOSCRIPT | LOADING_STALE,
        (1, -1, 1),
        Kind::Server,
    ),
    spec(
        "publish",
        3,
        flag::PUBSUB | LOADING_STALE | flag::FAST,
        (0, 0, 0),
        Kind::Server,
    ),
    spec(
        "spublish",
        3,
        flag::PUBSUB | LOADING_STALE | flag::FAST,
        (1, 1, 1),
        Kind::Server,
    ),
    spec("pubsub", -2, 0, (0, 0, 0), Kind::Server),
    spec("acl", -2, 0, (0, 0, 0), Kind::Server),
];

/// A subcommand of a container command (CLIENT, CONFIG, COMMAND, PUBSUB), as `COMMAND INFO`
/// lists it; `arity` counts the container name too (`CLIENT SETNAME x` is 3).
#[derive(Clone, Copy, Debug)]
pub struct SubSpec {
    pub name: &'static str,
    pub arity: i32,
    pub flags: u32,
}

const fn sub(name: &'static str, arity: i32, flags: u32) -> SubSpec {
    SubSpec { name, arity, flags }
}

const ADMIN_SUB: u32 = flag::ADMIN | flag::NOSCRIPT | LOADING_STALE;
const CONN_SUB: u32 = flag::NOSCRIPT | LOADING_STALE;

pub const CLIENT_SUBCOMMANDS: &[SubSpec] = &[
    sub("caching", 3, CONN_SUB),
    sub("getname", 2, CONN_SUB),
    sub("getredir", 2, CONN_SUB),
    sub("help", 2, LOADING_STALE),
    sub("id", 2, CONN_SUB),
    sub("info", 2, CONN_SUB),
    sub("kill", -3, ADMIN_SUB),
    sub("list", -2, ADMIN_SUB),
    sub("no-evict", 3, ADMIN_SUB),
    sub("no-touch", 3, CONN_SUB),
    sub("pause", -3, ADMIN_SUB),
    sub("reply", 3, CONN_SUB),
    sub("setinfo", 4, CONN_SUB),
    sub("setname", 3, CONN_SUB),
    sub("tracking", -3, CONN_SUB),
    sub("trackinginfo", 2, CONN_SUB),
    sub("unblock", -3, ADMIN_SUB),
    sub("unpause", 2, ADMIN_SUB),
];

pub const CONFIG_SUBCOMMANDS: &[SubSpec] = &[
    sub("get", -3, ADMIN_SUB),
    sub("help", 2, LOADING_STALE),
    sub("resetstat", 2, ADMIN_SUB),
    sub("rewrite", 2, ADMIN_SUB),
    sub("set", -4, ADMIN_SUB),
];

pub const COMMAND_SUBCOMMANDS: &[SubSpec] = &[
    sub("count", 2, LOADING_STALE),
    sub("docs", -2, LOADING_STALE),
    sub("getkeys", -4, LOADING_STALE),
    sub("getkeysandflags", -4, LOADING_STALE),
    sub("help", 2, LOADING_STALE),
    sub("info", -2, LOADING_STALE),
    sub("list", -2, LOADING_STALE),
];

pub const PUBSUB_SUBCOMMANDS: &[SubSpec] = &[
    sub("channels", -2, flag::PUBSUB | LOADING_STALE),
    sub("help", 2, LOADING_STALE),
    sub("numpat", 2, flag::PUBSUB | LOADING_STALE),
    sub("numsub", -2, flag::PUBSUB | LOADING_STALE),
    sub("shardchannels", -2, flag::PUBSUB | LOADING_STALE),
    sub("shardnumsub", -2, flag::PUBSUB | LOADING_STALE),
];

pub const ACL_SUBCOMMANDS: &[SubSpec] = &[
    sub("cat", -2, CONN_SUB),
    sub("deluser", -3, ADMIN_SUB),
    sub("dryrun", -4, ADMIN_SUB),
    sub("genpass", -2, CONN_SUB),
    sub("getuser", 3, ADMIN_SUB),
    sub("help", 2, LOADING_STALE),
    sub("list", 2, ADMIN_SUB),
    sub("load", 2, ADMIN_SUB),
    sub("log", -2, ADMIN_SUB),
    sub("save", 2, ADMIN_SUB),
    sub("setuser", -3, ADMIN_SUB),
    sub("users", 2, ADMIN_SUB),
    sub("whoami", 2, CONN_SUB),
];

pub const CLUSTER_SUBCOMMANDS: &[SubSpec] = &[
    sub("countkeysinslot", 3, LOADING_STALE),
    sub("getkeysinslot", 4, LOADING_STALE),
    sub("help", 2, LOADING_STALE),
    sub("info", 2, LOADING_STALE),
    sub("keyslot", 3, LOADING_STALE),
    sub("myid", 2, LOADING_STALE),
    sub("myshardid", 2, LOADING_STALE),
    sub("nodes", 2, LOADING_STALE),
    sub("shards", 2, LOADING_STALE),
    sub("slots", 2, LOADING_STALE),
];

/// The subcommand table of a container command, by its lower-case name.
pub fn subcommands(container: &str) -> Option<&'static [SubSpec]> {
    match container {
        "acl" => Some(ACL_SUBCOMMANDS),
        "client" => Some(CLIENT_SUBCOMMANDS),
        "config" => Some(CONFIG_SUBCOMMANDS),
        "command" => Some(COMMAND_SUBCOMMANDS),
        "pubsub" => Some(PUBSUB_SUBCOMMANDS),
        "cluster" => Some(CLUSTER_SUBCOMMANDS),
        _ => None,
    }
}

/// Finds a subcommand case-insensitively.
pub fn lookup_sub(container: &str, name: &[u8]) -> Option<&'static SubSpec> {
    subcommands(container)?
        .iter()
        .find(|s| s.name.as_bytes().eq_ignore_ascii_case(name))
}

/// Whether a subcommand's arity accepts `argc` arguments (container name included).
pub fn sub_arity_ok(s: &SubSpec, argc: usize) -> bool {
    let argc = argc as i32;
    if s.arity >= 0 {
        argc == s.arity
    } else {
        argc >= -s.arity
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::lookup;

    #[test]
    fn server_commands_are_registered_with_redis_arity() {
        let ping = lookup(b"PING").map(|s| s.arity);
        assert_eq!(ping, Some(-1));
        let watch = lookup(b"watch").map(|s| (s.arity, s.first_key, s.last_key, s.step));
        assert_eq!(watch, Some((-2, 1, -1, 1)));
        for s in COMMANDS {
            assert!(matches!(s.kind, Kind::Server), "{}", s.name);
        }
    }

    #[test]
    fn subcommands_resolve_case_insensitively() {
        assert_eq!(lookup_sub("client", b"SetName").map(|s| s.arity), Some(3));
        assert!(lookup_sub("client", b"nope").is_none());
        assert!(lookup_sub("get", b"x").is_none());
        let kill = lookup_sub("client", b"kill");
        assert!(kill.is_some_and(|k| sub_arity_ok(k, 3) && !sub_arity_ok(k, 2)));
    }
}
