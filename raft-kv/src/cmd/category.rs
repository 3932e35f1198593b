//! ACL categories (`@read`, `@string`, ...) of every command: the one source for `COMMAND
//! INFO`, `COMMAND LIST FILTERBY ACLCAT`, `ACL CAT` and the ACL permission checks.
//!
//! Most come from the command flags as Redis derives them (`@write`, `@read`, `@admin`,
//! `@dangerous`, `@pubsub`, `@fast`/`@slow`, `@blocking`); the data-type ones from the family
//! file a command is declared in; the rest (`@keyspace`, `@connection`, `@transaction` and the
//! few commands Redis marks `@dangerous` or `@admin` without the flag) from Redis 7.0's lists.

use super::server_cmds::{subcommands, SubSpec};
use super::table::{family, Family};
use super::{flag, specs, CommandSpec};

/// Every category, in Redis' order (`ACL CAT`, and the order `COMMAND INFO` lists them).
pub const NAMES: [&str; 21] = [
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// A set of categories: bit `i` is `NAMES[i]`.
pub type Categories = u32;

/// The bit of a category by name (without the `@`), case-insensitively.
pub fn bit(name: &str) -> Option<Categories> {
    NAMES
        .iter()
        .position(|n| n.eq_ignore_ascii_case(name))
        .map(|i| 1 << i)
}

fn b(name: &str) -> Categories {
    bit(name).unwrap_or(0)
}

const KEYSPACE: &[&str] = &[
    "copy",
    "dbsize",
    "del",
    "dump",
    "exists",
    "expire",
    "expireat",
    "expiretime",
    "flushall",
    "flushdb",
    "keys",
    "migrate",
    "move",
    "object",
    "persist",
    "pexpire",
    "pexpireat",
    "pexpiretime",
    "pttl",
    "randomkey",
    "rename",
    "renamenx",
    "restore",
    "restore-asking",
    "scan",
    "swapdb",
    "touch",
    "ttl",
    "type",
    "unlink",
];

/// `@dangerous` in Redis without the admin flag.
const DANGEROUS: &[&str] = &[
    "flushall",
    "flushdb",
    "keys",
    "sort",
    "sort_ro",
    "swapdb",
    "migrate",
    "restore",
    "restore-asking",
    "info",
    "role",
    "lastsave",
];

/// `@admin` in Redis without the admin flag.
const ADMIN: &[&str] = &["role", "lastsave"];

const CONNECTION: &[&str] = &[
    "asking",
    "auth",
    "client",
    "command",
    "echo",
    "hello",
    "ping",
    "quit",
    "readonly",
    "readwrite",
    "reset",
    "select",
    "wait",
];

const TRANSACTION: &[&str] = &["discard", "exec", "multi", "unwatch", "watch"];

/// The categories of a command, or of one of its subcommands (which have their own flags).
pub fn of(spec: &CommandSpec, sub: Option<&SubSpec>) -> Categories {
    let name = spec.name;
    let flags = sub.map_or(spec.flags, |s| s.flags);
    let mut m = 0;
    if flags & flag::WRITE != 0 {
        m |= b("write");
    }
    if flags & flag::READONLY != 0 {
        m |= b("read");
    }
    if flags & flag::ADMIN != 0 || (sub.is_none() && ADMIN.contains(&name)) {
        m |= b("admin") | b("dangerous");
    }
    if flags & flag::PUBSUB != 0 {
        m |= b("pubsub");
    }
    m |= b(if flags & flag::FAST != 0 {
        "fast"
    } else {
        "slow"
    });
    if flags & flag::BLOCKING != 0 {
        m |= b("blocking");
    }
    if sub.is_none() && DANGEROUS.contains(&name) {
        m |= b("dangerous");
    }
    if sub.is_none() && KEYSPACE.contains(&name) {
        m |= b("keyspace");
    }
    if CONNECTION.contains(&name) {
        m |= b("connection");
    }
    if TRANSACTION.contains(&name) {
        m |= b("transaction");
    }
    m |= match family(name) {
        Some(Family::String) => b("string"),
        Some(Family::Bitmap) => b("bitmap"),
        Some(Family::Hash) => b("hash"),
        Some(Family::List) => b("list"),
        Some(Family::Set) => b("set"),
        Some(Family::Zset) if name.starts_with("geo") => b("geo"),
        Some(Family::Zset) => b("sortedset"),
        Some(Family::Hll) => b("hyperloglog"),
        Some(Family::Stream) => b("stream"),
        Some(Family::Keys) if name == "sort" || name == "sort_ro" => {
            b("set") | b("sortedset") | b("list")
        }
        Some(Family::Keys) | Some(Family::Server) | None => 0,
    };
    m
}

/// The names of `cats`, in Redis' order.
pub fn names(cats: Categories) -> impl Iterator<Item = &'static str> {
    NAMES
        .iter()
        .enumerate()
        .filter(move |(i, _)| cats & (1 << i) != 0)
        .map(|(_, n)| *n)
}

/// Every command and subcommand (`client|list`) in the categories `cats`, sorted.
pub fn commands_in(cats: Categories) -> Vec<String> {
    let mut out = Vec::new();
    for spec in specs() {
        match subcommands(spec.name) {
            Some(subs) => out.extend(
                subs.iter()
                    .filter(|s| of(spec, Some(s)) & cats != 0)
                    .map(|s| format!("{}|{}", spec.name, s.name)),
            ),
            None => {
                if of(spec, None) & cats != 0 {
                    out.push(spec.name.to_string());
                }
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::lookup;

    fn cats(cmd: &str) -> Vec<&'static str> {
        let spec = lookup(cmd.as_bytes()).expect("known command");
        names(of(spec, None)).collect()
    }

    #[test]
    fn categories_match_redis() {
        assert_eq!(cats("get"), ["read", "string", "fast"]);
        assert_eq!(cats("set"), ["write", "string", "slow"]);
        assert_eq!(cats("hset"), ["write", "hash", "fast"]);
        assert_eq!(cats("blpop"), ["write", "list", "slow", "blocking"]);
        assert_eq!(cats("del"), ["keyspace", "write", "slow"]);
        assert_eq!(cats("keys"), ["keyspace", "read", "slow", "dangerous"]);
        assert_eq!(cats("flushall"), ["keyspace", "write", "slow", "dangerous"]);
        assert_eq!(cats("pfadd"), ["write", "hyperloglog", "fast"]);
        assert_eq!(cats("multi"), ["fast", "transaction"]);
        assert_eq!(cats("publish"), ["pubsub", "fast"]);
        assert_eq!(cats("ping"), ["fast", "connection"]);
        assert_eq!(cats("xadd"), ["write", "stream", "fast"]);
        assert_eq!(cats("setbit"), ["write", "bitmap", "slow"]);
        assert_eq!(cats("zadd"), ["write", "sortedset", "fast"]);
        let client = lookup(b"client").expect("client");
        let kill = subcommands("client")
            .and_then(|s| s.iter().find(|s| s.name == "kill"))
            .expect("client kill");
        assert_eq!(
            names(of(client, Some(kill))).collect::<Vec<_>>(),
            ["admin", "slow", "dangerous", "connection"]
        );
        assert_eq!(bit("STRING"), Some(1 << 7));
        assert_eq!(bit("nosuch"), None);
        let hll = commands_in(b("hyperloglog"));
        assert!(hll.contains(&"pfadd".to_string()), "{hll:?}");
        assert!(commands_in(b("admin")).contains(&"client|kill".to_string()));
    }
}
