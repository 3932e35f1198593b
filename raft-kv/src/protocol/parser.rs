//! Incremental, zero-copy request parser (RESP multibulk and inline commands).
//!
//! Follows Redis 7.0's `processMultibulkBuffer` / `processInlineBuffer` byte for byte: the
//! same limits, the same error texts, and the same leniency (the CRLF after a bulk payload is
//! skipped, not checked; `*0` / `*-1` and empty inline lines are no-ops).
//!
//! The parser keeps its progress across calls (how many bulks of the current command are
//! parsed and where they are, and how much of an unterminated line was already searched), so
//! a large command or long line arriving in many reads is scanned once.
//! Arguments of a multibulk command are slices of the frozen read buffer: no copies.

use bytes::{Buf, Bytes, BytesMut};

use super::int::parse_i64_opt;

/// Redis' PROTO_INLINE_MAX_SIZE: longest inline command / count line without a newline.
pub const INLINE_MAX: usize = 64 * 1024;
/// Redis' default proto-max-bulk-len.
pub const DEFAULT_MAX_BULK: usize = 512 * 1024 * 1024;

/// A protocol violation: the client gets this error line and the connection is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    /// The error text without the leading `-` (e.g. `ERR Protocol error: invalid bulk length`).
    /// Bytes, not a String: Redis echoes the offending byte of `expected '$', got 'x'` raw.
    pub msg: Vec<u8>,
}

impl ProtocolError {
    fn new(what: &str) -> ProtocolError {
        ProtocolError {
            msg: format!("ERR Protocol error: {what}").into_bytes(),
        }
    }

    /// The encoded error reply (`-...\r\n`), CR/LF inside replaced by spaces as Redis does.
    pub fn reply(&self) -> Bytes {
        let mut out = Vec::with_capacity(self.msg.len() + 3);
        out.push(b'-');
        out.extend(
            self.msg
                .iter()
                .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }),
        );
        out.extend_from_slice(b"\r\n");
        Bytes::from(out)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.msg).into_owned()
    }
}

/// Progress inside a multibulk command.
#[derive(Debug)]
struct Multibulk {
    /// Bulks still to read.
    left: usize,
    /// Where parsing continues, relative to the start of the buffer.
    pos: usize,
    /// Length of the bulk whose header was read, if its payload is still incomplete.
    bulk_len: Option<usize>,
    /// Parsed arguments as ranges of the buffer.
    args: Vec<(usize, usize)>,
}

#[derive(Debug)]
pub struct Parser {
    max_bulk: usize,
    /// The client has not authenticated yet: Redis 7 caps its commands at 10 arguments of
    /// 16 KiB, so an unauthenticated client cannot make the server buffer much.
    unauthenticated: bool,
    current: Option<Multibulk>,
    /// Bytes from the start of the line being waited for (inline command, count or bulk
    /// header) already searched without finding its terminator. Without it, a line trickling
    /// in a byte per read would be searched from its start every time: quadratic.
    scanned: usize,
}

impl Default for Parser {
    fn default() -> Self {
        Parser::new(DEFAULT_MAX_BULK)
    }
}

impl Parser {
    pub fn new(max_bulk: usize) -> Parser {
        Parser {
            max_bulk,
            unauthenticated: false,
            current: None,
            scanned: 0,
        }
    }

    pub fn set_max_bulk(&mut self, max_bulk: usize) {
        self.max_bulk = max_bulk;
    }

    /// See `unauthenticated`.
    pub fn set_unauthenticated(&mut self, on: bool) {
        self.unauthenticated = on;
    }

    /// Whether a command is partially parsed or a line partially searched (its bytes are
    /// still in the buffer).
    pub fn in_progress(&self) -> bool {
        self.current.is_some() || self.scanned > 0
    }

    /// Bytes the buffer must hold before the current bulk is complete (0 when unknown); lets
    /// the reader reserve a large argument's room once instead of growing step by step.
    pub fn wanted(&self, buf_len: usize) -> usize {
        match &self.current {
            Some(Multibulk {
                pos,
                bulk_len: Some(n),
                ..
            }) => (pos + n + 2).saturating_sub(buf_len),
            _ => 0,
        }
    }

