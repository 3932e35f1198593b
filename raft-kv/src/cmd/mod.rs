//! The command table: every command's name, arity, flags, key positions and handler.
//!
//! Data commands are plain functions of `(&mut Ctx, args)`: a read runs against a snapshot, a
//! write runs inside the state machine's applier (so, later, on every replica from the Raft log).
//! Commands that act on the connection or the server (PING, MULTI, SUBSCRIBE, CLIENT, ...) are
//! `Kind::Server` and are executed by the connection layer in `server/`.
//!
//! One file per command family; each exports `COMMANDS: &[CommandSpec]`.

pub mod args;
pub mod category;
pub mod error;
pub mod table;

pub mod bitmap;
pub mod hash;
pub mod hll;
pub mod keys;
pub mod list;
pub mod server_cmds;
pub mod set;
pub mod stream;
pub mod string;
pub mod zset;

use bytes::Bytes;

pub use error::{CmdError, CmdResult};
pub use table::{lookup, specs};

use crate::storage::Ctx;

/// A data command: `args[0]` is the command name as sent.
pub type Handler = fn(&mut Ctx, &[Bytes]) -> CmdResult;

/// Finds the key arguments of commands whose keys are not a fixed range (numkeys, STREAMS ...).
pub type KeyFinder = fn(&[Bytes]) -> Vec<usize>;

#[derive(Clone, Copy)]
pub enum Kind {
    /// Reads only: runs against a consistent snapshot on the node serving the read.
    Read(Handler),
    /// Changes data: becomes a write op applied by the state machine.
    Write(Handler),
    /// Acts on the connection or server; handled in `server/`.
    Server,
}

/// Command flags as `COMMAND INFO` reports them.
pub mod flag {
    pub const WRITE: u32 = 1;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const FAST: u32 = 1 << 9;
    pub const NO_MULTI: u32 = 1 << 10;
    pub const MAY_REPLICATE: u32 = 1 << 11;

    pub const NAMES: [(u32, &str); 12] = [
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (FAST, "fast"),
        (NO_MULTI, "no_multi"),
        (MAY_REPLICATE, "may_replicate"),
    ];
}

#[derive(Clone, Copy)]
pub struct CommandSpec {
    /// Lower-case name.
    pub name: &'static str,
    /// Redis arity: N means exactly N arguments including the name, -N means at least N.
    pub arity: i32,
    pub flags: u32,
    /// Key positions as in `COMMAND INFO`: first, last (negative counts from the end), step.
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    /// Overrides first/last/step for commands with computed key positions.
    pub key_finder: Option<KeyFinder>,
    pub kind: Kind,
}

impl CommandSpec {
    pub fn is_write(&self) -> bool {
        matches!(self.kind, Kind::Write(_))
    }

    /// Whether `argc` (including the name) satisfies the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i32;
        if self.arity >= 0 {
            argc == self.arity
        } else {
            argc >= -self.arity
        }
    }

    /// Indexes of the key arguments in `args`.
    pub fn key_indexes(&self, args: &[Bytes]) -> Vec<usize> {
        if let Some(f) = self.key_finder {
            return f(args);
        }
        if self.first_key <= 0 {
            return Vec::new();
        }
        let argc = args.len() as i32;
        let last = if self.last_key < 0 {
            argc + self.last_key
        } else {
            self.last_key
        };
        let step = self.step.max(1);
        let mut out = Vec::new();
        let mut i = self.first_key;
        while i <= last && i < argc {
            out.push(i as usize);
            i += step;
        }
        out
    }

    /// The key arguments of `args`.
    pub fn keys<'a>(&self, args: &'a [Bytes]) -> Vec<&'a Bytes> {
        self.key_indexes(args)
            .into_iter()
            .map(|i| &args[i])
            .collect()
    }
}

/// Builds a spec; used by the family files to keep their tables short.
pub const fn spec(
    name: &'static str,
    arity: i32,
    flags: u32,
    keys: (i32, i32, i32),
    kind: Kind,
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        first_key: keys.0,
        last_key: keys.1,
        step: keys.2,
        key_finder: None,
        kind,
    }
}
