//! Load generator for `bench/compare.sh`: the two workloads redis-benchmark cannot run.
//!
//! ```text
//! loadgen redis ADDR[,ADDR..] [--clients 50] [--secs 10] [--keys 100000] [--zipf 0.99]
//!                             [--reads 0.8] [--value 100] [--pipeline 1]
//! loadgen etcd  ADDR[,ADDR..] [--clients 50] [--secs 10] [--keys 100000] [--value 100]
//! loadgen fill  ADDR[,ADDR..] [--clients 50] [--keys 100000] [--value 100] [--pipeline 1]
//! ```
//!
//! `redis`: a memtier-style mix of GET and SET over a Zipfian key distribution, each client on
//! its own connection (clients are spread over the addresses). `etcd`: puts through etcd's v3
//! gRPC API (`etcdserverpb.KV/Put`), one HTTP/2 connection per client, the same keys.
//! `fill`: SETs every key `0..keys` once (client c takes the keys equal to c modulo clients).
//! Prints one line: `ops_per_sec p50_ms p99_ms p999_ms max_ms errors`.

use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Opts {
    mode: String,
    addrs: Vec<String>,
    clients: usize,
    secs: u64,
    keys: u64,
    zipf: f64,
    reads: f64,
    value: usize,
    pipeline: usize,
}

