//! Differential test: seeded random command sequences run against a real redis-server and
//! against RaftKV, compared reply by reply (byte-exact RESP, after normalising replies whose
//! order Redis leaves unspecified).
//!
//! CI runs `DIFF_SEEDS` seeds (default 20) of `DIFF_OPS` commands (default 400). By hand:
//! `DIFF_SEEDS=500 cargo test -p raft-kv --test differential -- --nocapture`, and replay one
//! failing seed with `DIFF_SEED=<seed>`.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::TestServer;

/// A reply tree, enough to compare and normalise.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(port: u16) -> Client {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => {
                    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
                    s.set_nodelay(true).ok();
                    let writer = s.try_clone().expect("clone stream");
                    return Client {
                        reader: BufReader::new(s),
                        writer,
                    };
                }
                Err(e) if Instant::now() > deadline => panic!("connect to {port}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    fn call(&mut self, args: &[Vec<u8>]) -> Reply {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.writer.write_all(&out).expect("send command");
        self.read_reply()
    }

    fn read_line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read reply line");
        assert!(line.ends_with("\r\n"), "truncated reply line {line:?}");
        line.truncate(line.len() - 2);
        line
    }

    fn read_reply(&mut self) -> Reply {
        let line = self.read_line();
        let (tag, rest) = line.split_at(1);
        match tag {
            "+" => Reply::Simple(rest.to_string()),
            "-" => Reply::Error(rest.to_string()),
            ":" => Reply::Int(rest.parse().expect("integer reply")),
            "$" => {
                let n: i64 = rest.parse().expect("bulk length");
                if n < 0 {
                    return Reply::Bulk(None);
                }
                let mut buf = vec![0u8; n as usize + 2];
                self.reader.read_exact(&mut buf).expect("bulk body");
                buf.truncate(n as usize);
                Reply::Bulk(Some(buf))
            }
            "*" => {
                let n: i64 = rest.parse().expect("array length");
                if n < 0 {
                    return Reply::Array(None);
                }
                Reply::Array(Some((0..n).map(|_| self.read_reply()).collect()))
            }
            _ => panic!("unexpected reply line {line:?}"),
        }
    }
}

/// Deterministic PRNG for the generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const KEYS: &[&str] = &["k0", "k1", "k2", "k3", "{t}a", "{t}b", "k:long:name", ""];
const FIELDS: &[&str] = &["f0", "f1", "f2", "f3", ""];
/// Increments for INCRBYFLOAT / HINCRBYFLOAT.
const FLOATS: &[&str] = &[
    "0.1",
    "0.2",
    "-0.3",
    "1.5",
    "10.6",
    "3",
    "-7",
    "1e-20",
    "1.0e30",
    "-2.5e-3",
    "0.333333333333333333333",
    "123456789.987654321",
    "1e300",
    "-1e300",
    "0x1p-3",
    "5e-4950",
    "abc",
    "",
    "inf",
    "nan",
    " 1",
];
const VALUES: &[&str] = &[
    "v",
    "1",
    "0",
    "-7",
    "10",
    "3.5",
    "-0.25",
    "abc",
    "",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551616",
    "1e3",
    " 5",
    "+3",
    "inf",
    "-inf",
    "nan",
    "hello world",
];
const INTS: &[&str] = &[
    "0",
    "1",
    "2",
    "-1",
    "-2",
    "3",
    "5",
    "10",
    "-100",
    "100",
    "abc",
    "",
    "1.5",
    "9223372036854775807",
    "-9223372036854775808",
];
const SCORES: &[&str] = &[
    "0", "1", "-1", "2.5", "1e2", "-inf", "+inf", "inf", "(1", "(2.5", "abc", "nan", "3",
];
const LEX: &[&str] = &["-", "+", "[a", "(a", "[m1", "(m3", "m1", "[", "("];
/// Lex ranges are defined only when all scores are equal, so they get a key with score 0 only.
const LEX_KEY: &str = "{t}lex";
/// HyperLogLogs live on their own keys (bit commands on an HLL value are left out); GET
/// compares their bytes, including the cardinality PFCOUNT caches in the header.
const HLL_KEYS: &[&str] = &["hll0", "hll1", "hll2"];
const STREAM_IDS: &[&str] = &["1-1", "1-2", "2-0", "2-*", "3", "0-0", "0-1", "abc", "5-1"];
const MEMBERS: &[&str] = &["m0", "m1", "m2", "m3", "a", "b", "1", "2", ""];

