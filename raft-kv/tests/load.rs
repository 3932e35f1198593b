//! Load with faults: 1,000 concurrent clients (one TCP connection each) on a 3-node cluster
//! while one node is killed and restarted and another paused, and a client that never reads
//! its replies sits among them. Memory stays bounded, the stuck client holds nobody up,
//! every acknowledged write reads back afterwards.
//!
//! Short by default (20 s of load); `RAFTKV_LOAD_SECS=600` for the long run by hand.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::{reply_len, resp, retry};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long one request may take before the client counts it as failed and reconnects.
const OP_TIMEOUT: Duration = Duration::from_secs(10);

/// One request on a plain connection: the raw reply.
async fn call(s: &mut TcpStream, buf: &mut Vec<u8>, cmd: &[u8]) -> std::io::Result<Vec<u8>> {
    s.write_all(cmd).await?;
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(n) = reply_len(buf) {
            return Ok(buf.drain(..n).collect());
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A client writing `c{id}:{n}` = `v{n}` and reading back what it wrote; returns the last
/// acknowledged `n` (its key must read back afterwards) and its count of acknowledged ops.
async fn client(id: usize, port: u16, stop: Arc<AtomicBool>) -> (Option<u64>, u64) {
    let mut last = None;
    let mut ops = 0u64;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let Ok(Ok(mut s)) =
            tokio::time::timeout(OP_TIMEOUT, TcpStream::connect(("127.0.0.1", port))).await
        else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let mut buf = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let (key, val) = (format!("c{id}:{n}"), format!("v{n}"));
            let set = resp(&[b"SET", key.as_bytes(), val.as_bytes()]);
            match tokio::time::timeout(OP_TIMEOUT, call(&mut s, &mut buf, &set)).await {
                Ok(Ok(r)) if r == b"+OK\r\n" => {
                    last = Some(n);
                    ops += 1;
                }
                // An error reply (an election, a node going down): try the next one.
                Ok(Ok(r)) if r.starts_with(b"-") => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                // A broken or stuck connection: reconnect.
                _ => break,
            }
            let get = resp(&[b"GET", key.as_bytes()]);
            match tokio::time::timeout(OP_TIMEOUT, call(&mut s, &mut buf, &get)).await {
                Ok(Ok(r)) if r.starts_with(b"$") => {
                    let want = format!("${}\r\n{val}\r\n", val.len());
                    assert_eq!(r, want.as_bytes(), "client {id} read back another value");
                    ops += 1;
                }
                Ok(Ok(_)) => {}
                _ => break,
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (last, ops)
}

/// Resident memory of a process, in bytes.
fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// How many client connections this process can open (its descriptor limit, less room for
/// everything else), at most `want`.
fn clients_allowed(want: usize) -> usize {
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_string))
        })
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1024);
    want.min(soft.saturating_sub(200))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_clients_with_faults_keep_memory_bounded_and_lose_nothing() {
    let secs: u64 = std::env::var("RAFTKV_LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let n_clients = clients_allowed(1000);
    if n_clients < 1000 {
        eprintln!("note: the descriptor limit allows {n_clients} clients, not 1,000");
    }
    tokio::time::timeout(Duration::from_secs(secs + 180), async {
        let mut c = Cluster::start(3, &["--initial-shards", "4"]);
        c.wait_ready(Duration::from_secs(30));
        let ports: Vec<u16> = c.nodes.iter().map(|n| n.redis_port).collect();

        // A client that asks for far more than the socket buffers hold and never reads.
        let mut admin = c.nodes[0].conn().await;
        let big = vec![b'x'; 256 * 1024];
        retry(Duration::from_secs(10), || {
            let mut a = admin.clone();
            let big = big.clone();
            async move {
                redis::cmd("SET")
                    .arg("big")
                    .arg(big)
                    .query_async::<()>(&mut a)
                    .await
            }
        })
        .await;
        let mut stuck = TcpStream::connect(("127.0.0.1", ports[0]))
            .await
            .expect("connect stuck client");
        let mut pipeline = Vec::new();
        for _ in 0..400 {
            pipeline.extend(resp(&[b"GET", b"big"]));
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), stuck.write_all(&pipeline)).await;

        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for id in 0..n_clients {
            tasks.push(tokio::spawn(client(id, ports[id % 3], stop.clone())));
        }
        // Memory of every node, sampled until the end.
        let peak = Arc::new(AtomicU64::new(0));
        let pids: Vec<u32> = c.nodes.iter().filter_map(|n| n.pid()).collect();
        let pids = Arc::new(std::sync::Mutex::new(pids));
        let sampler = {
            let (peak, stop, pids) = (peak.clone(), stop.clone(), pids.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let list = pids.lock().map(|p| p.clone()).unwrap_or_default();
                    for pid in list {
                        if let Some(b) = rss(pid) {
                            peak.fetch_max(b, Ordering::Relaxed);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            })
        };

        let started = Instant::now();
        let third = Duration::from_secs(secs) / 3;
        tokio::time::sleep(third).await;
        c.nodes[2].kill9();
        tokio::time::sleep(Duration::from_secs(3)).await;
        c.nodes[2].spawn();
        if let (Ok(mut p), Some(pid)) = (pids.lock(), c.nodes[2].pid()) {
            p.push(pid);
        }
        tokio::time::sleep(third.saturating_sub(Duration::from_secs(3))).await;
        c.nodes[1].signal("STOP");
        tokio::time::sleep(Duration::from_secs(2)).await;
        c.nodes[1].signal("CONT");
        tokio::time::sleep(Duration::from_secs(secs).saturating_sub(started.elapsed())).await;

        // The stuck client held nobody up: the others were served throughout (checked by
        // their op counts below); the node it is on still answers at once.
        let t = Instant::now();
        let pong: String = redis::cmd("PING")
            .query_async(&mut admin)
            .await
            .expect("PING beside the stuck client");
        assert_eq!(pong, "PONG");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "PING took {:?}",
            t.elapsed()
        );

        stop.store(true, Ordering::Relaxed);
        let _ = sampler.await;
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.expect("client task"));
        }
        drop(stuck);
        let total: u64 = results.iter().map(|r| r.1).sum();
        let idle = results.iter().filter(|r| r.0.is_none()).count();
        let peak = peak.load(Ordering::Relaxed);
        println!(
            "{n_clients} clients, {secs} s: {total} acknowledged ops ({:.0}/s), {idle} clients \
             without an acknowledged write, peak RSS of a node {} MiB",
            total as f64 / secs as f64,
            peak >> 20
        );
        assert!(
            idle < n_clients / 10,
            "{idle} of {n_clients} clients got nothing done"
        );
        assert!(peak < 1 << 30, "a node reached {} MiB", peak >> 20);

        // Every client's last acknowledged write reads back, from any node.
        c.wait_ready(Duration::from_secs(30));
        let mut conns = Vec::new();
        for node in &c.nodes {
            conns.push(node.conn().await);
        }
        for (id, (last, _)) in results.iter().enumerate() {
            let Some(n) = last else { continue };
            let conn = &conns[(id + 1) % 3];
            let key = format!("c{id}:{n}");
            let got: Option<String> = retry(Duration::from_secs(15), || {
                let mut conn = conn.clone();
                let key = key.clone();
                async move { redis::cmd("GET").arg(key).query_async(&mut conn).await }
            })
            .await;
            assert_eq!(got, Some(format!("v{n}")), "{key} acknowledged, then lost");
        }
    })
    .await
    .expect("test timed out");
}
