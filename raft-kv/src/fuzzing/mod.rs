//! Fuzz targets: what a client or a peer can send, fed to the code that decodes it. Each
//! target must never panic, and checks a property beyond that where there is one.
//!
//! - `resp_parser` ([`resp`]): the RESP parser; the commands parsed do not depend on how
//!   the bytes are split into reads.
//! - `commands`: byte strings parsed as RESP and run as commands on a real engine, as the
//!   state machine runs them (argument parsing of every command, every data type).
//! - `wire`: node-to-node gRPC messages (prost decoding of every request) and the payloads
//!   inside them and in Raft entries: write ops, split/merge entries, proxied replies,
//!   snapshot headers, metadata snapshots. What decodes re-encodes to the same value.
//! - `meta`: metadata commands, as the admin API and the scheduler propose them, applied to
//!   a 3-node cluster's metadata: the slots stay covered exactly once after every command.
//! - `admin`: admin API request bodies (`server::admin_requests`): every one gets a clear
//!   answer, and what is accepted is checked as in `meta`.
//!
//! `raft-kv/fuzz/` (cargo-fuzz) drives them with libFuzzer (`fuzz/run.sh`); the unit tests
//! below replay its corpus (`fuzz/corpus/<target>/seed-*`) and seeded mutations of it on
//! every `cargo test`.

pub mod resp;

use std::sync::{Mutex, OnceLock};

use bytes::BytesMut;
use prost::Message as _;

use crate::meta::{MetaCmd, MetaState, NodeMeta};
use crate::protocol::frame_codec;
use crate::raftstore::transport::pb;
use crate::routing::Layout;
use crate::storage::{Ctx, Engine, EngineOptions};
use crate::store::apply::{apply_op, run_command};
use crate::store::{OpKind, WriteOp};

/// A state machine engine that fuzzed commands run on. The fuzz target keeps one for the
/// whole process (a fresh RocksDB per input would be most of the time spent): inputs see
/// what earlier ones wrote, which only widens what is explored.
pub struct FuzzDb {
    engine: Engine,
    seq: u64,
}

impl FuzzDb {
    pub fn open(dir: &std::path::Path) -> FuzzDb {
        let opts = EngineOptions {
            sync_writes: false,
            ..Default::default()
        };
        match Engine::open(dir, opts) {
            Ok(engine) => FuzzDb { engine, seq: 0 },
            Err(e) => panic!("fuzz engine at {}: {e}", dir.display()),
        }
    }

    /// Parses `data` as RESP and runs the commands as the state machine runs them.
    pub fn run(&mut self, data: &[u8]) {
        let (cmds, _) = resp::parse_all(data, data.len());
        for args in cmds.into_iter().take(64) {
            let Some(spec) = args.first().and_then(|n| crate::cmd::lookup(n)) else {
                continue;
            };
            // Whole-keyspace commands would make inputs slow without exploring parsing.
            if matches!(
                spec.name,
                "flushall" | "flushdb" | "keys" | "scan" | "debug"
            ) {
                continue;
            }
            let now = 1_700_000_000_000 + self.seq;
            let reply = if spec.is_write() {
                self.seq += 1;
                let op = WriteOp {
                    epoch: 0,
                    ts_ms: now,
                    seed: self.seq,
                    kind: OpKind::Command(args),
                };
                let mut ctx = Ctx::write(&self.engine);
                let reply = apply_op(&mut ctx, self.seq, &op);
                if let Err(e) = self.engine.write(ctx.into_batch()) {
                    panic!("fuzz engine write: {e}");
                }
                reply
            } else {
                let mut ctx = Ctx::read(&self.engine, now);
                run_command(&mut ctx, &args)
            };
            // Every reply encodes in both protocols.
            let mut out = BytesMut::new();
            reply.encode(&mut out, 2);
            reply.encode(&mut out, 3);
        }
    }
}

