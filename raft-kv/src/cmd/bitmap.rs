//! Bitmap commands: bit-level access to string values.

use bytes::Bytes;

use super::args::{is, parse_i64, parse_i64_opt};
use super::string::{get_string, put_string, MAX_STRING_LEN};
use super::{flag, spec, CmdError, CmdResult, CommandSpec, Kind};
use crate::protocol::Frame;
use crate::storage::encoding::Meta;
use crate::storage::Ctx;
use crate::types::string::{
    count_bits, find_bit, get_bit, get_signed_field, get_unsigned_field, set_bit, set_field,
    signed_overflow, unsigned_overflow, Overflow,
};

pub const COMMANDS: &[CommandSpec] = &[
    spec(
        "setbit",
        4,
        flag::WRITE | flag::DENYOOM,
        (1, 1, 1),
        Kind::Write(setbit),
    ),
    spec(
        "getbit",
        3,
        flag::READONLY | flag::FAST,
        (1, 1, 1),
        Kind::Read(getbit),
    ),
    spec(
        "bitcount",
        -2,
        flag::READONLY,
        (1, 1, 1),
        Kind::Read(bitcount),
    ),
    spec("bitpos", -3, flag::READONLY, (1, 1, 1), Kind::Read(bitpos)),
    spec(
        "bitop",
        -4,
        flag::WRITE | flag::DENYOOM,
        (2, -1, 1),
        Kind::Write(bitop),
    ),
    spec(
        "bitfield",
        -2,
        flag::WRITE | flag::DENYOOM,
        (1, 1, 1),
        Kind::Write(bitfield),
    ),
    spec(
        "bitfield_ro",
        -2,
        flag::READONLY | flag::FAST,
        (1, 1, 1),
        Kind::Read(bitfield),
    ),
];

/// Redis' `getBitOffsetFromArgument`: a bit offset below 2^32 (512MB of bits); with `bits`
/// set, `#n` means n times the field width.
fn parse_bit_offset(arg: &[u8], bits: Option<u32>) -> Result<u64, CmdError> {
    let (hash, digits) = match (bits, arg.first()) {
        (Some(_), Some(b'#')) => (true, &arg[1..]),
        _ => (false, arg),
    };
    let mut v = parse_i64_opt(digits).ok_or(CmdError::BitOffset)?;
    if hash {
        v = v.wrapping_mul(bits.unwrap_or(1) as i64);
    }
    if v < 0 || (v >> 3) as u64 >= MAX_STRING_LEN as u64 {
        return Err(CmdError::BitOffset);
    }
    Ok(v as u64)
}

/// The string at `key` grown with zero bytes to hold bit `maxbit` (created if missing), as
/// Redis' `lookupStringForBitCommand`; the flag says whether it was created or grown.
fn string_for_bits(ctx: &Ctx, key: &[u8], maxbit: u64) -> Result<(Meta, bool, bool), CmdError> {
    let need = (maxbit >> 3) as usize + 1;
    match get_string(ctx, key)? {
        None => Ok((Meta::new_string(vec![0; need]), true, true)),
        Some(mut m) => {
            let grown = m.value.len() < need;
            if grown {
                m.value.resize(need, 0);
            }
            Ok((m, false, grown))
        }
    }
}

/// Writes back a string produced by `string_for_bits`.
fn store(ctx: &mut Ctx, key: &[u8], mut m: Meta, created: bool) -> Result<(), CmdError> {
    if created {
        put_string(ctx, key, m.value, 0)
    } else {
        ctx.put_meta(key, &mut m)
    }
}

fn setbit(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let offset = parse_bit_offset(&args[2], None)?;
    let bit_err = || CmdError::err("bit is not an integer or out of range");
    let on = parse_i64_opt(&args[3]).ok_or_else(bit_err)?;
    if on & !1 != 0 {
        return Err(bit_err());
    }
    let (mut m, created, grown) = string_for_bits(ctx, &args[1], offset)?;
    let old = get_bit(&m.value, offset);
    if created || grown || old != on as u8 {
        set_bit(&mut m.value, offset, on == 1);
        store(ctx, &args[1], m, created)?;
    }
    Ok(Frame::Integer(old as i64))
}

