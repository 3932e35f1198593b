//! RaftKV: a Redis-compatible, strongly consistent, distributed key-value store.
//!
//! Data flows one way: network (`server`) -> protocol (`protocol`) -> command table (`cmd`)
//! -> state machine (`store`) -> Raft (`raftstore`) -> storage (`storage`).

pub mod cmd;
pub mod failpoint;
pub mod fuzzing;
pub mod linearizability;
pub mod meta;
pub mod metrics;
pub mod protocol;
pub mod raftstore;
pub mod routing;
pub mod storage;
pub mod store;
pub mod types;

pub mod config;
pub mod ctl;
pub mod server;
#[cfg(test)]
pub mod testutil;
pub mod tls;
