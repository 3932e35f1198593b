//! The metadata group and the admin API with real processes: a shard's replica moves to a
//! node that had none while clients write, and back again with `raft-kv ctl`; every
//! acknowledged write reads back from every node; bad requests change nothing.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::load::{
    check_reads, check_reads_on, start_writers, stop_writers, stop_writers_with_refusals,
};
use common::{http_get, http_post, retry};
use serde_json::Value;

/// Every node of the cluster (writers go through all of them).
fn all(c: &Cluster) -> Vec<usize> {
    (0..c.nodes.len()).collect()
}

fn get_json(port: u16, path: &str) -> Value {
    let (line, body) = http_get(port, path);
    assert!(line.contains(" 200 "), "GET {path}: {line}\n{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

/// POST with a JSON body: (HTTP status, parsed body).
fn post_json(port: u16, path: &str, body: &str) -> (u16, Value) {
    let (line, text) = http_post(port, path, body).expect("admin POST");
    let code = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn shard<'a>(shards: &'a Value, id: &str) -> &'a Value {
    shards["shards"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["id"] == id))
        .unwrap_or_else(|| panic!("no {id} in {shards}"))
}

/// The routing-relevant part of `/admin/shards` (leaders move on their own, and with them
/// the replicas' order: the first is the preferred leader).
fn layout_of(shards: &Value) -> Vec<Value> {
    let sorted = |v: &Value| {
        let mut n = names(v);
        n.sort();
        n
    };
    shards["shards"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    serde_json::json!([
                        s["id"],
                        s["slots"],
                        s["epoch"],
                        sorted(&s["replicas"]),
                        sorted(&s["learners"])
                    ])
                })
                .collect()
        })
        .unwrap_or_default()
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Starts an operation (a POST answered 202) and waits for it to finish.
fn run_op(c: &Cluster, port: u16, path: &str, body: &str, within: Duration) -> Value {
    let (code, v) = post_json(port, path, body);
    assert_eq!(code, 202, "POST {path} {body}: {v}");
    wait_done(c, port, v["operation"].as_u64().expect("op"), within);
    v
}

