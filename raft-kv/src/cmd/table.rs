//! Case-insensitive lookup over every family's command table.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::{bitmap, hash, hll, keys, list, server_cmds, set, stream, string, zset, CommandSpec};

fn table() -> &'static HashMap<&'static str, CommandSpec> {
    static TABLE: OnceLock<HashMap<&'static str, CommandSpec>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let families: [&[CommandSpec]; 10] = [
            string::COMMANDS,
            keys::COMMANDS,
            bitmap::COMMANDS,
            hash::COMMANDS,
            list::COMMANDS,
            set::COMMANDS,
            zset::COMMANDS,
            hll::COMMANDS,
            stream::COMMANDS,
            server_cmds::COMMANDS,
        ];
        let mut map = HashMap::new();
        for family in families {
            for spec in family {
                let prev = map.insert(spec.name, *spec);
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
    table().get(s)
}

/// Every registered command (for COMMAND, COMMAND COUNT, COMMAND DOCS).
pub fn specs() -> impl Iterator<Item = &'static CommandSpec> {
    table().values()
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
