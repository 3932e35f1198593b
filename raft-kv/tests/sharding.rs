//! Many shards per cluster, with real processes: plain clients on any node see one keyspace
//! (multi-key commands split across shards, CROSSSLOT where atomicity needs one shard,
//! keyspace-wide commands over every shard), cluster-aware clients get CLUSTER SLOTS and
//! follow -MOVED to shard leaders, and nodes that host no replica of a shard proxy to one
//! that does.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::{redis_cli, retry, TEST_TIMEOUT};
use raft_kv::storage::slot::key_slot;
use redis::AsyncCommands;

/// The error text, lower-cased (the client spells CROSSSLOT as "CrossSlot").
fn err_text(r: redis::RedisResult<redis::Value>) -> String {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.to_string().to_lowercase(),
    }
}

/// Waits until every node leads some shard: leaders move to their preferred nodes about an
/// election timeout after the first elections (which the first node started tends to win).
async fn wait_balanced(c: &Cluster, within: Duration) {
    let mut conn = c.nodes[0].conn().await;
    let deadline = Instant::now() + within;
    loop {
        let text: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query_async(&mut conn)
            .await
            .expect("cluster nodes");
        let leading = text
            .lines()
            .filter(|l| l.split(' ').nth(8).is_some())
            .count();
        if leading == c.nodes.len() {
            return;
        }
        assert!(Instant::now() < deadline, "leaders not spread:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_clients_see_one_keyspace_across_shards() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let c = Cluster::start(3, &["--initial-shards", "8"]);
        c.wait_ready(Duration::from_secs(20));
        let mut conns = Vec::new();
        for n in &c.nodes {
            conns.push(n.conn().await);
        }
        // Single-key writes through every node land in all eight shards.
        for i in 0..120 {
            let mut conn = conns[i % 3].clone();
            let _: () = retry(Duration::from_secs(10), || {
                let mut conn = conn.clone();
                async move { conn.set(format!("key:{i}"), i).await }
            })
            .await;
            let _ = &mut conn;
        }
        let shards: BTreeSet<u16> = (0..120)
            .map(|i| key_slot(format!("key:{i}").as_bytes()) / 2048)
            .collect();
        assert_eq!(shards.len(), 8, "the keys cover every shard");
        for conn in conns.iter_mut() {
            let v: i64 = conn.get("key:77").await.expect("get");
            assert_eq!(v, 77);
            let n: i64 = redis::cmd("DBSIZE")
                .query_async(conn)
                .await
                .expect("dbsize");
            assert_eq!(n, 120, "DBSIZE counts every shard");
        }

        // MGET/MSET/DEL/EXISTS/TOUCH split per shard and merge in key order.
        let conn = &mut conns[1];
        let _: () = redis::cmd("MSET")
            .arg(&["m:a", "1", "m:b", "2", "m:c", "3", "m:d", "4"])
            .query_async(conn)
            .await
            .expect("mset across shards");
        let got: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&["m:d", "missing", "m:a", "m:c", "m:b"])
            .query_async(conn)
            .await
            .expect("mget across shards");
        assert_eq!(
            got,
            [Some("4"), None, Some("1"), Some("3"), Some("2")]
                .map(|v| v.map(String::from))
                .to_vec()
        );
        let n: i64 = redis::cmd("EXISTS")
            .arg(&["m:a", "m:b", "m:a", "nope"])
            .query_async(conn)
            .await
            .expect("exists");
        assert_eq!(n, 3);
        let n: i64 = redis::cmd("TOUCH")
            .arg(&["m:a", "m:c", "nope"])
            .query_async(conn)
            .await
            .expect("touch");
        assert_eq!(n, 2);
        let n: i64 = redis::cmd("DEL")
            .arg(&["m:a", "m:b", "m:c", "m:d", "nope"])
            .query_async(conn)
            .await
            .expect("del");
        assert_eq!(n, 4);

        // The routing decisions show in the metrics.
        let (_, metrics) = common::http_get(c.nodes[1].http_port, "/metrics");
        for route in ["local", "split", "all_shards"] {
            assert!(
                metrics.contains(&format!(
                    "raftkv_routed_requests_total{{route=\"{route}\"}}"
                )),
                "{route} missing from /metrics"
            );
        }

        // Commands that must be atomic need one shard (hash tags put keys together).
        assert_ne!(key_slot(b"{a}") / 2048, key_slot(b"{b}") / 2048);
        for cmd in [
            vec!["RENAME", "{a}1", "{b}1"],
            vec!["MSETNX", "{a}1", "x", "{b}1", "y"],
            vec!["SINTERSTORE", "{a}dst", "{b}s"],
            vec!["SMOVE", "{a}s", "{b}s", "m"],
            vec!["BLMOVE", "{a}l", "{b}l", "LEFT", "LEFT", "0.1"],
        ] {
            let e = err_text(redis::cmd(cmd[0]).arg(&cmd[1..]).query_async(conn).await);
            assert!(e.contains("crossslot"), "{cmd:?}: {e}");
        }
        let _: () = conn.set("{a}1", "v").await.expect("set");
        let _: () = redis::cmd("RENAME")
            .arg(&["{a}1", "{a}2"])
            .query_async(conn)
            .await
            .expect("rename within a shard");
        let (x, y): (String, i64) = redis::pipe()
            .atomic()
            .get("{a}2")
            .incr("{a}n", 5)
            .query_async(conn)
            .await
            .expect("MULTI within a shard");
        assert_eq!((x.as_str(), y), ("v", 5));
        // A transaction across shards: the command that crosses is refused when queued, and
        // EXEC aborts, as in Redis Cluster.
        let mut tx = c.nodes[1].conn().await;
        let _: () = redis::cmd("MULTI")
            .query_async(&mut tx)
            .await
            .expect("multi");
        let q: String = redis::cmd("SET")
            .arg(&["{a}x", "1"])
            .query_async(&mut tx)
            .await
            .expect("queued");
        assert_eq!(q, "QUEUED");
        let e = err_text(
            redis::cmd("SET")
                .arg(&["{b}x", "1"])
                .query_async(&mut tx)
                .await,
        );
        assert!(e.contains("crossslot"), "MULTI across shards: {e}");
        let e = err_text(redis::cmd("EXEC").query_async(&mut tx).await);
        assert!(e.contains("execabort"), "{e}");
        let v: Option<String> = conn.get("{a}x").await.expect("get");
        assert_eq!(v, None, "a refused transaction applies nothing");

        // SCAN walks every shard exactly once; KEYS sees them all.
        let mut all = BTreeSet::new();
        let mut cursor = 0u64;
        for _ in 0..1000 {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("COUNT")
                .arg(7)
                .query_async(conn)
                .await
                .expect("scan");
            for k in keys {
                assert!(all.insert(k.clone()), "{k} returned twice");
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(cursor, 0, "SCAN finished");
        let keys: Vec<String> = conn.keys("*").await.expect("keys");
        assert_eq!(keys.len(), all.len());
        assert_eq!(keys.into_iter().collect::<BTreeSet<_>>(), all);
        assert!(all.contains("key:0") && all.contains("{a}2") && all.len() == 122);

        // CLUSTER KEYSLOT / COUNTKEYSINSLOT / GETKEYSINSLOT.
        let slot: i64 = redis::cmd("CLUSTER")
            .arg(&["KEYSLOT", "{a}2"])
            .query_async(conn)
            .await
            .expect("keyslot");
        assert_eq!(slot, key_slot(b"a") as i64);
        let n: i64 = redis::cmd("CLUSTER")
            .arg("COUNTKEYSINSLOT")
            .arg(slot)
            .query_async(conn)
            .await
            .expect("countkeysinslot");
        assert_eq!(n, 2, "{{a}}2 and {{a}}n");
        let ks: Vec<String> = redis::cmd("CLUSTER")
            .arg("GETKEYSINSLOT")
            .arg(slot)
            .arg(1)
            .query_async(conn)
            .await
            .expect("getkeysinslot");
        assert_eq!(ks.len(), 1);

        // Bad input gets Redis' errors and leaves the connection and data intact.
        for (cmd, want) in [
            (
                vec!["MSET", "{a}1", "x", "{b}1"],
                "wrong number of arguments",
            ),
            (vec!["CLUSTER", "NOPE"], "unknown subcommand"),
            (vec!["CLUSTER", "COUNTKEYSINSLOT", "16384"], "invalid slot"),
            (
                vec!["CLUSTER", "GETKEYSINSLOT", "1", "-1"],
                "invalid number of keys",
            ),
            (vec!["CLUSTER", "KEYSLOT"], "wrong number of arguments"),
            (vec!["SCAN", "x"], "invalid cursor"),
        ] {
            let e = err_text(redis::cmd(cmd[0]).arg(&cmd[1..]).query_async(conn).await);
            assert!(e.contains(want), "{cmd:?}: {e}");
        }
        let v: String = conn.get("{a}2").await.expect("still serving");
        assert_eq!(v, "v");

        // FLUSHALL empties every shard, seen from every node.
        let _: () = redis::cmd("FLUSHALL")
            .query_async(&mut conns[2])
            .await
            .expect("flushall");
        for conn in conns.iter_mut() {
            let n: i64 = redis::cmd("DBSIZE")
                .query_async(conn)
                .await
                .expect("dbsize");
            assert_eq!(n, 0);
        }
        // A sparse keyspace: one SCAN call walks on through empty shards instead of handing
        // out an empty page per shard.
        let _: () = conns[0].set("lonely", 1).await.expect("set");
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(0)
            .arg("COUNT")
            .arg(100)
            .query_async(&mut conns[0])
            .await
            .expect("scan");
        assert_eq!((next, keys), (0, vec!["lonely".to_string()]));
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_aware_clients_are_redirected_to_shard_leaders() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let c = Cluster::start(3, &["--initial-shards", "6"]);
        c.wait_ready(Duration::from_secs(20));
        wait_balanced(&c, Duration::from_secs(20)).await;
        let ports: Vec<u16> = c.nodes.iter().map(|n| n.redis_port).collect();
        let mut conn = c.nodes[0].conn().await;

        // CLUSTER SLOTS: six contiguous ranges, each with three replicas on our nodes.
        type Range = (i64, i64, Vec<(String, i64, String)>);
        let slots: Vec<Range> = {
            let raw: Vec<Vec<redis::Value>> = redis::cmd("CLUSTER")
                .arg("SLOTS")
                .query_async(&mut conn)
                .await
                .expect("cluster slots");
            raw.into_iter()
                .map(|e| {
                    let first: i64 = redis::from_redis_value(&e[0]).expect("first");
                    let last: i64 = redis::from_redis_value(&e[1]).expect("last");
                    let nodes = e[2..]
                        .iter()
                        .map(|n| {
                            let (h, p, id, _): (String, i64, String, Vec<String>) =
                                redis::from_redis_value(n).expect("node");
                            (h, p, id)
                        })
                        .collect();
                    (first, last, nodes)
                })
                .collect()
        };
        assert_eq!(slots.len(), 6);
        assert_eq!((slots[0].0, slots[5].1), (0, 16383));
        for (_, _, nodes) in &slots {
            assert_eq!(nodes.len(), 3);
            for (h, p, id) in nodes {
                assert_eq!(h, "127.0.0.1");
                assert!(ports.contains(&(*p as u16)), "port {p}");
                assert_eq!(id.len(), 40);
            }
        }
        // Preferred leaders spread over the nodes.
        let masters: BTreeSet<i64> = slots.iter().map(|(_, _, n)| n[0].1).collect();
        assert!(masters.len() >= 2, "leaders on {masters:?}");

        // This connection asked for the topology: keys led elsewhere get -MOVED, and the
        // named node takes them.
        let mut moved = 0;
        for i in 0..40 {
            let key = format!("user:{i}");
            match redis::cmd("SET")
                .arg(&key)
                .arg(i)
                .query_async::<redis::Value>(&mut conn)
                .await
            {
                Ok(_) => {}
                Err(e) if e.kind() == redis::ErrorKind::Moved => {
                    moved += 1;
                    let (addr, slot) = e.redirect_node().expect("MOVED target");
                    assert_eq!(slot, key_slot(key.as_bytes()), "{e}");
                    let port: u16 = addr
                        .rsplit(':')
                        .next()
                        .and_then(|p| p.parse().ok())
                        .expect("port");
                    assert!(ports.contains(&port), "{addr}");
                    let mut there = redis::Client::open(format!("redis://{addr}"))
                        .expect("client")
                        .get_multiplexed_async_connection()
                        .await
                        .expect("connect");
                    let _: () = retry(Duration::from_secs(10), || {
                        let mut there = there.clone();
                        let key = key.clone();
                        async move { there.set(key, i).await }
                    })
                    .await;
                    let _ = &mut there;
                }
                Err(e) => panic!("SET {key}: {e}"),
            }
        }
        assert!(moved > 0, "node 1 leads only some shards");
        // Keys in several shards: CROSSSLOT, as Redis Cluster answers.
        let e = err_text(
            redis::cmd("MGET")
                .arg(&["{a}", "{b}"])
                .query_async(&mut conn)
                .await,
        );
        assert!(e.contains("crossslot"), "{e}");
        // READONLY lets a replica serve reads of its shard.
        let _: () = redis::cmd("READONLY")
            .query_async(&mut conn)
            .await
            .expect("readonly");
        for i in 0..40 {
            let v: i64 = conn
                .get(format!("user:{i}"))
                .await
                .expect("read at a replica");
            assert_eq!(v, i);
        }

        // redis-cli -c follows redirects (every connection redirects with --route-mode
        // redirect; here the plain connection is proxied, so both paths answer).
        if let Some(out) = redis_cli(ports[1], &["-c", "GET", "user:7"]) {
            assert_eq!(out.trim(), "7");
        }
        // redis-py's RedisCluster, when installed (CI installs python3-redis).
        let script = format!(
            "import redis.cluster as c\n\
             rc = c.RedisCluster(host='127.0.0.1', port={})\n\
             for i in range(100): rc.set('py:%d' % i, i)\n\
             assert [int(rc.get('py:%d' % i)) for i in range(100)] == list(range(100))\n\
             assert rc.mget_nonatomic(['py:1', 'py:2', 'nope']) == [b'1', b'2', None]\n\
             assert rc.dbsize() == 140, rc.dbsize()\n\
             assert len(rc.keys()) == 140\n\
             print('ok')\n",
            ports[2]
        );
        common::run_redis_py(&script);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_mode_and_redis_cli_cluster_mode() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let c = Cluster::start(3, &["--initial-shards", "4", "--route-mode", "redirect"]);
        c.wait_ready(Duration::from_secs(20));
        wait_balanced(&c, Duration::from_secs(20)).await;
        let port = c.nodes[0].redis_port;
        let Some(_) = redis_cli(port, &["PING"]) else {
            return;
        };
        let mut saw_moved = false;
        for i in 0..20 {
            let key = format!("r:{i}");
            let plain = redis_cli(port, &["SET", &key, "x"]).unwrap_or_default();
            saw_moved |= plain.starts_with("MOVED");
            assert!(
                plain.trim() == "OK" || plain.starts_with("MOVED"),
                "{plain}"
            );
            let out = redis_cli(port, &["-c", "SET", &key, &i.to_string()]).unwrap_or_default();
            assert_eq!(out.trim(), "OK", "redis-cli -c SET {key}");
            let out = redis_cli(port, &["-c", "GET", &key]).unwrap_or_default();
            assert_eq!(out.trim(), i.to_string());
        }
        assert!(
            saw_moved,
            "a plain connection is redirected in redirect mode"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_without_a_replica_proxy_to_one_that_has_it() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        // Five nodes, four shards of three replicas: every node misses some shards.
        let mut c = Cluster::start(5, &["--initial-shards", "4"]);
        c.wait_ready(Duration::from_secs(20));
        let mut conns = Vec::new();
        for n in &c.nodes {
            conns.push(n.conn().await);
        }
        for i in 0..60 {
            let mut conn = conns[i % 5].clone();
            let _: () = retry(Duration::from_secs(10), || {
                let mut conn = conn.clone();
                async move { conn.rpush(format!("list:{i}"), i).await }
            })
            .await;
            let _ = &mut conn;
        }
        for conn in conns.iter_mut() {
            for i in 0..60 {
                let v: Vec<i64> = conn
                    .lrange(format!("list:{i}"), 0, -1)
                    .await
                    .expect("lrange");
                assert_eq!(v, vec![i as i64]);
            }
            let n: i64 = redis::cmd("DBSIZE")
                .query_async(conn)
                .await
                .expect("dbsize");
            assert_eq!(n, 60);
            // MGET answers nil for a key of another type, as Redis does.
            let got: Vec<Option<i64>> = redis::cmd("MGET")
                .arg(&["list:1", "nope"])
                .query_async(conn)
                .await
                .expect("mget");
            assert_eq!(got, vec![None, None]);
        }
        // A client blocked on a node without a replica of the key's shard is served when
        // another node pushes (its applies are not seen locally, so that node polls).
        let ids: Vec<u64> = (1..=5)
            .map(|i| raft_kv::raftstore::members::raft_id(&format!("n{i}")))
            .collect();
        let layout = raft_kv::routing::Layout::initial(&ids, 4).expect("layout");
        let shard = layout.shard_of_slot(key_slot(b"queue"));
        let outsider = (0..5)
            .find(|&i| !shard.replicas.contains(&ids[i]))
            .expect("a node without a replica");
        let mut blocked = c.nodes[outsider].conn().await;
        let waiter = tokio::spawn(async move {
            let r: Option<(String, String)> = redis::cmd("BLPOP")
                .arg("queue")
                .arg(10)
                .query_async(&mut blocked)
                .await
                .expect("blpop");
            r
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let pusher = (outsider + 1) % 5;
        let _: i64 = conns[pusher].rpush("queue", "job").await.expect("rpush");
        let started = Instant::now();
        let got = waiter.await.expect("task");
        assert_eq!(got, Some(("queue".to_string(), "job".to_string())));
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "served by polling, not the timeout"
        );

        // WATCH/MULTI through a node that may not host the shard.
        let conn = &mut conns[4];
        let _: () = redis::cmd("WATCH")
            .arg("{t}w")
            .query_async(conn)
            .await
            .expect("watch");
        let r: Option<(i64,)> = redis::pipe()
            .atomic()
            .incr("{t}w", 1)
            .query_async(conn)
            .await
            .expect("exec");
        assert_eq!(r, Some((1,)));

        // A node without a replica of a shard still advertises its real leader (learned
        // from peers), the same master a replica advertises, also after the preferred
        // leader died.
        let master_of = |port: u16| async move {
            let mut conn = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                .expect("client")
                .get_multiplexed_async_connection()
                .await
                .expect("connect");
            let slots: Vec<Vec<redis::Value>> = redis::cmd("CLUSTER")
                .arg("SLOTS")
                .query_async(&mut conn)
                .await
                .expect("cluster slots");
            let slot = i64::from(key_slot(b"queue"));
            slots
                .into_iter()
                .find(|e| {
                    let a: i64 = redis::from_redis_value(&e[0]).unwrap_or(-1);
                    let b: i64 = redis::from_redis_value(&e[1]).unwrap_or(-1);
                    (a..=b).contains(&slot)
                })
                .and_then(|e| {
                    redis::from_redis_value::<(String, i64, String, Vec<String>)>(&e[2]).ok()
                })
                .map(|(_, port, _, _)| port)
        };
        let preferred = (0..5)
            .find(|&i| ids[i] == shard.replicas[0])
            .expect("preferred");
        c.nodes[preferred].kill9();
        let replica = (0..5)
            .find(|&i| i != preferred && shard.replicas.contains(&ids[i]))
            .expect("a live replica");
        let dead_port = i64::from(c.nodes[preferred].redis_port);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let here = master_of(c.nodes[outsider].redis_port).await;
            let there = master_of(c.nodes[replica].redis_port).await;
            if here.is_some() && here == there && here != Some(dead_port) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "outsider says {here:?}, replica says {there:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("test timed out");
}
