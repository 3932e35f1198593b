//! Generic keyspace commands: they work on keys of every type.

use bytes::Bytes;

use super::args::{cmd_name, is, parse_i64, parse_i64_opt};
use super::{flag, spec, CmdError, CmdResult, CommandSpec, Kind};
use crate::protocol::Frame;
use crate::storage::encoding::{prefix_end, sub_prefix, Cf, DataType, Meta};
use crate::storage::Ctx;
use crate::types::keyspace::{
    decode_cursor, duplicate, glob_match, parse_cursor, raw_meta, separator_cursor, walk_meta,
};

const W: u32 = flag::WRITE;
const R: u32 = flag::READONLY;
const F: u32 = flag::FAST;

pub const COMMANDS: &[CommandSpec] = &[
    spec("del", -2, W, (1, -1, 1), Kind::Write(del)),
    spec("unlink", -2, W | F, (1, -1, 1), Kind::Write(del)),
    spec("exists", -2, R | F, (1, -1, 1), Kind::Read(exists)),
    spec("touch", -2, R | F, (1, -1, 1), Kind::Read(exists)),
    spec("type", 2, R | F, (1, 1, 1), Kind::Read(type_cmd)),
    spec("rename", 3, W, (1, 2, 1), Kind::Write(rename)),
    spec("renamenx", 3, W | F, (1, 2, 1), Kind::Write(rename)),
    spec("copy", -3, W | flag::DENYOOM, (1, 2, 1), Kind::Write(copy)),
    spec("keys", 2, R, (0, 0, 0), Kind::Read(keys)),
    spec("scan", -2, R, (0, 0, 0), Kind::Read(scan)),
    spec("randomkey", 1, R, (0, 0, 0), Kind::Read(randomkey)),
    spec("dbsize", 1, R | F, (0, 0, 0), Kind::Read(dbsize)),
    spec("flushdb", -1, W, (0, 0, 0), Kind::Write(flush)),
    spec("flushall", -1, W, (0, 0, 0), Kind::Write(flush)),
    spec("expire", -3, W | F, (1, 1, 1), Kind::Write(expire)),
    spec("pexpire", -3, W | F, (1, 1, 1), Kind::Write(expire)),
    spec("expireat", -3, W | F, (1, 1, 1), Kind::Write(expire)),
    spec("pexpireat", -3, W | F, (1, 1, 1), Kind::Write(expire)),
    spec("ttl", 2, R | F, (1, 1, 1), Kind::Read(ttl)),
    spec("pttl", 2, R | F, (1, 1, 1), Kind::Read(ttl)),
    spec("expiretime", 2, R | F, (1, 1, 1), Kind::Read(ttl)),
    spec("pexpiretime", 2, R | F, (1, 1, 1), Kind::Read(ttl)),
    spec("persist", 2, W | F, (1, 1, 1), Kind::Write(persist)),
    spec("object", -2, R, (2, 2, 1), Kind::Read(object)),
];

fn del(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut n = 0;
    for key in &args[1..] {
        if ctx.delete_key(key)? {
            n += 1;
        }
    }
    Ok(Frame::Integer(n))
}

/// EXISTS and TOUCH: how many of the arguments name live keys (repeats count again).
fn exists(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut n = 0;
    for key in &args[1..] {
        if ctx.meta(key)?.is_some() {
            n += 1;
        }
    }
    Ok(Frame::Integer(n))
}

fn type_cmd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(Frame::Simple(
        ctx.meta(&args[1])?
            .map_or("none", |m| m.dtype.name())
            .to_string(),
    ))
}

/// Removes any record `key` has (live or expired) before a new value is written there.
fn clear(ctx: &mut Ctx, key: &[u8]) -> Result<(), CmdError> {
    if raw_meta(ctx, key)?.is_some() {
        ctx.delete_key(key)?;
    }
    Ok(())
}

