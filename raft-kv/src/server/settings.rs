//! Runtime parameters for CONFIG GET / CONFIG SET.
//!
//! Every parameter Redis clients and test suites commonly read or set exists with Redis'
//! default; the ones the server acts on (maxclients, timeout, requirepass, proto-max-bulk-len,
//! client-query-buffer-limit) have typed accessors. Encoding thresholds (hash-max-listpack-...)
//! are accepted and reported but have no effect: the storage layout does not depend on them.

use std::collections::BTreeMap;

use parking_lot::RwLock;

use crate::protocol::{matches, Frame};

#[derive(Clone, Copy, Debug)]
enum Kind {
    Int { min: i64, max: i64 },
    Memory,
    Bool,
    Str,
    Immutable,
}

struct Param {
    name: &'static str,
    /// Another name for the same setting (Redis keeps both spellings).
    alias: Option<&'static str>,
    kind: Kind,
    default: &'static str,
}

const fn p(name: &'static str, kind: Kind, default: &'static str) -> Param {
    Param {
        name,
        alias: None,
        kind,
        default,
    }
}

const fn pa(name: &'static str, alias: &'static str, kind: Kind, default: &'static str) -> Param {
    Param {
        name,
        alias: Some(alias),
        kind,
        default,
    }
}

const INT: Kind = Kind::Int {
    min: i64::MIN,
    max: i64::MAX,
};
const POS: Kind = Kind::Int {
    min: 0,
    max: i64::MAX,
};

const PARAMS: &[Param] = &[
    p(
        "maxclients",
        Kind::Int {
            min: 1,
            max: 4294967295,
        },
        "10000",
    ),
    p(
        "timeout",
        Kind::Int {
            min: 0,
            max: i32::MAX as i64,
        },
        "0",
    ),
    p("requirepass", Kind::Str, ""),
    p("proto-max-bulk-len", Kind::Memory, "536870912"),
    p("client-query-buffer-limit", Kind::Memory, "1073741824"),
    p("port", Kind::Immutable, "6379"),
    p("bind", Kind::Immutable, "127.0.0.1"),
    p("databases", Kind::Immutable, "1"),
    p("dir", Kind::Immutable, ""),
    p("dbfilename", Kind::Str, "dump.rdb"),
    p("save", Kind::Str, ""),
    p("appendonly", Kind::Bool, "no"),
    p("appendfsync", Kind::Str, "everysec"),
    p("hz", Kind::Int { min: 1, max: 500 }, "10"),
    p("loglevel", Kind::Str, "notice"),
    p("maxmemory", Kind::Memory, "0"),
    p("maxmemory-policy", Kind::Str, "noeviction"),
    p("maxmemory-samples", Kind::Int { min: 1, max: 64 }, "5"),
    p("notify-keyspace-events", Kind::Str, ""),
    p("lua-time-limit", INT, "5000"),
    p("busy-reply-threshold", INT, "5000"),
    p("slowlog-log-slower-than", INT, "10000"),
    p("slowlog-max-len", POS, "128"),
    p("latency-monitor-threshold", POS, "0"),
    p("latency-tracking", Kind::Bool, "yes"),
    p("tcp-keepalive", POS, "300"),
    p("tcp-backlog", Kind::Immutable, "511"),
    p("protected-mode", Kind::Bool, "yes"),
    p("cluster-enabled", Kind::Immutable, "no"),
    p("replica-read-only", Kind::Bool, "yes"),
    p("lazyfree-lazy-eviction", Kind::Bool, "no"),
    p("lazyfree-lazy-expire", Kind::Bool, "no"),
    p("lazyfree-lazy-server-del", Kind::Bool, "no"),
    p("lazyfree-lazy-user-del", Kind::Bool, "no"),
    p("lazyfree-lazy-user-flush", Kind::Bool, "no"),
    p("activerehashing", Kind::Bool, "yes"),
    p("activedefrag", Kind::Bool, "no"),
    p("active-expire-effort", Kind::Int { min: 1, max: 10 }, "1"),
    p("enable-debug-command", Kind::Immutable, "yes"),
    pa(
        "hash-max-listpack-entries",
        "hash-max-ziplist-entries",
        POS,
        "128",
    ),
    pa(
        "hash-max-listpack-value",
        "hash-max-ziplist-value",
        POS,
        "64",
    ),
    pa(
        "zset-max-listpack-entries",
        "zset-max-ziplist-entries",
        POS,
        "128",
    ),
    pa(
        "zset-max-listpack-value",
        "zset-max-ziplist-value",
        POS,
        "64",
    ),
    pa("list-max-listpack-size", "list-max-ziplist-size", INT, "-2"),
    p("list-compress-depth", POS, "0"),
    p("set-max-intset-entries", POS, "512"),
    p("stream-node-max-bytes", Kind::Memory, "4096"),
    p("stream-node-max-entries", POS, "100"),
    p(
        "client-output-buffer-limit",
        Kind::Str,
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
    ),
];