/// Target `commands`: RESP commands run as the state machine runs them, on one engine in
/// the temp dir for the process.
pub fn commands(data: &[u8]) {
    static DB: OnceLock<Mutex<FuzzDb>> = OnceLock::new();
    let db = DB.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("raftkv-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Mutex::new(FuzzDb::open(&dir))
    });
    let mut db = match db.lock() {
        Ok(db) => db,
        Err(poisoned) => poisoned.into_inner(),
    };
    db.run(data);
}

/// Decodes `data` as `M`; what decodes must re-encode and decode to the same value.
fn roundtrip_pb<M: prost::Message + Default + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(m) = M::decode(data) {
        let again = M::decode(m.encode_to_vec().as_slice());
        assert_eq!(again.as_ref(), Ok(&m), "protobuf round trip");
    }
}

/// Target `wire`: the first byte picks the decoder.
pub fn wire(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 16 {
        0 => roundtrip_pb::<pb::MessageBatch>(rest),
        1 => roundtrip_pb::<pb::SnapshotChunk>(rest),
        2 => roundtrip_pb::<pb::ExecRequest>(rest),
        3 => roundtrip_pb::<pb::HelloRequest>(rest),
        4 => roundtrip_pb::<pb::GroupChange>(rest),
        5 => roundtrip_pb::<pb::MetaProposal>(rest),
        6 => roundtrip_pb::<pb::JoinRequest>(rest),
        7 => roundtrip_pb::<pb::LoadReport>(rest),
        8 => {
            if let Ok(op) = WriteOp::decode(rest) {
                let bytes = op.encode();
                let again = WriteOp::decode(&bytes).map(|o| o.encode());
                assert_eq!(again.ok(), Some(bytes), "write op round trip");
            }
        }
        9 => {
            if let Ok(e) = crate::raftstore::split::SplitEntry::decode(rest) {
                let again = crate::raftstore::split::SplitEntry::decode(&e.encode());
                assert_eq!(again.ok(), Some(e), "split entry round trip");
            }
            let _ = crate::raftstore::split::AdminEntry::decode(rest);
            let _ = crate::raftstore::split::RangeState::decode(rest);
        }
        10 => {
            // Compared as bytes: a double may be NaN.
            if let Ok(f) = frame_codec::decode(rest) {
                let bytes = frame_codec::encode(&f);
                let again = frame_codec::decode(&bytes).map(|f| frame_codec::encode(&f));
                assert_eq!(again.ok(), Some(bytes), "proxied reply round trip");
            }
        }
        11 => {
            let _ = crate::raftstore::snapshot::range_of(rest);
        }
        14 => roundtrip_pb::<raft::eraftpb::ConfChangeV2>(rest),
        15 => {
            if let Ok(info) = pb::NodeInfo::decode(rest) {
                let _ = MetaState::decode(&info.meta);
            }
        }
        12 => {
            if let Ok(s) = MetaState::decode(rest) {
                let _ = s.layout();
            }
        }
        _ => {
            let _ = serde_json::from_slice::<MetaCmd>(rest);
            let _ = crate::raftstore::peer_storage::ApplyState::decode(rest);
        }
    }
}

/// The metadata of a 3-node cluster with 4 shards, as `MetaState::initial` builds it.
pub fn sample_meta() -> MetaState {
    let ids = [1u64, 2, 3];
    let nodes = ids
        .iter()
        .map(|&id| NodeMeta {
            id,
            name: format!("node{id}"),
            addr: format!("127.0.0.1:{}", 5000 + id),
            state: crate::meta::NodeState::Up,
        })
        .collect();
    let layout = match Layout::initial_with_replicas(&ids, 4, 3) {
        Ok(l) => l,
        Err(e) => panic!("sample layout: {e}"),
    };
    MetaState::initial(nodes, &layout, ids.to_vec())
}

/// Reads small numbers off the input, 0 once it runs out.
struct Bytes8<'a>(&'a [u8]);

impl Bytes8<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()]) & 0x3fff
    }

    /// Mostly an id that exists (0..8), sometimes any.
    fn id(&mut self) -> u64 {
        match self.u8() {
            b @ 0..=239 => u64::from(b % 8),
            _ => u64::from_le_bytes([self.u8(), self.u8(), 0, 0, 0, 0, 0, self.u8()]),
        }
    }
}

