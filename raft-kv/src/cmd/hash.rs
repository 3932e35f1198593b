//! Hash commands, plus the helpers the set and sorted-set families share: `*SCAN` cursors
//! and options, and random-count parsing.

use bytes::Bytes;

use super::args::{is, parse_i64, parse_i64_opt};
use super::{flag, spec, CmdError, CmdResult, CommandSpec, Kind};
use crate::protocol::Frame;
use crate::storage::encoding::{DataType, Meta};
use crate::storage::Ctx;
use crate::types::hash as h;
use crate::types::long_double::LongDouble;

const R: u32 = flag::READONLY;
const W: u32 = flag::WRITE;
const F: u32 = flag::FAST;
const D: u32 = flag::DENYOOM;

pub const COMMANDS: &[CommandSpec] = &[
    spec("hset", -4, W | D | F, (1, 1, 1), Kind::Write(hset)),
    spec("hmset", -4, W | D | F, (1, 1, 1), Kind::Write(hset)),
    spec("hsetnx", 4, W | D | F, (1, 1, 1), Kind::Write(hsetnx)),
    spec("hget", 3, R | F, (1, 1, 1), Kind::Read(hget)),
    spec("hmget", -3, R | F, (1, 1, 1), Kind::Read(hmget)),
    spec("hdel", -3, W | F, (1, 1, 1), Kind::Write(hdel)),
    spec("hlen", 2, R | F, (1, 1, 1), Kind::Read(hlen)),
    spec("hstrlen", 3, R | F, (1, 1, 1), Kind::Read(hstrlen)),
    spec("hexists", 3, R | F, (1, 1, 1), Kind::Read(hexists)),
    spec("hkeys", 2, R, (1, 1, 1), Kind::Read(hkeys)),
    spec("hvals", 2, R, (1, 1, 1), Kind::Read(hvals)),
    spec("hgetall", 2, R, (1, 1, 1), Kind::Read(hgetall)),
    spec("hincrby", 4, W | D | F, (1, 1, 1), Kind::Write(hincrby)),
    spec(
        "hincrbyfloat",
        4,
        W | D | F,
        (1, 1, 1),
        Kind::Write(hincrbyfloat),
    ),
    spec("hrandfield", -2, R, (1, 1, 1), Kind::Read(hrandfield)),
    spec("hscan", -3, R, (1, 1, 1), Kind::Read(hscan)),
];

fn lookup(ctx: &Ctx, key: &[u8]) -> Result<Option<Meta>, CmdError> {
    ctx.meta_of(key, DataType::Hash)
}

fn hset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if !args.len().is_multiple_of(2) {
        return Err(CmdError::WrongArity(super::args::cmd_name(args)));
    }
    let key = &args[1];
    let mut meta = h::open_or_create(ctx, key, DataType::Hash)?;
    let mut added = 0;
    for pair in args[2..].chunks(2) {
        if h::put(ctx, key, &mut meta, &pair[0], pair[1].to_vec())? {
            added += 1;
        }
    }
    h::save(ctx, key, &mut meta)?;
    if is(&args[0], "hmset") {
        Ok(Frame::ok())
    } else {
        Ok(Frame::Integer(added))
    }
}

fn hsetnx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let mut meta = h::open_or_create(ctx, key, DataType::Hash)?;
    if meta.size > 0 && h::get(ctx, key, &meta, &args[2])?.is_some() {
        return Ok(Frame::Integer(0));
    }
    h::put(ctx, key, &mut meta, &args[2], args[3].to_vec())?;
    h::save(ctx, key, &mut meta)?;
    Ok(Frame::Integer(1))
}

fn hget(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(meta) = lookup(ctx, &args[1])? else {
        return Ok(Frame::Null);
    };
    Ok(Frame::bulk_or_null(h::get(ctx, &args[1], &meta, &args[2])?))
}

fn hmget(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let meta = lookup(ctx, &args[1])?;
    let mut out = Vec::with_capacity(args.len() - 2);
    for f in &args[2..] {
        let v = match &meta {
            Some(m) => h::get(ctx, &args[1], m, f)?,
            None => None,
        };
        out.push(Frame::bulk_or_null(v));
    }
    Ok(Frame::Array(out))
}