pub struct Settings {
    values: RwLock<BTreeMap<&'static str, String>>,
    /// The values read on every request or flush, parsed once per change.
    hot: RwLock<Hot>,
}

#[derive(Clone, Copy, Default)]
struct Hot {
    maxclients: usize,
    timeout_secs: u64,
    proto_max_bulk_len: usize,
    query_buffer_limit: usize,
    normal_output: OutputLimit,
    pubsub_output: OutputLimit,
}

impl Hot {
    fn of(values: &BTreeMap<&'static str, String>) -> Hot {
        let num = |name: &str| values.get(name).and_then(|v| parse_memory(v)).unwrap_or(0);
        let limits = output_limits_of(
            values
                .get("client-output-buffer-limit")
                .map_or("", String::as_str),
        );
        Hot {
            maxclients: num("maxclients") as usize,
            timeout_secs: num("timeout"),
            proto_max_bulk_len: num("proto-max-bulk-len") as usize,
            query_buffer_limit: num("client-query-buffer-limit") as usize,
            normal_output: limits[0].1,
            pubsub_output: limits[2].1,
        }
    }
}

/// Redis' `memtoull`: a byte count with an optional k/kb/m/mb/g/gb suffix.
pub fn parse_memory(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let mul: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    num.parse::<u64>().ok()?.checked_mul(mul)
}

/// One class of `client-output-buffer-limit`: the hard limit, and the soft limit with the
/// seconds a client may stay over it (0 = no limit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutputLimit {
    pub hard: u64,
    pub soft: u64,
    pub soft_secs: u64,
}

const OUTPUT_CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];

