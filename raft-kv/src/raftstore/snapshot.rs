//! A group's snapshot data: every record of its slot range, in every data column family.
//!
//! Format: a sequence of `cf (1B) | key_len (4B BE) | key | val_len (4B BE) | val`. Built from
//! a consistent RocksDB snapshot on the runtime thread (so it is exactly the state at the
//! group's applied index), streamed in chunks by the transport and installed by replacing the
//! range. Records are whole, so a truncated stream fails to decode instead of installing a
//! partial range.

use rocksdb::{IteratorMode, ReadOptions, WriteBatch};

use super::split::RangeState;
use crate::storage::encoding::Cf;
use crate::storage::Engine;

/// First byte of the range header a snapshot starts with (records start with a CF code 1-4;
/// snapshots from before the header have none).
const RANGE_HEADER: u8 = 0xFF;
/// The same with the group's version base after the epoch.
const RANGE_HEADER_V2: u8 = 0xFE;
/// The same followed by a CRC-32 of the records, checked before anything is installed.
const RANGE_HEADER_V3: u8 = 0xFD;

/// CRC-32 (IEEE, the zlib one) lookup table, built at compile time.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

pub fn crc32(data: &[u8]) -> u32 {
    !data.iter().fold(!0u32, |c, b| {
        CRC_TABLE[((c ^ u32::from(*b)) & 0xff) as usize] ^ (c >> 8)
    })
}

/// Prefixes snapshot data with the slot range and epoch it covers, so the receiver installs
/// exactly that range even if its own idea of the group's range is out of date (a split it
/// never applied).
pub fn with_range(range: RangeState, data: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 25);
    out.push(RANGE_HEADER_V3);
    out.extend_from_slice(&range.encode());
    out.extend_from_slice(&crc32(&data).to_be_bytes());
    out.extend_from_slice(&data);
    out
}

/// Splits off the range header: (the range if present, records).
/// A corrupt snapshot (checksum mismatch) is refused here, before anything is installed.
pub fn range_of(data: &[u8]) -> Result<(Option<RangeState>, &[u8]), String> {
    let (len, checked) = match data.first() {
        Some(&RANGE_HEADER) => (12, false),
        Some(&RANGE_HEADER_V2) => (20, false),
        Some(&RANGE_HEADER_V3) => (20, true),
        _ => return Ok((None, data)),
    };
    let header = data
        .get(1..1 + len)
        .and_then(RangeState::decode)
        .ok_or("truncated snapshot header")?;
    let mut records = &data[1 + len..];
    if checked {
        let sum = records.get(..4).ok_or("truncated snapshot header")?;
        let want = u32::from_be_bytes([sum[0], sum[1], sum[2], sum[3]]);
        records = &records[4..];
        let got = crc32(records);
        if got != want {
            return Err(format!(
                "snapshot checksum mismatch ({} bytes: crc32 {got:08x}, sent {want:08x}); \
                 refusing it",
                records.len()
            ));
        }
    }
    Ok((Some(header), records))
}

/// Column families holding slot-prefixed data (everything but `sys`).
const DATA_CFS: [Cf; 4] = [Cf::Meta, Cf::Sub, Cf::Score, Cf::Gc];

fn cf_code(cf: Cf) -> u8 {
    match cf {
        Cf::Meta => 1,
        Cf::Sub => 2,
        Cf::Score => 3,
        Cf::Gc => 4,
        Cf::Sys => 5,
    }
}

fn cf_of(code: u8) -> Option<Cf> {
    DATA_CFS.into_iter().find(|cf| cf_code(*cf) == code)
}

/// Key range `[start, end)` of slots `first..=last` in every data column family.
pub fn slot_bounds(first: u16, last: u16) -> (Vec<u8>, Vec<u8>) {
    (
        first.to_be_bytes().to_vec(),
        (u32::from(last) + 1).to_be_bytes()[2..].to_vec(),
    )
}

