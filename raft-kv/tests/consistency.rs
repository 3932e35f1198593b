//! Jepsen-style consistency test: concurrent clients run GET/SET/INCR/APPEND against a real
//! 3- or 5-node cluster while a nemesis kills (-9) and restarts nodes, pauses them (SIGSTOP /
//! SIGCONT) and cuts a minority off through the fault-injection hook. Afterwards everything is
//! healed, the cluster must serve again, every node must return the same final values, and the
//! whole history, final reads included, must be linearizable (`raft_kv::linearizability`).
//!
//! `RAFTKV_SEED=<n>` replays the nemesis schedule and the clients' choices (not their timing);
//! the seed is printed at the start. `RAFTKV_CONSISTENCY_SECS=<n>` runs the workload for `n`
//! seconds instead of the CI default.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use common::cluster::Cluster;
use common::{http_post, reply_len, resp};
use raft_kv::linearizability::{self, Op, OpKind, Outcome, Ret};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CLIENTS: usize = 6;
/// Past this a request counts as unknown-outcome and the client reconnects.
const OP_TIMEOUT: Duration = Duration::from_secs(2);
/// Workload length in CI; the whole test stays around 60-90 s per cluster.
const DEFAULT_SECS: u64 = 60;
/// How long the cluster may take to serve again once every fault is undone.
const RECOVERY: Duration = Duration::from_secs(10);
/// Register keys: GET and SET of unique values.
const REGISTERS: [&str; 2] = ["reg0", "reg1"];
/// Counter key: GET and INCR.
const COUNTER: &str = "ctr";
/// Log keys (`log0`, `log1`, ...): GET and APPEND of unique fragments. A new one every this
/// many seconds keeps values short, which keeps the checker fast.
const LOG_EPOCH_SECS: u64 = 10;
/// Error replies the server promises mean "not applied".
const NOT_APPLIED: [&str; 4] = ["TRYAGAIN", "CLUSTERDOWN", "NOTLEADER", "MOVED"];
/// Client ids of the harness's own ops (availability check, final reads), after the workers'.
const PROBE_CLIENT: usize = 100;

/// The two tests would share two cores between up to eight nodes; run one cluster at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Three nodes serve reads by leader lease: the lease must hold under pauses and partitions.
#[test]
fn consistency_3_nodes() {
    run(3);
}

#[test]
fn consistency_5_nodes() {
    run(5);
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
    )
}

fn micros_since(t0: Instant) -> u64 {
    u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX)
}

