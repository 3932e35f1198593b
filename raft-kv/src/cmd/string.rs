//! String commands.

use bytes::Bytes;

use super::args::{cmd_name, is, parse_i64, parse_i64_opt};
use super::{flag, spec, CmdError, CmdResult, CommandSpec, Kind};
use crate::protocol::Frame;
use crate::storage::encoding::{DataType, Meta};
use crate::storage::Ctx;
use crate::types::keyspace::clear_for_overwrite;
use crate::types::long_double::LongDouble;

/// Redis' proto-max-bulk-len: no string may grow past this.
pub const MAX_STRING_LEN: usize = 512 * 1024 * 1024;

pub const COMMANDS: &[CommandSpec] = &[
    spec(
        "get",
        2,
        flag::READONLY | flag::FAST,
        (1, 1, 1),
        Kind::Read(get),
    ),
    spec(
        "set",
        -3,
        flag::WRITE | flag::DENYOOM,
        (1, 1, 1),
        Kind::Write(set),
    ),
    spec(
        "setnx",
        3,
        flag::WRITE | flag::DENYOOM | flag::FAST,
        (1, 1, 1),
        Kind::Write(setnx),
    ),
    spec(
        "setex",
        4,
        flag::WRITE | flag::DENYOOM,
        (1, 1, 1),
        Kind::Write(setex),
    ),
    spec(
        "psetex",
        4,
        flag::WRITE | flag::DENYOOM,
        (1, 1, 1),
        Kind::Write(setex),
    ),
    spec(
        "getset",
        3,
        flag::WRITE | flag::DENYOOM | flag::FAST,
        (1, 1, 1),
        Kind::Write(getset),
    ),
    spec(
        "getdel",
        2,
        flag::WRITE | flag::FAST,
        (1, 1, 1),
        Kind::Write(getdel),
    ),
    spec(
        "getex",
        -2,
        flag::WRITE | flag::FAST,
        (1, 1, 1),
        Kind::Write(getex),
    ),
    spec(
        "mget",
        -2,
        flag::READONLY | flag::FAST,
        (1, -1, 1),
        Kind::Read(mget),
    ),
    spec(
        "mset",
        -3,
        flag::WRITE | flag::DENYOOM,
        (1, -1, 2),
        Kind::Write(mset),
    ),
    spec(
        "msetnx",
        -3,
        flag::WRITE | flag::DENYOOM,
        (1, -1, 2),
        Kind::Write(mset),
    ),
    spec(
        "append",
        3,
        flag::WRITE | flag::DENYOOM | flag::FAST,
        (1, 1, 1),
        Kind::Write(append),
    ),
    spec(
        "strlen",
        2,
        flag::READONLY | flag::FAST,
        (1, 1, 1),
        Kind::Read(strlen),
    ),
    spec(
        "getrange",
        4,
        flag::READONLY,
        (1, 1, 1),
        Kind::Read(getrange),
    ),
    spec("substr", 4, flag::READONLY, (1, 1, 1), Kind::Read(getrange)),
    spec(
        "setrange",
        4,
        flag::WRITE | flag::DENYOOM,
        (1, 1, 1),
        Kind::Write(setrange),
    ),
    spec(
        "incr",
        2,
        flag::WRITE | flag::DENYOOM | flag::FAST,
        (1, 1, 1),
        Kind::Write(incr),
    ),
    spec(
        "decr",
        2,
        flag::WRITE | flag::DENYOOM | flag::FAST,
        (1, 1, 1),
        Kind::Write(incr),
    ),
    spec(
        "incrby",
        3,
        flag::WRITE | flag::DENYOOM | flag::FAST,
        (1, 1, 1),
        Kind::Write(incr),
    ),
    spec(
        "decrby",
        3,
        flag::WRITE | flag::DENYOOM | flag::FAST,
        (1, 1, 1),
        Kind::Write(incr),
    ),
    spec(
        "incrbyfloat",
        3,
        flag::WRITE | flag::DENYOOM | flag::FAST,
        (1, 1, 1),
        Kind::Write(incrbyfloat),
    ),
    spec("lcs", -3, flag::READONLY, (1, 2, 1), Kind::Read(lcs)),
];

/// The string value of `key`; `WRONGTYPE` for other types.
pub fn get_string(ctx: &Ctx, key: &[u8]) -> Result<Option<Meta>, CmdError> {
    ctx.meta_of(key, DataType::String)
}