fn getbit(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let offset = parse_bit_offset(&args[2], None)?;
    let v = get_string(ctx, &args[1])?.map_or(0, |m| get_bit(&m.value, offset));
    Ok(Frame::Integer(v as i64))
}

/// Parses the optional `BYTE|BIT` unit at `args[i]`.
fn parse_unit(args: &[Bytes], i: usize) -> Result<bool, CmdError> {
    match args.get(i) {
        None => Ok(false),
        Some(a) if is(a, "bit") => Ok(true),
        Some(a) if is(a, "byte") => Ok(false),
        Some(_) => Err(CmdError::Syntax),
    }
}

/// Redis' range normalisation for BITCOUNT/BITPOS: the inclusive bit range, `None` if empty.
fn bit_range(mut start: i64, mut end: i64, len: u64, isbit: bool) -> Option<(u64, u64)> {
    let total = if isbit { len as i64 * 8 } else { len as i64 };
    if start < 0 {
        start = total.saturating_add(start);
    }
    if end < 0 {
        end = total.saturating_add(end);
    }
    start = start.max(0);
    end = end.max(0);
    if end >= total {
        end = total - 1;
    }
    if start > end {
        return None;
    }
    if isbit {
        Some((start as u64, end as u64))
    } else {
        Some((start as u64 * 8, end as u64 * 8 + 7))
    }
}

fn bitcount(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    // Redis 7.0 looks the key up before parsing the range: a missing key answers 0 and a
    // key of another type WRONGTYPE whatever the range arguments are.
    let Some(m) = get_string(ctx, &args[1])? else {
        return Ok(Frame::Integer(0));
    };
    let range = match args.len() {
        2 => None,
        4 | 5 => {
            let start = parse_i64(&args[2])?;
            let end = parse_i64(&args[3])?;
            let isbit = parse_unit(args, 4)?;
            Some((start, end, isbit))
        }
        _ => return Err(CmdError::Syntax),
    };
    let len = m.value.len() as u64;
    let bits = match range {
        None if len == 0 => None,
        None => Some((0, len * 8 - 1)),
        Some((start, end, _)) if start < 0 && end < 0 && start > end => None,
        Some((start, end, isbit)) => bit_range(start, end, len, isbit),
    };
    Ok(Frame::Integer(
        bits.map_or(0, |(lo, hi)| count_bits(&m.value, lo, hi)) as i64,
    ))
}

fn bitpos(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let bit = parse_i64(&args[2])?;
    if bit != 0 && bit != 1 {
        return Err(CmdError::err("The bit argument must be 1 or 0."));
    }
    let bit = bit as u8;
    let Some(m) = get_string(ctx, &args[1])? else {
        return Ok(Frame::Integer(if bit == 1 { -1 } else { 0 }));
    };
    let len = m.value.len() as u64;
    let (range, end_given) = match args.len() {
        3 => (
            if len == 0 {
                None
            } else {
                Some((0, len * 8 - 1))
            },
            false,
        ),
        4..=6 => {
            let start = parse_i64(&args[3])?;
            let isbit = parse_unit(args, 5)?;
            let (end, given) = if args.len() >= 5 {
                (parse_i64(&args[4])?, true)
            } else {
                (i64::MAX, false)
            };
            (bit_range(start, end, len, isbit), given)
        }
        _ => return Err(CmdError::Syntax),
    };
    let Some((lo, hi)) = range else {
        return Ok(Frame::Integer(-1));
    };
    Ok(Frame::Integer(match find_bit(&m.value, lo, hi, bit) {
        Some(p) => p as i64,
        None if bit == 0 && !end_given => hi as i64 + 1,
        None => -1,
    }))
}

