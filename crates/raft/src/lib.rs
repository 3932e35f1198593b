pub mod eraftpb {
    #![allow(missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/raftpb.rs"));
}
