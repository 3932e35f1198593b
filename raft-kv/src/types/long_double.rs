//! Exact software emulation of the x86-64 C `long double` (the x87 80-bit extended format) as
//! Redis 7 uses it for INCRBYFLOAT and HINCRBYFLOAT: parsing with glibc `strtold` under the
//! acceptance rules of Redis' `string2ld`, addition with round-to-nearest-even, and printing
//! with `ld2string(.., LD_STR_HUMAN)` (`%.17Lf`, trailing zeros and dot trimmed, no `-0`).
//!
//! The format: 1 sign bit, a 15-bit biased exponent and a 64-bit significand with an explicit
//! integer bit. A normal number is `mant * 2^(exp - 16446)` with the top bit of `mant` set; a
//! subnormal (`exp == 0`) is `mant * 2^-16445`; `exp == 0x7fff` holds infinities and NaNs.
//! Conversions are exact (a small arbitrary-precision integer), so results match glibc's
//! correctly rounded `strtold` and `printf` digit for digit.

/// Redis' `MAX_LONG_DOUBLE_CHARS`: the buffer of `string2ld` and `ld2string`.
const MAX_LONG_DOUBLE_CHARS: usize = 5 * 1024;
/// Biased exponent of infinities and NaNs.
const EXP_SPECIAL: u16 = 0x7fff;
/// A normal number is `mant * 2^(exp - LSB_BIAS)`.
const LSB_BIAS: i64 = 16446;
/// Exponent of the significand's least significant bit for subnormals (and the smallest normals).
const MIN_LSB: i64 = 1 - LSB_BIAS;
/// Exponent of the most significant bit of the largest finite value.
const MAX_TOP: i64 = 16383;
/// The explicit integer bit of a normal significand.
const INT_BIT: u64 = 1 << 63;

/// An x87 80-bit extended-precision value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LongDouble {
    neg: bool,
    /// Biased exponent, `0..=0x7fff`.
    exp: u16,
    /// Significand with explicit integer bit.
    mant: u64,
}

impl LongDouble {
    pub const ZERO: LongDouble = LongDouble {
        neg: false,
        exp: 0,
        mant: 0,
    };
    /// The x87 default NaN (what an invalid operation such as `inf - inf` produces).
    const NAN: LongDouble = LongDouble {
        neg: true,
        exp: EXP_SPECIAL,
        mant: 0xc000_0000_0000_0000,
    };

    fn zero(neg: bool) -> LongDouble {
        LongDouble {
            neg,
            exp: 0,
            mant: 0,
        }
    }

    fn infinity(neg: bool) -> LongDouble {
        LongDouble {
            neg,
            exp: EXP_SPECIAL,
            mant: INT_BIT,
        }
    }

    pub fn is_finite(self) -> bool {
        self.exp != EXP_SPECIAL
    }

    fn is_nan(self) -> bool {
        self.exp == EXP_SPECIAL && self.mant << 1 != 0
    }

    fn is_infinite(self) -> bool {
        self.exp == EXP_SPECIAL && self.mant << 1 == 0
    }

    fn is_zero(self) -> bool {
        self.exp == 0 && self.mant == 0
    }

    /// Exponent of the significand's least significant bit (finite values only).
    fn lsb_exp(self) -> i64 {
        if self.exp == 0 {
            MIN_LSB
        } else {
            i64::from(self.exp) - LSB_BIAS
        }
    }

