//! Sorted-set commands.
//!
//! Rank-based commands (ZRANK, ZRANGE by rank, ZREMRANGEBYRANK) walk the score index, so they
//! cost O(rank) (ranges walk from the nearer end); score and lex ranges seek directly.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::args::{cmd_name, is, parse_f64_opt, parse_i64};
use super::hash::{empty_scan, parse_cursor, parse_rand_args, parse_scan_opts, scan_step};
use super::set::numkeys_keys;
use super::{flag, spec, CmdError, CmdResult, CommandSpec, Kind};
use crate::protocol::frame::format_double;
use crate::protocol::Frame;
use crate::storage::encoding::{DataType, Meta};
use crate::storage::Ctx;
use crate::types::hash as elems;
use crate::types::set as sets;
use crate::types::zset::{self as z, LexBound, LexRange, ScoreRange};

const R: u32 = flag::READONLY;
const W: u32 = flag::WRITE;
const F: u32 = flag::FAST;
const D: u32 = flag::DENYOOM;
const B: u32 = flag::BLOCKING;

pub const COMMANDS: &[CommandSpec] = &[
    spec("zadd", -4, W | D | F, (1, 1, 1), Kind::Write(zadd)),
    spec("zincrby", 4, W | D | F, (1, 1, 1), Kind::Write(zincrby)),
    spec("zrem", -3, W | F, (1, 1, 1), Kind::Write(zrem)),
    spec("zcard", 2, R | F, (1, 1, 1), Kind::Read(zcard)),
    spec("zscore", 3, R | F, (1, 1, 1), Kind::Read(zscore)),
    spec("zmscore", -3, R | F, (1, 1, 1), Kind::Read(zmscore)),
    spec("zrank", 3, R | F, (1, 1, 1), Kind::Read(zrank)),
    spec("zrevrank", 3, R | F, (1, 1, 1), Kind::Read(zrank)),
    spec("zcount", 4, R | F, (1, 1, 1), Kind::Read(zcount)),
    spec("zlexcount", 4, R | F, (1, 1, 1), Kind::Read(zlexcount)),
    spec("zrange", -4, R, (1, 1, 1), Kind::Read(zrange)),
    spec("zrangebyscore", -4, R, (1, 1, 1), Kind::Read(zrange)),
    spec("zrevrangebyscore", -4, R, (1, 1, 1), Kind::Read(zrange)),
    spec("zrangebylex", -4, R, (1, 1, 1), Kind::Read(zrange)),
    spec("zrevrangebylex", -4, R, (1, 1, 1), Kind::Read(zrange)),
    spec("zrevrange", -4, R, (1, 1, 1), Kind::Read(zrange)),
    spec("zrangestore", -5, W | D, (1, 2, 1), Kind::Write(zrange)),
    spec("zremrangebyrank", 4, W, (1, 1, 1), Kind::Write(zremrange)),
    spec("zremrangebyscore", 4, W, (1, 1, 1), Kind::Write(zremrange)),
    spec("zremrangebylex", 4, W, (1, 1, 1), Kind::Write(zremrange)),
    spec("zpopmin", -2, W | F, (1, 1, 1), Kind::Write(zpop)),
    spec("zpopmax", -2, W | F, (1, 1, 1), Kind::Write(zpop)),
    CommandSpec {
        key_finder: Some(keys_numkeys_at_1),
        ..spec("zmpop", -4, W, (0, 0, 0), Kind::Write(zmpop))
    },
    spec(
        "bzpopmin",
        -3,
        W | flag::NOSCRIPT | B | F,
        (1, -2, 1),
        Kind::Write(bzpop),
    ),
    spec(
        "bzpopmax",
        -3,
        W | flag::NOSCRIPT | B | F,
        (1, -2, 1),
        Kind::Write(bzpop),
    ),
    CommandSpec {
        key_finder: Some(keys_numkeys_at_2),
        ..spec("bzmpop", -5, W | B, (0, 0, 0), Kind::Write(zmpop))
    },
    spec("zrandmember", -2, R, (1, 1, 1), Kind::Read(zrandmember)),
    CommandSpec {
        key_finder: Some(keys_numkeys_at_1),
        ..spec("zunion", -3, R, (0, 0, 0), Kind::Read(zsetop))
    },
    CommandSpec {
        key_finder: Some(keys_numkeys_at_1),
        ..spec("zinter", -3, R, (0, 0, 0), Kind::Read(zsetop))
    },
    CommandSpec {
        key_finder: Some(keys_numkeys_at_1),
        ..spec("zdiff", -3, R, (0, 0, 0), Kind::Read(zsetop))
    },
    CommandSpec {
        key_finder: Some(keys_numkeys_at_1),
        ..spec("zintercard", -3, R, (0, 0, 0), Kind::Read(zsetop))
    },
    CommandSpec {
        key_finder: Some(keys_store_numkeys),
        ..spec("zunionstore", -4, W | D, (1, 1, 1), Kind::Write(zsetop))
    },
    CommandSpec {
        key_finder: Some(keys_store_numkeys),
        ..spec("zinterstore", -4, W | D, (1, 1, 1), Kind::Write(zsetop))
    },
    CommandSpec {
        key_finder: Some(keys_store_numkeys),
        ..spec("zdiffstore", -4, W | D, (1, 1, 1), Kind::Write(zsetop))
    },
    spec("zscan", -3, R, (1, 1, 1), Kind::Read(zscan)),
];

fn keys_numkeys_at_1(args: &[Bytes]) -> Vec<usize> {
    numkeys_keys(args, 1)
}

fn keys_numkeys_at_2(args: &[Bytes]) -> Vec<usize> {
    numkeys_keys(args, 2)
}

fn keys_store_numkeys(args: &[Bytes]) -> Vec<usize> {
    let mut out = if args.len() > 1 { vec![1] } else { Vec::new() };
    out.extend(numkeys_keys(args, 2));
    out
}

// ---- parsing ----

/// Redis' `getDoubleFromObject` (strtod): rejects NaN, leading spaces and out-of-range values
/// (overflow to infinity or underflow to zero) that are not spelled as infinities.
fn parse_score_opt(b: &[u8]) -> Option<f64> {
    let v = parse_f64_opt(b)?;
    let text = std::str::from_utf8(b).ok()?.to_ascii_lowercase();
    if v.is_infinite() && !text.contains("inf") {
        return None;
    }
    if v == 0.0 {
        let mantissa = text.split('e').next().unwrap_or("");
        if mantissa.bytes().any(|c| (b'1'..=b'9').contains(&c)) {
            return None;
        }
    }
    Some(v)
}

fn parse_score(b: &[u8]) -> Result<f64, CmdError> {
    parse_score_opt(b).ok_or(CmdError::NotFloat)
}

/// One score-range bound as `zslParseRange` reads it: `(` for exclusive, then `strtod` (which
/// skips leading spaces and reads an empty string as 0); NaN is rejected.
fn parse_bound(b: &[u8]) -> Option<(f64, bool)> {
    let (ex, rest) = match b.first() {
        Some(b'(') => (true, &b[1..]),
        _ => (false, b),
    };
    if rest.is_empty() {
        return Some((0.0, ex));
    }
    let start = rest
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r'))?;
    let s = std::str::from_utf8(&rest[start..]).ok()?;
    if s.starts_with(['+', '-']) && s.len() > 1 && s[1..].starts_with(|c: char| c.is_whitespace()) {
        return None;
    }
    let v: f64 = s.parse().ok()?;
    if v.is_nan() {
        return None;
    }
    Some((v, ex))
}

fn parse_score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange, CmdError> {
    match (parse_bound(min), parse_bound(max)) {
        (Some((min, minex)), Some((max, maxex))) => Ok(ScoreRange {
            min,
            max,
            minex,
            maxex,
        }),
        _ => Err(CmdError::err("min or max is not a float")),
    }
}