fn run(nodes: usize) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let seed = env_u64("RAFTKV_SEED").unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let secs = env_u64("RAFTKV_CONSISTENCY_SECS").unwrap_or(DEFAULT_SECS);
    println!(
        "consistency, {nodes} nodes: seed {seed} (replay with RAFTKV_SEED={seed}), \
         workload {secs}s, {CLIENTS} clients"
    );

    let mut rng = StdRng::seed_from_u64(seed);
    let mut cluster = Harness::start(nodes);
    let ports: Vec<u16> = cluster.nodes().iter().map(|n| n.redis_port).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let t0 = Instant::now();
    let mut history: Vec<Op> = Vec::new();

    rt.block_on(wait_writable(&ports));
    println!(
        "[{:>8.3}s] cluster accepts writes",
        t0.elapsed().as_secs_f64()
    );

    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let port = ports[c % nodes];
            rt.spawn(client(c, port, seed, t0, Arc::clone(&stop)))
        })
        .collect();

    let (faults, nemesis_log) = nemesis(
        &mut cluster,
        &mut rng,
        t0,
        Instant::now() + Duration::from_secs(secs),
    );

    stop.store(true, Ordering::Relaxed);
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    let mut ok_per_client = Vec::new();
    for (c, w) in workers.into_iter().enumerate() {
        let log = rt
            .block_on(async { tokio::time::timeout(3 * OP_TIMEOUT, w).await })
            .unwrap_or_else(|_| panic!("client {c} did not stop"))
            .unwrap_or_else(|e| panic!("client {c} failed: {e}"));
        assert!(
            log.anomalies.is_empty(),
            "client {c} got replies of the wrong type (seed {seed}):\n{}",
            log.anomalies.join("\n")
        );
        for (e, k) in log.errors {
            *errors.entry(e).or_default() += k;
        }
        ok_per_client.push(
            log.ops
                .iter()
                .filter(|o| matches!(o.outcome, Outcome::Ok(_)))
                .count(),
        );
        history.extend(log.ops);
    }

    let crashed = cluster.crashed();
    assert!(
        crashed.is_empty(),
        "nodes crashed (seed {seed}): {crashed:?}"
    );
    cluster
        .heal()
        .unwrap_or_else(|e| panic!("healing the cluster failed (seed {seed}): {e}"));
    println!("[{:>8.3}s] all faults undone", t0.elapsed().as_secs_f64());

    rt.block_on(check_available(&ports, t0, &mut history))
        .unwrap_or_else(|e| panic!("{e} (seed {seed})"));
    let keys: BTreeSet<Vec<u8>> = history.iter().map(|o| o.key.clone()).collect();
    rt.block_on(final_reads(&ports, &keys, t0, &mut history))
        .unwrap_or_else(|e| panic!("{e} (seed {seed})"));

    let count = |f: fn(&Outcome) -> bool| history.iter().filter(|o| f(&o.outcome)).count();
    let ok = count(|o| matches!(o, Outcome::Ok(_)));
    let fail = count(|o| matches!(o, Outcome::Fail));
    let unknown = count(|o| matches!(o, Outcome::Unknown));
    let started = Instant::now();
    let verdict = linearizability::check(&history);
    println!(
        "consistency, {nodes} nodes, seed {seed}: {} ops ({ok} ok, {fail} failed, {unknown} \
         unknown) on {} keys, {} faults; ok ops per client {ok_per_client:?}; error replies \
         {errors:?}; checked in {:?}",
        history.len(),
        keys.len(),
        faults,
        started.elapsed()
    );
    if let Err(v) = verdict {
        let dump = dump_key(&history, &v.key, &nemesis_log, nodes, seed);
        panic!(
            "{}: {v}\nseed {seed} (replay with RAFTKV_SEED={seed}); this key's history and the \
             nemesis log: {dump}",
            if v.is_inconclusive() {
                "linearizability check INCONCLUSIVE"
            } else {
                "NOT LINEARIZABLE"
            }
        );
    }

    // A run where nothing got through proves nothing.
    for (c, ok) in ok_per_client.iter().enumerate() {
        assert!(
            *ok > 0,
            "client {c} (node {}) never got a reply (seed {seed})",
            c % nodes + 1
        );
    }
    for kind in ["SET", "INCR", "APPEND"] {
        assert!(
            history
                .iter()
                .any(|o| matches!(o.outcome, Outcome::Ok(_)) && command_name(&o.kind) == kind),
            "no {kind} succeeded (seed {seed})"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// A minimal RESP client: one request at a time, so a timeout can simply drop the connection.

#[derive(Debug)]
enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Other(Vec<u8>),
}

fn parse_reply(raw: &[u8]) -> Reply {
    let line = || {
        String::from_utf8_lossy(raw.get(1..raw.len().saturating_sub(2)).unwrap_or(&[])).into_owned()
    };
    match raw.first() {
        Some(b'+') => Reply::Status(line()),
        Some(b'-') => Reply::Error(line()),
        Some(b':') => match line().parse() {
            Ok(n) => Reply::Int(n),
            Err(_) => Reply::Other(raw.to_vec()),
        },
        Some(b'_') => Reply::Bulk(None),
        Some(b'$') if raw.starts_with(b"$-1\r\n") => Reply::Bulk(None),
        Some(b'$') => {
            let start = raw
                .iter()
                .position(|&b| b == b'\n')
                .map_or(raw.len(), |p| p + 1);
            let end = raw.len().saturating_sub(2).max(start);
            Reply::Bulk(Some(raw[start..end].to_vec()))
        }
        _ => Reply::Other(raw.to_vec()),
    }
}

struct Conn {
    stream: TcpStream,
    pending: Vec<u8>,
}

impl Conn {
    async fn connect(port: u16) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            pending: Vec::new(),
        })
    }

    async fn call(&mut self, args: &[&[u8]]) -> std::io::Result<Reply> {
        self.stream.write_all(&resp(args)).await?;
        let mut buf = [0u8; 16 * 1024];
        loop {
            if let Some(n) = reply_len(&self.pending) {
                let raw: Vec<u8> = self.pending.drain(..n).collect();
                return Ok(parse_reply(&raw));
            }
            let n = self.stream.read(&mut buf).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.pending.extend_from_slice(&buf[..n]);
        }
    }
}

fn command_name(kind: &OpKind) -> &'static str {
    match kind {
        OpKind::Get => "GET",
        OpKind::Set(_) => "SET",
        OpKind::Incr => "INCR",
        OpKind::Append(_) => "APPEND",
    }
}

/// What became of a request: the outcome for the checker, and for the run's summary the
/// first word of an error reply, or "timeout" / "connection lost".
struct Classified {
    outcome: Outcome,
    error: Option<String>,
}

