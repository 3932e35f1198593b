//! Stream commands: XADD XLEN XRANGE XREVRANGE XDEL XTRIM XREAD, and consumer groups
//! (XGROUP XREADGROUP XACK XPENDING XCLAIM XAUTOCLAIM XINFO XSETID).
//!
//! XREAD's BLOCK is handled by the server layer: when BLOCK is given and nothing is available
//! the handler returns a null array and the server re-runs it (after rewriting `$` ids with
//! `resolve_dollar_ids`, so that only entries added after the first attempt are returned).

use bytes::Bytes;

use super::args::{is, parse_i64, parse_i64_opt};
use super::{flag, spec, CmdError, CmdResult, CommandSpec, Kind};
use crate::protocol::Frame;
use crate::storage::Ctx;
use crate::types::stream::{
    Consumer, Entry, Group, Pending, Stream, StreamId, INVALID_ENTRIES_READ,
};

const W: u32 = flag::WRITE;
const R: u32 = flag::READONLY;

pub const COMMANDS: &[CommandSpec] = &[
    spec(
        "xadd",
        -5,
        W | flag::DENYOOM | flag::FAST,
        (1, 1, 1),
        Kind::Write(xadd),
    ),
    spec("xlen", 2, R | flag::FAST, (1, 1, 1), Kind::Read(xlen)),
    spec("xrange", -4, R, (1, 1, 1), Kind::Read(xrange)),
    spec("xrevrange", -4, R, (1, 1, 1), Kind::Read(xrevrange)),
    spec("xdel", -3, W | flag::FAST, (1, 1, 1), Kind::Write(xdel)),
    spec("xtrim", -4, W, (1, 1, 1), Kind::Write(xtrim)),
    CommandSpec {
        key_finder: Some(xread_keys),
        ..spec(
            "xread",
            -4,
            R | flag::BLOCKING,
            (0, 0, 0),
            Kind::Read(xread),
        )
    },
    CommandSpec {
        key_finder: Some(xread_keys),
        ..spec(
            "xreadgroup",
            -7,
            W | flag::BLOCKING,
            (0, 0, 0),
            Kind::Write(xreadgroup),
        )
    },
    CommandSpec {
        key_finder: Some(xgroup_keys),
        ..spec("xgroup", -2, W, (2, 2, 1), Kind::Write(xgroup))
    },
    spec(
        "xsetid",
        -3,
        W | flag::DENYOOM | flag::FAST,
        (1, 1, 1),
        Kind::Write(xsetid),
    ),
    spec("xack", -4, W | flag::FAST, (1, 1, 1), Kind::Write(xack)),
    spec("xclaim", -6, W | flag::FAST, (1, 1, 1), Kind::Write(xclaim)),
    spec(
        "xautoclaim",
        -6,
        W | flag::FAST,
        (1, 1, 1),
        Kind::Write(xautoclaim),
    ),
    spec("xpending", -3, R, (1, 1, 1), Kind::Read(xpending)),
    spec("xinfo", -2, R, (2, 2, 1), Kind::Read(xinfo)),
];

/// Entries per Redis listpack node (`stream-node-max-entries`): approximate (`~`) trimming
/// removes whole nodes only, emulated as multiples of this many entries.
const NODE_ENTRIES: u64 = 100;

fn invalid_id() -> CmdError {
    CmdError::err("Invalid stream ID specified as stream command argument")
}

/// Redis' `string2ull`: `string2ll` for non-negative values, else `strtoull` (which also
/// accepts a leading `+`, leading zeros and values above i64::MAX).
fn parse_u64(b: &[u8]) -> Option<u64> {
    if let Some(v) = parse_i64_opt(b) {
        return if v < 0 { None } else { Some(v as u64) };
    }
    let s = std::str::from_utf8(b).ok()?;
    let s = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse::<u64>().ok()
}

/// Parses `ms[-seq]` (and `-`/`+` unless `strict`); `seq_star` allows `ms-*`, reported as
/// `seq_given == false`. Returns (id, seq_given).
fn parse_id_full(
    arg: &[u8],
    missing_seq: u64,
    strict: bool,
    seq_star: bool,
) -> Result<(StreamId, bool), CmdError> {
    if arg.len() > 127 {
        return Err(invalid_id());
    }
    if arg == b"-" {
        return if strict {
            Err(invalid_id())
        } else {
            Ok((StreamId::MIN, true))
        };
    }
    if arg == b"+" {
        return if strict {
            Err(invalid_id())
        } else {
            Ok((StreamId::MAX, true))
        };
    }
    let (ms_part, seq_part) = match arg.iter().position(|&c| c == b'-') {
        Some(i) => (&arg[..i], Some(&arg[i + 1..])),
        None => (arg, None),
    };
    let ms = parse_u64(ms_part).ok_or_else(invalid_id)?;
    match seq_part {
        Some(b"*") if seq_star => Ok((StreamId::new(ms, 0), false)),
        Some(s) => Ok((
            StreamId::new(ms, parse_u64(s).ok_or_else(invalid_id)?),
            true,
        )),
        None => Ok((StreamId::new(ms, missing_seq), true)),
    }
}

/// A strict id (no `-`/`+`).
pub fn parse_strict_id(arg: &[u8], missing_seq: u64) -> Result<StreamId, CmdError> {
    Ok(parse_id_full(arg, missing_seq, true, false)?.0)
}

/// An interval bound of XRANGE: `-`, `+`, `id`, or `(id` (exclusive). Returns (id, exclusive).
fn parse_interval_id(arg: &[u8], missing_seq: u64) -> Result<(StreamId, bool), CmdError> {
    if arg.len() > 1 && arg[0] == b'(' {
        Ok((parse_strict_id(&arg[1..], missing_seq)?, true))
    } else {
        Ok((parse_id_full(arg, missing_seq, false, false)?.0, false))
    }
}

fn entry_frame((id, fields): Entry) -> Frame {
    Frame::Array(vec![
        Frame::Bulk(id.to_bulk()),
        Frame::Array(fields.into_iter().map(Frame::Bulk).collect()),
    ])
}

fn entries_frame(entries: Vec<Entry>) -> Frame {
    Frame::Array(entries.into_iter().map(entry_frame).collect())
}

// ---- trimming ----

#[derive(Clone, Copy, PartialEq)]
enum TrimStrategy {
    None,
    MaxLen(u64),
    MinId(StreamId),
}

struct TrimArgs {
    strategy: TrimStrategy,
    approx: bool,
    /// Maximum entries removed by an approximate trim (0 = unlimited).
    limit: u64,
}

/// Trim options, the index of the first argument after them, and XADD's id (with whether
/// it was `ms-*`).
type ParsedAddOrTrim = (TrimArgs, usize, Option<(StreamId, bool)>);

