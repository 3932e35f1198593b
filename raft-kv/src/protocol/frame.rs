//! Reply values and their RESP2 / RESP3 wire encoding.
//!
//! Commands build protocol-neutral `Frame`s using the richest RESP3 shape (maps, sets, doubles,
//! pairs); the encoder downgrades them for RESP2 clients the way Redis does, so command code never
//! looks at the connection's protocol version.

use bytes::{BufMut, Bytes, BytesMut};

#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// `+OK`
    Simple(String),
    /// `-ERR ...`: the full text including the error code prefix.
    Error(String),
    Integer(i64),
    Bulk(Bytes),
    /// Null bulk string: RESP2 `$-1`, RESP3 `_`.
    Null,
    /// Null array: RESP2 `*-1`, RESP3 `_`.
    NullArray,
    Array(Vec<Frame>),
    /// RESP3 map; RESP2 flat array `k1 v1 k2 v2`.
    Map(Vec<(Frame, Frame)>),
    /// RESP3 set; RESP2 array.
    Set(Vec<Frame>),
    /// Per-key replies such as XREAD's: RESP3 map; RESP2 array of `[key, value]` 2-arrays.
    KeyedMap(Vec<(Frame, Frame)>),
    /// Pairs such as `ZRANGE .. WITHSCORES`: RESP3 array of 2-arrays; RESP2 flat array.
    Pairs(Vec<(Frame, Frame)>),
    /// RESP3 double; RESP2 bulk string formatted as Redis 7.0 does (`%.17g`).
    Double(f64),
    /// RESP3 boolean; RESP2 integer 1 / 0.
    Boolean(bool),
    /// RESP3 verbatim string (`txt`); RESP2 bulk string.
    Verbatim(Bytes),
    /// RESP3 push (pub/sub messages); RESP2 array.
    Push(Vec<Frame>),
    /// Pre-encoded bytes written as-is (used to relay replies).
    Raw(Bytes),
}

impl Frame {
    pub fn ok() -> Frame {
        Frame::Simple("OK".into())
    }

    pub fn bulk(b: impl Into<Bytes>) -> Frame {
        Frame::Bulk(b.into())
    }

    pub fn bulk_or_null(b: Option<impl Into<Bytes>>) -> Frame {
        match b {
            Some(b) => Frame::Bulk(b.into()),
            None => Frame::Null,
        }
    }

    pub fn error(msg: impl Into<String>) -> Frame {
        Frame::Error(msg.into())
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Frame::Error(_))
    }

    /// Encode for a client speaking protocol `proto` (2 or 3).
    pub fn encode(&self, out: &mut BytesMut, proto: u8) {
        let resp3 = proto >= 3;
        match self {
            Frame::Simple(s) => {
                out.put_u8(b'+');
                out.put_slice(s.as_bytes());
                out.put_slice(b"\r\n");
            }
            Frame::Error(s) => {
                out.put_u8(b'-');
                // An error line must not contain CR/LF; Redis replaces them with spaces.
                for &c in s.as_bytes() {
                    out.put_u8(if c == b'\r' || c == b'\n' { b' ' } else { c });
                }
                out.put_slice(b"\r\n");
            }
            Frame::Integer(i) => {
                out.put_u8(b':');
                put_int(out, *i);
                out.put_slice(b"\r\n");
            }
            Frame::Bulk(b) => put_bulk(out, b),
            Frame::Null => out.put_slice(if resp3 { b"_\r\n" } else { b"$-1\r\n" }),
            Frame::NullArray => out.put_slice(if resp3 { b"_\r\n" } else { b"*-1\r\n" }),
            Frame::Array(items) => {
                put_header(out, b'*', items.len());
                for f in items {
                    f.encode(out, proto);
                }
            }
            Frame::Map(pairs) => {
                if resp3 {
                    put_header(out, b'%', pairs.len());
                } else {
                    put_header(out, b'*', pairs.len() * 2);
                }
                for (k, v) in pairs {
                    k.encode(out, proto);
                    v.encode(out, proto);
                }
            }
            Frame::Set(items) => {
                put_header(out, if resp3 { b'~' } else { b'*' }, items.len());
                for f in items {
                    f.encode(out, proto);
                }
            }
            Frame::KeyedMap(pairs) => {
                if resp3 {
                    put_header(out, b'%', pairs.len());
                } else {
                    put_header(out, b'*', pairs.len());
                }
                for (k, v) in pairs {
                    if !resp3 {
                        out.put_slice(b"*2\r\n");
                    }
                    k.encode(out, proto);
                    v.encode(out, proto);
                }
            }
            Frame::Pairs(pairs) => {
                if resp3 {
                    put_header(out, b'*', pairs.len());
                    for (k, v) in pairs {
                        out.put_slice(b"*2\r\n");
                        k.encode(out, proto);
                        v.encode(out, proto);
                    }
                } else {
                    put_header(out, b'*', pairs.len() * 2);
                    for (k, v) in pairs {
                        k.encode(out, proto);
                        v.encode(out, proto);
                    }
                }
            }
            Frame::Double(d) => {
                if resp3 {
                    out.put_u8(b',');
                    out.put_slice(format_double_resp3(*d).as_bytes());
                    out.put_slice(b"\r\n");
                } else {
                    put_bulk(out, format_double(*d).as_bytes());
                }
            }
            Frame::Boolean(b) => {
                if resp3 {
                    out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" });
                } else {
                    out.put_slice(if *b { b":1\r\n" } else { b":0\r\n" });
                }
            }
            Frame::Verbatim(b) => {
                if resp3 {
                    out.put_u8(b'=');
                    put_int(out, b.len() as i64 + 4);
                    out.put_slice(b"\r\ntxt:");
                    out.put_slice(b);
                    out.put_slice(b"\r\n");
                } else {
                    put_bulk(out, b);
                }
            }
            Frame::Push(items) => {
                put_header(out, if resp3 { b'>' } else { b'*' }, items.len());
                for f in items {
                    f.encode(out, proto);
                }
            }
            Frame::Raw(b) => out.put_slice(b),
        }
    }

    /// Convenience for tests and relaying: the encoded bytes.
    pub fn to_bytes(&self, proto: u8) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(&mut out, proto);
        out.freeze()
    }
}