    /// Parses the next command out of `buf`. `Ok(None)`: more bytes are needed (anything
    /// already parsed is remembered; `buf` must not be touched in between except to append).
    /// A complete command's bytes are removed from `buf`.
    pub fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        loop {
            if self.current.is_none() {
                if buf.is_empty() {
                    return Ok(None);
                }
                if buf[0] != b'*' {
                    match self.parse_inline(buf)? {
                        None => return Ok(None),
                        Some(args) if args.is_empty() => continue,
                        Some(args) => return Ok(Some(args)),
                    }
                }
                let Some(cr) = find_line(&mut self.scanned, buf, 0, b'\r') else {
                    if buf.len() > INLINE_MAX {
                        return Err(self.fail("too big mbulk count string"));
                    }
                    return Ok(None);
                };
                if cr + 1 >= buf.len() {
                    return Ok(None);
                }
                let count = match parse_i64_opt(&buf[1..cr]) {
                    Some(n) if n <= i32::MAX as i64 => n,
                    _ => return Err(self.fail("invalid multibulk length")),
                };
                if self.unauthenticated && count > 10 {
                    return Err(self.fail("unauthenticated multibulk length"));
                }
                if count <= 0 {
                    buf.advance(cr + 2);
                    continue;
                }
                self.current = Some(Multibulk {
                    left: count as usize,
                    pos: cr + 2,
                    bulk_len: None,
                    args: Vec::with_capacity((count as usize).min(1024)),
                });
            }
            let Some(mb) = self.current.as_mut() else {
                continue;
            };
            while mb.left > 0 {
                let len = match mb.bulk_len {
                    Some(len) => len,
                    None => {
                        let Some(cr) = find_line(&mut self.scanned, buf, mb.pos, b'\r') else {
                            if buf.len().saturating_sub(mb.pos) > INLINE_MAX {
                                return Err(self.fail("too big bulk count string"));
                            }
                            return Ok(None);
                        };
                        if cr + 1 >= buf.len() {
                            return Ok(None);
                        }
                        if buf[mb.pos] != b'$' {
                            let mut msg = b"ERR Protocol error: expected '$', got '".to_vec();
                            msg.push(buf[mb.pos]);
                            msg.push(b'\'');
                            self.reset();
                            return Err(ProtocolError { msg });
                        }
                        let len = match parse_i64_opt(&buf[mb.pos + 1..cr]) {
                            Some(n) if self.unauthenticated && n > 16384 => {
                                return Err(self.fail("unauthenticated bulk length"))
                            }
                            Some(n) if n >= 0 && (n as u64) <= self.max_bulk as u64 => n as usize,
                            _ => return Err(self.fail("invalid bulk length")),
                        };
                        mb.pos = cr + 2;
                        mb.bulk_len = Some(len);
                        len
                    }
                };
                // The payload and its (unchecked) CRLF terminator.
                if buf.len() < mb.pos + len + 2 {
                    return Ok(None);
                }
                mb.args.push((mb.pos, mb.pos + len));
                mb.pos += len + 2;
                mb.bulk_len = None;
                mb.left -= 1;
            }
            let Some(mb) = self.current.take() else {
                continue;
            };
            let frozen = buf.split_to(mb.pos).freeze();
            return Ok(Some(
                mb.args.iter().map(|&(s, e)| frozen.slice(s..e)).collect(),
            ));
        }
    }

    /// Forgets the command in progress (after a protocol error: the connection is closed).
    fn reset(&mut self) {
        self.current = None;
        self.scanned = 0;
    }

    fn fail(&mut self, what: &str) -> ProtocolError {
        self.reset();
        ProtocolError::new(what)
    }

    /// An inline (telnet) command: one line split with `sdssplitargs` rules. `Some(vec![])`
    /// for an empty line (consumed, no command).
    fn parse_inline(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let Some(nl) = find_line(&mut self.scanned, buf, 0, b'\n') else {
            if buf.len() > INLINE_MAX {
                return Err(self.fail("too big inline request"));
            }
            return Ok(None);
        };
        let mut end = nl;
        if end > 0 && buf[end - 1] == b'\r' {
            end -= 1;
        }
        let args =
            split_args(&buf[..end]).ok_or_else(|| self.fail("unbalanced quotes in request"))?;
        buf.advance(nl + 1);
        Ok(Some(args.into_iter().map(Bytes::from).collect()))
    }
}