    /// Redis' `string2ld`: glibc `strtold` over the bytes, rejecting empty or over-long input,
    /// leading whitespace, trailing garbage, overflow, underflow to zero and NaN. `None` if
    /// rejected. Redis 7 also requires `strtold` to consume all `slen` bytes, so an embedded
    /// NUL (where strtold stops) is trailing garbage.
    pub fn parse(s: &[u8]) -> Option<LongDouble> {
        if s.is_empty() || s.len() >= MAX_LONG_DOUBLE_CHARS || s.contains(&0) {
            return None;
        }
        let &first = s.first()?;
        if is_c_space(first) {
            return None;
        }
        let (neg, rest) = match first {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        if rest.eq_ignore_ascii_case(b"inf") || rest.eq_ignore_ascii_case(b"infinity") {
            return Some(LongDouble::infinity(neg));
        }
        let v = if rest.len() >= 2 && rest[0] == b'0' && (rest[1] | 0x20) == b'x' {
            // Without hex digits after "0x", strtold stops after the "0": trailing garbage.
            parse_hex(neg, &rest[2..])?
        } else {
            parse_decimal(neg, rest)?
        };
        if v.is_finite() {
            Some(v)
        } else {
            None
        }
    }

    /// IEEE addition as the x87 does it in extended precision: exact sum rounded to nearest
    /// (ties to even) to a 64-bit significand, gradual underflow, overflow to infinity.
    /// (Also available as the `+` operator.)
    #[allow(clippy::should_implement_trait)]
    pub fn add(self, other: LongDouble) -> LongDouble {
        if self.is_nan() {
            return self;
        }
        if other.is_nan() {
            return other;
        }
        if self.is_infinite() {
            if other.is_infinite() && other.neg != self.neg {
                return LongDouble::NAN;
            }
            return self;
        }
        if other.is_infinite() {
            return other;
        }
        if self.is_zero() && other.is_zero() {
            return LongDouble::zero(self.neg && other.neg);
        }
        if self.is_zero() {
            return other;
        }
        if other.is_zero() {
            return self;
        }
        let (a, b) = if self.lsb_exp() >= other.lsb_exp() {
            (self, other)
        } else {
            (other, self)
        };
        let (ea, eb) = (a.lsb_exp(), b.lsb_exp());
        let d = ea - eb;
        // Both operands as integers over a common least significant bit exponent `e`. When
        // `b` is too far below `a` for that to fit, the bits of `b` shifted out are jammed into
        // bit 0 (sticky): the result then has at least 127 bits, so rounding happens 63+ bits
        // higher and the odd bit 0 can neither create nor hide a tie.
        let (ra, rb, e) = if d <= 64 {
            (u128::from(a.mant) << d, u128::from(b.mant), eb)
        } else {
            let sh = d - 64;
            let (kept, sticky) = if sh >= 64 {
                (0, b.mant != 0)
            } else {
                (b.mant >> sh, b.mant & ((1u64 << sh) - 1) != 0)
            };
            (
                u128::from(a.mant) << 64,
                u128::from(kept | u64::from(sticky)),
                ea - 64,
            )
        };
        if a.neg == b.neg {
            return round_to_ld(a.neg, &Big::from_u128(ra + rb), e, false);
        }
        match ra.cmp(&rb) {
            std::cmp::Ordering::Greater => round_to_ld(a.neg, &Big::from_u128(ra - rb), e, false),
            std::cmp::Ordering::Less => round_to_ld(b.neg, &Big::from_u128(rb - ra), e, false),
            // Exact cancellation gives +0 when rounding to nearest.
            std::cmp::Ordering::Equal => LongDouble::ZERO,
        }
    }

    /// Redis' `ld2string(.., LD_STR_HUMAN)`: `%.17Lf`, then trailing zeros after the dot and a
    /// bare dot removed, and `-0` printed as `0`. `None` if the `%.17Lf` text would not fit
    /// Redis' buffer (never the case for finite values, which have at most 4933 integer digits).
    pub fn to_human(self) -> Option<String> {
        if self.is_infinite() {
            return Some(if self.neg { "-inf" } else { "inf" }.to_string());
        }
        let mut buf = self.fixed17();
        let bytes = buf.as_bytes();
        let mut l = bytes.len();
        if l + 1 > MAX_LONG_DOUBLE_CHARS {
            return None;
        }
        if bytes.contains(&b'.') {
            let mut p = l - 1;
            while bytes[p] == b'0' {
                p -= 1;
                l -= 1;
            }
            if bytes[p] == b'.' {
                l -= 1;
            }
        }
        buf.truncate(l);
        if buf == "-0" {
            buf = "0".to_string();
        }
        Some(buf)
    }

    /// glibc `printf("%.17Lf")`: the exact value rounded (ties to even) to 17 decimals.
    fn fixed17(self) -> String {
        if self.is_nan() {
            return if self.neg { "-nan" } else { "nan" }.to_string();
        }
        let sign = if self.neg { "-" } else { "" };
        let e = self.lsb_exp();
        if e >= 0 {
            let int = Big::from_u128(u128::from(self.mant)).shl(e as u64);
            return format!("{sign}{}.00000000000000000", int.to_decimal());
        }
        // value * 10^17 = mant * 10^17 / 2^k, with mant * 10^17 < 2^121.
        let k = -e;
        let n = u128::from(self.mant) * 100_000_000_000_000_000u128;
        let q = if k >= 128 {
            0 // n < 2^121 < 2^(k-1): less than half a unit of the 17th decimal.
        } else {
            let q = n >> k;
            let rem = n & ((1u128 << k) - 1);
            let half = 1u128 << (k - 1);
            if rem > half || (rem == half && q & 1 == 1) {
                q + 1
            } else {
                q
            }
        };
        let digits = format!("{q:018}");
        let (int, frac) = digits.split_at(digits.len() - 17);
        format!("{sign}{int}.{frac}")
    }

    /// The nearest f64 (ties to even; overflow to infinity, gradual underflow).
    pub fn to_f64(self) -> f64 {
        let sign = if self.neg { -1.0 } else { 1.0 };
        if self.is_nan() {
            return f64::NAN;
        }
        if self.is_infinite() {
            return sign * f64::INFINITY;
        }
        if self.mant == 0 {
            return sign * 0.0;
        }
        let e = self.lsb_exp();
        let top = e + 63 - i64::from(self.mant.leading_zeros());
        if top > 1023 {
            return sign * f64::INFINITY;
        }
        if top < -1075 {
            return sign * 0.0; // Below half the smallest subnormal.
        }
        let lsb = (top - 52).max(-1074);
        let shift = lsb - e;
        let m = u128::from(self.mant);
        let mut mant = (if shift <= 0 {
            m << (-shift) as u32
        } else {
            let shift = shift as u32; // <= 65
            let q = m >> shift;
            let rem = m & ((1u128 << shift) - 1);
            let half = 1u128 << (shift - 1);
            if rem > half || (rem == half && q & 1 == 1) {
                q + 1
            } else {
                q
            }
        }) as u64;
        let mut lsb = lsb;
        if mant == 1 << 53 {
            mant >>= 1;
            lsb += 1;
        }
        let bits = if mant >= 1 << 52 {
            let biased = lsb + 1075;
            if biased >= 2047 {
                return sign * f64::INFINITY;
            }
            ((biased as u64) << 52) | (mant & ((1 << 52) - 1))
        } else {
            mant // subnormal: lsb == -1074
        };
        sign * f64::from_bits(bits)
    }
}

impl std::ops::Add for LongDouble {
    type Output = LongDouble;

