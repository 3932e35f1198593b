//! String value helpers: the bit-level operations of the bitmap commands, LCS (bit addressing
//! is Redis': bit 0 is the most significant bit of byte 0). INCRBYFLOAT's number handling is in
//! `long_double`.

use crate::protocol::Frame;

/// Bit `offset` of `s` (0 past the end).
pub fn get_bit(s: &[u8], offset: u64) -> u8 {
    match s.get((offset >> 3) as usize) {
        Some(b) => (b >> (7 - (offset & 7))) & 1,
        None => 0,
    }
}

/// Sets bit `offset` of `s`, which must be long enough.
pub fn set_bit(s: &mut [u8], offset: u64, on: bool) {
    let byte = (offset >> 3) as usize;
    let mask = 1u8 << (7 - (offset & 7));
    if let Some(b) = s.get_mut(byte) {
        if on {
            *b |= mask;
        } else {
            *b &= !mask;
        }
    }
}

/// Number of set bits among bits `[lo, hi]` (inclusive, within the string).
pub fn count_bits(s: &[u8], lo: u64, hi: u64) -> u64 {
    if lo > hi {
        return 0;
    }
    let (lb, hb) = ((lo >> 3) as usize, (hi >> 3) as usize);
    let Some(bytes) = s.get(lb..=hb) else {
        return 0;
    };
    let mut n: u64 = bytes.iter().map(|b| b.count_ones() as u64).sum();
    // Remove the bits of the edge bytes that fall outside the range.
    let head = bytes[0] & !(0xffu8 >> (lo & 7));
    let tail_mask: u8 = if hi & 7 == 7 {
        0
    } else {
        0xff >> ((hi & 7) + 1)
    };
    let tail = bytes[bytes.len() - 1] & tail_mask;
    n -= head.count_ones() as u64 + tail.count_ones() as u64;
    n
}

/// First bit equal to `bit` among bits `[lo, hi]` (inclusive, within the string).
pub fn find_bit(s: &[u8], lo: u64, hi: u64, bit: u8) -> Option<u64> {
    let mut pos = lo;
    while pos <= hi {
        // Skip whole bytes that cannot contain the bit.
        if pos & 7 == 0 && pos + 7 <= hi {
            let b = s.get((pos >> 3) as usize).copied().unwrap_or(0);
            if (bit == 1 && b == 0) || (bit == 0 && b == 0xff) {
                pos += 8;
                continue;
            }
        }
        if get_bit(s, pos) == bit {
            return Some(pos);
        }
        pos += 1;
    }
    None
}

/// Reads an unsigned field of `bits` bits at bit `offset` (zero past the end).
pub fn get_unsigned_field(s: &[u8], offset: u64, bits: u32) -> u64 {
    let mut v: u64 = 0;
    for j in 0..bits as u64 {
        v = (v << 1) | get_bit(s, offset + j) as u64;
    }
    v
}

/// Reads a two's complement signed field of `bits` bits at bit `offset`.
pub fn get_signed_field(s: &[u8], offset: u64, bits: u32) -> i64 {
    let u = get_unsigned_field(s, offset, bits);
    if bits < 64 && u & (1u64 << (bits - 1)) != 0 {
        (u | (u64::MAX << bits)) as i64
    } else {
        u as i64
    }
}

