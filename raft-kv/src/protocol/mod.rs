//! The Redis protocol: request parsing and reply encoding (RESP2 and RESP3).

pub mod frame;

pub use frame::Frame;