/// Parses XADD/XTRIM options from `args[2..]`. For XADD, stops at the id and returns
/// (options, index of the id, explicit id with seq_given).
fn parse_add_or_trim(
    args: &[Bytes],
    xadd: bool,
    nomkstream: &mut bool,
) -> Result<ParsedAddOrTrim, CmdError> {
    let mut t = TrimArgs {
        strategy: TrimStrategy::None,
        approx: false,
        limit: 0,
    };
    let mut limit_given = false;
    let mut id = None;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = &args[i];
        if xadd && opt.as_ref() == b"*" {
            break;
        } else if (is(opt, "maxlen") || is(opt, "minid")) && more > 0 {
            let maxlen = is(opt, "maxlen");
            t.approx = false;
            let next = args[i + 1].as_ref();
            if more >= 2 && next == b"~" {
                t.approx = true;
                i += 1;
            } else if more >= 2 && next == b"=" {
                i += 1;
            }
            if maxlen {
                let n = parse_i64(&args[i + 1])?;
                if n < 0 {
                    return Err(CmdError::err("The MAXLEN argument must be >= 0."));
                }
                t.strategy = TrimStrategy::MaxLen(n as u64);
            } else {
                t.strategy = TrimStrategy::MinId(parse_strict_id(&args[i + 1], 0)?);
            }
            i += 1;
        } else if is(opt, "limit") && more > 0 {
            let n = parse_i64(&args[i + 1])?;
            if n < 0 {
                return Err(CmdError::err("The LIMIT argument must be >= 0."));
            }
            t.limit = n as u64;
            limit_given = true;
            i += 1;
        } else if xadd && is(opt, "nomkstream") {
            *nomkstream = true;
        } else if xadd {
            id = Some(parse_id_full(opt, 0, true, true)?);
            break;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if t.limit != 0 && t.strategy == TrimStrategy::None {
        return Err(CmdError::err(
            "syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && t.strategy == TrimStrategy::None {
        return Err(CmdError::err(
            "syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    if limit_given {
        if !t.approx {
            return Err(CmdError::err(
                "syntax error, LIMIT cannot be used without the special ~ option",
            ));
        }
    } else if t.approx {
        t.limit = NODE_ENTRIES * 100;
    } else {
        t.limit = 0;
    }
    Ok((t, i, id))
}

/// Trims `s` per `t`; returns the number of entries removed.
fn trim(ctx: &mut Ctx, s: &mut Stream, t: &TrimArgs) -> Result<u64, CmdError> {
    let (mut n, below) = match t.strategy {
        TrimStrategy::None => return Ok(0),
        TrimStrategy::MaxLen(max) => (s.len().saturating_sub(max), StreamId::MAX),
        TrimStrategy::MinId(min) => (s.count_below(ctx, min, u64::MAX)?, min),
    };
    if n == 0 {
        return Ok(0);
    }
    if t.approx {
        if t.limit != 0 {
            n = n.min(t.limit);
        }
        // Whole nodes only, unless the whole (single-node sized) stream goes.
        if !(n == s.len() && n <= NODE_ENTRIES) {
            n -= n % NODE_ENTRIES;
        }
    }
    s.trim_front(ctx, n, below)
}

// ---- commands ----

fn xadd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut nomkstream = false;
    let (t, idpos, id) = parse_add_or_trim(args, true, &mut nomkstream)?;
    let field_pos = idpos + 1;
    if args.len() < field_pos + 2 || (args.len() - field_pos) % 2 == 1 {
        return Err(CmdError::WrongArity("xadd".into()));
    }
    if let Some((id, true)) = id {
        if id == StreamId::MIN {
            return Err(CmdError::err(
                "The ID specified in XADD must be greater than 0-0",
            ));
        }
    }
    let mut s = match Stream::load(ctx, &args[1])? {
        Some(s) => s,
        None if nomkstream => return Ok(Frame::Null),
        None => Stream::create(ctx, &args[1])?,
    };
    if s.last_id == StreamId::MAX {
        return Err(CmdError::err(
            "The stream has exhausted the last possible ID, unable to add more items",
        ));
    }
    let too_small = || {
        CmdError::err(
            "The ID specified in XADD is equal or smaller than the target stream top item",
        )
    };
    let new_id = match id {
        Some((id, true)) => id,
        Some((id, false)) => {
            if s.last_id.ms == id.ms {
                s.last_id
                    .incr()
                    .filter(|n| n.ms == id.ms)
                    .ok_or_else(too_small)?
            } else {
                id
            }
        }
        None => {
            let now = ctx.now_ms();
            if now > s.last_id.ms {
                StreamId::new(now, 0)
            } else {
                s.last_id.incr().ok_or_else(too_small)?
            }
        }
    };
    if new_id <= s.last_id {
        return Err(too_small());
    }
    s.append(ctx, new_id, &args[field_pos..])?;
    trim(ctx, &mut s, &t)?;
    s.save(ctx)?;
    Ok(Frame::Bulk(new_id.to_bulk()))
}

fn xlen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(Frame::Integer(
        Stream::load(ctx, &args[1])?.map_or(0, |s| s.len() as i64),
    ))
}

fn range_generic(ctx: &mut Ctx, args: &[Bytes], rev: bool) -> CmdResult {
    let (start_arg, end_arg) = if rev {
        (&args[3], &args[2])
    } else {
        (&args[2], &args[3])
    };
    let (mut start, start_ex) = parse_interval_id(start_arg, 0)?;
    if start_ex {
        start = start
            .incr()
            .ok_or_else(|| CmdError::err("invalid start ID for the interval"))?;
    }
    let (mut end, end_ex) = parse_interval_id(end_arg, u64::MAX)?;
    if end_ex {
        end = end
            .decr()
            .ok_or_else(|| CmdError::err("invalid end ID for the interval"))?;
    }
    let mut count: i64 = -1;
    let mut j = 4;
    while j < args.len() {
        if is(&args[j], "count") && j + 1 < args.len() {
            count = parse_i64(&args[j + 1])?.max(0);
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let Some(s) = Stream::load(ctx, &args[1])? else {
        return Ok(Frame::Array(Vec::new()));
    };
    if count == 0 {
        return Ok(Frame::NullArray);
    }
    let count = if count < 0 { 0 } else { count as u64 };
    Ok(entries_frame(s.range(ctx, start, end, count, rev)?))
}

fn xrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    range_generic(ctx, args, false)
}

fn xrevrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    range_generic(ctx, args, true)
}

fn xdel(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    // Redis 7.0 looks the key up first (missing: 0, other type: WRONGTYPE), then validates
    // every id before deleting any.
    let Some(mut s) = Stream::load(ctx, &args[1])? else {
        return Ok(Frame::Integer(0));
    };
    let ids = args[2..]
        .iter()
        .map(|a| parse_strict_id(a, 0))
        .collect::<Result<Vec<_>, _>>()?;
    let mut deleted = 0;
    let mut first_deleted = false;
    for id in ids {
        if s.delete(ctx, id)? {
            deleted += 1;
            if id == s.first_id {
                first_deleted = true;
            }
        }
    }
    if deleted > 0 {
        if first_deleted || s.is_empty() {
            s.refresh_first(ctx)?;
        }
        s.save(ctx)?;
    }
    Ok(Frame::Integer(deleted))
}

fn xtrim(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut unused = false;
    let (t, i, _) = parse_add_or_trim(args, false, &mut unused)?;
    debug_assert!(i >= args.len());
    let Some(mut s) = Stream::load(ctx, &args[1])? else {
        return Ok(Frame::Integer(0));
    };
    let n = trim(ctx, &mut s, &t)?;
    if n > 0 {
        s.save(ctx)?;
    }
    Ok(Frame::Integer(n as i64))
}

/// Where XREAD/XREADGROUP's BLOCK value and STREAMS section are, found by stepping over
/// each option with its values as `parse_read_opts` does, so a group or consumer named
/// `streams` or `block` is never taken for the keyword (which would hide the real keys from
/// routing and ACL key checks).
fn read_sections(args: &[Bytes]) -> (Option<&Bytes>, Option<(usize, usize)>) {
    let mut block = None;
    let mut i = 1;
    while i < args.len() {
        let a = &args[i];
        if is(a, "streams") {
            let first = i + 1;
            let n = args.len() - first;
            return (block, n.is_multiple_of(2).then_some((first, n / 2)));
        } else if is(a, "block") {
            block = args.get(i + 1);
            i += 2;
        } else if is(a, "count") {
            i += 2;
        } else if is(a, "group") {
            i += 3;
        } else {
            i += 1;
        }
    }
    (block, None)
}

/// The index of the first key of XREAD/XREADGROUP (after STREAMS) and the stream count.
fn streams_section(args: &[Bytes]) -> Option<(usize, usize)> {
    read_sections(args).1
}

/// XREAD/XREADGROUP's BLOCK timeout in milliseconds (None: it does not block).
pub fn xread_block_ms(args: &[Bytes]) -> Result<Option<u64>, CmdError> {
    match read_sections(args).0 {
        None => Ok(None),
        Some(v) => {
            let ms = parse_i64_opt(v)
                .ok_or_else(|| CmdError::err("timeout is not an integer or out of range"))?;
            if ms < 0 {
                return Err(CmdError::err("timeout is negative"));
            }
            Ok(Some(ms as u64))
        }
    }
}

/// Key positions of XREAD / XREADGROUP: the keys after STREAMS.
pub fn xread_keys(args: &[Bytes]) -> Vec<usize> {
    match streams_section(args) {
        Some((first, n)) => (first..first + n).collect(),
        None => Vec::new(),
    }
}

/// For the server layer before blocking: XREAD's args with each `$` id replaced by the
/// stream's current last id (0-0 for a missing key), so retries only see newer entries.
pub fn resolve_dollar_ids(ctx: &Ctx, args: &[Bytes]) -> Result<Vec<Bytes>, CmdError> {
    let mut out = args.to_vec();
    if let Some((first, n)) = streams_section(args) {
        for k in 0..n {
            if out[first + n + k].as_ref() == b"$" {
                let last = match Stream::load(ctx, &args[first + k])? {
                    Some(s) => s.last_id,
                    None => StreamId::MIN,
                };
                out[first + n + k] = last.to_bulk();
            }
        }
    }
    Ok(out)
}

/// The options of XREAD / XREADGROUP (one parser, as Redis' xreadCommand): COUNT, BLOCK
/// (validated here, waited on by the server layer), GROUP and NOACK (XREADGROUP only), and
/// where the STREAMS keys start.
struct ReadOpts<'a> {
    count: u64,
    streams_arg: usize,
    nstreams: usize,
    group: Option<(&'a Bytes, &'a Bytes)>,
    noack: bool,
}

fn parse_read_opts(args: &[Bytes], xreadgroup: bool) -> Result<ReadOpts<'_>, CmdError> {
    let mut o = ReadOpts {
        count: 0,
        streams_arg: 0,
        nstreams: 0,
        group: None,
        noack: false,
    };
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let a = &args[i];
        if is(a, "block") && more > 0 {
            i += 1;
            let ms = parse_i64_opt(&args[i])
                .ok_or_else(|| CmdError::err("timeout is not an integer or out of range"))?;
            if ms < 0 {
                return Err(CmdError::err("timeout is negative"));
            }
        } else if is(a, "count") && more > 0 {
            i += 1;
            o.count = parse_i64(&args[i])?.max(0) as u64;
        } else if is(a, "streams") && more > 0 {
            o.streams_arg = i + 1;
            let n = args.len() - o.streams_arg;
            if !n.is_multiple_of(2) {
                return Err(CmdError::err(if xreadgroup {
                    "Unbalanced XREADGROUP list of streams: for each stream key an ID or '>' must be specified."
                } else {
                    "Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified."
                }));
            }
            o.nstreams = n / 2;
            break;
        } else if is(a, "group") && more >= 2 {
            if !xreadgroup {
                return Err(CmdError::err(
                    "The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            o.group = Some((&args[i + 1], &args[i + 2]));
            i += 2;
        } else if is(a, "noack") {
            if !xreadgroup {
                return Err(CmdError::err(
                    "The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            o.noack = true;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if o.streams_arg == 0 {
        return Err(CmdError::Syntax);
    }
    Ok(o)
}

fn xread(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let ReadOpts {
        count,
        streams_arg,
        nstreams,
        ..
    } = parse_read_opts(args, false)?;
    let mut streams = Vec::with_capacity(nstreams);
    for k in 0..nstreams {
        let key = &args[streams_arg + k];
        let id_arg = &args[streams_arg + nstreams + k];
        let s = Stream::load(ctx, key)?;
        let after = if id_arg.as_ref() == b"$" {
            s.as_ref().map_or(StreamId::MIN, |s| s.last_id)
        } else if id_arg.as_ref() == b">" {
            return Err(CmdError::err(
                "The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
            ));
        } else {
            parse_strict_id(id_arg, 0)?
        };
        streams.push((key, s, after));
    }
    let mut out = Vec::new();
    for (key, s, after) in streams {
        let Some(s) = s else { continue };
        if s.is_empty() || s.last_id <= after {
            continue;
        }
        let Some(start) = after.incr() else { continue };
        let entries = s.range(ctx, start, StreamId::MAX, count, false)?;
        if !entries.is_empty() {
            out.push((Frame::Bulk(key.clone()), entries_frame(entries)));
        }
    }
    if out.is_empty() {
        return Ok(Frame::NullArray);
    }
    // RESP3: a map of key -> entries (Redis 7); RESP2: an array of [key, entries].
    Ok(Frame::KeyedMap(out))
}

// ---- consumer groups ----

fn nogroup_key_error(key: &[u8], group: &[u8], suffix: &str) -> CmdError {
    CmdError::Other(format!(
        "NOGROUP No such key '{}' or consumer group '{}'{}",
        String::from_utf8_lossy(key),
        String::from_utf8_lossy(group),
        suffix
    ))
}

fn xgroup_subcommand_syntax(sub: &[u8]) -> CmdError {
    CmdError::err(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try XGROUP HELP.",
        String::from_utf8_lossy(sub)
    ))
}

const XGROUP_HELP: &[&str] = &[
    "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Prints this help.",
];

fn parse_entries_read(arg: &[u8]) -> Result<i64, CmdError> {
    let n = parse_i64(arg)?;
    if n < 0 && n != INVALID_ENTRIES_READ {
        return Err(CmdError::err(
            "value for ENTRIESREAD must be positive or -1",
        ));
    }
    Ok(n)
}

/// Key positions of XGROUP: the key of every subcommand but HELP.
fn xgroup_keys(args: &[Bytes]) -> Vec<usize> {
    if args.len() >= 3 {
        vec![2]
    } else {
        Vec::new()
    }
}

fn xgroup(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    let argc = args.len();
    // Per-subcommand arity, as Redis' subcommand table checks it.
    let arity: Option<(&str, i32)> = if is(sub, "create") {
        Some(("create", -5))
    } else if is(sub, "setid") {
        Some(("setid", -5))
    } else if is(sub, "destroy") {
        Some(("destroy", 4))
    } else if is(sub, "createconsumer") {
        Some(("createconsumer", 5))
    } else if is(sub, "delconsumer") {
        Some(("delconsumer", 5))
    } else if is(sub, "help") {
        Some(("help", 2))
    } else {
        None
    };
    let Some((subname, arity)) = arity else {
        return Err(CmdError::err(format!(
            "unknown subcommand '{}'. Try XGROUP HELP.",
            String::from_utf8_lossy(sub)
        )));
    };
    let ok = if arity >= 0 {
        argc as i32 == arity
    } else {
        argc as i32 >= -arity
    };
    if !ok {
        return Err(CmdError::WrongArity(format!("xgroup|{subname}")));
    }
    if subname == "help" {
        return Ok(Frame::Array(
            XGROUP_HELP
                .iter()
                .map(|l| Frame::Simple((*l).to_string()))
                .collect(),
        ));
    }
    let mut mkstream = false;
    let mut entries_read = INVALID_ENTRIES_READ;
    if subname == "create" {
        if argc > 8 {
            return Err(xgroup_subcommand_syntax(sub));
        }
        let mut i = 5;
        while i < argc {
            if is(&args[i], "mkstream") {
                mkstream = true;
                i += 1;
            } else if is(&args[i], "entriesread") && i + 1 < argc {
                entries_read = parse_entries_read(&args[i + 1])?;
                i += 2;
            } else {
                return Err(xgroup_subcommand_syntax(sub));
            }
        }
    } else if subname == "setid" {
        if argc == 7 {
            if !is(&args[5], "entriesread") {
                return Err(xgroup_subcommand_syntax(sub));
            }
            entries_read = parse_entries_read(&args[6])?;
        } else if argc != 5 {
            return Err(xgroup_subcommand_syntax(sub));
        }
    }
    let key = &args[2];
    let gname = &args[3];
    let stream = Stream::load(ctx, key)?;
    let group = match &stream {
        Some(s) => s.get_group(ctx, gname)?,
        None => None,
    };
    if !mkstream {
        if stream.is_none() {
            return Err(CmdError::err("The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically."));
        }
        if group.is_none() && matches!(subname, "setid" | "createconsumer" | "delconsumer") {
            return Err(CmdError::Other(format!(
                "NOGROUP No such consumer group '{}' for key name '{}'",
                String::from_utf8_lossy(gname),
                String::from_utf8_lossy(key)
            )));
        }
    }
    match subname {
        "create" => {
            let id = if args[4].as_ref() == b"$" {
                stream.as_ref().map_or(StreamId::MIN, |s| s.last_id)
            } else {
                parse_strict_id(&args[4], 0)?
            };
            if group.is_some() {
                return Err(CmdError::Other(
                    "BUSYGROUP Consumer Group name already exists".into(),
                ));
            }
            let mut s = match stream {
                Some(s) => s,
                None => Stream::create(ctx, key)?,
            };
            s.put_group(
                ctx,
                &Group {
                    name: gname.to_vec(),
                    last_id: id,
                    entries_read,
                },
            )?;
            s.save(ctx)?;
            Ok(Frame::ok())
        }
        "setid" => {
            let (Some(mut s), Some(mut g)) = (stream, group) else {
                return Err(CmdError::err("internal: missing group"));
            };
            let id = if args[4].as_ref() == b"$" {
                s.last_id
            } else {
                parse_id_full(&args[4], 0, false, false)?.0
            };
            g.last_id = id;
            g.entries_read = entries_read;
            s.put_group(ctx, &g)?;
            s.save(ctx)?;
            Ok(Frame::ok())
        }
        "destroy" => {
            let Some(mut s) = stream else {
                return Ok(Frame::Integer(0));
            };
            if group.is_none() {
                return Ok(Frame::Integer(0));
            }
            s.delete_group(ctx, gname)?;
            s.save(ctx)?;
            Ok(Frame::Integer(1))
        }
        "createconsumer" => {
            let Some(mut s) = stream else {
                return Ok(Frame::Integer(0));
            };
            if s.get_consumer(ctx, gname, &args[4])?.is_some() {
                return Ok(Frame::Integer(0));
            }
            let c = Consumer {
                name: args[4].to_vec(),
                seen_time: ctx.now_ms(),
            };
            s.put_consumer(ctx, gname, &c)?;
            s.save(ctx)?;
            Ok(Frame::Integer(1))
        }
        _ => {
            // delconsumer
            let Some(mut s) = stream else {
                return Ok(Frame::Integer(0));
            };
            if s.get_consumer(ctx, gname, &args[4])?.is_none() {
                return Ok(Frame::Integer(0));
            }
            let n = s.delete_consumer(ctx, gname, &args[4])?;
            s.save(ctx)?;
            Ok(Frame::Integer(n as i64))
        }
    }
}

fn xsetid(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let id = parse_strict_id(&args[2], 0)?;
    let mut entries_added: i64 = -1;
    let mut max_xdel = StreamId::MIN;
    let mut i = 3;
    while i < args.len() {
        let more = i + 1 < args.len();
        if is(&args[i], "entriesadded") && more {
            entries_added = parse_i64(&args[i + 1])?;
            if entries_added < 0 {
                return Err(CmdError::err("entries_added must be positive"));
            }
            i += 2;
        } else if is(&args[i], "maxdeletedid") && more {
            max_xdel = parse_strict_id(&args[i + 1], 0)?;
            if id < max_xdel {
                return Err(CmdError::err(
                    "The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                ));
            }
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let Some(mut s) = Stream::load(ctx, &args[1])? else {
        return Err(CmdError::NoSuchKey);
    };
    if id < s.max_deleted {
        return Err(CmdError::err(
            "The ID specified in XSETID is smaller than current max_deleted_entry_id",
        ));
    }
    if !s.is_empty() {
        if id < s.last_entry_id(ctx)? {
            return Err(CmdError::err(
                "The ID specified in XSETID is smaller than the target stream top item",
            ));
        }
        if entries_added != -1 && s.len() > entries_added as u64 {
            return Err(CmdError::err(
                "The entries_added specified in XSETID is smaller than the target stream length",
            ));
        }
    }
    s.last_id = id;
    if entries_added != -1 {
        s.entries_added = entries_added as u64;
    }
    if max_xdel != StreamId::MIN {
        s.max_deleted = max_xdel;
    }
    s.save(ctx)?;
    Ok(Frame::ok())
}

fn xack(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(mut s) = Stream::load(ctx, &args[1])? else {
        return Ok(Frame::Integer(0));
    };
    if s.get_group(ctx, &args[2])?.is_none() {
        return Ok(Frame::Integer(0));
    }
    let ids = args[3..]
        .iter()
        .map(|a| parse_strict_id(a, 0))
        .collect::<Result<Vec<_>, _>>()?;
    let mut acked = 0;
    for id in ids {
        if s.get_pending(ctx, &args[2], id)?.is_some() {
            s.delete_pending(ctx, &args[2], id)?;
            acked += 1;
        }
    }
    if acked > 0 {
        s.save(ctx)?;
    }
    Ok(Frame::Integer(acked))
}

fn xpending(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let argc = args.len();
    let justinfo = argc == 3;
    if argc != 3 && !(6..=9).contains(&argc) {
        return Err(CmdError::Syntax);
    }
    let mut start = StreamId::MIN;
    let mut end = StreamId::MAX;
    let mut count: i64 = 0;
    let mut minidle: i64 = 0;
    let mut consumer: Option<&Bytes> = None;
    if argc >= 6 {
        let mut startidx = 3;
        if is(&args[3], "idle") {
            minidle = parse_i64(&args[4])?;
            if argc < 8 {
                return Err(CmdError::Syntax);
            }
            startidx += 2;
        }
        count = parse_i64(&args[startidx + 2])?.max(0);
        let (s, sx) = parse_interval_id(&args[startidx], 0)?;
        start = if sx {
            s.incr()
                .ok_or_else(|| CmdError::err("invalid start ID for the interval"))?
        } else {
            s
        };
        let (e, ex) = parse_interval_id(&args[startidx + 1], u64::MAX)?;
        end = if ex {
            e.decr()
                .ok_or_else(|| CmdError::err("invalid end ID for the interval"))?
        } else {
            e
        };
        consumer = args.get(startidx + 3);
    }
    let s = Stream::load(ctx, &args[1])?;
    let group = match &s {
        Some(s) => s.get_group(ctx, &args[2])?,
        None => None,
    };
    let (Some(s), Some(_)) = (s, group) else {
        return Err(nogroup_key_error(&args[1], &args[2], ""));
    };
    let gname = &args[2];
    if justinfo {
        let mut total = 0i64;
        let mut first = None;
        let mut last = None;
        let mut per: std::collections::BTreeMap<Vec<u8>, i64> = Default::default();
        s.visit_pel(ctx, gname, StreamId::MIN, StreamId::MAX, |p| {
            total += 1;
            if first.is_none() {
                first = Some(p.id);
            }
            last = Some(p.id);
            *per.entry(p.consumer).or_default() += 1;
            Ok(true)
        })?;
        let (Some(first), Some(last)) = (first, last) else {
            return Ok(Frame::Array(vec![
                Frame::Integer(0),
                Frame::Null,
                Frame::Null,
                Frame::NullArray,
            ]));
        };
        return Ok(Frame::Array(vec![
            Frame::Integer(total),
            Frame::Bulk(first.to_bulk()),
            Frame::Bulk(last.to_bulk()),
            Frame::Array(
                per.into_iter()
                    .map(|(c, n)| {
                        Frame::Array(vec![
                            Frame::Bulk(c.into()),
                            Frame::Bulk(n.to_string().into()),
                        ])
                    })
                    .collect(),
            ),
        ]));
    }
    if let Some(c) = consumer {
        if s.get_consumer(ctx, gname, c)?.is_none() {
            return Ok(Frame::Array(Vec::new()));
        }
    }
    let now = ctx.now_ms() as i64;
    let mut out = Vec::new();
    let mut left = count;
    if left > 0 {
        s.visit_pel(ctx, gname, start, end, |p| {
            if let Some(c) = consumer {
                if p.consumer != c.as_ref() {
                    return Ok(true);
                }
            }
            let idle = now - p.delivery_time as i64;
            if minidle != 0 && idle < minidle {
                return Ok(true);
            }
            out.push(Frame::Array(vec![
                Frame::Bulk(p.id.to_bulk()),
                Frame::Bulk(p.consumer.into()),
                Frame::Integer(idle.max(0)),
                Frame::Integer(p.delivery_count as i64),
            ]));
            left -= 1;
            Ok(left > 0)
        })?;
    }
    Ok(Frame::Array(out))
}

fn xreadgroup(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let ReadOpts {
        count,
        streams_arg,
        nstreams,
        group,
        noack,
    } = parse_read_opts(args, true)?;
    let Some((gname, cname)) = group else {
        return Err(CmdError::err("Missing GROUP option for XREADGROUP"));
    };
    // Resolve every stream, group and id before any effect.
    let mut plan = Vec::with_capacity(nstreams);
    for k in 0..nstreams {
        let key = &args[streams_arg + k];
        let id_arg = &args[streams_arg + nstreams + k];
        let s = Stream::load(ctx, key)?;
        let g = match &s {
            Some(s) => s.get_group(ctx, gname)?,
            None => None,
        };
        let (Some(s), Some(g)) = (s, g) else {
            return Err(nogroup_key_error(
                key,
                gname,
                " in XREADGROUP with GROUP option",
            ));
        };
        let after = if id_arg.as_ref() == b"$" {
            return Err(CmdError::err("The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set."));
        } else if id_arg.as_ref() == b">" {
            None
        } else {
            Some(parse_strict_id(id_arg, 0)?)
        };
        plan.push((key, s, g, after));
    }
    let now = ctx.now_ms();
    let mut out = Vec::new();
    for (key, s, mut g, after) in plan {
        // Every read refreshes (or creates) the consumer.
        s.put_consumer(
            ctx,
            gname,
            &Consumer {
                name: cname.to_vec(),
                seen_time: now,
            },
        )?;
        match after {
            Some(after) => {
                // History: this consumer's pending entries with id > after.
                let mut items = Vec::new();
                if let Some(start) = after.incr() {
                    let mut pend = Vec::new();
                    s.visit_pel(ctx, gname, start, StreamId::MAX, |p| {
                        if p.consumer == cname.as_ref() {
                            pend.push(p);
                        }
                        Ok(count == 0 || (pend.len() as u64) < count)
                    })?;
                    for mut p in pend {
                        match s.get_entry(ctx, p.id)? {
                            Some(fields) => {
                                p.delivery_time = now;
                                p.delivery_count += 1;
                                s.put_pending(ctx, gname, &p)?;
                                items.push(entry_frame((p.id, fields)));
                            }
                            None => items.push(Frame::Array(vec![
                                Frame::Bulk(p.id.to_bulk()),
                                Frame::NullArray,
                            ])),
                        }
                    }
                }
                out.push((Frame::Bulk(key.clone()), Frame::Array(items)));
            }
            None => {
                let entries = match g.last_id.incr() {
                    Some(start) if !s.is_empty() && s.last_id > g.last_id => {
                        s.range(ctx, start, StreamId::MAX, count, false)?
                    }
                    _ => Vec::new(),
                };
                if !entries.is_empty() {
                    for (id, _) in &entries {
                        if g.entries_read != INVALID_ENTRIES_READ && !s.has_tombstones_from(*id) {
                            g.entries_read += 1;
                        } else if s.entries_added != 0 {
                            g.entries_read = s.estimate_distance(*id);
                        }
                        g.last_id = *id;
                        if !noack {
                            s.put_pending(
                                ctx,
                                gname,
                                &Pending {
                                    id: *id,
                                    delivery_time: now,
                                    delivery_count: 1,
                                    consumer: cname.to_vec(),
                                },
                            )?;
                        }
                    }
                    s.put_group(ctx, &g)?;
                    out.push((Frame::Bulk(key.clone()), entries_frame(entries)));
                }
            }
        }
        // The stream's metadata is unchanged and, as in Redis (which signals no modified
        // key here), the key is not touched: WATCH stays valid, and a blocked XREADGROUP's
        // empty retry does not wake the clients blocked on the key (itself included).
    }
    if out.is_empty() {
        return Ok(Frame::NullArray);
    }
    // RESP3: a map of key -> entries (Redis 7); RESP2: an array of [key, entries].
    Ok(Frame::KeyedMap(out))
}

fn xinfo(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    if is(sub, "help") {
        return Ok(Frame::Array(
            XINFO_HELP
                .iter()
                .map(|l| Frame::Simple((*l).to_string()))
                .collect(),
        ));
    }
    let (name, arity) = if is(sub, "stream") {
        ("stream", -3)
    } else if is(sub, "groups") {
        ("groups", 3)
    } else if is(sub, "consumers") {
        ("consumers", 4)
    } else {
        return Err(CmdError::err(format!(
            "unknown subcommand '{}'. Try XINFO HELP.",
            String::from_utf8_lossy(sub)
        )));
    };
    let n = args.len() as i32;
    if (arity > 0 && n != arity) || (arity < 0 && n < -arity) {
        return Err(CmdError::WrongArity(format!("xinfo|{name}")));
    }
    let Some(s) = Stream::load(ctx, &args[2])? else {
        return Err(CmdError::NoSuchKey);
    };
    let b = |t: &str| Frame::Bulk(Bytes::copy_from_slice(t.as_bytes()));
    match name {
        "stream" if args.len() > 3 => {
            // Redis parses [FULL [COUNT n]] only after the key lookup.
            let syntax = || {
                CmdError::err(format!(
                    "unknown subcommand or wrong number of arguments for '{}'. Try XINFO HELP.",
                    String::from_utf8_lossy(sub)
                ))
            };
            let opts = &args[3..];
            if (opts.len() != 1 && opts.len() != 3) || !is(&opts[0], "full") {
                return Err(syntax());
            }
            let mut count = 10u64;
            if opts.len() == 3 {
                if !is(&opts[1], "count") {
                    return Err(syntax());
                }
                let n = parse_i64(&opts[2])?;
                count = if n < 0 { 10 } else { n as u64 };
            }
            xinfo_stream_full(ctx, &s, count)
        }
        "stream" => {
            let groups = s.groups(ctx)?;
            let first = s.range(ctx, StreamId::MIN, StreamId::MAX, 1, false)?;
            let last = s.range(ctx, StreamId::MIN, StreamId::MAX, 1, true)?;
            let edge = |e: Vec<Entry>| e.into_iter().next().map_or(Frame::Null, entry_frame);
            let mut fields = stream_summary(&s);
            fields.push((b("groups"), Frame::Integer(groups.len() as i64)));
            fields.push((b("first-entry"), edge(first)));
            fields.push((b("last-entry"), edge(last)));
            Ok(Frame::Map(fields))
        }
        "groups" => {
            let mut out = Vec::new();
            for g in s.groups(ctx)? {
                let consumers = s.consumers(ctx, &g.name)?.len() as i64;
                let mut pending = 0i64;
                s.visit_pel(ctx, &g.name, StreamId::MIN, StreamId::MAX, |_| {
                    pending += 1;
                    Ok(true)
                })?;
                let mut fields = vec![
                    (b("name"), Frame::Bulk(g.name.clone().into())),
                    (b("consumers"), Frame::Integer(consumers)),
                    (b("pending"), Frame::Integer(pending)),
                ];
                fields.extend(group_position(&s, &g));
                out.push(Frame::Map(fields));
            }
            Ok(Frame::Array(out))
        }
        _ => {
            let gname = &args[3];
            if s.get_group(ctx, gname)?.is_none() {
                return Err(CmdError::Other(format!(
                    "NOGROUP No such consumer group '{}' for key name '{}'",
                    String::from_utf8_lossy(gname),
                    String::from_utf8_lossy(&args[2])
                )));
            }
            let mut per: std::collections::BTreeMap<Vec<u8>, i64> = Default::default();
            s.visit_pel(ctx, gname, StreamId::MIN, StreamId::MAX, |p| {
                *per.entry(p.consumer).or_default() += 1;
                Ok(true)
            })?;
            let now = ctx.now_ms() as i64;
            let out = s
                .consumers(ctx, gname)?
                .into_iter()
                .map(|c| {
                    let pending = per.get(&c.name).copied().unwrap_or(0);
                    Frame::Map(vec![
                        (b("name"), Frame::Bulk(c.name.into())),
                        (b("pending"), Frame::Integer(pending)),
                        (b("idle"), Frame::Integer((now - c.seen_time as i64).max(0))),
                    ])
                })
                .collect();
            Ok(Frame::Array(out))
        }
    }
}

/// The fields XINFO STREAM starts with, plain or FULL (radix-tree sizes are estimated as
/// nodes of `NODE_ENTRIES` entries).
fn stream_summary(s: &Stream) -> Vec<(Frame, Frame)> {
    let b = |t: &str| Frame::Bulk(Bytes::copy_from_slice(t.as_bytes()));
    let keys = s.len().div_ceil(NODE_ENTRIES) as i64;
    vec![
        (b("length"), Frame::Integer(s.len() as i64)),
        (b("radix-tree-keys"), Frame::Integer(keys)),
        (b("radix-tree-nodes"), Frame::Integer(keys + 1)),
        (b("last-generated-id"), Frame::Bulk(s.last_id.to_bulk())),
        (
            b("max-deleted-entry-id"),
            Frame::Bulk(s.max_deleted.to_bulk()),
        ),
        (b("entries-added"), Frame::Integer(s.entries_added as i64)),
        (
            b("recorded-first-entry-id"),
            Frame::Bulk(s.first_id.to_bulk()),
        ),
    ]
}

/// A group's position in the stream, as XINFO GROUPS and XINFO STREAM FULL both report it:
/// last-delivered-id, entries-read (nil when unknown) and lag (nil when unknown).
fn group_position(s: &Stream, g: &Group) -> [(Frame, Frame); 3] {
    let b = |t: &str| Frame::Bulk(Bytes::copy_from_slice(t.as_bytes()));
    let entries_read = if g.entries_read == INVALID_ENTRIES_READ {
        Frame::Null
    } else {
        Frame::Integer(g.entries_read)
    };
    [
        (b("last-delivered-id"), Frame::Bulk(g.last_id.to_bulk())),
        (b("entries-read"), entries_read),
        (b("lag"), s.group_lag(g).map_or(Frame::Null, Frame::Integer)),
    ]
}

/// XINFO STREAM key FULL [COUNT n] (`count` 0 = unlimited): like Redis' full
/// `xinfoReplyWithStreamInfo`, `count` caps the entries and every pending list.
fn xinfo_stream_full(ctx: &Ctx, s: &Stream, count: u64) -> CmdResult {
    let b = |t: &str| Frame::Bulk(Bytes::copy_from_slice(t.as_bytes()));
    let under = |n: usize| count == 0 || (n as u64) < count;
    let entries = s.range(ctx, StreamId::MIN, StreamId::MAX, count, false)?;
    let mut groups = Vec::new();
    for g in s.groups(ctx)? {
        let mut pel_count = 0i64;
        let mut pending = Vec::new();
        // Per consumer: (pel-count, capped pending list), filled from the one PEL scan.
        let mut per: std::collections::BTreeMap<Vec<u8>, (i64, Vec<Frame>)> = Default::default();
        s.visit_pel(ctx, &g.name, StreamId::MIN, StreamId::MAX, |p| {
            pel_count += 1;
            if under(pending.len()) {
                pending.push(Frame::Array(vec![
                    Frame::Bulk(p.id.to_bulk()),
                    Frame::Bulk(p.consumer.clone().into()),
                    Frame::Integer(p.delivery_time as i64),
                    Frame::Integer(p.delivery_count as i64),
                ]));
            }
            let (n, list) = per.entry(p.consumer).or_default();
            *n += 1;
            if under(list.len()) {
                list.push(Frame::Array(vec![
                    Frame::Bulk(p.id.to_bulk()),
                    Frame::Integer(p.delivery_time as i64),
                    Frame::Integer(p.delivery_count as i64),
                ]));
            }
            Ok(true)
        })?;
        let consumers = s
            .consumers(ctx, &g.name)?
            .into_iter()
            .map(|c| {
                let (n, list) = per.remove(&c.name).unwrap_or_default();
                Frame::Map(vec![
                    (b("name"), Frame::Bulk(c.name.into())),
                    (b("seen-time"), Frame::Integer(c.seen_time as i64)),
                    (b("pel-count"), Frame::Integer(n)),
                    (b("pending"), Frame::Array(list)),
                ])
            })
            .collect();
        let mut fields = vec![(b("name"), Frame::Bulk(g.name.clone().into()))];
        fields.extend(group_position(s, &g));
        fields.extend([
            (b("pel-count"), Frame::Integer(pel_count)),
            (b("pending"), Frame::Array(pending)),
            (b("consumers"), Frame::Array(consumers)),
        ]);
        groups.push(Frame::Map(fields));
    }
    let mut fields = stream_summary(s);
    fields.push((b("entries"), entries_frame(entries)));
    fields.push((b("groups"), Frame::Array(groups)));
    Ok(Frame::Map(fields))
}

/// Moves pending entry `p` to consumer `name` as XCLAIM/XAUTOCLAIM do and returns its reply.
#[allow(clippy::too_many_arguments)]
fn claim_one(
    ctx: &mut Ctx,
    s: &Stream,
    gname: &[u8],
    name: &[u8],
    mut p: Pending,
    delivery_time: u64,
    count: Option<u64>,
    justid: bool,
    fields: Vec<Bytes>,
) -> Result<Frame, CmdError> {
    p.consumer = name.to_vec();
    p.delivery_time = delivery_time;
    if let Some(n) = count {
        p.delivery_count = n;
    } else if !justid {
        p.delivery_count += 1;
    }
    s.put_pending(ctx, gname, &p)?;
    Ok(if justid {
        Frame::Bulk(p.id.to_bulk())
    } else {
        entry_frame((p.id, fields))
    })
}

fn load_group_or_nogroup(ctx: &Ctx, args: &[Bytes]) -> Result<(Stream, Group), CmdError> {
    let s = Stream::load(ctx, &args[1])?;
    let g = match &s {
        Some(s) => s.get_group(ctx, &args[2])?,
        None => None,
    };
    match (s, g) {
        (Some(s), Some(g)) => Ok((s, g)),
        _ => Err(nogroup_key_error(&args[1], &args[2], "")),
    }
}

fn xclaim(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (mut s, mut g) = load_group_or_nogroup(ctx, args)?;
    let minidle = parse_i64_opt(&args[4])
        .ok_or_else(|| CmdError::err("Invalid min-idle-time argument for XCLAIM"))?
        .max(0);
    let mut ids = Vec::new();
    let mut j = 5;
    while j < args.len() {
        match parse_strict_id(&args[j], 0) {
            Ok(id) => ids.push(id),
            Err(_) => break,
        }
        j += 1;
    }
    let now = ctx.now_ms() as i64;
    let mut force = false;
    let mut justid = false;
    let mut delivery: Option<i64> = None;
    let mut retry: Option<u64> = None;
    let mut last_id = StreamId::MIN;
    while j < args.len() {
        let more = j + 1 < args.len();
        let opt = &args[j];
        let num = |a: &[u8], what: &str| {
            parse_i64_opt(a)
                .ok_or_else(|| CmdError::err(format!("Invalid {what} option argument for XCLAIM")))
        };
        if is(opt, "force") {
            force = true;
        } else if is(opt, "justid") {
            justid = true;
        } else if is(opt, "idle") && more {
            j += 1;
            delivery = Some(now.saturating_sub(num(&args[j], "IDLE")?));
        } else if is(opt, "time") && more {
            j += 1;
            delivery = Some(num(&args[j], "TIME")?);
        } else if is(opt, "retrycount") && more {
            j += 1;
            let n = num(&args[j], "RETRYCOUNT")?;
            retry = if n >= 0 { Some(n as u64) } else { None };
        } else if is(opt, "lastid") && more {
            j += 1;
            last_id = parse_strict_id(&args[j], 0)?;
        } else {
            return Err(CmdError::err(format!(
                "Unrecognized XCLAIM option '{}'",
                String::from_utf8_lossy(opt)
            )));
        }
        j += 1;
    }
    if last_id > g.last_id {
        g.last_id = last_id;
        s.put_group(ctx, &g)?;
    }
    let delivery_time = match delivery {
        Some(t) if t >= 0 && t <= now => t as u64,
        _ => now as u64,
    };
    let gname = &args[2];
    let name = &args[3];
    let mut out = Vec::new();
    let mut consumer_touched = false;
    for id in ids {
        let pending = s.get_pending(ctx, gname, id)?;
        let Some(fields) = s.get_entry(ctx, id)? else {
            if pending.is_some() {
                s.delete_pending(ctx, gname, id)?;
            }
            continue;
        };
        let p = match pending {
            Some(p) => {
                if minidle != 0 && now - (p.delivery_time as i64) < minidle {
                    continue;
                }
                p
            }
            None if force => Pending {
                id,
                delivery_time: now as u64,
                delivery_count: 1,
                consumer: Vec::new(),
            },
            None => continue,
        };
        if !consumer_touched {
            s.put_consumer(
                ctx,
                gname,
                &Consumer {
                    name: name.to_vec(),
                    seen_time: now as u64,
                },
            )?;
            consumer_touched = true;
        }
        out.push(claim_one(
            ctx,
            &s,
            gname,
            name,
            p,
            delivery_time,
            retry,
            justid,
            fields,
        )?);
    }
    s.save(ctx)?;
    Ok(Frame::Array(out))
}

fn xautoclaim(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let minidle = parse_i64_opt(&args[4])
        .ok_or_else(|| CmdError::err("Invalid min-idle-time argument for XAUTOCLAIM"))?
        .max(0);
    let (start, sx) = parse_interval_id(&args[5], 0)?;
    let start = if sx {
        start
            .incr()
            .ok_or_else(|| CmdError::err("invalid start ID for the interval"))?
    } else {
        start
    };
    let mut count: u64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < args.len() {
        if is(&args[j], "count") && j + 1 < args.len() {
            match parse_i64_opt(&args[j + 1]) {
                Some(n) if (1..=i64::MAX / 16).contains(&n) => count = n as u64,
                _ => return Err(CmdError::err("COUNT must be > 0")),
            }
            j += 1;
        } else if is(&args[j], "justid") {
            justid = true;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let (mut s, _) = load_group_or_nogroup(ctx, args)?;
    let gname = &args[2];
    let name = &args[3];
    let now = ctx.now_ms() as i64;
    let mut attempts = count * 10;
    // Every PEL entry the loop may visit, plus the next one (the cursor).
    let mut pel = Vec::new();
    s.visit_pel(ctx, gname, start, StreamId::MAX, |p| {
        pel.push(p);
        Ok((pel.len() as u64) <= attempts)
    })?;
    let mut claimed = Vec::new();
    let mut deleted = Vec::new();
    let mut cursor = StreamId::MIN;
    let mut consumer_touched = false;
    for p in pel {
        if attempts == 0 || count == 0 {
            cursor = p.id;
            break;
        }
        attempts -= 1;
        let Some(fields) = s.get_entry(ctx, p.id)? else {
            s.delete_pending(ctx, gname, p.id)?;
            deleted.push(Frame::Bulk(p.id.to_bulk()));
            count -= 1;
            continue;
        };
        if minidle != 0 && now - (p.delivery_time as i64) < minidle {
            continue;
        }
        if !consumer_touched {
            s.put_consumer(
                ctx,
                gname,
                &Consumer {
                    name: name.to_vec(),
                    seen_time: now as u64,
                },
            )?;
            consumer_touched = true;
        }
        claimed.push(claim_one(
            ctx, &s, gname, name, p, now as u64, None, justid, fields,
        )?);
        count -= 1;
    }
    s.save(ctx)?;
    Ok(Frame::Array(vec![
        Frame::Bulk(cursor.to_bulk()),
        Frame::Array(claimed),
        Frame::Array(deleted),
    ]))
}

const XINFO_HELP: &[&str] = &[
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Prints this help.",
];

#[cfg(test)]
mod tests {
    use crate::protocol::Frame;
    use crate::testutil::*;

    const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
    const INVALID: &str = "ERR Invalid stream ID specified as stream command argument";
    const SMALLER: &str =
        "ERR The ID specified in XADD is equal or smaller than the target stream top item";

    fn entry(id: &str, fields: &[&str]) -> Frame {
        Frame::Array(vec![bulk(id), arr(fields)])
    }

    fn entries(list: &[(&str, &[&str])]) -> Frame {
        Frame::Array(list.iter().map(|(id, f)| entry(id, f)).collect())
    }

    #[test]
    fn read_keys_step_over_option_values() {
        let a = crate::testutil::args;
        // A group or consumer named like a keyword is a value, not the keyword.
        let g = a(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "streams",
            "STREAMS",
            "secret",
            ">",
        ]);
        assert_eq!(super::xread_keys(&g), vec![5]);
        let g = a(&[
            "XREADGROUP",
            "GROUP",
            "streams",
            "block",
            "COUNT",
            "2",
            "STREAMS",
            "a",
            "b",
            ">",
            ">",
        ]);
        assert_eq!(super::xread_keys(&g), vec![7, 8]);
        assert_eq!(super::xread_block_ms(&g).unwrap(), None);
        let r = a(&["XREAD", "COUNT", "1", "BLOCK", "250", "STREAMS", "k", "$"]);
        assert_eq!(super::xread_keys(&r), vec![6]);
        assert_eq!(super::xread_block_ms(&r).unwrap(), Some(250));
        let bad = a(&["XREAD", "BLOCK", "-1", "STREAMS", "k", "$"]);
        assert!(super::xread_block_ms(&bad).is_err());
        assert!(super::xread_keys(&a(&["XREAD", "STREAMS", "k"])).is_empty());
    }

    #[test]
    fn xadd_ids_and_errors() {
        let mut db = TestDb::new();
        assert_eq!(db.run(&["XADD", "s", "1-1", "a", "b"]), bulk("1-1"));
        assert_eq!(
            db.run(&["XADD", "s", "1-2", "a"]),
            err("ERR wrong number of arguments for 'xadd' command")
        );
        let gt0 = err("ERR The ID specified in XADD must be greater than 0-0");
        assert_eq!(db.run(&["XADD", "s", "0-0", "a", "b"]), gt0);
        assert_eq!(db.run(&["XADD", "s", "0", "a", "b"]), gt0);
        assert_eq!(db.run(&["XADD", "s", "1-*", "a", "b"]), bulk("1-2"));
        assert_eq!(db.run(&["XADD", "s", "1-1", "a", "b"]), err(SMALLER));
        assert_eq!(db.run(&["XADD", "s", "0-*", "a", "b"]), err(SMALLER));
        assert_eq!(db.run(&["XADD", "s", "1-x", "a", "b"]), err(INVALID));
        assert_eq!(db.run(&["XADD", "s", "foo", "a", "b"]), err(INVALID));
        assert_eq!(db.run(&["XADD", "s", "5", "a", "b"]), bulk("5-0"));
        assert_eq!(db.run(&["XADD", "s", "+06-1", "a", "b"]), bulk("6-1"));
        assert_eq!(
            db.run(&["XADD", "s", "MAXLEN", "-1", "*", "a", "b"]),
            err("ERR The MAXLEN argument must be >= 0.")
        );
        assert_eq!(
            db.run(&["XADD", "s", "LIMIT", "10", "*", "a", "b"]),
            err("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy")
        );
        assert_eq!(
            db.run(&["XADD", "s", "MAXLEN", "1", "LIMIT", "10", "*", "a", "b"]),
            err("ERR syntax error, LIMIT cannot be used without the special ~ option")
        );
        assert_eq!(
            db.run(&["XADD", "s", "MAXLEN", "abc", "*", "a", "b"]),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(
            db.run(&["XADD", "s", "MINID", "(", "*", "a", "b"]),
            err(INVALID)
        );
        assert_eq!(
            db.run(&["XADD", "n", "NOMKSTREAM", "*", "a", "b"]),
            Frame::Null
        );
        assert_eq!(db.run(&["XLEN", "n"]), int(0));
        // `*` uses the op's time.
        let now = db.now_ms;
        assert_eq!(
            db.run(&["XADD", "t", "*", "a", "b"]),
            bulk(&format!("{now}-0"))
        );
        assert_eq!(
            db.run(&["XADD", "t", "*", "a", "b"]),
            bulk(&format!("{now}-1"))
        );
        db.now_ms += 5;
        assert_eq!(
            db.run(&["XADD", "t", "*", "a", "b"]),
            bulk(&format!("{}-0", now + 5))
        );
        let max = "18446744073709551615-18446744073709551615";
        assert_eq!(db.run(&["XADD", "m", max, "a", "b"]), bulk(max));
        let exhausted =
            err("ERR The stream has exhausted the last possible ID, unable to add more items");
        assert_eq!(db.run(&["XADD", "m", "*", "a", "b"]), exhausted);
        assert_eq!(
            db.run(&["XADD", "m", "18446744073709551615-*", "a", "b"]),
            exhausted
        );
        assert_eq!(db.run(&["XLEN", "s"]), int(4));
        db.run(&["SET", "str", "x"]);
        assert_eq!(db.run(&["XADD", "str", "*", "a", "b"]), err(WRONGTYPE));
        assert_eq!(db.run(&["XLEN", "str"]), err(WRONGTYPE));
    }

    #[test]
    fn xrange_and_xrevrange() {
        let mut db = TestDb::new();
        db.run(&["XADD", "s", "1-1", "a", "1"]);
        db.run(&["XADD", "s", "1-2", "b", "2"]);
        db.run(&["XADD", "s", "2-0", "c", "3", "d", "4"]);
        let all = entries(&[
            ("1-1", &["a", "1"]),
            ("1-2", &["b", "2"]),
            ("2-0", &["c", "3", "d", "4"]),
        ]);
        assert_eq!(db.run(&["XRANGE", "s", "-", "+"]), all);
        assert_eq!(
            db.run(&["XRANGE", "s", "1", "1"]),
            entries(&[("1-1", &["a", "1"]), ("1-2", &["b", "2"])])
        );
        assert_eq!(
            db.run(&["XRANGE", "s", "(1-1", "+", "COUNT", "1"]),
            entries(&[("1-2", &["b", "2"])])
        );
        assert_eq!(
            db.run(&["XRANGE", "s", "-", "(2-0"]),
            entries(&[("1-1", &["a", "1"]), ("1-2", &["b", "2"])])
        );
        assert_eq!(
            db.run(&["XREVRANGE", "s", "+", "-", "COUNT", "2"]),
            entries(&[("2-0", &["c", "3", "d", "4"]), ("1-2", &["b", "2"])])
        );
        assert_eq!(
            db.run(&["XREVRANGE", "s", "(1-2", "-"]),
            entries(&[("1-1", &["a", "1"])])
        );
        assert_eq!(
            db.run(&["XRANGE", "s", "-", "+", "COUNT", "0"]),
            Frame::NullArray
        );
        assert_eq!(
            db.run(&["XRANGE", "s", "-", "+", "COUNT", "-5"]),
            Frame::NullArray
        );
        assert_eq!(db.run(&["XRANGE", "n", "-", "+", "COUNT", "0"]), arr(&[]));
        assert_eq!(db.run(&["XRANGE", "s", "3", "+"]), arr(&[]));
        assert_eq!(db.run(&["XRANGE", "s", "(-", "+"]), err(INVALID));
        assert_eq!(db.run(&["XRANGE", "s", "-", "(+"]), err(INVALID));
        assert_eq!(db.run(&["XRANGE", "s", "(", "+"]), err(INVALID));
        assert_eq!(
            db.run(&["XRANGE", "s", "-", "+", "COUNT"]),
            err("ERR syntax error")
        );
        assert_eq!(
            db.run(&[
                "XRANGE",
                "s",
                "(18446744073709551615-18446744073709551615",
                "+"
            ]),
            err("ERR invalid start ID for the interval")
        );
        assert_eq!(
            db.run(&["XRANGE", "s", "-", "(0-0"]),
            err("ERR invalid end ID for the interval")
        );
        db.run(&["SET", "str", "x"]);
        assert_eq!(db.run(&["XRANGE", "str", "-", "+"]), err(WRONGTYPE));
    }

    #[test]
    fn xdel_and_xtrim() {
        let mut db = TestDb::new();
        for i in 1..=5 {
            db.run(&["XADD", "s", &format!("{i}-0"), "f", "v"]);
        }
        assert_eq!(db.run(&["XDEL", "s", "abc"]), err(INVALID));
        assert_eq!(db.run(&["XDEL", "n", "1-0"]), int(0));
        assert_eq!(db.run(&["XDEL", "n", "abc"]), int(0));
        assert_eq!(db.run(&["XDEL", "s", "1-0", "3", "9-0", "1-0"]), int(2));
        assert_eq!(db.run(&["XLEN", "s"]), int(3));
        assert_eq!(
            db.run(&["XRANGE", "s", "-", "+", "COUNT", "1"]),
            entries(&[("2-0", &["f", "v"])])
        );
        assert_eq!(
            db.run(&["XTRIM", "s", "foo"]),
            err("ERR wrong number of arguments for 'xtrim' command")
        );
        assert_eq!(db.run(&["XTRIM", "s", "foo", "1"]), err("ERR syntax error"));
        assert_eq!(
            db.run(&["XTRIM", "s", "MAXLEN", "0", "LIMIT", "1"]),
            err("ERR syntax error, LIMIT cannot be used without the special ~ option")
        );
        assert_eq!(db.run(&["XTRIM", "s", "MAXLEN", "=", "2"]), int(1));
        assert_eq!(db.run(&["XTRIM", "s", "MINID", "5"]), int(1));
        assert_eq!(
            db.run(&["XRANGE", "s", "-", "+"]),
            entries(&[("5-0", &["f", "v"])])
        );
        assert_eq!(db.run(&["XTRIM", "s", "MAXLEN", "~", "0"]), int(1));
        assert_eq!(db.run(&["XLEN", "s"]), int(0));
        assert_eq!(db.run(&["XTRIM", "n", "MAXLEN", "0"]), int(0));
        // An empty stream still exists and keeps its last id.
        assert_eq!(db.run(&["XADD", "s", "5-0", "f", "v"]), err(SMALLER));
        assert_eq!(
            db.run(&["XADD", "s", "MAXLEN", "0", "6-0", "f", "v"]),
            bulk("6-0")
        );
        assert_eq!(db.run(&["XLEN", "s"]), int(0));
        // Approximate trimming removes whole 100-entry nodes only.
        for i in 1..=250 {
            db.run(&["XADD", "a", &format!("{i}-0"), "f", "v"]);
        }
        assert_eq!(db.run(&["XTRIM", "a", "MAXLEN", "~", "100"]), int(100));
        assert_eq!(
            db.run(&["XTRIM", "a", "MAXLEN", "~", "100", "LIMIT", "50"]),
            int(0)
        );
        assert_eq!(db.run(&["XLEN", "a"]), int(150));
    }

    #[test]
    fn xread_basics() {
        let mut db = TestDb::new();
        db.run(&["XADD", "s", "1-1", "a", "b"]);
        db.run(&["XADD", "s", "2-1", "c", "d"]);
        db.run(&["XADD", "t", "3-1", "e", "f"]);
        assert_eq!(
            db.run(&["XREAD", "COUNT", "1", "STREAMS", "s", "t", "0", "0"]),
            Frame::KeyedMap(vec![
                (bulk("s"), entries(&[("1-1", &["a", "b"])])),
                (bulk("t"), entries(&[("3-1", &["e", "f"])])),
            ])
        );
        assert_eq!(
            db.run(&["XREAD", "STREAMS", "s", "1-1"]),
            Frame::KeyedMap(vec![(bulk("s"), entries(&[("2-1", &["c", "d"])]))])
        );
        assert_eq!(db.run(&["XREAD", "STREAMS", "s", "$"]), Frame::NullArray);
        assert_eq!(
            db.run(&["XREAD", "BLOCK", "10", "STREAMS", "s", "nokey", "$", "0"]),
            Frame::NullArray
        );
        let unbalanced = err("ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.");
        assert_eq!(db.run(&["XREAD", "STREAMS", "s", "t", "0"]), unbalanced);
        assert_eq!(
            db.run(&["XREAD", "STREAMS", "s"]),
            err("ERR wrong number of arguments for 'xread' command")
        );
        assert_eq!(
            db.run(&["XREAD", "COUNT", "1", "foo", "bar"]),
            err("ERR syntax error")
        );
        assert_eq!(
            db.run(&["XREAD", "BLOCK", "-1", "STREAMS", "s", "0"]),
            err("ERR timeout is negative")
        );
        assert_eq!(
            db.run(&["XREAD", "BLOCK", "abc", "STREAMS", "s", "0"]),
            err("ERR timeout is not an integer or out of range")
        );
        assert_eq!(
            db.run(&["XREAD", "STREAMS", "s", ">"]),
            err("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.")
        );
        assert_eq!(db.run(&["XREAD", "STREAMS", "s", "+"]), err(INVALID));
        db.run(&["SET", "str", "x"]);
        assert_eq!(
            db.run(&["XREAD", "STREAMS", "nokey", "str", "0", "0"]),
            err(WRONGTYPE)
        );
        let keys = crate::cmd::lookup(b"xread").map(|s| {
            s.key_indexes(&[
                "xread".into(),
                "count".into(),
                "1".into(),
                "streams".into(),
                "a".into(),
                "b".into(),
                "0".into(),
                "0".into(),
            ])
        });
        assert_eq!(keys, Some(vec![4, 5]));
        // `$` resolution for the blocking retry.
        let args: Vec<bytes::Bytes> = ["XREAD", "BLOCK", "0", "STREAMS", "s", "x", "$", "$"]
            .iter()
            .map(|a| bytes::Bytes::copy_from_slice(a.as_bytes()))
            .collect();
        let ctx = crate::storage::Ctx::read(&db.engine, db.now_ms);
        let resolved = super::resolve_dollar_ids(&ctx, &args).unwrap_or_default();
        assert_eq!(resolved.get(6).map(|b| b.to_vec()), Some(b"2-1".to_vec()));
        assert_eq!(resolved.get(7).map(|b| b.to_vec()), Some(b"0-0".to_vec()));
    }

    fn kv(pairs: &[(&str, Frame)]) -> Frame {
        Frame::Map(pairs.iter().map(|(k, v)| (bulk(k), v.clone())).collect())
    }

    #[test]
    fn consumer_groups_flow() {
        let mut db = TestDb::new();
        let nokey = err("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.");
        assert_eq!(db.run(&["XGROUP", "CREATE", "s", "g", "$"]), nokey);
        assert_eq!(
            db.run(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]),
            ok()
        );
        assert_eq!(
            db.run(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]),
            err("BUSYGROUP Consumer Group name already exists")
        );
        assert_eq!(
            db.run(&["XGROUP", "CREATE", "s", "g2", "0", "ENTRIESREAD", "-5"]),
            err("ERR value for ENTRIESREAD must be positive or -1")
        );
        assert_eq!(
            db.run(&["XGROUP", "CREATE", "s", "g2", "0", "foo"]),
            err("ERR unknown subcommand or wrong number of arguments for 'CREATE'. Try XGROUP HELP.")
        );
        assert_eq!(
            db.run(&["XGROUP", "CREATE", "s", "g2", "abc"]),
            err(INVALID)
        );
        assert_eq!(
            db.run(&["XGROUP", "SETID", "s", "nog", "0"]),
            err("NOGROUP No such consumer group 'nog' for key name 's'")
        );
        assert_eq!(
            db.run(&["XGROUP", "CREATE", "s"]),
            err("ERR wrong number of arguments for 'xgroup|create' command")
        );
        assert_eq!(
            db.run(&["XGROUP", "foo", "s", "g"]),
            err("ERR unknown subcommand 'foo'. Try XGROUP HELP.")
        );
        assert_eq!(
            db.run(&["XGROUP", "CREATECONSUMER", "s", "g", "c1"]),
            int(1)
        );
        assert_eq!(
            db.run(&["XGROUP", "CREATECONSUMER", "s", "g", "c1"]),
            int(0)
        );
        assert_eq!(db.run(&["XGROUP", "DELCONSUMER", "s", "g", "c1"]), int(0));
        assert_eq!(db.run(&["XGROUP", "DESTROY", "s", "g"]), int(1));
        assert_eq!(db.run(&["XGROUP", "DESTROY", "s", "g"]), int(0));
        assert_eq!(db.run(&["XGROUP", "DESTROY", "nokey", "g"]), nokey);

        db.run(&["XADD", "s", "1-1", "a", "1"]);
        db.run(&["XADD", "s", "2-1", "b", "2"]);
        assert_eq!(db.run(&["XGROUP", "CREATE", "s", "g", "0"]), ok());
        let e1 = entries(&[("1-1", &["a", "1"])]);
        let e2 = entries(&[("2-1", &["b", "2"])]);
        let of = |e: &Frame| Frame::KeyedMap(vec![(bulk("s"), e.clone())]);
        assert_eq!(
            db.run(&[
                "XREADGROUP",
                "GROUP",
                "g",
                "c1",
                "COUNT",
                "1",
                "STREAMS",
                "s",
                ">"
            ]),
            of(&e1)
        );
        assert_eq!(
            db.run(&["XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", ">"]),
            of(&e2)
        );
        assert_eq!(
            db.run(&["XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", ">"]),
            Frame::NullArray
        );
        assert_eq!(
            db.run(&["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", "0"]),
            of(&e1)
        );
        let c = |name: &str, n: &str| Frame::Array(vec![bulk(name), bulk(n)]);
        assert_eq!(
            db.run(&["XPENDING", "s", "g"]),
            Frame::Array(vec![
                int(2),
                bulk("1-1"),
                bulk("2-1"),
                Frame::Array(vec![c("c1", "1"), c("c2", "1")])
            ])
        );
        db.now_ms += 7;
        let p = |id: &str, name: &str, idle: i64, n: i64| {
            Frame::Array(vec![bulk(id), bulk(name), int(idle), int(n)])
        };
        assert_eq!(
            db.run(&["XPENDING", "s", "g", "-", "+", "10"]),
            Frame::Array(vec![p("1-1", "c1", 7, 2), p("2-1", "c2", 7, 1)])
        );
        assert_eq!(
            db.run(&["XPENDING", "s", "g", "-", "+", "10", "c1"]),
            Frame::Array(vec![p("1-1", "c1", 7, 2)])
        );
        assert_eq!(
            db.run(&["XPENDING", "s", "g", "IDLE", "8", "-", "+", "10"]),
            arr(&[])
        );
        assert_eq!(
            db.run(&["XPENDING", "s", "g", "-", "+", "10", "nobody"]),
            arr(&[])
        );
        assert_eq!(
            db.run(&["XPENDING", "s", "nog"]),
            err("NOGROUP No such key 's' or consumer group 'nog'")
        );
        assert_eq!(
            db.run(&["XPENDING", "s", "g", "-", "+"]),
            err("ERR syntax error")
        );
        assert_eq!(
            db.run(&["XPENDING", "s", "g", "-", "+", "abc"]),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(db.run(&["XACK", "s", "g", "1-1", "9-9"]), int(1));
        assert_eq!(db.run(&["XACK", "s", "g", "abc"]), err(INVALID));
        assert_eq!(db.run(&["XACK", "s", "nog", "abc"]), int(0));
        assert_eq!(
            db.run(&["XINFO", "GROUPS", "s"]),
            Frame::Array(vec![kv(&[
                ("name", bulk("g")),
                ("consumers", int(2)),
                ("pending", int(1)),
                ("last-delivered-id", bulk("2-1")),
                ("entries-read", int(2)),
                ("lag", int(0)),
            ])])
        );
        assert_eq!(
            db.run(&["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", "$"]),
            err("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.")
        );
        assert_eq!(
            db.run(&["XREADGROUP", "GROUP", "nog", "c1", "STREAMS", "s", ">"]),
            err("NOGROUP No such key 's' or consumer group 'nog' in XREADGROUP with GROUP option")
        );
        assert_eq!(db.run(&["XDEL", "s", "2-1"]), int(1));
        assert_eq!(
            db.run(&["XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", "0"]),
            of(&Frame::Array(vec![Frame::Array(vec![
                bulk("2-1"),
                Frame::NullArray
            ])]))
        );
        assert_eq!(db.run(&["XGROUP", "DELCONSUMER", "s", "g", "c2"]), int(1));
        assert_eq!(
            db.run(&["XPENDING", "s", "g"]),
            Frame::Array(vec![int(0), Frame::Null, Frame::Null, Frame::NullArray])
        );
        assert_eq!(
            db.run(&[
                "XREADGROUP",
                "GROUP",
                "g",
                "c1",
                "NOACK",
                "STREAMS",
                "s",
                "0"
            ]),
            of(&arr(&[]))
        );
        assert_eq!(
            db.run(&["XINFO", "CONSUMERS", "s", "g"]),
            Frame::Array(vec![kv(&[
                ("name", bulk("c1")),
                ("pending", int(0)),
                ("idle", int(0))
            ])])
        );
        assert_eq!(
            db.run(&["XINFO", "CONSUMERS", "s", "nog"]),
            err("NOGROUP No such consumer group 'nog' for key name 's'")
        );
        assert_eq!(
            db.run(&["XINFO", "STREAM", "s"]),
            kv(&[
                ("length", int(1)),
                ("radix-tree-keys", int(1)),
                ("radix-tree-nodes", int(2)),
                ("last-generated-id", bulk("2-1")),
                ("max-deleted-entry-id", bulk("2-1")),
                ("entries-added", int(2)),
                ("recorded-first-entry-id", bulk("1-1")),
                ("groups", int(1)),
                ("first-entry", entry("1-1", &["a", "1"])),
                ("last-entry", entry("1-1", &["a", "1"])),
            ])
        );
        assert_eq!(
            db.run(&["XINFO", "STREAM", "nokey"]),
            err("ERR no such key")
        );
        assert_eq!(
            db.run(&["XINFO", "GROUPS"]),
            err("ERR wrong number of arguments for 'xinfo|groups' command")
        );
    }

    #[test]
    fn xinfo_stream_full() {
        let mut db = TestDb::new();
        let t0 = db.now_ms as i64;
        for (id, f, v) in [("1-1", "a", "1"), ("1-2", "b", "2"), ("2-1", "c", "3")] {
            db.run(&["XADD", "s", id, f, v]);
        }
        db.run(&["XADD", "s", "3-1", "d", "4"]);
        db.run(&["XGROUP", "CREATE", "s", "g2", "0"]);
        db.run(&["XGROUP", "CREATE", "s", "g1", "0"]);
        db.run(&["XGROUP", "CREATE", "s", "g3", "$"]);
        db.run(&["XGROUP", "CREATECONSUMER", "s", "g3", "idle"]);
        db.run(&[
            "XREADGROUP",
            "GROUP",
            "g1",
            "c2",
            "COUNT",
            "2",
            "STREAMS",
            "s",
            ">",
        ]);
        db.now_ms += 5;
        db.run(&[
            "XREADGROUP",
            "GROUP",
            "g1",
            "c1",
            "COUNT",
            "1",
            "STREAMS",
            "s",
            ">",
        ]);
        db.now_ms += 5;
        // Re-delivers c2's history: delivery count 2, delivery time t0 + 10.
        db.run(&["XREADGROUP", "GROUP", "g1", "c2", "STREAMS", "s", "0"]);
        db.run(&["XREADGROUP", "GROUP", "g2", "c1", "STREAMS", "s", ">"]);
        db.run(&["XDEL", "s", "1-2"]);
        let cpel = |id: &str, t: i64, n: i64| Frame::Array(vec![bulk(id), int(t), int(n)]);
        let gpel = |id: &str, c: &str, t: i64, n: i64| {
            Frame::Array(vec![bulk(id), bulk(c), int(t), int(n)])
        };
        let consumer = |name: &str, seen: i64, pending: Vec<Frame>, count: i64| {
            kv(&[
                ("name", bulk(name)),
                ("seen-time", int(seen)),
                ("pel-count", int(count)),
                ("pending", Frame::Array(pending)),
            ])
        };
        let full = |count: Option<usize>| {
            let cap = |v: Vec<Frame>| match count {
                Some(n) => v.into_iter().take(n).collect(),
                None => v,
            };
            let all = entries(&[
                ("1-1", &["a", "1"]),
                ("2-1", &["c", "3"]),
                ("3-1", &["d", "4"]),
            ]);
            let Frame::Array(all) = all else {
                unreachable!()
            };
            kv(&[
                ("length", int(3)),
                ("radix-tree-keys", int(1)),
                ("radix-tree-nodes", int(2)),
                ("last-generated-id", bulk("3-1")),
                ("max-deleted-entry-id", bulk("1-2")),
                ("entries-added", int(4)),
                ("recorded-first-entry-id", bulk("1-1")),
                ("entries", Frame::Array(cap(all))),
                (
                    "groups",
                    Frame::Array(vec![
                        kv(&[
                            ("name", bulk("g1")),
                            ("last-delivered-id", bulk("2-1")),
                            ("entries-read", int(3)),
                            ("lag", int(1)),
                            ("pel-count", int(3)),
                            (
                                "pending",
                                Frame::Array(cap(vec![
                                    gpel("1-1", "c2", t0 + 10, 2),
                                    gpel("1-2", "c2", t0 + 10, 2),
                                    gpel("2-1", "c1", t0 + 5, 1),
                                ])),
                            ),
                            (
                                "consumers",
                                Frame::Array(vec![
                                    consumer("c1", t0 + 5, cap(vec![cpel("2-1", t0 + 5, 1)]), 1),
                                    consumer(
                                        "c2",
                                        t0 + 10,
                                        cap(vec![cpel("1-1", t0 + 10, 2), cpel("1-2", t0 + 10, 2)]),
                                        2,
                                    ),
                                ]),
                            ),
                        ]),
                        kv(&[
                            ("name", bulk("g2")),
                            ("last-delivered-id", bulk("3-1")),
                            ("entries-read", int(4)),
                            ("lag", int(0)),
                            ("pel-count", int(4)),
                            (
                                "pending",
                                Frame::Array(cap(["1-1", "1-2", "2-1", "3-1"]
                                    .iter()
                                    .map(|id| gpel(id, "c1", t0 + 10, 1))
                                    .collect())),
                            ),
                            (
                                "consumers",
                                Frame::Array(vec![consumer(
                                    "c1",
                                    t0 + 10,
                                    cap(["1-1", "1-2", "2-1", "3-1"]
                                        .iter()
                                        .map(|id| cpel(id, t0 + 10, 1))
                                        .collect()),
                                    4,
                                )]),
                            ),
                        ]),
                        kv(&[
                            ("name", bulk("g3")),
                            ("last-delivered-id", bulk("3-1")),
                            ("entries-read", Frame::Null),
                            ("lag", int(0)),
                            ("pel-count", int(0)),
                            ("pending", arr(&[])),
                            (
                                "consumers",
                                Frame::Array(vec![consumer("idle", t0, vec![], 0)]),
                            ),
                        ]),
                    ]),
                ),
            ])
        };
        assert_eq!(db.run(&["XINFO", "STREAM", "s", "FULL"]), full(None));
        assert_eq!(
            db.run(&["XINFO", "STREAM", "s", "full", "COUNT", "0"]),
            full(None)
        );
        assert_eq!(
            db.run(&["XINFO", "STREAM", "s", "FULL", "count", "-5"]),
            full(None)
        );
        assert_eq!(
            db.run(&["XINFO", "STREAM", "s", "FULL", "COUNT", "1"]),
            full(Some(1))
        );
        assert_eq!(
            db.run(&["XINFO", "STREAM", "s", "FULL", "COUNT", "2"]),
            full(Some(2))
        );

        // The default COUNT is 10.
        for i in 1..=12 {
            db.run(&["XADD", "big", &format!("{i}-0"), "f", "v"]);
        }
        let Frame::Map(m) = db.run(&["XINFO", "STREAM", "big", "FULL"]) else {
            panic!("not a map")
        };
        assert!(matches!(&m[7], (k, Frame::Array(e)) if *k == bulk("entries") && e.len() == 10));

        db.run(&["XADD", "e", "1-1", "a", "1"]);
        db.run(&["XDEL", "e", "1-1"]);
        assert_eq!(
            db.run(&["XINFO", "STREAM", "e", "FULL"]),
            kv(&[
                ("length", int(0)),
                ("radix-tree-keys", int(0)),
                ("radix-tree-nodes", int(1)),
                ("last-generated-id", bulk("1-1")),
                ("max-deleted-entry-id", bulk("1-1")),
                ("entries-added", int(1)),
                ("recorded-first-entry-id", bulk("0-0")),
                ("entries", arr(&[])),
                ("groups", arr(&[])),
            ])
        );

        let syntax = err(
            "ERR unknown subcommand or wrong number of arguments for 'STREAM'. Try XINFO HELP.",
        );
        assert_eq!(db.run(&["XINFO", "STREAM", "s", "FULL", "COUNT"]), syntax);
        assert_eq!(db.run(&["XINFO", "STREAM", "s", "FULLX"]), syntax);
        assert_eq!(
            db.run(&["XINFO", "STREAM", "s", "FULL", "CNT", "1"]),
            syntax
        );
        assert_eq!(
            db.run(&["XINFO", "STREAM", "s", "FULL", "COUNT", "1", "x"]),
            syntax
        );
        assert_eq!(
            db.run(&["XINFO", "STREAM", "s", "FULL", "COUNT", "x"]),
            err("ERR value is not an integer or out of range")
        );
        // The key is looked up before the options are parsed.
        assert_eq!(
            db.run(&["XINFO", "STREAM", "n", "FULL", "x"]),
            err("ERR no such key")
        );
        db.run(&["SET", "w", "x"]);
        assert_eq!(
            db.run(&["XINFO", "STREAM", "w", "FULL", "x"]),
            err(WRONGTYPE)
        );
    }

    #[test]
    fn xsetid_rules() {
        let mut db = TestDb::new();
        assert_eq!(db.run(&["XSETID", "nokey", "1-1"]), err("ERR no such key"));
        db.run(&["XADD", "s", "3-0", "f", "v"]);
        assert_eq!(
            db.run(&["XSETID", "s", "2-0"]),
            err("ERR The ID specified in XSETID is smaller than the target stream top item")
        );
        assert_eq!(
            db.run(&["XSETID", "s", "5-5", "ENTRIESADDED", "-1"]),
            err("ERR entries_added must be positive")
        );
        assert_eq!(
            db.run(&["XSETID", "s", "5-5", "ENTRIESADDED", "0"]),
            err("ERR The entries_added specified in XSETID is smaller than the target stream length")
        );
        assert_eq!(
            db.run(&["XSETID", "s", "5-5", "MAXDELETEDID", "6-0"]),
            err("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id")
        );
        assert_eq!(
            db.run(&[
                "XSETID",
                "s",
                "5-5",
                "ENTRIESADDED",
                "9",
                "MAXDELETEDID",
                "1-0"
            ]),
            ok()
        );
        assert_eq!(db.run(&["XADD", "s", "5-5", "f", "v"]), err(SMALLER));
        assert_eq!(db.run(&["XADD", "s", "5-*", "f", "v"]), bulk("5-6"));
        assert_eq!(
            db.run(&["XSETID", "s", "9-0", "foo"]),
            err("ERR syntax error")
        );
    }

    #[test]
    fn xclaim_and_xautoclaim() {
        let mut db = TestDb::new();
        db.run(&["XADD", "s", "1-1", "a", "1"]);
        db.run(&["XADD", "s", "2-1", "b", "2"]);
        db.run(&["XADD", "s", "3-1", "c", "3"]);
        db.run(&["XGROUP", "CREATE", "s", "g", "0"]);
        db.run(&["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", ">"]);
        assert_eq!(
            db.run(&["XCLAIM", "s", "g", "c2", "0", "1-1", "9-9"]),
            Frame::Array(vec![entry("1-1", &["a", "1"])])
        );
        assert_eq!(
            db.run(&["XCLAIM", "s", "g", "c2", "0", "2-1", "JUSTID"]),
            arr(&["2-1"])
        );
        assert_eq!(
            db.run(&["XCLAIM", "s", "g", "c2", "abc", "1-1"]),
            err("ERR Invalid min-idle-time argument for XCLAIM")
        );
        assert_eq!(
            db.run(&["XCLAIM", "s", "g", "c2", "0", "1-1", "foo"]),
            err("ERR Unrecognized XCLAIM option 'foo'")
        );
        assert_eq!(
            db.run(&["XCLAIM", "s", "g", "c2", "0", "1-1", "IDLE", "abc"]),
            err("ERR Invalid IDLE option argument for XCLAIM")
        );
        assert_eq!(
            db.run(&["XCLAIM", "s", "nog", "c2", "0", "1-1"]),
            err("NOGROUP No such key 's' or consumer group 'nog'")
        );
        assert_eq!(
            db.run(&[
                "XCLAIM",
                "s",
                "g",
                "c2",
                "0",
                "1-1",
                "RETRYCOUNT",
                "5",
                "JUSTID"
            ]),
            arr(&["1-1"])
        );
        // Too recently delivered for a min-idle of 10ms.
        assert_eq!(db.run(&["XCLAIM", "s", "g", "c3", "10", "1-1"]), arr(&[]));
        db.now_ms += 4;
        let p = |id: &str, name: &str, idle: i64, n: i64| {
            Frame::Array(vec![bulk(id), bulk(name), int(idle), int(n)])
        };
        assert_eq!(
            db.run(&["XPENDING", "s", "g", "-", "+", "10"]),
            Frame::Array(vec![
                p("1-1", "c2", 4, 5),
                p("2-1", "c2", 4, 1),
                p("3-1", "c1", 4, 1)
            ])
        );
        db.run(&["XDEL", "s", "3-1"]);
        assert_eq!(
            db.run(&["XAUTOCLAIM", "s", "g", "c3", "0", "-", "COUNT", "1"]),
            Frame::Array(vec![
                bulk("2-1"),
                Frame::Array(vec![entry("1-1", &["a", "1"])]),
                arr(&[])
            ])
        );
        assert_eq!(
            db.run(&[
                "XAUTOCLAIM",
                "s",
                "g",
                "c3",
                "0",
                "(1-1",
                "COUNT",
                "5",
                "JUSTID"
            ]),
            Frame::Array(vec![bulk("0-0"), arr(&["2-1"]), arr(&["3-1"])])
        );
        assert_eq!(
            db.run(&["XAUTOCLAIM", "s", "g", "c3", "0", "-", "COUNT", "0"]),
            err("ERR COUNT must be > 0")
        );
        assert_eq!(
            db.run(&["XAUTOCLAIM", "s", "g", "c3", "abc", "-"]),
            err("ERR Invalid min-idle-time argument for XAUTOCLAIM")
        );
        assert_eq!(
            db.run(&["XAUTOCLAIM", "s", "g", "c3", "0", "-", "foo"]),
            err("ERR syntax error")
        );
        assert_eq!(
            db.run(&["XAUTOCLAIM", "s", "nog", "c3", "0", "-"]),
            err("NOGROUP No such key 's' or consumer group 'nog'")
        );
        assert_eq!(
            db.run(&["XCLAIM", "s", "g", "c4", "0", "3-1", "FORCE"]),
            arr(&[])
        );
        db.run(&["XADD", "s", "4-1", "d", "4"]);
        assert_eq!(
            db.run(&["XCLAIM", "s", "g", "c4", "0", "4-1", "FORCE"]),
            Frame::Array(vec![entry("4-1", &["d", "4"])])
        );
        assert_eq!(
            db.run(&["XPENDING", "s", "g", "-", "+", "10"]),
            Frame::Array(vec![
                p("1-1", "c3", 0, 6),
                p("2-1", "c3", 0, 1),
                p("4-1", "c4", 0, 2)
            ])
        );
    }
}