impl Classified {
    fn new(outcome: Outcome, error: &str) -> Classified {
        Classified {
            outcome,
            error: Some(error.to_string()),
        }
    }

    fn error_reply(outcome: Outcome, reply: &str) -> Classified {
        Self::new(outcome, reply.split(' ').next().unwrap_or(reply))
    }
}

/// Sends `kind` on `key` and classifies the result as the checker needs it. `Err` is a reply
/// of the wrong type (a server bug, reported as such). A transport error or timeout drops
/// the connection.
async fn execute(conn: &mut Option<Conn>, key: &[u8], kind: &OpKind) -> Result<Classified, String> {
    let Some(c) = conn.as_mut() else {
        // Never sent.
        return Ok(Classified::new(Outcome::Fail, "no connection"));
    };
    let name = command_name(kind).as_bytes();
    let args: Vec<&[u8]> = match kind {
        OpKind::Get | OpKind::Incr => vec![name, key],
        OpKind::Set(v) | OpKind::Append(v) => vec![name, key, v],
    };
    let reply = match tokio::time::timeout(OP_TIMEOUT, c.call(&args)).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(_)) => {
            *conn = None;
            return Ok(Classified::new(Outcome::Unknown, "connection lost"));
        }
        Err(_) => {
            *conn = None;
            return Ok(Classified::new(Outcome::Unknown, "timeout"));
        }
    };
    let ok = |ret| {
        Ok(Classified {
            outcome: Outcome::Ok(ret),
            error: None,
        })
    };
    match (kind, reply) {
        (_, Reply::Error(e)) if NOT_APPLIED.iter().any(|p| e.starts_with(p)) => {
            Ok(Classified::error_reply(Outcome::Fail, &e))
        }
        // INCR on a non-integer runs as a no-op that fails: a definite outcome.
        (OpKind::Incr, Reply::Error(e)) if e.starts_with("ERR value is not an integer") => {
            ok(Ret::Error)
        }
        // UNCERTAIN, or anything else: may or may not have been applied.
        (_, Reply::Error(e)) => Ok(Classified::error_reply(Outcome::Unknown, &e)),
        (OpKind::Get, Reply::Bulk(v)) => ok(Ret::Value(v)),
        (OpKind::Set(_), Reply::Status(s)) if s == "OK" => ok(Ret::Okay),
        (OpKind::Incr | OpKind::Append(_), Reply::Int(n)) => ok(Ret::Int(n)),
        (kind, reply) => Err(format!(
            "{} {}: unexpected reply {}",
            command_name(kind),
            String::from_utf8_lossy(key),
            match reply {
                Reply::Other(raw) => raw.escape_ascii().to_string(),
                other => format!("{other:?}"),
            }
        )),
    }
}

/// One op on a fresh connection, recorded like a client's.
async fn probe(port: u16, client: usize, key: &[u8], kind: OpKind, t0: Instant) -> Op {
    let invoke = micros_since(t0);
    let mut conn = match tokio::time::timeout(OP_TIMEOUT, Conn::connect(port)).await {
        Ok(Ok(c)) => Some(c),
        _ => None,
    };
    let outcome = execute(&mut conn, key, &kind)
        .await
        .map_or(Outcome::Unknown, |c| c.outcome);
    let complete = micros_since(t0);
    Op {
        client,
        key: key.to_vec(),
        kind,
        invoke,
        complete: (outcome != Outcome::Unknown).then_some(complete),
        outcome,
    }
}

// ---------------------------------------------------------------------------------------------
// Clients.

#[derive(Default)]
struct ClientLog {
    ops: Vec<Op>,
    anomalies: Vec<String>,
    /// Error replies by their first word, timeouts, lost connections.
    errors: BTreeMap<String, usize>,
}

/// The next op: registers see GET/SET, the counter GET/INCR, the current log key GET/APPEND;
/// written values are unique (`c{client}-{n}`).
fn choose(rng: &mut StdRng, client: usize, n: u64, t0: Instant) -> (Vec<u8>, OpKind) {
    let value = format!("c{client}-{n}");
    let read = rng.gen_bool(0.4);
    match rng.gen_range(0..4) {
        0 | 1 => {
            let key = REGISTERS[rng.gen_range(0..REGISTERS.len())];
            let kind = if read {
                OpKind::Get
            } else {
                OpKind::Set(value.into_bytes())
            };
            (key.as_bytes().to_vec(), kind)
        }
        2 => {
            let kind = if read { OpKind::Get } else { OpKind::Incr };
            (COUNTER.as_bytes().to_vec(), kind)
        }
        _ => {
            let key = format!("log{}", t0.elapsed().as_secs() / LOG_EPOCH_SECS);
            let kind = if read {
                OpKind::Get
            } else {
                OpKind::Append(format!("{value},").into_bytes())
            };
            (key.into_bytes(), kind)
        }
    }
}

