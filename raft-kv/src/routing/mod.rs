//! Routing: which shard owns a key, where a command goes, and how requests reach shards this
//! node does not host.
//!
//! - [`layout`]: the slot -> shard table with each shard's epoch and replicas.
//! - [`plan`]: one shard, split across shards (MGET/MSET/DEL/...), keyspace-wide, or
//!   `CROSSSLOT`.
//! - [`proxy`]: forwarding to a node that hosts the shard (gRPC `Node.Execute`).

pub mod layout;
pub mod plan;
pub mod proxy;

pub use layout::{Layout, ShardSpec};
pub use plan::{Plan, CROSSSLOT};
