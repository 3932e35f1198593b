//! Where a data command goes: one shard, several (split and merged), every shard, or nowhere
//! (`CROSSSLOT`).

use bytes::Bytes;

use super::layout::Layout;
use crate::cmd::{CommandSpec, Kind};
use crate::protocol::Frame;
use crate::storage::slot::key_slot;

/// Redis Cluster's error for keys that must be together but are not.
pub const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";

#[derive(Debug, PartialEq)]
pub enum Plan {
    /// Every key is in this shard (keyless commands without a keyspace-wide meaning too).
    One { shard: u64, slot: u16 },
    /// Keys in several shards of a command that may be split: the command for each shard,
    /// with the positions (in the original key order) its reply answers.
    Split(Vec<SplitPart>),
    /// Keyspace-wide: KEYS, SCAN, DBSIZE, RANDOMKEY, FLUSHALL, FLUSHDB.
    AllShards,
    /// Keys in several shards of a command that must run atomically in one place.
    CrossSlot,
}

#[derive(Debug, PartialEq)]
pub struct SplitPart {
    pub shard: u64,
    pub args: Vec<Bytes>,
    /// Indexes of this part's keys among the command's keys (for MGET's reply order).
    pub key_order: Vec<usize>,
}

/// How the replies of a split command combine.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Merge {
    /// MGET: values in the order of the keys.
    Ordered,
    /// DEL, UNLINK, EXISTS, TOUCH: the sum of the counts.
    Sum,
    /// MSET: OK once every part is OK.
    AllOk,
}

/// The commands whose keys may live in several shards, and how they split: (name, values
/// per key after the key).
fn splittable(name: &str) -> Option<(usize, Merge)> {
    match name {
        "mget" => Some((0, Merge::Ordered)),
        "del" | "unlink" | "exists" | "touch" => Some((0, Merge::Sum)),
        "mset" => Some((1, Merge::AllOk)),
        _ => None,
    }
}

pub fn merge_kind(name: &str) -> Option<Merge> {
    splittable(name).map(|(_, m)| m)
}

pub fn is_keyspace_wide(name: &str) -> bool {
    matches!(
        name,
        "keys" | "scan" | "dbsize" | "randomkey" | "flushall" | "flushdb"
    )
}

/// Routes a data command (arity already checked).
pub fn plan(layout: &Layout, spec: &CommandSpec, args: &[Bytes]) -> Plan {
    if matches!(spec.kind, Kind::Server) {
        return Plan::One {
            shard: layout.shard_of_slot(0).id,
            slot: 0,
        };
    }
    let keys = spec.key_indexes(args);
    if keys.is_empty() {
        if is_keyspace_wide(spec.name) {
            return Plan::AllShards;
        }
        // Keyless (e.g. a numkeys argument that is not a number): the command itself
        // answers with its error wherever it runs.
        return Plan::One {
            shard: layout.shard_of_slot(0).id,
            slot: 0,
        };
    }
    let first_slot = key_slot(&args[keys[0]]);
    let first = layout.shard_of_slot(first_slot).id;
    let shard_of = |i: usize| layout.shard_of_slot(key_slot(&args[i])).id;
    if keys.iter().all(|&i| shard_of(i) == first) {
        return Plan::One {
            shard: first,
            slot: first_slot,
        };
    }
    let Some((values, _)) = splittable(spec.name) else {
        return Plan::CrossSlot;
    };
    if keys.iter().any(|&i| i + values >= args.len()) {
        // A key without its value (MSET with an odd count): the command answers with its
        // arity error wherever it runs.
        return Plan::One {
            shard: first,
            slot: first_slot,
        };
    }
    let mut parts: Vec<SplitPart> = Vec::new();
    for (order, &i) in keys.iter().enumerate() {
        let shard = shard_of(i);
        let part = match parts.iter().position(|p| p.shard == shard) {
            Some(p) => &mut parts[p],
            None => {
                parts.push(SplitPart {
                    shard,
                    args: vec![args[0].clone()],
                    key_order: Vec::new(),
                });
                parts.last_mut().expect("just pushed")
            }
        };
        part.args.extend_from_slice(&args[i..=i + values]);
        part.key_order.push(order);
    }
    Plan::Split(parts)
}

/// The error a command run on several shards answers with, if any part failed. A read (or a
/// write no part of which was applied: every part refused with TRYAGAIN) answers with the
/// first error. A write that some shards applied and others did not, or may not have, must
/// not claim "not applied": it answers UNCERTAIN.
pub fn first_failure(write: bool, replies: &[Frame]) -> Option<Frame> {
    let first = replies.iter().find(|r| r.is_error())?;
    let not_applied = |r: &Frame| matches!(r, Frame::Error(e) if e.starts_with("TRYAGAIN"));
    if !write || replies.iter().all(not_applied) {
        return Some(first.clone());
    }
    let done = replies.iter().filter(|r| !r.is_error()).count();
    Some(Frame::Error(format!(
        "UNCERTAIN the command spans {} shards: {done} applied it, the others failed or may not have ({}); check before retrying",
        replies.len(),
        match first {
            Frame::Error(e) => e.as_str(),
            _ => "",
        }
    )))
}