/// One random command: (family, args). Families are the ones whose commands RaftKV claims.
fn gen_command(rng: &mut Rng) -> Vec<String> {
    let k = rng.pick(KEYS).to_string();
    let k2 = rng.pick(KEYS).to_string();
    let v = rng.pick(VALUES).to_string();
    let i = rng.pick(INTS).to_string();
    let i2 = rng.pick(INTS).to_string();
    let f = rng.pick(FIELDS).to_string();
    let m = rng.pick(MEMBERS).to_string();
    let m2 = rng.pick(MEMBERS).to_string();
    let s = rng.pick(SCORES).to_string();
    let s2 = rng.pick(SCORES).to_string();
    let c: Vec<&str> = match rng.below(132) {
        // strings
        0 => vec!["SET", &k, &v],
        1 => vec!["GET", &k],
        // Expiry times stay far in the future (or invalid) so replies don't depend on timing.
        2 => vec![
            "SET",
            &k,
            &v,
            rng.pick(&["NX", "XX", "GET", "KEEPTTL", "EX", "PX"]),
            rng.pick(&["100000", "0", "-1", "abc"]),
        ],
        3 => vec!["INCR", &k],
        4 => vec!["INCRBY", &k, &i],
        5 => vec!["DECRBY", &k, &i],
        6 => vec!["APPEND", &k, &v],
        7 => vec!["STRLEN", &k],
        8 => vec!["GETRANGE", &k, &i, &i2],
        9 => vec!["SETRANGE", &k, rng.pick(&["0", "1", "5", "-1"]), &v],
        10 => vec!["MGET", &k, &k2],
        11 => vec!["MSET", &k, &v, &k2, &i],
        12 => vec!["GETDEL", &k],
        13 => vec!["SETNX", &k, &v],
        // Long double arithmetic printed with %.17Lf: decimals that f64 cannot show exactly,
        // huge and tiny magnitudes, hex floats, and the error paths.
        14 => vec!["INCRBYFLOAT", &k, rng.pick(FLOATS)],
        15 => vec!["GETSET", &k, &v],
        16 => vec!["MSETNX", &k, &v, &k2, &v],
        17 => vec!["DECR", &k],
        // keys
        18 => vec!["DEL", &k, &k2],
        19 => vec!["EXISTS", &k, &k2, &k],
        20 => vec!["TYPE", &k],
        21 => vec!["RENAME", &k, &k2],
        22 => vec!["RENAMENX", &k, &k2],
        23 => vec!["EXPIRE", &k, rng.pick(&["100", "1000", "-1", "abc"])],
        24 => vec!["PERSIST", &k],
        25 => vec![
            "EXPIRE",
            &k,
            "500",
            rng.pick(&["NX", "XX", "GT", "LT", "FOO"]),
        ],
        26 => vec!["COPY", &k, &k2, rng.pick(&["REPLACE", "DB"])],
        27 => vec!["UNLINK", &k],
        28 => vec!["TOUCH", &k, &k2],
        29 => vec![
            "SETBIT",
            &k,
            rng.pick(&["0", "7", "100", "-1", "x"]),
            rng.pick(&["0", "1", "2"]),
        ],
        30 => vec!["GETBIT", &k, rng.pick(&["0", "7", "100", "-1"])],
        31 => vec!["BITCOUNT", &k],
        32 => vec!["BITCOUNT", &k, &i, &i2],
        // hashes
        33 => vec!["HSET", &k, &f, &v],
        34 => vec!["HSET", &k, &f, &v, rng.pick(FIELDS), &i],
        35 => vec!["HGET", &k, &f],
        36 => vec!["HDEL", &k, &f, rng.pick(FIELDS)],
        37 => vec!["HLEN", &k],
        38 => vec!["HGETALL", &k],
        39 => vec!["HINCRBY", &k, &f, &i],
        40 => vec!["HINCRBYFLOAT", &k, &f, rng.pick(FLOATS)],
        41 => vec!["HMGET", &k, &f, rng.pick(FIELDS)],
        42 => vec!["HSETNX", &k, &f, &v],
        43 => vec!["HEXISTS", &k, &f],
        44 => vec!["HKEYS", &k],
        45 => vec!["HVALS", &k],
        46 => vec!["HSTRLEN", &k, &f],
        // sets
        47 => vec!["SADD", &k, &m, &m2],
        48 => vec!["SREM", &k, &m],
        49 => vec!["SMEMBERS", &k],
        50 => vec!["SCARD", &k],
        51 => vec!["SISMEMBER", &k, &m],
        52 => vec!["SMISMEMBER", &k, &m, &m2],
        53 => vec!["SINTER", &k, &k2],
        54 => vec!["SUNION", &k, &k2],
        55 => vec!["SDIFF", &k, &k2],
        56 => vec!["SMOVE", &k, &k2, &m],
        57 => vec!["SINTERSTORE", &k, &k2, rng.pick(KEYS)],
        58 => vec!["SUNIONSTORE", &k, &k2, rng.pick(KEYS)],
        59 => vec!["SINTERCARD", "2", &k, &k2],
        // sorted sets
        60 => vec!["ZADD", &k, &s, &m],
        61 => vec![
            "ZADD",
            &k,
            rng.pick(&["NX", "XX", "GT", "LT", "CH", "INCR"]),
            &s,
            &m,
        ],
        62 => vec!["ZSCORE", &k, &m],
        63 => vec!["ZRANGE", &k, &i, &i2],
        64 => vec!["ZRANGE", &k, &i, &i2, "WITHSCORES"],
        65 => vec!["ZRANGEBYSCORE", &k, &s, &s2],
        66 => vec!["ZRANGE", &k, &s, &s2, "BYSCORE", "LIMIT", &i, &i2],
        67 => vec!["ZREVRANGE", &k, &i, &i2, "WITHSCORES"],
        68 => vec!["ZRANK", &k, &m],
        69 => vec!["ZREVRANK", &k, &m],
        70 => vec!["ZCOUNT", &k, &s, &s2],
        71 => vec!["ZINCRBY", &k, &s, &m],
        72 => vec!["ZREM", &k, &m, &m2],
        73 => vec!["ZCARD", &k],
        74 => vec!["ZPOPMIN", &k],
        75 => vec!["ZPOPMAX", &k, &i],
        76 => vec!["ZRANGEBYLEX", LEX_KEY, rng.pick(LEX), rng.pick(LEX)],
        77 => vec!["ZLEXCOUNT", LEX_KEY, rng.pick(LEX), rng.pick(LEX)],
        78 => vec!["ZREMRANGEBYSCORE", &k, &s, &s2],
        79 => vec!["ZREMRANGEBYRANK", &k, &i, &i2],
        80 => vec!["ZUNIONSTORE", &k, "2", &k2, rng.pick(KEYS)],
        81 => vec!["ZINTER", "2", &k, &k2, "WITHSCORES"],
        82 => vec!["ZMSCORE", &k, &m, &m2],
        // lists
        83 => vec!["LPUSH", &k, &v, &m],
        84 => vec!["RPUSH", &k, &v],
        85 => vec!["LPOP", &k],
        86 => vec!["RPOP", &k, &i],
        87 => vec!["LRANGE", &k, &i, &i2],
        88 => vec!["LLEN", &k],
        89 => vec!["LINDEX", &k, &i],
        90 => vec!["LSET", &k, &i, &v],
        91 => vec!["LTRIM", &k, &i, &i2],
        92 => vec!["LREM", &k, &i, &v],
        93 => vec![
            "LINSERT",
            &k,
            rng.pick(&["BEFORE", "AFTER", "MIDDLE"]),
            &v,
            &m,
        ],
        94 => vec![
            "LMOVE",
            &k,
            &k2,
            rng.pick(&["LEFT", "RIGHT"]),
            rng.pick(&["LEFT", "RIGHT", "UP"]),
        ],
        95 => vec!["LPOS", &k, &v],
        96 => vec!["RPOPLPUSH", &k, &k2],
        97 => vec!["LPUSHX", &k, &v],
        // arity and unknown commands
        98 => vec![rng.pick(&[
            "GET", "SET", "HSET", "LPUSH", "ZADD", "SADD", "INCR", "DEL", "EXPIRE",
        ])],
        99 => vec!["PFADD", rng.pick(HLL_KEYS), &m, &m2],
        // Single-key PFCOUNT stores the cardinality in the header; GET shows those bytes.
        100 => {
            let h = rng.pick(HLL_KEYS);
            match rng.pick(&["one", "two", "get"]) {
                "one" => vec!["PFCOUNT", h],
                "two" => vec!["PFCOUNT", h, rng.pick(HLL_KEYS)],
                _ => vec!["GET", h],
            }
        }
        101 => vec!["PFMERGE", rng.pick(HLL_KEYS), rng.pick(HLL_KEYS)],
        // streams (explicit ids keep replies independent of the clock)
        102 => vec!["XADD", &k, rng.pick(STREAM_IDS), &f, &v],
        103 => vec![
            "XADD",
            &k,
            "MAXLEN",
            rng.pick(&["=", "2", "0"]),
            rng.pick(&["2", "0", "-1"]),
            rng.pick(STREAM_IDS),
            &f,
            &v,
        ],
        104 => vec![
            "XRANGE",
            &k,
            rng.pick(&["-", "1-0", "(1-1", "2"]),
            rng.pick(&["+", "3-0", "(5-1", "abc"]),
        ],
        105 => vec![
            "XREVRANGE",
            &k,
            rng.pick(&["+", "3-0"]),
            rng.pick(&["-", "1"]),
            "COUNT",
            &i,
        ],
        106 => vec!["XLEN", &k],
        107 => vec!["XDEL", &k, rng.pick(STREAM_IDS)],
        108 => vec![
            "XTRIM",
            &k,
            rng.pick(&["MAXLEN", "MINID", "FOO"]),
            rng.pick(&["1", "2-0", "x"]),
        ],
        109 => vec![
            "XREAD",
            "COUNT",
            "2",
            "STREAMS",
            &k,
            rng.pick(&["0", "1-0", "2-5"]),
        ],
        // more strings, bitmaps and keys
        110 => vec![
            "BITOP",
            rng.pick(&["AND", "OR", "XOR", "NOT", "FOO"]),
            &k,
            &k2,
            rng.pick(KEYS),
        ],
        111 => vec!["BITPOS", &k, rng.pick(&["0", "1", "2"]), &i, &i2],
        112 => vec!["GETEX", &k, rng.pick(&["PERSIST", "EX", "FOO"]), "1000"],
        113 => vec!["SETEX", &k, rng.pick(&["1000", "0", "-5", "x"]), &v],
        114 => vec!["EXPIRETIME", &k],
        115 => vec!["TYPE", &k2],
        116 => vec![
            "BITFIELD",
            &k,
            "INCRBY",
            rng.pick(&["i5", "u8", "i64", "u64", "x"]),
            rng.pick(&["0", "#1", "100"]),
            &i,
        ],
        117 => vec!["LCS", &k, &k2, rng.pick(&["LEN", "IDX", "MINMATCHLEN"])],
        118 => vec!["EXISTS", &k],
        // more lists, sets, zsets, hashes
        119 => vec!["LPOS", &k, &v, "RANK", &i, "COUNT", &i2],
        120 => vec![
            "LMPOP",
            "2",
            &k,
            &k2,
            rng.pick(&["LEFT", "RIGHT", "UP"]),
            "COUNT",
            &i,
        ],
        121 => vec!["SDIFFSTORE", &k, &k2, rng.pick(KEYS)],
        122 => vec!["SINTERCARD", "2", &k, &k2, "LIMIT", &i],
        123 => vec!["ZRANGESTORE", &k, &k2, &i, &i2],
        124 => vec!["ZDIFF", "2", &k, &k2, "WITHSCORES"],
        125 => vec![
            "ZUNION",
            "2",
            &k,
            &k2,
            "WEIGHTS",
            &s,
            "2",
            "AGGREGATE",
            rng.pick(&["SUM", "MIN", "MAX", "AVG"]),
        ],
        126 => vec!["ZMPOP", "1", &k, rng.pick(&["MIN", "MAX"]), "COUNT", &i],
        127 => vec!["ZREMRANGEBYLEX", LEX_KEY, rng.pick(LEX), rng.pick(LEX)],
        128 => vec!["HSETNX", &k, &f, &i],
        129 => vec!["ZADD", LEX_KEY, "0", &m],
        // No consumer groups here, so FULL has no clock-dependent fields.
        130 => match rng.below(3) {
            0 => vec!["XINFO", "STREAM", &k, "FULL"],
            1 => vec!["XINFO", "STREAM", &k, "FULL", "COUNT", &i],
            _ => vec!["XINFO", "STREAM", &k],
        },
        _ => vec![
            "ZRANGE",
            LEX_KEY,
            rng.pick(LEX),
            rng.pick(LEX),
            "BYLEX",
            "REV",
            "LIMIT",
            "0",
            &i,
        ],
    };
    c.into_iter().map(String::from).collect()
}