    fn add(self, other: LongDouble) -> LongDouble {
        LongDouble::add(self, other)
    }
}

/// C `isspace` in the "C" locale.
fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Exponents beyond this magnitude over- or underflow whatever the (at most 5119) digits are.
const EXP_CLAMP: i64 = 1_000_000_000;

/// Parses `[+-]?[0-9]+` (sign already optional) to the end of `s`, clamped to `±EXP_CLAMP`.
fn parse_exponent(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: i64 = 0;
    for &c in digits {
        v = (v * 10 + i64::from(c - b'0')).min(EXP_CLAMP);
    }
    Some(if neg { -v } else { v })
}

/// Splits `s` into mantissa digits before and after an optional dot and the text after them.
/// `None` if there is no digit at all.
fn split_mantissa(s: &[u8], is_digit: fn(&u8) -> bool) -> Option<(&[u8], &[u8], &[u8])> {
    let int_len = s.iter().take_while(|c| is_digit(c)).count();
    let (int, rest) = s.split_at(int_len);
    let (frac, rest) = match rest.first() {
        Some(b'.') => {
            let rest = &rest[1..];
            let frac_len = rest.iter().take_while(|c| is_digit(c)).count();
            rest.split_at(frac_len)
        }
        _ => (&rest[..0], rest),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    Some((int, frac, rest))
}

/// A decimal `strtold` body (after the sign) that must span all of `s`. The result may be
/// infinite (overflow) or zero for a nonzero input (underflow): `None` in those cases too.
fn parse_decimal(neg: bool, s: &[u8]) -> Option<LongDouble> {
    let (int, frac, rest) = split_mantissa(s, u8::is_ascii_digit)?;
    let exp = match rest.first() {
        None => 0,
        Some(b'e' | b'E') => parse_exponent(&rest[1..])?,
        Some(_) => return None,
    };
    let all: Vec<u8> = int.iter().chain(frac.iter()).copied().collect();
    let start = all.iter().position(|&c| c != b'0');
    let Some(start) = start else {
        return Some(LongDouble::zero(neg));
    };
    let end = all
        .iter()
        .rposition(|&c| c != b'0')
        .map_or(all.len(), |i| i + 1);
    let digits = &all[start..end];
    // value = digits * 10^exp10
    let exp10 = exp - frac.len() as i64 + (all.len() - end) as i64;
    let n = digits.len() as i64;
    if n - 1 + exp10 >= 4933 {
        return None; // >= 10^4933: overflow.
    }
    if n + exp10 <= -4952 {
        return None; // < 10^-4952, below half the smallest subnormal: underflow to zero.
    }
    let mut d = Big::from_decimal(digits);
    let v = if exp10 >= 0 {
        // digits * 10^e = (digits * 5^e) * 2^e
        d.mul_pow5(exp10 as u64);
        round_to_ld(neg, &d, exp10, false)
    } else {
        // digits / 10^k = (digits / 5^k) * 2^-k: a quotient of 67 or 68 bits and a sticky bit.
        let k = -exp10;
        let mut m = Big::from_u128(1);
        m.mul_pow5(k as u64);
        let s = m.bit_len() as i64 + 67 - d.bit_len() as i64;
        let (num, lost) = if s >= 0 {
            (d.shl(s as u64), false)
        } else {
            let s = (-s) as u64;
            (d.shr(s), d.any_below(s))
        };
        let (q, rem) = div_small_quotient(&num, &m);
        round_to_ld(neg, &Big::from_u128(q), -k - s, lost || rem)
    };
    if v.is_finite() && !v.is_zero() {
        Some(v)
    } else {
        None
    }
}

/// A hexadecimal `strtold` body after "0x" that must span all of `s`; `None` as for decimals.
fn parse_hex(neg: bool, s: &[u8]) -> Option<LongDouble> {
    let (int, frac, rest) = split_mantissa(s, u8::is_ascii_hexdigit)?;
    let exp = match rest.first() {
        None => 0,
        Some(b'p' | b'P') => parse_exponent(&rest[1..])?,
        Some(_) => return None,
    };
    let mut h = Big::from_u128(0);
    for &c in int.iter().chain(frac.iter()) {
        let v = match c {
            b'0'..=b'9' => c - b'0',
            _ => (c | 0x20) - b'a' + 10,
        };
        h.mul_small_add(16, u32::from(v));
    }
    if h.is_zero() {
        return Some(LongDouble::zero(neg));
    }
    let e = exp - 4 * frac.len() as i64;
    let top = e + h.bit_len() as i64 - 1;
    if !(MIN_LSB - 2..=MAX_TOP).contains(&top) {
        return None; // Overflow, or below half the smallest subnormal.
    }
    let v = round_to_ld(neg, &h, e, false);
    if v.is_finite() && !v.is_zero() {
        Some(v)
    } else {
        None
    }
}

/// Rounds `(q + f) * 2^e` to nearest, ties to even, where `0 <= f < 1` and `sticky` says
/// whether `f > 0` (then `q` must have at least 3 more bits than the result keeps: true for the
/// callers, which pass 67+ bit quotients).
fn round_to_ld(neg: bool, q: &Big, e: i64, sticky: bool) -> LongDouble {
    let len = q.bit_len() as i64;
    if len == 0 {
        return LongDouble::zero(neg);
    }
    let top = e + len - 1;
    if top > MAX_TOP {
        return LongDouble::infinity(neg);
    }
    if top < MIN_LSB - 2 {
        // value < 2^(top+1) <= 2^-16446, half the smallest subnormal.
        return LongDouble::zero(neg);
    }
    let mut lsb = (top - 63).max(MIN_LSB);
    let shift = lsb - e;
    let (mut mant, round, rest) = if shift <= 0 {
        // q has at most 64 + shift bits: exact.
        (q.low_u64() << (-shift) as u32, false, sticky)
    } else {
        let s = shift as u64;
        (
            q.shr(s).low_u64(),
            q.bit(s - 1),
            sticky || q.any_below(s - 1),
        )
    };
    if round && (rest || mant & 1 == 1) {
        match mant.checked_add(1) {
            Some(m) => mant = m,
            None => {
                mant = INT_BIT;
                lsb += 1;
            }
        }
    }
    if mant == 0 {
        return LongDouble::zero(neg);
    }
    if mant & INT_BIT == 0 {
        // Subnormal: lsb == MIN_LSB.
        return LongDouble { neg, exp: 0, mant };
    }
    let exp = lsb + LSB_BIAS;
    if exp >= i64::from(EXP_SPECIAL) {
        return LongDouble::infinity(neg);
    }
    LongDouble {
        neg,
        exp: exp as u16,
        mant,
    }
}

/// `floor(n / m)` for a quotient below 2^127 (here 67 or 68 bits), and whether a remainder is
/// left; bitwise long division.
fn div_small_quotient(n: &Big, m: &Big) -> (u128, bool) {
    let mut rem = n.clone();
    let (nb, mb) = (n.bit_len(), m.bit_len());
    if nb < mb {
        return (0, !rem.is_zero());
    }
    let mut shift = nb - mb;
    let mut ms = m.shl(shift);
    let mut q: u128 = 0;
    loop {
        q <<= 1;
        if rem >= ms {
            rem.sub_assign(&ms);
            q |= 1;
        }
        if shift == 0 {
            break;
        }
        shift -= 1;
        ms = ms.shr(1);
    }
    (q, !rem.is_zero())
}

/// A little arbitrary-precision unsigned integer: little-endian u32 limbs, no high zero limbs.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Big {
    limbs: Vec<u32>,
}

impl Big {
    fn from_u128(mut v: u128) -> Big {
        let mut limbs = Vec::new();
        while v != 0 {
            limbs.push(v as u32);
            v >>= 32;
        }
        Big { limbs }
    }