async fn client(id: usize, port: u16, seed: u64, t0: Instant, stop: Arc<AtomicBool>) -> ClientLog {
    let mut rng = StdRng::seed_from_u64(seed ^ (id as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut log = ClientLog::default();
    let mut conn: Option<Conn> = None;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        if conn.is_none() {
            match tokio::time::timeout(OP_TIMEOUT, Conn::connect(port)).await {
                Ok(Ok(c)) => conn = Some(c),
                _ => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            }
        }
        n += 1;
        let (key, kind) = choose(&mut rng, id, n, t0);
        let invoke = micros_since(t0);
        let outcome = match execute(&mut conn, &key, &kind).await {
            Ok(c) => {
                if let Some(e) = c.error {
                    *log.errors.entry(e).or_default() += 1;
                }
                c.outcome
            }
            Err(anomaly) => {
                log.anomalies.push(anomaly);
                Outcome::Unknown
            }
        };
        let complete = micros_since(t0);
        match outcome {
            // No leader yet, most likely: don't spin.
            Outcome::Fail => tokio::time::sleep(Duration::from_millis(50)).await,
            Outcome::Unknown => tokio::time::sleep(Duration::from_millis(20)).await,
            Outcome::Ok(_) => {}
        }
        log.ops.push(Op {
            client: id,
            key,
            kind,
            invoke,
            complete: (outcome != Outcome::Unknown).then_some(complete),
            outcome,
        });
    }
    log
}

// ---------------------------------------------------------------------------------------------
// Cluster-level checks.

async fn wait_writable(ports: &[u16]) {
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(20);
    for attempt in 0usize.. {
        let port = ports[attempt % ports.len()];
        let op = probe(port, PROBE_CLIENT, b"ready", OpKind::Set(b"1".to_vec()), t0).await;
        if matches!(op.outcome, Outcome::Ok(_)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no node accepted a SET within 20s of startup (last: {:?})",
            op.outcome
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A SET through some node, then a GET through another, within [`RECOVERY`]. Both join the
/// history.
async fn check_available(ports: &[u16], t0: Instant, history: &mut Vec<Op>) -> Result<(), String> {
    let deadline = Instant::now() + RECOVERY;
    let mut set_ok = false;
    let mut k = 0usize;
    loop {
        k += 1;
        let port = ports[k % ports.len()];
        let op = if set_ok {
            probe(port, PROBE_CLIENT + 1, b"avail", OpKind::Get, t0).await
        } else {
            let v = format!("a{k}").into_bytes();
            probe(port, PROBE_CLIENT, b"avail", OpKind::Set(v), t0).await
        };
        let ok = matches!(op.outcome, Outcome::Ok(_));
        history.push(op);
        if ok && set_ok {
            println!(
                "[{:>8.3}s] cluster serves again",
                t0.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        set_ok |= ok;
        if Instant::now() > deadline {
            return Err(format!(
                "cluster not available within {RECOVERY:?} after healing (SET {})",
                if set_ok { "ok, GET failed" } else { "failed" }
            ));
        }
        if !ok {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Reads every key through every node (retrying refusals) until all nodes agree, at most
/// three rounds a second apart: an unknown-outcome write may still land in between, which is
/// legal. Every read joins the history.
async fn final_reads(
    ports: &[u16],
    keys: &BTreeSet<Vec<u8>>,
    t0: Instant,
    history: &mut Vec<Op>,
) -> Result<(), String> {
    let mut last = Vec::new();
    for round in 0..3 {
        let deadline = Instant::now() + RECOVERY;
        let mut seen: Vec<BTreeMap<&[u8], Option<Vec<u8>>>> = Vec::new();
        for (i, &port) in ports.iter().enumerate() {
            let mut values = BTreeMap::new();
            for key in keys {
                loop {
                    let op = probe(port, PROBE_CLIENT + 2 + i, key, OpKind::Get, t0).await;
                    let value = match &op.outcome {
                        Outcome::Ok(Ret::Value(v)) => Some(v.clone()),
                        _ => None,
                    };
                    history.push(op);
                    if let Some(v) = value {
                        values.insert(key.as_slice(), v);
                        break;
                    }
                    if Instant::now() > deadline {
                        return Err(format!(
                            "node n{} could not serve GET {} within {RECOVERY:?} after healing",
                            i + 1,
                            String::from_utf8_lossy(key)
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            seen.push(values);
        }
        if seen.windows(2).all(|w| w[0] == w[1]) {
            println!(
                "[{:>8.3}s] final reads agree on {} keys across {} nodes (round {})",
                t0.elapsed().as_secs_f64(),
                keys.len(),
                ports.len(),
                round + 1
            );
            return Ok(());
        }
        last = seen
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let shown: Vec<String> = m
                    .iter()
                    .map(|(k, v)| {
                        format!(
                            "{}={}",
                            String::from_utf8_lossy(k),
                            v.as_deref()
                                .map_or("nil".into(), |v| String::from_utf8_lossy(v).into_owned())
                        )
                    })
                    .collect();
                format!("n{}: {}", i + 1, shown.join(" "))
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(format!(
        "nodes disagree on final values after healing:\n{}",
        last.join("\n")
    ))
}

// ---------------------------------------------------------------------------------------------
// Nemesis.

/// The cluster under fault injection: remembers paused nodes so everything can be undone, and
/// on a panic keeps the data directories and prints the nodes' log tails.
struct Harness {
    cluster: Cluster,
    paused: Vec<bool>,
    flags: Vec<String>,
    /// Membership changes done (each at most once a run): a node joined, one decommissioned.
    joined: bool,
    decommissioned: bool,
}

impl Harness {
    fn start(n: usize) -> Harness {
        // Enables the `/debug/partition` hook; nodes inherit this process's environment, and
        // the tests in this binary run one at a time (SERIAL).
        std::env::set_var("RAFTKV_FAULT_INJECTION", "1");
        // A small log-compaction threshold makes nodes that were down or cut off catch up by
        // snapshot, so snapshot install runs under faults too; four shards put several Raft
        // groups (and, with 5 nodes, proxying to non-hosting nodes) under the same faults.
        // A node down for 3 s counts as dead: the scheduler then rebuilds its replicas
        // elsewhere (with 5 nodes) and rolls back merges waiting for it, under the faults.
        // RAFTKV_NODE_FLAGS overrides.
        let flags = std::env::var("RAFTKV_NODE_FLAGS").unwrap_or_else(|_| {
            "--raft-log-gc-threshold 400 --initial-shards 4 --node-down-after-secs 3".to_string()
        });
        let mut flags: Vec<String> = flags.split_whitespace().map(str::to_string).collect();
        // The 3-node run reads by lease (no round trip), the 5-node run by ReadIndex.
        if n == 3 && !flags.iter().any(|f| f == "--read-mode") {
            flags.extend(["--read-mode".to_string(), "lease".to_string()]);
        }
        let args: Vec<&str> = flags.iter().map(String::as_str).collect();
        Harness {
            cluster: Cluster::start(n, &args),
            paused: vec![false; n],
            flags,
            joined: false,
            decommissioned: false,
        }
    }

    fn nodes(&self) -> &[common::cluster::Node] {
        &self.cluster.nodes
    }

    fn size(&self) -> usize {
        self.cluster.nodes.len()
    }

    fn kill9(&mut self, i: usize) {
        // SIGKILL ends a stopped process too.
        self.cluster.nodes[i].kill9();
        self.paused[i] = false;
    }

    fn restart(&mut self, i: usize) {
        self.kill9(i);
        self.cluster.nodes[i].spawn();
    }

    fn pause(&mut self, i: usize) {
        if self.cluster.nodes[i].is_running() && !self.paused[i] {
            self.cluster.nodes[i].signal("STOP");
            self.paused[i] = true;
        }
    }

    /// A new node joins through a running one (no clients and no faults on it).
    fn join(&mut self) -> String {
        let Some(via) = self.cluster.nodes.iter().position(|n| n.is_running()) else {
            return "join skipped: no node running".into();
        };
        let args: Vec<&str> = self.flags.iter().map(String::as_str).collect();
        let i = self.cluster.join_node(via, &args);
        self.paused.push(false);
        self.joined = true;
        format!(
            "{} joins through {}",
            self.cluster.nodes[i].name, self.cluster.nodes[via].name
        )
    }

    /// Decommissions one of the first `n` nodes: the scheduler drains it while the faults go
    /// on; it keeps running (and serving its clients through other nodes) once removed.
    fn decommission(&mut self, rng: &mut StdRng, n: usize) -> String {
        let Some(via) = self.cluster.nodes.iter().find(|n| n.is_running()) else {
            return "decommission skipped: no node running".into();
        };
        let name = format!("n{}", rng.gen_range(0..n) + 1);
        self.decommissioned = true;
        match http_post(
            via.http_port,
            &format!("/admin/node/{name}/decommission"),
            "",
        ) {
            Ok((line, reply)) => format!("decommission {name}: {line} {}", reply.trim()),
            Err(e) => format!("decommission {name}: {e}"),
        }
    }

    fn resume(&mut self, i: usize) {
        if self.paused[i] {
            self.cluster.nodes[i].signal("CONT");
            self.paused[i] = false;
        }
    }

    /// Makes node `i` drop all Raft traffic to and from `peers` (none: heal).
    fn set_partition(&self, i: usize, peers: &[usize]) -> Result<(), String> {
        self.set_cut(i, "", peers)
    }

    /// Node `i`'s cut from `peers`, one way: `out:` (it sends them nothing) or `in:` (it
    /// hears nothing from them); "" both ways.
    fn set_cut(&self, i: usize, way: &str, peers: &[usize]) -> Result<(), String> {
        let nodes = &self.cluster.nodes;
        let body = peers
            .iter()
            .map(|&p| format!("{way}{}", nodes[p].name))
            .collect::<Vec<_>>()
            .join(",");
        match http_post(nodes[i].http_port, "/debug/partition", &body) {
            Ok((status, _)) if status.contains(" 200") => Ok(()),
            Ok((status, reply)) => Err(format!(
                "{}: POST /debug/partition {body:?}: {status} {reply}",
                nodes[i].name
            )),
            Err(e) => Err(format!("{}: POST /debug/partition: {e}", nodes[i].name)),
        }
    }

    /// Cuts `minority` off from every other node, on both sides.
    fn partition(&self, minority: &[usize]) -> Result<(), String> {
        let majority: Vec<usize> = (0..self.size()).filter(|i| !minority.contains(i)).collect();
        for &i in minority {
            self.set_partition(i, &majority)?;
        }
        for &i in &majority {
            self.set_partition(i, minority)?;
        }
        Ok(())
    }

    /// Clears every running node's partition, retrying for up to `within`.
    fn heal_partitions(&self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        for i in 0..self.size() {
            if !self.cluster.nodes[i].is_running() {
                continue;
            }
            loop {
                match self.set_partition(i, &[]) {
                    Ok(()) => break,
                    Err(e) if Instant::now() > deadline => return Err(e),
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        }
        Ok(())
    }

    /// Undoes every fault: resumes paused nodes, restarts dead ones, clears partitions.
    fn heal(&mut self) -> Result<(), String> {
        for i in 0..self.size() {
            self.resume(i);
            if !self.cluster.nodes[i].is_running() {
                self.cluster.nodes[i].spawn();
            }
        }
        self.heal_partitions(Duration::from_secs(10))
    }

    /// Nodes that exited without being killed (crashes), with their exit status.
    fn crashed(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        for node in &mut self.cluster.nodes {
            if let Some(status) = node.wait_exit(Duration::ZERO) {
                out.push(format!("{} exited: {status}", node.name));
            }
        }
        out
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.cluster.tmp.disable_cleanup(true);
            eprintln!(
                "cluster data directories and node logs kept in {}\n{}",
                self.cluster.tmp.path().display(),
                self.cluster.logs()
            );
        }
        // Node's own Drop resumes and kills each process.
    }
}

/// Cycles through faults until `until`: kill -9 and restart, SIGSTOP and SIGCONT, a
/// minority partitioned away, or one node cut off one way (asymmetric) or with lossy or
/// slow links; each lasts 1-4 s with 1-3 s of health in between, and at most a
/// minority is ever affected. Between faults it starts splits, merges and (5 nodes)
/// migrations, a node's join and another's decommission; nodes down for 3 s also get the
/// scheduler's repairs and merge rollbacks. Returns the number of faults and the log of what it did (also
/// printed).
fn nemesis(
    cluster: &mut Harness,
    rng: &mut StdRng,
    t0: Instant,
    until: Instant,
) -> (usize, Vec<String>) {
    let n = cluster.size();
    let mut faults = 0;
    let mut log = Vec::new();
    let mut note = |msg: String| {
        let line = format!("[{:>8.3}s] {msg}", t0.elapsed().as_secs_f64());
        println!("{line}");
        log.push(line);
    };
    loop {
        // A healthy gap, cut short at the end of the run.
        let gap = Duration::from_millis(rng.gen_range(1000..=3000));
        std::thread::sleep(gap.min(until.saturating_duration_since(Instant::now())));
        if Instant::now() >= until {
            break;
        }
        // Faults are held their full length even past `until`, then undone.
        let hold = Duration::from_millis(rng.gen_range(1000..=4000));
        faults += 1;
        // Shards split and merge while all this goes on, and with more nodes than replicas
        // per shard, replicas move too, a node joins and one is decommissioned.
        let kinds = if n > 3 { 7 } else { 5 };
        match rng.gen_range(0..kinds) {
            6 => {
                faults -= 1;
                if !cluster.joined {
                    note(cluster.join());
                } else if !cluster.decommissioned {
                    note(cluster.decommission(rng, n));
                } else {
                    note(start_migration(cluster, rng));
                }
                continue;
            }
            3 => {
                faults -= 1;
                note(start_split(cluster, rng));
                continue;
            }
            4 => {
                faults -= 1;
                note(start_merge(cluster, rng));
                continue;
            }
            5 => {
                faults -= 1;
                note(start_migration(cluster, rng));
                continue;
            }
            0 => {
                let i = rng.gen_range(0..n);
                note(format!("kill -9 n{} for {hold:?}", i + 1));
                cluster.kill9(i);
                std::thread::sleep(hold);
                cluster.restart(i);
                note(format!("n{} restarted", i + 1));
            }
            1 => {
                let i = rng.gen_range(0..n);
                note(format!("SIGSTOP n{} for {hold:?}", i + 1));
                cluster.pause(i);
                std::thread::sleep(hold);
                cluster.resume(i);
                note(format!("SIGCONT n{}", i + 1));
            }
            2 if rng.gen_bool(0.4) => {
                // Asymmetric: one node cannot send to the others but hears them (a leader
                // must lose its lease and step down), or hears nothing but still sends (its
                // elections must not disrupt the others); or its links lose or delay what
                // it sends.
                let i = rng.gen_range(0..n);
                let (way, what) = [
                    ("out:", "cannot send"),
                    ("in:", "cannot hear"),
                    ("drop40:", "loses 40% of what it sends"),
                    ("slow300:", "sends with 300 ms delays"),
                ][rng.gen_range(0..4)];
                let others: Vec<usize> = (0..n).filter(|&j| j != i).collect();
                note(format!("one-way fault: n{} {what} for {hold:?}", i + 1));
                if let Err(e) = cluster.set_cut(i, way, &others) {
                    panic!("fault hook failed: {e}");
                }
                std::thread::sleep(hold);
                if let Err(e) = cluster.heal_partitions(Duration::from_secs(10)) {
                    panic!("healing the partition failed: {e}");
                }
                note("one-way fault healed".into());
            }
            _ if n >= 5 && rng.gen_bool(0.5) => {
                // A bridge: two halves that cannot reach each other, both reaching one node.
                let mut ids: Vec<usize> = (0..n).collect();
                ids.shuffle(rng);
                let (bridge, rest) = (ids[0], &ids[1..]);
                let (a, b) = rest.split_at(rest.len() / 2);
                let name =
                    |v: &[usize]| v.iter().map(|i| format!("n{}", i + 1)).collect::<Vec<_>>();
                note(format!(
                    "bridge: {:?} | n{} | {:?} for {hold:?}",
                    name(a),
                    bridge + 1,
                    name(b)
                ));
                for (side, other) in [(a, b), (b, a)] {
                    for &i in side {
                        if let Err(e) = cluster.set_partition(i, other) {
                            panic!("fault hook failed: {e}");
                        }
                    }
                }
                std::thread::sleep(hold);
                if let Err(e) = cluster.heal_partitions(Duration::from_secs(10)) {
                    panic!("healing the partition failed: {e}");
                }
                note("bridge healed".into());
            }
            _ => {
                let size = rng.gen_range(1..=(n - 1) / 2);
                let mut ids: Vec<usize> = (0..n).collect();
                ids.shuffle(rng);
                let minority = &ids[..size];
                let names: Vec<String> = minority.iter().map(|i| format!("n{}", i + 1)).collect();
                note(format!("partition {names:?} from the rest for {hold:?}"));
                if let Err(e) = cluster.partition(minority) {
                    panic!("fault hook failed (is RAFTKV_FAULT_INJECTION implemented?): {e}");
                }
                std::thread::sleep(hold);
                if let Err(e) = cluster.heal_partitions(Duration::from_secs(10)) {
                    panic!("healing the partition failed: {e}");
                }
                note("partition healed".into());
            }
        }
        let crashed = cluster.crashed();
        assert!(crashed.is_empty(), "nodes crashed: {crashed:?}");
    }
    (faults, log)
}

/// Asks a running node to move a random shard's replica to a node without one; the migration
/// then runs alongside the following faults. Returns what happened, for the nemesis log.
fn start_migration(cluster: &Harness, rng: &mut StdRng) -> String {
    let nodes = cluster.nodes();
    let Some(node) = nodes.iter().find(|n| n.is_running()) else {
        return "migration skipped: no node running".into();
    };
    let (line, body) = common::http_get(node.http_port, "/admin/shards");
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) else {
        return format!("migration skipped: /admin/shards said {line}");
    };
    let shards = v["shards"].as_array().cloned().unwrap_or_default();
    let Some(shard) = shards.choose(rng) else {
        return "migration skipped: no shards".into();
    };
    let replicas: Vec<String> = shard["replicas"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let others: Vec<String> = nodes
        .iter()
        .map(|n| n.name.clone())
        .filter(|n| !replicas.contains(n))
        .collect();
    let (Some(from), Some(to)) = (replicas.choose(rng), others.choose(rng)) else {
        return "migration skipped: no candidate".into();
    };
    let id = shard["id"].as_str().unwrap_or("?");
    let body = format!(r#"{{"from":"{from}","to":"{to}"}}"#);
    match http_post(node.http_port, &format!("/admin/shard/{id}/migrate"), &body) {
        Ok((line, reply)) => format!("migrate {id} {from} -> {to}: {line} {}", reply.trim()),
        Err(e) => format!("migrate {id} {from} -> {to}: {e}"),
    }
}

/// Asks a running node to split a random shard in the middle; the split then runs alongside
/// the following faults. Returns what happened, for the nemesis log.
fn start_split(cluster: &Harness, rng: &mut StdRng) -> String {
    let Some(node) = cluster.nodes().iter().find(|n| n.is_running()) else {
        return "split skipped: no node running".into();
    };
    let (line, body) = common::http_get(node.http_port, "/admin/shards");
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) else {
        return format!("split skipped: /admin/shards said {line}");
    };
    let shards = v["shards"].as_array().cloned().unwrap_or_default();
    let Some(shard) = shards.choose(rng) else {
        return "split skipped: no shards".into();
    };
    let id = shard["id"].as_str().unwrap_or("?");
    match http_post(node.http_port, &format!("/admin/shard/{id}/split"), "") {
        Ok((line, reply)) => format!("split {id}: {line} {}", reply.trim()),
        Err(e) => format!("split {id}: {e}"),
    }
}

/// Asks a running node to merge a random pair of adjacent shards on the same nodes.
fn start_merge(cluster: &Harness, rng: &mut StdRng) -> String {
    let Some(node) = cluster.nodes().iter().find(|n| n.is_running()) else {
        return "merge skipped: no node running".into();
    };
    let (line, body) = common::http_get(node.http_port, "/admin/shards");
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) else {
        return format!("merge skipped: /admin/shards said {line}");
    };
    let mut shards = v["shards"].as_array().cloned().unwrap_or_default();
    shards.sort_by_key(|s| s["slots"][0].as_u64());
    let sorted = |s: &serde_json::Value| {
        let mut r: Vec<String> = s["replicas"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        r.sort();
        r
    };
    let pairs: Vec<(String, String)> = shards
        .windows(2)
        .filter(|w| sorted(&w[0]) == sorted(&w[1]))
        .map(|w| {
            let id = |s: &serde_json::Value| s["id"].as_str().unwrap_or("?").to_string();
            (id(&w[0]), id(&w[1]))
        })
        .collect();
    let Some((a, b)) = pairs.choose(rng) else {
        return "merge skipped: no adjacent shards on the same nodes".into();
    };
    let body = format!(r#"{{"sources":["{a}","{b}"],"target":"{a}"}}"#);
    match http_post(node.http_port, "/admin/shard/merge", &body) {
        Ok((line, reply)) => format!("merge {b} into {a}: {line} {}", reply.trim()),
        Err(e) => format!("merge {b} into {a}: {e}"),
    }
}

/// Writes the ops on `key` (by invocation time) and the nemesis log to a file for post-mortems.
fn dump_key(history: &[Op], key: &[u8], faults: &[String], nodes: usize, seed: u64) -> String {
    let path = std::env::temp_dir().join(format!("raftkv-consistency-{nodes}n-seed{seed}.history"));
    let mut ops: Vec<(usize, &Op)> = history
        .iter()
        .enumerate()
        .filter(|(_, o)| o.key == key)
        .collect();
    ops.sort_by_key(|(_, o)| o.invoke);
    let mut text = String::from("# nemesis (seconds since start; op times are in microseconds)\n");
    for f in faults {
        text.push_str(f);
        text.push('\n');
    }
    text.push_str(&format!("# ops on {}\n", String::from_utf8_lossy(key)));
    for (i, op) in ops {
        text.push_str(&format!("#{i} {op:?}\n"));
    }
    match std::fs::write(&path, text) {
        Ok(()) => path.display().to_string(),
        Err(e) => format!("(could not write {}: {e})", path.display()),
    }
}
