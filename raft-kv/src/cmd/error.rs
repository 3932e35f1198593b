//! Command errors, spelled exactly as Redis 7 spells them.

use crate::protocol::Frame;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CmdError {
    #[error("ERR wrong number of arguments for '{0}' command")]
    WrongArity(String),
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    #[error("ERR value is not a valid float")]
    NotFloat,
    #[error("ERR syntax error")]
    Syntax,
    #[error("ERR no such key")]
    NoSuchKey,
    #[error("ERR index out of range")]
    IndexOutOfRange,
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    #[error("ERR invalid expire time in '{0}' command")]
    InvalidExpire(String),
    #[error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")]
    StringTooLong,
    #[error("ERR bit offset is not an integer or out of range")]
    BitOffset,
    #[error("ERR timeout is not a float or out of range")]
    Timeout,
    /// A storage failure: the command's effect is unknown to the client only if it was a write
    /// that reached the log; the engine reports it with context.
    #[error("ERR storage error: {0}")]
    Storage(String),
    /// Any other error: the full Redis error line, including its code (`ERR`, `NOSCRIPT`, ...).
    #[error("{0}")]
    Other(String),
}

impl CmdError {
    /// `ERR <msg>`.
    pub fn err(msg: impl std::fmt::Display) -> CmdError {
        CmdError::Other(format!("ERR {msg}"))
    }

    pub fn to_frame(&self) -> Frame {
        Frame::Error(self.to_string())
    }
}

impl From<rocksdb::Error> for CmdError {
    fn from(e: rocksdb::Error) -> Self {
        crate::storage::check_corruption(&e);
        CmdError::Storage(e.to_string())
    }
}

pub type CmdResult = Result<Frame, CmdError>;