/// Reads slots `first..=last` into snapshot data.
pub fn build(engine: &Engine, first: u16, last: u16) -> Result<Vec<u8>, String> {
    let (start, end) = slot_bounds(first, last);
    // 16384 does not fit the 2-byte slot prefix: the last range has no upper bound.
    let unbounded = u32::from(last) + 1 >= 1 << 16 || last >= 16383;
    let snap = engine.db().snapshot();
    let mut out = Vec::new();
    for cf in DATA_CFS {
        let mut ro = ReadOptions::default();
        ro.set_snapshot(&snap);
        let iter = engine.db().iterator_cf_opt(
            engine.cf(cf),
            ro,
            IteratorMode::From(&start, rocksdb::Direction::Forward),
        );
        for item in iter {
            let (k, v) = item.map_err(|e| format!("snapshot read failed: {e}"))?;
            if !unbounded && k.as_ref() >= end.as_slice() {
                break;
            }
            out.push(cf_code(cf));
            out.extend_from_slice(&(k.len() as u32).to_be_bytes());
            out.extend_from_slice(&k);
            out.extend_from_slice(&(v.len() as u32).to_be_bytes());
            out.extend_from_slice(&v);
        }
    }
    Ok(out)
}

/// Adds to `batch` the deletion of everything in slots `first..=last`.
pub fn clear_range(engine: &Engine, batch: &mut WriteBatch, first: u16, last: u16) {
    let (start, mut end) = slot_bounds(first, last);
    if last >= 16383 {
        end = vec![0xff; 3];
    }
    for cf in DATA_CFS {
        batch.delete_range_cf(engine.cf(cf), &start, &end);
    }
}

/// Adds to `batch` the replacement of slots `first..=last` by `data`.
pub fn install(
    engine: &Engine,
    batch: &mut WriteBatch,
    first: u16,
    last: u16,
    data: &[u8],
) -> Result<usize, String> {
    clear_range(engine, batch, first, last);
    let mut pos = 0;
    let mut n = 0;
    let take = |pos: &mut usize, len: usize| -> Result<&[u8], String> {
        let s = data
            .get(*pos..*pos + len)
            .ok_or_else(|| "truncated snapshot data".to_string())?;
        *pos += len;
        Ok(s)
    };
    let take_u32 = |pos: &mut usize| -> Result<usize, String> {
        let s = data
            .get(*pos..*pos + 4)
            .ok_or_else(|| "truncated snapshot data".to_string())?;
        *pos += 4;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize)
    };
    while pos < data.len() {
        let code = take(&mut pos, 1)?[0];
        let cf = cf_of(code).ok_or_else(|| format!("bad column family {code} in snapshot"))?;
        let klen = take_u32(&mut pos)?;
        let key = take(&mut pos, klen)?;
        let vlen = take_u32(&mut pos)?;
        let val = take(&mut pos, vlen)?;
        batch.put_cf(engine.cf(cf), key, val);
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Frame;
    use crate::testutil::TestDb;

    #[test]
    fn a_corrupt_snapshot_is_refused_before_install() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        let mut src = TestDb::new();
        src.run(&["SET", "a", "1"]);
        let range = RangeState {
            first: 0,
            last: 16383,
            epoch: 3,
            version_base: 9,
        };
        let data = with_range(range, build(&src.engine, 0, 16383).expect("build"));
        let (got, records) = range_of(&data).expect("intact");
        assert_eq!(got, Some(range));
        assert!(!records.is_empty());
        for i in [data.len() - 1, 30] {
            let mut bad = data.clone();
            bad[i] ^= 1;
            let e = range_of(&bad).expect_err("corrupt");
            assert!(e.contains("checksum mismatch"), "{e}");
        }
    }

    #[test]
    fn build_then_install_replaces_the_range() {
        let mut src = TestDb::new();
        src.run(&["SET", "a", "1"]);
        src.run(&["HSET", "h", "f", "v", "g", "w"]);
        src.run(&["ZADD", "z", "1", "m"]);
        let data = build(&src.engine, 0, 16383).expect("build");

        let mut dst = TestDb::new();
        dst.run(&["SET", "stale", "x"]);
        let mut batch = WriteBatch::default();
        let n = install(&dst.engine, &mut batch, 0, 16383, &data).expect("install");
        assert!(n >= 4, "meta + elements copied, got {n}");
        dst.engine.write(batch).expect("write");
        assert_eq!(dst.run(&["GET", "a"]), Frame::Bulk("1".into()));
        assert_eq!(dst.run(&["HGET", "h", "g"]), Frame::Bulk("w".into()));
        assert_eq!(dst.run(&["ZCARD", "z"]), Frame::Integer(1));
        assert_eq!(dst.run(&["EXISTS", "stale"]), Frame::Integer(0));

        let mut batch = WriteBatch::default();
        assert!(install(&dst.engine, &mut batch, 0, 16383, &data[..data.len() - 1]).is_err());
    }
}