/// C's `strchr` as Redis uses it to find the end of the line starting at `start` (the search
/// also stops at a NUL byte, and then never finds it), resuming after the `scanned` bytes a
/// previous call already searched. A found terminator resets `scanned`: the caller consumes
/// the line, or waits for the single byte after a CR and searches once more.
fn find_line(scanned: &mut usize, buf: &[u8], start: usize, byte: u8) -> Option<usize> {
    let from = start.saturating_add(*scanned).min(buf.len());
    match buf[from..].iter().position(|&c| c == byte || c == 0) {
        Some(i) if buf[from + i] == byte => {
            *scanned = 0;
            Some(from + i)
        }
        // A NUL: stay on it, so the next search stops there at once.
        Some(i) => {
            *scanned = from + i - start;
            None
        }
        None => {
            *scanned = buf.len().saturating_sub(start);
            None
        }
    }
}

fn is_space(c: u8) -> bool {
    // C's isspace in the "C" locale.
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Redis' `sdssplitargs`: whitespace-separated tokens, `"..."` with `\n \r \t \b \a \xHH`
/// escapes, `'...'` with only `\'`; a closing quote must be followed by a space or the end.
/// Like the C original, the line ends at the first NUL byte. `None` on unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let line = match line.iter().position(|&c| c == 0) {
        Some(nul) => &line[..nul],
        None => line,
    };
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let mut args = Vec::new();
    let mut p = 0;
    loop {
        while p < line.len() && is_space(line[p]) {
            p += 1;
        }
        if p >= line.len() {
            return Some(args);
        }
        let mut cur = Vec::new();
        let (mut inq, mut insq) = (false, false);
        loop {
            let c = at(p);
            if inq {
                if c == b'\\' && at(p + 1) == b'x' {
                    if let (Some(h), Some(l)) = (hex_val(at(p + 2)), hex_val(at(p + 3))) {
                        cur.push(h * 16 + l);
                        p += 4;
                        continue;
                    }
                }
                if c == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    cur.push(match at(p) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return None;
                    }
                    p += 1;
                    break;
                } else if c == 0 {
                    return None;
                } else {
                    cur.push(c);
                }
            } else if insq {
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return None;
                    }
                    p += 1;
                    break;
                } else if c == 0 {
                    return None;
                } else {
                    cur.push(c);
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => {
                        if c != 0 {
                            p += 1;
                        }
                        break;
                    }
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    _ => cur.push(c),
                }
            }
            p += 1;
        }
        args.push(cur);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, ProtocolError> {
        let mut p = Parser::default();
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(cmd) = p.next(&mut buf)? {
            out.push(cmd.iter().map(|b| b.to_vec()).collect());
        }
        Ok(out)
    }

    fn cmd(args: &[&str]) -> Vec<Vec<u8>> {
        args.iter().map(|a| a.as_bytes().to_vec()).collect()
    }

    fn err_text(input: &[u8]) -> String {
        parse_all(input).unwrap_err().text()
    }

    #[test]
    fn parses_multibulk_and_pipelines() {
        let got = parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n").unwrap();
        assert_eq!(got, vec![cmd(&["GET", "k"]), cmd(&["PING"])]);
        // Binary-safe payloads, including CR/LF and NUL inside.
        let got = parse_all(b"*2\r\n$3\r\nSET\r\n$4\r\na\r\n\0\r\n").unwrap();
        assert_eq!(got, vec![vec![b"SET".to_vec(), b"a\r\n\0".to_vec()]]);
        // Empty bulk.
        assert_eq!(
            parse_all(b"*1\r\n$0\r\n\r\n").unwrap(),
            vec![vec![Vec::<u8>::new()]]
        );
    }

    #[test]
    fn empty_commands_are_skipped() {
        let got = parse_all(b"*0\r\n*-1\r\n\r\n\n  \r\n*1\r\n$4\r\nPING\r\n").unwrap();
        assert_eq!(got, vec![cmd(&["PING"])]);
    }

    #[test]
    fn every_split_point_gives_the_same_commands() {
        let input: &[u8] =
            b"*3\r\n$3\r\nSET\r\n$5\r\nhello\r\n$10\r\n0123456789\r\nPING x\r\n*1\r\n$4\r\nQUIT\r\n";
        let whole = parse_all(input).unwrap();
        assert_eq!(whole.len(), 3);
        for split in 0..=input.len() {
            let mut p = Parser::default();
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            for chunk in [&input[..split], &input[split..]] {
                buf.extend_from_slice(chunk);
                while let Some(c) = p.next(&mut buf).unwrap() {
                    out.push(c.iter().map(|b| b.to_vec()).collect::<Vec<_>>());
                }
            }
            assert_eq!(out, whole, "split at {split}");
            assert!(buf.is_empty());
        }
        // One byte at a time.
        let mut p = Parser::default();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for &b in input {
            buf.extend_from_slice(&[b]);
            while let Some(c) = p.next(&mut buf).unwrap() {
                out.push(c.iter().map(|b| b.to_vec()).collect::<Vec<_>>());
            }
        }
        assert_eq!(out, whole);
    }

    #[test]
    fn protocol_errors_match_redis() {
        assert_eq!(
            err_text(b"*abc\r\n"),
            "ERR Protocol error: invalid multibulk length"
        );
        assert_eq!(
            err_text(b"*3000000000\r\n"),
            "ERR Protocol error: invalid multibulk length"
        );
        assert_eq!(
            err_text(b"*+1\r\n"),
            "ERR Protocol error: invalid multibulk length"
        );
        assert_eq!(
            err_text(b"*\r\n"),
            "ERR Protocol error: invalid multibulk length"
        );
        assert_eq!(
            err_text(b"*1\r\n$-1\r\n"),
            "ERR Protocol error: invalid bulk length"
        );
        assert_eq!(
            err_text(b"*1\r\n$x\r\n"),
            "ERR Protocol error: invalid bulk length"
        );
        assert_eq!(
            err_text(b"*1\r\n$536870913\r\n"),
            "ERR Protocol error: invalid bulk length"
        );
        assert_eq!(
            err_text(b"*1\r\n$99999999999999999999999\r\n"),
            "ERR Protocol error: invalid bulk length"
        );
        assert_eq!(
            err_text(b"*1\r\n+foo\r\n"),
            "ERR Protocol error: expected '$', got '+'"
        );
        let e = parse_all(b"*1\r\n\x01abc\r\n").unwrap_err();
        assert_eq!(
            e.reply(),
            Bytes::from_static(b"-ERR Protocol error: expected '$', got '\x01'\r\n")
        );
        assert_eq!(
            err_text(b"set a \"b\r\n"),
            "ERR Protocol error: unbalanced quotes in request"
        );
        assert_eq!(
            err_text(b"echo \"a\"b\r\n"),
            "ERR Protocol error: unbalanced quotes in request"
        );
        let big = vec![b'a'; INLINE_MAX + 1];
        assert_eq!(err_text(&big), "ERR Protocol error: too big inline request");
        let mut big = b"*".to_vec();
        big.extend(vec![b'1'; INLINE_MAX + 1]);
        assert_eq!(
            err_text(&big),
            "ERR Protocol error: too big mbulk count string"
        );
        let mut big = b"*1\r\n$".to_vec();
        big.extend(vec![b'1'; INLINE_MAX + 1]);
        assert_eq!(
            err_text(&big),
            "ERR Protocol error: too big bulk count string"
        );
    }

    #[test]
    fn limits_wait_for_more_data_below_the_cap() {
        let mut p = Parser::default();
        let mut buf = BytesMut::from(&vec![b'a'; INLINE_MAX][..]);
        assert_eq!(p.next(&mut buf), Ok(None));
        assert!(p.in_progress());
        // A huge announced count or length just waits for data, without allocating it.
        let mut p = Parser::default();
        let mut buf = BytesMut::from(&b"*2147483647\r\n$536870912\r\nabc"[..]);
        assert_eq!(p.next(&mut buf), Ok(None));
        assert!(p.in_progress());
        assert_eq!(p.wanted(buf.len()), 536870912 + 2 - 3);
        assert!(buf.capacity() < 1 << 20);
    }

    /// Feeds `head`, then `n` bytes `fill` one per read, then `tail`; checks that each read
    /// searched only the new byte of the unterminated line starting at `line_start`.
    fn trickle(
        head: &[u8],
        line_start: usize,
        fill: u8,
        n: usize,
        tail: &[u8],
    ) -> Result<Vec<Vec<u8>>, ProtocolError> {
        let mut p = Parser::default();
        let mut buf = BytesMut::from(head);
        assert_eq!(p.next(&mut buf)?, None);
        for _ in 0..n {
            buf.extend_from_slice(&[fill]);
            assert_eq!(p.next(&mut buf)?, None);
            assert_eq!(
                line_start + p.scanned,
                buf.len(),
                "searched only the new byte"
            );
        }
        buf.extend_from_slice(tail);
        let args = p.next(&mut buf)?.expect("a complete command");
        Ok(args.iter().map(|a| a.to_vec()).collect())
    }

    #[test]
    fn a_line_trickling_in_is_searched_once() {
        // Found by fuzzing: a 64 KiB `*111...` count line fed a byte per read took 20 s (ASan
        // build), as every read searched the unterminated line again from its start (quadratic).
        let n = INLINE_MAX - 20;
        let v = "v".repeat(n);
        assert_eq!(
            trickle(b"SET k ", 0, b'v', n, b"\r\n"),
            Ok(cmd(&["SET", "k", &v]))
        );
        let e = |r: Result<_, ProtocolError>| r.unwrap_err().text();
        assert_eq!(
            e(trickle(b"*", 0, b'1', n, b"\r\n")),
            "ERR Protocol error: invalid multibulk length"
        );
        assert_eq!(
            e(trickle(b"*2\r\n$3\r\nGET\r\n$", 13, b'1', n, b"\r\n")),
            "ERR Protocol error: invalid bulk length"
        );
        // The 64 KiB limits still apply.
        assert_eq!(
            e(trickle(b"x", 0, b'x', INLINE_MAX, b"")),
            "ERR Protocol error: too big inline request"
        );
        assert_eq!(
            e(trickle(b"*", 0, b'1', INLINE_MAX, b"")),
            "ERR Protocol error: too big mbulk count string"
        );
        assert_eq!(
            e(trickle(b"*1\r\n$", 4, b'1', INLINE_MAX, b"")),
            "ERR Protocol error: too big bulk count string"
        );
        // Behind a NUL the terminator is never found (C's strchr): the search stops at the
        // NUL again at once instead of walking on.
        let mut p = Parser::default();
        let mut buf = BytesMut::from(&b"*1\0"[..]);
        for _ in 0..1000 {
            buf.extend_from_slice(b"\r\n");
            assert_eq!(p.next(&mut buf), Ok(None));
            assert_eq!(p.scanned, 2);
        }
    }

    #[test]
    fn unauthenticated_clients_are_capped_like_redis() {
        let mut p = Parser::default();
        p.set_unauthenticated(true);
        let mut b = BytesMut::from(&b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n"[..]);
        assert_eq!(p.next(&mut b).unwrap().map(|a| a.len()), Some(2));
        let mut b = BytesMut::from(&b"*11\r\n"[..]);
        assert_eq!(
            p.next(&mut b).unwrap_err().text(),
            "ERR Protocol error: unauthenticated multibulk length"
        );
        let mut b = BytesMut::from(&b"*1\r\n$16385\r\n"[..]);
        assert_eq!(
            p.next(&mut b).unwrap_err().text(),
            "ERR Protocol error: unauthenticated bulk length"
        );
        p.set_unauthenticated(false);
        let mut b = BytesMut::from(&b"*1\r\n$16385\r\n"[..]);
        assert_eq!(p.next(&mut b).unwrap(), None);
    }

    #[test]
    fn max_bulk_is_configurable() {
        let mut p = Parser::new(4);
        let mut buf = BytesMut::from(&b"*1\r\n$4\r\nabcd\r\n*1\r\n$5\r\nabcde\r\n"[..]);
        assert_eq!(
            p.next(&mut buf).unwrap().unwrap(),
            vec![Bytes::from("abcd")]
        );
        assert_eq!(
            p.next(&mut buf).unwrap_err().text(),
            "ERR Protocol error: invalid bulk length"
        );
    }

    #[test]
    fn crlf_after_bulk_is_not_checked_like_redis() {
        // Redis skips two bytes after a payload without looking at them.
        let got = parse_all(b"*2\r\n$4\r\nPING\r\n$1\r\nabXPING\r\n").unwrap();
        assert_eq!(got, vec![cmd(&["PING", "a"]), cmd(&["PING"])]);
    }

    #[test]
    fn multibulk_args_share_the_read_buffer() {
        let mut p = Parser::default();
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n"[..]);
        let base = buf.as_ptr() as usize;
        let args = p.next(&mut buf).unwrap().unwrap();
        assert_eq!(args[1].as_ptr() as usize, base + 17);
    }

    #[test]
    fn inline_follows_sdssplitargs() {
        let split = |s: &[u8]| split_args(s).map(|v| v.into_iter().collect::<Vec<_>>());
        assert_eq!(split(b"  set a   b  "), Some(cmd(&["set", "a", "b"])));
        assert_eq!(split(b""), Some(vec![]));
        assert_eq!(
            split(b"echo \"\\x41\\n\\t\\\"\""),
            Some(cmd(&["echo", "A\n\t\""]))
        );
        assert_eq!(split(b"echo \"\\xZZ\""), Some(cmd(&["echo", "xZZ"])));
        assert_eq!(
            split(b"echo 'a\\'b' 'c\\n'"),
            Some(cmd(&["echo", "a'b", "c\\n"]))
        );
        assert_eq!(split(b"echo a\"b c\"d"), None);
        assert_eq!(split(b"echo a\"b c\""), Some(cmd(&["echo", "ab c"])));
        assert_eq!(split(b"echo \"\""), Some(cmd(&["echo", ""])));
        assert_eq!(split(b"echo 'abc"), None);
        assert_eq!(split(b"echo \"abc\\\""), None);
        assert_eq!(split(b"a\0b c"), Some(cmd(&["a"])));
        assert_eq!(split(b"a\x0bb"), Some(cmd(&["a\x0bb"])));
        let got = parse_all(b"SET k \"hello world\"\r\nGET k\nPING\r\n").unwrap();
        assert_eq!(
            got,
            vec![
                cmd(&["SET", "k", "hello world"]),
                cmd(&["GET", "k"]),
                cmd(&["PING"])
            ]
        );
    }

    #[test]
    fn arbitrary_input_never_panics() {
        // A small deterministic fuzz: random bytes biased towards protocol characters.
        let alphabet = b"*$\r\n0123456789-+ \"'\\xabc";
        let mut state = 0x1234_5678_9abc_def0u64;
        for _ in 0..3000 {
            let mut input = Vec::new();
            let len = (state >> 60) as usize + 1;
            for _ in 0..len * 4 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                input.push(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            let mut p = Parser::default();
            let mut buf = BytesMut::new();
            for chunk in input.chunks(3) {
                buf.extend_from_slice(chunk);
                while let Ok(Some(_)) = p.next(&mut buf) {}
            }
        }
    }
}