/// Target `meta`: a sequence of metadata commands built from the bytes, applied in order;
/// after each, the slots are still covered exactly once and the state round-trips.
pub fn meta(data: &[u8]) {
    let mut state = sample_meta();
    let mut r = Bytes8(data);
    let mut now = 1_700_000_000_000u64;
    while !r.0.is_empty() {
        now += 1000;
        let cmd = match r.u8() % 19 {
            0 => MetaCmd::BeginMigrate {
                shard: r.id(),
                from: r.id(),
                to: r.id(),
                reason: String::new(),
                now_ms: now,
            },
            1 => MetaCmd::Decommission {
                node: r.id(),
                now_ms: now,
            },
            2 => MetaCmd::FinishDecommission {
                op: r.id(),
                now_ms: now,
            },
            3 => MetaCmd::BeginSplit {
                shard: r.id(),
                at: r.u16(),
                new_id: r.id(),
                reason: String::new(),
                now_ms: now,
            },
            4 => MetaCmd::SetLeader {
                shard: r.id(),
                node: r.id(),
                reason: String::new(),
                now_ms: now,
            },
            5 => MetaCmd::FinishSplit {
                op: r.id(),
                now_ms: now,
            },
            6 => MetaCmd::BeginMerge {
                source: r.id(),
                target: r.id(),
                now_ms: now,
            },
            7 => MetaCmd::FinishMerge {
                op: r.id(),
                epoch: r.id(),
                now_ms: now,
            },
            8 => MetaCmd::BeginCreate {
                id: r.id(),
                first: r.u16(),
                last: r.u16(),
                nodes: (0..r.u8() % 4).map(|_| r.id()).collect(),
                now_ms: now,
            },
            9 => MetaCmd::FinishCreate {
                op: r.id(),
                now_ms: now,
            },
            10 => MetaCmd::AddNode {
                id: r.id(),
                name: format!("node{}", r.u8() % 6),
                addr: format!("127.0.0.1:{}", 5000 + u16::from(r.u8() % 6)),
            },
            11 => MetaCmd::Step {
                op: r.id(),
                step: ["committed", "rolled_back", "learner_added", "x"][usize::from(r.u8() % 4)]
                    .into(),
                message: String::new(),
                now_ms: now,
                unless: vec![],
            },
            12 => MetaCmd::AbortMerge {
                op: r.id(),
                source_epoch: r.id(),
                reason: String::new(),
                now_ms: now,
            },
            13 => MetaCmd::FinishMigrate {
                op: r.id(),
                now_ms: now,
            },
            14 => MetaCmd::FailOp {
                op: r.id(),
                reason: String::new(),
                now_ms: now,
            },
            15 => MetaCmd::SetSchedulerPaused {
                paused: r.u8() % 2 == 0,
            },
            16 => MetaCmd::RebuildNode {
                node: r.id(),
                token: format!("t{}", r.u8() % 3),
                now_ms: now,
            },
            17 => MetaCmd::RebuildLearner {
                op: r.id(),
                now_ms: now,
            },
            _ => MetaCmd::FinishRebuild {
                op: r.id(),
                now_ms: now,
            },
        };
        apply_checked(&mut state, &cmd);
    }
}

/// Applies `cmd`: accepted, the slots are still covered exactly once and the state
/// round-trips; refused, nothing changed.
fn apply_checked(state: &mut MetaState, cmd: &MetaCmd) {
    let before = state.clone();
    match state.apply(cmd) {
        Ok(_) => {
            if let Err(e) = state.layout() {
                panic!("{cmd:?} broke the slot map: {e}\nbefore: {before:?}");
            }
            let again = MetaState::decode(&state.encode());
            assert_eq!(again.as_ref().ok(), Some(&*state), "metadata round trip");
        }
        Err(_) => assert_eq!(*state, before, "a refused {cmd:?} changed the metadata"),
    }
}

