//! Durable storage of the state machine: RocksDB, the key encoding and the command context.

pub mod ctx;
pub mod encoding;
pub mod engine;
pub mod slot;

pub use ctx::Ctx;
pub use engine::{check_corruption, on_corruption, Engine, EngineOptions, StorageError};