    fn from_decimal(digits: &[u8]) -> Big {
        let mut b = Big::from_u128(0);
        for chunk in digits.chunks(9) {
            let mut v = 0u32;
            let mut scale = 1u32;
            for &c in chunk {
                v = v * 10 + u32::from(c - b'0');
                scale *= 10;
            }
            b.mul_small_add(scale, v);
        }
        b
    }

    fn normalize(&mut self) {
        while self.limbs.last() == Some(&0) {
            self.limbs.pop();
        }
    }

    fn is_zero(&self) -> bool {
        self.limbs.is_empty()
    }

    fn bit_len(&self) -> u64 {
        match self.limbs.last() {
            None => 0,
            Some(&top) => self.limbs.len() as u64 * 32 - u64::from(top.leading_zeros()),
        }
    }

    /// self = self * m + a.
    fn mul_small_add(&mut self, m: u32, a: u32) {
        let mut carry = u64::from(a);
        for limb in &mut self.limbs {
            let v = u64::from(*limb) * u64::from(m) + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            self.limbs.push(carry as u32);
        }
        self.normalize();
    }

    /// self *= 5^k.
    fn mul_pow5(&mut self, mut k: u64) {
        const POW5_13: u32 = 1_220_703_125;
        while k >= 13 {
            self.mul_small_add(POW5_13, 0);
            k -= 13;
        }
        if k > 0 {
            self.mul_small_add(5u32.pow(k as u32), 0);
        }
    }