/// Commands whose reply order Redis leaves to its internal encoding: compare sorted.
fn normalise(cmd: &str, reply: Reply) -> Reply {
    let unordered = matches!(
        cmd,
        "SMEMBERS" | "SINTER" | "SUNION" | "SDIFF" | "HKEYS" | "HVALS" | "KEYS"
    );
    match reply {
        Reply::Array(Some(mut items)) if unordered => {
            items.sort();
            Reply::Array(Some(items))
        }
        Reply::Array(Some(items)) if cmd == "HGETALL" => {
            let mut pairs: Vec<(Reply, Reply)> = items
                .chunks(2)
                .map(|c| (c[0].clone(), c.get(1).cloned().unwrap_or(Reply::Bulk(None))))
                .collect();
            pairs.sort();
            Reply::Array(Some(pairs.into_iter().flat_map(|(a, b)| [a, b]).collect()))
        }
        other => other,
    }
}

fn run_seed(seed: u64, ops: usize, redis: &mut Client, ours: &mut Client) -> Result<(), String> {
    let mut rng = Rng(seed);
    redis.call(&[b"FLUSHALL".to_vec()]);
    ours.call(&[b"FLUSHALL".to_vec()]);
    let mut history: Vec<String> = Vec::new();
    for n in 0..ops {
        let cmd = gen_command(&mut rng);
        let args: Vec<Vec<u8>> = cmd.iter().map(|a| a.as_bytes().to_vec()).collect();
        let want = normalise(&cmd[0], redis.call(&args));
        let got = normalise(&cmd[0], ours.call(&args));
        history.push(format!("{cmd:?}"));
        if want != got {
            let tail = history.len().saturating_sub(15);
            return Err(format!(
                "seed {seed}, op {n}: {cmd:?}\n  redis:  {want:?}\n  raftkv: {got:?}\n  last commands:\n    {}\n  replay: DIFF_SEED={seed} cargo test -p raft-kv --test differential",
                history[tail..].join("\n    ")
            ));
        }
    }
    Ok(())
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn random_commands_match_redis() {
    let Some(redis_server) = common::RedisServer::start() else {
        eprintln!("redis-server not installed: skipping the differential test");
        return;
    };
    let server = TestServer::start();
    let mut redis = Client::connect(redis_server.port);
    let mut ours = Client::connect(server.port);

    let seeds: Vec<u64> = match std::env::var("DIFF_SEED") {
        Ok(s) => vec![s.parse().expect("DIFF_SEED must be an integer")],
        Err(_) => (1..=env_u64("DIFF_SEEDS", 20)).collect(),
    };
    let ops = env_u64("DIFF_OPS", 400) as usize;
    let started = Instant::now();
    let mut failures = Vec::new();
    for seed in &seeds {
        if let Err(e) = run_seed(*seed, ops, &mut redis, &mut ours) {
            eprintln!("{e}\n");
            failures.push(*seed);
            // Reconnect to start the next seed on a clean connection state.
            redis = Client::connect(redis_server.port);
            ours = Client::connect(server.port);
        }
    }
    eprintln!(
        "differential: {} seeds x {ops} ops in {:?}, {} failed",
        seeds.len(),
        started.elapsed(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "seeds that diverged from redis-server: {failures:?}"
    );
}
