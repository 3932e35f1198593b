//! Keyspace-wide operations over the key encoding: raw metadata access, copying a collection's
//! element records, walking the metadata records (KEYS, SCAN, DBSIZE, FLUSHALL, RANDOMKEY), the
//! SCAN cursor encoding and Redis' glob matcher.

use crate::cmd::CmdError;
use crate::storage::encoding::{
    meta_key, prefix_end, sub_prefix, user_key_of_meta, Cf, DataType, Meta,
};
use crate::storage::Ctx;

/// Records copied per round trip when duplicating a collection (bounds memory).
const COPY_CHUNK: usize = 1024;

/// The stored metadata of `key` even if it has expired (`None` if there is no record).
pub fn raw_meta(ctx: &Ctx, key: &[u8]) -> Result<Option<Meta>, CmdError> {
    match ctx.get(Cf::Meta, &meta_key(key))? {
        None => Ok(None),
        Some(raw) => Meta::decode(&raw).map(Some).ok_or_else(|| corrupt(key)),
    }
}

pub fn corrupt(key: &[u8]) -> CmdError {
    CmdError::Storage(format!(
        "corrupt metadata for key {:?}",
        String::from_utf8_lossy(key)
    ))
}

/// Removes whatever record `key` has (live or expired), leaving gc records for collection
/// elements, so that a new value can be written under `key` without leaking old elements.
pub fn clear_for_overwrite(ctx: &mut Ctx, key: &[u8]) -> Result<(), CmdError> {
    if let Some(m) = raw_meta(ctx, key)? {
        if m.dtype != DataType::String {
            ctx.delete_key(key)?;
        }
    }
    Ok(())
}

/// Copies every element record of `src@src_version` (in `Cf::Sub` and `Cf::Score`) to
/// `dst@dst_version`, in bounded chunks.
pub fn copy_elements(
    ctx: &mut Ctx,
    src: &[u8],
    src_version: u64,
    dst: &[u8],
    dst_version: u64,
) -> Result<(), CmdError> {
    let from = sub_prefix(src, src_version);
    let to = sub_prefix(dst, dst_version);
    let end = prefix_end(&from);
    for cf in [Cf::Sub, Cf::Score] {
        let mut lower = from.clone();
        loop {
            let mut chunk: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
            ctx.scan(cf, &lower, &end, false, |k, v| {
                chunk.push((k.to_vec(), v.to_vec()));
                Ok(chunk.len() < COPY_CHUNK)
            })?;
            let done = chunk.len() < COPY_CHUNK;
            if let Some((last, _)) = chunk.last() {
                lower = last.clone();
                lower.push(0);
            }
            for (k, v) in chunk {
                let mut nk = to.clone();
                nk.extend_from_slice(&k[from.len()..]);
                ctx.put(cf, nk, v)?;
            }
            if done {
                break;
            }
        }
    }
    Ok(())
}

/// Duplicates the value of `src` (metadata `m`) under `dst`, which must have no record left
/// (callers delete it first); collections get a fresh version. `expire_ms` is the new TTL.
pub fn duplicate(
    ctx: &mut Ctx,
    src: &[u8],
    m: &Meta,
    dst: &[u8],
    expire_ms: u64,
) -> Result<(), CmdError> {
    let mut nm = m.clone();
    nm.expire_ms = expire_ms;
    if m.dtype != DataType::String {
        nm.version = ctx.new_version();
        copy_elements(ctx, src, m.version, dst, nm.version)?;
    }
    ctx.put_meta(dst, &mut nm)
}

/// Visits metadata records from `lower` (a meta key) in key order: `f(user_key, meta_key,
/// meta)` returns false to stop. Expired records are passed too (callers decide).
pub fn walk_meta(
    ctx: &Ctx,
    lower: &[u8],
    mut f: impl FnMut(&[u8], &[u8], &Meta) -> Result<bool, CmdError>,
) -> Result<(), CmdError> {
    // Only the context's shard: from its first slot (or `lower`) to the end of its last.
    let (first, last) = ctx.slot_range();
    let start = first.to_be_bytes();
    let lower = if lower < &start[..] {
        &start[..]
    } else {
        lower
    };
    let upper = if last >= 16383 {
        Vec::new()
    } else {
        (last + 1).to_be_bytes().to_vec()
    };
    if !upper.is_empty() && lower >= &upper[..] {
        return Ok(());
    }
    ctx.scan(Cf::Meta, lower, &upper, false, |k, v| {
        let user = user_key_of_meta(k);
        let m = Meta::decode(v).ok_or_else(|| corrupt(user))?;
        f(user, k, &m)
    })
}

// ---- SCAN cursors ----
//
// A cursor names a position in metadata-key order (`slot | user_key`): the slot in the high
// bits and up to 6 bytes of a user-key prefix below it. Resuming seeks to the first record at or
// after that position, so a key present during the whole iteration is never skipped whatever is
// written in between. When a SCAN call stops, the position is the shortest separator between
// the last record it examined and the next one; if that separator needs more than 6 user-key
// bytes the call examines one more record and tries again (at worst up to the slot's end, where
// the separator is the slot alone).

const USER_BYTES: usize = 6;
const CODE_BITS: u32 = 49;
/// A cursor's slot is `cursor >> CURSOR_SLOT_SHIFT`.
pub const CURSOR_SLOT_SHIFT: u32 = CODE_BITS;