/// Combines the replies of a split command (one per part, in part order); errors are
/// handled by `first_failure` first.
pub fn merge(kind: Merge, parts: &[SplitPart], replies: Vec<Frame>) -> Frame {
    if let Some(e) = replies.iter().find(|r| r.is_error()) {
        return e.clone();
    }
    match kind {
        Merge::Sum => Frame::Integer(
            replies
                .iter()
                .map(|r| match r {
                    Frame::Integer(n) => *n,
                    _ => 0,
                })
                .sum(),
        ),
        Merge::AllOk => Frame::ok(),
        Merge::Ordered => {
            let total: usize = parts.iter().map(|p| p.key_order.len()).sum();
            let mut out = vec![Frame::Null; total];
            for (part, reply) in parts.iter().zip(replies) {
                let Frame::Array(values) = reply else {
                    return Frame::Error("ERR unexpected reply from a shard".into());
                };
                for (&pos, v) in part.key_order.iter().zip(values) {
                    if let Some(slot) = out.get_mut(pos) {
                        *slot = v;
                    }
                }
            }
            Frame::Array(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::lookup;

    fn args(a: &[&str]) -> Vec<Bytes> {
        a.iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    fn plan_of(layout: &Layout, a: &[&str]) -> Plan {
        let a = args(a);
        let spec = lookup(&a[0]).expect("known command");
        plan(layout, spec, &a)
    }

    #[test]
    fn single_shard_multi_shard_and_crossslot() {
        let l = Layout::initial(&[1, 2, 3], 4).expect("layout");
        // {a} and {b} hash to different shards with 4 shards (slots 15495 and 3300).
        assert_eq!(
            plan_of(&l, &["get", "{a}x"]),
            Plan::One {
                shard: l.shard_of_slot(key_slot(b"a")).id,
                slot: key_slot(b"a")
            }
        );
        assert!(matches!(
            plan_of(&l, &["mget", "{a}1", "{a}2"]),
            Plan::One { .. }
        ));
        assert_eq!(plan_of(&l, &["rename", "{a}", "{b}"]), Plan::CrossSlot);
        assert_eq!(plan_of(&l, &["sinterstore", "{a}", "{b}"]), Plan::CrossSlot);
        assert_eq!(plan_of(&l, &["dbsize"]), Plan::AllShards);
        let Plan::Split(parts) = plan_of(&l, &["mset", "{a}1", "x", "{b}1", "y", "{a}2", "z"])
        else {
            panic!("mset splits");
        };
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].args, args(&["mset", "{a}1", "x", "{a}2", "z"]));
        assert_eq!(parts[0].key_order, vec![0, 2]);
        assert_eq!(parts[1].args, args(&["mset", "{b}1", "y"]));
        // A malformed MSET is not split (its own error comes back from one shard).
        assert!(matches!(
            plan_of(&l, &["mset", "{a}1", "x", "{b}1"]),
            Plan::One { .. }
        ));
    }

    #[test]
    fn mget_replies_come_back_in_key_order() {
        let l = Layout::initial(&[1], 4).expect("layout");
        let Plan::Split(parts) = plan_of(&l, &["mget", "{a}1", "{b}1", "{a}2"]) else {
            panic!("mget splits");
        };
        let b = |s: &str| Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()));
        let merged = merge(
            Merge::Ordered,
            &parts,
            vec![
                Frame::Array(vec![b("a1"), Frame::Null]),
                Frame::Array(vec![b("b1")]),
            ],
        );
        assert_eq!(merged, Frame::Array(vec![b("a1"), b("b1"), Frame::Null]));
        let sum = merge(
            Merge::Sum,
            &parts,
            vec![Frame::Integer(2), Frame::Integer(1)],
        );
        assert_eq!(sum, Frame::Integer(3));
        let err = merge(
            Merge::AllOk,
            &parts,
            vec![Frame::ok(), Frame::Error("TRYAGAIN x".into())],
        );
        assert!(err.is_error());
        // Partly applied writes are UNCERTAIN, never TRYAGAIN; reads keep their error.
        let partial = [Frame::ok(), Frame::Error("TRYAGAIN no leader".into())];
        assert!(matches!(first_failure(true, &partial),
            Some(Frame::Error(e)) if e.starts_with("UNCERTAIN")));
        assert!(matches!(first_failure(false, &partial),
            Some(Frame::Error(e)) if e.starts_with("TRYAGAIN")));
        let none = [
            Frame::Error("TRYAGAIN a".into()),
            Frame::Error("TRYAGAIN b".into()),
        ];
        assert!(matches!(first_failure(true, &none),
            Some(Frame::Error(e)) if e == "TRYAGAIN a"));
        assert_eq!(first_failure(true, &[Frame::ok(), Frame::ok()]), None);
    }
}