/// Stores a string value, replacing whatever `key` held; `expire_ms` 0 means no expiry.
pub fn put_string(
    ctx: &mut Ctx,
    key: &[u8],
    value: Vec<u8>,
    expire_ms: u64,
) -> Result<(), CmdError> {
    clear_for_overwrite(ctx, key)?;
    let mut m = Meta::new_string(value);
    m.expire_ms = expire_ms;
    ctx.put_meta(key, &mut m)
}

/// Checks that a string of `len + extra` bytes stays within proto-max-bulk-len.
pub fn check_string_length(len: u64, extra: u64) -> Result<(), CmdError> {
    match len.checked_add(extra) {
        Some(total) if total <= MAX_STRING_LEN as u64 => Ok(()),
        _ => Err(CmdError::StringTooLong),
    }
}

fn get(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(Frame::bulk_or_null(
        get_string(ctx, &args[1])?.map(|m| Bytes::from(m.value)),
    ))
}

/// Parses `EX s | PX ms | EXAT s | PXAT ms` (the keyword at `args[i]`) into an absolute
/// unix-ms deadline, with Redis' errors for non-positive or overflowing times.
pub fn parse_expire_option(
    ctx: &Ctx,
    cmd: &str,
    keyword: &[u8],
    value: &[u8],
) -> Result<u64, CmdError> {
    let n = parse_i64(value)?;
    if n <= 0 {
        return Err(CmdError::InvalidExpire(cmd.into()));
    }
    let now = ctx.now_ms() as i64;
    let at = if is(keyword, "ex") {
        n.checked_mul(1000).and_then(|ms| ms.checked_add(now))
    } else if is(keyword, "px") {
        n.checked_add(now)
    } else if is(keyword, "exat") {
        n.checked_mul(1000)
    } else {
        Some(n)
    };
    match at {
        Some(at) if at > 0 => Ok(at as u64),
        _ => Err(CmdError::InvalidExpire(cmd.into())),
    }
}

/// The options of SET (from `args[3]`) or GETEX (from `args[2]`), as Redis'
/// `parseExtendedStringArgumentsOrReply` accepts them: an expiry option may repeat (the last
/// wins) but not combine with another expiry kind, KEEPTTL or PERSIST.
#[derive(Default)]
struct StringOpts<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    /// The expiry keyword and its value.
    expire: Option<(&'a [u8], &'a [u8])>,
}

fn parse_string_opts(
    args: &[Bytes],
    from: usize,
    is_set: bool,
) -> Result<StringOpts<'_>, CmdError> {
    let mut o = StringOpts::default();
    let mut i = from;
    while i < args.len() {
        let a = &args[i][..];
        let next = args.get(i + 1);
        let exp_kind = o.expire.map(|(k, _)| k.to_ascii_lowercase());
        let other_expiry = |kw: &str| matches!(&exp_kind, Some(k) if k != kw.as_bytes());
        if is_set && is(a, "nx") && !o.xx {
            o.nx = true;
        } else if is_set && is(a, "xx") && !o.nx {
            o.xx = true;
        } else if is_set && is(a, "get") {
            o.get = true;
        } else if is_set && is(a, "keepttl") && !o.persist && exp_kind.is_none() {
            o.keepttl = true;
        } else if !is_set && is(a, "persist") && exp_kind.is_none() && !o.keepttl {
            o.persist = true;
        } else if let (true, Some(v)) = (
            ["ex", "px", "exat", "pxat"]
                .iter()
                .any(|kw| is(a, kw) && !other_expiry(kw))
                && !o.keepttl
                && !o.persist,
            next,
        ) {
            o.expire = Some((a, &v[..]));
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    Ok(o)
}

fn set(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let o = parse_string_opts(args, 3, true)?;
    let expire = match o.expire {
        Some((kw, v)) => Some(parse_expire_option(ctx, "set", kw, v)?),
        None => None,
    };
    let old = ctx.meta(key)?;
    if o.get {
        if let Some(m) = &old {
            if m.dtype != DataType::String {
                return Err(CmdError::WrongType);
            }
        }
    }
    let old_reply = || Frame::bulk_or_null(old.as_ref().map(|m| Bytes::copy_from_slice(&m.value)));
    if (o.nx && old.is_some()) || (o.xx && old.is_none()) {
        return Ok(if o.get { old_reply() } else { Frame::Null });
    }
    let expire_ms = match (expire, o.keepttl, &old) {
        (Some(at), _, _) => at,
        (None, true, Some(m)) => m.expire_ms,
        _ => 0,
    };
    let reply = if o.get { old_reply() } else { Frame::ok() };
    put_string(ctx, key, args[2].to_vec(), expire_ms)?;
    Ok(reply)
}

fn setnx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if ctx.meta(&args[1])?.is_some() {
        return Ok(Frame::Integer(0));
    }
    put_string(ctx, &args[1], args[2].to_vec(), 0)?;
    Ok(Frame::Integer(1))
}

