//! Set commands.

use std::collections::BTreeSet;

use bytes::Bytes;

use super::args::{is, parse_i64, parse_i64_opt};
use super::hash::{
    empty_scan, parse_cursor, parse_rand_count, parse_scan_opts, random_elements, scan_step,
};
use super::{flag, spec, CmdError, CmdResult, CommandSpec, Kind};
use crate::protocol::Frame;
use crate::storage::encoding::{DataType, Meta};
use crate::storage::Ctx;
use crate::types::hash as elems;
use crate::types::set as s;

const R: u32 = flag::READONLY;
const W: u32 = flag::WRITE;
const F: u32 = flag::FAST;
const D: u32 = flag::DENYOOM;

pub const COMMANDS: &[CommandSpec] = &[
    spec("sadd", -3, W | D | F, (1, 1, 1), Kind::Write(sadd)),
    spec("srem", -3, W | F, (1, 1, 1), Kind::Write(srem)),
    spec("scard", 2, R | F, (1, 1, 1), Kind::Read(scard)),
    spec("sismember", 3, R | F, (1, 1, 1), Kind::Read(sismember)),
    spec("smismember", -3, R | F, (1, 1, 1), Kind::Read(smismember)),
    spec("smembers", 2, R, (1, 1, 1), Kind::Read(smembers)),
    spec("srandmember", -2, R, (1, 1, 1), Kind::Read(srandmember)),
    spec("spop", -2, W | F, (1, 1, 1), Kind::Write(spop)),
    spec("smove", 4, W | F, (1, 2, 1), Kind::Write(smove)),
    spec("sinter", -2, R, (1, -1, 1), Kind::Read(sinter)),
    spec("sunion", -2, R, (1, -1, 1), Kind::Read(sunion)),
    spec("sdiff", -2, R, (1, -1, 1), Kind::Read(sdiff)),
    spec(
        "sinterstore",
        -3,
        W | D,
        (1, -1, 1),
        Kind::Write(sinterstore),
    ),
    spec(
        "sunionstore",
        -3,
        W | D,
        (1, -1, 1),
        Kind::Write(sunionstore),
    ),
    spec("sdiffstore", -3, W | D, (1, -1, 1), Kind::Write(sdiffstore)),
    CommandSpec {
        key_finder: Some(numkeys_at_1),
        ..spec("sintercard", -3, R, (0, 0, 0), Kind::Read(sintercard))
    },
    spec("sscan", -3, R, (1, 1, 1), Kind::Read(sscan)),
];

/// Keys of `CMD numkeys key...` commands (SINTERCARD, ZINTER, ZMPOP, ...): `args[2..2+n]`.
pub fn numkeys_at_1(args: &[Bytes]) -> Vec<usize> {
    numkeys_keys(args, 1)
}

/// Keys announced by the count at `args[at]`, clipped to the arguments present.
pub fn numkeys_keys(args: &[Bytes], at: usize) -> Vec<usize> {
    let n = args
        .get(at)
        .and_then(|a| parse_i64_opt(a))
        .filter(|&n| n > 0)
        .unwrap_or(0) as usize;
    let first = at + 1;
    let last = first.saturating_add(n).min(args.len());
    (first..last).collect()
}

fn sadd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let mut meta = elems::open_or_create(ctx, key, DataType::Set)?;
    let mut added = 0;
    for m in &args[2..] {
        if s::add(ctx, key, &mut meta, m)? {
            added += 1;
        }
    }
    if added > 0 {
        ctx.put_meta(key, &mut meta)?;
    }
    Ok(Frame::Integer(added))
}

fn srem(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let Some(mut meta) = s::lookup(ctx, key)? else {
        return Ok(Frame::Integer(0));
    };
    let mut n = 0;
    for m in &args[2..] {
        if s::remove(ctx, key, &mut meta, m)? {
            n += 1;
        }
    }
    if n > 0 {
        elems::save(ctx, key, &mut meta)?;
    }
    Ok(Frame::Integer(n))
}

fn scard(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(Frame::Integer(
        s::lookup(ctx, &args[1])?
            .map(|m| m.size as i64)
            .unwrap_or(0),
    ))
}