/// Parses `class hard soft seconds ...` (Redis' syntax; `replica` is `slave`) into
/// `current`, class by class: classes not named keep their limits, as in Redis.
fn parse_output_limits(
    value: &str,
    current: &mut [(&'static str, OutputLimit); 3],
) -> Result<(), String> {
    let words: Vec<&str> = value.split_whitespace().collect();
    if words.is_empty() || !words.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    for group in words.chunks(4) {
        let class = match group[0].to_ascii_lowercase().as_str() {
            "replica" | "slave" => "slave",
            c @ ("normal" | "pubsub") => OUTPUT_CLASSES
                .iter()
                .copied()
                .find(|k| *k == c)
                .unwrap_or("normal"),
            _ => {
                return Err("Invalid client class specified in buffer limit configuration.".into())
            }
        };
        let (Some(hard), Some(soft), Ok(soft_secs)) = (
            parse_memory(group[1]),
            parse_memory(group[2]),
            group[3].parse::<u64>(),
        ) else {
            return Err(
                "Error in hard, soft or soft_seconds setting in buffer limit configuration.".into(),
            );
        };
        if let Some(slot) = current.iter_mut().find(|(c, _)| *c == class) {
            slot.1 = OutputLimit {
                hard,
                soft,
                soft_secs,
            };
        }
    }
    Ok(())
}

fn format_output_limits(limits: &[(&'static str, OutputLimit); 3]) -> String {
    limits
        .iter()
        .map(|(c, l)| format!("{c} {} {} {}", l.hard, l.soft, l.soft_secs))
        .collect::<Vec<_>>()
        .join(" ")
}

fn output_limits_of(value: &str) -> [(&'static str, OutputLimit); 3] {
    let mut limits = OUTPUT_CLASSES.map(|c| (c, OutputLimit::default()));
    let _ = parse_output_limits(value, &mut limits);
    limits
}

fn find_param(name: &str) -> Option<&'static Param> {
    PARAMS.iter().find(|p| {
        p.name.eq_ignore_ascii_case(name) || p.alias.is_some_and(|a| a.eq_ignore_ascii_case(name))
    })
}

impl Settings {
    pub fn new(
        port: u16,
        bind: &str,
        dir: &str,
        requirepass: Option<&str>,
        maxclients: usize,
    ) -> Settings {
        let mut values = BTreeMap::new();
        for p in PARAMS {
            values.insert(p.name, p.default.to_string());
        }
        values.insert("port", port.to_string());
        values.insert("bind", bind.to_string());
        values.insert("dir", dir.to_string());
        values.insert("requirepass", requirepass.unwrap_or("").to_string());
        values.insert("maxclients", maxclients.to_string());
        Settings {
            hot: RwLock::new(Hot::of(&values)),
            values: RwLock::new(values),
        }
    }

    pub fn get(&self, name: &str) -> String {
        self.values.read().get(name).cloned().unwrap_or_default()
    }

    pub fn maxclients(&self) -> usize {
        self.hot.read().maxclients
    }

    /// Idle timeout in seconds (0 = never).
    pub fn timeout_secs(&self) -> u64 {
        self.hot.read().timeout_secs
    }

    pub fn requirepass(&self) -> Option<String> {
        let v = self.get("requirepass");
        (!v.is_empty()).then_some(v)
    }

    pub fn proto_max_bulk_len(&self) -> usize {
        self.hot.read().proto_max_bulk_len
    }

    /// The `normal` class of `client-output-buffer-limit`.
    pub fn normal_output_limit(&self) -> OutputLimit {
        self.hot.read().normal_output
    }

    /// The `pubsub` class of `client-output-buffer-limit`.
    pub fn pubsub_output_limit(&self) -> OutputLimit {
        self.hot.read().pubsub_output
    }

    pub fn query_buffer_limit(&self) -> usize {
        self.hot.read().query_buffer_limit
    }

    /// CONFIG GET pattern...: every parameter (and alias) matching any pattern, once.
    pub fn config_get(&self, patterns: &[&[u8]]) -> Frame {
        let values = self.values.read();
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for pat in patterns {
            for p in PARAMS {
                for name in std::iter::once(p.name).chain(p.alias) {
                    if matches(pat, name.as_bytes(), true) && seen.insert(name) {
                        let v = values.get(p.name).cloned().unwrap_or_default();
                        out.push((
                            Frame::bulk(name.as_bytes().to_vec()),
                            Frame::bulk(v.into_bytes()),
                        ));
                    }
                }
            }
        }
        Frame::Map(out)
    }

    /// CONFIG SET name value [name value ...]: all or nothing, Redis' error texts.
    pub fn config_set(&self, pairs: &[(&[u8], &[u8])]) -> Result<(), String> {
        let mut staged: Vec<(&'static str, String)> = Vec::new();
        for (name, value) in pairs {
            let name_s = String::from_utf8_lossy(name).into_owned();
            let Some(param) = find_param(&name_s) else {
                return Err(format!(
                    "ERR Unknown option or number of arguments for CONFIG SET - '{name_s}'"
                ));
            };
            let fail = |why: &str| {
                Err(format!(
                    "ERR CONFIG SET failed (possibly related to argument '{name_s}') - {why}"
                ))
            };
            if staged.iter().any(|(n, _)| *n == param.name) {
                return fail("duplicate parameter");
            }
            let value_s = String::from_utf8_lossy(value).into_owned();
            let normalized = match param.kind {
                Kind::Immutable => return fail("can't set immutable config"),
                Kind::Int { min, max } => {
                    let Some(v) = crate::cmd::args::parse_i64_opt(value) else {
                        return fail("argument couldn't be parsed into an integer");
                    };
                    if v < min || v > max {
                        return fail(&format!(
                            "argument must be between {min} and {max} inclusive"
                        ));
                    }
                    v.to_string()
                }
                Kind::Memory => match parse_memory(&value_s) {
                    Some(v) => v.to_string(),
                    None => return fail("argument must be a memory value"),
                },
                Kind::Bool => match value_s.to_ascii_lowercase().as_str() {
                    v @ ("yes" | "no") => v.to_string(),
                    _ => return fail("argument must be 'yes' or 'no'"),
                },
                Kind::Str if param.name == "client-output-buffer-limit" => {
                    let mut limits = output_limits_of(&self.get(param.name));
                    if let Err(why) = parse_output_limits(&value_s, &mut limits) {
                        return fail(&why);
                    }
                    format_output_limits(&limits)
                }
                Kind::Str => value_s,
            };
            staged.push((param.name, normalized));
        }
        let mut values = self.values.write();
        for (name, v) in staged {
            values.insert(name, v);
        }
        *self.hot.write() = Hot::of(&values);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(s: &Settings, pats: &[&str]) -> Frame {
        let pats: Vec<&[u8]> = pats.iter().map(|p| p.as_bytes()).collect();
        s.config_get(&pats)
    }

    fn set(s: &Settings, pairs: &[(&str, &str)]) -> Result<(), String> {
        let pairs: Vec<(&[u8], &[u8])> = pairs
            .iter()
            .map(|(a, b)| (a.as_bytes(), b.as_bytes()))
            .collect();
        s.config_set(&pairs)
    }

    fn settings() -> Settings {
        Settings::new(6379, "127.0.0.1", "/tmp/x", None, 10000)
    }

    #[test]
    fn get_matches_globs_and_aliases() {
        let s = settings();
        let Frame::Map(m) = get(&s, &["maxclients"]) else {
            panic!("map expected")
        };
        assert_eq!(m, vec![(Frame::bulk("maxclients"), Frame::bulk("10000"))]);
        let Frame::Map(m) = get(&s, &["hash-max-*-entries"]) else {
            panic!("map expected")
        };
        assert_eq!(m.len(), 2);
        let Frame::Map(m) = get(&s, &["nosuch"]) else {
            panic!("map expected")
        };
        assert!(m.is_empty());
        let Frame::Map(m) = get(&s, &["port", "PORT", "po*"]) else {
            panic!("map expected")
        };
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn output_buffer_limits_parse_by_class() {
        let s = settings();
        assert_eq!(
            s.pubsub_output_limit(),
            OutputLimit {
                hard: 32 << 20,
                soft: 8 << 20,
                soft_secs: 60
            }
        );
        assert_eq!(
            set(&s, &[("client-output-buffer-limit", "pubsub 1mb 256kb 5")]),
            Ok(())
        );
        assert_eq!(
            s.get("client-output-buffer-limit"),
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 1048576 262144 5"
        );
        assert_eq!(s.pubsub_output_limit().hard, 1 << 20);
        for bad in [
            "pubsub 1mb 0",
            "viewer 1 1 1",
            "pubsub x 0 0",
            "pubsub 1 1 -1",
        ] {
            assert!(
                set(&s, &[("client-output-buffer-limit", bad)]).is_err(),
                "{bad}"
            );
        }
        assert_eq!(s.pubsub_output_limit().soft_secs, 5);
    }

    #[test]
    fn set_validates_like_redis() {
        let s = settings();
        assert_eq!(set(&s, &[("timeout", "5")]), Ok(()));
        assert_eq!(s.timeout_secs(), 5);
        assert_eq!(
            set(&s, &[("foo", "bar")]),
            Err("ERR Unknown option or number of arguments for CONFIG SET - 'foo'".into())
        );
        assert_eq!(
            set(&s, &[("maxclients", "abc")]),
            Err("ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument couldn't be parsed into an integer".into())
        );
        assert_eq!(
            set(&s, &[("maxclients", "-1")]),
            Err("ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument must be between 1 and 4294967295 inclusive".into())
        );
        assert_eq!(
            set(&s, &[("timeout", "1"), ("timeout", "2")]),
            Err("ERR CONFIG SET failed (possibly related to argument 'timeout') - duplicate parameter".into())
        );
        assert_eq!(
            set(&s, &[("port", "1")]),
            Err("ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config".into())
        );
        // All or nothing.
        assert!(set(&s, &[("timeout", "7"), ("maxclients", "x")]).is_err());
        assert_eq!(s.timeout_secs(), 5);
        assert_eq!(set(&s, &[("hash-max-ziplist-entries", "3")]), Ok(()));
        assert_eq!(s.get("hash-max-listpack-entries"), "3");
        assert_eq!(set(&s, &[("proto-max-bulk-len", "1mb")]), Ok(()));
        assert_eq!(s.proto_max_bulk_len(), 1 << 20);
        assert_eq!(set(&s, &[("requirepass", "pw")]), Ok(()));
        assert_eq!(s.requirepass().as_deref(), Some("pw"));
        // The values read per request follow every change.
        assert_eq!(s.normal_output_limit(), OutputLimit::default());
        let limits = "normal 1mb 512kb 5 pubsub 2mb 1mb 9";
        assert_eq!(set(&s, &[("client-output-buffer-limit", limits)]), Ok(()));
        let n = s.normal_output_limit();
        assert_eq!((n.hard, n.soft, n.soft_secs), (1 << 20, 512 << 10, 5));
        assert_eq!(s.pubsub_output_limit().soft_secs, 9);
        assert_eq!(set(&s, &[("client-query-buffer-limit", "2mb")]), Ok(()));
        assert_eq!(s.query_buffer_limit(), 2 << 20);
        assert_eq!(set(&s, &[("maxclients", "77")]), Ok(()));
        assert_eq!(s.maxclients(), 77);
    }
}
