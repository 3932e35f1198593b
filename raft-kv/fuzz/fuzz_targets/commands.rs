//! Fuzz target `commands`: see `raft_kv::fuzzing::commands` (`cargo test` replays its corpus).
//! `fuzz/run.sh commands`, or `cargo fuzz run --features engine commands`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| raft_kv::fuzzing::commands(data));
