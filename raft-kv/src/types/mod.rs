//! Data-structure operations per Redis type over the key encoding (one file per type, as
//! Apache Kvrocks' redis_*.cc): what the command files in `cmd/` call.

pub mod hash;
pub mod hll;
pub mod keyspace;
pub mod list;
pub mod long_double;
pub mod set;
pub mod stream;
pub mod string;
pub mod zset;