fn hdel(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let Some(mut meta) = lookup(ctx, key)? else {
        return Ok(Frame::Integer(0));
    };
    let mut n = 0;
    for f in &args[2..] {
        if h::remove(ctx, key, &mut meta, f)? {
            n += 1;
        }
    }
    if n > 0 {
        h::save(ctx, key, &mut meta)?;
    }
    Ok(Frame::Integer(n))
}

fn hlen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(Frame::Integer(
        lookup(ctx, &args[1])?.map(|m| m.size as i64).unwrap_or(0),
    ))
}

fn hstrlen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(meta) = lookup(ctx, &args[1])? else {
        return Ok(Frame::Integer(0));
    };
    let len = h::get(ctx, &args[1], &meta, &args[2])?
        .map(|v| v.len())
        .unwrap_or(0);
    Ok(Frame::Integer(len as i64))
}

fn hexists(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(meta) = lookup(ctx, &args[1])? else {
        return Ok(Frame::Integer(0));
    };
    let found = h::get(ctx, &args[1], &meta, &args[2])?.is_some();
    Ok(Frame::Integer(found as i64))
}

fn whole(ctx: &mut Ctx, key: &[u8]) -> Result<Vec<h::Element>, CmdError> {
    match lookup(ctx, key)? {
        Some(m) => h::all(ctx, key, &m),
        None => Ok(Vec::new()),
    }
}

fn hkeys(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let all = whole(ctx, &args[1])?;
    Ok(Frame::Array(
        all.into_iter()
            .map(|(f, _)| Frame::Bulk(f.into()))
            .collect(),
    ))
}

fn hvals(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let all = whole(ctx, &args[1])?;
    Ok(Frame::Array(
        all.into_iter()
            .map(|(_, v)| Frame::Bulk(v.into()))
            .collect(),
    ))
}

fn hgetall(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let all = whole(ctx, &args[1])?;
    Ok(Frame::Map(
        all.into_iter()
            .map(|(f, v)| (Frame::Bulk(f.into()), Frame::Bulk(v.into())))
            .collect(),
    ))
}

fn hincrby(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let incr = parse_i64(&args[3])?;
    let key = &args[1];
    let mut meta = h::open_or_create(ctx, key, DataType::Hash)?;
    let cur = match h::get(ctx, key, &meta, &args[2])? {
        Some(v) => {
            parse_i64_opt(&v).ok_or_else(|| CmdError::err("hash value is not an integer"))?
        }
        None => 0,
    };
    let new = cur.checked_add(incr).ok_or(CmdError::Overflow)?;
    h::put(ctx, key, &mut meta, &args[2], new.to_string().into_bytes())?;
    h::save(ctx, key, &mut meta)?;
    Ok(Frame::Integer(new))
}

/// HINCRBYFLOAT as Redis 7.0's `hincrbyfloatCommand`: long double arithmetic (emulated
/// exactly), the result stored and replied as `ld2string(LD_STR_HUMAN)`.
fn hincrbyfloat(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let incr = LongDouble::parse(&args[3]).ok_or(CmdError::NotFloat)?;
    if !incr.is_finite() {
        return Err(CmdError::err("value is NaN or Infinity"));
    }
    let key = &args[1];
    let mut meta = h::open_or_create(ctx, key, DataType::Hash)?;
    let cur = match h::get(ctx, key, &meta, &args[2])? {
        Some(v) => {
            LongDouble::parse(&v).ok_or_else(|| CmdError::err("hash value is not a float"))?
        }
        None => LongDouble::ZERO,
    };
    let new = cur.add(incr);
    let nan_or_inf = || CmdError::err("increment would produce NaN or Infinity");
    if !new.is_finite() {
        return Err(nan_or_inf());
    }
    let text = new.to_human().ok_or_else(nan_or_inf)?;
    h::put(ctx, key, &mut meta, &args[2], text.clone().into_bytes())?;
    h::save(ctx, key, &mut meta)?;
    Ok(Frame::Bulk(text.into()))
}