/// SETEX key seconds value / PSETEX key milliseconds value.
fn setex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let name = cmd_name(args);
    let kw = if name == "psetex" { "px" } else { "ex" };
    let at = parse_expire_option(ctx, &name, kw.as_bytes(), &args[2])?;
    put_string(ctx, &args[1], args[3].to_vec(), at)?;
    Ok(Frame::ok())
}

fn getset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let old = get_string(ctx, &args[1])?;
    put_string(ctx, &args[1], args[2].to_vec(), 0)?;
    Ok(Frame::bulk_or_null(old.map(|m| Bytes::from(m.value))))
}

fn getdel(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let old = get_string(ctx, &args[1])?;
    if old.is_some() {
        ctx.delete_key(&args[1])?;
    }
    Ok(Frame::bulk_or_null(old.map(|m| Bytes::from(m.value))))
}

fn getex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let o = parse_string_opts(args, 2, false)?;
    let Some(mut m) = get_string(ctx, key)? else {
        return Ok(Frame::Null);
    };
    let expire = match o.expire {
        Some((kw, v)) => Some((
            parse_expire_option(ctx, "getex", kw, v)?,
            is(kw, "exat") || is(kw, "pxat"),
        )),
        None => None,
    };
    let reply = Frame::Bulk(Bytes::copy_from_slice(&m.value));
    match expire {
        Some((at, absolute)) if absolute && at <= ctx.now_ms() => {
            ctx.delete_key(key)?;
        }
        Some((at, _)) => {
            m.expire_ms = at;
            ctx.put_meta(key, &mut m)?;
        }
        None if o.persist && m.expire_ms != 0 => {
            m.expire_ms = 0;
            ctx.put_meta(key, &mut m)?;
        }
        None => {}
    }
    Ok(reply)
}

fn mget(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut out = Vec::with_capacity(args.len() - 1);
    for key in &args[1..] {
        out.push(match ctx.meta(key)? {
            Some(m) if m.dtype == DataType::String => Frame::Bulk(Bytes::from(m.value)),
            _ => Frame::Null,
        });
    }
    Ok(Frame::Array(out))
}

/// MSET and MSETNX.
fn mset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(CmdError::WrongArity(cmd_name(args)));
    }
    let nx = is(&args[0], "msetnx");
    if nx {
        for pair in args[1..].chunks(2) {
            if ctx.meta(&pair[0])?.is_some() {
                return Ok(Frame::Integer(0));
            }
        }
    }
    for pair in args[1..].chunks(2) {
        put_string(ctx, &pair[0], pair[1].to_vec(), 0)?;
    }
    Ok(if nx { Frame::Integer(1) } else { Frame::ok() })
}

fn append(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    match get_string(ctx, &args[1])? {
        None => {
            put_string(ctx, &args[1], args[2].to_vec(), 0)?;
            Ok(Frame::Integer(args[2].len() as i64))
        }
        Some(mut m) => {
            check_string_length(m.value.len() as u64, args[2].len() as u64)?;
            m.value.extend_from_slice(&args[2]);
            let n = m.value.len();
            ctx.put_meta(&args[1], &mut m)?;
            Ok(Frame::Integer(n as i64))
        }
    }
}

fn strlen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(Frame::Integer(
        get_string(ctx, &args[1])?.map_or(0, |m| m.value.len() as i64),
    ))
}

/// Redis' index normalisation for GETRANGE: the inclusive byte range, or `None` if empty.
pub fn normalize_range(mut start: i64, mut end: i64, len: i64) -> Option<(usize, usize)> {
    if start < 0 && end < 0 && start > end {
        return None;
    }
    if start < 0 {
        start = len.saturating_add(start);
    }
    if end < 0 {
        end = len.saturating_add(end);
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return None;
    }
    Some((start as usize, end as usize))
}

fn getrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let start = parse_i64(&args[2])?;
    let end = parse_i64(&args[3])?;
    let Some(m) = get_string(ctx, &args[1])? else {
        return Ok(Frame::Bulk(Bytes::new()));
    };
    Ok(Frame::Bulk(
        match normalize_range(start, end, m.value.len() as i64) {
            Some((s, e)) => Bytes::copy_from_slice(&m.value[s..=e]),
            None => Bytes::new(),
        },
    ))
}