fn rename(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let nx = is(&args[0], "renamenx");
    let (src, dst) = (&args[1], &args[2]);
    let Some(m) = ctx.meta(src)? else {
        return Err(CmdError::NoSuchKey);
    };
    if src == dst {
        return Ok(if nx { Frame::Integer(0) } else { Frame::ok() });
    }
    if nx && ctx.meta(dst)?.is_some() {
        return Ok(Frame::Integer(0));
    }
    clear(ctx, dst)?;
    duplicate(ctx, src, &m, dst, m.expire_ms)?;
    ctx.delete_key(src)?;
    Ok(if nx { Frame::Integer(1) } else { Frame::ok() })
}

fn copy(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (src, dst) = (&args[1], &args[2]);
    let mut replace = false;
    let mut i = 3;
    while i < args.len() {
        if is(&args[i], "replace") {
            replace = true;
        } else if is(&args[i], "db") && i + 1 < args.len() {
            let db = parse_i64(&args[i + 1])?;
            if db < i32::MIN as i64 || db > i32::MAX as i64 {
                return Err(CmdError::NotInteger);
            }
            if !(0..16).contains(&db) {
                return Err(CmdError::err("DB index is out of range"));
            }
            if db != 0 {
                return Err(CmdError::err(
                    "Copying to another database is not allowed in cluster mode",
                ));
            }
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if src == dst {
        return Err(CmdError::err("source and destination objects are the same"));
    }
    let Some(m) = ctx.meta(src)? else {
        return Ok(Frame::Integer(0));
    };
    if ctx.meta(dst)?.is_some() && !replace {
        return Ok(Frame::Integer(0));
    }
    clear(ctx, dst)?;
    duplicate(ctx, src, &m, dst, m.expire_ms)?;
    Ok(Frame::Integer(1))
}

fn keys(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let pattern = &args[1][..];
    let all = pattern == b"*";
    let now = ctx.now_ms();
    let mut out = Vec::new();
    walk_meta(ctx, &[], |user, _, m| {
        if !m.is_expired(now) && (all || glob_match(pattern, user, false)) {
            out.push(Frame::Bulk(Bytes::copy_from_slice(user)));
        }
        Ok(true)
    })?;
    Ok(Frame::Array(out))
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]. See `types::keyspace` for the
/// cursor: it names a position in key order, so it survives any writes between calls.
fn scan(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let cursor = parse_cursor(&args[1]).ok_or_else(|| CmdError::err("invalid cursor"))?;
    let mut count: i64 = 10;
    let mut pattern: Option<&[u8]> = None;
    let mut typename: Option<&[u8]> = None;
    let mut i = 2;
    while i < args.len() {
        let more = i + 1 < args.len();
        if is(&args[i], "count") && more {
            count = parse_i64(&args[i + 1])?;
            if count < 1 {
                return Err(CmdError::Syntax);
            }
        } else if is(&args[i], "match") && more {
            let p = &args[i + 1][..];
            pattern = if p == b"*" { None } else { Some(p) };
        } else if is(&args[i], "type") && more {
            typename = Some(&args[i + 1][..]);
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    let now = ctx.now_ms();
    let mut found = Vec::new();
    let mut next = 0u64;
    if let Some(start) = decode_cursor(cursor) {
        let mut examined: i64 = 0;
        let mut last: Vec<u8> = Vec::new();
        walk_meta(ctx, &start, |user, mk, m| {
            if examined >= count {
                if let Some(c) = separator_cursor(&last, mk) {
                    next = c;
                    return Ok(false);
                }
            }
            examined += 1;
            last.clear();
            last.extend_from_slice(mk);
            if m.is_expired(now) {
                return Ok(true);
            }
            if let Some(t) = typename {
                if !t.eq_ignore_ascii_case(m.dtype.name().as_bytes()) {
                    return Ok(true);
                }
            }
            if let Some(p) = pattern {
                if !glob_match(p, user, false) {
                    return Ok(true);
                }
            }
            found.push(Frame::Bulk(Bytes::copy_from_slice(user)));
            Ok(true)
        })?;
    }
    Ok(Frame::Array(vec![
        Frame::Bulk(Bytes::from(next.to_string())),
        Frame::Array(found),
    ]))
}

/// A live key picked at a random position of the keyspace (deterministically from the
/// context's random source); nil when there is none.
fn randomkey(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let r = ctx.rand_u64();
    let (first, last) = ctx.slot_range();
    let slot = first + (r % (u64::from(last - first) + 1)) as u16;
    let mut pos = slot.to_be_bytes().to_vec();
    pos.extend_from_slice(&ctx.rand_u64().to_be_bytes());
    let mut found = first_live(ctx, &pos, None)?;
    if found.is_none() {
        found = first_live(ctx, &[], Some(&pos))?;
    }
    Ok(Frame::bulk_or_null(found))
}

/// The first live key at or after meta key `from` (and before `until`).
fn first_live(ctx: &Ctx, from: &[u8], until: Option<&[u8]>) -> Result<Option<Vec<u8>>, CmdError> {
    let now = ctx.now_ms();
    let mut found = None;
    walk_meta(ctx, from, |user, mk, m| {
        if until.is_some_and(|u| mk >= u) {
            return Ok(false);
        }
        if m.is_expired(now) {
            return Ok(true);
        }
        found = Some(user.to_vec());
        Ok(false)
    })?;
    Ok(found)
}

fn dbsize(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let now = ctx.now_ms();
    let mut n = 0;
    walk_meta(ctx, &[], |_, _, m| {
        if !m.is_expired(now) {
            n += 1;
        }
        Ok(true)
    })?;
    Ok(Frame::Integer(n))
}

/// FLUSHDB / FLUSHALL [ASYNC|SYNC]: deletes every key (collections leave gc records, so
/// the work done here is one record per key).
fn flush(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 2 || (args.len() == 2 && !is(&args[1], "sync") && !is(&args[1], "async")) {
        return Err(CmdError::Syntax);
    }
    let mut lower: Vec<u8> = Vec::new();
    loop {
        let mut chunk: Vec<Vec<u8>> = Vec::new();
        let mut last = Vec::new();
        walk_meta(ctx, &lower, |user, mk, _| {
            chunk.push(user.to_vec());
            last = mk.to_vec();
            Ok(chunk.len() < 1024)
        })?;
        for key in &chunk {
            ctx.delete_key(key)?;
        }
        if chunk.len() < 1024 {
            break;
        }
        last.push(0);
        lower = last;
    }
    Ok(Frame::ok())
}

/// EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT key time [NX|XX|GT|LT].
fn expire(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let name = cmd_name(args);
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for opt in &args[3..] {
        if is(opt, "nx") {
            nx = true;
        } else if is(opt, "xx") {
            xx = true;
        } else if is(opt, "gt") {
            gt = true;
        } else if is(opt, "lt") {
            lt = true;
        } else {
            return Err(CmdError::err(format!(
                "Unsupported option {}",
                String::from_utf8_lossy(opt)
            )));
        }
    }
    if nx && (xx || gt || lt) {
        return Err(CmdError::err(
            "NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if gt && lt {
        return Err(CmdError::err(
            "GT and LT options at the same time are not compatible",
        ));
    }
    let mut when = parse_i64(&args[2])?;
    let invalid = || CmdError::InvalidExpire(name.clone());
    if name == "expire" || name == "expireat" {
        when = when.checked_mul(1000).ok_or_else(invalid)?;
    }
    let base: i64 = if name == "expire" || name == "pexpire" {
        ctx.now_ms() as i64
    } else {
        0
    };
    when = when.checked_add(base).ok_or_else(invalid)?;
    let key = &args[1];
    let Some(mut m) = ctx.meta(key)? else {
        return Ok(Frame::Integer(0));
    };
    let current: i64 = if m.expire_ms == 0 {
        -1
    } else {
        m.expire_ms as i64
    };
    if (nx && current != -1)
        || (xx && current == -1)
        || (gt && (when <= current || current == -1))
        || (lt && current != -1 && when >= current)
    {
        return Ok(Frame::Integer(0));
    }
    if when <= ctx.now_ms() as i64 {
        ctx.delete_key(key)?;
    } else {
        m.expire_ms = when as u64;
        ctx.put_meta(key, &mut m)?;
    }
    Ok(Frame::Integer(1))
}

/// TTL, PTTL, EXPIRETIME, PEXPIRETIME.
fn ttl(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let name = cmd_name(args);
    let Some(m) = ctx.meta(&args[1])? else {
        return Ok(Frame::Integer(-2));
    };
    if m.expire_ms == 0 {
        return Ok(Frame::Integer(-1));
    }
    let absolute = name.ends_with("expiretime");
    let ms = name.starts_with('p');
    let v = if absolute {
        m.expire_ms as i64
    } else {
        (m.expire_ms as i64)
            .saturating_sub(ctx.now_ms() as i64)
            .max(0)
    };
    Ok(Frame::Integer(if ms {
        v
    } else {
        v.saturating_add(500) / 1000
    }))
}

fn persist(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    match ctx.meta(&args[1])? {
        Some(mut m) if m.expire_ms != 0 => {
            m.expire_ms = 0;
            ctx.put_meta(&args[1], &mut m)?;
            Ok(Frame::Integer(1))
        }
        _ => Ok(Frame::Integer(0)),
    }
}

const OBJECT_HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
];

fn object(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = String::from_utf8_lossy(&args[1]).to_lowercase();
    let want = match sub.as_str() {
        "help" => 2,
        "encoding" | "freq" | "idletime" | "refcount" => 3,
        _ => {
            return Err(CmdError::err(format!(
                "unknown subcommand '{}'. Try OBJECT HELP.",
                String::from_utf8_lossy(&args[1])
            )))
        }
    };
    if args.len() != want {
        return Err(CmdError::WrongArity(format!("object|{sub}")));
    }
    if sub == "help" {
        return Ok(Frame::Array(
            OBJECT_HELP
                .iter()
                .map(|l| Frame::Simple(l.to_string()))
                .collect(),
        ));
    }
    let Some(m) = ctx.meta(&args[2])? else {
        return Ok(Frame::Null);
    };
    match sub.as_str() {
        "encoding" => Ok(Frame::bulk(encoding_of(ctx, &args[2], &m)?)),
        "freq" => Err(CmdError::err(
            "An LFU maxmemory policy is not selected, access frequency not tracked. Please note \
             that when switching between policies at runtime LRU and LFU data will take some \
             time to adjust.",
        )),
        // Access times are not tracked: every key looks just used.
        "idletime" => Ok(Frame::Integer(0)),
        _ => {
            let shared = m.dtype == DataType::String
                && parse_i64_opt(&m.value).is_some_and(|v| (0..10000).contains(&v));
            Ok(Frame::Integer(if shared { 2147483647 } else { 1 }))
        }
    }
}

/// The encoding Redis 7.0 would most likely use for this value, judged from its contents with
/// the default size limits (Redis never converts back to a compact encoding, which is not
/// tracked here).
fn encoding_of(ctx: &Ctx, key: &[u8], m: &Meta) -> Result<&'static str, CmdError> {
    Ok(match m.dtype {
        DataType::String => {
            if m.value.len() <= 20 && parse_i64_opt(&m.value).is_some() {
                "int"
            } else if m.value.len() <= 44 {
                "embstr"
            } else {
                "raw"
            }
        }
        DataType::List => "quicklist",
        DataType::Stream => "stream",
        DataType::Hash => {
            if m.size <= 128 && elements_all(ctx, key, m, |e, v| e.len() <= 64 && v.len() <= 64)? {
                "listpack"
            } else {
                "hashtable"
            }
        }
        DataType::Set => {
            if m.size <= 512 && elements_all(ctx, key, m, |e, _| parse_i64_opt(e).is_some())? {
                "intset"
            } else {
                "hashtable"
            }
        }
        DataType::ZSet => {
            if m.size <= 128 && elements_all(ctx, key, m, |e, _| e.len() <= 64)? {
                "listpack"
            } else {
                "skiplist"
            }
        }
    })
}

/// Whether every element record (element, value) of the collection satisfies `f`.
fn elements_all(
    ctx: &Ctx,
    key: &[u8],
    m: &Meta,
    f: impl Fn(&[u8], &[u8]) -> bool,
) -> Result<bool, CmdError> {
    let prefix = sub_prefix(key, m.version);
    let end = prefix_end(&prefix);
    let mut ok = true;
    ctx.scan(Cf::Sub, &prefix, &end, false, |k, v| {
        if !f(&k[prefix.len()..], v) {
            ok = false;
        }
        Ok(ok)
    })?;
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use crate::protocol::Frame;
    use crate::testutil::*;

    fn scan_all(db: &mut TestDb, extra: &[&str]) -> Vec<String> {
        let mut cursor = "0".to_string();
        let mut out = Vec::new();
        loop {
            let mut cmd = vec!["SCAN", cursor.as_str()];
            cmd.extend_from_slice(extra);
            let Frame::Array(parts) = db.run(&cmd) else {
                panic!("bad scan reply");
            };
            let Frame::Bulk(c) = &parts[0] else { panic!() };
            let Frame::Array(keys) = &parts[1] else {
                panic!()
            };
            for k in keys {
                if let Frame::Bulk(k) = k {
                    out.push(String::from_utf8_lossy(k).to_string());
                }
            }
            cursor = String::from_utf8_lossy(c).to_string();
            if cursor == "0" {
                break;
            }
        }
        out
    }

    #[test]
    fn del_exists_type_touch() {
        let mut db = TestDb::new();
        db.run(&["SET", "a", "1"]);
        db.run(&["SET", "b", "2"]);
        assert_eq!(db.run(&["EXISTS", "a", "a", "c"]), int(2));
        assert_eq!(db.run(&["TOUCH", "a", "c"]), int(1));
        assert_eq!(db.run(&["TYPE", "a"]), Frame::Simple("string".into()));
        assert_eq!(db.run(&["TYPE", "c"]), Frame::Simple("none".into()));
        assert_eq!(db.run(&["DEL", "a", "b", "c"]), int(2));
        assert_eq!(db.run(&["UNLINK", "a"]), int(0));
        assert_eq!(db.run(&["DBSIZE"]), int(0));
        assert_eq!(
            db.run(&["DEL"]),
            err("ERR wrong number of arguments for 'del' command")
        );
    }

    #[test]
    fn expire_family() {
        let mut db = TestDb::new();
        db.run(&["SET", "k", "v"]);
        assert_eq!(db.run(&["TTL", "k"]), int(-1));
        assert_eq!(db.run(&["TTL", "nokey"]), int(-2));
        assert_eq!(db.run(&["EXPIRE", "k", "100", "XX"]), int(0));
        assert_eq!(db.run(&["EXPIRE", "k", "100", "GT"]), int(0));
        assert_eq!(db.run(&["EXPIRE", "k", "100", "NX"]), int(1));
        assert_eq!(db.run(&["EXPIRE", "k", "200", "NX"]), int(0));
        assert_eq!(db.run(&["EXPIRE", "k", "50", "GT"]), int(0));
        assert_eq!(db.run(&["EXPIRE", "k", "500", "GT"]), int(1));
        assert_eq!(db.run(&["EXPIRE", "k", "600", "LT"]), int(0));
        assert_eq!(db.run(&["TTL", "k"]), int(500));
        assert_eq!(db.run(&["PTTL", "k"]), int(500_000));
        let now = db.now_ms as i64;
        assert_eq!(db.run(&["PEXPIRETIME", "k"]), int(now + 500_000));
        assert_eq!(
            db.run(&["EXPIRETIME", "k"]),
            int((now + 500_000 + 500) / 1000)
        );
        db.now_ms += 1400;
        assert_eq!(db.run(&["TTL", "k"]), int(499));
        assert_eq!(db.run(&["PERSIST", "k"]), int(1));
        assert_eq!(db.run(&["PERSIST", "k"]), int(0));
        assert_eq!(db.run(&["TTL", "k"]), int(-1));
        assert_eq!(
            db.run(&["EXPIRE", "k", "100", "NX", "XX"]),
            err("ERR NX and XX, GT or LT options at the same time are not compatible")
        );
        assert_eq!(
            db.run(&["EXPIRE", "k", "100", "GT", "LT"]),
            err("ERR GT and LT options at the same time are not compatible")
        );
        assert_eq!(
            db.run(&["EXPIRE", "k", "100", "foo"]),
            err("ERR Unsupported option foo")
        );
        assert_eq!(
            db.run(&["EXPIRE", "k", "9223372036854775807"]),
            err("ERR invalid expire time in 'expire' command")
        );
        assert_eq!(
            db.run(&["PEXPIRE", "k", "9223372036854775807"]),
            err("ERR invalid expire time in 'pexpire' command")
        );
        assert_eq!(db.run(&["PEXPIREAT", "k", "9223372036854775807"]), int(1));
        assert_eq!(db.run(&["EXPIRE", "k", "-1"]), int(1));
        assert_eq!(db.run(&["EXISTS", "k"]), int(0));
        assert_eq!(db.run(&["EXPIRE", "k", "10"]), int(0));
        db.run(&["SET", "k", "v"]);
        let at = (db.now_ms / 1000 + 100).to_string();
        assert_eq!(db.run(&["EXPIREAT", "k", &at]), int(1));
        assert!(matches!(db.run(&["TTL", "k"]), Frame::Integer(99 | 100)));
    }

    #[test]
    fn rename_and_copy_strings() {
        let mut db = TestDb::new();
        assert_eq!(db.run(&["RENAME", "nokey", "x"]), err("ERR no such key"));
        assert_eq!(
            db.run(&["RENAME", "nokey", "nokey"]),
            err("ERR no such key")
        );
        db.run(&["SET", "a", "1", "EX", "100"]);
        assert_eq!(db.run(&["RENAME", "a", "a"]), ok());
        assert_eq!(db.run(&["RENAMENX", "a", "a"]), int(0));
        assert_eq!(db.run(&["RENAME", "a", "b"]), ok());
        assert_eq!(db.run(&["EXISTS", "a"]), int(0));
        assert_eq!(db.run(&["GET", "b"]), bulk("1"));
        assert_eq!(db.run(&["TTL", "b"]), int(100));
        db.run(&["SET", "c", "3"]);
        assert_eq!(db.run(&["RENAMENX", "b", "c"]), int(0));
        assert_eq!(db.run(&["RENAMENX", "b", "d"]), int(1));
        assert_eq!(db.run(&["COPY", "d", "c"]), int(0));
        assert_eq!(db.run(&["COPY", "d", "c", "REPLACE"]), int(1));
        assert_eq!(db.run(&["GET", "c"]), bulk("1"));
        assert_eq!(db.run(&["TTL", "c"]), int(100));
        assert_eq!(db.run(&["COPY", "nokey", "e"]), int(0));
        assert_eq!(
            db.run(&["COPY", "d", "d"]),
            err("ERR source and destination objects are the same")
        );
        assert_eq!(db.run(&["COPY", "d", "e", "DB", "0"]), int(1));
        assert_eq!(
            db.run(&["COPY", "d", "f", "DB", "1"]),
            err("ERR Copying to another database is not allowed in cluster mode")
        );
        assert_eq!(
            db.run(&["COPY", "d", "f", "DB", "16"]),
            err("ERR DB index is out of range")
        );
        assert_eq!(
            db.run(&["COPY", "d", "f", "DB", "x"]),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(db.run(&["COPY", "d", "f", "foo"]), err("ERR syntax error"));
    }

    #[test]
    fn rename_and_copy_collections_copy_elements() {
        use crate::storage::encoding::{sub_key, Cf, DataType, Meta};
        use crate::storage::Ctx;
        let mut db = TestDb::new();
        // Build a collection directly (the hash commands live elsewhere).
        {
            let mut ctx = Ctx::write(&db.engine);
            ctx.begin_op(1000, db.now_ms, 1);
            let v = ctx.new_version();
            let mut m = Meta::new_collection(DataType::Hash, v);
            m.size = 2;
            ctx.put(Cf::Sub, sub_key(b"h", v, b"f1"), b"v1".to_vec())
                .unwrap();
            ctx.put(Cf::Sub, sub_key(b"h", v, b"f2"), b"v2".to_vec())
                .unwrap();
            ctx.put(Cf::Score, sub_key(b"h", v, b"s"), b"x".to_vec())
                .unwrap();
            ctx.put_meta(b"h", &mut m).unwrap();
            db.engine.write(ctx.into_batch()).unwrap();
        }
        assert_eq!(db.run(&["COPY", "h", "h2"]), int(1));
        assert_eq!(db.run(&["RENAME", "h", "h3"]), ok());
        assert_eq!(db.run(&["TYPE", "h3"]), Frame::Simple("hash".into()));
        assert_eq!(db.run(&["OBJECT", "ENCODING", "h3"]), bulk("listpack"));
        let ctx = Ctx::read(&db.engine, db.now_ms);
        for key in [&b"h2"[..], b"h3"] {
            let m = ctx.meta(key).unwrap().unwrap();
            assert_eq!(m.size, 2);
            assert_eq!(
                ctx.get(Cf::Sub, &sub_key(key, m.version, b"f2")).unwrap(),
                Some(b"v2".to_vec())
            );
            assert_eq!(
                ctx.get(Cf::Score, &sub_key(key, m.version, b"s")).unwrap(),
                Some(b"x".to_vec())
            );
        }
        assert!(ctx.meta(b"h").unwrap().is_none());
        drop(ctx);
        // Overwriting the collection with a string leaves a gc record for its elements.
        assert_eq!(db.run(&["SET", "h3", "s"]), ok());
        assert_eq!(db.run(&["TYPE", "h3"]), Frame::Simple("string".into()));
    }

    #[test]
    fn keys_scan_dbsize_randomkey_flush() {
        let mut db = TestDb::new();
        assert_eq!(db.run(&["RANDOMKEY"]), Frame::Null);
        for i in 0..300 {
            db.run(&["SET", &format!("key:{i}"), "v"]);
        }
        db.run(&["SET", "other", "v"]);
        db.run(&["SET", "gone", "v", "PX", "10"]);
        db.now_ms += 20;
        assert_eq!(db.run(&["DBSIZE"]), int(301));
        let Frame::Array(k) = db.run(&["KEYS", "key:1?"]) else {
            panic!()
        };
        assert_eq!(k.len(), 10);
        let Frame::Array(k) = db.run(&["KEYS", "*"]) else {
            panic!()
        };
        assert_eq!(k.len(), 301);
        let mut all = scan_all(&mut db, &[]);
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 301);
        let some = scan_all(&mut db, &["MATCH", "key:2*", "COUNT", "7"]);
        assert_eq!(some.len(), 111);
        assert_eq!(
            scan_all(&mut db, &["TYPE", "STRING", "COUNT", "1000"]).len(),
            301
        );
        assert_eq!(scan_all(&mut db, &["TYPE", "hash"]).len(), 0);
        assert_eq!(db.run(&["SCAN", "abc"]), err("ERR invalid cursor"));
        assert_eq!(
            db.run(&["SCAN", "0", "COUNT", "0"]),
            err("ERR syntax error")
        );
        assert_eq!(db.run(&["SCAN", "0", "MATCH"]), err("ERR syntax error"));
        assert!(matches!(db.run(&["RANDOMKEY"]), Frame::Bulk(_)));
        assert_eq!(db.run(&["FLUSHALL", "foo"]), err("ERR syntax error"));
        assert_eq!(db.run(&["FLUSHDB", "ASYNC"]), ok());
        assert_eq!(db.run(&["DBSIZE"]), int(0));
        assert_eq!(db.run(&["RANDOMKEY"]), Frame::Null);
    }

    #[test]
    fn scan_survives_writes_between_calls() {
        let mut db = TestDb::new();
        // Keys sharing long prefixes within one slot, plus keys spread over slots.
        for i in 0..100 {
            db.run(&["SET", &format!("{{tag}}:session:{i}"), "v"]);
            db.run(&["SET", &format!("k{i}"), "v"]);
        }
        let mut cursor = "0".to_string();
        let mut seen = std::collections::HashSet::new();
        let mut round = 0;
        loop {
            let Frame::Array(parts) = db.run(&["SCAN", &cursor, "COUNT", "5"]) else {
                panic!()
            };
            let Frame::Bulk(c) = &parts[0] else { panic!() };
            let Frame::Array(keys) = &parts[1] else {
                panic!()
            };
            for k in keys {
                if let Frame::Bulk(k) = k {
                    seen.insert(String::from_utf8_lossy(k).to_string());
                }
            }
            // Churn: delete keys already returned and add new ones.
            round += 1;
            db.run(&["SET", &format!("added:{round}"), "v"]);
            cursor = String::from_utf8_lossy(c).to_string();
            if cursor == "0" {
                break;
            }
        }
        for i in 0..100 {
            assert!(seen.contains(&format!("{{tag}}:session:{i}")));
            assert!(seen.contains(&format!("k{i}")));
        }
    }

    #[test]
    fn object_subcommands() {
        let mut db = TestDb::new();
        db.run(&["SET", "n", "123"]);
        db.run(&["SET", "s", "hello"]);
        db.run(&["SET", "big", &"x".repeat(45)]);
        db.run(&["SET", "huge", "12345678901234567890"]);
        assert_eq!(db.run(&["OBJECT", "ENCODING", "n"]), bulk("int"));
        assert_eq!(db.run(&["OBJECT", "ENCODING", "s"]), bulk("embstr"));
        assert_eq!(db.run(&["OBJECT", "ENCODING", "big"]), bulk("raw"));
        assert_eq!(db.run(&["OBJECT", "ENCODING", "huge"]), bulk("embstr"));
        assert_eq!(db.run(&["OBJECT", "ENCODING", "nokey"]), Frame::Null);
        assert_eq!(db.run(&["OBJECT", "REFCOUNT", "n"]), int(2147483647));
        assert_eq!(db.run(&["OBJECT", "REFCOUNT", "s"]), int(1));
        assert_eq!(db.run(&["OBJECT", "IDLETIME", "s"]), int(0));
        assert!(db.run(&["OBJECT", "FREQ", "s"]).is_error());
        assert_eq!(
            db.run(&["OBJECT", "foo"]),
            err("ERR unknown subcommand 'foo'. Try OBJECT HELP.")
        );
        assert_eq!(
            db.run(&["OBJECT", "ENCODING"]),
            err("ERR wrong number of arguments for 'object|encoding' command")
        );
        let Frame::Array(lines) = db.run(&["OBJECT", "HELP"]) else {
            panic!()
        };
        assert_eq!(lines.len(), 15);
    }

    #[test]
    fn overwriting_an_expired_collection_leaves_a_gc_record() {
        use crate::storage::encoding::{sub_prefix, Cf};
        use crate::storage::Ctx;
        let mut db = TestDb::new();
        crate::types::keyspace::make_hash(&db, 1_000_000, b"h", &[(b"f", b"v")]);
        let version = Ctx::read(&db.engine, db.now_ms)
            .meta(b"h")
            .unwrap()
            .unwrap()
            .version;
        assert_eq!(db.run(&["PEXPIRE", "h", "10"]), int(1));
        db.now_ms += 20;
        assert_eq!(db.run(&["SET", "h", "s"]), ok());
        let ctx = Ctx::read(&db.engine, db.now_ms);
        assert!(ctx
            .get(Cf::Gc, &sub_prefix(b"h", version))
            .unwrap()
            .is_some());
        drop(ctx);
        assert_eq!(db.run(&["GET", "h"]), bulk("s"));
        assert_eq!(db.run(&["DBSIZE"]), int(1));
    }
}
