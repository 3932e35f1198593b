//! The deterministic state-machine transition: (stored state, write op) -> (new state, reply).
//!
//! Nothing here reads a clock or an OS random source; the op carries its time and seed.

use bytes::Bytes;

use super::op::{OpKind, WriteOp};
use crate::cmd::{self, args::cmd_name, CmdError, Kind};
use crate::protocol::Frame;
use crate::storage::encoding::{meta_key, Cf, Meta};
use crate::storage::Ctx;

/// Applies one op at sequence number `seq` inside a write context.
pub fn apply_op(ctx: &mut Ctx, seq: u64, op: &WriteOp) -> Frame {
    ctx.begin_op(seq, op.ts_ms, op.seed);
    match &op.kind {
        OpKind::Command(args) => run_command(ctx, args),
        OpKind::Multi { watched, cmds } => {
            for (key, rev) in watched {
                match ctx.key_rev(key) {
                    Ok(current) if current == *rev => {}
                    Ok(_) => return Frame::NullArray,
                    Err(e) => return e.to_frame(),
                }
            }
            Frame::Array(cmds.iter().map(|args| run_command(ctx, args)).collect())
        }
        OpKind::Expire(keys) => {
            let mut n = 0;
            for key in keys {
                match expire_if_due(ctx, key) {
                    Ok(true) => n += 1,
                    Ok(false) => {}
                    Err(e) => return e.to_frame(),
                }
            }
            Frame::Integer(n)
        }
    }
}

/// Runs one command (read or write) inside the write context.
pub fn run_command(ctx: &mut Ctx, args: &[Bytes]) -> Frame {
    let Some(name) = args.first() else {
        return CmdError::err("empty command").to_frame();
    };
    let Some(spec) = cmd::lookup(name) else {
        return CmdError::Other(format!(
            "ERR unknown command '{}'",
            String::from_utf8_lossy(name)
        ))
        .to_frame();
    };
    if !spec.arity_ok(args.len()) {
        return CmdError::WrongArity(cmd_name(args)).to_frame();
    }
    let result = match spec.kind {
        Kind::Read(h) | Kind::Write(h) => h(ctx, args),
        Kind::Server => Err(CmdError::Other(format!(
            "ERR command '{}' cannot be applied by the state machine",
            spec.name
        ))),
    };
    result.unwrap_or_else(|e| e.to_frame())
}

/// Deletes `key` if its stored record (live or not) has expired by the op's time.
fn expire_if_due(ctx: &mut Ctx, key: &[u8]) -> Result<bool, CmdError> {
    let Some(raw) = ctx.get(Cf::Meta, &meta_key(key))? else {
        return Ok(false);
    };
    match Meta::decode(&raw) {
        Some(m) if m.is_expired(ctx.now_ms()) => {
            ctx.delete_key(key)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}