fn setrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let offset = parse_i64(&args[2])?;
    if offset < 0 {
        return Err(CmdError::err("offset is out of range"));
    }
    let offset = offset as u64;
    let value = &args[3];
    let key = &args[1];
    match get_string(ctx, key)? {
        None => {
            if value.is_empty() {
                return Ok(Frame::Integer(0));
            }
            check_string_length(offset, value.len() as u64)?;
            let mut v = vec![0u8; offset as usize];
            v.extend_from_slice(value);
            let n = v.len();
            put_string(ctx, key, v, 0)?;
            Ok(Frame::Integer(n as i64))
        }
        Some(mut m) => {
            if value.is_empty() {
                return Ok(Frame::Integer(m.value.len() as i64));
            }
            check_string_length(offset, value.len() as u64)?;
            let off = offset as usize;
            let need = off + value.len();
            if m.value.len() < need {
                m.value.resize(need, 0);
            }
            m.value[off..need].copy_from_slice(value);
            let n = m.value.len();
            ctx.put_meta(key, &mut m)?;
            Ok(Frame::Integer(n as i64))
        }
    }
}

/// INCR, DECR, INCRBY, DECRBY.
fn incr(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let name = cmd_name(args);
    let by = match name.as_str() {
        "incr" => 1,
        "decr" => -1,
        "incrby" => parse_i64(&args[2])?,
        _ => {
            let n = parse_i64(&args[2])?;
            if n == i64::MIN {
                return Err(CmdError::err("decrement would overflow"));
            }
            -n
        }
    };
    let key = &args[1];
    let old = get_string(ctx, key)?;
    let cur = match &old {
        Some(m) => parse_i64_opt(&m.value).ok_or(CmdError::NotInteger)?,
        None => 0,
    };
    let new = cur.checked_add(by).ok_or(CmdError::Overflow)?;
    let digits = new.to_string().into_bytes();
    match old {
        Some(mut m) => {
            m.value = digits;
            ctx.put_meta(key, &mut m)?;
        }
        None => put_string(ctx, key, digits, 0)?,
    }
    Ok(Frame::Integer(new))
}

/// Redis' `getLongDoubleFromObjectOrReply`: `string2ld` into an exact x87 long double.
fn parse_long_double(b: &[u8]) -> Result<LongDouble, CmdError> {
    LongDouble::parse(b).ok_or(CmdError::NotFloat)
}

/// INCRBYFLOAT, computed in long double like Redis and printed as `ld2string(LD_STR_HUMAN)`.
fn incrbyfloat(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let old = get_string(ctx, key)?;
    let cur = match &old {
        Some(m) => parse_long_double(&m.value)?,
        None => LongDouble::ZERO,
    };
    let by = parse_long_double(&args[2])?;
    let v = cur.add(by);
    let nan_or_inf = || CmdError::err("increment would produce NaN or Infinity");
    if !v.is_finite() {
        return Err(nan_or_inf());
    }
    let text = v.to_human().ok_or_else(nan_or_inf)?.into_bytes();
    match old {
        Some(mut m) => {
            m.value = text.clone();
            ctx.put_meta(key, &mut m)?;
        }
        None => put_string(ctx, key, text.clone(), 0)?,
    }
    Ok(Frame::Bulk(Bytes::from(text)))
}

