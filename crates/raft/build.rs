//! Compiles proto/raftpb.proto with prost-build, parsing it with protox (pure Rust), so no
//! `protoc` installation is needed. transport.proto is not compiled here (raft-kv compiles it
//! with tonic); a test checks that it parses.
fn main() {
    println!("cargo:rerun-if-changed=proto/raftpb.proto");
    println!("cargo:rerun-if-changed=proto/transport.proto");
    let fds = protox::compile(["raftpb.proto"], ["proto"]).expect("parse proto/raftpb.proto");
    let mut cfg = prost_build::Config::new();
    cfg.bytes(["."]);
    cfg.compile_fds(fds).expect("generate raftpb code");
}