fn parse_args() -> Result<Opts, String> {
    let mut args = std::env::args().skip(1);
    let mode = args
        .next()
        .ok_or("usage: loadgen redis|etcd ADDR[,ADDR..] [options]")?;
    let addrs: Vec<String> = args
        .next()
        .ok_or("missing ADDR")?
        .split(',')
        .map(str::to_string)
        .collect();
    let mut o = Opts {
        mode,
        addrs,
        clients: 50,
        secs: 10,
        keys: 100_000,
        zipf: 0.99,
        reads: 0.8,
        value: 100,
        pipeline: 1,
    };
    while let Some(flag) = args.next() {
        let v = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("bad {flag} {v}: {e}");
        match flag.as_str() {
            "--clients" => o.clients = v.parse().map_err(|e| bad(&e))?,
            "--secs" => o.secs = v.parse().map_err(|e| bad(&e))?,
            "--keys" => o.keys = v.parse().map_err(|e| bad(&e))?,
            "--zipf" => o.zipf = v.parse().map_err(|e| bad(&e))?,
            "--reads" => o.reads = v.parse().map_err(|e| bad(&e))?,
            "--value" => o.value = v.parse().map_err(|e| bad(&e))?,
            "--pipeline" => o.pipeline = v.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if o.clients == 0 || o.keys == 0 || o.pipeline == 0 || o.addrs.is_empty() {
        return Err("clients, keys, pipeline and addresses must be positive".into());
    }
    Ok(o)
}

/// YCSB's Zipfian generator (Gray et al., "Quickly generating billion-record synthetic
/// databases"): item 0 is the most popular; `theta` near 1 is heavily skewed.
struct Zipf {
    n: f64,
    theta: f64,
    alpha: f64,
    zetan: f64,
    eta: f64,
}

impl Zipf {
    fn new(n: u64, theta: f64) -> Zipf {
        let zeta = |k: u64| (1..=k).map(|i| 1.0 / (i as f64).powf(theta)).sum::<f64>();
        let zetan = zeta(n);
        let zeta2 = zeta(2);
        let n = n as f64;
        Zipf {
            n,
            theta,
            alpha: 1.0 / (1.0 - theta),
            zetan,
            eta: (1.0 - (2.0 / n).powf(1.0 - theta)) / (1.0 - zeta2 / zetan),
        }
    }

    fn sample(&self, rng: &mut SmallRng) -> u64 {
        let u: f64 = rng.gen();
        let uz = u * self.zetan;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return 1;
        }
        let v = (self.n * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        v.min(self.n as u64 - 1)
    }
}

/// Scrambles a rank into a key so popular keys spread over slots (and shards).
fn key_of(rank: u64) -> String {
    format!("key:{:016x}", rank.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

struct Stats {
    latencies_us: Vec<u32>,
    errors: u64,
}

#[tokio::main]
async fn main() {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(2);
        }
    };
    let zipf = std::sync::Arc::new(if o.zipf > 0.0 {
        Some(Zipf::new(o.keys, o.zipf))
    } else {
        None
    });
    let deadline = Instant::now() + Duration::from_secs(o.secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..o.clients {
        let addr = o.addrs[c % o.addrs.len()].clone();
        let zipf = zipf.clone();
        let (mode, keys, reads, value, pipeline, clients) = (
            o.mode.clone(),
            o.keys,
            o.reads,
            o.value,
            o.pipeline,
            o.clients,
        );
        tasks.push(tokio::spawn(async move {
            let mut rng = SmallRng::seed_from_u64(c as u64 + 1);
            let mut next_key = move |rng: &mut SmallRng| match zipf.as_ref() {
                Some(z) => key_of(z.sample(rng)),
                None => key_of(rng.gen_range(0..keys)),
            };
            match mode.as_str() {
                "redis" => {
                    redis_client(
                        &addr,
                        deadline,
                        reads,
                        value,
                        pipeline,
                        &mut rng,
                        &mut next_key,
                        u64::MAX,
                    )
                    .await
                }
                "etcd" => etcd_client(&addr, deadline, value, &mut rng, &mut next_key).await,
                "fill" => {
                    let mut rank = c as u64;
                    let mut seq = move |_: &mut SmallRng| {
                        let k = key_of(rank);
                        rank += clients as u64;
                        k
                    };
                    let count = keys.saturating_sub(c as u64).div_ceil(clients as u64);
                    let far = Instant::now() + Duration::from_secs(86_400);
                    redis_client(&addr, far, 0.0, value, pipeline, &mut rng, &mut seq, count).await
                }
                m => Err(format!("unknown mode {m}")),
            }
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        match t.await {
            Ok(Ok(s)) => {
                all.extend(s.latencies_us);
                errors += s.errors;
            }
            Ok(Err(e)) => {
                eprintln!("loadgen: {e}");
                std::process::exit(1);
            }
            Err(e) => {
                eprintln!("loadgen: client task failed: {e}");
                std::process::exit(1);
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| {
        if all.is_empty() {
            0.0
        } else {
            all[((all.len() as f64 * p) as usize).min(all.len() - 1)] as f64 / 1000.0
        }
    };
    println!(
        "{:.0} {:.3} {:.3} {:.3} {:.3} {}",
        all.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        pct(0.999),
        pct(1.0),
        errors
    );
}

fn resp_command(out: &mut Vec<u8>, parts: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", parts.len()).as_bytes());
    for p in parts {
        out.extend_from_slice(format!("${}\r\n", p.len()).as_bytes());
        out.extend_from_slice(p);
        out.extend_from_slice(b"\r\n");
    }
}

/// Length of the first complete RESP2 reply in `buf` and whether it is an error, or None if
/// more bytes are needed. Handles the reply kinds GET and SET produce.
fn reply_len(buf: &[u8]) -> Result<Option<(usize, bool)>, String> {
    let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    match buf.first() {
        Some(b'+') | Some(b':') => Ok(Some((eol + 2, false))),
        Some(b'-') => Ok(Some((eol + 2, true))),
        Some(b'$') => {
            let n: i64 = std::str::from_utf8(&buf[1..eol])
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or("bad bulk length")?;
            if n < 0 {
                return Ok(Some((eol + 2, false)));
            }
            let total = eol + 2 + n as usize + 2;
            Ok((buf.len() >= total).then_some((total, false)))
        }
        _ => Err(format!(
            "unexpected reply {:?}",
            String::from_utf8_lossy(&buf[..eol])
        )),
    }
}

/// Sends GET/SET batches of `pipeline` until `deadline` or `limit` commands.
#[allow(clippy::too_many_arguments)]
async fn redis_client(
    addr: &str,
    deadline: Instant,
    reads: f64,
    value: usize,
    pipeline: usize,
    rng: &mut SmallRng,
    next_key: &mut impl FnMut(&mut SmallRng) -> String,
    limit: u64,
) -> Result<Stats, String> {
    let mut s = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = s.set_nodelay(true);
    let val = vec![b'x'; value];
    let mut stats = Stats {
        latencies_us: Vec::new(),
        errors: 0,
    };
    let mut out = Vec::new();
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut sent_total = 0u64;
    while Instant::now() < deadline && sent_total < limit {
        out.clear();
        let batch = (pipeline as u64).min(limit - sent_total) as usize;
        sent_total += batch as u64;
        for _ in 0..batch {
            let key = next_key(rng);
            if rng.gen::<f64>() < reads {
                resp_command(&mut out, &[b"GET", key.as_bytes()]);
            } else {
                resp_command(&mut out, &[b"SET", key.as_bytes(), &val]);
            }
        }
        let sent = Instant::now();
        s.write_all(&out)
            .await
            .map_err(|e| format!("write to {addr}: {e}"))?;
        let mut got = 0;
        while got < batch {
            match reply_len(&buf)? {
                Some((n, err)) => {
                    buf.drain(..n);
                    got += 1;
                    stats.errors += err as u64;
                    let us = sent.elapsed().as_micros().min(u32::MAX as u128) as u32;
                    stats.latencies_us.push(us);
                }
                None => {
                    let n = s
                        .read(&mut chunk)
                        .await
                        .map_err(|e| format!("read from {addr}: {e}"))?;
                    if n == 0 {
                        return Err(format!("{addr} closed the connection"));
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
            }
        }
    }
    Ok(stats)
}

/// The two fields of etcd's `PutRequest` the benchmark sets (etcd/api/etcdserverpb/rpc.proto).
#[derive(Clone, PartialEq, prost::Message)]
struct PutRequest {
    #[prost(bytes = "vec", tag = "1")]
    key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

/// `PutResponse`; its fields (header, prev_kv) are not needed and decode as unknown.
#[derive(Clone, PartialEq, prost::Message)]
struct PutResponse {}

async fn etcd_client(
    addr: &str,
    deadline: Instant,
    value: usize,
    rng: &mut SmallRng,
    next_key: &mut impl FnMut(&mut SmallRng) -> String,
) -> Result<Stats, String> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| format!("bad address {addr}: {e}"))?
        .connect()
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let mut grpc = tonic::client::Grpc::new(channel);
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/etcdserverpb.KV/Put");
    let val = vec![b'x'; value];
    let mut stats = Stats {
        latencies_us: Vec::new(),
        errors: 0,
    };
    while Instant::now() < deadline {
        let req = PutRequest {
            key: next_key(rng).into_bytes(),
            value: val.clone(),
        };
        let sent = Instant::now();
        grpc.ready()
            .await
            .map_err(|e| format!("etcd {addr} not ready: {e}"))?;
        let res: Result<tonic::Response<PutResponse>, tonic::Status> = grpc
            .unary(
                tonic::Request::new(req),
                path.clone(),
                tonic_prost::ProstCodec::default(),
            )
            .await;
        if res.is_err() {
            stats.errors += 1;
        }
        let us = sent.elapsed().as_micros().min(u32::MAX as u128) as u32;
        stats.latencies_us.push(us);
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_is_skewed_and_in_range() {
        let z = Zipf::new(1000, 0.99);
        let mut rng = SmallRng::seed_from_u64(7);
        let mut hits = [0u32; 1000];
        for _ in 0..100_000 {
            hits[z.sample(&mut rng) as usize] += 1;
        }
        assert!(hits[0] > hits[10] && hits[10] > hits[500]);
        assert!(hits[0] > 5_000, "rank 0 drew {}", hits[0]);
    }

    #[test]
    fn replies_are_framed() {
        assert_eq!(reply_len(b"+OK\r\n").unwrap(), Some((5, false)));
        assert_eq!(reply_len(b"$-1\r\n").unwrap(), Some((5, false)));
        assert_eq!(reply_len(b"$3\r\nabc\r\n+OK").unwrap(), Some((9, false)));
        assert_eq!(reply_len(b"$3\r\nab").unwrap(), None);
        assert_eq!(reply_len(b"-ERR x\r\n").unwrap(), Some((8, true)));
        assert!(reply_len(b"*1\r\n").is_err());
    }
}
