//! String commands.

use bytes::Bytes;

use super::args::{is, parse_i64};
use super::{flag, spec, CmdError, CmdResult, CommandSpec, Kind};
use crate::protocol::Frame;
use crate::storage::encoding::{DataType, Meta};
use crate::storage::Ctx;

/// Redis' proto-max-bulk-len: no string may grow past this.
pub const MAX_STRING_LEN: usize = 512 * 1024 * 1024;

pub const COMMANDS: &[CommandSpec] = &[
    spec("get", 2, flag::READONLY | flag::FAST, (1, 1, 1), Kind::Read(get)),
    spec("set", -3, flag::WRITE | flag::DENYOOM, (1, 1, 1), Kind::Write(set)),
];

/// The string value of `key`; `WRONGTYPE` for other types.
pub fn get_string(ctx: &Ctx, key: &[u8]) -> Result<Option<Meta>, CmdError> {
    ctx.meta_of(key, DataType::String)
}

/// Stores a string value, replacing whatever `key` held; `expire_ms` 0 means no expiry.
pub fn put_string(ctx: &mut Ctx, key: &[u8], value: Vec<u8>, expire_ms: u64) -> Result<(), CmdError> {
    if let Some(old) = ctx.meta(key)? {
        if old.dtype != DataType::String {
            ctx.delete_key(key)?;
        }
    }
    let mut m = Meta::new_string(value);
    m.expire_ms = expire_ms;
    ctx.put_meta(key, &mut m)
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

fn set(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let mut nx = false;
    let mut xx = false;
    let mut get = false;
    let mut keepttl = false;
    let mut expire: Option<u64> = None;
    let mut i = 3;
    while i < args.len() {
        let a = &args[i];
        if is(a, "nx") && !xx {
            nx = true;
        } else if is(a, "xx") && !nx {
            xx = true;
        } else if is(a, "get") {
            get = true;
        } else if is(a, "keepttl") && expire.is_none() {
            keepttl = true;
        } else if (is(a, "ex") || is(a, "px") || is(a, "exat") || is(a, "pxat"))
            && !keepttl
            && expire.is_none()
            && i + 1 < args.len()
        {
            expire = Some(parse_expire_option(ctx, "set", a, &args[i + 1])?);
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    let old = ctx.meta(key)?;
    if get {
        if let Some(m) = &old {
            if m.dtype != DataType::String {
                return Err(CmdError::WrongType);
            }
        }
    }
    let old_reply = || {
        Frame::bulk_or_null(
            old.as_ref()
                .map(|m| Bytes::copy_from_slice(&m.value)),
        )
    };
    if (nx && old.is_some()) || (xx && old.is_none()) {
        return Ok(if get { old_reply() } else { Frame::Null });
    }
    let expire_ms = match (expire, keepttl, &old) {
        (Some(at), _, _) => at,
        (None, true, Some(m)) => m.expire_ms,
        _ => 0,
    };
    let reply = if get { old_reply() } else { Frame::ok() };
    put_string(ctx, key, args[2].to_vec(), expire_ms)?;
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use crate::testutil::*;

    #[test]
    fn set_get_with_options() {
        let mut db = TestDb::new();
        assert_eq!(db.run(&["SET", "k", "v"]), ok());
        assert_eq!(db.run(&["GET", "k"]), bulk("v"));
        assert_eq!(db.run(&["SET", "k", "w", "NX"]), crate::protocol::Frame::Null);
        assert_eq!(db.run(&["SET", "k", "w", "XX", "GET"]), bulk("v"));
        assert_eq!(db.run(&["GET", "k"]), bulk("w"));
        assert_eq!(db.run(&["SET", "k", "x", "NX", "XX"]), err("ERR syntax error"));
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
}
