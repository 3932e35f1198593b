//! Fuzz target `resp_parser`: the commands (and the error) parsed from a byte string do not
//! depend on how the bytes are split into reads, and nothing panics.
//!
//! Uses only `crate::protocol` and `bytes`: the cargo-fuzz target compiles this file and
//! `src/protocol` by path, so a fuzz build of the parser needs no RocksDB.

use bytes::{Bytes, BytesMut};

use crate::protocol::parser::{Parser, DEFAULT_MAX_BULK, INLINE_MAX};

/// What parsing produced: the commands, then the error if the stream ends in one.
pub type Outcome = (Vec<Vec<Bytes>>, Option<Vec<u8>>);

/// Parses `data` as it would arrive in reads of `chunk` bytes.
pub fn parse_all(data: &[u8], chunk: usize) -> Outcome {
    let mut parser = Parser::new(DEFAULT_MAX_BULK);
    let mut buf = BytesMut::new();
    let mut cmds = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match parser.next(&mut buf) {
                Ok(Some(args)) => cmds.push(args),
                Ok(None) => break,
                Err(e) => return (cmds, Some(e.msg)),
            }
        }
    }
    (cmds, None)
}

/// The first byte picks a read size, the rest is the stream.
pub fn resp(data: &[u8]) {
    let Some((&first, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(first % 17) + 1;
    // Past INLINE_MAX the outcome depends on read sizes in Redis too (a line longer than
    // that is refused only while its newline has not arrived).
    if stream.len() >= INLINE_MAX - 4096 {
        let _ = parse_all(stream, chunk);
        return;
    }
    let whole = parse_all(stream, stream.len());
    assert_eq!(
        whole,
        parse_all(stream, chunk),
        "parse differs with reads of {chunk}"
    );
}