fn put_int(out: &mut BytesMut, i: i64) {
    let mut buf = itoa_buf(i);
    out.put_slice(buf.as_bytes_mut());
}

fn put_header(out: &mut BytesMut, tag: u8, len: usize) {
    out.put_u8(tag);
    put_int(out, len as i64);
    out.put_slice(b"\r\n");
}

fn put_bulk(out: &mut BytesMut, b: &[u8]) {
    put_header(out, b'$', b.len());
    out.put_slice(b);
    out.put_slice(b"\r\n");
}

struct IntBuf {
    buf: [u8; 20],
    start: usize,
}

impl IntBuf {
    fn as_bytes_mut(&mut self) -> &[u8] {
        &self.buf[self.start..]
    }
}

/// Formats an i64 without allocating.
fn itoa_buf(i: i64) -> IntBuf {
    let mut buf = [0u8; 20];
    let mut pos = buf.len();
    let neg = i < 0;
    let mut n = i.unsigned_abs();
    loop {
        pos -= 1;
        buf[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if neg {
        pos -= 1;
        buf[pos] = b'-';
    }
    IntBuf { buf, start: pos }
}

/// Formats a double the way Redis 7.0 replies with it in RESP2 (`%.17g`, `inf`, `-inf`).
pub fn format_double(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d.is_nan() {
        return "nan".into();
    }
    format_g(d, 17)
}

/// RESP3 doubles: Redis 7.0 uses the same `%.17g` text with `inf` / `-inf`.
fn format_double_resp3(d: f64) -> String {
    format_double(d)
}

/// C's `%.<prec>g` for finite values.
pub fn format_g(d: f64, prec: usize) -> String {
    if d == 0.0 {
        return if d.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // Scientific representation with prec significant digits decides the style.
    let sci = format!("{:.*e}", prec - 1, d);
    let (mantissa, exp) = match sci.split_once('e') {
        Some(parts) => parts,
        None => return sci,
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= prec as i32 {
        let m = trim_fraction(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{}{:02}", m, sign, exp.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        trim_fraction(&format!("{:.*}", decimals, d)).to_string()
    }
}

fn trim_fraction(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(f: &Frame, proto: u8) -> String {
        String::from_utf8(f.to_bytes(proto).to_vec()).unwrap()
    }

    #[test]
    fn encodes_resp2_and_resp3() {
        assert_eq!(enc(&Frame::ok(), 2), "+OK\r\n");
        assert_eq!(enc(&Frame::Integer(-42), 2), ":-42\r\n");
        assert_eq!(
            enc(&Frame::Integer(i64::MIN), 2),
            ":-9223372036854775808\r\n"
        );
        assert_eq!(enc(&Frame::Null, 2), "$-1\r\n");
        assert_eq!(enc(&Frame::Null, 3), "_\r\n");
        assert_eq!(enc(&Frame::NullArray, 2), "*-1\r\n");
        let m = Frame::Map(vec![(Frame::bulk("a"), Frame::Integer(1))]);
        assert_eq!(enc(&m, 2), "*2\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(&m, 3), "%1\r\n$1\r\na\r\n:1\r\n");
        let p = Frame::Pairs(vec![(Frame::bulk("m"), Frame::Double(1.5))]);
        assert_eq!(enc(&p, 2), "*2\r\n$1\r\nm\r\n$3\r\n1.5\r\n");
        assert_eq!(enc(&p, 3), "*1\r\n*2\r\n$1\r\nm\r\n,1.5\r\n");
        assert_eq!(enc(&Frame::Error("ERR a\r\nb".into()), 2), "-ERR a  b\r\n");
        let k = Frame::KeyedMap(vec![(Frame::bulk("s"), Frame::Integer(1))]);
        assert_eq!(enc(&k, 2), "*1\r\n*2\r\n$1\r\ns\r\n:1\r\n");
        assert_eq!(enc(&k, 3), "%1\r\n$1\r\ns\r\n:1\r\n");
    }

    #[test]
    fn formats_doubles_like_redis_7_0() {
        assert_eq!(format_double(1.1), "1.1000000000000001");
        assert_eq!(format_double(1.5), "1.5");
        assert_eq!(format_double(3.0), "3");
        assert_eq!(format_double(-0.0), "-0");
        assert_eq!(format_double(1e20), "1e+20");
        assert_eq!(format_double(0.0001), "0.0001");
        assert_eq!(format_double(0.00001), "1.0000000000000001e-05");
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(format_double(123456789.0), "123456789");
    }
}
