//! The write op: what the state machine applies (and, later, what the Raft log carries).
//!
//! Encoding (version 2): `0x02 | ts_ms u64 | seed u64 | epoch u64 | kind u8 | body`, integers
//! big-endian; a command is `argc u32 | (len u32 | bytes)*`. Version 1 (no epoch) is still
//! read: entries written before sharding carry epoch 0, which is never checked.

use bytes::Bytes;

use crate::protocol::wire::{put_blob, WireReader};

const FORMAT_VERSION: u8 = 2;

#[derive(Clone, Debug, PartialEq)]
pub enum OpKind {
    /// One client command.
    Command(Vec<Bytes>),
    /// MULTI/EXEC: applied only if every watched key still has the revision seen at WATCH time.
    Multi {
        watched: Vec<(Bytes, u64)>,
        cmds: Vec<Vec<Bytes>>,
    },
    /// Active expiry: delete these keys if they are expired at the op's time.
    Expire(Vec<Bytes>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct WriteOp {
    /// The proposer's wall clock in ms: the op's notion of "now" on every replica.
    pub ts_ms: u64,
    /// Seed for any randomness the command needs (SPOP, SRANDMEMBER ...).
    pub seed: u64,
    /// The shard epoch the op was routed with (0: not checked). The state machine refuses an
    /// op whose epoch is not the shard's current one: its route is stale.
    pub epoch: u64,
    pub kind: OpKind,
}

impl WriteOp {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&self.ts_ms.to_be_bytes());
        out.extend_from_slice(&self.seed.to_be_bytes());
        out.extend_from_slice(&self.epoch.to_be_bytes());
        match &self.kind {
            OpKind::Command(args) => {
                out.push(1);
                put_args(&mut out, args);
            }
            OpKind::Multi { watched, cmds } => {
                out.push(2);
                out.extend_from_slice(&(watched.len() as u32).to_be_bytes());
                for (k, rev) in watched {
                    put_blob(&mut out, k);
                    out.extend_from_slice(&rev.to_be_bytes());
                }
                out.extend_from_slice(&(cmds.len() as u32).to_be_bytes());
                for c in cmds {
                    put_args(&mut out, c);
                }
            }
            OpKind::Expire(keys) => {
                out.push(3);
                put_args(&mut out, keys);
            }
        }
        out
    }

    pub fn decode(raw: &[u8]) -> Result<WriteOp, String> {
        let mut r = WireReader::new(raw, "write op");
        let version = r.u8()?;
        if version != FORMAT_VERSION && version != 1 {
            return Err(format!("unknown write op format version {version}"));
        }
        let ts_ms = r.u64()?;
        let seed = r.u64()?;
        let epoch = if version == 1 { 0 } else { r.u64()? };
        let kind = match r.u8()? {
            1 => OpKind::Command(read_args(&mut r)?),
            2 => {
                let n = r.u32()? as usize;
                let mut watched = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    let k = r.blob()?;
                    watched.push((k, r.u64()?));
                }
                let n = r.u32()? as usize;
                let mut cmds = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    cmds.push(read_args(&mut r)?);
                }
                OpKind::Multi { watched, cmds }
            }
            3 => OpKind::Expire(read_args(&mut r)?),
            k => return Err(format!("unknown write op kind {k}")),
        };
        if r.remaining() != 0 {
            return Err("trailing bytes after write op".into());
        }
        Ok(WriteOp {
            ts_ms,
            seed,
            epoch,
            kind,
        })
    }
}

fn put_args(out: &mut Vec<u8>, args: &[Bytes]) {
    out.extend_from_slice(&(args.len() as u32).to_be_bytes());
    for a in args {
        put_blob(out, a);
    }
}

/// `argc u32 | (len u32 | bytes)*`.
fn read_args(r: &mut WireReader) -> Result<Vec<Bytes>, String> {
    let n = r.u32()? as usize;
    let mut v = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        v.push(r.blob()?);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let ops = [
            WriteOp {
                ts_ms: 1,
                seed: 2,
                epoch: 0,
                kind: OpKind::Command(vec![Bytes::from("SET"), Bytes::from("k"), Bytes::new()]),
            },
            WriteOp {
                ts_ms: 3,
                seed: 4,
                epoch: 9,
                kind: OpKind::Multi {
                    watched: vec![(Bytes::from("w"), 7)],
                    cmds: vec![vec![Bytes::from("INCR"), Bytes::from("x")]],
                },
            },
            WriteOp {
                ts_ms: 5,
                seed: 6,
                epoch: 1,
                kind: OpKind::Expire(vec![Bytes::from("a")]),
            },
        ];
        for op in ops {
            let enc = op.encode();
            assert_eq!(WriteOp::decode(&enc), Ok(op));
            assert!(WriteOp::decode(&enc[..enc.len() - 1]).is_err());
        }
        assert!(WriteOp::decode(&[9]).is_err());
        // Version 1 (before epochs) still decodes.
        let mut v1 = vec![1u8];
        v1.extend_from_slice(&[0; 16]);
        v1.push(3);
        v1.extend_from_slice(&0u32.to_be_bytes());
        assert_eq!(
            WriteOp::decode(&v1).map(|o| (o.epoch, o.kind)),
            Ok((0, OpKind::Expire(vec![])))
        );
        assert!(WriteOp::decode(&[]).is_err());
    }
}
