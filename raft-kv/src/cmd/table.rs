//! Case-insensitive lookup over every family's command table.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::{bitmap, hash, hll, keys, list, server_cmds, set, stream, string, zset, CommandSpec};

/// The family file a command is declared in (its data type, for the ACL categories).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Family {
    String,
    Keys,
    Bitmap,
    Hash,
    List,
    Set,
    Zset,
    Hll,
    Stream,
    Server,
}

const FAMILIES: [(Family, &[CommandSpec]); 10] = [
    (Family::String, string::COMMANDS),
    (Family::Keys, keys::COMMANDS),
    (Family::Bitmap, bitmap::COMMANDS),
    (Family::Hash, hash::COMMANDS),
    (Family::List, list::COMMANDS),
    (Family::Set, set::COMMANDS),
    (Family::Zset, zset::COMMANDS),
    (Family::Hll, hll::COMMANDS),
    (Family::Stream, stream::COMMANDS),
    (Family::Server, server_cmds::COMMANDS),
];

fn table() -> &'static HashMap<&'static str, (CommandSpec, Family)> {
    static TABLE: OnceLock<HashMap<&'static str, (CommandSpec, Family)>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut map = HashMap::new();
        for (family, specs) in FAMILIES {
            for spec in specs {
                let prev = map.insert(spec.name, (*spec, family));
                assert!(prev.is_none(), "command {} registered twice", spec.name);
            }
        }
        map
    })
}

/// The spec of a command, matched case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    let mut buf = [0u8; 32];
    if name.len() > buf.len() {
        return None;
    }
    let lower = &mut buf[..name.len()];
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    let s = std::str::from_utf8(lower).ok()?;
    table().get(s).map(|(spec, _)| spec)
}

/// The family of a command by its lower-case name.
pub fn family(name: &str) -> Option<Family> {
    table().get(name).map(|(_, f)| *f)
}

/// Every registered command (for COMMAND, COMMAND COUNT, COMMAND DOCS).
pub fn specs() -> impl Iterator<Item = &'static CommandSpec> {
    table().values().map(|(spec, _)| spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_case_insensitive() {
        if let Some(get) = lookup(b"get") {
            assert_eq!(lookup(b"GeT").map(|s| s.name), Some(get.name));
        }
        assert!(lookup(b"no-such-command").is_none());
        assert!(lookup(&[b'x'; 100]).is_none());
    }
}