/// Waits for operation `op` to finish; panics (with the cluster's logs) if it fails.
fn wait_done(c: &Cluster, port: u16, op: u64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let ops = get_json(port, "/admin/operations");
        let o = ops["operations"]
            .as_array()
            .and_then(|a| a.iter().find(|o| o["id"].as_u64() == Some(op)))
            .cloned()
            .unwrap_or(Value::Null);
        match o["state"].as_str() {
            Some("done") => return,
            Some("failed") => panic!("operation {op} failed: {o}\n{}", c.logs()),
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "operation {op} not done within {within:?}: {o}\nall: {ops}\n{}",
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether the node's `/status` lists group `group`.
fn hosts(port: u16, group: u64) -> bool {
    let v = get_json(port, "/status");
    v["groups"]
        .as_array()
        .is_some_and(|a| a.iter().any(|g| g["id"].as_u64() == Some(group)))
}

fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "{what} not within {within:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Writes `{prefix}{i}` = `v{i}` for `i` in `0..n` through node `node` (retrying while
/// leaders settle); returns what was written.
async fn write_keys(c: &Cluster, node: usize, prefix: &str, n: usize) -> BTreeMap<String, String> {
    let conn = c.nodes[node].conn().await;
    let mut acked = BTreeMap::new();
    for i in 0..n {
        let (k, v) = (format!("{prefix}{i}"), format!("v{i}"));
        let () = retry(Duration::from_secs(10), || {
            let mut conn = conn.clone();
            let (k, v) = (k.clone(), v.clone());
            async move {
                redis::cmd("SET")
                    .arg(&k)
                    .arg(&v)
                    .query_async(&mut conn)
                    .await
            }
        })
        .await;
        acked.insert(k, v);
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_a_replica_under_load_and_back_with_ctl() {
    tokio::time::timeout(Duration::from_secs(180), async {
        let c = Cluster::start(4, &["--initial-shards", "4"]);
        c.wait_ready(Duration::from_secs(30));
        let port = c.nodes[1].http_port;
        // Placement is checked exactly here: no balancing moves of the scheduler's own.
        let (code, v) = post_json(port, "/admin/scheduler", r#"{"paused": true}"#);
        assert_eq!(code, 200, "{v}");
        let shards = get_json(port, "/admin/shards");
        // A shard with no replica on n4; its preferred leader moves away (a leader leaves).
        let target = shards["shards"]
            .as_array()
            .and_then(|a| {
                a.iter()
                    .find(|s| !names(&s["replicas"]).contains(&"n4".into()))
            })
            .cloned()
            .expect("a shard without n4");
        let id = target["id"].as_str().expect("id").to_string();
        let group = target["group"].as_u64().expect("group");
        let replicas = names(&target["replicas"]);
        let from = replicas[0].clone();
        let from_idx: usize = from[1..].parse::<usize>().expect("node index") - 1;

        // Clients write through every node while the replica moves.
        let (stop, writers) = start_writers(&c, &all(&c), "w", 300).await;
        tokio::time::sleep(Duration::from_millis(500)).await;

        let (code, v) = post_json(
            port,
            &format!("/admin/shard/{id}/migrate"),
            &format!(r#"{{"from": "{from}", "to": "n4"}}"#),
        );
        assert_eq!(code, 202, "{v}");
        let op = v["operation"].as_u64().expect("operation id");
        // A second operation on the same shard is refused while the first runs.
        let (code, v) = post_json(
            port,
            &format!("/admin/shard/{id}/migrate"),
            &format!(r#"{{"from": "{}", "to": "n4"}}"#, replicas[1]),
        );
        assert_eq!(code, 409, "{v}");
        wait_done(&c, port, op, Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let acked = stop_writers(&stop, writers).await;
        assert!(
            acked.len() > 100,
            "too few writes acknowledged: {}",
            acked.len()
        );

        let shards = get_json(port, "/admin/shards");
        let s = shard(&shards, &id);
        let now = names(&s["replicas"]);
        assert!(now.contains(&"n4".into()) && !now.contains(&from), "{s}");
        assert!(names(&s["learners"]).is_empty(), "{s}");
        assert_eq!(s["epoch"], target["epoch"], "slots did not move");
        wait_until("old replica removed", Duration::from_secs(10), || {
            !hosts(c.nodes[from_idx].http_port, group)
        });
        assert!(hosts(c.nodes[3].http_port, group));
        check_reads(&c, &acked).await;

        // Cluster-aware clients see the new replica set.
        let mut conn = c.nodes[0].conn().await;
        let slots: Vec<Vec<redis::Value>> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query_async(&mut conn)
            .await
            .expect("cluster slots");
        let first = s["slots"][0].as_i64().expect("first slot");
        let entry = slots
            .iter()
            .find(|e| matches!(e.first(), Some(redis::Value::Int(f)) if *f == first))
            .expect("slot range in CLUSTER SLOTS");
        let ports: Vec<i64> = entry[2..]
            .iter()
            .filter_map(|n| match n {
                redis::Value::Array(a) => match a.get(1) {
                    Some(redis::Value::Int(p)) => Some(*p),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        assert!(
            ports.contains(&i64::from(c.nodes[3].redis_port)),
            "{entry:?}"
        );

        // And back with the CLI, following its progress, onto the node that had it: its
        // old copy was removed, so it starts clean from the shard's current state.
        let out = Command::new(env!("CARGO_BIN_EXE_raft-kv"))
            .args([
                "ctl",
                "--addr",
                &format!("127.0.0.1:{}", c.nodes[2].http_port),
            ])
            .args([
                "migrate",
                &id,
                "--from",
                "n4",
                "--to",
                &from,
                "--timeout-secs",
                "60",
            ])
            .output()
            .expect("run ctl");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "ctl migrate failed: {stdout}{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            c.logs()
        );
        assert!(stdout.contains("done"), "{stdout}");
        wait_until("n4's replica removed", Duration::from_secs(10), || {
            !hosts(c.nodes[3].http_port, group)
        });
        check_reads(&c, &acked).await;

        // A restart keeps the layout: the node without the replica does not bring it back.
        let mut c = c;
        c.nodes[3].kill9();
        c.nodes[3].spawn();
        c.wait_ready(Duration::from_secs(30));
        assert!(!hosts(c.nodes[3].http_port, group));
        let shards = get_json(c.nodes[3].http_port, "/admin/shards");
        assert!(names(&shard(&shards, &id)["replicas"]).contains(&from));
        check_reads(&c, &acked).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_refuses_bad_requests_and_transfers_leaders() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let c = Cluster::start(3, &["--initial-shards", "2"]);
        c.wait_ready(Duration::from_secs(30));
        let port = c.nodes[0].http_port;
        wait_until("all nodes seen", Duration::from_secs(10), || {
            let v = get_json(port, "/admin/nodes");
            v["nodes"].as_array().is_some_and(|a| {
                a.len() == 3
                    && a.iter()
                        .all(|n| n["state"] == "up" && n["reachable"] == true)
            })
        });
        let before = get_json(port, "/admin/shards");
        let meta_version = before["version"].clone();

        let bad = [
            (
                "/admin/shard/shard_9/migrate",
                r#"{"from":"n1","to":"n2"}"#,
                404,
            ),
            (
                "/admin/shard/bogus/migrate",
                r#"{"from":"n1","to":"n2"}"#,
                404,
            ),
            (
                "/admin/shard/shard_0/migrate",
                r#"{"from":"n1","to":"n7"}"#,
                404,
            ),
            (
                "/admin/shard/shard_0/migrate",
                r#"{"from":"n1","to":"n2"}"#,
                400,
            ),
            ("/admin/shard/shard_0/migrate", r#"{"from":"n1"}"#, 400),
            ("/admin/shard/shard_0/migrate", r#"{"from":"n1","to":"#, 400),
            ("/admin/shard/shard_0/migrate", r#"[1,2]"#, 400),
            (
                "/admin/shard/shard_0/transfer-leader",
                r#"{"to":"n9"}"#,
                404,
            ),
            ("/admin/shard/shard_0/transfer-leader", r#"{}"#, 400),
            ("/admin/shard/shard_0/split", r#"{"at_slot": 0}"#, 400),
            (
                "/admin/shard",
                r#"{"shard_id": "shard_9", "nodes": ["n1"], "slots": [10, 20]}"#,
                400,
            ),
            (
                "/admin/shard",
                r#"{"shard_id": "shard_9", "nodes": ["n1", "n2", "n9"], "slots": [10, 20]}"#,
                404,
            ),
            ("/admin/node/n1/decommission", "", 400),
            ("/admin/node/n8/decommission", "", 404),
            ("/admin/scheduler", r#"{"paused": 3}"#, 400),
            (
                "/admin/shard/merge",
                r#"{"sources":["shard_0","shard_1"]}"#,
                400,
            ),
            (
                "/admin/shard/merge",
                r#"{"sources":["shard_0","shard_9"],"target":"shard_0"}"#,
                404,
            ),
        ];
        for (path, body, want) in bad {
            let (code, v) = post_json(port, path, body);
            assert_eq!(code, want, "POST {path} {body}: {v}");
            assert!(
                v["error"].as_str().is_some_and(|e| !e.is_empty()),
                "POST {path}: no reason in {v}"
            );
        }
        let (line, _) = http_get(port, "/admin/shard/shard_5");
        assert!(line.contains(" 404 "), "{line}");
        let after = get_json(port, "/admin/shards");
        assert_eq!(
            after["version"], meta_version,
            "a refused request changed metadata"
        );
        assert_eq!(layout_of(&after), layout_of(&before));

        // Transfer shard_1's leadership to each node in turn.
        for to in ["n3", "n1", "n2"] {
            let (code, v) = post_json(
                port,
                "/admin/shard/shard_1/transfer-leader",
                &format!(r#"{{"to":"{to}"}}"#),
            );
            assert_eq!(code, 200, "{v}");
            let detail = get_json(c.nodes[1].http_port, "/admin/shard/shard_1");
            assert_eq!(detail["leader"], to, "{detail}");
        }
        // The last one is now the preferred leader: the group keeps it (it would hand
        // leadership back to the old preferred one within an election timeout or two).
        tokio::time::sleep(Duration::from_secs(3)).await;
        let detail = get_json(c.nodes[0].http_port, "/admin/shard/shard_1");
        assert_eq!(detail["leader"], "n2", "{detail}");
        assert_eq!(detail["preferred_leader"], "n2", "{detail}");
        let ops = get_json(port, "/admin/operations");
        let transfers = ops["operations"].as_array().map_or(0, |a| {
            a.iter()
                .filter(|o| o["kind"] == "transfer_leader" && o["reason"] == "admin")
                .count()
        });
        assert_eq!(transfers, 3, "{ops}");
        // The CLI prints the same JSON and reports refusals with a non-zero exit.
        let ctl = |args: &[&str]| {
            Command::new(env!("CARGO_BIN_EXE_raft-kv"))
                .args(["ctl", "--addr", &format!("127.0.0.1:{port}")])
                .args(args)
                .output()
                .expect("run ctl")
        };
        let out = ctl(&["shards"]);
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("\"shard_1\""));
        let out = ctl(&["migrate", "shard_9", "--from", "n1", "--to", "n2"]);
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("unknown shard"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Still serving.
        let mut conn = c.nodes[2].conn().await;
        let _: () = redis::cmd("SET")
            .arg("after")
            .arg("1")
            .query_async(&mut conn)
            .await
            .expect("set");
    })
    .await
    .expect("test timed out");
}

/// Replicas of shard `id` by node name, from a node's metadata.
fn placement(port: u16) -> BTreeMap<String, Vec<String>> {
    let v = get_json(port, "/admin/shards");
    v["shards"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    let mut r = names(&s["replicas"]);
                    r.extend(names(&s["learners"]));
                    (s["id"].as_str().unwrap_or("?").to_string(), r)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn count_on(p: &BTreeMap<String, Vec<String>>, node: &str) -> usize {
    p.values().filter(|r| r.iter().any(|n| n == node)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decommission_repair_and_balance_move_replicas() {
    tokio::time::timeout(Duration::from_secs(300), async {
        let mut c = Cluster::start(5, &["--initial-shards", "4", "--node-down-after-secs", "3"]);
        c.wait_ready(Duration::from_secs(30));
        let port = c.nodes[0].http_port;
        let acked = write_keys(&c, 0, "d", 200).await;
        assert!(count_on(&placement(port), "n5") > 0);

        // Decommission n5: the scheduler moves its replicas away, then it is removed.
        let (code, v) = post_json(port, "/admin/node/n5/decommission", "");
        assert_eq!(code, 202, "{v}");
        let op = v["operation"].as_u64().expect("operation id");
        let (code, v) = post_json(port, "/admin/node/n5/decommission", "");
        assert_eq!(code, 400, "draining twice: {v}");
        let (code, v) = post_json(
            port,
            "/admin/shard/shard_0/migrate",
            r#"{"from": "n1", "to": "n5"}"#,
        );
        assert!(
            code == 400 || code == 409,
            "a draining node takes no replicas: {code} {v}"
        );
        wait_done(&c, port, op, Duration::from_secs(120));
        assert_eq!(count_on(&placement(port), "n5"), 0);
        let nodes = get_json(port, "/admin/nodes");
        let n5 = nodes["nodes"]
            .as_array()
            .and_then(|a| a.iter().find(|n| n["id"] == "n5"))
            .cloned()
            .expect("n5 listed");
        assert_eq!(n5["state"], "removed", "{n5}");
        wait_until("n5 holds nothing", Duration::from_secs(10), || {
            get_json(c.nodes[4].http_port, "/status")["groups"]
                .as_array()
                .is_some_and(|a| a.is_empty())
        });
        check_reads(&c, &acked).await;

        // n4 dies: once it is down for 3 s, its replicas are rebuilt on the live nodes.
        c.nodes[3].kill9();
        let deadline = Instant::now() + Duration::from_secs(120);
        while count_on(&placement(port), "n4") > 0 {
            assert!(
                Instant::now() < deadline,
                "n4's replicas not repaired: {:?}\n{}",
                placement(port),
                c.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let p = placement(port);
        assert!(p.values().all(|r| r.len() == 3), "{p:?}");
        // Acknowledged writes survive; new writes work on the three remaining nodes.
        let live: Vec<usize> = vec![0, 1, 2];
        for i in &live {
            let conn = c.nodes[*i].conn().await;
            for (k, v) in acked.iter().take(50) {
                let got: Option<String> = retry(Duration::from_secs(10), || {
                    let mut conn = conn.clone();
                    let k = k.clone();
                    async move { redis::cmd("GET").arg(&k).query_async(&mut conn).await }
                })
                .await;
                assert_eq!(got.as_deref(), Some(v.as_str()));
            }
            let _: () = retry(Duration::from_secs(10), || {
                let mut conn = conn.clone();
                async move {
                    redis::cmd("SET")
                        .arg("after")
                        .arg("x")
                        .query_async(&mut conn)
                        .await
                }
            })
            .await;
        }

        // n4 comes back empty-handed: the scheduler balances replicas onto it.
        c.nodes[3].spawn();
        wait_until("n4 balanced", Duration::from_secs(120), || {
            count_on(&placement(port), "n4") >= 2
        });
        let sched = get_json(port, "/admin/scheduler");
        let reasons: Vec<&str> = sched["decisions"]
            .as_array()
            .map(|a| a.iter().filter_map(|d| d["reason"].as_str()).collect())
            .unwrap_or_default();
        for want in ["decommission", "repair", "balance"] {
            assert!(reasons.contains(&want), "no {want} decision in {sched}");
        }
        let (code, _) = post_json(port, "/admin/scheduler", r#"{"paused": true}"#);
        assert_eq!(code, 200);
        // Other nodes learn it as they apply or hear of the metadata change.
        wait_until("pause seen by n3", Duration::from_secs(5), || {
            get_json(c.nodes[2].http_port, "/admin/scheduler")["paused"] == true
        });
        let conn = c.nodes[3].conn().await;
        let got: Option<String> = retry(Duration::from_secs(10), || {
            let mut conn = conn.clone();
            async move { redis::cmd("GET").arg("d7").query_async(&mut conn).await }
        })
        .await;
        assert_eq!(got.as_deref(), Some("v7"));
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joined_node_takes_replicas_and_serves() {
    tokio::time::timeout(Duration::from_secs(240), async {
        let mut c = Cluster::start(3, &["--initial-shards", "4"]);
        c.wait_ready(Duration::from_secs(30));
        let port = c.nodes[0].http_port;
        let acked = write_keys(&c, 1, "j", 150).await;
        // Clients keep writing through n1..n3 while n4 joins and replicas move onto it.
        let (stop, writers) = start_writers(&c, &all(&c), "jw", 200).await;

        // n4 joins through n2; the scheduler then drifts replicas onto it (12 over 4 nodes).
        let n4 = c.join_node(1, &[]);
        wait_until("n4 listed and reachable", Duration::from_secs(30), || {
            get_json(port, "/admin/nodes")["nodes"]
                .as_array()
                .is_some_and(|a| a.iter().any(|n| n["id"] == "n4" && n["reachable"] == true))
        });
        c.wait_ready(Duration::from_secs(30));
        let deadline = Instant::now() + Duration::from_secs(150);
        // Settled: n4 holds three replicas and no shard has a learner (a move in progress).
        let settled = |p: &BTreeMap<String, Vec<String>>| {
            count_on(p, "n4") >= 3 && p.values().all(|r| r.len() == 3)
        };
        while !settled(&placement(port)) {
            assert!(
                Instant::now() < deadline,
                "no drift to n4: {:?}\n{}",
                placement(port),
                c.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let p = placement(port);
        for n in ["n1", "n2", "n3", "n4"] {
            assert_eq!(count_on(&p, n), 3, "{p:?}");
        }
        // And by request: a shard moves from n1 to the new node, still under the writers.
        let (code, _) = post_json(port, "/admin/scheduler", r#"{"paused": true}"#);
        assert_eq!(code, 200);
        let id = p
            .iter()
            .find(|(_, r)| r.contains(&"n1".to_string()) && !r.contains(&"n4".to_string()))
            .map(|(id, _)| id.clone())
            .expect("a shard on n1 and not on n4");
        run_op(
            &c,
            port,
            &format!("/admin/shard/{id}/migrate"),
            r#"{"from": "n1", "to": "n4"}"#,
            Duration::from_secs(60),
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        let written = stop_writers(&stop, writers).await;
        assert!(written.len() > 100, "too few writes: {}", written.len());
        check_reads(&c, &acked).await;
        check_reads(&c, &written).await;
        check_with_redis_py(c.nodes[n4].redis_port, &written);
        let mut conn = c.nodes[n4].conn().await;
        let text: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query_async(&mut conn)
            .await
            .expect("cluster nodes");
        assert_eq!(text.lines().count(), 4, "{text}");

        // Restarted, the joined node comes back as it was (no second join).
        c.nodes[n4].kill9();
        c.nodes[n4].spawn();
        c.wait_ready(Duration::from_secs(30));
        assert_eq!(count_on(&placement(c.nodes[n4].http_port), "n4"), 4);
        check_reads(&c, &acked).await;

        // A second node under a taken name is refused, and says why.
        let dir = c.tmp.path().join("dup");
        let out = Command::new(env!("CARGO_BIN_EXE_raft-kv"))
            .args(["--node-id", "n1", "--data-dir"])
            .arg(&dir)
            .args(["--port", &common::free_port().to_string()])
            .args(["--redis-port", &common::free_port().to_string()])
            .args(["--join", &format!("127.0.0.1:{port}")])
            .output()
            .expect("run a duplicate");
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("is taken"), "{err}");
    })
    .await
    .expect("test timed out");
}

/// A key whose slot is in `first..=last`.
fn key_in(first: u16, last: u16, tag: &str) -> String {
    (0..)
        .map(|i| format!("{tag}{i}"))
        .find(|k| (first..=last).contains(&raft_kv::storage::slot::key_slot(k.as_bytes())))
        .expect("a key")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_shards_online_and_keep_every_key() {
    tokio::time::timeout(Duration::from_secs(180), async {
        let mut c = Cluster::start(3, &["--initial-shards", "2"]);
        c.wait_ready(Duration::from_secs(30));
        let port = c.nodes[0].http_port;
        // Two keys that share shard_0 now and will be apart after the split at 4096.
        let (low, high) = (key_in(0, 4095, "lo"), key_in(4096, 8191, "hi"));

        let (stop, writers) = start_writers(&c, &all(&c), "s", 400).await;
        tokio::time::sleep(Duration::from_millis(500)).await;

        let (code, v) = post_json(port, "/admin/shard/shard_0/split", "");
        assert_eq!(code, 202, "{v}");
        assert_eq!(v["new_shard"], "shard_2", "{v}");
        assert_eq!(v["at_slot"], 4096, "{v}");
        let op = v["operation"].as_u64().expect("operation id");
        let (code, v) = post_json(port, "/admin/shard/shard_0/split", r#"{"at_slot": 100}"#);
        assert_eq!(code, 409, "a second split of a busy shard: {v}");
        wait_done(&c, port, op, Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (acked, refusals) = stop_writers_with_refusals(&stop, writers).await;
        assert!(
            acked.len() > 100,
            "too few writes acknowledged: {}",
            acked.len()
        );
        // Plain clients never see the split: the nodes route refused writes again.
        assert!(
            refusals.is_empty(),
            "stale routes reached clients: {refusals:?}"
        );

        let shards = get_json(port, "/admin/shards");
        let s0 = shard(&shards, "shard_0");
        let s2 = shard(&shards, "shard_2");
        assert_eq!(s0["slots"], serde_json::json!([0, 4095]), "{shards}");
        assert_eq!(s2["slots"], serde_json::json!([4096, 8191]), "{shards}");
        assert_eq!(s0["epoch"], 2);
        assert_eq!(s2["epoch"], 2);
        assert_eq!(names(&s2["replicas"]).len(), 3);
        for n in &c.nodes {
            assert!(hosts(n.http_port, 3), "{} has no shard_2 replica", n.name);
        }
        check_reads(&c, &acked).await;

        // The new shard takes writes; keys on both sides of the split are now apart.
        let mut conn = c.nodes[1].conn().await;
        let _: () = retry(Duration::from_secs(10), || {
            let mut conn = conn.clone();
            let high = high.clone();
            async move {
                redis::cmd("SET")
                    .arg(&high)
                    .arg("h")
                    .query_async(&mut conn)
                    .await
            }
        })
        .await;
        let r: redis::RedisResult<()> = redis::cmd("MSETNX")
            .arg(&low)
            .arg("l")
            .arg(&high)
            .arg("h")
            .query_async(&mut conn)
            .await;
        let e = r.expect_err("keys in two shards");
        assert!(e.to_string().to_lowercase().contains("crossslot"), "{e}");

        // Bad splits change nothing.
        for (path, body, want) in [
            ("/admin/shard/shard_1/split", r#"{"at_slot": 100}"#, 400),
            ("/admin/shard/shard_7/split", "", 404),
            (
                "/admin/shard/shard_1/split",
                r#"{"new_shards": ["shard_0", "shard_9"]}"#,
                400,
            ),
            (
                "/admin/shard/shard_1/split",
                r#"{"new_shards": ["shard_1", "shard_0"]}"#,
                400,
            ),
            ("/admin/shard/shard_1/split", r#"{"at_slot": "x"}"#, 400),
        ] {
            let (code, v) = post_json(port, path, body);
            assert_eq!(code, want, "POST {path} {body}: {v}");
        }
        assert_eq!(
            layout_of(&get_json(port, "/admin/shards")),
            layout_of(&shards)
        );

        // Again with the CLI, at a given slot, through another node.
        let out = Command::new(env!("CARGO_BIN_EXE_raft-kv"))
            .args([
                "ctl",
                "--addr",
                &format!("127.0.0.1:{}", c.nodes[2].http_port),
            ])
            .args([
                "split",
                "shard_2",
                "--at-slot",
                "5000",
                "--timeout-secs",
                "60",
            ])
            .output()
            .expect("run ctl");
        assert!(
            out.status.success(),
            "ctl split: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let shards = get_json(port, "/admin/shards");
        assert_eq!(
            shard(&shards, "shard_3")["slots"],
            serde_json::json!([5000, 8191])
        );
        let mut cconn = c.nodes[0].conn().await;
        let slots: Vec<redis::Value> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query_async(&mut cconn)
            .await
            .expect("cluster slots");
        assert_eq!(slots.len(), 4);

        // A restart keeps the split (the groups' own ranges are on disk).
        c.nodes[2].kill9();
        c.nodes[2].spawn();
        c.wait_ready(Duration::from_secs(30));
        for g in [3, 4] {
            assert!(hosts(c.nodes[2].http_port, g));
        }
        check_reads(&c, &acked).await;
        conn = c.nodes[2].conn().await;
        let got: Option<String> = retry(Duration::from_secs(10), || {
            let mut conn = conn.clone();
            let high = high.clone();
            async move { redis::cmd("GET").arg(&high).query_async(&mut conn).await }
        })
        .await;
        assert_eq!(got.as_deref(), Some("h"));
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_finish_across_crashes_of_the_nodes_driving_them() {
    tokio::time::timeout(Duration::from_secs(300), async {
        let mut c = Cluster::start(4, &["--initial-shards", "4"]);
        c.wait_ready(Duration::from_secs(30));
        let port = c.nodes[3].http_port;
        let (code, _) = post_json(port, "/admin/scheduler", r#"{"paused": true}"#);
        assert_eq!(code, 200);
        let acked = write_keys(&c, 3, "c", 200).await;
        // The shard n4 lacks.
        let p = placement(port);
        let (id, replicas) = p
            .iter()
            .find(|(_, r)| !r.contains(&"n4".to_string()))
            .map(|(id, r)| (id.clone(), r.clone()))
            .expect("a shard without n4");

        // 1. The metadata leader (which drives the migration) dies right after accepting it.
        let (code, v) = post_json(
            port,
            &format!("/admin/shard/{id}/migrate"),
            &format!(r#"{{"from": "{}", "to": "n4"}}"#, replicas[0]),
        );
        assert_eq!(code, 202, "{v}");
        let op = v["operation"].as_u64().expect("op");
        let m = c.meta_leader();
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.nodes[m].kill9();
        tokio::time::sleep(Duration::from_secs(1)).await;
        c.nodes[m].spawn();
        wait_done(&c, port, op, Duration::from_secs(90));

        // 2. The new replica's node dies while catching up; it comes back and finishes.
        let p = placement(port);
        let all: Vec<String> = c.nodes.iter().map(|n| n.name.clone()).collect();
        let (id2, to) = p
            .iter()
            .find_map(|(id, r)| {
                let missing = all.iter().find(|n| !r.contains(n))?;
                r.contains(&"n4".to_string())
                    .then(|| (id.clone(), missing.clone()))
            })
            .expect("a shard on n4 that some node lacks");
        let (code, v) = post_json(
            port,
            &format!("/admin/shard/{id2}/migrate"),
            &format!(r#"{{"from": "n4", "to": "{to}"}}"#),
        );
        assert_eq!(code, 202, "{v}");
        let op = v["operation"].as_u64().expect("op");
        let t = c.nodes.iter().position(|n| n.name == to).expect("target");
        tokio::time::sleep(Duration::from_millis(200)).await;
        c.nodes[t].kill9();
        tokio::time::sleep(Duration::from_secs(1)).await;
        c.nodes[t].spawn();
        wait_done(&c, port, op, Duration::from_secs(90));

        // 3. A replica dies right after a split is accepted.
        let (code, v) = post_json(port, &format!("/admin/shard/{id}/split"), "");
        assert_eq!(code, 202, "{v}");
        let op = v["operation"].as_u64().expect("op");
        let child = v["new_shard"].as_str().expect("new shard").to_string();
        let victim = 1;
        c.nodes[victim].kill9();
        tokio::time::sleep(Duration::from_secs(1)).await;
        c.nodes[victim].spawn();
        wait_done(&c, port, op, Duration::from_secs(90));
        c.wait_ready(Duration::from_secs(30));
        let p = placement(port);
        let group = 1 + child["shard_".len()..]
            .parse::<u64>()
            .expect("shard number");
        for n in &p[&child] {
            let i = c.nodes.iter().position(|m| &m.name == n).expect("node");
            wait_until(
                "the child on every replica",
                Duration::from_secs(20),
                || hosts(c.nodes[i].http_port, group),
            );
        }
        check_reads(&c, &acked).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_shards_back_online_and_keep_every_key() {
    tokio::time::timeout(Duration::from_secs(180), async {
        let mut c = Cluster::start(3, &["--initial-shards", "2"]);
        c.wait_ready(Duration::from_secs(30));
        let port = c.nodes[0].http_port;
        // shard_0 = 0..4095, shard_2 = 4096..8191, shard_1 = 8192..16383.
        run_op(
            &c,
            port,
            "/admin/shard/shard_0/split",
            "",
            Duration::from_secs(60),
        );

        let (stop, writers) = start_writers(&c, &all(&c), "m", 400).await;
        tokio::time::sleep(Duration::from_millis(500)).await;

        // Not adjacent, the same shard twice, three sources, a target not among them.
        let before = layout_of(&get_json(port, "/admin/shards"));
        for body in [
            r#"{"sources":["shard_0","shard_1"],"target":"shard_0"}"#,
            r#"{"sources":["shard_0","shard_0"],"target":"shard_0"}"#,
            r#"{"sources":["shard_0","shard_2","shard_1"],"target":"shard_0"}"#,
            r#"{"sources":["shard_0","shard_2"],"target":"shard_1"}"#,
        ] {
            let (code, v) = post_json(port, "/admin/shard/merge", body);
            assert_eq!(code, 400, "{body}: {v}");
        }
        assert_eq!(layout_of(&get_json(port, "/admin/shards")), before);

        let (code, v) = post_json(
            port,
            "/admin/shard/merge",
            r#"{"sources":["shard_0","shard_2"],"target":"shard_0"}"#,
        );
        assert_eq!(code, 202, "{v}");
        let op = v["operation"].as_u64().expect("op");
        let (code, v) = post_json(port, "/admin/shard/shard_2/split", "");
        assert_eq!(code, 409, "the source is busy: {v}");
        wait_done(&c, port, op, Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (acked, refusals) = stop_writers_with_refusals(&stop, writers).await;
        assert!(
            acked.len() > 100,
            "too few writes acknowledged: {}",
            acked.len()
        );
        assert!(
            refusals.is_empty(),
            "stale routes reached clients: {refusals:?}"
        );

        let shards = get_json(port, "/admin/shards");
        assert_eq!(
            shards["shards"].as_array().map(Vec::len),
            Some(2),
            "{shards}"
        );
        let s0 = shard(&shards, "shard_0");
        assert_eq!(s0["slots"], serde_json::json!([0, 8191]), "{shards}");
        for n in &c.nodes {
            wait_until("the source group dropped", Duration::from_secs(10), || {
                !hosts(n.http_port, 3)
            });
        }
        check_reads(&c, &acked).await;

        // And with the CLI; a restart keeps the merged range.
        let out = Command::new(env!("CARGO_BIN_EXE_raft-kv"))
            .args([
                "ctl",
                "--addr",
                &format!("127.0.0.1:{}", c.nodes[1].http_port),
            ])
            .args(["merge", "shard_0", "shard_1", "--timeout-secs", "60"])
            .output()
            .expect("run ctl");
        assert!(
            out.status.success(),
            "ctl merge: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let shards = get_json(port, "/admin/shards");
        assert_eq!(
            shard(&shards, "shard_0")["slots"],
            serde_json::json!([0, 16383])
        );
        c.nodes[1].kill9();
        c.nodes[1].spawn();
        c.wait_ready(Duration::from_secs(30));
        assert!(!hosts(c.nodes[1].http_port, 2));
        assert!(hosts(c.nodes[1].http_port, 1));
        check_reads(&c, &acked).await;
        // Keys from both ends of the key space live in one shard now.
        let conn = c.nodes[2].conn().await;
        let (a, b) = (key_in(0, 100, "a"), key_in(16000, 16383, "b"));
        let n: i64 = retry(Duration::from_secs(10), || {
            let mut conn = conn.clone();
            let (a, b) = (a.clone(), b.clone());
            async move {
                redis::cmd("MSETNX")
                    .arg(&a)
                    .arg("1")
                    .arg(&b)
                    .arg("2")
                    .query_async(&mut conn)
                    .await
            }
        })
        .await;
        assert_eq!(n, 1);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_a_shard_from_slots_of_another_on_chosen_nodes() {
    tokio::time::timeout(Duration::from_secs(180), async {
        let c = Cluster::start(4, &["--initial-shards", "2"]);
        c.wait_ready(Duration::from_secs(30));
        let port = c.nodes[0].http_port;
        let (code, _) = post_json(port, "/admin/scheduler", r#"{"paused": true}"#);
        assert_eq!(code, 200);
        let acked = write_keys(&c, 3, "k", 300).await;
        let owner = shard(&get_json(port, "/admin/shards"), "shard_0").clone();
        let first = owner["slots"][0].as_u64().expect("first");
        let last = owner["slots"][1].as_u64().expect("last");
        // Nodes: two of shard_0's and the one without it.
        let mut want = names(&owner["replicas"]);
        let outsider = c
            .nodes
            .iter()
            .map(|n| n.name.clone())
            .find(|n| !want.contains(n))
            .expect("a node without shard_0");
        want[0] = outsider;
        let nodes = serde_json::to_string(&want).expect("json");
        let refused = [
            (
                format!(r#"{{"shard_id":"shard_1","nodes":{nodes},"slots":[100,200]}}"#),
                400,
            ),
            (
                format!(r#"{{"shard_id":"shard_9","nodes":{nodes},"slots":[{first},200]}}"#),
                400,
            ),
            (
                format!(
                    r#"{{"shard_id":"shard_9","nodes":{nodes},"slots":[100,{}]}}"#,
                    last + 5
                ),
                400,
            ),
            (
                format!(r#"{{"shard_id":"shard_9","nodes":{nodes},"slots":[1]}}"#),
                400,
            ),
            (
                format!(r#"{{"shard_id":"shard_9","nodes":{nodes},"from":"shard_7"}}"#),
                404,
            ),
        ];
        for (body, want_code) in &refused {
            let (code, v) = post_json(port, "/admin/shard", body);
            assert_eq!(code, *want_code, "{body}: {v}");
        }
        let body = format!(r#"{{"shard_id":"shard_9","nodes":{nodes},"slots":[100,2000]}}"#);
        run_op(&c, port, "/admin/shard", &body, Duration::from_secs(120));
        let shards = get_json(port, "/admin/shards");
        let s9 = shard(&shards, "shard_9");
        assert_eq!(s9["slots"], serde_json::json!([100, 2000]), "{shards}");
        let mut got = names(&s9["replicas"]);
        got.sort();
        want.sort();
        assert_eq!(got, want, "{shards}");
        assert_eq!(
            shards["shards"].as_array().map(Vec::len),
            Some(4),
            "{shards}"
        );
        check_reads(&c, &acked).await;
    })
    .await
    .expect("test timed out");
}

/// A replica added to a shard after it split must get everything it holds, including the
/// writes from before the split (routed with the older epoch): it is sent a snapshot, not a
/// replay of the log under today's epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_added_after_a_split_holds_the_writes_from_before_it() {
    tokio::time::timeout(Duration::from_secs(180), async {
        let mut c = Cluster::start(4, &["--initial-shards", "2"]);
        c.wait_ready(Duration::from_secs(30));
        let port = c.nodes[0].http_port;
        let (code, _) = post_json(port, "/admin/scheduler", r#"{"paused": true}"#);
        assert_eq!(code, 200);
        let mut acked = write_keys(&c, 0, "before", 150).await;
        run_op(
            &c,
            port,
            "/admin/shard/shard_0/split",
            "",
            Duration::from_secs(60),
        );
        acked.extend(write_keys(&c, 0, "after", 150).await);
        // Move the parent's replica to the node without it; then its old node goes away,
        // so reads there are served by the new replica.
        let p = placement(port);
        let outsider = c
            .nodes
            .iter()
            .map(|n| n.name.clone())
            .find(|n| !p["shard_0"].contains(n))
            .expect("a node without shard_0");
        let from = p["shard_0"][0].clone();
        run_op(
            &c,
            port,
            "/admin/shard/shard_0/migrate",
            &format!(r#"{{"from": "{from}", "to": "{outsider}"}}"#),
            Duration::from_secs(60),
        );
        let o = c
            .nodes
            .iter()
            .position(|n| n.name == outsider)
            .expect("node");
        let conn = c.nodes[o].conn().await;
        let first_of = |k: &str| raft_kv::storage::slot::key_slot(k.as_bytes());
        let s0 = shard(&get_json(port, "/admin/shards"), "shard_0").clone();
        let last = s0["slots"][1].as_u64().expect("last") as u16;
        let mut checked = 0;
        for (k, v) in &acked {
            if first_of(k) > last {
                continue;
            }
            checked += 1;
            let got: Option<String> = retry(Duration::from_secs(10), || {
                let mut conn = conn.clone();
                let k = k.clone();
                async move { redis::cmd("GET").arg(&k).query_async(&mut conn).await }
            })
            .await;
            assert_eq!(got.as_deref(), Some(v.as_str()), "{k} on the new replica");
        }
        assert!(checked > 20, "too few keys in shard_0: {checked}");
        // The new replica's own copy: ask it with the old node stopped.
        let f = c.nodes.iter().position(|n| n.name == from).expect("node");
        c.nodes[f].kill9();
        check_reads_on(&c, o, &acked).await;
    })
    .await
    .expect("test timed out");
}

/// A shard's requests per second and size as `/admin/shards` reports them.
fn shard_loads(port: u16) -> Vec<(String, f64, u64)> {
    let v = get_json(port, "/admin/shards");
    v["shards"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    let ops = s["reads_per_sec"].as_f64().unwrap_or(0.0)
                        + s["writes_per_sec"].as_f64().unwrap_or(0.0);
                    let id = s["id"].as_str().unwrap_or("").to_string();
                    (id, ops, s["size_bytes"].as_u64().unwrap_or(0))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Scheduler decisions of `kind` recorded so far.
fn decisions(port: u16, kind: &str) -> usize {
    let v = get_json(port, "/admin/scheduler");
    v["decisions"]
        .as_array()
        .map_or(0, |a| a.iter().filter(|d| d["reason"] == kind).count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_split_by_themselves_under_load_and_when_they_grow() {
    tokio::time::timeout(Duration::from_secs(240), async {
        let c = Cluster::start(
            3,
            &[
                "--initial-shards",
                "1",
                "--split-ops",
                "300",
                "--split-size-mb",
                "1",
                "--write-buffer-mb",
                "1",
            ],
        );
        c.wait_ready(Duration::from_secs(30));
        let port = c.nodes[0].http_port;

        // Load: reads of keys spread over every slot, from every node.
        let stop = Arc::new(AtomicBool::new(false));
        let mut readers = Vec::new();
        for n in &c.nodes {
            let mut conn = n.conn().await;
            let stop = stop.clone();
            readers.push(tokio::spawn(async move {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let mut pipe = redis::pipe();
                    for j in 0..20 {
                        pipe.cmd("GET").arg(format!("absent{}", i * 20 + j));
                    }
                    let _: redis::RedisResult<Vec<Option<String>>> =
                        pipe.query_async(&mut conn).await;
                    i += 1;
                }
            }));
        }
        // Every node's report reaches every node; the shard shows the load.
        wait_until("load in the API", Duration::from_secs(30), || {
            let nodes = get_json(c.nodes[2].http_port, "/admin/nodes");
            let all_report = nodes["nodes"].as_array().is_some_and(|a| {
                a.iter()
                    .all(|n| n["load"]["reads_per_sec"].as_f64().is_some())
            });
            all_report && shard_loads(c.nodes[1].http_port).iter().any(|s| s.1 > 50.0)
        });
        wait_until("a split for load", Duration::from_secs(60), || {
            decisions(port, "split_load") > 0
        });
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            r.await.expect("reader");
        }
        wait_until("the split done", Duration::from_secs(60), || {
            get_json(port, "/admin/shards")["shards"]
                .as_array()
                .is_some_and(|a| a.len() >= 2)
        });

        // Size: about 3 MiB of incompressible values, all in the shard holding slot 0 (the
        // load may have split the keyspace more than once, and spread evenly the data could
        // leave every shard under the threshold).
        let shards = get_json(port, "/admin/shards");
        let (first, last) = shards["shards"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["slots"][0] == 0))
            .map(|s| {
                let bound = |i: usize| s["slots"][i].as_u64().unwrap_or(0) as u16;
                (bound(0), bound(1))
            })
            .expect("a shard with slot 0");
        let keys: Vec<String> = (0u64..)
            .map(|n| format!("big{n}"))
            .filter(|k| (first..=last).contains(&raft_kv::storage::slot::key_slot(k.as_bytes())))
            .take(3000)
            .collect();
        let mut conn = c.nodes[1].conn().await;
        let mut acked = BTreeMap::new();
        for batch in 0..30 {
            let mut pipe = redis::pipe();
            for j in 0..100 {
                let k = keys[batch * 100 + j].clone();
                let v: String = (0..1024)
                    .map(|_| char::from(b'!' + rand::random::<u8>() % 90))
                    .collect();
                pipe.cmd("SET").arg(&k).arg(&v).ignore();
                acked.insert(k, v);
            }
            let () = retry(Duration::from_secs(20), || {
                let mut conn = conn.clone();
                let pipe = pipe.clone();
                async move { pipe.query_async(&mut conn).await }
            })
            .await;
        }
        wait_until("a split for size", Duration::from_secs(90), || {
            decisions(port, "split_size") > 0
        });
        wait_until("splits settle", Duration::from_secs(60), || {
            get_json(port, "/admin/operations")["operations"]
                .as_array()
                .is_some_and(|a| a.iter().all(|o| o["state"] != "running"))
        });
        // Sizes come from SST files: the last memtable counts once flushed.
        wait_until("sizes reported", Duration::from_secs(30), || {
            shard_loads(port).iter().map(|s| s.2).sum::<u64>() > 3 << 19
        });
        // Every value reads back from every node, whichever shard it is in now.
        conn = c.nodes[2].conn().await;
        for (k, v) in acked.iter().step_by(7) {
            let got: Option<String> = retry(Duration::from_secs(10), || {
                let mut conn = conn.clone();
                let k = k.clone();
                async move { redis::cmd("GET").arg(&k).query_async(&mut conn).await }
            })
            .await;
            assert_eq!(got.as_ref(), Some(v), "{k}");
        }
        let metrics = common::http_get(port, "/metrics").1;
        assert!(
            metrics.contains("raftkv_scheduler_decisions_total{kind=\"split_size\"}"),
            "{metrics}"
        );
        assert!(metrics.contains("raftkv_shard_size_bytes{"));
    })
    .await
    .expect("test timed out");
}

/// Waits until operation `op` ended; returns it.
fn wait_ended(port: u16, op: u64, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let ops = get_json(port, "/admin/operations");
        let o = ops["operations"]
            .as_array()
            .and_then(|a| a.iter().find(|o| o["id"].as_u64() == Some(op)))
            .cloned()
            .unwrap_or(Value::Null);
        if o["state"] == "done" || o["state"] == "failed" {
            return o;
        }
        assert!(
            Instant::now() < deadline,
            "operation {op} still running: {o}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_with_a_source_replica_down_rolls_back_and_the_source_serves_again() {
    tokio::time::timeout(Duration::from_secs(180), async {
        let mut c = Cluster::start(3, &["--initial-shards", "2", "--node-down-after-secs", "3"]);
        c.wait_ready(Duration::from_secs(30));
        let port = c.nodes[0].http_port;
        run_op(
            &c,
            port,
            "/admin/shard/shard_0/split",
            "",
            Duration::from_secs(60),
        );
        // shard_2 = 4096..8191 is the source.
        let key = key_in(4096, 8191, "src");
        set_on(&c, 0, &key, "before").await;
        let epoch = shard(&get_json(port, "/admin/shards"), "shard_2")["epoch"]
            .as_u64()
            .expect("epoch");

        c.nodes[2].kill9();
        let (code, v) = post_json(
            port,
            "/admin/shard/merge",
            r#"{"sources":["shard_0","shard_2"],"target":"shard_0"}"#,
        );
        assert_eq!(code, 202, "{v}");
        let op = v["operation"].as_u64().expect("op");
        let o = wait_ended(port, op, Duration::from_secs(60));
        assert_eq!(o["state"], "failed", "{o}\n{}", c.logs());
        let msg = o["message"].as_str().unwrap_or("");
        assert!(msg.contains("rolled back") && msg.contains("n3"), "{o}");

        // The source is back, two epochs on, and takes writes again.
        let shards = get_json(port, "/admin/shards");
        let s2 = shard(&shards, "shard_2");
        assert_eq!(s2["slots"], serde_json::json!([4096, 8191]), "{shards}");
        assert_eq!(s2["epoch"].as_u64(), Some(epoch + 2), "{shards}");
        set_on(&c, 1, &key, "after").await;

        // The down replica comes back, catches up, and the merge then goes through.
        c.nodes[2].spawn();
        c.wait_ready(Duration::from_secs(30));
        let mut conn = c.nodes[2].conn().await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got: redis::RedisResult<Option<String>> =
                redis::cmd("GET").arg(&key).query_async(&mut conn).await;
            if matches!(got, Ok(Some(ref v)) if v == "after") {
                break;
            }
            assert!(Instant::now() < deadline, "n3 did not catch up: {got:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        run_op(
            &c,
            port,
            "/admin/shard/merge",
            r#"{"sources":["shard_0","shard_2"],"target":"shard_0"}"#,
            Duration::from_secs(60),
        );
        let shards = get_json(port, "/admin/shards");
        assert_eq!(
            shard(&shards, "shard_0")["slots"],
            serde_json::json!([0, 8191])
        );
        for n in &c.nodes {
            let conn = n.conn().await;
            let got: Option<String> = retry(Duration::from_secs(10), || {
                let mut conn = conn.clone();
                let key = key.clone();
                async move { redis::cmd("GET").arg(&key).query_async(&mut conn).await }
            })
            .await;
            assert_eq!(got.as_deref(), Some("after"), "on {}", n.name);
        }
    })
    .await
    .expect("test timed out");
}

/// SET through node `node`, retrying while leaders settle.
async fn set_on(c: &Cluster, node: usize, key: &str, value: &str) {
    let conn = c.nodes[node].conn().await;
    let () = retry(Duration::from_secs(15), || {
        let mut conn = conn.clone();
        let (key, value) = (key.to_string(), value.to_string());
        async move {
            redis::cmd("SET")
                .arg(&key)
                .arg(&value)
                .query_async(&mut conn)
                .await
        }
    })
    .await;
}

/// The nodes `/admin/nodes` lists as metadata replicas.
fn meta_replicas(port: u16) -> Vec<String> {
    let v = get_json(port, "/admin/nodes");
    let mut out: Vec<String> = v["nodes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|n| n["meta_replica"] == true)
                .filter_map(|n| n["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Whether the node's `/status` shows a local metadata replica.
fn hosts_meta(port: u16) -> bool {
    !get_json(port, "/status")["meta"].is_null()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_replicas_are_repaired_and_decommissioned_like_shards() {
    tokio::time::timeout(Duration::from_secs(300), async {
        let mut c = Cluster::start(4, &["--initial-shards", "2", "--node-down-after-secs", "3"]);
        c.wait_ready(Duration::from_secs(30));
        let port = c.nodes[0].http_port;
        assert_eq!(meta_replicas(port), ["n1", "n2", "n3"]);
        assert!(!hosts_meta(c.nodes[3].http_port));
        let acked = write_keys(&c, 0, "mm", 100).await;

        // n3 dies: its metadata replica is rebuilt on n4 (the only node without one).
        c.nodes[2].kill9();
        wait_until(
            "metadata repaired onto n4",
            Duration::from_secs(120),
            || meta_replicas(port) == ["n1", "n2", "n4"],
        );
        assert!(hosts_meta(c.nodes[3].http_port));
        let sched = get_json(port, "/admin/scheduler");
        assert!(
            sched["decisions"].as_array().is_some_and(|a| a
                .iter()
                .any(|d| d["shard"] == "meta" && d["reason"] == "repair")),
            "{sched}"
        );
        // The metadata works on its new replicas: an operation goes through.
        run_op(
            &c,
            port,
            "/admin/shard/shard_0/split",
            "",
            Duration::from_secs(60),
        );

        // n3 returns, learns it no longer replicates the metadata, and drops its replica.
        c.nodes[2].spawn();
        c.wait_ready(Duration::from_secs(30));
        wait_until(
            "n3 dropped its metadata replica",
            Duration::from_secs(30),
            || !hosts_meta(c.nodes[2].http_port),
        );

        // Decommissioning n1 moves its metadata replica to n3, then removes it.
        run_op(
            &c,
            port,
            "/admin/node/n1/decommission",
            "",
            Duration::from_secs(150),
        );
        let port = c.nodes[1].http_port;
        assert_eq!(meta_replicas(port), ["n2", "n3", "n4"]);
        wait_until("n1 holds nothing", Duration::from_secs(30), || {
            let v = get_json(c.nodes[0].http_port, "/status");
            v["groups"].as_array().is_some_and(|a| a.is_empty())
                && !hosts_meta(c.nodes[0].http_port)
        });
        for i in 1..4 {
            check_reads_on(&c, i, &acked).await;
        }
    })
    .await
    .expect("test timed out");
}

/// Every key reads back through redis-py's cluster-aware client (when installed: CI installs
/// python3-redis), which routes by `CLUSTER SLOTS` itself.
fn check_with_redis_py(port: u16, acked: &BTreeMap<String, String>) {
    let pairs: Vec<String> = acked
        .iter()
        .map(|(k, v)| format!("({k:?}, {v:?})"))
        .collect();
    let script = format!(
        "import redis.cluster as c\n\
         rc = c.RedisCluster(host='127.0.0.1', port={port})\n\
         for k, v in [{}]:\n    got = rc.get(k)\n    assert got == v.encode(), (k, v, got)\n\
         print('ok')\n",
        pairs.join(", ")
    );
    common::run_redis_py(&script);
}

/// The design README's four `curl` examples, in order, on a fresh cluster (nodes named
/// n1..n4 here), plus a create that names neither slots nor a source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_examples_work_as_written() {
    tokio::time::timeout(Duration::from_secs(240), async {
        let c = Cluster::start(4, &["--initial-shards", "2"]);
        c.wait_ready(Duration::from_secs(30));
        let port = c.nodes[0].http_port;
        let (code, _) = post_json(port, "/admin/scheduler", r#"{"paused": true}"#);
        assert_eq!(code, 200);
        let acked = write_keys(&c, 0, "readme", 100).await;
        // shard_0 = 0..8191 on n1,n2,n3; shard_1 = 8192..16383 on n2,n3,n4.

        // Create shard_0 on n1..n3: it is there already, so nothing to do.
        let (code, v) = post_json(
            port,
            "/admin/shard",
            r#"{"shard_id": "shard_0", "nodes": ["n1", "n2", "n3"]}"#,
        );
        assert_eq!(code, 200, "{v}");
        assert_eq!(v["created"], false, "{v}");
        let (code, v) = post_json(
            port,
            "/admin/shard",
            r#"{"shard_id": "shard_0", "nodes": ["n1", "n2", "n4"]}"#,
        );
        assert_eq!(code, 409, "elsewhere: a migration's job: {v}");

        // Migrate shard_0 from n1 to n4.
        run_op(
            &c,
            port,
            "/admin/shard/shard_0/migrate",
            r#"{"from": "n1", "to": "n4"}"#,
            Duration::from_secs(60),
        );

        // Split shard_0 into shard_0 and shard_10.
        run_op(
            &c,
            port,
            "/admin/shard/shard_0/split",
            r#"{"new_shards": ["shard_0", "shard_10"]}"#,
            Duration::from_secs(60),
        );
        let shards = get_json(port, "/admin/shards");
        assert_eq!(
            shard(&shards, "shard_10")["slots"],
            serde_json::json!([4096, 8191])
        );

        // Merge shard_10 into shard_1 (adjacent, both on n2,n3,n4).
        run_op(
            &c,
            port,
            "/admin/shard/merge",
            r#"{"sources": ["shard_1", "shard_10"], "target": "shard_1"}"#,
            Duration::from_secs(60),
        );
        let shards = get_json(port, "/admin/shards");
        assert_eq!(
            shard(&shards, "shard_1")["slots"],
            serde_json::json!([4096, 16383])
        );

        // A new shard with neither slots nor a source takes the upper half of the largest.
        run_op(
            &c,
            port,
            "/admin/shard",
            r#"{"shard_id": "shard_5", "nodes": ["n1", "n2", "n3"]}"#,
            Duration::from_secs(90),
        );
        let shards = get_json(port, "/admin/shards");
        let s5 = shard(&shards, "shard_5");
        assert_eq!(s5["slots"], serde_json::json!([10240, 16383]), "{shards}");
        let mut r = names(&s5["replicas"]);
        r.sort();
        assert_eq!(r, ["n1", "n2", "n3"]);

        // A one-slot shard can be created, but not split.
        run_op(
            &c,
            port,
            "/admin/shard",
            r#"{"shard_id": "shard_7", "nodes": ["n2", "n3", "n4"], "slots": [100, 100]}"#,
            Duration::from_secs(90),
        );
        let before = get_json(port, "/admin/shards");
        assert_eq!(
            shard(&before, "shard_7")["slots"],
            serde_json::json!([100, 100])
        );
        let (code, v) = post_json(port, "/admin/shard/shard_7/split", "");
        assert_eq!(code, 400, "{v}");
        assert!(
            v["error"].as_str().is_some_and(|e| e.contains("one slot")),
            "{v}"
        );
        assert_eq!(
            layout_of(&get_json(port, "/admin/shards")),
            layout_of(&before)
        );
        check_reads(&c, &acked).await;
    })
    .await
    .expect("test timed out");
}

/// The applied index of `group` on the node behind `port`.
fn applied_index(port: u16, group: u64) -> u64 {
    let v = get_json(port, "/status");
    v["groups"]
        .as_array()
        .and_then(|a| a.iter().find(|g| g["id"].as_u64() == Some(group)))
        .and_then(|g| g["applied_index"].as_u64())
        .unwrap_or(0)
}

/// A key's WATCH revision is the index of the entry that wrote it. After a split the child's
/// log starts over at a low index, so a later write to the key can land at the very index of
/// the write before the split: the revision must still differ (the child counts past the
/// parent's split index), or EXEC would miss the change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sees_a_write_after_a_split_at_the_same_log_index() {
    tokio::time::timeout(Duration::from_secs(180), async {
        let c = Cluster::start(4, &["--initial-shards", "1"]);
        c.wait_ready(Duration::from_secs(30));
        let port = c.nodes[0].http_port;
        let (code, _) = post_json(port, "/admin/scheduler", r#"{"paused": true}"#);
        assert_eq!(code, 200);
        // The key lands in the child (slots 8192..); fillers in the parent push the index.
        let key = key_in(8192, 16383, "watched");
        write_keys(&c, 0, "fill", 40).await;
        set_on(&c, 0, &key, "v1").await;
        let rev_index = applied_index(port, 1);
        assert!(rev_index > 40, "{rev_index}");

        run_op(
            &c,
            port,
            "/admin/shard/shard_0/split",
            r#"{"at_slot": 8192}"#,
            Duration::from_secs(60),
        );

        // n4 hosts no replica: its WATCH relies on revisions alone (no local applies).
        // (It may learn of the split a moment later: TRYAGAIN until then.)
        let mut watcher = c.nodes[3].conn().await;
        let () = retry(Duration::from_secs(10), || {
            let mut w = watcher.clone();
            let key = key.clone();
            async move { redis::cmd("WATCH").arg(&key).query_async(&mut w).await }
        })
        .await;
        // Child entries up to just before the old index, then the key's write at it.
        let mut conn = c.nodes[0].conn().await;
        let mut i = 0;
        while applied_index(port, 2) + 1 < rev_index {
            let filler = key_in(8192, 16383, &format!("cf{i}-"));
            let _: () = redis::cmd("SET")
                .arg(&filler)
                .arg("x")
                .query_async(&mut conn)
                .await
                .expect("filler");
            i += 1;
            assert!(i < 1000, "the child's index does not move");
        }
        assert_eq!(
            applied_index(port, 2) + 1,
            rev_index,
            "could not line the child's index up with the key's old revision"
        );
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg("v2")
            .query_async(&mut conn)
            .await
            .expect("set");
        assert_eq!(applied_index(port, 2), rev_index);

        let _: () = redis::cmd("MULTI")
            .query_async(&mut watcher)
            .await
            .expect("multi");
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg("v3")
            .query_async(&mut watcher)
            .await
            .expect("queued");
        let exec: redis::Value = redis::cmd("EXEC")
            .query_async(&mut watcher)
            .await
            .expect("exec");
        assert_eq!(
            exec,
            redis::Value::Nil,
            "EXEC ran despite the write it watched"
        );
        let got: String = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .expect("get");
        assert_eq!(got, "v2");
    })
    .await
    .expect("test timed out");
}

/// With one metadata replica, its node can still go: the new replica becomes a voter first,
/// takes the leadership, and then the old one leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_metadata_replica_moves_off_a_decommissioned_node() {
    tokio::time::timeout(Duration::from_secs(180), async {
        let c = Cluster::start(4, &["--initial-shards", "1", "--meta-replicas", "1"]);
        c.wait_ready(Duration::from_secs(30));
        let port = c.nodes[1].http_port;
        assert_eq!(meta_replicas(port), ["n1"]);
        let acked = write_keys(&c, 1, "lone", 50).await;
        run_op(
            &c,
            port,
            "/admin/node/n1/decommission",
            "",
            Duration::from_secs(120),
        );
        let now = meta_replicas(port);
        assert_eq!(now.len(), 1, "{now:?}");
        assert_ne!(now[0], "n1");
        // The metadata works from its new home.
        run_op(
            &c,
            port,
            "/admin/shard/shard_0/split",
            "",
            Duration::from_secs(60),
        );
        for i in 1..4 {
            check_reads_on(&c, i, &acked).await;
        }
    })
    .await
    .expect("test timed out");
}

/// A random JSON-ish value for an admin body: the fields the API knows with wrong, odd or
/// right values, other types, deep nesting, huge strings, truncated text.
fn random_body(rng: &mut rand::rngs::StdRng) -> String {
    use rand::Rng;
    let names = [
        "n1", "n2", "n3", "n9", "", "shard_0", "shard_1", "shard_99", "bogus", "\u{0}",
    ];
    let nums = [
        "0", "-1", "1", "8191", "16383", "16384", "65536", "1e30", "3.5", "null", "true",
    ];
    let fields = [
        "from",
        "to",
        "at_slot",
        "new_shards",
        "shard_id",
        "nodes",
        "slots",
        "sources",
        "target",
        "paused",
    ];
    let pick = |rng: &mut rand::rngs::StdRng, v: &[&str]| v[rng.gen_range(0..v.len())].to_string();
    let value = |rng: &mut rand::rngs::StdRng| -> String {
        match rng.gen_range(0..7) {
            0 => format!("{:?}", pick(rng, &names)),
            1 => pick(rng, &nums),
            2 => format!("[{:?},{:?}]", pick(rng, &names), pick(rng, &names)),
            3 => format!("[{},{}]", pick(rng, &nums), pick(rng, &nums)),
            4 => "{\"a\":[1,{\"b\":null}]}".into(),
            5 => format!("{:?}", "x".repeat(rng.gen_range(0..100_000))),
            _ => "[".repeat(200) + &"]".repeat(200),
        }
    };
    let body = match rng.gen_range(0..10) {
        0 => "[]".to_string(),
        1 => "null".to_string(),
        2 => String::new(),
        3 => "{\"from\":".to_string(),
        _ => {
            let n = rng.gen_range(0..4);
            let parts: Vec<String> = (0..n)
                .map(|_| format!("{:?}:{}", pick(rng, &fields), value(rng)))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
    };
    // Sometimes cut short or with a stray byte.
    match rng.gen_range(0..8) {
        0 if !body.is_empty() => {
            let cut = rng.gen_range(0..body.len());
            body.get(..cut).unwrap_or("").to_string()
        }
        1 => format!("{body}\u{1}"),
        _ => body,
    }
}

/// Randomized bad (and some good) admin requests: each is answered with a clear status and
/// JSON error, never a server error or a dropped connection, and the cluster stays whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_admin_requests_get_clear_answers_and_leave_the_cluster_whole() {
    use rand::{Rng, SeedableRng};
    tokio::time::timeout(Duration::from_secs(240), async {
        let seed: u64 = std::env::var("RAFTKV_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(rand::random);
        println!("admin fuzz: RAFTKV_SEED={seed}");
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let c = Cluster::start(3, &["--initial-shards", "2"]);
        c.wait_ready(Duration::from_secs(30));
        let (stop, writers) = start_writers(&c, &[0, 1, 2], "f", 100).await;
        let ids = [
            "shard_0", "shard_1", "shard_99", "bogus", "n1", "%00", "shard_", "",
        ];
        for i in 0..300 {
            let id = ids[rng.gen_range(0..ids.len())];
            let path = match rng.gen_range(0..7) {
                0 => format!("/admin/shard/{id}/migrate"),
                1 => format!("/admin/shard/{id}/transfer-leader"),
                2 => "/admin/shard".to_string(),
                3 => "/admin/shard/merge".to_string(),
                4 => format!("/admin/shard/{id}/split"),
                5 => format!("/admin/node/{}/decommission", ["n9", "bogus", ""][i % 3]),
                _ => "/admin/scheduler".to_string(),
            };
            let body = random_body(&mut rng);
            let port = c.nodes[i % 3].http_port;
            let (status, reply) = http_post(port, &path, &body)
                .unwrap_or_else(|e| panic!("POST {path} {body:.200}: {e} (RAFTKV_SEED={seed})"));
            let code: u16 = status
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            assert!(
                matches!(code, 200 | 202 | 400 | 404 | 405 | 409 | 503 | 504),
                "POST {path} {body:.200}: {status} {reply} (RAFTKV_SEED={seed})"
            );
            if code >= 400 && code != 405 && !path.ends_with("/decommission") {
                assert!(
                    !reply.trim().is_empty(),
                    "POST {path}: {status} with no explanation (RAFTKV_SEED={seed})"
                );
            }
        }
        // Whatever the valid ones started finishes; the writes kept going and are all there.
        wait_until("operations settle", Duration::from_secs(90), || {
            get_json(c.nodes[0].http_port, "/admin/operations")["operations"]
                .as_array()
                .is_some_and(|a| a.iter().all(|o| o["state"] != "running"))
        });
        let _ = http_post(
            c.nodes[0].http_port,
            "/admin/scheduler",
            r#"{"paused":false}"#,
        );
        c.wait_ready(Duration::from_secs(30));
        let acked = stop_writers(&stop, writers).await;
        assert!(acked.len() > 20, "only {} writes", acked.len());
        check_reads(&c, &acked).await;
        for n in &c.nodes {
            assert_eq!(http_get(n.http_port, "/health").1.trim(), "ok");
        }
    })
    .await
    .expect("test timed out");
}

/// A split's new shard has no leader when its replicas start. The replica beside the parent's
/// leader campaigns at once (its vote requests are held by nodes that have not applied the
/// split yet), so the new shard's slots are writable again in milliseconds, not after an
/// election timeout (1-2 s here) during which every write to them waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_off_shard_elects_a_leader_without_waiting_for_an_election_timeout() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let c = Cluster::start(
            3,
            &[
                "--initial-shards",
                "1",
                "--split-ops",
                "0",
                "--split-size-mb",
                "0",
            ],
        );
        c.wait_ready(Duration::from_secs(30));
        let port = c.nodes[0].http_port;
        for round in 0..2 {
            let shards = get_json(port, "/admin/shards");
            let parent = shards["shards"]
                .as_array()
                .and_then(|a| a.iter().find(|s| s["slots"][1] == 16383))
                .and_then(|s| s["id"].as_str())
                .map(str::to_string)
                .unwrap_or_else(|| panic!("no shard ends at slot 16383: {shards}"));
            let at = if round == 0 { 8192 } else { 12288 };
            let (code, v) = post_json(
                port,
                &format!("/admin/shard/{parent}/split"),
                &format!(r#"{{"at_slot": {at}}}"#),
            );
            assert_eq!(code, 202, "{v}");
            let op = v["operation"].as_u64().expect("operation id");
            // Every node: how long its replica of the new group went without a leader.
            let mut born: Vec<Option<Instant>> = vec![None; c.nodes.len()];
            let mut led: Vec<Option<Duration>> = vec![None; c.nodes.len()];
            let deadline = Instant::now() + Duration::from_secs(20);
            while led.iter().any(Option::is_none) {
                assert!(Instant::now() < deadline, "new group never led: {led:?}");
                for (i, n) in c.nodes.iter().enumerate() {
                    if led[i].is_some() {
                        continue;
                    }
                    let status = get_json(n.http_port, "/status");
                    let child = status["groups"].as_array().and_then(|a| {
                        a.iter()
                            .find(|g| g["id"].as_u64().is_some_and(|id| id >= 2 + round))
                            .cloned()
                    });
                    if let Some(g) = child {
                        let t = *born[i].get_or_insert_with(Instant::now);
                        if !g["leader"].is_null() {
                            led[i] = Some(t.elapsed());
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            wait_done(&c, port, op, Duration::from_secs(30));
            let slowest = led.iter().flatten().max().copied().unwrap_or_default();
            assert!(
                slowest < Duration::from_millis(700),
                "split {round}: a replica of the new shard had no leader for {slowest:?} \
                 (the election timeout is 1-2 s): {led:?}"
            );
            let key = key_in(at, at + 100, "child");
            let mut conn = c.nodes[2].conn().await;
            let _: () = redis::cmd("SET")
                .arg(&key)
                .arg("v")
                .query_async(&mut conn)
                .await
                .expect("write to the new shard");
        }
    })
    .await
    .expect("timed out");
}