    fn shl(&self, n: u64) -> Big {
        if self.is_zero() {
            return self.clone();
        }
        let (words, bits) = ((n / 32) as usize, (n % 32) as u32);
        let mut limbs = vec![0u32; words];
        if bits == 0 {
            limbs.extend_from_slice(&self.limbs);
        } else {
            let mut carry = 0u32;
            for &l in &self.limbs {
                limbs.push((l << bits) | carry);
                carry = l >> (32 - bits);
            }
            limbs.push(carry);
        }
        let mut b = Big { limbs };
        b.normalize();
        b
    }

    fn shr(&self, n: u64) -> Big {
        let words = (n / 32) as usize;
        if words >= self.limbs.len() {
            return Big::from_u128(0);
        }
        let bits = (n % 32) as u32;
        let src = &self.limbs[words..];
        let limbs = if bits == 0 {
            src.to_vec()
        } else {
            (0..src.len())
                .map(|i| {
                    let hi = src.get(i + 1).map_or(0, |&h| h << (32 - bits));
                    (src[i] >> bits) | hi
                })
                .collect()
        };
        let mut b = Big { limbs };
        b.normalize();
        b
    }

    fn bit(&self, i: u64) -> bool {
        self.limbs
            .get((i / 32) as usize)
            .is_some_and(|&l| (l >> (i % 32)) & 1 == 1)
    }

    /// Whether any of the bits below bit `i` is set.
    fn any_below(&self, i: u64) -> bool {
        let words = ((i / 32) as usize).min(self.limbs.len());
        if self.limbs[..words].iter().any(|&l| l != 0) {
            return true;
        }
        let bits = (i % 32) as u32;
        bits != 0
            && self
                .limbs
                .get(words)
                .is_some_and(|&l| l & ((1u32 << bits) - 1) != 0)
    }

    fn low_u64(&self) -> u64 {
        let lo = self.limbs.first().map_or(0, |&l| u64::from(l));
        let hi = self.limbs.get(1).map_or(0, |&l| u64::from(l));
        lo | (hi << 32)
    }

    /// self -= other, for `other <= self`.
    fn sub_assign(&mut self, other: &Big) {
        let mut borrow = 0i64;
        for (i, limb) in self.limbs.iter_mut().enumerate() {
            let o = other.limbs.get(i).map_or(0, |&l| i64::from(l));
            let mut v = i64::from(*limb) - o - borrow;
            borrow = 0;
            if v < 0 {
                v += 1 << 32;
                borrow = 1;
            }
            *limb = v as u32;
        }
        self.normalize();
    }