/// Target `admin`: admin API requests (`server::admin_requests`) read against a 3-node
/// cluster's metadata. Input: a route byte, the path's id up to the first newline, then the
/// body. Every request gets an answer, never a panic: a 4xx with an `error`, a 200, or a
/// command that the metadata applies or refuses (checked as in `meta`).
pub fn admin(data: &[u8]) {
    use crate::server::admin_requests as req;
    let mut state = sample_meta();
    let Some((&route, rest)) = data.split_first() else {
        return;
    };
    let (id, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&b"shard_0"[..], rest),
    };
    let id = String::from_utf8_lossy(id);
    let now = 1_700_000_000_000;
    let parsed = match route % 7 {
        0 => req::migrate(&state, &id, body, now),
        1 => req::split(&state, &id, body, now),
        2 => req::create(&state, body, now),
        3 => req::merge(&state, body, now),
        4 => req::decommission(&state, &id, now),
        5 => req::scheduler(body).map(|cmd| (cmd, serde_json::Value::Null)),
        _ => req::transfer_leader(&state, &id, body).map(|(spec, to)| {
            let cmd = MetaCmd::SetLeader {
                shard: spec.id,
                node: to,
                reason: String::new(),
                now_ms: now,
            };
            (cmd, serde_json::Value::Null)
        }),
    };
    match parsed {
        Ok((cmd, _)) => apply_checked(&mut state, &cmd),
        Err((code, body)) => {
            let answered = code.is_client_error() && body.0["error"].is_string()
                || code == axum::http::StatusCode::OK;
            assert!(answered, "route {route}: {code} {:?}", body.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (the seed is printed, so a failure replays).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// A libFuzzer-like mutation: flip, insert, delete, duplicate a slice, or splice.
    fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
        let mut v = input.to_vec();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(v.len() + 1);
            match rng.below(6) {
                0 if !v.is_empty() => {
                    let i = at.min(v.len() - 1);
                    v[i] ^= 1 << rng.below(8);
                }
                1 => v.insert(at, rng.next() as u8),
                2 if at < v.len() => {
                    v.remove(at);
                }
                3 => {
                    let end = (at + rng.below(16)).min(v.len());
                    let piece = v[at..end].to_vec();
                    v.splice(at..at, piece);
                }
                4 => {
                    let from = rng.below(other.len() + 1);
                    let end = (from + rng.below(32)).min(other.len());
                    v.splice(at..at, other[from..end].iter().copied());
                }
                _ => {
                    let digits = [b"0".as_slice(), b"-1", b"4294967296", b"\r\n", b"*", b"$"];
                    v.splice(at..at, digits[rng.below(digits.len())].iter().copied());
                }
            }
        }
        v
    }

    fn corpus(target: &str) -> Vec<Vec<u8>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        let inputs: Vec<Vec<u8>> = files.iter().filter_map(|p| std::fs::read(p).ok()).collect();
        assert!(!inputs.is_empty(), "empty corpus {}", dir.display());
        inputs
    }

    /// The corpus, then `rounds` seeded mutations of it (`FUZZ_SEED` replays one run,
    /// `FUZZ_ROUNDS` runs longer).
    fn replay(target: &str, rounds: usize, run: &mut dyn FnMut(&[u8])) {
        let inputs = corpus(target);
        for input in &inputs {
            run(input);
        }
        let seed = std::env::var("FUZZ_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
                    | 1
            });
        let rounds = std::env::var("FUZZ_ROUNDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(rounds);
        eprintln!("fuzz {target}: {rounds} mutations, FUZZ_SEED={seed}");
        let mut rng = Rng(seed);
        for _ in 0..rounds {
            let a = &inputs[rng.below(inputs.len())];
            let b = &inputs[rng.below(inputs.len())];
            let input = mutate(&mut rng, a, b);
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&input)));
            if caught.is_err() {
                panic!("fuzz {target} failed (FUZZ_SEED={seed}) on input {input:?}");
            }
        }
    }

    #[test]
    fn resp_corpus_and_mutations() {
        replay("resp_parser", 20_000, &mut resp::resp);
    }

    #[test]
    fn commands_corpus_and_mutations() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut db = FuzzDb::open(dir.path());
        replay("commands", 3_000, &mut |d| db.run(d));
    }

    #[test]
    fn wire_corpus_and_mutations() {
        replay("wire", 20_000, &mut wire);
    }

    #[test]
    fn meta_corpus_and_mutations() {
        replay("meta", 5_000, &mut meta);
    }

    #[test]
    fn admin_corpus_and_mutations() {
        replay("admin", 10_000, &mut admin);
    }

    /// Writes the binary seeds of the `wire` corpus (run by hand after a format change:
    /// `cargo test -p raft-kv fuzzing::tests::write_wire_seeds -- --ignored`).
    #[test]
    #[ignore]
    fn write_wire_seeds() {
        use bytes::Bytes;
        use raft::eraftpb::{Entry, Message, MessageType};
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/wire");
        std::fs::create_dir_all(&dir).expect("corpus dir");
        let op = WriteOp {
            epoch: 3,
            ts_ms: 1_700_000_000_000,
            seed: 9,
            kind: OpKind::Command(vec![
                Bytes::from_static(b"SET"),
                Bytes::from_static(b"k"),
                Bytes::from_static(b"v"),
            ]),
        };
        let msg = Message {
            msg_type: MessageType::MsgAppend as i32,
            to: 2,
            from: 1,
            term: 3,
            log_term: 3,
            index: 7,
            commit: 7,
            entries: vec![Entry {
                term: 3,
                index: 8,
                data: op.encode().into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let batch = pb::MessageBatch {
            msgs: vec![pb::GroupMessage {
                group_id: 1,
                msg: Some(msg.clone()),
            }],
        };
        let chunk = pb::SnapshotChunk {
            group_id: 1,
            msg: Some(msg),
            metadata: None,
            offset: 0,
            data: b"snapshot bytes".to_vec().into(),
            last: true,
        };
        let exec = pb::ExecRequest {
            shard: 2,
            epoch: 4,
            kind: 1,
            op: op.encode().into(),
        };
        let meta = sample_meta();
        let cmd = MetaCmd::BeginSplit {
            shard: 1,
            at: 100,
            new_id: 9,
            reason: String::new(),
            now_ms: 1,
        };
        let frame = crate::protocol::Frame::Array(vec![
            crate::protocol::Frame::Integer(-7),
            crate::protocol::Frame::bulk(Bytes::from_static(b"v")),
            crate::protocol::Frame::Null,
            crate::protocol::Frame::error("ERR x"),
        ]);
        let info = pb::NodeInfo {
            node_id: 1,
            name: "node1".into(),
            meta: meta.encode().into(),
            ..Default::default()
        };
        let seeds: Vec<(u8, Vec<u8>)> = vec![
            (0, batch.encode_to_vec()),
            (1, chunk.encode_to_vec()),
            (2, exec.encode_to_vec()),
            (
                5,
                pb::MetaProposal {
                    cmd: serde_json::to_vec(&cmd).expect("json").into(),
                }
                .encode_to_vec(),
            ),
            (
                6,
                pb::JoinRequest {
                    name: "n4".into(),
                    addr: "127.0.0.1:5004".into(),
                }
                .encode_to_vec(),
            ),
            (8, op.encode()),
            (10, frame_codec::encode(&frame)),
            (12, meta.encode()),
            (13, serde_json::to_vec(&cmd).expect("json")),
            (15, info.encode_to_vec()),
        ];
        for (which, body) in seeds {
            let mut data = vec![which];
            data.extend(body);
            std::fs::write(dir.join(format!("seed-{which:02}")), data).expect("write seed");
        }
    }

    #[test]
    fn chunked_parsing_is_the_same_as_whole() {
        let stream = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n*1\r\n$4\r\nPING\r\n";
        let whole = resp::parse_all(stream, stream.len());
        assert_eq!(whole.0.len(), 3);
        for chunk in 1..8 {
            assert_eq!(resp::parse_all(stream, chunk), whole);
        }
    }
}
