//! Compiles the node-to-node gRPC service (crates/raft/proto/transport.proto) with tonic,
//! reusing the raft crate's generated message types. protox parses the protos in pure Rust,
//! so no `protoc` installation is needed.
fn main() {
    println!("cargo:rerun-if-changed=../crates/raft/proto/transport.proto");
    println!("cargo:rerun-if-changed=../crates/raft/proto/raftpb.proto");
    let fds = protox::compile(["transport.proto"], ["../crates/raft/proto"])
        .expect("parse crates/raft/proto/transport.proto");
    tonic_prost_build::configure()
        .bytes(".")
        .extern_path(".raftpb", "::raft::eraftpb")
        .compile_fds(fds)
        .expect("generate the transport service code");
}
