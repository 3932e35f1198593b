//! Fuzz target `wire`: see `raft_kv::fuzzing::wire` (`cargo test` replays its corpus).
//! `fuzz/run.sh wire`, or `cargo fuzz run --features engine wire`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| raft_kv::fuzzing::wire(data));