/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN], as Redis 7.0's `lcsCommand`.
fn lcs(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let a = lcs_value(ctx, &args[1])?;
    let b = lcs_value(ctx, &args[2])?;
    let mut getlen = false;
    let mut getidx = false;
    let mut withmatchlen = false;
    let mut minmatchlen: i64 = 0;
    let mut i = 3;
    while i < args.len() {
        let a = &args[i];
        if is(a, "idx") {
            getidx = true;
        } else if is(a, "len") {
            getlen = true;
        } else if is(a, "withmatchlen") {
            withmatchlen = true;
        } else if is(a, "minmatchlen") && i + 1 < args.len() {
            minmatchlen = parse_i64(&args[i + 1])?.max(0);
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if getidx && getlen {
        return Err(CmdError::err(
            "If you want both the length and indexes, please just use IDX.",
        ));
    }
    let cells = (a.len() as u64 + 1).saturating_mul(b.len() as u64 + 1);
    if cells.saturating_mul(4) > MAX_STRING_LEN as u64 {
        return Err(CmdError::err(
            "Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        ));
    }
    Ok(crate::types::string::lcs_reply(
        &a,
        &b,
        getlen,
        getidx,
        withmatchlen,
        minmatchlen as u64,
    ))
}

fn lcs_value(ctx: &Ctx, key: &[u8]) -> Result<Vec<u8>, CmdError> {
    match ctx.meta(key)? {
        None => Ok(Vec::new()),
        Some(m) if m.dtype == DataType::String => Ok(m.value),
        Some(_) => Err(CmdError::err(
            "The specified keys must contain string values",
        )),
    }
}

#[cfg(test)]
mod tests {
    use crate::testutil::*;

    #[test]
    fn set_get_with_options() {
        let mut db = TestDb::new();
        assert_eq!(db.run(&["SET", "k", "v"]), ok());
        assert_eq!(db.run(&["GET", "k"]), bulk("v"));
        assert_eq!(
            db.run(&["SET", "k", "w", "NX"]),
            crate::protocol::Frame::Null
        );
        assert_eq!(db.run(&["SET", "k", "w", "XX", "GET"]), bulk("v"));
        assert_eq!(db.run(&["GET", "k"]), bulk("w"));
        assert_eq!(
            db.run(&["SET", "k", "x", "NX", "XX"]),
            err("ERR syntax error")
        );
        assert_eq!(
            db.run(&["SET", "k", "x", "EX", "0"]),
            err("ERR invalid expire time in 'set' command")
        );
        assert_eq!(
            db.run(&["SET", "k", "x", "EX", "abc"]),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(db.run(&["SET", "k", "x", "PX", "100"]), ok());
        db.now_ms += 101;
        assert_eq!(db.run(&["GET", "k"]), crate::protocol::Frame::Null);
        assert_eq!(
            db.run(&["GET"]),
            err("ERR wrong number of arguments for 'get' command")
        );
    }

    #[test]
    fn set_option_grammar() {
        let mut db = TestDb::new();
        assert_eq!(db.run(&["SET", "k", "v", "EX", "10", "EX", "20"]), ok());
        assert_eq!(db.run(&["TTL", "k"]), int(20));
        assert_eq!(
            db.run(&["SET", "k", "v", "EX", "10", "PX", "100"]),
            err("ERR syntax error")
        );
        assert_eq!(
            db.run(&["SET", "k", "v", "KEEPTTL", "EX", "10"]),
            err("ERR syntax error")
        );
        assert_eq!(
            db.run(&["SET", "k", "v", "EX", "abc", "NX", "XX"]),
            err("ERR syntax error")
        );
        assert_eq!(
            db.run(&["SET", "k", "v", "NX", "NX"]),
            crate::protocol::Frame::Null
        );
        assert_eq!(db.run(&["SET", "k", "w", "KEEPTTL"]), ok());
        assert_eq!(db.run(&["TTL", "k"]), int(20));
        assert_eq!(db.run(&["SET", "k", "w", "GET", "GET"]), bulk("w"));
        assert_eq!(db.run(&["TTL", "k"]), int(-1));
        assert_eq!(
            db.run(&["SET", "k", "v", "EXAT", "9223372036854775807"]),
            err("ERR invalid expire time in 'set' command")
        );
    }

    #[test]
    fn setnx_setex_getset_getdel() {
        let mut db = TestDb::new();
        assert_eq!(db.run(&["SETNX", "k", "1"]), int(1));
        assert_eq!(db.run(&["SETNX", "k", "2"]), int(0));
        assert_eq!(db.run(&["SETEX", "k", "100", "3"]), ok());
        assert_eq!(db.run(&["TTL", "k"]), int(100));
        assert_eq!(db.run(&["PSETEX", "k", "1500", "4"]), ok());
        assert_eq!(db.run(&["PTTL", "k"]), int(1500));
        assert_eq!(
            db.run(&["SETEX", "k", "0", "v"]),
            err("ERR invalid expire time in 'setex' command")
        );
        assert_eq!(
            db.run(&["PSETEX", "k", "-1", "v"]),
            err("ERR invalid expire time in 'psetex' command")
        );
        assert_eq!(
            db.run(&["SETEX", "k", "abc", "v"]),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(db.run(&["GETSET", "k", "5"]), bulk("4"));
        assert_eq!(db.run(&["TTL", "k"]), int(-1));
        assert_eq!(
            db.run(&["GETSET", "new", "1"]),
            crate::protocol::Frame::Null
        );
        assert_eq!(db.run(&["GETDEL", "k"]), bulk("5"));
        assert_eq!(db.run(&["GETDEL", "k"]), crate::protocol::Frame::Null);
        assert_eq!(db.run(&["EXISTS", "k"]), int(0));
    }

    #[test]
    fn getex_options() {
        let mut db = TestDb::new();
        assert_eq!(
            db.run(&["GETEX", "nokey", "EX", "abc"]),
            crate::protocol::Frame::Null
        );
        db.run(&["SET", "s", "hello"]);
        assert_eq!(
            db.run(&["GETEX", "s", "EX", "abc"]),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(
            db.run(&["GETEX", "s", "PERSIST", "EX", "10"]),
            err("ERR syntax error")
        );
        assert_eq!(db.run(&["GETEX", "s", "KEEPTTL"]), err("ERR syntax error"));
        assert_eq!(
            db.run(&["GETEX", "s", "EX", "10", "EX", "20"]),
            bulk("hello")
        );
        assert_eq!(db.run(&["TTL", "s"]), int(20));
        assert_eq!(db.run(&["GETEX", "s"]), bulk("hello"));
        assert_eq!(db.run(&["TTL", "s"]), int(20));
        assert_eq!(db.run(&["GETEX", "s", "PERSIST"]), bulk("hello"));
        assert_eq!(db.run(&["TTL", "s"]), int(-1));
        assert_eq!(db.run(&["GETEX", "s", "PX", "5000"]), bulk("hello"));
        assert_eq!(db.run(&["PTTL", "s"]), int(5000));
        assert_eq!(db.run(&["GETEX", "s", "EXAT", "1"]), bulk("hello"));
        assert_eq!(db.run(&["EXISTS", "s"]), int(0));
    }

    #[test]
    fn mget_mset_msetnx() {
        let mut db = TestDb::new();
        assert_eq!(db.run(&["MSET", "a", "1", "b", "2"]), ok());
        assert_eq!(
            db.run(&["MSET", "a", "1", "b"]),
            err("ERR wrong number of arguments for 'mset' command")
        );
        assert_eq!(
            db.run(&["MSETNX", "a", "1", "b"]),
            err("ERR wrong number of arguments for 'msetnx' command")
        );
        assert_eq!(db.run(&["MSETNX", "a", "9", "c", "3"]), int(0));
        assert_eq!(db.run(&["MSETNX", "c", "3", "d", "4"]), int(1));
        db.run(&["SETBIT", "bits", "1", "1"]);
        assert_eq!(
            db.run(&["MGET", "a", "nokey", "d"]),
            crate::protocol::Frame::Array(vec![bulk("1"), crate::protocol::Frame::Null, bulk("4")])
        );
    }

    #[test]
    fn append_strlen_ranges() {
        let mut db = TestDb::new();
        assert_eq!(db.run(&["APPEND", "k", "Hello"]), int(5));
        assert_eq!(db.run(&["APPEND", "k", " World"]), int(11));
        assert_eq!(db.run(&["STRLEN", "k"]), int(11));
        assert_eq!(db.run(&["STRLEN", "nokey"]), int(0));
        assert_eq!(db.run(&["GETRANGE", "k", "0", "4"]), bulk("Hello"));
        assert_eq!(db.run(&["GETRANGE", "k", "-5", "-1"]), bulk("World"));
        assert_eq!(db.run(&["GETRANGE", "k", "-1", "-5"]), bulk(""));
        assert_eq!(db.run(&["GETRANGE", "k", "5", "3"]), bulk(""));
        assert_eq!(
            db.run(&["GETRANGE", "k", "-100", "100"]),
            bulk("Hello World")
        );
        assert_eq!(db.run(&["SUBSTR", "k", "6", "-1"]), bulk("World"));
        assert_eq!(db.run(&["GETRANGE", "nokey", "0", "-1"]), bulk(""));
        assert_eq!(
            db.run(&["GETRANGE", "k", "a", "1"]),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(db.run(&["SETRANGE", "k", "6", "Redis"]), int(11));
        assert_eq!(db.run(&["GET", "k"]), bulk("Hello Redis"));
        assert_eq!(db.run(&["SETRANGE", "k", "13", "!"]), int(14));
        assert_eq!(db.run(&["GET", "k"]), bulk("Hello Redis\0\0!"));
        assert_eq!(db.run(&["SETRANGE", "k", "1", ""]), int(14));
        assert_eq!(db.run(&["SETRANGE", "nokey", "5", ""]), int(0));
        assert_eq!(db.run(&["EXISTS", "nokey"]), int(0));
        assert_eq!(db.run(&["SETRANGE", "nokey", "2", "x"]), int(3));
        assert_eq!(
            db.run(&["SETRANGE", "k", "-1", "x"]),
            err("ERR offset is out of range")
        );
        assert_eq!(
            db.run(&["SETRANGE", "k", "536870912", "x"]),
            err("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
        );
        db.run(&["SET", "t", "v", "EX", "100"]);
        db.run(&["APPEND", "t", "w"]);
        assert_eq!(db.run(&["TTL", "t"]), int(100));
    }

    #[test]
    fn incr_family() {
        let mut db = TestDb::new();
        assert_eq!(db.run(&["INCR", "n"]), int(1));
        assert_eq!(db.run(&["INCRBY", "n", "10"]), int(11));
        assert_eq!(db.run(&["DECR", "n"]), int(10));
        assert_eq!(db.run(&["DECRBY", "n", "20"]), int(-10));
        assert_eq!(
            db.run(&["INCRBY", "n", "abc"]),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(
            db.run(&["DECRBY", "n", "-9223372036854775808"]),
            err("ERR decrement would overflow")
        );
        db.run(&["SET", "n", "9223372036854775807"]);
        assert_eq!(
            db.run(&["INCR", "n"]),
            err("ERR increment or decrement would overflow")
        );
        db.run(&["SET", "s", " 1"]);
        assert_eq!(
            db.run(&["INCR", "s"]),
            err("ERR value is not an integer or out of range")
        );
        db.run(&["SET", "t", "5", "EX", "100"]);
        assert_eq!(db.run(&["INCR", "t"]), int(6));
        assert_eq!(db.run(&["TTL", "t"]), int(100));
        assert_eq!(db.run(&["GET", "t"]), bulk("6"));
    }

    #[test]
    fn incrbyfloat_formats_like_redis() {
        let mut db = TestDb::new();
        assert_eq!(db.run(&["INCRBYFLOAT", "f", "1"]), bulk("1"));
        assert_eq!(db.run(&["INCRBYFLOAT", "f", "0.25"]), bulk("1.25"));
        db.run(&["SET", "f", "10.5"]);
        assert_eq!(db.run(&["INCRBYFLOAT", "f", "0.1"]), bulk("10.6"));
        db.run(&["SET", "f", "17179869184"]);
        assert_eq!(db.run(&["INCRBYFLOAT", "f", "1.5"]), bulk("17179869185.5"));
        db.run(&["SET", "f", "1"]);
        assert_eq!(db.run(&["INCRBYFLOAT", "f", "-1.1"]), bulk("-0.1"));
        db.run(&["SET", "f", "5.0e3"]);
        assert_eq!(db.run(&["INCRBYFLOAT", "f", "2.0e2"]), bulk("5200"));
        assert_eq!(
            db.run(&["INCRBYFLOAT", "f", "abc"]),
            err("ERR value is not a valid float")
        );
        assert_eq!(
            db.run(&["INCRBYFLOAT", "f", "+inf"]),
            err("ERR increment would produce NaN or Infinity")
        );
        db.run(&["SET", "s", " 11"]);
        assert_eq!(
            db.run(&["INCRBYFLOAT", "s", "1"]),
            err("ERR value is not a valid float")
        );
    }

    #[test]
    fn incrbyfloat_is_exact_long_double() {
        let mut db = TestDb::new();
        assert_eq!(db.run(&["INCRBYFLOAT", "a", "0.1"]), bulk("0.1"));
        assert_eq!(db.run(&["INCRBYFLOAT", "a", "0.2"]), bulk("0.3"));
        assert_eq!(db.run(&["GET", "a"]), bulk("0.3"));
        db.run(&["SET", "b", "5.0e3"]);
        assert_eq!(db.run(&["INCRBYFLOAT", "b", "2.0e3"]), bulk("7000"));
        db.run(&["SET", "c", "3.0"]);
        assert_eq!(db.run(&["INCRBYFLOAT", "c", "-3.0"]), bulk("0"));
        // 64-bit significands: beyond f64, and exact ties round to even.
        db.run(&["SET", "d", "9007199254740993"]);
        assert_eq!(db.run(&["INCRBYFLOAT", "d", "0"]), bulk("9007199254740993"));
        db.run(&["SET", "d", "18446744073709551615"]);
        assert_eq!(
            db.run(&["INCRBYFLOAT", "d", "1"]),
            bulk("18446744073709551616")
        );
        db.run(&["SET", "e", "123456789.987654321"]);
        assert_eq!(
            db.run(&["INCRBYFLOAT", "e", "0"]),
            bulk("123456789.98765432099753525")
        );
        assert_eq!(
            db.run(&["INCRBYFLOAT", "f", "1e30"]),
            bulk("1000000000000000000024696061952")
        );
        assert_eq!(db.run(&["INCRBYFLOAT", "g", "-1e-20"]), bulk("0"));
        assert_eq!(db.run(&["INCRBYFLOAT", "h", "0x1.8p3"]), bulk("12"));
        // Long doubles reach ~1.19e4932: 1e4932 prints all of its 4933 integer digits.
        let crate::protocol::Frame::Bulk(big) = db.run(&["INCRBYFLOAT", "i", "1e4932"]) else {
            panic!("INCRBYFLOAT 1e4932 failed");
        };
        assert_eq!(big.len(), 4933);
        assert!(big.starts_with(b"1000000000000000000006018949387963891323"));
        assert_eq!(
            db.run(&["INCRBYFLOAT", "i", "1e4932"]),
            err("ERR increment would produce NaN or Infinity")
        );
        for bad in ["1e4933", "1e-4952", "nan", " 1", "1 ", "", "0x", "1e"] {
            assert_eq!(
                db.run(&["INCRBYFLOAT", "j", bad]),
                err("ERR value is not a valid float"),
                "{bad:?}"
            );
        }
        db.run(&["SET", "k", "inf"]);
        assert_eq!(
            db.run(&["INCRBYFLOAT", "k", "-inf"]),
            err("ERR increment would produce NaN or Infinity")
        );
    }

    #[test]
    fn lcs_variants() {
        use crate::protocol::Frame;
        let mut db = TestDb::new();
        db.run(&["SET", "x1", "ohmytext"]);
        db.run(&["SET", "x2", "mynewtext"]);
        assert_eq!(db.run(&["LCS", "x1", "x2"]), bulk("mytext"));
        assert_eq!(db.run(&["LCS", "x1", "x2", "LEN"]), int(6));
        assert_eq!(db.run(&["LCS", "x1", "nokey"]), bulk(""));
        let r = db.run(&["LCS", "x1", "x2", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"]);
        let pair = |a: i64, b: i64| Frame::Array(vec![int(a), int(b)]);
        assert_eq!(
            r,
            Frame::Map(vec![
                (
                    bulk("matches"),
                    Frame::Array(vec![Frame::Array(vec![pair(4, 7), pair(5, 8), int(4)])])
                ),
                (bulk("len"), int(6)),
            ])
        );
        assert_eq!(
            db.run(&["LCS", "x1", "x2", "IDX", "LEN"]),
            err("ERR If you want both the length and indexes, please just use IDX.")
        );
        assert_eq!(db.run(&["LCS", "x1", "x2", "foo"]), err("ERR syntax error"));
    }

    #[test]
    fn wrong_type_and_overwrite() {
        let mut db = TestDb::new();
        crate::types::keyspace::make_hash(&db, 1_000_000, b"h", &[(b"f", b"v")]);
        let wt = err("WRONGTYPE Operation against a key holding the wrong kind of value");
        for cmd in [
            &["GET", "h"][..],
            &["APPEND", "h", "x"],
            &["INCR", "h"],
            &["INCRBYFLOAT", "h", "1"],
            &["STRLEN", "h"],
            &["GETRANGE", "h", "0", "1"],
            &["SETRANGE", "h", "0", "x"],
            &["GETSET", "h", "x"],
            &["GETDEL", "h"],
            &["GETEX", "h"],
            &["SET", "h", "x", "GET"],
            &["SETBIT", "h", "0", "1"],
            &["GETBIT", "h", "0"],
            &["BITCOUNT", "h"],
            &["BITPOS", "h", "1"],
            &["BITOP", "AND", "d", "h"],
            &["BITFIELD", "h", "GET", "u8", "0"],
            &["PFADD", "h", "a"],
            &["PFCOUNT", "h"],
        ] {
            assert_eq!(db.run(cmd), wt, "{cmd:?}");
        }
        assert_eq!(
            db.run(&["LCS", "h", "x"]),
            err("ERR The specified keys must contain string values")
        );
        assert_eq!(db.run(&["SETNX", "h", "x"]), int(0));
        assert_eq!(
            db.run(&["MGET", "h"]),
            crate::protocol::Frame::Array(vec![crate::protocol::Frame::Null])
        );
        assert_eq!(db.run(&["SET", "h", "x"]), ok());
        assert_eq!(db.run(&["GET", "h"]), bulk("x"));
    }
}
