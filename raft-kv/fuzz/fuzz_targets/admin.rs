//! Fuzz target `admin`: see `raft_kv::fuzzing::admin` (`cargo test` replays its corpus).
//! `fuzz/run.sh admin`, or `cargo fuzz run --features engine admin`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| raft_kv::fuzzing::admin(data));