/// `sum(256^i for i < len)`: first code of the user prefixes of length `len`.
fn code_offset(len: usize) -> u64 {
    (0..len).map(|i| 1u64 << (8 * i)).sum()
}

/// Encodes a position (`slot`, user prefix of at most 6 bytes) as a cursor.
pub fn encode_cursor(slot: u16, user: &[u8]) -> Option<u64> {
    if user.len() > USER_BYTES {
        return None;
    }
    let mut data: u64 = 0;
    for &b in user {
        data = (data << 8) | b as u64;
    }
    Some(((slot as u64) << CODE_BITS) | (code_offset(user.len()) + data))
}

/// The meta-key position a cursor names; `None` for a cursor past the last slot.
pub fn decode_cursor(cursor: u64) -> Option<Vec<u8>> {
    let slot = cursor >> CODE_BITS;
    if slot >= 16384 {
        return None;
    }
    let code = cursor & ((1u64 << CODE_BITS) - 1);
    let mut pos = (slot as u16).to_be_bytes().to_vec();
    for len in (0..=USER_BYTES).rev() {
        let off = code_offset(len);
        if code >= off {
            let data = code - off;
            if len < USER_BYTES && data >> (8 * len) != 0 {
                // Not a code we produce: continue at the next slot.
                return if slot + 1 >= 16384 {
                    None
                } else {
                    Some(((slot + 1) as u16).to_be_bytes().to_vec())
                };
            }
            for i in (0..len).rev() {
                pos.push((data >> (8 * i)) as u8);
            }
            return Some(pos);
        }
    }
    Some(pos)
}

/// The cursor of the shortest position `s` with `last < s <= next` (meta keys), if it fits.
pub fn separator_cursor(last: &[u8], next: &[u8]) -> Option<u64> {
    let common = last.iter().zip(next).take_while(|(a, b)| a == b).count();
    let mut sep = next.get(..common + 1)?.to_vec();
    while sep.len() < 2 {
        sep.push(0);
    }
    let slot = u16::from_be_bytes([sep[0], sep[1]]);
    encode_cursor(slot, &sep[2..])
}

/// Redis' `SCAN` cursor parsing (`strtoul`): optional sign, digits, no spaces, fits u64.
pub fn parse_cursor(b: &[u8]) -> Option<u64> {
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

// ---- glob ----

/// Redis' `stringmatchlen` (one implementation, in `protocol::glob`, shared with pub/sub).
pub fn glob_match(pattern: &[u8], s: &[u8], nocase: bool) -> bool {
    crate::protocol::glob::matches(pattern, s, nocase)
}

/// Test helper: writes a hash `key` with `fields` directly (the hash commands live in another
/// family), as op `seq`.
#[cfg(test)]
pub fn make_hash(db: &crate::testutil::TestDb, seq: u64, key: &[u8], fields: &[(&[u8], &[u8])]) {
    use crate::storage::encoding::sub_key;
    let mut ctx = Ctx::write(&db.engine);
    ctx.begin_op(seq, db.now_ms, 1);
    let v = ctx.new_version();
    let mut m = Meta::new_collection(DataType::Hash, v);
    m.size = fields.len() as u64;
    for (f, val) in fields {
        ctx.put(Cf::Sub, sub_key(key, v, f), val.to_vec()).unwrap();
    }
    ctx.put_meta(key, &mut m).unwrap();
    db.engine.write(ctx.into_batch()).unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_follows_stringmatchlen() {
        let m = |p: &str, s: &str| glob_match(p.as_bytes(), s.as_bytes(), false);
        assert!(m("*", "anything"));
        // Like stringmatchlen: an empty string never matches (KEYS/SCAN special-case "*").
        assert!(!m("*", ""));
        assert!(m("h?llo", "hello"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("h[b-a]llo", "hallo"));
        assert!(m("h\\*llo", "h*llo"));
        assert!(!m("h\\*llo", "hello"));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "axxbyy"));
        assert!(m("user:*", "user:1"));
        assert!(!m("user:*", "use"));
        assert!(m("a**", "a"));
        assert!(!m("", "a"));
        assert!(m("", ""));
        assert!(glob_match(b"HeLLo", b"hello", true));
        assert!(m("[abc", "a"));
        assert!(!m("a[", "ab"));
    }

    #[test]
    fn cursors_round_trip_and_separate() {
        for (slot, user) in [
            (0u16, &b""[..]),
            (5, b"ab"),
            (16383, b"\xff\xff\xff\xff\xff\xff"),
        ] {
            let c = encode_cursor(slot, user).unwrap();
            let mut want = slot.to_be_bytes().to_vec();
            want.extend_from_slice(user);
            assert_eq!(decode_cursor(c), Some(want));
        }
        assert_eq!(decode_cursor(u64::MAX), None);
        let last = b"\x00\x05user:1".to_vec();
        let next = b"\x00\x05user:2".to_vec();
        let c = separator_cursor(&last, &next).unwrap();
        let pos = decode_cursor(c).unwrap();
        assert!(last < pos && pos <= next);
        assert_eq!(
            separator_cursor(b"\x00\x05session:1", b"\x00\x05session:2"),
            None
        );
        let c = separator_cursor(b"\x00\x05session:1", b"\x00\x07session:2").unwrap();
        assert_eq!(decode_cursor(c), Some(b"\x00\x07".to_vec()));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551616"), None);
        assert_eq!(parse_cursor(b" 1"), None);
    }
}