fn parse_lex_range(min: &[u8], max: &[u8]) -> Result<LexRange, CmdError> {
    match (LexBound::parse(min), LexBound::parse(max)) {
        (Some(min), Some(max)) => Ok(LexRange { min, max }),
        _ => Err(CmdError::err("min or max not valid string range item")),
    }
}

/// Redis' blocking timeout check (seconds as a long double, times 1000, truncated to ms).
fn check_timeout(b: &[u8]) -> Result<(), CmdError> {
    let v = parse_f64_opt(b).ok_or(CmdError::Timeout)?;
    let ms = v * 1000.0;
    if ms.is_nan() || ms <= -1.0 || ms >= 9.223_372_036_854_776e18 {
        return Err(CmdError::err("timeout is negative"));
    }
    Ok(())
}

fn positive_count(b: &[u8]) -> Result<u64, CmdError> {
    match parse_i64(b) {
        Ok(n) if n >= 0 => Ok(n as u64),
        _ => Err(CmdError::err("value is out of range, must be positive")),
    }
}

// ---- replies ----

fn member_frame(m: Vec<u8>) -> Frame {
    Frame::Bulk(m.into())
}

fn range_reply(items: Vec<(Vec<u8>, f64)>, withscores: bool) -> Frame {
    if withscores {
        Frame::Pairs(
            items
                .into_iter()
                .map(|(m, s)| (member_frame(m), Frame::Double(s)))
                .collect(),
        )
    } else {
        Frame::Array(items.into_iter().map(|(m, _)| member_frame(m)).collect())
    }
}

// ---- basic commands ----

fn zadd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let (mut nx, mut xx, mut gt, mut lt, mut ch, mut incr) =
        (false, false, false, false, false, false);
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        if is(a, "nx") {
            nx = true;
        } else if is(a, "xx") {
            xx = true;
        } else if is(a, "gt") {
            gt = true;
        } else if is(a, "lt") {
            lt = true;
        } else if is(a, "ch") {
            ch = true;
        } else if is(a, "incr") {
            incr = true;
        } else {
            break;
        }
        i += 1;
    }
    let elements = args.len() - i;
    if elements == 0 || !elements.is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    if xx && nx {
        return Err(CmdError::err(
            "XX and NX options at the same time are not compatible",
        ));
    }
    if (nx && (gt || lt)) || (gt && lt) {
        return Err(CmdError::err(
            "GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if incr && elements > 2 {
        return Err(CmdError::err(
            "INCR option supports a single increment-element pair",
        ));
    }
    let mut pairs = Vec::with_capacity(elements / 2);
    for p in args[i..].chunks(2) {
        pairs.push((parse_score(&p[0])?, &p[1]));
    }
    let existing = z::lookup(ctx, key)?;
    if existing.is_none() && xx {
        return Ok(if incr { Frame::Null } else { Frame::Integer(0) });
    }
    let mut meta = match existing {
        Some(m) => m,
        None => elems::open_or_create(ctx, key, DataType::ZSet)?,
    };
    let (mut added, mut updated, mut processed) = (0i64, 0i64, 0i64);
    let mut last = 0.0;
    for (score, member) in pairs {
        match z::score(ctx, key, &meta, member)? {
            Some(cur) => {
                if nx {
                    continue;
                }
                let new = if incr { score + cur } else { score };
                if new.is_nan() {
                    return Err(CmdError::err("resulting score is not a number (NaN)"));
                }
                if (lt && new >= cur) || (gt && new <= cur) {
                    continue;
                }
                processed += 1;
                last = new;
                if new != cur {
                    z::put(ctx, key, &mut meta, member, new, Some(cur))?;
                    updated += 1;
                }
            }
            None => {
                if xx {
                    continue;
                }
                z::put(ctx, key, &mut meta, member, score, None)?;
                added += 1;
                processed += 1;
                last = z::normalize(score);
            }
        }
    }
    if added + updated > 0 {
        ctx.put_meta(key, &mut meta)?;
    }
    Ok(if incr {
        if processed > 0 {
            Frame::Double(last)
        } else {
            Frame::Null
        }
    } else if ch {
        Frame::Integer(added + updated)
    } else {
        Frame::Integer(added)
    })
}

fn zincrby(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let incr = parse_score(&args[2])?;
    let mut meta = elems::open_or_create(ctx, key, DataType::ZSet)?;
    let cur = z::score(ctx, key, &meta, &args[3])?;
    let new = match cur {
        Some(c) => c + incr,
        None => incr,
    };
    if new.is_nan() {
        return Err(CmdError::err("resulting score is not a number (NaN)"));
    }
    z::put(ctx, key, &mut meta, &args[3], new, cur)?;
    ctx.put_meta(key, &mut meta)?;
    Ok(Frame::Double(z::normalize(new)))
}

fn zrem(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let Some(mut meta) = z::lookup(ctx, key)? else {
        return Ok(Frame::Integer(0));
    };
    let mut n = 0;
    for m in &args[2..] {
        if z::remove(ctx, key, &mut meta, m)? {
            n += 1;
        }
    }
    if n > 0 {
        elems::save(ctx, key, &mut meta)?;
    }
    Ok(Frame::Integer(n))
}

fn zcard(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(Frame::Integer(
        z::lookup(ctx, &args[1])?
            .map(|m| m.size as i64)
            .unwrap_or(0),
    ))
}

fn zscore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(meta) = z::lookup(ctx, &args[1])? else {
        return Ok(Frame::Null);
    };
    Ok(match z::score(ctx, &args[1], &meta, &args[2])? {
        Some(s) => Frame::Double(s),
        None => Frame::Null,
    })
}

fn zmscore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let meta = z::lookup(ctx, &args[1])?;
    let mut out = Vec::with_capacity(args.len() - 2);
    for m in &args[2..] {
        let s = match &meta {
            Some(meta) => z::score(ctx, &args[1], meta, m)?,
            None => None,
        };
        out.push(s.map_or(Frame::Null, Frame::Double));
    }
    Ok(Frame::Array(out))
}

fn zrank(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(meta) = z::lookup(ctx, &args[1])? else {
        return Ok(Frame::Null);
    };
    let rev = is(&args[0], "zrevrank");
    Ok(match z::rank(ctx, &args[1], &meta, &args[2])? {
        Some(r) if rev => Frame::Integer(meta.size.saturating_sub(1 + r) as i64),
        Some(r) => Frame::Integer(r as i64),
        None => Frame::Null,
    })
}

fn zcount(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let range = parse_score_range(&args[2], &args[3])?;
    let Some(meta) = z::lookup(ctx, &args[1])? else {
        return Ok(Frame::Integer(0));
    };
    let mut n = 0;
    z::by_score(ctx, &args[1], &meta, &range, false, 0, None, |_, _| {
        n += 1;
        Ok(true)
    })?;
    Ok(Frame::Integer(n))
}

fn zlexcount(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let range = parse_lex_range(&args[2], &args[3])?;
    let Some(meta) = z::lookup(ctx, &args[1])? else {
        return Ok(Frame::Integer(0));
    };
    let mut n = 0;
    z::by_lex(ctx, &args[1], &meta, &range, false, 0, None, |_, _| {
        n += 1;
        Ok(true)
    })?;
    Ok(Frame::Integer(n))
}

// ---- ranges ----

#[derive(Clone, Copy, PartialEq)]
enum RangeType {
    Auto,
    Rank,
    Score,
    Lex,
}