    /// self /= d, returning the remainder.
    fn div_small(&mut self, d: u32) -> u32 {
        let mut rem = 0u64;
        for limb in self.limbs.iter_mut().rev() {
            let v = (rem << 32) | u64::from(*limb);
            *limb = (v / u64::from(d)) as u32;
            rem = v % u64::from(d);
        }
        self.normalize();
        rem as u32
    }

    fn to_decimal(&self) -> String {
        let mut n = self.clone();
        let mut chunks = Vec::new();
        while !n.is_zero() {
            chunks.push(n.div_small(1_000_000_000));
        }
        let mut s = match chunks.pop() {
            Some(top) => top.to_string(),
            None => return "0".to_string(),
        };
        for c in chunks.iter().rev() {
            s.push_str(&format!("{c:09}"));
        }
        s
    }
}

impl PartialOrd for Big {
    fn partial_cmp(&self, other: &Big) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Big {
    fn cmp(&self, other: &Big) -> std::cmp::Ordering {
        self.limbs
            .len()
            .cmp(&other.limbs.len())
            .then_with(|| self.limbs.iter().rev().cmp(other.limbs.iter().rev()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &[u8]) -> LongDouble {
        LongDouble::parse(s).expect("parses")
    }

    /// (a, b, expected): the `%.17Lf`-human text of a + b, or "!a" / "!b" / "!ab" when
    /// `string2ld` rejects a / b / both, or "!inf" for a NaN or infinite sum. Produced by a C
    /// reference (glibc strtold, x87 long double addition, snprintf "%.17Lf", Redis' trimming).
    const CASES: &[(&[u8], &[u8], &str)] = &[
            (b"0.1", b"0.2", "0.3"),
            (b"10.5", b"0.1", "10.6"),
            (b"5.0e3", b"2.0e3", "7000"),
            (b"3.0", b"-3.0", "0"),
            (b"1", b"-1.1", "-0.1"),
            (b"17179869184", b"1.5", "17179869185.5"),
            (b"5.0e3", b"2.0e2", "5200"),
            (b"1.1", b"2.2", "3.3"),
            (b"10.5", b"-0.3", "10.2"),
            (b"0", b"3.0e-5", "0.00003"),
            (b"-2", b"1e15", "999999999999998"),
            (b"0.1", b"0", "0.1"),
            (b"-0", b"0", "0"),
            (b"-0", b"-0", "0"),
            (b"0.0000000000000000001", b"0", "0"),
            (b"0.000000000000000005", b"0", "0"),
            (b"1.5e-17", b"0", "0.00000000000000002"),
            (b"2.5e-17", b"0", "0.00000000000000002"),
            (b"1e-17", b"0", "0.00000000000000001"),
            (b"1e-18", b"0", "0"),
            (b"18446744073709551617", b"0", "18446744073709551616"),
            (b"18446744073709551615", b"1", "18446744073709551616"),
            (b"99999999999999999999999999", b"1", "100000000000000000000000000"),
            (b"123456789.987654321", b"0", "123456789.98765432099753525"),
            (b"1e18", b"0.5", "1000000000000000000.5"),
            (b"9007199254740993", b"0", "9007199254740993"),
            (b"1e20", b"0.1", "100000000000000000000"),
            (b"1e30", b"1", "1000000000000000000024696061952"),
            (b"0.000003814697265625", b"0", "0.00000381469726562"),
            (b"0.000011444091796875", b"0", "0.00001144409179688"),
            (b"1", b"1e-19", "1"),
            (b"+.5", b"-.25", "0.25"),
            (b"1.", b".5", "1.5"),
            (b"-5.5", b"2", "-3.5"),
            (b"0.1", b"0.7", "0.8"),
            (b"-1.1", b"-2.2", "-3.3"),
            (b"0.3", b"-0.1", "0.2"),
            (b"0.1", b"-0.1", "0"),
            (b"-1e-20", b"0", "0"),
            (b"1e-4950", b"1e-4950", "0"),
            (b"4e-4951", b"4e-4951", "0"),
            (b"0x1p-16445", b"0", "0"),
            (b"0x1p-16446", b"1", "!a"),
            (b"0x1.000001p-16446", b"0", "0"),
            (b"1e-4952", b"1", "!a"),
            (b"1e4933", b"1", "!a"),
            (b"1e5000", b"-1e5000", "!ab"),
            (b"1e4932", b"1e4932", "!inf"),
            (b"1e4932", b"-1e4932", "0"),
            (b"1.7e308", b"1.7e308", "340000000000000000006273556050395193590540427779388267466087171526404912102411641988123739177800600673957047683771263425322806997836001586961457274820033393094901317200013624802610872515245814124760542925564488876540887382670905522638137419003805178364056052028734561012664811529831035124023358619554802565120"),
            (b"inf", b"1", "!inf"),
            (b"inf", b"-inf", "!inf"),
            (b"-inf", b"1", "!inf"),
            (b"Infinity", b"-1", "!inf"),
            (b"nan", b"1", "!a"),
            (b"1", b"NaN", "!b"),
            (b" 1", b"1", "!a"),
            (b"1 ", b"1", "!a"),
            (b"\t1", b"1", "!a"),
            (b"", b"1", "!a"),
            (b"abc", b"1", "!a"),
            (b"1e", b"1", "!a"),
            (b"1e+5", b"1", "100001"),
            (b"1_000", b"1", "!a"),
            (b"1..2", b"1", "!a"),
            (b"0x1p3", b"1", "9"),
            (b"0x1.8p3", b"0", "12"),
            (b"0X.8", b"0", "0.5"),
            (b"0x", b"1", "!a"),
            (b"0x1p", b"1", "!a"),
            (b"1\x00abc", b"1", "!a"),
            (b"\x00", b"2.5", "!a"),
            (b"0e99999999999", b"1", "1"),
            (b"1e99999999999999999999", b"1", "!a"),
            (b"1e-99999999999999999999", b"1", "!a"),
            (b"infinit", b"1", "!a"),
            (b"-.5e-3", b"0", "-0.0005"),
        ];

    #[test]
    fn matches_the_c_reference() {
        for &(a, b, want) in CASES {
            let got = match (LongDouble::parse(a), LongDouble::parse(b)) {
                (None, None) => "!ab".to_string(),
                (None, Some(_)) => "!a".to_string(),
                (Some(_), None) => "!b".to_string(),
                (Some(x), Some(y)) => {
                    let v = x.add(y);
                    if v.is_finite() {
                        v.to_human().expect("fits")
                    } else {
                        "!inf".to_string()
                    }
                }
            };
            assert_eq!(
                got,
                want,
                "{:?} + {:?}",
                String::from_utf8_lossy(a),
                String::from_utf8_lossy(b)
            );
        }
    }

    #[test]
    fn extreme_magnitudes() {
        // The largest finite value (2^64 - 1) * 2^16320 prints all 4933 integer digits.
        let max = p(b"1.18973149535723176502e4932");
        assert_eq!(
            max,
            LongDouble {
                neg: false,
                exp: 0x7ffe,
                mant: u64::MAX
            }
        );
        let text = max.to_human().expect("fits");
        assert_eq!(text.len(), 4933);
        assert!(text.starts_with("118973149535723176502126385303"));
        assert!(text.ends_with("11989770240"));
        let neg = p(b"-0x1.fffffffffffffffep16383").to_human().expect("fits");
        assert_eq!(neg.len(), 4934);
        assert_eq!(&neg[1..], text);
        assert!(!max.add(p(b"1e4913")).is_finite());
        // Exactly halfway between the maximum and 2^16384 rounds (to even) to overflow.
        assert!(LongDouble::parse(b"0x1ffffffffffffffffp16319").is_none());
        assert_eq!(p(b"0x1fffffffffffffffe8p16315"), max);
        // Subnormals: 2^-16445 is the smallest; half of it rounds to zero and is rejected.
        let tiny = p(b"0x1p-16445");
        assert_eq!(
            tiny,
            LongDouble {
                neg: false,
                exp: 0,
                mant: 1
            }
        );
        assert!(LongDouble::parse(b"0x1p-16446").is_none());
        assert_eq!(p(b"0x1.000001p-16446"), tiny);
        assert_eq!(p(b"4e-4951"), tiny);
        assert!(LongDouble::parse(b"1e-4952").is_none());
        // Subnormal + subnormal carrying into the normal range.
        let half = p(b"0x1p-16383");
        assert_eq!(
            half,
            LongDouble {
                neg: false,
                exp: 0,
                mant: 1 << 62
            }
        );
        assert_eq!(
            half.add(half),
            LongDouble {
                neg: false,
                exp: 1,
                mant: 1 << 63
            }
        );
        assert_eq!(
            p(b"0x1p-16382").add(p(b"-0x1p-16445")),
            LongDouble {
                neg: false,
                exp: 0,
                mant: u64::MAX >> 1
            }
        );
        // Zero mantissas with absurd exponents are plain zeros.
        assert_eq!(p(b"0e99999999999"), LongDouble::ZERO);
        assert_eq!(p(b"-0x0p-99999"), LongDouble::zero(true));
    }

    #[test]
    fn far_apart_operands_keep_a_sticky_bit() {
        // 1 - (2^-65 + 2^-128): just below the tie between 1 - 2^-64 and 1, so it rounds down.
        let v = p(b"1").add(p(b"-0x8000000000000001p-128"));
        assert_eq!(
            v,
            LongDouble {
                neg: false,
                exp: 16382,
                mant: u64::MAX
            }
        );
        // Exactly the tie rounds to even (1).
        assert_eq!(p(b"1").add(p(b"-0x1p-65")), p(b"1"));
        // 1 + 2^-64 + 2^-127: just above a tie, so it rounds up; the tie alone rounds to even.
        let v = p(b"1").add(p(b"0x8000000000000001p-127"));
        assert_eq!(
            v,
            LongDouble {
                neg: false,
                exp: 16383,
                mant: INT_BIT | 1
            }
        );
        assert_eq!(p(b"1").add(p(b"0x1p-64")), p(b"1"));
    }

    #[test]
    fn length_limit_and_nul() {
        let mut s = b"0.".to_vec();
        s.extend(std::iter::repeat_n(b'1', 5117));
        assert_eq!(s.len(), 5119);
        assert_eq!(p(&s).to_human().as_deref(), Some("0.11111111111111111"));
        s.push(b'1');
        assert_eq!(LongDouble::parse(&s), None);
        // strtold stops at a NUL, short of the length Redis checks: rejected (checked
        // against redis-server 7.0.15).
        assert_eq!(LongDouble::parse(b"1\x00abc"), None);
        assert_eq!(LongDouble::parse(b"\x00"), None);
        assert_eq!(LongDouble::parse(b""), None);
        for bad in [
            &b"\x0b1"[..],
            b"\x0c1",
            b"\r1",
            b"\n1",
            b"1\n",
            b"+-1",
            b".",
            b"-",
            b"0x.p1",
            b"0x1p+",
            b"nan(1)",
        ] {
            assert_eq!(LongDouble::parse(bad), None, "{bad:?}");
        }
        assert_eq!(p(b"INF"), p(b"+infinity"));
        assert!(!p(b"-iNfInItY").is_finite());
    }

    #[test]
    fn nan_and_infinity() {
        let inf = p(b"inf");
        let ninf = p(b"-inf");
        assert_eq!(inf.to_human().as_deref(), Some("inf"));
        assert_eq!(ninf.to_human().as_deref(), Some("-inf"));
        let nan = inf.add(ninf);
        assert!(!nan.is_finite());
        assert_eq!(nan.to_human().as_deref(), Some("-nan"));
        assert!(nan.to_f64().is_nan());
        assert!(!inf.add(p(b"1")).is_finite());
        assert_eq!(p(b"0.1") + p(b"0.2"), p(b"0.1").add(p(b"0.2")));
    }

    #[test]
    fn to_f64_rounds_to_nearest() {
        assert_eq!(p(b"0.1").to_f64(), 0.1);
        assert_eq!(p(b"0.1").add(p(b"0.2")).to_f64(), 0.3);
        assert_eq!(p(b"-2.5").to_f64(), -2.5);
        assert_eq!(p(b"9007199254740993").to_f64(), 9007199254740992.0);
        assert_eq!(p(b"9007199254740995").to_f64(), 9007199254740996.0);
        assert_eq!(p(b"1.7976931348623157e308").to_f64(), f64::MAX);
        assert_eq!(p(b"1.8e308").to_f64(), f64::INFINITY);
        assert_eq!(p(b"-1e400").to_f64(), f64::NEG_INFINITY);
        assert_eq!(p(b"5e-324").to_f64(), 5e-324);
        assert_eq!(p(b"0x1p-1075").to_f64(), 0.0); // A tie: to even.
        assert_eq!(p(b"0x3p-1075").to_f64(), 1e-323);
        assert_eq!(p(b"2.4e-324").to_f64(), 0.0);
        assert_eq!(p(b"2.6e-324").to_f64(), 5e-324);
        assert_eq!(p(b"2.2250738585072014e-308").to_f64(), f64::MIN_POSITIVE);
        assert_eq!(p(b"1e-400").to_f64(), 0.0);
        assert!(p(b"-0").to_f64().is_sign_negative());
        assert_eq!(LongDouble::ZERO.to_f64(), 0.0);
    }
}