fn bitop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    #[derive(PartialEq)]
    enum Op {
        And,
        Or,
        Xor,
        Not,
    }
    let op = if is(&args[1], "and") {
        Op::And
    } else if is(&args[1], "or") {
        Op::Or
    } else if is(&args[1], "xor") {
        Op::Xor
    } else if is(&args[1], "not") {
        Op::Not
    } else {
        return Err(CmdError::Syntax);
    };
    if op == Op::Not && args.len() != 4 {
        return Err(CmdError::err(
            "BITOP NOT must be called with a single source key.",
        ));
    }
    let mut srcs: Vec<Vec<u8>> = Vec::with_capacity(args.len() - 3);
    for key in &args[3..] {
        srcs.push(get_string(ctx, key)?.map(|m| m.value).unwrap_or_default());
    }
    let maxlen = srcs.iter().map(Vec::len).max().unwrap_or(0);
    let dest = &args[2];
    if maxlen == 0 {
        ctx.delete_key(dest)?;
        return Ok(Frame::Integer(0));
    }
    let mut out = vec![0u8; maxlen];
    for (i, byte) in out.iter_mut().enumerate() {
        let at = |s: &Vec<u8>| s.get(i).copied().unwrap_or(0);
        *byte = match op {
            Op::Not => !at(&srcs[0]),
            Op::And => srcs.iter().fold(0xff, |acc, s| acc & at(s)),
            Op::Or => srcs.iter().fold(0, |acc, s| acc | at(s)),
            Op::Xor => srcs.iter().fold(0, |acc, s| acc ^ at(s)),
        };
    }
    put_string(ctx, dest, out, 0)?;
    Ok(Frame::Integer(maxlen as i64))
}

#[derive(Clone, Copy)]
enum FieldOp {
    Get,
    Set(i64),
    Incr(i64),
}

struct Field {
    op: FieldOp,
    signed: bool,
    bits: u32,
    offset: u64,
    ow: Overflow,
}

fn parse_field_type(arg: &[u8]) -> Result<(bool, u32), CmdError> {
    let bad = || {
        CmdError::err(
            "Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but \
             i64 is.",
        )
    };
    let signed = match arg.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(bad()),
    };
    let bits = parse_i64_opt(&arg[1..]).ok_or_else(bad)?;
    if bits < 1 || (signed && bits > 64) || (!signed && bits > 63) {
        return Err(bad());
    }
    Ok((signed, bits as u32))
}

