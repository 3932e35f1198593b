//! Abusive but legal (or barely illegal) input: huge values and bulk lengths past the limit,
//! a collection with many elements, deep pipelines, binary keys, pathological glob patterns.
//! Each gets its answer or a clear error in bounded time, and the server keeps serving.
//!
//! `RAFTKV_BIG=1` scales the collection to 2 million elements (by hand; minutes in debug).

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{resp, TestServer};

/// Reads exactly `n` complete replies from `s` (up to `within`); their bytes.
fn read_replies(s: &mut std::net::TcpStream, n: usize, within: Duration) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + within;
    let mut pending = Vec::new();
    let mut out = Vec::with_capacity(n);
    let mut chunk = vec![0u8; 1 << 16];
    while out.len() < n {
        while let Some(len) = common::reply_len(&pending) {
            out.push(pending.drain(..len).collect());
            if out.len() == n {
                return out;
            }
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {n} replies",
            out.len()
        );
        match s.read(&mut chunk) {
            Ok(0) => panic!("closed after {} of {n} replies", out.len()),
            Ok(k) => pending.extend_from_slice(&chunk[..k]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("read: {e}"),
        }
    }
    out
}

#[test]
fn huge_values_and_bulk_lengths_past_the_limit() {
    let srv = TestServer::start();
    let mut raw = srv.raw();
    // 32 MiB in, 32 MiB out.
    let value = vec![b'z'; 32 << 20];
    assert_eq!(raw.call(&resp(&[b"SET", b"huge", &value])), b"+OK\r\n");
    assert_eq!(raw.call(&resp(&[b"STRLEN", b"huge"])), b":33554432\r\n");
    let got = raw.call(&resp(&[b"GET", b"huge"]));
    assert_eq!(got.len(), value.len() + b"$33554432\r\n\r\n".len());
    // Growing a string past 512 MB is refused up front, not attempted.
    let err = raw.call(&resp(&[b"SETRANGE", b"huge", b"536870911", b"xy"]));
    assert!(
        err.starts_with(b"-ERR string exceeds maximum allowed size"),
        "{}",
        String::from_utf8_lossy(&err)
    );
    let err = raw.call(&resp(&[b"SETBIT", b"huge", b"4294967296", b"1"]));
    assert!(err.starts_with(b"-ERR bit offset is not an integer or out of range"));
    // A bulk header past proto-max-bulk-len (512 MB): a protocol error, that client closed.
    let mut bad = srv.raw();
    bad.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870913\r\n");
    let reply = bad.read_reply();
    assert!(
        reply.starts_with(b"-ERR Protocol error: invalid bulk length"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    assert!(bad.is_closed());
    // So is a multibulk count past INT_MAX arguments (Redis 7's limit).
    let mut bad = srv.raw();
    bad.send(b"*2147483648\r\n");
    let reply = bad.read_reply();
    assert!(reply.starts_with(b"-ERR Protocol error: invalid multibulk length"));
    // The data is intact and others are served.
    assert_eq!(raw.call(&resp(&[b"STRLEN", b"huge"])), b":33554432\r\n");
    assert_eq!(raw.call(b"PING\r\n"), b"+PONG\r\n");
}

#[test]
fn a_collection_with_many_elements_stays_workable() {
    let big = std::env::var("RAFTKV_BIG").is_ok_and(|v| v == "1");
    let total: usize = if big { 2_000_000 } else { 200_000 };
    let per_cmd = 1000;
    let srv = TestServer::start();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", srv.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    // Pipelined in rounds of 50 commands of 1,000 elements each.
    let mut pushed = 0;
    while pushed < total {
        let mut batch = Vec::new();
        let mut cmds = 0;
        while cmds < 50 && pushed < total {
            let mut args: Vec<Vec<u8>> = vec![b"RPUSH".to_vec(), b"biglist".to_vec()];
            args.extend((pushed..pushed + per_cmd).map(|i| i.to_string().into_bytes()));
            let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            batch.extend(resp(&refs));
            pushed += per_cmd;
            cmds += 1;
        }
        s.write_all(&batch).expect("send");
        let replies = read_replies(&mut s, cmds, Duration::from_secs(120));
        assert!(
            replies.iter().all(|r| r.starts_with(b":")),
            "{:?}",
            replies.last()
        );
    }
    let mut raw = srv.raw();
    assert_eq!(
        raw.call(&resp(&[b"LLEN", b"biglist"])),
        format!(":{total}\r\n").as_bytes()
    );
    let mid = (total / 2).to_string();
    assert_eq!(
        raw.call(&resp(&[b"LINDEX", b"biglist", mid.as_bytes()])),
        format!("${}\r\n{mid}\r\n", mid.len()).as_bytes()
    );
    // The whole list in one reply (megabytes), read while another client is served.
    s.write_all(&resp(&[b"LRANGE", b"biglist", b"0", b"-1"]))
        .expect("send");
    let mut other = srv.raw();
    assert_eq!(other.call(b"PING\r\n"), b"+PONG\r\n");
    let all = read_replies(&mut s, 1, Duration::from_secs(120));
    assert!(all[0].starts_with(format!("*{total}\r\n").as_bytes()));
    // Deleting it is one command; the elements go in the background.
    let t = Instant::now();
    assert_eq!(raw.call(&resp(&[b"DEL", b"biglist"])), b":1\r\n");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "DEL took {:?}",
        t.elapsed()
    );
    assert_eq!(raw.call(&resp(&[b"EXISTS", b"biglist"])), b":0\r\n");
}

#[test]
fn deep_pipelines_binary_keys_and_abusive_patterns() {
    let srv = TestServer::start();
    // 100,000 commands in one write, answered in order.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", srv.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let n = 100_000;
    let mut pipeline = Vec::new();
    for i in 0..n {
        if i % 2 == 0 {
            pipeline.extend(resp(&[b"INCR", b"counter"]));
        } else {
            pipeline.extend(b"PING\r\n");
        }
    }
    let writer = {
        let mut w = s.try_clone().expect("clone");
        std::thread::spawn(move || w.write_all(&pipeline))
    };
    let replies = read_replies(&mut s, n, Duration::from_secs(240));
    writer.join().expect("writer").expect("send pipeline");
    for (i, r) in replies.iter().enumerate() {
        if i % 2 == 0 {
            assert_eq!(r, format!(":{}\r\n", i / 2 + 1).as_bytes(), "reply {i}");
        } else {
            assert_eq!(r, b"+PONG\r\n", "reply {i}");
        }
    }

    // Binary keys and values: NUL, CR LF, 0xff, empty.
    let mut raw = srv.raw();
    for key in [&b"a\0b"[..], b"\r\n", b"\xff\xfe", b"", b"{}\0{x}"] {
        assert_eq!(raw.call(&resp(&[b"SET", key, b"\0\r\n\xff"])), b"+OK\r\n");
        assert_eq!(raw.call(&resp(&[b"GET", key])), b"$4\r\n\0\r\n\xff\r\n");
    }
    assert_eq!(raw.call(&resp(&[b"EXISTS", b"a"])), b":0\r\n");

    // Patterns that backtrack exponentially in a naive matcher, over 5,000 keys.
    let mut batch = Vec::new();
    for i in 0..5000 {
        let key = format!("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa{i}");
        batch.extend(resp(&[b"SET", key.as_bytes(), b"1"]));
    }
    s.write_all(&batch).expect("send");
    read_replies(&mut s, 5000, Duration::from_secs(120));
    let evil = b"*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b";
    let t = Instant::now();
    assert_eq!(raw.call(&resp(&[b"KEYS", evil])), b"*0\r\n");
    let reply = raw.call(&resp(&[b"SCAN", b"0", b"MATCH", evil, b"COUNT", b"100000"]));
    assert!(
        reply.ends_with(b"*0\r\n"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "abusive patterns took {:?}",
        t.elapsed()
    );
    // Malformed patterns are just patterns.
    let reply = raw.call(&resp(&[b"KEYS", b"[\\"]));
    assert_eq!(reply, b"*0\r\n");
    assert_eq!(raw.call(b"PING\r\n"), b"+PONG\r\n");
}
