//! Error types.

use std::fmt;

/// Errors returned by storage implementations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageError {
    /// The requested index is older than the first available entry (compacted away).
    Compacted,
    /// The requested index is newer than the last available entry.
    Unavailable,
    /// The snapshot being applied is older than the current one.
    SnapshotOutOfDate,
    /// A snapshot is being generated; try again later.
    SnapshotTemporarilyUnavailable,
    /// Any other storage failure (I/O, corruption) with a description.
    Other(String),
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::Compacted => write!(f, "log compacted"),
            StorageError::Unavailable => write!(f, "log entries unavailable"),
            StorageError::SnapshotOutOfDate => write!(f, "snapshot out of date"),
            StorageError::SnapshotTemporarilyUnavailable => {
                write!(f, "snapshot temporarily unavailable")
            }
            StorageError::Other(s) => write!(f, "storage error: {s}"),
        }
    }
}

impl std::error::Error for StorageError {}

/// Errors returned by the raft state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The proposal was dropped (e.g. a leadership transfer is in progress, the
    /// uncommitted log is full, or there is no leader to forward to).
    ProposalDropped,
    /// This node is not the leader; `leader` is the known leader, if any (0 = unknown).
    NotLeader {
        /// Id of the current leader, 0 if unknown.
        leader: u64,
    },
    /// A local-only message type (e.g. MsgHup) was passed to `step`.
    StepLocalMsg,
    /// A message from a peer that is not in the configuration (and not a response).
    StepPeerNotFound,
    /// A configuration change was rejected; the string explains why.
    ConfChangeError(String),
    /// The configuration is invalid.
    ConfigInvalid(String),
    /// The storage returned an error.
    Storage(StorageError),
    /// The message or entry could not be decoded.
    Decode(String),
    /// A request (e.g. a read) was rejected for the given reason.
    RequestRejected(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ProposalDropped => write!(f, "raft: proposal dropped"),
            Error::NotLeader { leader } => write!(f, "raft: not leader (leader hint: {leader})"),
            Error::StepLocalMsg => write!(f, "raft: cannot step raft local message"),
            Error::StepPeerNotFound => write!(f, "raft: cannot step as peer not found"),
            Error::ConfChangeError(s) => write!(f, "raft: conf change error: {s}"),
            Error::ConfigInvalid(s) => write!(f, "raft: invalid config: {s}"),
            Error::Storage(e) => write!(f, "raft: {e}"),
            Error::Decode(s) => write!(f, "raft: decode error: {s}"),
            Error::RequestRejected(s) => write!(f, "raft: request rejected: {s}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Storage(e) => Some(e),
            _ => None,
        }
    }
}

impl From<StorageError> for Error {
    fn from(e: StorageError) -> Self {
        Error::Storage(e)
    }
}

/// Result type of the crate.
pub type Result<T> = std::result::Result<T, Error>;
