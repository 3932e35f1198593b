//! Strict Redis integer parsing (`string2ll` rules), shared by the RESP parser and commands.

/// Redis' `string2ll`: optional `-`, digits, no `+`, no leading zeros, no spaces, fits i64.
pub fn parse_i64_opt(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    if b == b"0" {
        return Some(0);
    }
    let (neg, digits) = match b[0] {
        b'-' => (true, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || digits[0] == b'0' {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else if v > i64::MAX as u64 {
        None
    } else {
        Some(v as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_i64_opt;

    #[test]
    fn integers_follow_string2ll() {
        assert_eq!(parse_i64_opt(b"0"), Some(0));
        assert_eq!(parse_i64_opt(b"-1"), Some(-1));
        assert_eq!(parse_i64_opt(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64_opt(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64_opt(b"9223372036854775808"), None);
        assert_eq!(parse_i64_opt(b"+1"), None);
        assert_eq!(parse_i64_opt(b"01"), None);
        assert_eq!(parse_i64_opt(b"-0"), None);
        assert_eq!(parse_i64_opt(b" 1"), None);
        assert_eq!(parse_i64_opt(b""), None);
        assert_eq!(parse_i64_opt(b"1a"), None);
    }
}
