//! Unit-test harness: a temporary engine on which commands run exactly as the state machine
//! runs them (writes applied and committed one op at a time, reads against a snapshot).

use std::sync::Arc;

use bytes::Bytes;

use crate::cmd::{self, Kind};
use crate::protocol::Frame;
use crate::storage::{Ctx, Engine, EngineOptions};
use crate::store::apply::{apply_op, run_command};
use crate::store::{OpKind, WriteOp};

pub struct TestDb {
    pub engine: Arc<Engine>,
    _dir: tempfile::TempDir,
    seq: u64,
    /// The "current time" used for both reads and writes; tests move it to exercise expiry.
    pub now_ms: u64,
    pub seed: u64,
}

impl TestDb {
    pub fn new() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let opts = EngineOptions {
            sync_writes: false,
            ..Default::default()
        };
        let engine = Arc::new(Engine::open(dir.path(), opts).expect("open engine"));
        TestDb {
            engine,
            _dir: dir,
            seq: 0,
            now_ms: 1_700_000_000_000,
            seed: 42,
        }
    }

    /// Runs one command: reads against a snapshot, writes as an applied and committed op.
    pub fn run(&mut self, argv: &[&str]) -> Frame {
        self.run_bytes(args(argv))
    }

    pub fn run_bytes(&mut self, args: Vec<Bytes>) -> Frame {
        match args.first().and_then(|n| cmd::lookup(n)) {
            Some(spec) if matches!(spec.kind, Kind::Read(_)) => {
                let mut ctx = Ctx::read(&self.engine, self.now_ms);
                run_command(&mut ctx, &args)
            }
            _ => self.apply(OpKind::Command(args)),
        }
    }

    /// Applies a write op and commits it.
    pub fn apply(&mut self, kind: OpKind) -> Frame {
        self.seq += 1;
        self.seed = self.seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let op = WriteOp {
            epoch: 0,
            ts_ms: self.now_ms,
            seed: self.seed,
            kind,
        };
        let mut ctx = Ctx::write(&self.engine);
        let reply = apply_op(&mut ctx, self.seq, &op);
        self.engine.write(ctx.into_batch()).expect("commit");
        reply
    }
}

impl Default for TestDb {
    fn default() -> Self {
        Self::new()
    }
}

/// Shorthands for expected replies.
/// Command arguments from string literals.
pub fn args(args: &[&str]) -> Vec<Bytes> {
    args.iter()
        .map(|a| Bytes::copy_from_slice(a.as_bytes()))
        .collect()
}

pub fn bulk(s: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

pub fn int(i: i64) -> Frame {
    Frame::Integer(i)
}

pub fn ok() -> Frame {
    Frame::ok()
}

pub fn err(s: &str) -> Frame {
    Frame::Error(s.into())
}

pub fn arr(items: &[&str]) -> Frame {
    Frame::Array(items.iter().map(|s| bulk(s)).collect())
}
