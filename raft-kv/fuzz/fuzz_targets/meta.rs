//! Fuzz target `meta`: see `raft_kv::fuzzing::meta` (`cargo test` replays its corpus).
//! `fuzz/run.sh meta`, or `cargo fuzz run --features engine meta`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| raft_kv::fuzzing::meta(data));
