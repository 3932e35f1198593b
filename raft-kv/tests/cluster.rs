//! Replicated clusters of real processes: every node serves reads and writes, acknowledged
//! writes survive leader loss, a lagging node catches up by snapshot, SIGTERM hands over
//! leadership, and bad start-ups fail clearly.

mod common;

use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::{retry, TEST_TIMEOUT};
use redis::AsyncCommands;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_serve_reads_and_writes_from_any_node() {
    serve_from_any_node(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_reads_serve_from_any_node() {
    serve_from_any_node(&["--read-mode", "lease"]).await;
}

async fn serve_from_any_node(flags: &[&str]) {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let c = Cluster::start(3, flags);
        c.wait_leader(Duration::from_secs(15));
        let mut conns = Vec::new();
        for n in &c.nodes {
            conns.push(n.conn().await);
        }
        // A write through each node is visible through every node right after its reply.
        for i in 0..3 {
            let key = format!("k{i}");
            let _: () = retry(Duration::from_secs(10), || {
                let mut c = conns[i].clone();
                let key = key.clone();
                async move { c.set(key, format!("v{i}")).await }
            })
            .await;
            for (j, conn) in conns.iter_mut().enumerate() {
                let got: Option<String> = conn.get(&key).await.expect("get");
                assert_eq!(got.as_deref(), Some(format!("v{i}").as_str()), "node {j}");
            }
        }
        // Concurrent increments through all nodes: none lost, none doubled.
        let mut tasks = Vec::new();
        for conn in &conns {
            let mut conn = conn.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..20 {
                    let _: i64 = conn.incr("counter", 1).await.expect("incr");
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        for conn in conns.iter_mut() {
            let n: i64 = conn.get("counter").await.expect("get");
            assert_eq!(n, 60);
        }
        // Transactions and collections replicate like any write.
        let (a, b): (i64, i64) = redis::pipe()
            .atomic()
            .rpush("list", &["x", "y"])
            .sadd("set", "m")
            .query_async(&mut conns[1])
            .await
            .expect("multi/exec");
        assert_eq!((a, b), (2, 1));
        let list: Vec<String> = conns[2].lrange("list", 0, -1).await.expect("lrange");
        assert_eq!(list, ["x", "y"]);
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query_async(&mut conns[0])
            .await
            .expect("info");
        assert!(info.contains("raft_role:"), "{info}");
        assert!(info.contains("raft_members:n1,n2,n3"), "{info}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_loss_keeps_acknowledged_writes_and_recovers() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let mut c = Cluster::start(3, &[]);
        let leader = c.wait_leader(Duration::from_secs(15));
        let mut conn = c.nodes[leader].conn().await;
        for i in 0..50 {
            let _: () = conn.set(format!("key{i}"), i).await.expect("set");
        }
        c.nodes[leader].kill9();
        let survivor = (leader + 1) % 3;
        let start = Instant::now();
        let mut s = c.nodes[survivor].conn().await;
        let _: () = retry(Duration::from_secs(15), || {
            let mut s = s.clone();
            async move { s.set("after", "failover").await }
        })
        .await;
        eprintln!(
            "writes resumed {:?} after the leader was killed",
            start.elapsed()
        );
        for i in 0..50 {
            let v: i64 = s.get(format!("key{i}")).await.expect("get");
            assert_eq!(v, i);
        }
        // The survivors logged the election and its outcome.
        let logs: String = (0..3)
            .filter(|i| *i != leader)
            .map(|i| c.nodes[i].log_text())
            .collect();
        assert!(logs.contains("election started"), "{logs}");
        assert!(logs.contains("leader changed"), "{logs}");
        // The old leader comes back as a follower and catches up.
        c.nodes[leader].spawn();
        let mut back = c.nodes[leader].conn().await;
        let v: String = retry(Duration::from_secs(15), || {
            let mut b = back.clone();
            async move { b.get("after").await }
        })
        .await;
        assert_eq!(v, "failover");
        let n: i64 = redis::cmd("DBSIZE")
            .query_async(&mut back)
            .await
            .expect("dbsize");
        assert_eq!(n, 51);
        let _ = &mut s;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_node_catches_up_by_snapshot() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let mut c = Cluster::start(3, &["--raft-log-gc-threshold", "20"]);
        let leader = c.wait_leader(Duration::from_secs(15));
        let lagging = (leader + 1) % 3;
        c.nodes[lagging].kill9();
        let mut conn = c.nodes[leader].conn().await;
        for i in 0..200 {
            let _: () = retry(Duration::from_secs(10), || {
                let mut conn = conn.clone();
                async move { conn.hset("h", format!("f{i}"), i).await }
            })
            .await;
        }
        let (_, _, first) = c.nodes[leader].status().expect("leader status");
        assert!(
            first > 100,
            "the leader compacted its log (first index {first})"
        );
        c.nodes[lagging].spawn();
        let mut l = c.nodes[lagging].conn().await;
        let n: i64 = retry(Duration::from_secs(20), || {
            let mut l = l.clone();
            async move {
                let n: i64 = l.hlen("h").await?;
                if n == 200 {
                    Ok(n)
                } else {
                    Err(redis::RedisError::from((
                        redis::ErrorKind::TryAgain,
                        "behind",
                    )))
                }
            }
        })
        .await;
        assert_eq!(n, 200);
        let v: i64 = l.hget("h", "f199").await.expect("hget");
        assert_eq!(v, 199);
        assert!(
            c.nodes[lagging].log_text().contains("installed snapshot"),
            "{}",
            c.logs()
        );
        let _ = &mut conn;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_hands_leadership_over() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let mut c = Cluster::start(3, &[]);
        let leader = c.wait_leader(Duration::from_secs(15));
        let mut conn = c.nodes[leader].conn().await;
        let _: () = conn.set("k", "v").await.expect("set");
        c.nodes[leader].signal("TERM");
        let st = c.nodes[leader].wait_exit(Duration::from_secs(10));
        assert!(st.is_some_and(|s| s.success()), "clean exit: {st:?}");
        let start = Instant::now();
        let new = c.wait_leader(Duration::from_secs(10));
        assert_ne!(new, leader);
        let waited = start.elapsed();
        assert!(
            c.nodes[leader]
                .log_text()
                .contains("transferring leadership"),
            "{}",
            c.logs()
        );
        eprintln!("new leader visible {waited:?} after the old one exited");
        let mut n = c.nodes[new].conn().await;
        let v: String = n.get("k").await.expect("get");
        assert_eq!(v, "v");
    })
    .await
    .expect("test timed out");
}

#[test]
fn refuses_a_data_dir_of_another_node_or_cluster() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("d");
    let bin = env!("CARGO_BIN_EXE_raft-kv");
    let port = common::free_port();
    let run = |args: &[&str]| {
        std::process::Command::new(bin)
            .args(["--data-dir", dir.to_str().expect("utf8 path")])
            .args(["--redis-port", &common::free_port().to_string()])
            .args(["--port", &port.to_string()])
            .args(args)
            .output()
            .expect("run raft-kv")
    };
    // A node that ran once (bootstrap) and exits at once: an invalid flag after init.
    let mut first = common::TestServer::start_in(&dir, &["--node-id", "a"]);
    first.kill9();
    let out = run(&["--node-id", "b"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("belongs to node \"a\""), "{err}");
    let out = run(&["--node-id", "a", "--cluster", "a=127.0.0.1:1,b=127.0.0.1:2"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("belongs to the cluster"), "{err}");
    let out = run(&["--node-id", "a", "--cluster", "b=127.0.0.1:2"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not list this node"));
}

/// With a 1 s tick, nothing on the write or read path may wait for a tick: 20 writes and
/// reads through a follower take far less than one tick each (with the bug this guards
/// against, forwarded proposals sat in the outbox until the next tick: ~20 s here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_requests_do_not_wait_for_ticks() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let c = Cluster::start(3, &["--raft-tick-ms", "1000", "--raft-election-ticks", "3"]);
        let leader = c.wait_leader(Duration::from_secs(30));
        let follower = (leader + 1) % 3;
        let mut conn = c.nodes[follower].conn().await;
        let _: () = retry(Duration::from_secs(20), || {
            let mut conn = conn.clone();
            async move { conn.set("warm", 1).await }
        })
        .await;
        let start = Instant::now();
        for i in 0..20 {
            let _: () = conn.set(format!("k{i}"), i).await.expect("set");
            let v: i64 = conn.get(format!("k{i}")).await.expect("get");
            assert_eq!(v, i);
        }
        let took = start.elapsed();
        assert!(
            took < Duration::from_secs(8),
            "20 follower writes+reads took {took:?}: something waits for a tick"
        );
    })
    .await
    .expect("test timed out");
}

/// Parses Prometheus text exposition: every sample line is `name{labels} value` with a
/// declared TYPE; returns (name, labels, value) triples.
fn parse_prometheus(text: &str) -> Vec<(String, String, f64)> {
    let mut typed = std::collections::HashSet::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let name = parts.next().expect("TYPE name");
            let kind = parts.next().expect("TYPE kind");
            assert!(
                matches!(kind, "counter" | "gauge" | "histogram"),
                "bad type {line}"
            );
            typed.insert(name.to_string());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample has a value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        let (name, labels) = match series.find('{') {
            Some(i) => {
                assert!(series.ends_with('}'), "bad labels: {line}");
                (&series[..i], &series[i..])
            }
            None => (series, ""),
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad name: {line}"
        );
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(*f)))
            .unwrap_or(name);
        assert!(typed.contains(family), "sample before its TYPE: {line}");
        out.push((name.to_string(), labels.to_string(), value));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_ready_and_info_describe_the_cluster() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let c = Cluster::start(3, &[]);
        c.wait_ready(Duration::from_secs(15));
        let mut conn = c.nodes[0].conn().await;
        let _: () = retry(Duration::from_secs(10), || {
            let mut conn = conn.clone();
            async move { conn.set("m", "1").await }
        })
        .await;
        let _: Option<String> = conn.get("m").await.expect("get");
        let _: redis::RedisResult<i64> = conn.incr("m-not-int-after-set", 1).await;
        let mut leaders = 0.0;
        for n in &c.nodes {
            let (status, body) = common::http_get(n.http_port, "/ready");
            assert!(status.contains("200"), "{}: {status} {body}", n.name);
            let (status, body) = common::http_get(n.http_port, "/metrics");
            assert!(status.contains("200"), "{status}");
            let samples = parse_prometheus(&body);
            let get = |name: &str, labels: &str| {
                samples
                    .iter()
                    .find(|(n, l, _)| n == name && l == labels)
                    .map(|(_, _, v)| *v)
            };
            leaders += get("raftkv_raft_is_leader", "{shard=\"1\"}").expect("is_leader");
            assert!(get("raftkv_raft_applied_index", "{shard=\"1\"}").expect("applied") >= 1.0);
            assert!(get("raftkv_raft_term", "{shard=\"1\"}").expect("term") >= 1.0);
            assert!(get("raftkv_connected_clients", "").is_some());
            assert!(get("raftkv_storage_disk_usage_bytes", "").is_some());
            assert!(
                get("raftkv_raft_log_fsync_duration_seconds_count", "").expect("fsyncs") >= 1.0
            );
            if n.name == "n1" {
                assert_eq!(
                    get("raftkv_operations_total", "{cmd=\"set\",result=\"ok\"}"),
                    Some(1.0),
                    "{body}"
                );
                assert!(get("raftkv_operation_duration_seconds_count", "{cmd=\"get\"}").is_some());
            }
        }
        assert_eq!(leaders, 1.0, "exactly one leader");
        // The load the scheduler uses shows up with the next load report (every 2 s).
        let deadline = Instant::now() + Duration::from_secs(10);
        let body = loop {
            let (_, body) = common::http_get(c.nodes[0].http_port, "/metrics");
            if body.contains("raftkv_shard_requests_per_second{") {
                break body;
            }
            assert!(Instant::now() < deadline, "no request rates: {body}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        // Every metric the Grafana dashboard queries is exported.
        let dashboard = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../ops/grafana-dashboard.json"
        ))
        .expect("dashboard");
        for word in dashboard.split(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_')) {
            if let Some(name) = word.strip_prefix("raftkv_") {
                let base = name
                    .trim_end_matches("_bucket")
                    .trim_end_matches("_count")
                    .trim_end_matches("_sum");
                assert!(
                    body.contains(&format!("# TYPE raftkv_{base} ")),
                    "the dashboard uses raftkv_{name}, which /metrics lacks"
                );
            }
        }
        // The Prometheus project's own parser (prometheus_client, when installed: CI installs
        // python3-prometheus-client) reads the whole exposition.
        let script = "import sys\n\
            from prometheus_client.parser import text_string_to_metric_families as parse\n\
            for f in parse(sys.stdin.read()):\n    print(f.name, f.type, len(f.samples))\n";
        let out = std::process::Command::new(common::python3())
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write as _;
                if let Some(mut stdin) = child.stdin.take() {
                    stdin.write_all(body.as_bytes())?;
                }
                child.wait_with_output()
            })
            .expect("run python3");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("No module named") {
            eprintln!("note: prometheus_client not installed; skipping its parser");
        } else {
            assert!(out.status.success(), "prometheus_client: {stderr}\n{body}");
            let families = String::from_utf8_lossy(&out.stdout);
            for want in [
                "raftkv_raft_is_leader gauge",
                "raftkv_operations counter",
                "raftkv_operation_duration_seconds histogram",
                "raftkv_raft_log_fsync_duration_seconds histogram",
            ] {
                assert!(families.contains(want), "{want} not in {families}");
            }
        }
        let info: String = redis::cmd("INFO")
            .arg("raft")
            .query_async(&mut conn)
            .await
            .expect("info raft");
        assert!(info.contains("raft_shards:1"), "{info}");
        assert!(info.contains("shard_1:role="), "{info}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_secret_guards_node_to_node_and_admin_traffic() {
    use raft_kv::raftstore::transport::pb::node_client::NodeClient;
    use raft_kv::raftstore::transport::pb::HelloRequest;
    tokio::time::timeout(TEST_TIMEOUT, async {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret_file = dir.path().join("secret");
        std::fs::write(&secret_file, "correct horse\n").expect("write secret");
        let path = secret_file.to_string_lossy().to_string();
        let c = Cluster::start(
            3,
            &["--cluster-secret-file", &path, "--initial-shards", "2"],
        );
        c.wait_ready(Duration::from_secs(20));
        // Members that share the secret replicate as usual.
        let mut a = c.nodes[0].conn().await;
        let mut b = c.nodes[2].conn().await;
        let _: () = retry(Duration::from_secs(10), || {
            let mut a = a.clone();
            async move { a.set("guarded", "yes").await }
        })
        .await;
        let v: String = b.get("guarded").await.expect("get");
        assert_eq!(v, "yes");
        let _ = &mut a;

        // A gRPC client without the secret is refused; with it, answered.
        let port = c.nodes[1].http_port;
        let mut client = NodeClient::connect(format!("http://127.0.0.1:{port}"))
            .await
            .expect("grpc connect");
        let err = client
            .hello(HelloRequest::default())
            .await
            .expect_err("no secret");
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
        let mut req = tonic::Request::new(HelloRequest::default());
        req.metadata_mut().insert(
            raft_kv::raftstore::auth::GRPC_HEADER,
            "correct horse".parse().expect("metadata"),
        );
        let info = client
            .hello(req)
            .await
            .expect("with the secret")
            .into_inner();
        assert_eq!(info.name, "n2");

        // Admin routes need the bearer token; probes and scrapes do not.
        assert!(common::http_get_with(port, "/status", "")
            .0
            .contains(" 401 "));
        let auth = "Authorization: Bearer correct horse\r\n";
        assert!(common::http_get_with(port, "/status", auth)
            .0
            .contains(" 200 "));
        assert!(
            common::http_get_with(port, "/status", "Authorization: Bearer nope\r\n")
                .0
                .contains(" 401 ")
        );
        for open in ["/health", "/ready", "/metrics"] {
            assert!(
                common::http_get_with(port, open, "").0.contains(" 200 "),
                "{open}"
            );
        }

        // A member restarted with another secret is cut off: its Raft traffic is refused
        // both ways, so it cannot serve, while the two others keep the cluster going.
        let mut c = c;
        let wrong = dir.path().join("wrong");
        std::fs::write(&wrong, "battery staple").expect("write secret");
        c.nodes[2].kill9();
        for f in c.nodes[2].extra.iter_mut() {
            if *f == path {
                *f = wrong.to_string_lossy().to_string();
            }
        }
        c.nodes[2].spawn();
        let _: () = retry(Duration::from_secs(10), || {
            let mut a = a.clone();
            async move { a.set("guarded", "still").await }
        })
        .await;
        let mut outcast = c.nodes[2].conn().await;
        let r: redis::RedisResult<String> = outcast.get("guarded").await;
        assert!(r.is_err(), "a node without the secret cannot serve: {r:?}");
        let log = c.nodes[0].log_text() + &c.nodes[2].log_text();
        assert!(!log.contains("panicked"), "{log}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiescent_group_elects_when_its_leader_is_silently_cut_off() {
    // The partition hook drops traffic without closing connections, so the transport never
    // reports the leader unreachable: the client's request (stepped into the sleeping
    // follower's Raft node, which wakes it) must restart the follower's election timer.
    tokio::time::timeout(TEST_TIMEOUT, async {
        // 50 ms ticks: quiescent after 1 s idle, a new election within 0.5-1 s.
        let c = Cluster::start_with_env(
            3,
            &["--raft-tick-ms", "50"],
            &[("RAFTKV_FAULT_INJECTION", "1")],
        );
        c.wait_ready(Duration::from_secs(20));
        let leader = c.wait_leader(Duration::from_secs(15));
        let mut conn = c.nodes[(leader + 1) % 3].conn().await;
        let _: () = retry(Duration::from_secs(10), || {
            let mut conn = conn.clone();
            async move { conn.set("k", "before").await }
        })
        .await;
        // Idle for 20 ticks (1 s) and more: the group goes to sleep.
        tokio::time::sleep(Duration::from_secs(4)).await;
        let names: Vec<String> = c.nodes.iter().map(|n| n.name.clone()).collect();
        for (i, n) in c.nodes.iter().enumerate() {
            let body = if i == leader {
                names
                    .iter()
                    .filter(|m| **m != names[leader])
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(",")
            } else {
                names[leader].clone()
            };
            let (status, _) =
                common::http_post(n.http_port, "/debug/partition", &body).expect("partition");
            assert!(status.contains(" 200 "), "{status}");
        }
        let started = Instant::now();
        let r: redis::RedisResult<()> = conn.set("k", "after").await;
        // Had the followers slept on, the write would fail at the 5 s request timeout.
        assert!(
            r.is_ok() && started.elapsed() < Duration::from_secs(4),
            "the followers elected a new leader: {r:?} after {:?}",
            started.elapsed()
        );
        let v: String = conn.get("k").await.expect("get");
        assert_eq!(v, "after");
    })
    .await
    .expect("test timed out");
}

/// A leader frozen past its lease (SIGSTOP: a GC pause, a stalled VM) must not serve a lease
/// read from its old state when it wakes: time it did not see pass still counts. It is cut
/// off from its peers first, so nothing it hears on waking can depose it before the read.
#[test]
fn lease_reads_after_a_paused_leader_wakes_are_not_stale() {
    use common::{http_post, resp, Raw};
    let c = Cluster::start_with_env(
        3,
        &["--read-mode", "lease", "--initial-shards", "1"],
        &[("RAFTKV_FAULT_INJECTION", "1")],
    );
    c.wait_ready(Duration::from_secs(30));
    let old = c.wait_leader(Duration::from_secs(30));
    let mut conn = Raw::connect(c.nodes[old].redis_port);
    assert_eq!(conn.call(&resp(&[b"SET", b"k", b"v1"])), b"+OK\r\n");
    assert_eq!(conn.call(&resp(&[b"GET", b"k"])), b"$2\r\nv1\r\n");

    let others: Vec<&str> = (0..3)
        .filter(|&i| i != old)
        .map(|i| c.nodes[i].name.as_str())
        .collect();
    let (status, _) = http_post(
        c.nodes[old].http_port,
        "/debug/partition",
        &others.join(","),
    )
    .expect("partition the leader");
    assert!(status.contains(" 200"), "{status}");
    c.nodes[old].signal("STOP");
    // The others elect a leader and take a newer write.
    let other = (old + 1) % 3;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut w = Raw::connect(c.nodes[other].redis_port);
    loop {
        if w.call(&resp(&[b"SET", b"k", b"v2"])) == b"+OK\r\n" {
            break;
        }
        if Instant::now() > deadline {
            c.nodes[old].signal("CONT");
            panic!("no write after the leader froze\n{}", c.logs());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Queued while frozen, read the moment it wakes.
    conn.send(&resp(&[b"GET", b"k"]));
    std::thread::sleep(Duration::from_millis(200));
    c.nodes[old].signal("CONT");
    let got = conn.read_reply();
    assert_ne!(
        got, b"$2\r\nv1\r\n",
        "stale lease read from the woken old leader"
    );
    assert!(
        got == b"$2\r\nv2\r\n" || got.starts_with(b"-"),
        "{}",
        String::from_utf8_lossy(&got)
    );
}

/// libfaketime, to move one process's wall clock (Debian's `faketime` package).
const FAKETIME_LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// The leader's wall clock jumps an hour forward, then back past where it started, while a
/// counter is incremented through one node and read through all three by lease. Leases run
/// on the monotonic clock (DESIGN.md, "Lease bound"), so every read still sees every
/// increment acknowledged before it started.
#[test]
fn lease_reads_stay_linearizable_when_the_leaders_wall_clock_jumps() {
    use common::{resp, Raw};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    if !std::path::Path::new(FAKETIME_LIB).exists() {
        eprintln!("note: libfaketime not installed (package faketime); skipping");
        return;
    }
    let mut c = Cluster::start(3, &["--read-mode", "lease", "--initial-shards", "1"]);
    // Restarted under libfaketime, each with its own clock file (re-read every second);
    // the monotonic clock is left alone.
    for i in 0..3 {
        c.nodes[i].kill9();
        let clock = c.tmp.path().join(format!("clock-{i}"));
        std::fs::write(&clock, "+0").expect("clock file");
        c.nodes[i].env.extend([
            ("LD_PRELOAD".to_string(), FAKETIME_LIB.to_string()),
            ("DONT_FAKE_MONOTONIC".to_string(), "1".to_string()),
            (
                "FAKETIME_TIMESTAMP_FILE".to_string(),
                clock.display().to_string(),
            ),
            ("FAKETIME_CACHE_DURATION".to_string(), "1".to_string()),
        ]);
    }
    for i in 0..3 {
        c.nodes[i].spawn();
    }
    c.wait_ready(Duration::from_secs(30));
    let leader = c.wait_leader(Duration::from_secs(30));
    let clock = c.tmp.path().join(format!("clock-{leader}"));
    let ports: Vec<u16> = c.nodes.iter().map(|n| n.redis_port).collect();

    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    // (ack time, value) of every acknowledged INCR; times of failed ones.
    let acks = Arc::new(Mutex::new(Vec::<(Instant, i64)>::new()));
    let failed = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let writer = {
        let (stop, acks, failed) = (stop.clone(), acks.clone(), failed.clone());
        let port = ports[(leader + 1) % 3];
        std::thread::spawn(move || {
            let mut w = Raw::connect(port);
            while !stop.load(Ordering::Relaxed) {
                let r = w.call(&resp(&[b"INCR", b"ctr"]));
                let now = Instant::now();
                match std::str::from_utf8(&r)
                    .ok()
                    .and_then(|s| s.strip_prefix(':'))
                    .and_then(|s| s.trim().parse::<i64>().ok())
                {
                    Some(v) => acks.lock().expect("acks").push((now, v)),
                    None => {
                        failed.lock().expect("failed").push(now);
                        std::thread::sleep(Duration::from_millis(50));
                        w = Raw::connect(port);
                    }
                }
            }
        })
    };
    let readers: Vec<_> = ports
        .iter()
        .map(|&port| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut r = Raw::connect(port);
                let mut seen = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let start = Instant::now();
                    let got = r.call(&resp(&[b"GET", b"ctr"]));
                    let end = Instant::now();
                    if got == b"$-1\r\n" {
                        seen.push((start, end, 0));
                    } else if let Some(v) = std::str::from_utf8(&got)
                        .ok()
                        .and_then(|s| s.lines().nth(1))
                        .and_then(|s| s.parse::<i64>().ok())
                    {
                        seen.push((start, end, v));
                    } else {
                        std::thread::sleep(Duration::from_millis(50));
                        r = Raw::connect(port);
                    }
                }
                seen
            })
        })
        .collect();

    // The jumps: +1 h, then -1 h (from the real time), then back.
    let mut time_on_leader = Raw::connect(ports[leader]);
    let wall = |raw: &mut Raw| -> i64 {
        let r = raw.call(&resp(&[b"TIME"]));
        String::from_utf8_lossy(&r)
            .lines()
            .nth(2)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    };
    let real = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    };
    // libfaketime re-reads the file only once its cache (1 s, compared in whole seconds, so
    // up to ~2 s) has expired: wait for the jump to show rather than for a fixed time.
    for (at, offset, want) in [(3, "+1h", 3600), (8, "-1h", -3600), (13, "+0", 0)] {
        std::thread::sleep(Duration::from_secs(at).saturating_sub(t0.elapsed()));
        std::fs::write(&clock, offset).expect("jump the clock");
        let deadline = Instant::now() + Duration::from_secs(5);
        let skew = loop {
            let skew = wall(&mut time_on_leader) - real();
            if (skew - want).abs() < 60 || Instant::now() > deadline {
                break skew;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(
            (skew - want).abs() < 60,
            "the leader's clock is off by {skew} s, not {want} (is libfaketime working?)"
        );
    }
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    let reads: Vec<(Instant, Instant, i64)> = readers
        .into_iter()
        .flat_map(|r| r.join().expect("reader"))
        .collect();
    let acks = acks.lock().expect("acks").clone();
    let failed = failed.lock().expect("failed").clone();
    assert!(
        acks.len() > 20,
        "only {} increments acknowledged",
        acks.len()
    );
    assert!(reads.len() > 60, "only {} reads", reads.len());
    for (start, end, v) in &reads {
        // Every increment acknowledged before the read began is seen...
        let before = acks
            .iter()
            .filter(|(t, _)| t < start)
            .map(|(_, v)| *v)
            .max()
            .unwrap_or(0);
        assert!(
            *v >= before,
            "stale read: {v} after {before} was acknowledged"
        );
        // ...and nothing that was not yet sent.
        let sent = acks.iter().filter(|(t, _)| t <= end).count()
            + failed.iter().filter(|t| *t <= end).count()
            + 1;
        assert!(
            *v <= sent as i64,
            "read {v} with only {sent} increments sent"
        );
    }
}