/// Writes the low `bits` bits of `v` at bit `offset` (the string must be long enough).
pub fn set_field(s: &mut [u8], offset: u64, bits: u32, v: u64) {
    for j in 0..bits as u64 {
        let bitval = (v >> (bits as u64 - 1 - j)) & 1;
        set_bit(s, offset + j, bitval == 1);
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Overflow {
    Wrap,
    Sat,
    Fail,
}

/// Redis' `checkUnsignedBitfieldOverflow`: `Some(limit)` replaces the result on overflow
/// (`None` inside means FAIL); the outer `None` means no overflow.
pub fn unsigned_overflow(value: u64, incr: i64, bits: u32, ow: Overflow) -> Option<Option<u64>> {
    let max: u64 = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let maxincr = max.wrapping_sub(value) as i64;
    let minincr = (value as i64).wrapping_neg();
    let wrap = || {
        let mask = if bits >= 64 { 0 } else { u64::MAX << bits };
        value.wrapping_add(incr as u64) & !mask
    };
    if value > max || (incr > 0 && incr > maxincr) {
        Some(match ow {
            Overflow::Wrap => Some(wrap()),
            Overflow::Sat => Some(max),
            Overflow::Fail => None,
        })
    } else if incr < 0 && incr < minincr {
        Some(match ow {
            Overflow::Wrap => Some(wrap()),
            Overflow::Sat => Some(0),
            Overflow::Fail => None,
        })
    } else {
        None
    }
}

/// Redis' `checkSignedBitfieldOverflow`, shaped like [`unsigned_overflow`].
pub fn signed_overflow(value: i64, incr: i64, bits: u32, ow: Overflow) -> Option<Option<i64>> {
    let max: i64 = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let maxincr = (max as u64).wrapping_sub(value as u64) as i64;
    let minincr = min.wrapping_sub(value);
    let wrap = || {
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let msb = 1u64 << (bits - 1);
            let mask = u64::MAX << bits;
            if c & msb != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    if value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr) {
        Some(match ow {
            Overflow::Wrap => Some(wrap()),
            Overflow::Sat => Some(max),
            Overflow::Fail => None,
        })
    } else if value < min
        || (bits != 64 && incr < minincr)
        || (value < 0 && incr < 0 && incr < minincr)
    {
        Some(match ow {
            Overflow::Wrap => Some(wrap()),
            Overflow::Sat => Some(min),
            Overflow::Fail => None,
        })
    } else {
        None
    }
}

/// Redis 7.0's `lcsCommand` after argument checks: the LCS string, its length (`LEN`) or the
/// matching ranges (`IDX`, optionally `WITHMATCHLEN` and `MINMATCHLEN`).
pub fn lcs_reply(
    a: &[u8],
    b: &[u8],
    getlen: bool,
    getidx: bool,
    withmatchlen: bool,
    minmatchlen: u64,
) -> Frame {
    let (alen, blen) = (a.len(), b.len());
    let w = blen + 1;
    let mut dp = vec![0u32; (alen + 1) * w];
    for i in 1..=alen {
        for j in 1..=blen {
            dp[i * w + j] = if a[i - 1] == b[j - 1] {
                dp[(i - 1) * w + j - 1] + 1
            } else {
                dp[(i - 1) * w + j].max(dp[i * w + j - 1])
            };
        }
    }
    let total = dp[alen * w + blen];
    if getlen && !getidx {
        return Frame::Integer(total as i64);
    }
    let mut result = vec![0u8; total as usize];
    let mut idx = total as usize;
    let mut ranges = Vec::new();
    let (mut i, mut j) = (alen, blen);
    // `arange_start == alen` means no range is open, as in Redis.
    let (mut astart, mut aend, mut bstart, mut bend) = (alen, 0usize, 0usize, 0usize);
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            result[idx - 1] = a[i - 1];
            if astart == alen {
                astart = i - 1;
                aend = i - 1;
                bstart = j - 1;
                bend = j - 1;
            } else if astart == i && bstart == j {
                astart -= 1;
                bstart -= 1;
            } else {
                emit = true;
            }
            if astart == 0 || bstart == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            j -= 1;
        } else {
            if dp[(i - 1) * w + j] > dp[i * w + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            if astart != alen {
                emit = true;
            }
        }
        let match_len = (aend as i64 - astart as i64 + 1) as u64;
        if emit {
            if getidx && (minmatchlen == 0 || match_len >= minmatchlen) {
                let mut item = vec![
                    Frame::Array(vec![
                        Frame::Integer(astart as i64),
                        Frame::Integer(aend as i64),
                    ]),
                    Frame::Array(vec![
                        Frame::Integer(bstart as i64),
                        Frame::Integer(bend as i64),
                    ]),
                ];
                if withmatchlen {
                    item.push(Frame::Integer(match_len as i64));
                }
                ranges.push(Frame::Array(item));
            }
            astart = alen;
        }
    }
    if getidx {
        Frame::Map(vec![
            (Frame::bulk("matches"), Frame::Array(ranges)),
            (Frame::bulk("len"), Frame::Integer(total as i64)),
        ])
    } else {
        Frame::Bulk(result.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_ranges() {
        let s = [0xffu8, 0x0f, 0x80];
        assert_eq!(count_bits(&s, 0, 23), 13);
        assert_eq!(count_bits(&s, 1, 6), 6);
        assert_eq!(count_bits(&s, 8, 15), 4);
        assert_eq!(count_bits(&s, 12, 16), 5);
        assert_eq!(count_bits(&s, 5, 5), 1);
        assert_eq!(find_bit(&s, 0, 23, 0), Some(8));
        assert_eq!(find_bit(&s, 9, 23, 1), Some(12));
        assert_eq!(find_bit(&s, 17, 23, 1), None);
        assert_eq!(get_unsigned_field(&s, 4, 8), 0xf0);
        assert_eq!(get_signed_field(&s, 0, 4), -1);
        let mut t = [0u8; 2];
        set_field(&mut t, 4, 8, 0xab);
        assert_eq!(t, [0x0a, 0xb0]);
    }

    #[test]
    fn overflow_rules() {
        assert_eq!(unsigned_overflow(250, 10, 8, Overflow::Wrap), Some(Some(4)));
        assert_eq!(
            unsigned_overflow(250, 10, 8, Overflow::Sat),
            Some(Some(255))
        );
        assert_eq!(unsigned_overflow(5, -10, 8, Overflow::Sat), Some(Some(0)));
        assert_eq!(unsigned_overflow(5, -10, 8, Overflow::Fail), Some(None));
        assert_eq!(unsigned_overflow(5, 10, 8, Overflow::Fail), None);
        assert_eq!(signed_overflow(127, 1, 8, Overflow::Wrap), Some(Some(-128)));
        assert_eq!(
            signed_overflow(-128, -1, 8, Overflow::Sat),
            Some(Some(-128))
        );
        assert_eq!(signed_overflow(100, 1, 8, Overflow::Sat), None);
        assert_eq!(
            signed_overflow(i64::MAX, 1, 64, Overflow::Wrap),
            Some(Some(i64::MIN))
        );
    }
}