fn sismember(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let found = match s::lookup(ctx, &args[1])? {
        Some(m) => s::is_member(ctx, &args[1], &m, &args[2])?,
        None => false,
    };
    Ok(Frame::Integer(found as i64))
}

fn smismember(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let meta = s::lookup(ctx, &args[1])?;
    let mut out = Vec::with_capacity(args.len() - 2);
    for m in &args[2..] {
        let found = match &meta {
            Some(meta) => s::is_member(ctx, &args[1], meta, m)?,
            None => false,
        };
        out.push(Frame::Integer(found as i64));
    }
    Ok(Frame::Array(out))
}

fn to_set_frame(members: impl IntoIterator<Item = Vec<u8>>) -> Frame {
    Frame::Set(members.into_iter().map(|m| Frame::Bulk(m.into())).collect())
}

fn smembers(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let members = match s::lookup(ctx, &args[1])? {
        Some(m) => s::members(ctx, &args[1], &m)?,
        None => Vec::new(),
    };
    Ok(to_set_frame(members))
}

fn srandmember(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    if args.len() == 3 {
        let count = parse_rand_count(&args[2])?;
        let Some(meta) = s::lookup(ctx, key)? else {
            return Ok(Frame::Array(Vec::new()));
        };
        let picked = random_elements(ctx, key, &meta, count)?;
        return Ok(Frame::Array(
            picked
                .into_iter()
                .map(|(m, _)| Frame::Bulk(m.into()))
                .collect(),
        ));
    }
    let Some(meta) = s::lookup(ctx, key)? else {
        return Ok(Frame::Null);
    };
    let pos = ctx.rand_below(meta.size);
    let mut got = elems::at_positions(ctx, key, &meta, &[pos])?;
    Ok(Frame::bulk_or_null(got.pop().map(|(m, _)| m)))
}

fn spop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = if args.len() == 3 {
        match parse_i64(&args[2]) {
            Ok(n) if n >= 0 => Some(n as u64),
            _ => return Err(CmdError::err("value is out of range, must be positive")),
        }
    } else {
        None
    };
    let Some(mut meta) = s::lookup(ctx, key)? else {
        return Ok(match count {
            Some(_) => Frame::Set(Vec::new()),
            None => Frame::Null,
        });
    };
    let picked: Vec<Vec<u8>> = match count {
        Some(0) => return Ok(Frame::Set(Vec::new())),
        Some(n) if n >= meta.size => s::members(ctx, key, &meta)?,
        Some(n) => {
            let positions = elems::distinct_positions(ctx, meta.size, n);
            elems::at_positions(ctx, key, &meta, &positions)?
                .into_iter()
                .map(|(m, _)| m)
                .collect()
        }
        None => {
            let pos = ctx.rand_below(meta.size);
            elems::at_positions(ctx, key, &meta, &[pos])?
                .into_iter()
                .map(|(m, _)| m)
                .collect()
        }
    };
    if picked.len() as u64 >= meta.size {
        ctx.delete_key(key)?;
    } else {
        for m in &picked {
            s::remove(ctx, key, &mut meta, m)?;
        }
        elems::save(ctx, key, &mut meta)?;
    }
    Ok(match count {
        Some(_) => to_set_frame(picked),
        None => Frame::bulk_or_null(picked.into_iter().next()),
    })
}

fn smove(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (src, dst, member) = (&args[1], &args[2], &args[3]);
    let src_meta = ctx.meta(src)?;
    let dst_meta = ctx.meta(dst)?;
    let Some(mut src_meta) = src_meta else {
        return Ok(Frame::Integer(0));
    };
    if src_meta.dtype != DataType::Set
        || dst_meta.as_ref().is_some_and(|m| m.dtype != DataType::Set)
    {
        return Err(CmdError::WrongType);
    }
    if src == dst {
        let found = s::is_member(ctx, src, &src_meta, member)?;
        return Ok(Frame::Integer(found as i64));
    }
    if !s::remove(ctx, src, &mut src_meta, member)? {
        return Ok(Frame::Integer(0));
    }
    elems::save(ctx, src, &mut src_meta)?;
    let mut dst_meta = elems::open_or_create(ctx, dst, DataType::Set)?;
    if s::add(ctx, dst, &mut dst_meta, member)? {
        ctx.put_meta(dst, &mut dst_meta)?;
    }
    Ok(Frame::Integer(1))
}

