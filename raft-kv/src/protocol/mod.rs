//! The Redis protocol: request parsing and reply encoding (RESP2 and RESP3), and Redis' glob
//! matching (shared by KEYS, SCAN MATCH, PSUBSCRIBE and CONFIG GET).

pub mod frame;
pub mod frame_codec;
pub mod glob;
pub mod int;
pub mod parser;
pub mod wire;

pub use frame::Frame;
pub use parser::{Parser, ProtocolError};

/// Redis' `stringmatchlen`: whether `s` matches the glob `pattern`.
pub fn matches(pattern: &[u8], s: &[u8], nocase: bool) -> bool {
    glob::matches(pattern, s, nocase)
}