/// BITFIELD and BITFIELD_RO.
fn bitfield(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let readonly_cmd = is(&args[0], "bitfield_ro");
    let mut ops: Vec<Field> = Vec::new();
    let mut ow = Overflow::Wrap;
    let mut highest: Option<u64> = None;
    let mut j = 2;
    while j < args.len() {
        let rem = args.len() - j - 1;
        let sub = &args[j];
        let op = if is(sub, "get") && rem >= 2 {
            FieldOp::Get
        } else if is(sub, "set") && rem >= 3 {
            FieldOp::Set(0)
        } else if is(sub, "incrby") && rem >= 3 {
            FieldOp::Incr(0)
        } else if is(sub, "overflow") && rem >= 1 {
            let t = &args[j + 1];
            ow = if is(t, "wrap") {
                Overflow::Wrap
            } else if is(t, "sat") {
                Overflow::Sat
            } else if is(t, "fail") {
                Overflow::Fail
            } else {
                return Err(CmdError::err("Invalid OVERFLOW type specified"));
            };
            j += 2;
            continue;
        } else {
            return Err(CmdError::Syntax);
        };
        let (signed, bits) = parse_field_type(&args[j + 1])?;
        let offset = parse_bit_offset(&args[j + 2], Some(bits))?;
        let op = match op {
            FieldOp::Get => FieldOp::Get,
            FieldOp::Set(_) => FieldOp::Set(parse_i64(&args[j + 3])?),
            FieldOp::Incr(_) => FieldOp::Incr(parse_i64(&args[j + 3])?),
        };
        if !matches!(op, FieldOp::Get) {
            let top = offset + bits as u64 - 1;
            highest = Some(highest.map_or(top, |h| h.max(top)));
        }
        ops.push(Field {
            op,
            signed,
            bits,
            offset,
            ow,
        });
        j += if matches!(op, FieldOp::Get) { 3 } else { 4 };
    }
    let key = &args[1];
    let Some(maxbit) = highest else {
        // Only reads: a missing key reads as zeros.
        let value = get_string(ctx, key)?.map(|m| m.value).unwrap_or_default();
        return Ok(Frame::Array(
            ops.iter()
                .map(|f| Frame::Integer(read_field(&value, f)))
                .collect(),
        ));
    };
    if readonly_cmd {
        return Err(CmdError::err(
            "BITFIELD_RO only supports the GET subcommand",
        ));
    }
    let (mut m, created, _) = string_for_bits(ctx, key, maxbit)?;
    let mut out = Vec::with_capacity(ops.len());
    for f in &ops {
        let reply = match f.op {
            FieldOp::Get => Frame::Integer(read_field(&m.value, f)),
            FieldOp::Set(v) | FieldOp::Incr(v) => {
                let incr = matches!(f.op, FieldOp::Incr(_));
                let (ret, newval) = if f.signed {
                    let old = get_signed_field(&m.value, f.offset, f.bits);
                    let new = if incr {
                        match signed_overflow(old, v, f.bits, f.ow) {
                            Some(limit) => limit,
                            None => Some(old.wrapping_add(v)),
                        }
                    } else {
                        match signed_overflow(v, 0, f.bits, f.ow) {
                            Some(limit) => limit,
                            None => Some(v),
                        }
                    };
                    match new {
                        Some(n) => (Some(if incr { n } else { old }), Some(n as u64)),
                        None => (None, None),
                    }
                } else {
                    let old = get_unsigned_field(&m.value, f.offset, f.bits);
                    let new = if incr {
                        match unsigned_overflow(old, v, f.bits, f.ow) {
                            Some(limit) => limit,
                            None => Some(old.wrapping_add(v as u64)),
                        }
                    } else {
                        match unsigned_overflow(v as u64, 0, f.bits, f.ow) {
                            Some(limit) => limit,
                            None => Some(v as u64),
                        }
                    };
                    match new {
                        Some(n) => (Some(if incr { n as i64 } else { old as i64 }), Some(n)),
                        None => (None, None),
                    }
                };
                match (ret, newval) {
                    (Some(r), Some(n)) => {
                        set_field(&mut m.value, f.offset, f.bits, n);
                        Frame::Integer(r)
                    }
                    _ => Frame::Null,
                }
            }
        };
        out.push(reply);
    }
    store(ctx, key, m, created)?;
    Ok(Frame::Array(out))
}

fn read_field(value: &[u8], f: &Field) -> i64 {
    if f.signed {
        get_signed_field(value, f.offset, f.bits)
    } else {
        get_unsigned_field(value, f.offset, f.bits) as i64
    }
}

#[cfg(test)]
mod tests {
    use crate::protocol::Frame;
    use crate::testutil::*;

    fn ints(v: &[Option<i64>]) -> Frame {
        Frame::Array(
            v.iter()
                .map(|x| x.map_or(Frame::Null, Frame::Integer))
                .collect(),
        )
    }

    #[test]
    fn setbit_getbit() {
        let mut db = TestDb::new();
        assert_eq!(db.run(&["SETBIT", "k", "7", "1"]), int(0));
        assert_eq!(db.run(&["GET", "k"]), bulk("\u{1}"));
        assert_eq!(db.run(&["SETBIT", "k", "7", "1"]), int(1));
        assert_eq!(db.run(&["GETBIT", "k", "7"]), int(1));
        assert_eq!(db.run(&["GETBIT", "k", "100"]), int(0));
        assert_eq!(db.run(&["GETBIT", "nokey", "0"]), int(0));
        assert_eq!(db.run(&["SETBIT", "k", "1", "1"]), int(0));
        assert_eq!(db.run(&["GET", "k"]), bulk("A"));
        assert_eq!(
            db.run(&["SETBIT", "k", "-1", "1"]),
            err("ERR bit offset is not an integer or out of range")
        );
        assert_eq!(
            db.run(&["SETBIT", "k", "4294967296", "1"]),
            err("ERR bit offset is not an integer or out of range")
        );
        assert_eq!(
            db.run(&["SETBIT", "k", "0", "2"]),
            err("ERR bit is not an integer or out of range")
        );
        assert_eq!(
            db.run(&["SETBIT", "k", "0", "x"]),
            err("ERR bit is not an integer or out of range")
        );
        db.run(&["SET", "e", ""]);
        assert_eq!(db.run(&["SETBIT", "e", "0", "0"]), int(0));
        assert_eq!(db.run(&["STRLEN", "e"]), int(1));
    }