/// Looks up every key as a set (missing = `None`), failing with WRONGTYPE on any other type.
fn load_sets(ctx: &Ctx, keys: &[Bytes]) -> Result<Vec<Option<Meta>>, CmdError> {
    keys.iter().map(|k| s::lookup(ctx, k)).collect()
}

/// The intersection of `keys`, stopping once `limit` members are found (0 = no limit).
fn intersect(ctx: &Ctx, keys: &[Bytes], limit: u64) -> Result<Vec<Vec<u8>>, CmdError> {
    let metas = load_sets(ctx, keys)?;
    let mut sets: Vec<(&Bytes, Meta)> = Vec::with_capacity(keys.len());
    for (k, m) in keys.iter().zip(metas) {
        match m {
            Some(m) => sets.push((k, m)),
            None => return Ok(Vec::new()),
        }
    }
    sets.sort_by_key(|(_, m)| m.size);
    let Some(((first_key, first), rest)) = sets.split_first() else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let mut failed: Option<CmdError> = None;
    elems::for_each(ctx, first_key, first, None, false, |m, _| {
        for (k, meta) in rest {
            match s::is_member(ctx, k, meta, m) {
                Ok(true) => {}
                Ok(false) => return Ok(true),
                Err(e) => {
                    failed = Some(e);
                    return Ok(false);
                }
            }
        }
        out.push(m.to_vec());
        Ok(limit == 0 || (out.len() as u64) < limit)
    })?;
    match failed {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

fn union(ctx: &Ctx, keys: &[Bytes]) -> Result<BTreeSet<Vec<u8>>, CmdError> {
    let metas = load_sets(ctx, keys)?;
    let mut out = BTreeSet::new();
    for (k, m) in keys.iter().zip(metas) {
        if let Some(m) = m {
            elems::for_each(ctx, k, &m, None, false, |e, _| {
                out.insert(e.to_vec());
                Ok(true)
            })?;
        }
    }
    Ok(out)
}

fn difference(ctx: &Ctx, keys: &[Bytes]) -> Result<Vec<Vec<u8>>, CmdError> {
    let metas = load_sets(ctx, keys)?;
    let Some(Some(first)) = metas.first() else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let mut failed: Option<CmdError> = None;
    elems::for_each(ctx, &keys[0], first, None, false, |e, _| {
        for (k, m) in keys.iter().zip(&metas).skip(1) {
            if let Some(m) = m {
                match s::is_member(ctx, k, m, e) {
                    Ok(false) => {}
                    Ok(true) => return Ok(true),
                    Err(err) => {
                        failed = Some(err);
                        return Ok(false);
                    }
                }
            }
        }
        out.push(e.to_vec());
        Ok(true)
    })?;
    match failed {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

fn sinter(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(to_set_frame(intersect(ctx, &args[1..], 0)?))
}

fn sunion(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(to_set_frame(union(ctx, &args[1..])?))
}

fn sdiff(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(to_set_frame(difference(ctx, &args[1..])?))
}

fn sinterstore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let result: BTreeSet<Vec<u8>> = intersect(ctx, &args[2..], 0)?.into_iter().collect();
    Ok(Frame::Integer(s::store(ctx, &args[1], &result)? as i64))
}

fn sunionstore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let result = union(ctx, &args[2..])?;
    Ok(Frame::Integer(s::store(ctx, &args[1], &result)? as i64))
}

fn sdiffstore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let result: BTreeSet<Vec<u8>> = difference(ctx, &args[2..])?.into_iter().collect();
    Ok(Frame::Integer(s::store(ctx, &args[1], &result)? as i64))
}

/// Parses `numkeys` at `args[1]` the way SINTERCARD words its errors; returns the keys and the
/// index of the first argument after them.
fn sintercard(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let numkeys = match parse_i64(&args[1]) {
        Ok(n) if n > 0 => n as usize,
        _ => return Err(CmdError::err("numkeys should be greater than 0")),
    };
    if numkeys > args.len() - 2 {
        return Err(CmdError::err(
            "Number of keys can't be greater than number of args",
        ));
    }
    let keys = &args[2..2 + numkeys];
    let mut limit = 0u64;
    let mut i = 2 + numkeys;
    while i < args.len() {
        if is(&args[i], "limit") && i + 1 < args.len() {
            limit = match parse_i64(&args[i + 1]) {
                Ok(n) if n >= 0 => n as u64,
                _ => return Err(CmdError::err("LIMIT can't be negative")),
            };
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok(Frame::Integer(intersect(ctx, keys, limit)?.len() as i64))
}

fn sscan(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let cursor = parse_cursor(&args[2])?;
    let Some(meta) = s::lookup(ctx, &args[1])? else {
        return Ok(empty_scan());
    };
    let opts = parse_scan_opts(args, 3)?;
    // set-max-intset-entries: a small all-integer set is replied whole, as Redis does.
    let mut whole = cursor == 0 && meta.size <= 512;
    if whole {
        elems::for_each(ctx, &args[1], &meta, None, false, |m, _| {
            whole = parse_i64_opt(m).is_some();
            Ok(whole)
        })?;
    }
    scan_step(ctx, &args[1], &meta, cursor, &opts, whole, |m, _, out| {
        out.push(Frame::Bulk(Bytes::copy_from_slice(m)));
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    const WT: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

    fn set(items: &[&str]) -> Frame {
        Frame::Set(items.iter().map(|s| bulk(s)).collect())
    }

    fn sorted(f: Frame) -> Vec<Frame> {
        let (Frame::Set(mut v) | Frame::Array(mut v)) = f else {
            panic!("not a collection: {f:?}")
        };
        v.sort_by_key(|f| format!("{f:?}"));
        v
    }

    #[test]
    fn add_remove_members() {
        let mut db = TestDb::new();
        assert_eq!(db.run(&["SADD", "s", "b", "a", "b"]), int(2));
        assert_eq!(db.run(&["SADD", "s", "a", "c"]), int(1));
        assert_eq!(db.run(&["SCARD", "s"]), int(3));
        assert_eq!(db.run(&["SCARD", "nokey"]), int(0));
        assert_eq!(db.run(&["SMEMBERS", "s"]), set(&["a", "b", "c"]));
        assert_eq!(db.run(&["SMEMBERS", "nokey"]), set(&[]));
        assert_eq!(db.run(&["SISMEMBER", "s", "a"]), int(1));
        assert_eq!(db.run(&["SISMEMBER", "s", "z"]), int(0));
        assert_eq!(db.run(&["SISMEMBER", "nokey", "z"]), int(0));
        assert_eq!(
            db.run(&["SMISMEMBER", "s", "a", "z"]),
            Frame::Array(vec![int(1), int(0)])
        );
        assert_eq!(
            db.run(&["SMISMEMBER", "nokey", "a"]),
            Frame::Array(vec![int(0)])
        );
        assert_eq!(db.run(&["SREM", "s", "a", "z"]), int(1));
        assert_eq!(db.run(&["SREM", "nokey", "a"]), int(0));
        assert_eq!(db.run(&["SREM", "s", "b", "c"]), int(2));
        assert_eq!(db.run(&["SCARD", "s"]), int(0));
        assert_eq!(
            db.run(&["SADD", "s"]),
            err("ERR wrong number of arguments for 'sadd' command")
        );
        db.run(&["SET", "str", "v"]);
        for cmd in [
            vec!["SADD", "str", "a"],
            vec!["SREM", "str", "a"],
            vec!["SCARD", "str"],
            vec!["SISMEMBER", "str", "a"],
            vec!["SMISMEMBER", "str", "a"],
            vec!["SMEMBERS", "str"],
            vec!["SRANDMEMBER", "str"],
            vec!["SPOP", "str"],
            vec!["SPOP", "str", "0"],
            vec!["SINTER", "nokey", "str"],
            vec!["SUNION", "str"],
            vec!["SDIFF", "nokey", "str"],
            vec!["SINTERCARD", "2", "nokey", "str"],
            vec!["SSCAN", "str", "0"],
            vec!["SMOVE", "str", "x", "a"],
        ] {
            assert_eq!(db.run(&cmd), err(WT), "{cmd:?}");
        }
    }

    #[test]
    fn random_and_pop() {
        let mut db = TestDb::new();
        assert_eq!(db.run(&["SPOP", "nokey"]), Frame::Null);
        assert_eq!(db.run(&["SPOP", "nokey", "3"]), set(&[]));
        assert_eq!(db.run(&["SRANDMEMBER", "nokey"]), Frame::Null);
        assert_eq!(db.run(&["SRANDMEMBER", "nokey", "3"]), Frame::Array(vec![]));
        assert_eq!(
            db.run(&["SPOP", "nokey", "-1"]),
            err("ERR value is out of range, must be positive")
        );
        assert_eq!(
            db.run(&["SPOP", "nokey", "x"]),
            err("ERR value is out of range, must be positive")
        );
        assert_eq!(
            db.run(&["SPOP", "nokey", "1", "2"]),
            err("ERR syntax error")
        );
        assert_eq!(
            db.run(&["SRANDMEMBER", "nokey", "1", "2"]),
            err("ERR syntax error")
        );
        assert_eq!(
            db.run(&["SRANDMEMBER", "nokey", "-9223372036854775808"]),
            err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
        );
        db.run(&["SADD", "s", "a", "b", "c", "d", "e"]);
        assert_eq!(db.run(&["SRANDMEMBER", "s", "0"]), Frame::Array(vec![]));
        assert_eq!(sorted(db.run(&["SRANDMEMBER", "s", "10"])).len(), 5);
        let three = sorted(db.run(&["SRANDMEMBER", "s", "3"]));
        assert_eq!(three.len(), 3);
        assert!(three[0] != three[1] && three[1] != three[2]);
        assert_eq!(sorted(db.run(&["SRANDMEMBER", "s", "-8"])).len(), 8);
        assert_eq!(db.run(&["SPOP", "s", "0"]), set(&[]));
        let popped = sorted(db.run(&["SPOP", "s", "2"]));
        assert_eq!(popped.len(), 2);
        assert_eq!(db.run(&["SCARD", "s"]), int(3));
        let Frame::Bulk(_) = db.run(&["SPOP", "s"]) else {
            panic!()
        };
        assert_eq!(sorted(db.run(&["SPOP", "s", "5"])).len(), 2);
        assert_eq!(db.run(&["SCARD", "s"]), int(0));
        assert_eq!(db.run(&["SADD", "s", "x"]), int(1));
        assert_eq!(db.run(&["SMEMBERS", "s"]), set(&["x"]));
    }

    #[test]
    fn smove_cases() {
        let mut db = TestDb::new();
        db.run(&["SADD", "a", "x", "y"]);
        db.run(&["SADD", "b", "z"]);
        assert_eq!(db.run(&["SMOVE", "nokey", "b", "x"]), int(0));
        assert_eq!(db.run(&["SMOVE", "a", "b", "nope"]), int(0));
        assert_eq!(db.run(&["SMOVE", "a", "a", "x"]), int(1));
        assert_eq!(db.run(&["SMOVE", "a", "a", "q"]), int(0));
        assert_eq!(db.run(&["SMOVE", "a", "b", "x"]), int(1));
        assert_eq!(db.run(&["SMEMBERS", "b"]), set(&["x", "z"]));
        assert_eq!(db.run(&["SMOVE", "a", "c", "y"]), int(1));
        assert_eq!(db.run(&["SMEMBERS", "a"]), set(&[]));
        assert_eq!(db.run(&["SMEMBERS", "c"]), set(&["y"]));
        db.run(&["SET", "str", "v"]);
        assert_eq!(db.run(&["SMOVE", "c", "str", "y"]), err(WT));
        assert_eq!(db.run(&["SMOVE", "nokey", "str", "y"]), int(0));
    }

    #[test]
    fn algebra() {
        let mut db = TestDb::new();
        db.run(&["SADD", "s1", "a", "b", "c"]);
        db.run(&["SADD", "s2", "b", "c", "d"]);
        db.run(&["SADD", "s3", "c", "e"]);
        assert_eq!(db.run(&["SINTER", "s1", "s2"]), set(&["b", "c"]));
        assert_eq!(db.run(&["SINTER", "s1", "s2", "s3"]), set(&["c"]));
        assert_eq!(db.run(&["SINTER", "s1", "nokey"]), set(&[]));
        assert_eq!(
            db.run(&["SUNION", "s1", "nokey", "s3"]),
            set(&["a", "b", "c", "e"])
        );
        assert_eq!(db.run(&["SDIFF", "s1", "s2"]), set(&["a"]));
        assert_eq!(db.run(&["SDIFF", "s1", "nokey"]), set(&["a", "b", "c"]));
        assert_eq!(db.run(&["SDIFF", "nokey", "s1"]), set(&[]));
        assert_eq!(db.run(&["SINTERSTORE", "d", "s1", "s2"]), int(2));
        assert_eq!(db.run(&["SMEMBERS", "d"]), set(&["b", "c"]));
        assert_eq!(db.run(&["SUNIONSTORE", "s1", "s1", "s3"]), int(4));
        assert_eq!(db.run(&["SMEMBERS", "s1"]), set(&["a", "b", "c", "e"]));
        assert_eq!(db.run(&["SDIFFSTORE", "d", "s1", "s2", "s3"]), int(1));
        assert_eq!(db.run(&["SMEMBERS", "d"]), set(&["a"]));
        assert_eq!(db.run(&["SINTERSTORE", "d", "s1", "nokey"]), int(0));
        assert_eq!(db.run(&["SCARD", "d"]), int(0));
        db.run(&["SET", "str", "v"]);
        assert_eq!(db.run(&["SUNIONSTORE", "str", "s3"]), int(2));
        assert_eq!(db.run(&["SMEMBERS", "str"]), set(&["c", "e"]));
        assert_eq!(db.run(&["SINTERCARD", "2", "s1", "s2"]), int(2));
        assert_eq!(
            db.run(&["SINTERCARD", "2", "s1", "s2", "LIMIT", "1"]),
            int(1)
        );
        assert_eq!(
            db.run(&["SINTERCARD", "2", "s1", "s2", "LIMIT", "0"]),
            int(2)
        );
        assert_eq!(db.run(&["SINTERCARD", "1", "nokey"]), int(0));
        assert_eq!(
            db.run(&["SINTERCARD", "0", "s1"]),
            err("ERR numkeys should be greater than 0")
        );
        assert_eq!(
            db.run(&["SINTERCARD", "x", "s1"]),
            err("ERR numkeys should be greater than 0")
        );
        assert_eq!(
            db.run(&["SINTERCARD", "3", "s1", "s2"]),
            err("ERR Number of keys can't be greater than number of args")
        );
        assert_eq!(
            db.run(&["SINTERCARD", "1", "s1", "LIMIT", "-1"]),
            err("ERR LIMIT can't be negative")
        );
        assert_eq!(
            db.run(&["SINTERCARD", "1", "s1", "LIMIT"]),
            err("ERR syntax error")
        );
        assert_eq!(
            db.run(&["SINTERCARD", "1", "s1", "foo"]),
            err("ERR syntax error")
        );
        let args: Vec<Bytes> = ["SINTERCARD", "2", "a", "b", "LIMIT", "1"]
            .iter()
            .map(|s| Bytes::from(s.to_string()))
            .collect();
        assert_eq!(numkeys_at_1(&args), vec![2, 3]);
        assert_eq!(numkeys_at_1(&args[..3]), vec![2]);
    }

    #[test]
    fn sscan_small_and_large() {
        let mut db = TestDb::new();
        assert_eq!(db.run(&["SSCAN", "nokey", "0"]), empty_scan());
        let mut cmd = vec!["SADD".to_string(), "ints".to_string()];
        cmd.extend((0..100).map(|i| i.to_string()));
        let cmd: Vec<&str> = cmd.iter().map(|s| s.as_str()).collect();
        db.run(&cmd);
        let Frame::Array(parts) = db.run(&["SSCAN", "ints", "0", "COUNT", "5"]) else {
            panic!()
        };
        assert_eq!(parts[0], bulk("0"));
        assert_eq!(sorted(parts[1].clone()).len(), 100);
        db.run(&["SADD", "ints", "x"]);
        let Frame::Array(parts) = db.run(&["SSCAN", "ints", "0", "COUNT", "5"]) else {
            panic!()
        };
        assert_ne!(parts[0], bulk("0"));
        assert_eq!(sorted(parts[1].clone()).len(), 5);
    }
}