enum Range {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

/// Normalizes a rank range Redis-style; `None` when empty.
fn clip_ranks(start: i64, end: i64, len: u64) -> Option<(u64, u64)> {
    let len = len as i64;
    let mut start = if start < 0 {
        len.saturating_add(start)
    } else {
        start
    };
    let mut end = if end < 0 {
        len.saturating_add(end)
    } else {
        end
    };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= len {
        return None;
    }
    if end >= len {
        end = len - 1;
    }
    Some((start as u64, end as u64))
}

/// The members `range` selects, in reply order.
fn select(
    ctx: &Ctx,
    key: &[u8],
    meta: &Meta,
    range: &Range,
    reverse: bool,
    offset: i64,
    limit: i64,
) -> Result<Vec<(Vec<u8>, f64)>, CmdError> {
    let mut out = Vec::new();
    let limit = if limit < 0 { None } else { Some(limit as u64) };
    match range {
        Range::Rank(start, end) => {
            if let Some((s, e)) = clip_ranks(*start, *end, meta.size) {
                out = z::by_rank(ctx, key, meta, s, e, reverse)?;
            }
        }
        Range::Score(r) => {
            if offset >= 0 {
                z::by_score(ctx, key, meta, r, reverse, offset as u64, limit, |m, s| {
                    out.push((m.to_vec(), s));
                    Ok(true)
                })?;
            }
        }
        Range::Lex(r) => {
            if offset >= 0 {
                z::by_lex(ctx, key, meta, r, reverse, offset as u64, limit, |m, s| {
                    out.push((m.to_vec(), s));
                    Ok(true)
                })?;
            }
        }
    }
    Ok(out)
}

/// ZRANGE and its older forms, and ZRANGESTORE (Redis' `zrangeGenericCommand`).
fn zrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let name = cmd_name(args);
    let (mut rangetype, mut rev) = match name.as_str() {
        "zrangebyscore" => (RangeType::Score, Some(false)),
        "zrevrangebyscore" => (RangeType::Score, Some(true)),
        "zrangebylex" => (RangeType::Lex, Some(false)),
        "zrevrangebylex" => (RangeType::Lex, Some(true)),
        "zrevrange" => (RangeType::Rank, Some(true)),
        _ => (RangeType::Auto, None),
    };
    let store = name == "zrangestore";
    let base = if store { 2 } else { 1 };
    let key = &args[base];
    let mut withscores = false;
    let (mut offset, mut limit) = (0i64, -1i64);
    let mut j = base + 3;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = &args[j];
        if !store && is(a, "withscores") {
            withscores = true;
        } else if is(a, "limit") && left >= 2 {
            offset = parse_i64(&args[j + 1])?;
            limit = parse_i64(&args[j + 2])?;
            j += 2;
        } else if rev.is_none() && is(a, "rev") {
            rev = Some(true);
        } else if rangetype == RangeType::Auto && is(a, "bylex") {
            rangetype = RangeType::Lex;
        } else if rangetype == RangeType::Auto && is(a, "byscore") {
            rangetype = RangeType::Score;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let rev = rev.unwrap_or(false);
    if rangetype == RangeType::Auto {
        rangetype = RangeType::Rank;
    }
    if limit != -1 && rangetype == RangeType::Rank {
        return Err(CmdError::err(
            "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if withscores && rangetype == RangeType::Lex {
        return Err(CmdError::err(
            "syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    let (mut lo, mut hi) = (&args[base + 1], &args[base + 2]);
    if rev && rangetype != RangeType::Rank {
        std::mem::swap(&mut lo, &mut hi);
    }
    let range = match rangetype {
        RangeType::Score => Range::Score(parse_score_range(lo, hi)?),
        RangeType::Lex => Range::Lex(parse_lex_range(lo, hi)?),
        _ => Range::Rank(parse_i64(lo)?, parse_i64(hi)?),
    };
    let items = match z::lookup(ctx, key)? {
        Some(meta) => select(ctx, key, &meta, &range, rev, offset, limit)?,
        None => Vec::new(),
    };
    if store {
        return Ok(Frame::Integer(z::store(ctx, &args[1], &items)? as i64));
    }
    Ok(range_reply(items, withscores))
}

fn zremrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let name = cmd_name(args);
    let range = match name.as_str() {
        "zremrangebyrank" => Range::Rank(parse_i64(&args[2])?, parse_i64(&args[3])?),
        "zremrangebyscore" => Range::Score(parse_score_range(&args[2], &args[3])?),
        _ => Range::Lex(parse_lex_range(&args[2], &args[3])?),
    };
    let Some(mut meta) = z::lookup(ctx, key)? else {
        return Ok(Frame::Integer(0));
    };
    let victims = select(ctx, key, &meta, &range, false, 0, -1)?;
    for (m, s) in &victims {
        z::remove_known(ctx, key, &mut meta, m, *s)?;
    }
    if !victims.is_empty() {
        elems::save(ctx, key, &mut meta)?;
    }
    Ok(Frame::Integer(victims.len() as i64))
}

// ---- pops ----

/// Pops up to `count` members from the low (or high) end of the sorted set at `key`.
fn pop(
    ctx: &mut Ctx,
    key: &[u8],
    meta: &mut Meta,
    count: u64,
    max: bool,
) -> Result<Vec<(Vec<u8>, f64)>, CmdError> {
    let end = count.min(meta.size).saturating_sub(1);
    let items = if meta.size == 0 || count == 0 {
        Vec::new()
    } else {
        z::by_rank(ctx, key, meta, 0, end, max)?
    };
    for (m, s) in &items {
        z::remove_known(ctx, key, meta, m, *s)?;
    }
    if !items.is_empty() {
        elems::save(ctx, key, meta)?;
    }
    Ok(items)
}

fn zpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let max = is(&args[0], "zpopmax");
    let count = match args.get(2) {
        Some(c) => Some(positive_count(c)?),
        None => None,
    };
    let Some(mut meta) = z::lookup(ctx, &args[1])? else {
        return Ok(Frame::Array(Vec::new()));
    };
    if count == Some(0) {
        return Ok(Frame::Array(Vec::new()));
    }
    let items = pop(ctx, &args[1], &mut meta, count.unwrap_or(1), max)?;
    if count.is_some() {
        return Ok(range_reply(items, true));
    }
    Ok(Frame::Array(
        items
            .into_iter()
            .flat_map(|(m, s)| [member_frame(m), Frame::Double(s)])
            .collect(),
    ))
}

/// The first key holding a non-empty sorted set, type-checking keys up to it.
fn first_nonempty<'a>(ctx: &Ctx, keys: &'a [Bytes]) -> Result<Option<(&'a Bytes, Meta)>, CmdError> {
    for k in keys {
        if let Some(m) = z::lookup(ctx, k)? {
            if m.size > 0 {
                return Ok(Some((k, m)));
            }
        }
    }
    Ok(None)
}

/// BZPOPMIN / BZPOPMAX: one non-blocking attempt; the server layer does the waiting.
fn bzpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    check_timeout(&args[args.len() - 1])?;
    let max = is(&args[0], "bzpopmax");
    let keys = &args[1..args.len() - 1];
    let Some((key, mut meta)) = first_nonempty(ctx, keys)? else {
        return Ok(Frame::NullArray);
    };
    let mut items = pop(ctx, key, &mut meta, 1, max)?;
    let Some((m, s)) = items.pop() else {
        return Ok(Frame::NullArray);
    };
    Ok(Frame::Array(vec![
        Frame::Bulk(key.clone()),
        member_frame(m),
        Frame::Double(s),
    ]))
}

/// ZMPOP, and BZMPOP as one non-blocking attempt (timeout at `args[1]`).
fn zmpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let blocking = is(&args[0], "bzmpop");
    let at = if blocking { 2 } else { 1 };
    let numkeys = match parse_i64(&args[at]) {
        Ok(n) if n > 0 => n as usize,
        _ => return Err(CmdError::err("numkeys should be greater than 0")),
    };
    let where_idx = match at.checked_add(numkeys).and_then(|x| x.checked_add(1)) {
        Some(w) if w < args.len() => w,
        _ => return Err(CmdError::Syntax),
    };
    let max = if is(&args[where_idx], "max") {
        true
    } else if is(&args[where_idx], "min") {
        false
    } else {
        return Err(CmdError::Syntax);
    };
    let mut count: Option<u64> = None;
    let mut j = where_idx + 1;
    while j < args.len() {
        if count.is_none() && is(&args[j], "count") && j + 1 < args.len() {
            count = match parse_i64(&args[j + 1]) {
                Ok(n) if n > 0 => Some(n as u64),
                _ => return Err(CmdError::err("count should be greater than 0")),
            };
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    if blocking {
        check_timeout(&args[1])?;
    }
    let keys = &args[at + 1..where_idx];
    let Some((key, mut meta)) = first_nonempty(ctx, keys)? else {
        return Ok(Frame::NullArray);
    };
    let items = pop(ctx, key, &mut meta, count.unwrap_or(1), max)?;
    Ok(Frame::Array(vec![
        Frame::Bulk(key.clone()),
        Frame::Array(
            items
                .into_iter()
                .map(|(m, s)| Frame::Array(vec![member_frame(m), Frame::Double(s)]))
                .collect(),
        ),
    ]))
}

// ---- random members ----

fn decode_score_value(raw: &[u8]) -> f64 {
    raw.get(..8)
        .and_then(|b| b.try_into().ok())
        .map(|b: [u8; 8]| f64::from_bits(u64::from_be_bytes(b)))
        .unwrap_or(0.0)
}

fn zrandmember(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    if args.len() == 2 {
        let Some(meta) = z::lookup(ctx, key)? else {
            return Ok(Frame::Null);
        };
        let pos = ctx.rand_below(meta.size);
        let mut got = elems::at_positions(ctx, key, &meta, &[pos])?;
        return Ok(Frame::bulk_or_null(got.pop().map(|(m, _)| m)));
    }
    let (count, withscores) = parse_rand_args(args, "withscores")?;
    let Some(meta) = z::lookup(ctx, key)? else {
        return Ok(Frame::Array(Vec::new()));
    };
    let picked = super::hash::random_elements(ctx, key, &meta, count)?;
    Ok(range_reply(
        picked
            .into_iter()
            .map(|(m, v)| (m, decode_score_value(&v)))
            .collect(),
        withscores,
    ))
}

// ---- set operations ----

#[derive(Clone, Copy, PartialEq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

fn aggregate(agg: Aggregate, acc: &mut f64, v: f64) {
    match agg {
        Aggregate::Sum => {
            *acc += v;
            if acc.is_nan() {
                *acc = 0.0;
            }
        }
        Aggregate::Min => {
            if v < *acc {
                *acc = v;
            }
        }
        Aggregate::Max => {
            if v > *acc {
                *acc = v;
            }
        }
    }
}

/// An input of ZUNION & co: a sorted set, or a plain set whose members score 1.
struct Source<'a> {
    key: &'a Bytes,
    meta: Meta,
    weight: f64,
}

impl Source<'_> {
    fn score_of(&self, ctx: &Ctx, member: &[u8]) -> Result<Option<f64>, CmdError> {
        if self.meta.dtype == DataType::ZSet {
            z::score(ctx, self.key, &self.meta, member)
        } else {
            Ok(sets::is_member(ctx, self.key, &self.meta, member)?.then_some(1.0))
        }
    }

    /// Visits members with their raw scores.
    fn each(
        &self,
        ctx: &Ctx,
        mut f: impl FnMut(&[u8], f64) -> Result<bool, CmdError>,
    ) -> Result<(), CmdError> {
        if self.meta.dtype == DataType::ZSet {
            elems::for_each(ctx, self.key, &self.meta, None, false, |m, v| {
                f(m, decode_score_value(v))
            })
        } else {
            elems::for_each(ctx, self.key, &self.meta, None, false, |m, _| f(m, 1.0))
        }
    }
}

fn weighted(w: f64, s: f64) -> f64 {
    let v = w * s;
    if v.is_nan() {
        0.0
    } else {
        v
    }
}

/// ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD (Redis'
/// `zunionInterDiffGenericCommand`).
fn zsetop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let name = cmd_name(args);
    let (op, store, card_only) = match name.as_str() {
        "zunion" => (SetOp::Union, false, false),
        "zinter" => (SetOp::Inter, false, false),
        "zdiff" => (SetOp::Diff, false, false),
        "zintercard" => (SetOp::Inter, false, true),
        "zunionstore" => (SetOp::Union, true, false),
        "zinterstore" => (SetOp::Inter, true, false),
        _ => (SetOp::Diff, true, false),
    };
    let nk_idx = if store { 2 } else { 1 };
    let setnum = parse_i64(&args[nk_idx])?;
    if setnum < 1 {
        return Err(CmdError::err(format!(
            "at least 1 input key is needed for '{name}' command"
        )));
    }
    if setnum as u64 > (args.len() - nk_idx - 1) as u64 {
        return Err(CmdError::Syntax);
    }
    let setnum = setnum as usize;
    let keys = &args[nk_idx + 1..nk_idx + 1 + setnum];
    let mut srcs: Vec<Option<Source>> = Vec::with_capacity(setnum);
    for k in keys {
        match ctx.meta(k)? {
            Some(m) if m.dtype == DataType::ZSet || m.dtype == DataType::Set => {
                srcs.push(Some(Source {
                    key: k,
                    meta: m,
                    weight: 1.0,
                }))
            }
            Some(_) => return Err(CmdError::WrongType),
            None => srcs.push(None),
        }
    }
    let mut weights = vec![1.0; setnum];
    let mut agg = Aggregate::Sum;
    let mut withscores = false;
    let mut limit = 0u64;
    let mut j = nk_idx + 1 + setnum;
    while j < args.len() {
        let remaining = args.len() - j;
        let a = &args[j];
        if op != SetOp::Diff && !card_only && remaining > setnum && is(a, "weights") {
            for (i, w) in weights.iter_mut().enumerate() {
                *w = parse_score_opt(&args[j + 1 + i])
                    .ok_or_else(|| CmdError::err("weight value is not a float"))?;
            }
            j += 1 + setnum;
        } else if op != SetOp::Diff && !card_only && remaining >= 2 && is(a, "aggregate") {
            let v = &args[j + 1];
            agg = if is(v, "sum") {
                Aggregate::Sum
            } else if is(v, "min") {
                Aggregate::Min
            } else if is(v, "max") {
                Aggregate::Max
            } else {
                return Err(CmdError::Syntax);
            };
            j += 2;
        } else if !store && !card_only && is(a, "withscores") {
            withscores = true;
            j += 1;
        } else if card_only && remaining >= 2 && is(a, "limit") {
            limit = match parse_i64(&args[j + 1]) {
                Ok(n) if n >= 0 => n as u64,
                _ => return Err(CmdError::err("LIMIT can't be negative")),
            };
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    for (src, w) in srcs.iter_mut().zip(&weights) {
        if let Some(s) = src {
            s.weight = *w;
        }
    }

    let mut result: BTreeMap<Vec<u8>, f64> = BTreeMap::new();
    match op {
        SetOp::Inter => {
            if srcs.iter().all(|s| s.is_some()) {
                let mut present: Vec<Source> = srcs.into_iter().flatten().collect();
                present.sort_by_key(|s| s.meta.size);
                if let Some((first, rest)) = present.split_first() {
                    let mut failed = None;
                    let mut count = 0u64;
                    first.each(ctx, |m, s| {
                        let mut acc = weighted(first.weight, s);
                        for other in rest {
                            match other.score_of(ctx, m) {
                                Ok(Some(v)) => aggregate(agg, &mut acc, weighted(other.weight, v)),
                                Ok(None) => return Ok(true),
                                Err(e) => {
                                    failed = Some(e);
                                    return Ok(false);
                                }
                            }
                        }
                        count += 1;
                        if !card_only {
                            result.insert(m.to_vec(), acc);
                        }
                        Ok(limit == 0 || count < limit)
                    })?;
                    if let Some(e) = failed {
                        return Err(e);
                    }
                    if card_only {
                        return Ok(Frame::Integer(count as i64));
                    }
                }
            } else if card_only {
                return Ok(Frame::Integer(0));
            }
        }
        SetOp::Union => {
            let mut present: Vec<Source> = srcs.into_iter().flatten().collect();
            present.sort_by_key(|s| s.meta.size);
            for src in &present {
                src.each(ctx, |m, s| {
                    let v = weighted(src.weight, s);
                    match result.get_mut(m) {
                        Some(acc) => aggregate(agg, acc, v),
                        None => {
                            result.insert(m.to_vec(), v);
                        }
                    }
                    Ok(true)
                })?;
            }
        }
        SetOp::Diff => {
            if let Some(Some(first)) = srcs.first() {
                let rest: Vec<&Source> = srcs[1..].iter().flatten().collect();
                let mut failed = None;
                first.each(ctx, |m, s| {
                    for other in &rest {
                        match other.score_of(ctx, m) {
                            Ok(Some(_)) => return Ok(true),
                            Ok(None) => {}
                            Err(e) => {
                                failed = Some(e);
                                return Ok(false);
                            }
                        }
                    }
                    result.insert(m.to_vec(), s);
                    Ok(true)
                })?;
                if let Some(e) = failed {
                    return Err(e);
                }
            }
        }
    }
    let mut items: Vec<(Vec<u8>, f64)> = result.into_iter().collect();
    items.sort_by(|a, b| {
        a.1.partial_cmp(&b.1)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.0.cmp(&b.0))
    });
    if store {
        return Ok(Frame::Integer(z::store(ctx, &args[1], &items)? as i64));
    }
    Ok(range_reply(items, withscores))
}

fn zscan(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let cursor = parse_cursor(&args[2])?;
    let Some(meta) = z::lookup(ctx, &args[1])? else {
        return Ok(empty_scan());
    };
    let opts = parse_scan_opts(args, 3)?;
    // zset-max-listpack-entries / -value: small sets are replied whole, as Redis does.
    let mut whole = cursor == 0 && meta.size <= 128;
    if whole {
        elems::for_each(ctx, &args[1], &meta, None, false, |m, _| {
            whole = m.len() <= 64;
            Ok(whole)
        })?;
    }
    scan_step(ctx, &args[1], &meta, cursor, &opts, whole, |m, v, out| {
        out.push(Frame::Bulk(Bytes::copy_from_slice(m)));
        out.push(Frame::Bulk(format_double(decode_score_value(v)).into()));
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    const WT: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

    fn d(v: f64) -> Frame {
        Frame::Double(v)
    }

    fn pairs(items: &[(&str, f64)]) -> Frame {
        Frame::Pairs(items.iter().map(|(m, s)| (bulk(m), d(*s))).collect())
    }

    fn seeded() -> TestDb {
        let mut db = TestDb::new();
        assert_eq!(
            db.run(&["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"]),
            int(4)
        );
        db
    }

    #[test]
    fn zadd_options_and_errors() {
        let mut db = seeded();
        assert_eq!(
            db.run(&["ZADD", "z", "NX", "XX", "1", "a"]),
            err("ERR XX and NX options at the same time are not compatible")
        );
        for opts in [["GT", "LT"], ["GT", "NX"], ["LT", "NX"]] {
            assert_eq!(
                db.run(&["ZADD", "z", opts[0], opts[1], "1", "a"]),
                err("ERR GT, LT, and/or NX options at the same time are not compatible")
            );
        }
        assert_eq!(
            db.run(&["ZADD", "z", "INCR", "1", "a", "2", "b"]),
            err("ERR INCR option supports a single increment-element pair")
        );
        assert_eq!(
            db.run(&["ZADD", "z", "nan", "a"]),
            err("ERR value is not a valid float")
        );
        assert_eq!(
            db.run(&["ZADD", "z", "1e400", "a"]),
            err("ERR value is not a valid float")
        );
        assert_eq!(
            db.run(&["ZADD", "z", "x", "a"]),
            err("ERR value is not a valid float")
        );
        assert_eq!(
            db.run(&["ZADD", "z", "1", "a", "2"]),
            err("ERR syntax error")
        );
        assert_eq!(db.run(&["ZADD", "z", "CH", "2"]), err("ERR syntax error"));
        assert_eq!(
            db.run(&["ZADD", "z", "1"]),
            err("ERR wrong number of arguments for 'zadd' command")
        );
        assert_eq!(db.run(&["ZADD", "z", "INCR", "NX", "1", "a"]), Frame::Null);
        assert_eq!(db.run(&["ZADD", "z", "INCR", "1", "q"]), d(1.0));
        assert_eq!(db.run(&["ZADD", "z", "INCR", "2.5", "q"]), d(3.5));
        assert_eq!(
            db.run(&["ZADD", "z", "GT", "CH", "0", "a", "5", "b"]),
            int(1)
        );
        assert_eq!(
            db.run(&["ZADD", "z", "LT", "CH", "0", "a", "9", "b", "1", "new"]),
            int(2)
        );
        assert_eq!(db.run(&["ZADD", "z", "XX", "1", "zz"]), int(0));
        assert_eq!(db.run(&["ZADD", "nz", "XX", "1", "zz"]), int(0));
        assert_eq!(db.run(&["ZCARD", "nz"]), int(0));
        assert_eq!(
            db.run(&["ZADD", "nz", "XX", "INCR", "1", "zz"]),
            Frame::Null
        );
        assert_eq!(db.run(&["ZADD", "z", "GT", "INCR", "-1", "a"]), Frame::Null);
        assert_eq!(db.run(&["ZADD", "z", "inf", "a"]), int(0));
        assert_eq!(
            db.run(&["ZADD", "z", "INCR", "-inf", "a"]),
            err("ERR resulting score is not a number (NaN)")
        );
        assert_eq!(db.run(&["ZADD", "z", "-0", "m0"]), int(1));
        assert_eq!(db.run(&["ZSCORE", "z", "m0"]), d(0.0));
        db.run(&["SET", "str", "v"]);
        assert_eq!(db.run(&["ZADD", "str", "1", "a"]), err(WT));
        assert_eq!(db.run(&["ZADD", "str", "XX", "1", "a"]), err(WT));
    }

    #[test]
    fn scores_ranks_counts() {
        let mut db = seeded();
        assert_eq!(db.run(&["ZSCORE", "z", "b"]), d(2.0));
        assert_eq!(db.run(&["ZSCORE", "z", "nope"]), Frame::Null);
        assert_eq!(db.run(&["ZSCORE", "nokey", "a"]), Frame::Null);
        assert_eq!(
            db.run(&["ZMSCORE", "z", "a", "nope"]),
            Frame::Array(vec![d(1.0), Frame::Null])
        );
        assert_eq!(
            db.run(&["ZMSCORE", "nokey", "a"]),
            Frame::Array(vec![Frame::Null])
        );
        assert_eq!(db.run(&["ZRANK", "z", "c"]), int(2));
        assert_eq!(db.run(&["ZREVRANK", "z", "c"]), int(1));
        assert_eq!(db.run(&["ZRANK", "z", "nope"]), Frame::Null);
        assert_eq!(db.run(&["ZREVRANK", "nokey", "a"]), Frame::Null);
        assert_eq!(db.run(&["ZCOUNT", "z", "(1", "+inf"]), int(3));
        assert_eq!(db.run(&["ZCOUNT", "z", "-inf", "(2"]), int(1));
        assert_eq!(db.run(&["ZCOUNT", "nokey", "0", "1"]), int(0));
        assert_eq!(
            db.run(&["ZCOUNT", "nokey", "x", "1"]),
            err("ERR min or max is not a float")
        );
        assert_eq!(db.run(&["ZLEXCOUNT", "z", "-", "+"]), int(4));
        assert_eq!(db.run(&["ZLEXCOUNT", "z", "[b", "(d"]), int(2));
        assert_eq!(
            db.run(&["ZLEXCOUNT", "nokey", "a", "+"]),
            err("ERR min or max not valid string range item")
        );
        assert_eq!(db.run(&["ZINCRBY", "z", "10", "a"]), d(11.0));
        assert_eq!(db.run(&["ZINCRBY", "z", "1.5", "new"]), d(1.5));
        assert_eq!(
            db.run(&["ZINCRBY", "z", "x", "a"]),
            err("ERR value is not a valid float")
        );
        assert_eq!(db.run(&["ZRANK", "z", "a"]), int(4));
        assert_eq!(db.run(&["ZREM", "z", "a", "new", "nope"]), int(2));
        assert_eq!(db.run(&["ZREM", "nokey", "a"]), int(0));
        assert_eq!(db.run(&["ZCARD", "z"]), int(3));
        assert_eq!(db.run(&["ZREM", "z", "b", "c", "d"]), int(3));
        assert_eq!(db.run(&["ZCARD", "z"]), int(0));
        db.run(&["ZADD", "z", "inf", "x"]);
        assert_eq!(
            db.run(&["ZINCRBY", "z", "-inf", "x"]),
            err("ERR resulting score is not a number (NaN)")
        );
    }

    #[test]
    fn ranges() {
        let mut db = seeded();
        assert_eq!(
            db.run(&["ZRANGE", "z", "0", "-1"]),
            arr(&["a", "b", "c", "d"])
        );
        assert_eq!(db.run(&["ZRANGE", "z", "-5", "-3"]), arr(&["a", "b"]));
        assert_eq!(db.run(&["ZRANGE", "z", "5", "10"]), arr(&[]));
        assert_eq!(db.run(&["ZRANGE", "z", "2", "3"]), arr(&["c", "d"]));
        assert_eq!(db.run(&["ZRANGE", "z", "1", "2", "REV"]), arr(&["c", "b"]));
        assert_eq!(
            db.run(&["ZREVRANGE", "z", "0", "0", "WITHSCORES"]),
            pairs(&[("d", 4.0)])
        );
        assert_eq!(
            db.run(&["ZRANGE", "z", "(1", "3", "BYSCORE", "WITHSCORES"]),
            pairs(&[("b", 2.0), ("c", 3.0)])
        );
        assert_eq!(
            db.run(&["ZRANGE", "z", "(", "3", "BYSCORE"]),
            arr(&["a", "b", "c"])
        );
        assert_eq!(
            db.run(&["ZRANGE", "z", "3", "1", "BYSCORE", "REV"]),
            arr(&["c", "b", "a"])
        );
        assert_eq!(
            db.run(&["ZRANGE", "z", "1", "3", "BYSCORE", "LIMIT", "1", "-1"]),
            arr(&["b", "c"])
        );
        assert_eq!(
            db.run(&["ZRANGE", "z", "1", "3", "BYSCORE", "LIMIT", "-1", "1"]),
            arr(&[])
        );
        assert_eq!(db.run(&["ZRANGE", "z", "(1", "(1", "BYSCORE"]), arr(&[]));
        assert_eq!(db.run(&["ZRANGE", "z", "1e400", "3", "BYSCORE"]), arr(&[]));
        assert_eq!(db.run(&["ZRANGEBYSCORE", "z", " 2", "3"]), arr(&["b", "c"]));
        assert_eq!(
            db.run(&[
                "ZRANGEBYSCORE",
                "z",
                "-inf",
                "+inf",
                "LIMIT",
                "0",
                "1",
                "LIMIT",
                "1",
                "1"
            ]),
            arr(&["b"])
        );
        assert_eq!(
            db.run(&["ZREVRANGEBYSCORE", "z", "(4", "2"]),
            arr(&["c", "b"])
        );
        assert_eq!(
            db.run(&["ZRANGEBYLEX", "z", "[a", "(c", "LIMIT", "1", "5"]),
            arr(&["b"])
        );
        assert_eq!(db.run(&["ZRANGEBYLEX", "z", "+", "-"]), arr(&[]));
        assert_eq!(
            db.run(&["ZREVRANGEBYLEX", "z", "+", "-", "LIMIT", "1", "2"]),
            arr(&["c", "b"])
        );
        assert_eq!(
            db.run(&["ZRANGE", "z", "[c", "-", "BYLEX", "REV"]),
            arr(&["c", "b", "a"])
        );
        assert_eq!(db.run(&["ZRANGE", "nokey", "0", "-1"]), arr(&[]));
        for (args, e) in [
            (
                vec!["ZRANGE", "z", "0", "-1", "LIMIT", "0", "1"],
                "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
            ),
            (
                vec!["ZRANGE", "z", "-", "+", "BYLEX", "WITHSCORES"],
                "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
            ),
            (
                vec!["ZRANGEBYLEX", "z", "-", "+", "WITHSCORES"],
                "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
            ),
            (vec!["ZRANGE", "z", "a", "b", "BYSCORE"], "ERR min or max is not a float"),
            (vec!["ZRANGE", "z", "1", "nan", "BYSCORE"], "ERR min or max is not a float"),
            (vec!["ZRANGE", "z", "[a", "[b"], "ERR value is not an integer or out of range"),
            (vec!["ZRANGE", "z", "a", "b", "BYLEX"], "ERR min or max not valid string range item"),
            (vec!["ZRANGE", "z", "0", "-1", "BYSCORE", "BYLEX"], "ERR syntax error"),
            (vec!["ZRANGE", "z", "0", "-1", "REV", "REV"], "ERR syntax error"),
            (vec!["ZRANGE", "z", "0", "-1", "LIMIT", "0"], "ERR syntax error"),
            (vec!["ZRANGEBYSCORE", "z", "1", "3", "LIMIT", "1"], "ERR syntax error"),
            (vec!["ZRANGEBYSCORE", "z", "1", "3", "BYSCORE"], "ERR syntax error"),
            (vec!["ZREVRANGE", "z", "0", "1", "x"], "ERR syntax error"),
            (
                vec!["ZRANGE", "z", "0", "-1", "BYSCORE", "LIMIT", "x", "1"],
                "ERR value is not an integer or out of range",
            ),
            (vec!["ZRANGESTORE", "d", "z", "0", "-1", "WITHSCORES"], "ERR syntax error"),
        ] {
            assert_eq!(db.run(&args), err(e), "{args:?}");
        }
        assert_eq!(
            db.run(&["ZRANGE", "z", "0", "-1", "LIMIT", "0", "-1"]),
            arr(&["a", "b", "c", "d"])
        );
        assert_eq!(db.run(&["ZRANGESTORE", "d", "z", "1", "-1"]), int(3));
        assert_eq!(
            db.run(&["ZRANGE", "d", "0", "-1", "WITHSCORES"]),
            pairs(&[("b", 2.0), ("c", 3.0), ("d", 4.0)])
        );
        assert_eq!(
            db.run(&["ZRANGESTORE", "d", "z", "5", "+inf", "BYSCORE"]),
            int(0)
        );
        assert_eq!(db.run(&["ZCARD", "d"]), int(0));
        assert_eq!(db.run(&["ZRANGESTORE", "d", "nokey", "0", "-1"]), int(0));
        db.run(&["SET", "str", "v"]);
        assert_eq!(db.run(&["ZRANGE", "str", "0", "-1"]), err(WT));
        assert_eq!(db.run(&["ZRANGESTORE", "str", "z", "0", "0"]), int(1));
        assert_eq!(db.run(&["ZRANGE", "str", "0", "-1"]), arr(&["a"]));
    }

    #[test]
    fn lex_ranges_on_equal_scores() {
        let mut db = TestDb::new();
        db.run(&[
            "ZADD", "l", "0", "alpha", "0", "bar", "0", "cool", "0", "down", "0", "elephant",
        ]);
        assert_eq!(
            db.run(&["ZRANGEBYLEX", "l", "[bar", "[down"]),
            arr(&["bar", "cool", "down"])
        );
        assert_eq!(
            db.run(&["ZRANGEBYLEX", "l", "(bar", "(down"]),
            arr(&["cool"])
        );
        assert_eq!(db.run(&["ZRANGEBYLEX", "l", "[b", "[c"]), arr(&["bar"]));
        assert_eq!(
            db.run(&["ZREVRANGEBYLEX", "l", "[down", "(alpha"]),
            arr(&["down", "cool", "bar"])
        );
        assert_eq!(
            db.run(&["ZREVRANGEBYLEX", "l", "(down", "-"]),
            arr(&["cool", "bar", "alpha"])
        );
        assert_eq!(db.run(&["ZLEXCOUNT", "l", "(a", "[d"]), int(3));
        assert_eq!(db.run(&["ZRANGEBYLEX", "l", "[z", "[a"]), arr(&[]));
        assert_eq!(db.run(&["ZREMRANGEBYLEX", "l", "[bar", "(down"]), int(2));
        assert_eq!(
            db.run(&["ZRANGE", "l", "0", "-1"]),
            arr(&["alpha", "down", "elephant"])
        );
    }

    #[test]
    fn remove_ranges_and_pops() {
        let mut db = seeded();
        assert_eq!(
            db.run(&["ZREMRANGEBYRANK", "z", "x", "1"]),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(
            db.run(&["ZREMRANGEBYSCORE", "z", "x", "1"]),
            err("ERR min or max is not a float")
        );
        assert_eq!(
            db.run(&["ZREMRANGEBYLEX", "z", "x", "1"]),
            err("ERR min or max not valid string range item")
        );
        assert_eq!(db.run(&["ZREMRANGEBYRANK", "nokey", "0", "-1"]), int(0));
        assert_eq!(db.run(&["ZREMRANGEBYRANK", "z", "5", "9"]), int(0));
        assert_eq!(db.run(&["ZREMRANGEBYRANK", "z", "-1", "-1"]), int(1));
        assert_eq!(db.run(&["ZREMRANGEBYSCORE", "z", "(1", "2"]), int(1));
        assert_eq!(db.run(&["ZRANGE", "z", "0", "-1"]), arr(&["a", "c"]));
        db.run(&["ZADD", "z", "2", "b", "4", "d"]);
        assert_eq!(db.run(&["ZPOPMIN", "z", "0"]), Frame::Array(vec![]));
        assert_eq!(
            db.run(&["ZPOPMIN", "z", "-1"]),
            err("ERR value is out of range, must be positive")
        );
        assert_eq!(db.run(&["ZPOPMIN", "z", "1", "2"]), err("ERR syntax error"));
        assert_eq!(db.run(&["ZPOPMIN", "nokey"]), Frame::Array(vec![]));
        assert_eq!(
            db.run(&["ZPOPMIN", "z"]),
            Frame::Array(vec![bulk("a"), d(1.0)])
        );
        assert_eq!(
            db.run(&["ZPOPMAX", "z", "2"]),
            pairs(&[("d", 4.0), ("c", 3.0)])
        );
        assert_eq!(db.run(&["ZPOPMIN", "z", "10"]), pairs(&[("b", 2.0)]));
        assert_eq!(db.run(&["ZCARD", "z"]), int(0));
        db.run(&["SET", "str", "v"]);
        assert_eq!(db.run(&["ZPOPMIN", "str"]), err(WT));
        assert_eq!(db.run(&["ZPOPMIN", "str", "0"]), err(WT));
        assert_eq!(
            db.run(&["ZPOPMIN", "str", "-1"]),
            err("ERR value is out of range, must be positive")
        );
    }

    #[test]
    fn mpop_and_blocking_attempts() {
        let mut db = seeded();
        assert_eq!(
            db.run(&["ZMPOP", "2", "nokey", "z", "MIN", "COUNT", "2"]),
            Frame::Array(vec![
                bulk("z"),
                Frame::Array(vec![
                    Frame::Array(vec![bulk("a"), d(1.0)]),
                    Frame::Array(vec![bulk("b"), d(2.0)]),
                ])
            ])
        );
        assert_eq!(db.run(&["ZMPOP", "1", "nokey", "MAX"]), Frame::NullArray);
        for (args, e) in [
            (
                vec!["ZMPOP", "0", "z", "MIN"],
                "ERR numkeys should be greater than 0",
            ),
            (
                vec!["ZMPOP", "x", "z", "MIN"],
                "ERR numkeys should be greater than 0",
            ),
            (vec!["ZMPOP", "1", "z", "FOO"], "ERR syntax error"),
            (vec!["ZMPOP", "3", "z", "MIN"], "ERR syntax error"),
            (
                vec!["ZMPOP", "1", "z", "MIN", "COUNT", "0"],
                "ERR count should be greater than 0",
            ),
            (
                vec!["ZMPOP", "1", "z", "MIN", "COUNT", "1", "COUNT", "2"],
                "ERR syntax error",
            ),
            (vec!["ZMPOP", "1", "z", "MIN", "FOO"], "ERR syntax error"),
            (
                vec!["BZPOPMIN", "z", "x"],
                "ERR timeout is not a float or out of range",
            ),
            (vec!["BZPOPMIN", "z", "-1"], "ERR timeout is negative"),
            (vec!["BZPOPMIN", "z", "inf"], "ERR timeout is negative"),
            (
                vec!["BZMPOP", "x", "1", "z", "MIN"],
                "ERR timeout is not a float or out of range",
            ),
            (
                vec!["BZMPOP", "x", "0", "z", "MIN"],
                "ERR numkeys should be greater than 0",
            ),
            (
                vec!["BZMPOP", "x", "1", "z", "MIN", "COUNT", "0"],
                "ERR count should be greater than 0",
            ),
        ] {
            assert_eq!(db.run(&args), err(e), "{args:?}");
        }
        assert_eq!(
            db.run(&["BZPOPMAX", "nokey", "z", "0"]),
            Frame::Array(vec![bulk("z"), bulk("d"), d(4.0)])
        );
        assert_eq!(
            db.run(&["BZMPOP", "0.5", "1", "z", "MAX"]),
            Frame::Array(vec![
                bulk("z"),
                Frame::Array(vec![Frame::Array(vec![bulk("c"), d(3.0)])])
            ])
        );
        assert_eq!(db.run(&["BZPOPMIN", "z", "-0.0001"]), Frame::NullArray);
        assert_eq!(db.run(&["BZMPOP", "0", "1", "z", "MIN"]), Frame::NullArray);
        db.run(&["SET", "str", "v"]);
        assert_eq!(db.run(&["BZPOPMIN", "str", "0"]), err(WT));
        assert_eq!(db.run(&["ZMPOP", "1", "str", "MIN"]), err(WT));
        let spec = crate::cmd::lookup(b"bzmpop").unwrap();
        let args: Vec<Bytes> = ["BZMPOP", "0", "2", "a", "b", "MIN"]
            .iter()
            .map(|s| Bytes::from(s.to_string()))
            .collect();
        assert_eq!(spec.key_indexes(&args), vec![3, 4]);
        let spec = crate::cmd::lookup(b"zunionstore").unwrap();
        let args: Vec<Bytes> = ["ZUNIONSTORE", "d", "2", "a", "b", "WEIGHTS", "1", "2"]
            .iter()
            .map(|s| Bytes::from(s.to_string()))
            .collect();
        assert_eq!(spec.key_indexes(&args), vec![1, 3, 4]);
    }

    #[test]
    fn randmember() {
        let mut db = seeded();
        assert_eq!(db.run(&["ZRANDMEMBER", "nokey"]), Frame::Null);
        assert_eq!(db.run(&["ZRANDMEMBER", "nokey", "1"]), Frame::Array(vec![]));
        assert_eq!(db.run(&["ZRANDMEMBER", "z", "0"]), Frame::Array(vec![]));
        assert_eq!(
            db.run(&["ZRANDMEMBER", "z", "1", "WITHSCORE"]),
            err("ERR syntax error")
        );
        assert_eq!(
            db.run(&["ZRANDMEMBER", "z", "-9223372036854775807", "WITHSCORES"]),
            err("ERR value is out of range")
        );
        let Frame::Pairs(p) = db.run(&["ZRANDMEMBER", "z", "-6", "WITHSCORES"]) else {
            panic!()
        };
        assert_eq!(p.len(), 6);
        for (m, s) in p {
            let expect = match m {
                Frame::Bulk(ref b) if b.as_ref() == b"a" => 1.0,
                Frame::Bulk(ref b) if b.as_ref() == b"b" => 2.0,
                Frame::Bulk(ref b) if b.as_ref() == b"c" => 3.0,
                _ => 4.0,
            };
            assert_eq!(s, d(expect));
        }
        let Frame::Array(a) = db.run(&["ZRANDMEMBER", "z", "3"]) else {
            panic!()
        };
        assert_eq!(a.len(), 3);
        let Frame::Bulk(_) = db.run(&["ZRANDMEMBER", "z"]) else {
            panic!()
        };
    }

    #[test]
    fn set_operations() {
        let mut db = seeded();
        db.run(&["ZADD", "z2", "10", "b", "20", "e"]);
        db.run(&["SADD", "s", "a", "x"]);
        assert_eq!(
            db.run(&["ZUNION", "2", "z", "z2", "WITHSCORES"]),
            pairs(&[("a", 1.0), ("c", 3.0), ("d", 4.0), ("b", 12.0), ("e", 20.0)])
        );
        assert_eq!(
            db.run(&["ZUNION", "2", "z", "s", "WITHSCORES"]),
            pairs(&[("x", 1.0), ("a", 2.0), ("b", 2.0), ("c", 3.0), ("d", 4.0)])
        );
        assert_eq!(
            db.run(&[
                "ZINTER",
                "2",
                "z",
                "s",
                "WEIGHTS",
                "2",
                "3",
                "WITHSCORES",
                "AGGREGATE",
                "MAX"
            ]),
            pairs(&[("a", 3.0)])
        );
        assert_eq!(
            db.run(&["ZINTER", "2", "z", "z2", "AGGREGATE", "MIN", "WITHSCORES"]),
            pairs(&[("b", 2.0)])
        );
        assert_eq!(db.run(&["ZINTER", "2", "z", "nokey"]), arr(&[]));
        assert_eq!(db.run(&["ZDIFF", "2", "z", "z2"]), arr(&["a", "c", "d"]));
        assert_eq!(db.run(&["ZDIFF", "2", "nokey", "z2"]), arr(&[]));
        assert_eq!(db.run(&["ZINTERCARD", "2", "z", "z2"]), int(1));
        assert_eq!(db.run(&["ZINTERCARD", "1", "z", "LIMIT", "2"]), int(2));
        assert_eq!(db.run(&["ZINTERCARD", "2", "z", "nokey"]), int(0));
        assert_eq!(
            db.run(&["ZUNIONSTORE", "dst", "2", "z", "z2", "WEIGHTS", "1", "0.5"]),
            int(5)
        );
        assert_eq!(db.run(&["ZSCORE", "dst", "b"]), d(7.0));
        assert_eq!(db.run(&["ZINTERSTORE", "dst", "2", "z", "z2"]), int(1));
        assert_eq!(db.run(&["ZDIFFSTORE", "dst", "1", "nokey"]), int(0));
        assert_eq!(db.run(&["ZCARD", "dst"]), int(0));
        db.run(&["ZADD", "zi", "inf", "a"]);
        db.run(&["ZADD", "zj", "-inf", "a"]);
        assert_eq!(
            db.run(&["ZUNION", "2", "zi", "zj", "WITHSCORES"]),
            pairs(&[("a", 0.0)])
        );
        db.run(&["ZADD", "z0", "0", "a"]);
        assert_eq!(
            db.run(&[
                "ZUNION",
                "2",
                "z0",
                "z",
                "WEIGHTS",
                "inf",
                "1",
                "WITHSCORES"
            ]),
            pairs(&[("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 4.0)])
        );
        db.run(&["SET", "str", "v"]);
        for (args, e) in [
            (
                vec!["ZUNION", "0", "z"],
                "ERR at least 1 input key is needed for 'zunion' command",
            ),
            (
                vec!["ZUNIONSTORE", "d", "0", "z"],
                "ERR at least 1 input key is needed for 'zunionstore' command",
            ),
            (
                vec!["ZINTERCARD", "0", "z"],
                "ERR at least 1 input key is needed for 'zintercard' command",
            ),
            (
                vec!["ZUNION", "x", "z"],
                "ERR value is not an integer or out of range",
            ),
            (vec!["ZUNION", "2", "z"], "ERR syntax error"),
            (
                vec!["ZUNION", "1", "z", "WEIGHTS", "1", "2"],
                "ERR syntax error",
            ),
            (
                vec!["ZUNION", "1", "z", "WEIGHTS", "x"],
                "ERR weight value is not a float",
            ),
            (
                vec!["ZUNION", "1", "z", "AGGREGATE", "foo"],
                "ERR syntax error",
            ),
            (vec!["ZUNION", "1", "z", "AGGREGATE"], "ERR syntax error"),
            (
                vec!["ZUNIONSTORE", "d", "1", "z", "WITHSCORES"],
                "ERR syntax error",
            ),
            (vec!["ZDIFF", "1", "z", "WEIGHTS", "1"], "ERR syntax error"),
            (vec!["ZINTERCARD", "2", "z"], "ERR syntax error"),
            (
                vec!["ZINTERCARD", "1", "z", "LIMIT", "-1"],
                "ERR LIMIT can't be negative",
            ),
            (
                vec!["ZINTERCARD", "1", "z", "WITHSCORES"],
                "ERR syntax error",
            ),
            (vec!["ZINTER", "2", "nokey", "str"], WT),
            (vec!["ZINTERCARD", "1", "str"], WT),
        ] {
            assert_eq!(db.run(&args), err(e), "{args:?}");
        }
    }

    #[test]
    fn zscan_replies() {
        let mut db = seeded();
        assert_eq!(db.run(&["ZSCAN", "nokey", "0"]), empty_scan());
        db.run(&["ZADD", "z", "1.5", "e"]);
        assert_eq!(
            db.run(&["ZSCAN", "z", "0", "MATCH", "[ae]"]),
            Frame::Array(vec![bulk("0"), arr(&["a", "1", "e", "1.5"])])
        );
        for i in 0..200 {
            db.run(&["ZADD", "big", &i.to_string(), &format!("m{i}")]);
        }
        let mut cursor = "0".to_string();
        let mut n = 0;
        loop {
            let Frame::Array(parts) = db.run(&["ZSCAN", "big", &cursor]) else {
                panic!()
            };
            let Frame::Bulk(c) = &parts[0] else { panic!() };
            let Frame::Array(items) = &parts[1] else {
                panic!()
            };
            n += items.len() / 2;
            cursor = String::from_utf8(c.to_vec()).unwrap();
            if cursor == "0" {
                break;
            }
        }
        assert_eq!(n, 200);
    }

    #[test]
    fn rank_walks_from_nearer_end() {
        let mut db = TestDb::new();
        for i in 0..50 {
            db.run(&["ZADD", "z", &i.to_string(), &format!("m{i:02}")]);
        }
        assert_eq!(db.run(&["ZRANGE", "z", "45", "46"]), arr(&["m45", "m46"]));
        assert_eq!(
            db.run(&["ZRANGE", "z", "45", "46", "REV"]),
            arr(&["m04", "m03"])
        );
        assert_eq!(
            db.run(&["ZRANGE", "z", "2", "3", "REV"]),
            arr(&["m47", "m46"])
        );
        assert_eq!(db.run(&["ZRANGE", "z", "-2", "-1"]), arr(&["m48", "m49"]));
        assert_eq!(db.run(&["ZRANK", "z", "m33"]), int(33));
        assert_eq!(db.run(&["ZREVRANK", "z", "m33"]), int(16));
        assert_eq!(db.run(&["ZREMRANGEBYRANK", "z", "10", "-11"]), int(30));
        assert_eq!(
            db.run(&["ZRANGE", "z", "9", "10", "WITHSCORES"]),
            pairs(&[("m09", 9.0), ("m40", 40.0)])
        );
    }
}
