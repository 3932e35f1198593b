//! Fuzzes the incremental RESP parser: arbitrary bytes, fed in arbitrary chunk sizes, must
//! never panic, and must parse the same commands whatever the chunking.
//!
//! Runs on stable Rust (`RUSTC_BOOTSTRAP=1` lets it take cargo-fuzz's `-Z` sanitizer flags;
//! add `-s none` if AddressSanitizer fails to link), from `raft-kv/`, after
//! `cargo install cargo-fuzz`:
//!
//! ```text
//! RUSTC_BOOTSTRAP=1 cargo fuzz run resp_parser -- -max_total_time=900 -rss_limit_mb=4096
//! ```
//!
//! It builds in `fuzz/target` (its own workspace: it compiles `src/protocol` by path, not
//! RocksDB). The corpus starts from the `seed-*` files in `fuzz/corpus/resp_parser/`; what a
//! run adds is git-ignored. Add `-max_len=140000` to reach the 64 KiB line limits (by default
//! inputs stop at 4 KiB).

#![no_main]

// The protocol module needs only `bytes` and std, so it is compiled straight from raft-kv's
// sources (its `crate::protocol::...` paths resolve here too) rather than through the
// raft-kv crate, which would pull in RocksDB.
#[path = "../../src/protocol/mod.rs"]
#[allow(dead_code, unused_imports)]
mod protocol;

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use protocol::Parser;

type Outcome = (Vec<Vec<Vec<u8>>>, Option<Vec<u8>>);

fn parse(data: &[u8], chunk: usize) -> Outcome {
    let mut parser = Parser::new(1 << 20);
    let mut buf = BytesMut::new();
    let mut cmds = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match parser.next(&mut buf) {
                Ok(Some(args)) => cmds.push(args.iter().map(|a| a.to_vec()).collect()),
                Ok(None) => break,
                Err(e) => return (cmds, Some(e.msg)),
            }
        }
    }
    (cmds, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    // Past 64 KiB without a newline the "too big" limits legitimately depend on how much
    // arrived at once (as in Redis), so chunking invariance holds only below that.
    if rest.len() > 60_000 {
        let _ = parse(rest, first as usize + 1);
        return;
    }
    let whole = parse(rest, rest.len().max(1));
    let chunked = parse(rest, first as usize % 17 + 1);
    assert_eq!(whole, chunked);
});