/// Parses the count of HRANDFIELD / SRANDMEMBER / ZRANDMEMBER (`-LONG_MAX..=LONG_MAX`).
pub fn parse_rand_count(b: &[u8]) -> Result<i64, CmdError> {
    match parse_i64(b)? {
        i64::MIN => Err(CmdError::err(
            "value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        )),
        n => Ok(n),
    }
}

/// Parses `count [WITH<word>]` (args from index 2) for the *RANDMEMBER family; returns
/// the count and whether the flag was given.
pub fn parse_rand_args(args: &[Bytes], word: &str) -> Result<(i64, bool), CmdError> {
    let count = parse_rand_count(&args[2])?;
    if args.len() > 4 || (args.len() == 4 && !is(&args[3], word)) {
        return Err(CmdError::Syntax);
    }
    let with = args.len() == 4;
    if with && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return Err(CmdError::err("value is out of range"));
    }
    Ok((count, with))
}

/// The largest reply a negative *RANDMEMBER count may ask for (a RaftKV limit).
pub const MAX_RANDOM_REPEATS: u64 = 1 << 24;

/// Random elements for a count form: `count >= 0` distinct (at most `size`), negative with
/// repetitions. Work is bounded by the largest position picked.
pub fn random_elements(
    ctx: &mut Ctx,
    key: &[u8],
    meta: &Meta,
    count: i64,
) -> Result<Vec<h::Element>, CmdError> {
    let size = meta.size;
    if count == 0 || size == 0 {
        return Ok(Vec::new());
    }
    if count < 0 {
        if count.unsigned_abs() > MAX_RANDOM_REPEATS {
            // Redis would stream such a reply for ever; refuse instead of exhausting memory.
            return Err(CmdError::err("value is out of range"));
        }
        let positions = h::positions_with_repeats(ctx, size, count.unsigned_abs());
        return h::at_positions(ctx, key, meta, &positions);
    }
    let count = count as u64;
    if count >= size {
        return h::all(ctx, key, meta);
    }
    let positions = h::distinct_positions(ctx, size, count);
    h::at_positions(ctx, key, meta, &positions)
}

fn hrandfield(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    if args.len() == 2 {
        let Some(meta) = lookup(ctx, key)? else {
            return Ok(Frame::Null);
        };
        let pos = ctx.rand_below(meta.size);
        let mut got = h::at_positions(ctx, key, &meta, &[pos])?;
        return Ok(Frame::bulk_or_null(got.pop().map(|(f, _)| f)));
    }
    let (count, withvalues) = parse_rand_args(args, "withvalues")?;
    let Some(meta) = lookup(ctx, key)? else {
        return Ok(Frame::Array(Vec::new()));
    };
    let picked = random_elements(ctx, key, &meta, count)?;
    if withvalues {
        Ok(Frame::Pairs(
            picked
                .into_iter()
                .map(|(f, v)| (Frame::Bulk(f.into()), Frame::Bulk(v.into())))
                .collect(),
        ))
    } else {
        Ok(Frame::Array(
            picked
                .into_iter()
                .map(|(f, _)| Frame::Bulk(f.into()))
                .collect(),
        ))
    }
}

// ---- *SCAN support shared with sets and sorted sets ----

/// Redis' scan cursor parsing (`strtoul` base 10: optional sign, digits; no leading space;
/// an empty string is 0; overflow is an error).
pub fn parse_cursor(b: &[u8]) -> Result<u64, CmdError> {
    let invalid = || CmdError::err("invalid cursor");
    if b.is_empty() {
        return Ok(0);
    }
    let (neg, digits) = match b[0] {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() {
        return Err(invalid());
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return Err(invalid());
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add((c - b'0') as u64))
            .ok_or_else(invalid)?;
    }
    Ok(if neg { v.wrapping_neg() } else { v })
}

pub struct ScanOpts {
    pub pattern: Option<Bytes>,
    pub count: u64,
}

/// Parses `[MATCH pattern] [COUNT count]` from `args[start..]`.
pub fn parse_scan_opts(args: &[Bytes], start: usize) -> Result<ScanOpts, CmdError> {
    let mut opts = ScanOpts {
        pattern: None,
        count: 10,
    };
    let mut i = start;
    while i < args.len() {
        let left = args.len() - i;
        if is(&args[i], "count") && left >= 2 {
            let n = parse_i64(&args[i + 1])?;
            if n < 1 {
                return Err(CmdError::Syntax);
            }
            opts.count = n as u64;
        } else if is(&args[i], "match") && left >= 2 {
            let p = &args[i + 1];
            opts.pattern = if p.as_ref() == b"*" {
                None
            } else {
                Some(p.clone())
            };
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    Ok(opts)
}

/// The cursor naming the position of `elem`: its first 7 bytes and their length.
fn cursor_of(elem: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = elem.len().min(7);
    b[..n].copy_from_slice(&elem[..n]);
    b[7] = n as u8;
    u64::from_be_bytes(b)
}

fn cursor_start(cursor: u64) -> Vec<u8> {
    let b = cursor.to_be_bytes();
    let n = (b[7] as usize).min(7);
    b[..n].to_vec()
}

/// One `*SCAN` step over the element records of a collection, in element byte order.
///
/// The cursor encodes the first bytes of the next element to visit, so elements present for
/// the whole iteration are always returned even when others are added or removed (some may be
/// returned twice). A step returns at least `count` elements unless the collection ends, and
/// keeps going while the next element would not advance the cursor. `whole` returns every
/// element at once with cursor 0 (Redis does that for small, compactly encoded collections).
/// `emit` appends an element's reply frames.
pub fn scan_step(
    ctx: &Ctx,
    key: &[u8],
    meta: &Meta,
    cursor: u64,
    opts: &ScanOpts,
    whole: bool,
    mut emit: impl FnMut(&[u8], &[u8], &mut Vec<Frame>),
) -> CmdResult {
    let start = if cursor == 0 {
        None
    } else {
        Some(cursor_start(cursor))
    };
    let mut items = Vec::new();
    let mut seen = 0u64;
    let mut next = 0u64;
    h::for_each(ctx, key, meta, start.as_deref(), false, |elem, val| {
        if !whole && seen >= opts.count {
            let c = cursor_of(elem);
            if c != cursor {
                next = c;
                return Ok(false);
            }
        }
        seen += 1;
        if opts.pattern.as_ref().is_none_or(|p| glob_match(p, elem)) {
            emit(elem, val, &mut items);
        }
        Ok(true)
    })?;
    Ok(Frame::Array(vec![
        Frame::Bulk(next.to_string().into()),
        Frame::Array(items),
    ]))
}

/// The empty scan reply (missing key).
pub fn empty_scan() -> Frame {
    Frame::Array(vec![Frame::bulk("0"), Frame::Array(Vec::new())])
}

fn hscan(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let cursor = parse_cursor(&args[2])?;
    let Some(meta) = lookup(ctx, &args[1])? else {
        return Ok(empty_scan());
    };
    let opts = parse_scan_opts(args, 3)?;
    // hash-max-listpack-entries: Redis replies with the whole small hash at once.
    let whole = cursor == 0 && meta.size <= 128;
    scan_step(ctx, &args[1], &meta, cursor, &opts, whole, |f, v, out| {
        out.push(Frame::Bulk(Bytes::copy_from_slice(f)));
        out.push(Frame::Bulk(Bytes::copy_from_slice(v)));
    })
}

/// Redis' `stringmatchlen` (case-sensitive), shared with KEYS/SCAN.
pub fn glob_match(pattern: &[u8], s: &[u8]) -> bool {
    crate::protocol::matches(pattern, s, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    const WT: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

    #[test]
    fn set_get_delete() {
        let mut db = TestDb::new();
        assert_eq!(db.run(&["HSET", "h", "a", "1", "b", "2"]), int(2));
        assert_eq!(db.run(&["HSET", "h", "a", "x", "c", "3"]), int(1));
        assert_eq!(
            db.run(&["HSET", "h", "a"]),
            err("ERR wrong number of arguments for 'hset' command")
        );
        assert_eq!(
            db.run(&["HMSET", "h", "a", "1", "b"]),
            err("ERR wrong number of arguments for 'hmset' command")
        );
        assert_eq!(db.run(&["HMSET", "h", "a", "1"]), ok());
        assert_eq!(db.run(&["HGET", "h", "a"]), bulk("1"));
        assert_eq!(db.run(&["HGET", "h", "zz"]), Frame::Null);
        assert_eq!(db.run(&["HGET", "nokey", "zz"]), Frame::Null);
        assert_eq!(
            db.run(&["HMGET", "h", "a", "zz", "c"]),
            Frame::Array(vec![bulk("1"), Frame::Null, bulk("3")])
        );
        assert_eq!(
            db.run(&["HMGET", "nokey", "a"]),
            Frame::Array(vec![Frame::Null])
        );
        assert_eq!(db.run(&["HLEN", "h"]), int(3));
        assert_eq!(db.run(&["HSTRLEN", "h", "a"]), int(1));
        assert_eq!(db.run(&["HSTRLEN", "h", "zz"]), int(0));
        assert_eq!(db.run(&["HEXISTS", "h", "b"]), int(1));
        assert_eq!(db.run(&["HEXISTS", "h", "zz"]), int(0));
        assert_eq!(db.run(&["HSETNX", "h", "a", "9"]), int(0));
        assert_eq!(db.run(&["HSETNX", "h", "d", "4"]), int(1));
        assert_eq!(db.run(&["HKEYS", "h"]), arr(&["a", "b", "c", "d"]));
        assert_eq!(db.run(&["HVALS", "h"]), arr(&["1", "2", "3", "4"]));
        assert_eq!(
            db.run(&["HGETALL", "h"]),
            Frame::Map(vec![
                (bulk("a"), bulk("1")),
                (bulk("b"), bulk("2")),
                (bulk("c"), bulk("3")),
                (bulk("d"), bulk("4")),
            ])
        );
        assert_eq!(db.run(&["HGETALL", "nokey"]), Frame::Map(vec![]));
        assert_eq!(db.run(&["HDEL", "h", "a", "b", "zz"]), int(2));
        assert_eq!(db.run(&["HDEL", "nokey", "a"]), int(0));
        assert_eq!(db.run(&["HDEL", "h", "c", "d"]), int(2));
        assert_eq!(db.run(&["HLEN", "h"]), int(0));
        // The emptied hash is gone; a new one starts fresh.
        assert_eq!(db.run(&["HSETNX", "h", "a", "new"]), int(1));
        assert_eq!(
            db.run(&["HGETALL", "h"]),
            Frame::Map(vec![(bulk("a"), bulk("new"))])
        );
    }

    #[test]
    fn wrong_type_and_expiry() {
        let mut db = TestDb::new();
        db.run(&["SET", "s", "v"]);
        for cmd in [
            vec!["HSET", "s", "a", "1"],
            vec!["HGET", "s", "a"],
            vec!["HMGET", "s", "a"],
            vec!["HDEL", "s", "a"],
            vec!["HLEN", "s"],
            vec!["HGETALL", "s"],
            vec!["HINCRBY", "s", "a", "1"],
            vec!["HINCRBYFLOAT", "s", "a", "1"],
            vec!["HRANDFIELD", "s"],
            vec!["HSCAN", "s", "0"],
            vec!["HSETNX", "s", "a", "1"],
        ] {
            assert_eq!(db.run(&cmd), err(WT), "{cmd:?}");
        }
        assert_eq!(db.run(&["SET", "k", "v", "PX", "10"]), ok());
        db.now_ms += 20;
        assert_eq!(db.run(&["HSET", "k", "a", "1"]), int(1));
        assert_eq!(db.run(&["HLEN", "k"]), int(1));
    }

    #[test]
    fn increments() {
        let mut db = TestDb::new();
        assert_eq!(db.run(&["HINCRBY", "h", "n", "5"]), int(5));
        assert_eq!(db.run(&["HINCRBY", "h", "n", "-7"]), int(-2));
        assert_eq!(
            db.run(&["HINCRBY", "h", "n", "x"]),
            err("ERR value is not an integer or out of range")
        );
        db.run(&[
            "HSET",
            "h",
            "s",
            "abc",
            "big",
            "9223372036854775807",
            "f",
            "1.5",
        ]);
        assert_eq!(
            db.run(&["HINCRBY", "h", "s", "1"]),
            err("ERR hash value is not an integer")
        );
        assert_eq!(
            db.run(&["HINCRBY", "h", "big", "1"]),
            err("ERR increment or decrement would overflow")
        );
        assert_eq!(db.run(&["HINCRBYFLOAT", "h", "f", "0.1"]), bulk("1.6"));
        assert_eq!(db.run(&["HINCRBYFLOAT", "h", "x", "0.1"]), bulk("0.1"));
        assert_eq!(db.run(&["HINCRBYFLOAT", "h", "x", "0.2"]), bulk("0.3"));
        assert_eq!(
            db.run(&["HINCRBYFLOAT", "h", "n", "1e15"]),
            bulk("999999999999998")
        );
        assert_eq!(db.run(&["HINCRBYFLOAT", "h", "c", "1.1"]), bulk("1.1"));
        assert_eq!(db.run(&["HINCRBYFLOAT", "h", "c", "2.2"]), bulk("3.3"));
        assert_eq!(db.run(&["HINCRBYFLOAT", "h", "g", "10.5"]), bulk("10.5"));
        assert_eq!(db.run(&["HINCRBYFLOAT", "h", "g", "-0.3"]), bulk("10.2"));
        assert_eq!(
            db.run(&["HINCRBYFLOAT", "h", "d", "3.0e-5"]),
            bulk("0.00003")
        );
        assert_eq!(db.run(&["HINCRBYFLOAT", "h", "y", "5.0e3"]), bulk("5000"));
        assert_eq!(
            db.run(&["HINCRBYFLOAT", "h", "s", "1"]),
            err("ERR hash value is not a float")
        );
        assert_eq!(
            db.run(&["HINCRBYFLOAT", "h", "f", "abc"]),
            err("ERR value is not a valid float")
        );
        assert_eq!(
            db.run(&["HINCRBYFLOAT", "h", "f", "inf"]),
            err("ERR value is NaN or Infinity")
        );
        // Long doubles: 1.7e308 + 1.6 prints its exact 309 digits and 2 * 1.7e308 is finite.
        let Frame::Bulk(v) = db.run(&["HINCRBYFLOAT", "h", "f", "1.7e308"]) else {
            panic!("HINCRBYFLOAT 1.7e308 failed");
        };
        assert_eq!(v.len(), 309);
        assert!(v.starts_with(b"17000000000000000000313677802519759679527021"));
        assert!(v.ends_with(b"77401282560"));
        let Frame::Bulk(v) = db.run(&["HINCRBYFLOAT", "h", "f", "1.7e308"]) else {
            panic!("HINCRBYFLOAT 1.7e308 failed");
        };
        assert!(v.starts_with(b"3400000000000000000"));
        assert_eq!(v.len(), 309);
        let Frame::Bulk(v) = db.run(&["HINCRBYFLOAT", "h", "f", "1e4932"]) else {
            panic!("HINCRBYFLOAT 1e4932 failed");
        };
        assert_eq!(v.len(), 4933);
        assert_eq!(
            db.run(&["HINCRBYFLOAT", "h", "f", "1e4932"]),
            err("ERR increment would produce NaN or Infinity")
        );
    }

    #[test]
    fn hincrbyfloat_is_exact_long_double() {
        let mut db = TestDb::new();
        assert_eq!(db.run(&["HINCRBYFLOAT", "h", "a", "0.1"]), bulk("0.1"));
        assert_eq!(db.run(&["HINCRBYFLOAT", "h", "a", "0.2"]), bulk("0.3"));
        assert_eq!(db.run(&["HGET", "h", "a"]), bulk("0.3"));
        assert_eq!(db.run(&["HINCRBYFLOAT", "h", "b", "5.0e3"]), bulk("5000"));
        assert_eq!(db.run(&["HINCRBYFLOAT", "h", "b", "2.0e3"]), bulk("7000"));
        assert_eq!(db.run(&["HINCRBYFLOAT", "h", "c", "3.0"]), bulk("3"));
        assert_eq!(db.run(&["HINCRBYFLOAT", "h", "c", "-3.0"]), bulk("0"));
        assert_eq!(
            db.run(&["HINCRBYFLOAT", "h", "d", "18446744073709551617"]),
            bulk("18446744073709551616")
        );
        assert_eq!(db.run(&["HINCRBYFLOAT", "h", "e", "-1e-20"]), bulk("0"));
        assert_eq!(db.run(&["HINCRBYFLOAT", "h", "g", "0X.8"]), bulk("0.5"));
        for bad in ["+inf", "-Infinity", "INF"] {
            assert_eq!(
                db.run(&["HINCRBYFLOAT", "h", "a", bad]),
                err("ERR value is NaN or Infinity")
            );
        }
        for bad in ["nan", "1e4933", "1e-4952", " 1", "", "1_0"] {
            assert_eq!(
                db.run(&["HINCRBYFLOAT", "h", "a", bad]),
                err("ERR value is not a valid float")
            );
        }
        db.run(&["HSET", "h", "i", "inf", "t", "1e-4952"]);
        assert_eq!(
            db.run(&["HINCRBYFLOAT", "h", "i", "1"]),
            err("ERR increment would produce NaN or Infinity")
        );
        assert_eq!(
            db.run(&["HINCRBYFLOAT", "h", "t", "1"]),
            err("ERR hash value is not a float")
        );
        assert_eq!(db.run(&["HGET", "h", "a"]), bulk("0.3"));
    }

    #[test]
    fn randfield() {
        let mut db = TestDb::new();
        assert_eq!(db.run(&["HRANDFIELD", "nokey"]), Frame::Null);
        assert_eq!(db.run(&["HRANDFIELD", "nokey", "3"]), Frame::Array(vec![]));
        assert_eq!(
            db.run(&["HRANDFIELD", "nokey", "x"]),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(
            db.run(&["HRANDFIELD", "nokey", "-9223372036854775808"]),
            err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
        );
        assert_eq!(
            db.run(&["HRANDFIELD", "nokey", "-9223372036854775807", "WITHVALUES"]),
            err("ERR value is out of range")
        );
        assert_eq!(
            db.run(&["HRANDFIELD", "nokey", "1", "x"]),
            err("ERR syntax error")
        );
        assert_eq!(
            db.run(&["HRANDFIELD", "nokey", "1", "withvalues", "x"]),
            err("ERR syntax error")
        );
        db.run(&["HSET", "h", "a", "1", "b", "2", "c", "3"]);
        let Frame::Bulk(one) = db.run(&["HRANDFIELD", "h"]) else {
            panic!("expected bulk")
        };
        assert!([&b"a"[..], b"b", b"c"].contains(&one.as_ref()));
        assert_eq!(db.run(&["HRANDFIELD", "h", "0"]), Frame::Array(vec![]));
        let Frame::Array(all) = db.run(&["HRANDFIELD", "h", "10"]) else {
            panic!()
        };
        assert_eq!(all.len(), 3);
        let Frame::Array(two) = db.run(&["HRANDFIELD", "h", "2"]) else {
            panic!()
        };
        assert_eq!(two.len(), 2);
        assert_ne!(two[0], two[1]);
        let Frame::Array(rep) = db.run(&["HRANDFIELD", "h", "-7"]) else {
            panic!()
        };
        assert_eq!(rep.len(), 7);
        let Frame::Pairs(pairs) = db.run(&["HRANDFIELD", "h", "-4", "WITHVALUES"]) else {
            panic!()
        };
        assert_eq!(pairs.len(), 4);
        for (f, v) in pairs {
            let expect = match f {
                Frame::Bulk(ref b) if b.as_ref() == b"a" => "1",
                Frame::Bulk(ref b) if b.as_ref() == b"b" => "2",
                _ => "3",
            };
            assert_eq!(v, bulk(expect));
        }
    }

    #[test]
    fn scan_cursor_and_options() {
        assert_eq!(parse_cursor(b"0"), Ok(0));
        assert_eq!(parse_cursor(b""), Ok(0));
        assert_eq!(parse_cursor(b"-1"), Ok(u64::MAX));
        assert_eq!(parse_cursor(b"+5"), Ok(5));
        assert_eq!(parse_cursor(b"18446744073709551615"), Ok(u64::MAX));
        assert!(parse_cursor(b"18446744073709551616").is_err());
        assert!(parse_cursor(b" 1").is_err());
        assert!(parse_cursor(b"-").is_err());
        assert!(parse_cursor(b"1x").is_err());
        let mut db = TestDb::new();
        assert_eq!(db.run(&["HSCAN", "nokey", "0", "COUNT", "0"]), empty_scan());
        assert_eq!(db.run(&["HSCAN", "nokey", "x"]), err("ERR invalid cursor"));
        db.run(&["HSET", "h", "a", "1"]);
        assert_eq!(
            db.run(&["HSCAN", "h", "0", "COUNT", "0"]),
            err("ERR syntax error")
        );
        assert_eq!(
            db.run(&["HSCAN", "h", "0", "COUNT", "x"]),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(
            db.run(&["HSCAN", "h", "0", "MATCH"]),
            err("ERR syntax error")
        );
        assert_eq!(
            db.run(&["HSCAN", "h", "0", "TYPE", "string"]),
            err("ERR syntax error")
        );
        assert_eq!(
            db.run(&["HSCAN", "h", "0"]),
            Frame::Array(vec![bulk("0"), arr(&["a", "1"])])
        );
    }

    #[test]
    fn scan_survives_deletions() {
        let mut db = TestDb::new();
        for i in 0..600 {
            db.run(&["HSET", "h", &i.to_string(), "v"]);
        }
        let mut cursor = "0".to_string();
        let mut found = std::collections::HashSet::new();
        let mut iter = 0;
        loop {
            let Frame::Array(parts) = db.run(&["HSCAN", "h", &cursor, "COUNT", "7"]) else {
                panic!()
            };
            let Frame::Bulk(c) = &parts[0] else { panic!() };
            let Frame::Array(items) = &parts[1] else {
                panic!()
            };
            for pair in items.chunks(2) {
                if let Frame::Bulk(f) = &pair[0] {
                    found.insert(String::from_utf8(f.to_vec()).unwrap());
                }
            }
            iter += 1;
            if iter == 3 {
                let mut del = vec!["HDEL".to_string(), "h".to_string()];
                del.extend((100..600).map(|i| i.to_string()));
                let del: Vec<&str> = del.iter().map(|s| s.as_str()).collect();
                db.run(&del);
            }
            cursor = String::from_utf8(c.to_vec()).unwrap();
            if cursor == "0" {
                break;
            }
        }
        for i in 0..100 {
            assert!(found.contains(&i.to_string()), "missing {i}");
        }
        let Frame::Array(parts) = db.run(&["HSCAN", "h", "0", "MATCH", "9?", "COUNT", "1000"])
        else {
            panic!()
        };
        let Frame::Array(items) = &parts[1] else {
            panic!()
        };
        assert_eq!(items.len(), 20);
    }

    #[test]
    fn glob() {
        assert!(glob_match(b"*", b"anything"));
        assert!(glob_match(b"h?llo", b"hello"));
        assert!(glob_match(b"h*llo", b"heeeello"));
        assert!(glob_match(b"h[ae]llo", b"hallo"));
        assert!(!glob_match(b"h[^e]llo", b"hello"));
        assert!(glob_match(b"h[a-b]llo", b"hbllo"));
        assert!(glob_match(b"h[b-a]llo", b"hallo"));
        assert!(glob_match(b"h\\*llo", b"h*llo"));
        assert!(!glob_match(b"h\\*llo", b"hallo"));
        assert!(glob_match(b"a*", b"a"));
        assert!(glob_match(b"a**", b"a"));
        assert!(!glob_match(b"a?", b"a"));
        assert!(glob_match(b"[abc", b"a"));
        assert!(glob_match(b"", b""));
        assert!(!glob_match(b"", b"a"));
        assert!(!glob_match(
            b"a*b*c*d*e*f*g*h*i*j*k*z",
            b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        ));
    }
}
