//! End-to-end tests of the Redis protocol server: the real binary, real clients.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::{http_get, redis_cli, resp, TestServer, TEST_TIMEOUT};
use redis::AsyncCommands;

async fn bounded<F: std::future::Future<Output = ()>>(f: F) {
    tokio::time::timeout(TEST_TIMEOUT, f)
        .await
        .expect("test exceeded its time bound");
}

fn has_command(srv: &TestServer, name: &str) -> bool {
    let mut raw = srv.raw();
    let got = raw.call(&resp(&[b"COMMAND", b"INFO", name.as_bytes()]));
    !got.starts_with(b"*1\r\n$-1") && !got.starts_with(b"*1\r\n_")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_get_and_pipelining_with_redis_crate() {
    let srv = TestServer::start();
    bounded(async {
        let mut c = srv.conn().await;
        let _: () = c.set("k", "v").await.unwrap();
        let v: String = c.get("k").await.unwrap();
        assert_eq!(v, "v");
        let missing: Option<String> = c.get("nope").await.unwrap();
        assert_eq!(missing, None);

        // Binary-safe keys and values.
        let key = b"\x00\r\n\xffkey".to_vec();
        let val = (0..=255u8).collect::<Vec<u8>>();
        let _: () = c.set(&key, &val).await.unwrap();
        let got: Vec<u8> = c.get(&key).await.unwrap();
        assert_eq!(got, val);

        // A pipeline of many commands: replies in order.
        let mut pipe = redis::pipe();
        for i in 0..500 {
            pipe.set(format!("p{i}"), i).ignore();
        }
        for i in 0..500 {
            pipe.get(format!("p{i}"));
        }
        let vals: Vec<i64> = pipe.query_async(&mut c).await.unwrap();
        assert_eq!(vals, (0..500).collect::<Vec<i64>>());

        // Reads, writes and errors interleaved in one pipeline: batched reads and writes
        // still answer in order, and a read sees the writes sent before it.
        let mut raw = srv.raw();
        let mut input = Vec::new();
        for args in [
            &[&b"RPUSH"[..], b"plist", b"a"][..],
            &[b"GET", b"plist"],
            &[b"GET", b"p7"],
            &[b"GET", b"nope"],
            &[b"SET", b"p7", b"seven"],
            &[b"GET", b"p7"],
            &[b"STRLEN", b"p7"],
            &[b"LLEN", b"plist"],
        ] {
            input.extend(resp(args));
        }
        let expected: &[u8] = b":1\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n$1\r\n7\r\n$-1\r\n+OK\r\n$5\r\nseven\r\n:5\r\n:1\r\n";
        assert_eq!(raw.roundtrip(&input, expected), expected);

        // A large value.
        let big = vec![b'x'; 5 << 20];
        let _: () = c.set("big", &big).await.unwrap();
        let got: Vec<u8> = c.get("big").await.unwrap();
        assert_eq!(got.len(), big.len());

        // Errors come back as errors.
        let e = redis::cmd("GET")
            .query_async::<()>(&mut c)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("wrong number of arguments"), "{e}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp3_hello_and_commands() {
    let srv = TestServer::start();
    let mut raw = srv.raw();
    let got = raw.call(b"HELLO 3\r\n");
    let text = String::from_utf8_lossy(&got).to_string();
    assert!(
        text.starts_with("%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:"),
        "{text}"
    );
    assert!(
        text.ends_with("$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"),
        "{text}"
    );
    assert_eq!(raw.roundtrip(b"GET nokey\r\n", b"_\r\n"), b"_\r\n");
    assert_eq!(
        raw.roundtrip(b"HELLO 4\r\n", b"-NOPROTO unsupported protocol version\r\n"),
        b"-NOPROTO unsupported protocol version\r\n"
    );
    assert_eq!(
        raw.roundtrip(
            b"CONFIG GET maxclients\r\n",
            b"%1\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n"
        ),
        b"%1\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n"
    );
    bounded(async {
        let mut c = srv.conn_resp3().await;
        let _: () = c.set("a", "1").await.unwrap();
        let v: i64 = c.get("a").await.unwrap();
        assert_eq!(v, 1);
    })
    .await;
}

#[test]
fn inline_commands_and_quoting() {
    let srv = TestServer::start();
    let mut raw = srv.raw();
    assert_eq!(raw.roundtrip(b"PING\r\n", b"+PONG\r\n"), b"+PONG\r\n");
    assert_eq!(
        raw.roundtrip(b"set k \"a b\\x41\"\n", b"+OK\r\n"),
        b"+OK\r\n"
    );
    assert_eq!(
        raw.roundtrip(b"get k\r\n", b"$4\r\na bA\r\n"),
        b"$4\r\na bA\r\n"
    );
    // Empty lines are ignored; inline and multibulk mix in one write.
    let expected = b"+PONG\r\n$4\r\na bA\r\n";
    assert_eq!(
        raw.roundtrip(b"\r\n\r\nping\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", expected),
        expected
    );
    let expected = b"-ERR unknown command 'foo', with args beginning with: 'bar' 'baz' \r\n";
    assert_eq!(raw.roundtrip(b"foo bar baz\r\n", expected), expected);
    let expected = b"-ERR Protocol error: unbalanced quotes in request\r\n";
    assert_eq!(raw.roundtrip(b"set a \"b\r\n", expected), expected);
    assert!(raw.is_closed());
}

#[test]
fn malformed_input_closes_only_that_connection() {
    let srv = TestServer::start();
    let mut good = srv.raw();
    assert_eq!(good.roundtrip(b"PING\r\n", b"+PONG\r\n"), b"+PONG\r\n");
    let cases: &[(&[u8], &[u8])] = &[
        (
            b"*abc\r\n",
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*1\r\n$-5\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1\r\n$999999999999\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1\r\n+foo\r\n",
            b"-ERR Protocol error: expected '$', got '+'\r\n",
        ),
        (
            b"*3000000000\r\n",
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
    ];
    for (input, expected) in cases {
        let mut bad = srv.raw();
        assert_eq!(bad.roundtrip(input, expected), *expected);
        assert!(bad.is_closed(), "connection should close after {:?}", input);
    }
    let mut bad = srv.raw();
    let big = vec![b'a'; 70 * 1024];
    let expected = b"-ERR Protocol error: too big inline request\r\n";
    assert_eq!(bad.roundtrip(&big, expected), expected);
    assert!(bad.is_closed());
    // The server and the other connection are fine.
    assert_eq!(good.roundtrip(b"PING\r\n", b"+PONG\r\n"), b"+PONG\r\n");
}

#[test]
fn pipelined_replies_arrive_in_one_batch_in_order() {
    let srv = TestServer::start();
    let mut raw = srv.raw();
    let mut input = Vec::new();
    let mut expected = Vec::new();
    for i in 0..200 {
        let v = format!("v{i}");
        input.extend(resp(&[b"SET", format!("k{i}").as_bytes(), v.as_bytes()]));
        input.extend(resp(&[b"GET", format!("k{i}").as_bytes()]));
        expected.extend_from_slice(b"+OK\r\n");
        expected.extend_from_slice(format!("${}\r\n{v}\r\n", v.len()).as_bytes());
    }
    // Split the pipeline at an awkward place.
    raw.send(&input[..1001]);
    raw.send(&input[1001..]);
    assert_eq!(raw.read_n(expected.len()), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_exec_and_watch() {
    let srv = TestServer::start();
    bounded(async {
        let mut a = srv.conn().await;
        let mut b = srv.conn().await;
        // A plain transaction.
        let (x, y): (String, Option<String>) = redis::pipe()
            .atomic()
            .set("t1", "1")
            .ignore()
            .get("t1")
            .get("t2")
            .query_async(&mut a)
            .await
            .unwrap();
        assert_eq!((x.as_str(), y), ("1", None));

        // WATCH conflict from another connection: EXEC returns nil.
        let _: () = redis::cmd("WATCH")
            .arg("w")
            .query_async(&mut a)
            .await
            .unwrap();
        let _: () = b.set("w", "changed").await.unwrap();
        let r: Option<(String,)> = redis::pipe()
            .atomic()
            .set("w", "mine")
            .ignore()
            .get("w")
            .query_async(&mut a)
            .await
            .unwrap();
        assert_eq!(r, None);
        let w: String = a.get("w").await.unwrap();
        assert_eq!(w, "changed");

        // Without a conflict the same transaction runs.
        let _: () = redis::cmd("WATCH")
            .arg("w")
            .query_async(&mut a)
            .await
            .unwrap();
        let r: Option<(String,)> = redis::pipe()
            .atomic()
            .set("w", "mine")
            .ignore()
            .get("w")
            .query_async(&mut a)
            .await
            .unwrap();
        assert_eq!(r, Some(("mine".to_string(),)));

        // A watched key created and deleted again before EXEC still aborts it (as Redis:
        // the key was touched, though its revision looks unchanged).
        let _: () = redis::cmd("WATCH")
            .arg("fresh")
            .query_async(&mut a)
            .await
            .unwrap();
        let _: () = b.set("fresh", "x").await.unwrap();
        let _: i64 = b.del("fresh").await.unwrap();
        let r: Option<(String,)> = redis::pipe()
            .atomic()
            .set("fresh", "mine")
            .ignore()
            .get("fresh")
            .query_async(&mut a)
            .await
            .unwrap();
        assert_eq!(r, None);
        // UNWATCH forgets it: the next transaction runs.
        let _: () = redis::cmd("WATCH")
            .arg("fresh")
            .query_async(&mut a)
            .await
            .unwrap();
        let _: () = b.set("fresh", "y").await.unwrap();
        let _: () = redis::cmd("UNWATCH").query_async(&mut a).await.unwrap();
        let r: Option<(String,)> = redis::pipe()
            .atomic()
            .set("fresh", "mine")
            .ignore()
            .get("fresh")
            .query_async(&mut a)
            .await
            .unwrap();
        assert_eq!(r, Some(("mine".to_string(),)));
    })
    .await;

    // Queue-time errors abort EXEC; runtime errors don't.
    let mut raw = srv.raw();
    let expected: &[u8] = b"+OK\r\n-ERR MULTI calls can not be nested\r\n-ERR wrong number of arguments for 'set' command\r\n-ERR unknown command 'FOO', with args beginning with: \r\n+QUEUED\r\n-EXECABORT Transaction discarded because of previous errors.\r\n-ERR EXEC without MULTI\r\n-ERR DISCARD without MULTI\r\n";
    assert_eq!(
        raw.roundtrip(
            b"MULTI\r\nMULTI\r\nSET a\r\nFOO\r\nGET a\r\nEXEC\r\nEXEC\r\nDISCARD\r\n",
            expected
        ),
        expected
    );
    let expected: &[u8] = b"+OK\r\n-ERR WATCH inside MULTI is not allowed\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*4\r\n+OK\r\n+PONG\r\n$1\r\nx\r\n$1\r\nv\r\n";
    assert_eq!(
        raw.roundtrip(
            b"MULTI\r\nWATCH a\r\nSET m v\r\nPING\r\nECHO x\r\nGET m\r\nEXEC\r\n",
            expected
        ),
        expected
    );
    let expected: &[u8] = b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n-ERR value is not an integer or out of range\r\n";
    if has_command(&srv, "incr") {
        assert_eq!(
            raw.roundtrip(b"MULTI\r\nSET s abc\r\nINCR s\r\nEXEC\r\n", expected),
            expected
        );
    }
}

#[test]
fn pubsub_between_two_connections() {
    let srv = TestServer::start();
    let mut sub = srv.raw();
    let expected = b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n*3\r\n$10\r\npsubscribe\r\n$2\r\nn*\r\n:2\r\n";
    assert_eq!(
        sub.roundtrip(b"SUBSCRIBE news\r\nPSUBSCRIBE n*\r\n", expected),
        expected
    );
    let expected = b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n";
    assert_eq!(sub.roundtrip(b"GET x\r\n", expected), expected);
    let expected = b"*2\r\n$4\r\npong\r\n$0\r\n\r\n";
    assert_eq!(sub.roundtrip(b"PING\r\n", expected), expected);

    let mut publisher = srv.raw();
    assert_eq!(
        publisher.roundtrip(b"PUBLISH news hello\r\n", b":2\r\n"),
        b":2\r\n"
    );
    let expected = b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$5\r\nhello\r\n";
    assert_eq!(sub.read_n(expected.len()), expected);
    assert_eq!(
        publisher.roundtrip(b"PUBSUB NUMSUB news\r\n", b"*2\r\n$4\r\nnews\r\n:1\r\n"),
        b"*2\r\n$4\r\nnews\r\n:1\r\n"
    );
    assert_eq!(
        publisher.roundtrip(b"PUBSUB NUMPAT\r\n", b":1\r\n"),
        b":1\r\n"
    );

    let expected = b"*3\r\n$11\r\nunsubscribe\r\n$4\r\nnews\r\n:1\r\n*3\r\n$12\r\npunsubscribe\r\n$2\r\nn*\r\n:0\r\n+PONG\r\n";
    assert_eq!(
        sub.roundtrip(b"UNSUBSCRIBE\r\nPUNSUBSCRIBE\r\nPING\r\n", expected),
        expected
    );
    assert_eq!(
        publisher.roundtrip(b"PUBLISH news x\r\n", b":0\r\n"),
        b":0\r\n"
    );

    // RESP3 subscribers get push frames and may run any command.
    let mut sub3 = srv.raw();
    let _ = sub3.call(b"HELLO 3\r\n");
    let expected = b">3\r\n$10\r\nssubscribe\r\n$1\r\ns\r\n:1\r\n_\r\n";
    assert_eq!(
        sub3.roundtrip(b"SSUBSCRIBE s\r\nGET x\r\n", expected),
        expected
    );
    assert_eq!(
        publisher.roundtrip(b"SPUBLISH s m\r\n", b":1\r\n"),
        b":1\r\n"
    );
    let expected = b">3\r\n$8\r\nsmessage\r\n$1\r\ns\r\n$1\r\nm\r\n";
    assert_eq!(sub3.read_n(expected.len()), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_with_requirepass() {
    let srv = TestServer::start_with(&["--requirepass", "sekret"]);
    let mut raw = srv.raw();
    let expected: &[u8] = b"-NOAUTH Authentication required.\r\n-ERR unknown command 'FOO', with args beginning with: \r\n-WRONGPASS invalid username-password pair or user is disabled.\r\n+OK\r\n+PONG\r\n";
    assert_eq!(
        raw.roundtrip(
            b"PING\r\nFOO\r\nAUTH bad\r\nAUTH sekret\r\nPING\r\n",
            expected
        ),
        expected
    );
    let mut raw = srv.raw();
    let got = raw.call(b"HELLO 3 AUTH default sekret SETNAME me\r\n");
    assert!(
        got.starts_with(b"%7\r\n"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert_eq!(raw.call(b"CLIENT GETNAME\r\n"), b"$2\r\nme\r\n");
    // Before AUTH, commands are capped as in Redis 7 (10 arguments, 16 KiB each), so an
    // unauthenticated client cannot make the server buffer a large request; after it, not.
    let mut anon = srv.raw();
    let big = format!("*1\r\n${}\r\n", 1 << 20);
    assert_eq!(
        anon.call(big.as_bytes()),
        b"-ERR Protocol error: unauthenticated bulk length\r\n"
    );
    assert!(anon.is_closed());
    let mut anon = srv.raw();
    assert_eq!(anon.call(b"AUTH sekret\r\n"), b"+OK\r\n");
    let value = "v".repeat(20_000);
    let set = resp(&[b"SET", b"big", value.as_bytes()]);
    assert_eq!(anon.call(&set), b"+OK\r\n");
    bounded(async {
        let bad = redis::Client::open(format!("redis://:wrong@127.0.0.1:{}/", srv.port)).unwrap();
        assert!(bad.get_multiplexed_async_connection().await.is_err());
        let good = redis::Client::open(format!("redis://:sekret@127.0.0.1:{}/", srv.port)).unwrap();
        let mut c = good.get_multiplexed_async_connection().await.unwrap();
        let _: () = c.set("x", "y").await.unwrap();
    })
    .await;
}

#[test]
fn redis_cli_works() {
    let srv = TestServer::start();
    let Some(out) = redis_cli(srv.port, &["ping"]) else {
        return;
    };
    assert_eq!(out, "PONG\n");
    assert_eq!(
        redis_cli(srv.port, &["set", "cli", "hello world"]).unwrap(),
        "OK\n"
    );
    assert_eq!(
        redis_cli(srv.port, &["get", "cli"]).unwrap(),
        "hello world\n"
    );
    assert_eq!(
        redis_cli(srv.port, &["--no-raw", "get", "missing"]).unwrap(),
        "(nil)\n"
    );
    let info = redis_cli(srv.port, &["info", "server"]).unwrap();
    assert!(info.contains("redis_version:7.0.15"), "{info}");
    let out = common::redis_cli_stdin(srv.port, &[], "set a 1\nget a\n").unwrap();
    assert_eq!(out, "OK\n1\n");
}

#[test]
fn blpop_is_woken_by_another_connections_push_and_times_out() {
    let srv = TestServer::start();
    if !has_command(&srv, "blpop") || !has_command(&srv, "lpush") {
        eprintln!("note: BLPOP/LPUSH are not in the command table yet; skipping");
        return;
    }
    let mut waiter = srv.raw();
    waiter.send(b"BLPOP q 5\r\n");
    std::thread::sleep(Duration::from_millis(200));
    let mut pusher = srv.raw();
    assert_eq!(pusher.roundtrip(b"LPUSH q hello\r\n", b":1\r\n"), b":1\r\n");
    let expected = b"*2\r\n$1\r\nq\r\n$5\r\nhello\r\n";
    assert_eq!(waiter.read_n(expected.len()), expected);

    let start = std::time::Instant::now();
    assert_eq!(waiter.roundtrip(b"BLPOP q 0.3\r\n", b"*-1\r\n"), b"*-1\r\n");
    assert!(start.elapsed() >= Duration::from_millis(250));
    let expected = b"-ERR timeout is negative\r\n";
    assert_eq!(waiter.roundtrip(b"BLPOP q -1\r\n", expected), expected);
    let expected = b"-ERR timeout is not a float or out of range\r\n";
    assert_eq!(waiter.roundtrip(b"BLPOP q abc\r\n", expected), expected);
    // Inside MULTI it doesn't block.
    let expected = b"+OK\r\n+QUEUED\r\n*1\r\n*-1\r\n";
    assert_eq!(
        waiter.roundtrip(b"MULTI\r\nBLPOP q 0\r\nEXEC\r\n", expected),
        expected
    );
}

/// The id of a raw connection (CLIENT ID).
fn client_id(c: &mut common::Raw) -> String {
    let got = c.call(b"CLIENT ID\r\n");
    String::from_utf8_lossy(&got)
        .trim()
        .trim_start_matches(':')
        .to_string()
}

/// Sends a blocking command on `c` and waits until the server shows `c` blocked.
fn send_blocked(c: &mut common::Raw, admin: &mut common::Raw, cmd: &[u8]) {
    let id = client_id(c);
    c.send(cmd);
    wait_blocked(admin, &id);
}

/// Waits until CLIENT LIST shows client `id` blocked (flag b).
fn wait_blocked(admin: &mut common::Raw, id: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let list = String::from_utf8_lossy(&admin.call(b"CLIENT LIST\r\n")).to_string();
        let blocked = list
            .lines()
            .any(|l| l.contains(&format!("id={id} ")) && l.split(' ').any(|f| f == "flags=b"));
        if blocked {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "client {id} never blocked: {list}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn blocked_clients_are_served_first_come_first_served() {
    let srv = TestServer::start();
    let mut admin = srv.raw();
    let bulk = |s: &str| format!("${}\r\n{s}\r\n", s.len());
    let popped = |k: &str, v: &str| format!("*2\r\n{}{}", bulk(k), bulk(v)).into_bytes();

    // Three clients block on one list in a known order; then three single-element pushes
    // arrive, pipelined (one Raft batch, one wake-up) or one by one from other connections.
    for round in 0..2 {
        let mut waiters: Vec<common::Raw> = (0..3).map(|_| srv.raw()).collect();
        for w in waiters.iter_mut() {
            send_blocked(w, &mut admin, b"BLPOP q 10\r\n");
        }
        if round == 0 {
            // (Redis answers :1 three times, serving a client after each push; here the
            // batch is applied before the clients retry, so the lengths add up.)
            admin.send(b"RPUSH q a\r\nRPUSH q b\r\nRPUSH q c\r\n");
            for _ in 0..3 {
                assert!(admin.read_reply().starts_with(b":"));
            }
        } else {
            // One after the other (each acknowledged), possibly before the wake-ups.
            for v in ["a", "b", "c"] {
                let mut pusher = srv.raw();
                assert!(pusher
                    .call(format!("RPUSH q {v}\r\n").as_bytes())
                    .starts_with(b":"));
            }
        }
        for (w, v) in waiters.iter_mut().zip(["a", "b", "c"]) {
            let expected = popped("q", v);
            assert_eq!(
                String::from_utf8_lossy(&w.read_n(expected.len())),
                String::from_utf8_lossy(&expected),
                "round {round}"
            );
        }
    }

    // One push of three elements serves all three, in order, across commands and keys.
    let mut w1 = srv.raw();
    let mut w2 = srv.raw();
    let mut w3 = srv.raw();
    send_blocked(&mut w1, &mut admin, b"BRPOP other q 10\r\n");
    send_blocked(&mut w2, &mut admin, b"BLMPOP 10 1 q LEFT COUNT 2\r\n");
    send_blocked(&mut w3, &mut admin, b"BLPOP q 10\r\n");
    assert_eq!(
        admin.roundtrip(b"RPUSH q x y z w\r\n", b":4\r\n"),
        b":4\r\n"
    );
    let expected = popped("q", "w");
    assert_eq!(w1.read_n(expected.len()), expected);
    let expected = format!("*2\r\n{}*2\r\n{}{}", bulk("q"), bulk("x"), bulk("y")).into_bytes();
    assert_eq!(w2.read_n(expected.len()), expected);
    let expected = popped("q", "z");
    assert_eq!(w3.read_n(expected.len()), expected);

    // A client that disconnects, or times out, at the head of the queue does not stall it.
    let mut gone = srv.raw();
    send_blocked(&mut gone, &mut admin, b"BLPOP q 10\r\n");
    let mut brief = srv.raw();
    send_blocked(&mut brief, &mut admin, b"BLPOP q 0.2\r\n");
    let mut last = srv.raw();
    send_blocked(&mut last, &mut admin, b"BLPOP q 10\r\n");
    drop(gone);
    assert_eq!(brief.read_n(5), b"*-1\r\n");
    assert_eq!(admin.roundtrip(b"RPUSH q v\r\n", b":1\r\n"), b":1\r\n");
    let expected = popped("q", "v");
    assert_eq!(last.read_n(expected.len()), expected);

    // A client blocked on a key that now holds another type stays blocked (as in Redis),
    // and the next one in line is served.
    let mut zwaiter = srv.raw();
    send_blocked(&mut zwaiter, &mut admin, b"BZPOPMIN q 10\r\n");
    let mut lwaiter = srv.raw();
    send_blocked(&mut lwaiter, &mut admin, b"BLPOP q 10\r\n");
    assert_eq!(admin.roundtrip(b"RPUSH q l\r\n", b":1\r\n"), b":1\r\n");
    let expected = popped("q", "l");
    assert_eq!(lwaiter.read_n(expected.len()), expected);
    assert_eq!(admin.roundtrip(b"ZADD q 1 m\r\n", b":1\r\n"), b":1\r\n");
    let expected = format!("*3\r\n{}{}{}", bulk("q"), bulk("m"), bulk("1")).into_bytes();
    assert_eq!(zwaiter.read_n(expected.len()), expected);

    // XREADGROUP consumers of one group are served in order too.
    let expected = b"+OK\r\n";
    assert_eq!(
        admin.roundtrip(b"XGROUP CREATE s g $ MKSTREAM\r\n", expected),
        expected
    );
    let mut readers: Vec<common::Raw> = (0..2).map(|_| srv.raw()).collect();
    for (i, r) in readers.iter_mut().enumerate() {
        let cmd = format!("XREADGROUP GROUP g c{i} COUNT 1 BLOCK 10000 STREAMS s >\r\n");
        send_blocked(r, &mut admin, cmd.as_bytes());
    }
    let expected = b"$3\r\n1-1\r\n$3\r\n2-1\r\n";
    assert_eq!(
        admin.roundtrip(b"XADD s 1-1 f a\r\nXADD s 2-1 f b\r\n", expected),
        expected
    );
    for (r, (id, v)) in readers.iter_mut().zip([("1-1", "a"), ("2-1", "b")]) {
        let expected = format!(
            "*1\r\n*2\r\n{}*1\r\n*2\r\n{}*2\r\n{}{}",
            bulk("s"),
            bulk(id),
            bulk("f"),
            bulk(v)
        )
        .into_bytes();
        assert_eq!(
            String::from_utf8_lossy(&r.read_n(expected.len())),
            String::from_utf8_lossy(&expected)
        );
    }
}

#[test]
fn xreadgroup_leaves_watch_alone_like_redis() {
    let srv = TestServer::start();
    let mut a = srv.raw();
    let mut b = srv.raw();
    let expected = b"+OK\r\n";
    assert_eq!(
        a.roundtrip(b"XGROUP CREATE s g $ MKSTREAM\r\n", expected),
        expected
    );
    assert_eq!(
        a.roundtrip(b"XADD s 1-1 f v\r\n", b"$3\r\n1-1\r\n"),
        b"$3\r\n1-1\r\n"
    );
    assert_eq!(a.roundtrip(b"WATCH s\r\n", expected), expected);
    // Reads that create a consumer and deliver an entry: Redis signals no modified key.
    assert!(b
        .call(b"XREADGROUP GROUP g c STREAMS s >\r\n")
        .starts_with(b"*1\r\n"));
    assert!(b
        .call(b"XREADGROUP GROUP g c STREAMS s >\r\n")
        .starts_with(b"*-1\r\n"));
    let expected = b"+OK\r\n+QUEUED\r\n*1\r\n+PONG\r\n";
    assert_eq!(
        a.roundtrip(b"MULTI\r\nPING\r\nEXEC\r\n", expected),
        expected
    );
}

#[test]
fn client_commands() {
    let srv = TestServer::start();
    let mut a = srv.raw();
    let mut b = srv.raw();
    assert_eq!(
        a.roundtrip(b"CLIENT SETNAME alpha\r\n", b"+OK\r\n"),
        b"+OK\r\n"
    );
    let expected = b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n";
    assert_eq!(
        a.roundtrip(b"CLIENT SETNAME \"a b\"\r\n", expected),
        expected
    );
    assert_eq!(
        a.roundtrip(b"CLIENT GETNAME\r\n", b"$5\r\nalpha\r\n"),
        b"$5\r\nalpha\r\n"
    );
    let got = a.call(b"CLIENT LIST\r\n");
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("name=alpha"), "{text}");
    let id = {
        let got = b.call(b"CLIENT ID\r\n");
        let s = String::from_utf8_lossy(&got).to_string();
        s.trim().trim_start_matches(':').to_string()
    };
    let kill = format!("CLIENT KILL ID {id}\r\n");
    assert_eq!(a.roundtrip(kill.as_bytes(), b":1\r\n"), b":1\r\n");
    assert!(b.is_closed());
    let expected = b"-ERR No such client\r\n";
    assert_eq!(
        a.roundtrip(b"CLIENT KILL 1.2.3.4:5\r\n", expected),
        expected
    );
    let expected = b"-ERR unknown subcommand 'foo'. Try CLIENT HELP.\r\n";
    assert_eq!(a.roundtrip(b"CLIENT foo\r\n", expected), expected);
    let expected = b"-ERR wrong number of arguments for 'client|setname' command\r\n";
    assert_eq!(a.roundtrip(b"CLIENT SETNAME\r\n", expected), expected);
    // CLIENT REPLY OFF / SKIP / ON.
    let expected = b"+OK\r\n+PONG\r\n";
    assert_eq!(
        a.roundtrip(
            b"CLIENT REPLY OFF\r\nPING\r\nCLIENT REPLY ON\r\nCLIENT REPLY SKIP\r\nPING\r\nPING\r\n",
            expected
        ),
        expected
    );
}

#[test]
fn maxclients_rejects_extra_connections() {
    let srv = TestServer::start_with(&["--maxclients", "2"]);
    let mut a = srv.raw();
    let mut b = srv.raw();
    assert_eq!(a.roundtrip(b"PING\r\n", b"+PONG\r\n"), b"+PONG\r\n");
    assert_eq!(b.roundtrip(b"PING\r\n", b"+PONG\r\n"), b"+PONG\r\n");
    let mut c = srv.raw();
    let expected = b"-ERR max number of clients reached\r\n";
    assert_eq!(c.read_n(expected.len()), expected);
    assert!(c.is_closed());
    drop(a);
    std::thread::sleep(Duration::from_millis(200));
    let mut d = srv.raw();
    assert_eq!(d.roundtrip(b"PING\r\n", b"+PONG\r\n"), b"+PONG\r\n");
}

#[test]
fn health_endpoint_and_shutdown() {
    let mut srv = TestServer::start();
    let (status, body) = http_get(srv.http_port, "/health");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(body, "ok");
    let (status, _) = http_get(srv.http_port, "/nope");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let mut raw = srv.raw();
    raw.send(b"SHUTDOWN NOSAVE\r\n");
    assert!(raw.is_closed());
    let status = srv
        .wait_exit(Duration::from_secs(10))
        .expect("server should exit");
    assert!(status.success(), "{status}");
}

#[test]
fn port_in_use_is_a_clear_error() {
    let srv = TestServer::start();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_raft-kv"))
        .args(["--redis-port", &srv.port.to_string()])
        .args(["--port", &common::free_port().to_string()])
        .args(["--data-dir", srv.dir.join("other").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "raft-kv: cannot listen on 127.0.0.1:{}: Address already in use",
            srv.port
        )),
        "{err}"
    );
}

#[test]
fn sigterm_shuts_down_gracefully() {
    let mut srv = TestServer::start();
    let mut raw = srv.raw();
    assert_eq!(raw.roundtrip(b"SET k v\r\n", b"+OK\r\n"), b"+OK\r\n");
    let pid = srv.pid().unwrap();
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("note: kill(1) unavailable; skipping");
        return;
    }
    let status = srv
        .wait_exit(Duration::from_secs(10))
        .expect("server should exit on SIGTERM");
    assert!(status.success(), "{status}");
    assert!(raw.is_closed());
}

#[test]
fn command_info_and_unknown_commands() {
    let srv = TestServer::start();
    let mut raw = srv.raw();
    let expected: &[u8] = b"*1\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*3\r\n+@read\r\n+@string\r\n+@fast\r\n*0\r\n*0\r\n*0\r\n";
    assert_eq!(raw.call(b"COMMAND INFO get\r\n"), expected);
    let expected = b"*1\r\n$1\r\na\r\n";
    assert_eq!(
        raw.roundtrip(b"COMMAND GETKEYS set a b\r\n", expected),
        expected
    );
    let expected = b"-ERR unknown command 'nosuch', with args beginning with: 'x' \r\n";
    assert_eq!(raw.roundtrip(b"nosuch x\r\n", expected), expected);
    let expected =
        b"+OK\r\n-ERR DB index is out of range\r\n-ERR value is not an integer or out of range\r\n";
    assert_eq!(
        raw.roundtrip(b"SELECT 0\r\nSELECT 1\r\nSELECT x\r\n", expected),
        expected
    );
}

/// `expired_keys` from INFO stats.
async fn expired_keys(c: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(c)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("expired_keys:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("expired_keys in INFO stats")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_with_a_ttl_are_deleted_without_being_touched() {
    let srv = TestServer::start();
    bounded(async {
        let mut c = srv.conn().await;
        // Keys without a time to live first: once a scan finds none, active expiry idles,
        // and it must wake up for keys given a TTL later.
        for i in 0..200 {
            let _: () = c.set(format!("plain{i}"), i).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(expired_keys(&mut c).await, 0);
        for i in 0..50 {
            let _: () = redis::cmd("SET")
                .arg(format!("ttl{i}"))
                .arg(i)
                .arg("PX")
                .arg(150)
                .query_async(&mut c)
                .await
                .unwrap();
        }
        let _: () = c.expire("plain0", 1).await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while expired_keys(&mut c).await < 51 {
            assert!(
                std::time::Instant::now() < deadline,
                "active expiry deleted only {} of 51 keys",
                expired_keys(&mut c).await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let n: u64 = redis::cmd("DBSIZE").query_async(&mut c).await.unwrap();
        assert_eq!(n, 199);
        let v: Option<String> = c.get("plain1").await.unwrap();
        assert_eq!(v.as_deref(), Some("1"));
    })
    .await;
}

/// CONFIG SET client-output-buffer-limit `value`.
fn set_output_limit(admin: &mut common::Raw, value: &[u8]) {
    assert_eq!(
        admin.call(&resp(&[
            b"CONFIG",
            b"SET",
            b"client-output-buffer-limit",
            value
        ])),
        b"+OK\r\n"
    );
}

#[test]
fn a_subscriber_that_stops_reading_is_cut_off_at_its_output_limit() {
    let srv = TestServer::start();
    let mut admin = srv.raw();
    set_output_limit(&mut admin, b"pubsub 256kb 0 0");
    // Subscribes, then never reads again.
    let mut slow = srv.raw();
    let got = slow.call(&resp(&[b"SUBSCRIBE", b"feed"]));
    assert!(got.starts_with(b"*3\r\n$9\r\nsubscribe\r\n"), "{got:?}");
    let message = vec![b'm'; 16 * 1024];
    let mut receivers = Vec::new();
    // Far more than the socket buffers hold: the rest queues on the server until the limit.
    for _ in 0..4000 {
        let r = admin.call(&resp(&[b"PUBLISH", b"feed", &message]));
        receivers.push(r.clone());
        if r == b":0\r\n" {
            break;
        }
    }
    assert_eq!(
        receivers.last().map(Vec::as_slice),
        Some(&b":0\r\n"[..]),
        "the stuck subscriber was never disconnected"
    );
    // It got at least what fits in its limit first (256 KiB: 15 messages and change).
    assert!(
        receivers.len() > 10,
        "cut off after {} messages",
        receivers.len()
    );
    // The publisher was answered all along, and the server serves others.
    assert!(receivers.iter().all(|r| r == b":1\r\n" || r == b":0\r\n"));
    assert_eq!(admin.call(b"PING\r\n"), b"+PONG\r\n");
}

/// The `normal` class of client-output-buffer-limit: a client whose replies pile up past the
/// hard limit is closed without them; one that does not take its output within the soft
/// seconds is closed too; everyone else is served meanwhile.
#[test]
fn a_client_over_the_normal_output_limit_is_closed() {
    let srv = TestServer::start();
    let mut admin = srv.raw();
    let value = vec![b'v'; 512 * 1024];
    assert_eq!(admin.call(&resp(&[b"SET", b"big", &value])), b"+OK\r\n");
    set_output_limit(&mut admin, b"normal 1mb 0 0");
    // One GET fits; ten pipelined GETs (5 MiB of replies) do not.
    let mut one = srv.raw();
    let got = one.call(&resp(&[b"STRLEN", b"big"]));
    assert_eq!(got, b":524288\r\n");
    let mut greedy = srv.raw();
    let mut pipeline = Vec::new();
    for _ in 0..10 {
        pipeline.extend(resp(&[b"GET", b"big"]));
    }
    greedy.send(&pipeline);
    assert!(
        greedy.is_closed(),
        "a client 4 MiB over its hard limit was kept"
    );

    // Soft: 100 KiB for 1 s. A client that asks for 5 MiB and reads none of it is closed
    // after about a second.
    set_output_limit(&mut admin, b"normal 0 100kb 1");
    let stuck = std::net::TcpStream::connect(("127.0.0.1", srv.port)).expect("connect");
    let _ = stuck.set_read_timeout(Some(std::time::Duration::from_secs(10)));
    // 20 MiB: more than the socket buffers on both sides hold.
    let mut big_pipeline = Vec::new();
    for _ in 0..40 {
        big_pipeline.extend(resp(&[b"GET", b"big"]));
    }
    let _ = (&stuck).write_all(&big_pipeline);
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let listed = admin.call(&resp(&[b"CLIENT", b"LIST"]));
    let clients = String::from_utf8_lossy(&listed)
        .lines()
        .filter(|l| l.starts_with("id="))
        .count();
    // Left: admin and `one` (the greedy and the stuck clients are gone).
    assert!(clients <= 2, "{}", String::from_utf8_lossy(&listed));
    let mut reader = &stuck;
    let mut sink = Vec::new();
    let _ = reader.read_to_end(&mut sink);
    assert!(
        sink.len() < 40 * value.len(),
        "the stuck client got all of its output"
    );
    assert_eq!(admin.call(b"PING\r\n"), b"+PONG\r\n");
}
