//! Fuzzes the incremental RESP parser: arbitrary bytes, fed in arbitrary chunk sizes, must
//! never panic, and must parse the same commands whatever the chunking. The check itself is
//! `raft-kv/src/fuzzing/resp.rs`, which `cargo test` also runs over this corpus.
//!
//! Runs on stable Rust (`RUSTC_BOOTSTRAP=1` lets it take cargo-fuzz's `-Z` sanitizer flags;
//! add `-s none` if AddressSanitizer fails to link), from `raft-kv/`, after
//! `cargo install cargo-fuzz` (or `fuzz/run.sh resp_parser`):
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

// The protocol module and the check need only `bytes` and std, so they are compiled straight
// from raft-kv's sources (their `crate::protocol::...` paths resolve here too) rather than
// through the raft-kv crate, which would pull in RocksDB.
#[path = "../../src/protocol/mod.rs"]
#[allow(dead_code, unused_imports)]
mod protocol;

#[path = "../../src/fuzzing/resp.rs"]
mod resp;

libfuzzer_sys::fuzz_target!(|data: &[u8]| resp::resp(data));
