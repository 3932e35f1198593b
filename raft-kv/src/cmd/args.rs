//! Argument parsing with Redis' exact rules and error messages.

use bytes::Bytes;

use super::CmdError;

/// Redis' `string2ll`: optional `-`, digits, no `+`, no leading zeros, no spaces, fits i64.
pub fn parse_i64(b: &[u8]) -> Result<i64, CmdError> {
    parse_i64_opt(b).ok_or(CmdError::NotInteger)
}

pub use crate::protocol::int::parse_i64_opt;

/// Parses a non-negative integer with `msg` as the error (Redis words these per command).
pub fn parse_u64_with(b: &[u8], err: CmdError) -> Result<u64, CmdError> {
    match parse_i64_opt(b) {
        Some(v) if v >= 0 => Ok(v as u64),
        _ => Err(err),
    }
}

/// Redis' `strtold`-based float parsing: accepts `inf`/`+inf`/`-inf` (any case), decimal and
/// exponent forms; rejects NaN, empty strings and surrounding spaces.
pub fn parse_f64(b: &[u8]) -> Result<f64, CmdError> {
    parse_f64_opt(b).ok_or(CmdError::NotFloat)
}

pub fn parse_f64_opt(b: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(b).ok()?;
    if s.is_empty() || s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
        return None;
    }
    let lower = s.to_ascii_lowercase();
    let v = match lower.as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => {
            // Rust accepts "nan"/"inf" spellings handled above and rejects hex floats, which
            // Redis would accept via strtold; those are rare enough to leave out.
            if lower.contains("nan") || lower.contains("inf") {
                return None;
            }
            lower.parse::<f64>().ok()?
        }
    };
    if v.is_nan() {
        None
    } else {
        Some(v)
    }
}

/// Case-insensitive comparison of an argument with an ASCII keyword.
pub fn is(arg: &[u8], keyword: &str) -> bool {
    arg.eq_ignore_ascii_case(keyword.as_bytes())
}

/// The command name as Redis quotes it in errors (lower-case).
pub fn cmd_name(args: &[Bytes]) -> String {
    args.first()
        .map(|n| String::from_utf8_lossy(n).to_lowercase())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_follow_strtold() {
        assert_eq!(parse_f64_opt(b"1.5"), Some(1.5));
        assert_eq!(parse_f64_opt(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64_opt(b"+INF"), Some(f64::INFINITY));
        assert_eq!(parse_f64_opt(b"1e3"), Some(1000.0));
        assert_eq!(parse_f64_opt(b".5"), Some(0.5));
        assert_eq!(parse_f64_opt(b"nan"), None);
        assert_eq!(parse_f64_opt(b" 1"), None);
        assert_eq!(parse_f64_opt(b""), None);
        assert_eq!(parse_f64_opt(b"abc"), None);
    }
}