    #[test]
    fn bitcount_ranges() {
        let mut db = TestDb::new();
        db.run(&["SET", "s", "foobar"]);
        assert_eq!(db.run(&["BITCOUNT", "s"]), int(26));
        assert_eq!(db.run(&["BITCOUNT", "s", "0", "0"]), int(4));
        assert_eq!(db.run(&["BITCOUNT", "s", "1", "1"]), int(6));
        assert_eq!(db.run(&["BITCOUNT", "s", "1", "1", "BYTE"]), int(6));
        assert_eq!(db.run(&["BITCOUNT", "s", "5", "30", "BIT"]), int(17));
        assert_eq!(db.run(&["BITCOUNT", "s", "-2", "-1"]), int(7));
        assert_eq!(db.run(&["BITCOUNT", "s", "-1", "-2"]), int(0));
        assert_eq!(db.run(&["BITCOUNT", "s", "0"]), err("ERR syntax error"));
        assert_eq!(
            db.run(&["BITCOUNT", "s", "0", "1", "foo"]),
            err("ERR syntax error")
        );
        assert_eq!(
            db.run(&["BITCOUNT", "s", "a", "1"]),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(db.run(&["BITCOUNT", "nokey"]), int(0));
        assert_eq!(db.run(&["BITCOUNT", "nokey", "a", "1", "foo"]), int(0));
        db.run(&["HSET", "h", "f", "v"]);
        assert_eq!(
            db.run(&["BITCOUNT", "h", "a", "1"]),
            err("WRONGTYPE Operation against a key holding the wrong kind of value")
        );
        db.run(&["SET", "e", ""]);
        assert_eq!(db.run(&["BITCOUNT", "e"]), int(0));
        assert_eq!(db.run(&["BITCOUNT", "e", "0", "-1"]), int(0));
    }

    #[test]
    fn bitpos_cases() {
        let mut db = TestDb::new();
        db.run(&["SET", "s", "\u{ff}\u{f0}"]);
        // "\u{ff}\u{f0}" is UTF-8 encoded; use SETBIT-built values instead.
        db.run(&["DEL", "s"]);
        for i in 0..12 {
            db.run(&["SETBIT", "s", &i.to_string(), "1"]);
        }
        db.run(&["SETBIT", "s", "23", "0"]);
        // s = ff f0 00
        assert_eq!(db.run(&["BITPOS", "s", "0"]), int(12));
        assert_eq!(db.run(&["BITPOS", "s", "1"]), int(0));
        assert_eq!(db.run(&["BITPOS", "s", "1", "1"]), int(8));
        assert_eq!(db.run(&["BITPOS", "s", "1", "2"]), int(-1));
        assert_eq!(db.run(&["BITPOS", "s", "0", "0", "0"]), int(-1));
        assert_eq!(db.run(&["BITPOS", "s", "1", "7", "15", "BIT"]), int(7));
        assert_eq!(db.run(&["BITPOS", "s", "0", "7", "15", "BIT"]), int(12));
        assert_eq!(db.run(&["BITPOS", "s", "0", "0", "11", "BIT"]), int(-1));
        assert_eq!(db.run(&["BITPOS", "nokey", "0"]), int(0));
        assert_eq!(db.run(&["BITPOS", "nokey", "1"]), int(-1));
        assert_eq!(
            db.run(&["BITPOS", "s", "2"]),
            err("ERR The bit argument must be 1 or 0.")
        );
        db.run(&["SET", "full", "\u{7f}"]);
        db.run(&["SETBIT", "full", "0", "1"]);
        assert_eq!(db.run(&["BITPOS", "full", "0"]), int(8));
        assert_eq!(db.run(&["BITPOS", "full", "0", "0"]), int(8));
        assert_eq!(db.run(&["BITPOS", "full", "0", "0", "-1"]), int(-1));
        db.run(&["SET", "e", ""]);
        assert_eq!(db.run(&["BITPOS", "e", "0"]), int(-1));
    }

    #[test]
    fn bitop_ops() {
        let mut db = TestDb::new();
        db.run(&["SET", "a", "abc"]);
        db.run(&["SET", "b", "a"]);
        assert_eq!(db.run(&["BITOP", "AND", "d", "a", "b"]), int(3));
        assert_eq!(db.run(&["GET", "d"]), bulk("a\0\0"));
        assert_eq!(db.run(&["BITOP", "OR", "d", "a", "b", "nokey"]), int(3));
        assert_eq!(db.run(&["GET", "d"]), bulk("abc"));
        assert_eq!(db.run(&["BITOP", "XOR", "d", "a", "b"]), int(3));
        assert_eq!(db.run(&["GET", "d"]), bulk("\0bc"));
        assert_eq!(
            db.run(&["BITOP", "NOT", "d", "a", "b"]),
            err("ERR BITOP NOT must be called with a single source key.")
        );
        assert_eq!(db.run(&["BITOP", "FOO", "d", "a"]), err("ERR syntax error"));
        assert_eq!(db.run(&["BITOP", "NOT", "d", "nokey"]), int(0));
        assert_eq!(db.run(&["EXISTS", "d"]), int(0));
        db.run(&["SET", "z", "\0"]);
        assert_eq!(db.run(&["BITOP", "NOT", "d", "z"]), int(1));
        assert_eq!(db.run(&["BITCOUNT", "d"]), int(8));
    }

    #[test]
    fn bitfield_ops() {
        let mut db = TestDb::new();
        assert_eq!(
            db.run(&["BITFIELD", "k", "SET", "u8", "0", "255", "GET", "u8", "0"]),
            ints(&[Some(0), Some(255)])
        );
        assert_eq!(
            db.run(&["BITFIELD", "k", "INCRBY", "u8", "0", "10", "GET", "i8", "0"]),
            ints(&[Some(9), Some(9)])
        );
        assert_eq!(
            db.run(&["BITFIELD", "k", "OVERFLOW", "SAT", "INCRBY", "u8", "0", "300"]),
            ints(&[Some(255)])
        );
        assert_eq!(
            db.run(&["BITFIELD", "k", "OVERFLOW", "FAIL", "INCRBY", "u8", "0", "1"]),
            ints(&[None])
        );
        assert_eq!(
            db.run(&["BITFIELD", "k", "SET", "i8", "#1", "-1", "GET", "u8", "8", "GET", "i4", "8"]),
            ints(&[Some(0), Some(255), Some(-1)])
        );
        assert_eq!(
            db.run(&["BITFIELD", "nokey", "GET", "u8", "0"]),
            ints(&[Some(0)])
        );
        assert_eq!(db.run(&["EXISTS", "nokey"]), int(0));
        assert_eq!(db.run(&["BITFIELD", "k"]), ints(&[]));
        assert_eq!(
            db.run(&["BITFIELD", "k", "GET", "u64", "0"]),
            err("ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.")
        );
        assert_eq!(
            db.run(&["BITFIELD", "k", "OVERFLOW", "FOO"]),
            err("ERR Invalid OVERFLOW type specified")
        );
        assert_eq!(
            db.run(&["BITFIELD", "k", "GET", "u8"]),
            err("ERR syntax error")
        );
        assert_eq!(
            db.run(&["BITFIELD_RO", "k", "SET", "u8", "0", "1"]),
            err("ERR BITFIELD_RO only supports the GET subcommand")
        );
        assert_eq!(
            db.run(&["BITFIELD_RO", "k", "GET", "u8", "0"]),
            ints(&[Some(255)])
        );
        assert_eq!(
            db.run(&["BITFIELD", "w", "SET", "i64", "0", "-1", "INCRBY", "i64", "0", "1"]),
            ints(&[Some(0), Some(0)])
        );
        assert_eq!(
            db.run(&["BITFIELD", "w", "SET", "u8", "0", "-1"]),
            ints(&[Some(0)])
        );
        assert_eq!(
            db.run(&["BITFIELD", "w", "GET", "u8", "0"]),
            ints(&[Some(255)])
        );
    }
}
