//! Crashes at named points of the write path and of shard operations (`failpoint.rs`), with
//! real processes: a node armed at a point aborts there (like `kill -9` at that line), is
//! restarted, and then every acknowledged write reads back from every node and the nodes
//! agree.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::load::{check_reads, check_reads_on, start_writers, stop_writers};
use common::{http_get, http_post, retry};
use serde_json::Value;

const FAULTS: &[(&str, &str)] = &[("RAFTKV_FAULT_INJECTION", "1")];

/// Arms fail point `point` on node `i` (retrying for a few seconds: a node
/// just restarted may not answer HTTP yet). A busy node can reach the point and
/// abort before its HTTP reply is written; its log then says so, and that counts.
fn arm(c: &Cluster, i: usize, point: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = http_post(c.nodes[i].http_port, "/debug/failpoint", point);
        match &got {
            Ok((line, _)) if line.contains(" 200") => return,
            Err(_) if reached(c, i, point) => return,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            _ => panic!(
                "arming {point} on {} (running: {}): {got:?}\n{}",
                c.nodes[i].name,
                c.nodes[i].is_running(),
                c.nodes[i].log_text()
            ),
        }
    }
}

/// Whether node `i`'s log says it reached fail point `point`.
fn reached(c: &Cluster, i: usize, point: &str) -> bool {
    c.nodes[i]
        .log_text()
        .contains(&format!("fail point {point}"))
}

/// Waits for node `i` to die at its armed point; panics (with the logs) if it does not.
fn wait_crash(c: &mut Cluster, i: usize, point: &str) {
    let status = c.nodes[i].wait_exit(Duration::from_secs(30));
    assert!(
        status.is_some(),
        "{} did not stop at {point}\n{}",
        c.nodes[i].name,
        c.logs()
    );
    assert!(
        reached(c, i, point),
        "{} died elsewhere\n{}",
        c.nodes[i].name,
        c.nodes[i].log_text()
    );
}

/// Every acknowledged key reads back from every node, and every node counts the same keys.
async fn check_agreement(c: &Cluster, acked: &BTreeMap<String, String>) {
    check_reads(c, acked).await;
    let mut sizes = Vec::new();
    for n in &c.nodes {
        let conn = n.conn().await;
        let size: i64 = retry(Duration::from_secs(15), || {
            let mut conn = conn.clone();
            async move { redis::cmd("DBSIZE").query_async(&mut conn).await }
        })
        .await;
        sizes.push(size);
    }
    assert!(
        sizes.windows(2).all(|w| w[0] == w[1]),
        "DBSIZE differs: {sizes:?}"
    );
}

/// Index of the node leading group `group` (from each node's `/status`).
fn leader_of(c: &Cluster, group: u64) -> Option<usize> {
    c.nodes.iter().position(|n| {
        n.is_running() && {
            let (_, body) = http_get(n.http_port, "/status");
            serde_json::from_str::<Value>(&body).is_ok_and(|v| {
                v["groups"].as_array().is_some_and(|a| {
                    a.iter()
                        .any(|g| g["id"].as_u64() == Some(group) && g["is_leader"] == true)
                })
            })
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_anywhere_on_the_write_path_lose_nothing() {
    tokio::time::timeout(Duration::from_secs(240), async {
        let mut c = Cluster::start_with_env(3, &["--raft-log-gc-threshold", "100"], FAULTS);
        c.wait_ready(Duration::from_secs(30));
        let mut acked = BTreeMap::new();
        // Each point on a different node in turn, the leader among them.
        let points = [
            "log_write_before",
            "log_write_after",
            "apply_before_write",
            "apply_after_write",
        ];
        for (round, point) in points.iter().enumerate() {
            let victim = if round == 1 {
                leader_of(&c, 1).unwrap_or(0)
            } else {
                round % 3
            };
            let others: Vec<usize> = (0..3).filter(|i| *i != victim).collect();
            let (stop, writers) = start_writers(&c, &others, &format!("w{round}-"), 200).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            arm(&c, victim, point);
            wait_crash(&mut c, victim, point);
            tokio::time::sleep(Duration::from_millis(500)).await;
            c.nodes[victim].spawn();
            c.wait_ready(Duration::from_secs(30));
            tokio::time::sleep(Duration::from_millis(500)).await;
            acked.extend(stop_writers(&stop, writers).await);
        }
        assert!(acked.len() > 200, "too few writes: {}", acked.len());
        check_agreement(&c, &acked).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_while_sending_or_installing_a_snapshot_lose_nothing() {
    tokio::time::timeout(Duration::from_secs(240), async {
        let mut c = Cluster::start_with_env(3, &["--raft-log-gc-threshold", "50"], FAULTS);
        c.wait_ready(Duration::from_secs(30));
        let mut acked = BTreeMap::new();
        // snapshot_corrupt flips a byte of the received snapshot: its checksum refuses it
        // (the node stops rather than install it) and the restarted node gets a good one.
        for point in ["snapshot_install", "snapshot_corrupt", "snapshot_send"] {
            let leader = leader_of(&c, 1).expect("a leader");
            let lagging = (leader + 1) % 3;
            let other = 3 - leader - lagging;
            // The lagging node is cut off while the log moves past the compaction threshold,
            // so it can only catch up by snapshot.
            let body = format!("{},{}", c.nodes[leader].name, c.nodes[other].name);
            http_post(c.nodes[lagging].http_port, "/debug/partition", &body).expect("cut");
            for i in [leader, other] {
                let me = &c.nodes[lagging].name;
                http_post(c.nodes[i].http_port, "/debug/partition", me).expect("cut");
            }
            let (stop, writers) = start_writers(&c, &[leader, other], point, 200).await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            acked.extend(stop_writers(&stop, writers).await);
            let victim = if point == "snapshot_send" {
                leader_of(&c, 1).expect("a leader")
            } else {
                lagging
            };
            arm(&c, victim, point);
            for i in 0..3 {
                if c.nodes[i].is_running() {
                    http_post(c.nodes[i].http_port, "/debug/partition", "").expect("heal");
                }
            }
            wait_crash(&mut c, victim, point);
            if point == "snapshot_corrupt" {
                let log = c.nodes[victim].log_text();
                assert!(log.contains("snapshot checksum mismatch"), "{log}");
            }
            c.nodes[victim].spawn();
            c.wait_ready(Duration::from_secs(30));
        }
        check_agreement(&c, &acked).await;
    })
    .await
    .expect("test timed out");
}

/// Waits until no operation runs (through the node behind `port`).
fn wait_idle(c: &Cluster, port: u16, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let (_, body) = http_get(port, "/admin/operations");
        let idle = serde_json::from_str::<Value>(&body).is_ok_and(|v| {
            v["operations"]
                .as_array()
                .is_some_and(|a| a.iter().all(|o| o["state"] != "running"))
        });
        if idle {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "operations still running: {body}\n{}",
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_in_split_merge_and_migration_finish_or_leave_the_shards_whole() {
    tokio::time::timeout(Duration::from_secs(300), async {
        let mut c = Cluster::start_with_env(4, &["--initial-shards", "1"], FAULTS);
        c.wait_ready(Duration::from_secs(30));
        let port = c.nodes[3].http_port;
        let (line, _) = http_post(port, "/admin/scheduler", r#"{"paused": true}"#).expect("pause");
        assert!(line.contains(" 200"), "{line}");
        let mut acked = BTreeMap::new();
        // shard_0 lives on n1..n3; n4 hosts nothing and drives requests.
        let steps: [(&str, usize, &str, &str); 3] = [
            ("split_apply", 0, "/admin/shard/shard_0/split", ""),
            (
                "merge_commit_apply",
                1,
                "/admin/shard/merge",
                r#"{"sources": ["shard_0", "shard_1"], "target": "shard_0"}"#,
            ),
            (
                "migrate_promote",
                0,
                "/admin/shard/shard_0/migrate",
                r#"{"from": "n1", "to": "n4"}"#,
            ),
        ];
        for (point, victim, path, body) in steps {
            if point == "migrate_promote" {
                // The point is on the metadata leader, which drives the migration. After the
                // restarts above, leadership returns to the preferred metadata replica (n1):
                // arm it once it leads, or another node could drive the operation instead.
                let deadline = Instant::now() + Duration::from_secs(30);
                while c.meta_leader() != victim {
                    assert!(Instant::now() < deadline, "n1 never led the metadata again");
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
            let (stop, writers) = start_writers(&c, &[3], point, 200).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            arm(&c, victim, point);
            let (line, reply) = http_post(port, path, body).expect("start");
            assert!(line.contains(" 202"), "{path}: {line} {reply}");
            wait_crash(&mut c, victim, point);
            c.nodes[victim].spawn();
            c.wait_ready(Duration::from_secs(30));
            wait_idle(&c, port, Duration::from_secs(90));
            acked.extend(stop_writers(&stop, writers).await);
        }
        let (_, ops) = http_get(port, "/admin/operations");
        let v: Value = serde_json::from_str(&ops).expect("operations");
        let states: Vec<&str> = v["operations"]
            .as_array()
            .map(|a| a.iter().filter_map(|o| o["state"].as_str()).collect())
            .unwrap_or_default();
        assert!(states.iter().all(|s| *s == "done"), "{ops}");
        let (_, shards) = http_get(port, "/admin/shards");
        let v: Value = serde_json::from_str(&shards).expect("shards");
        let s0 = &v["shards"][0];
        assert_eq!(s0["slots"], serde_json::json!([0, 16383]), "{shards}");
        assert!(
            s0["replicas"]
                .as_array()
                .is_some_and(|r| r.iter().any(|n| n == "n4") && !r.iter().any(|n| n == "n1")),
            "{shards}"
        );
        assert!(acked.len() > 100, "too few writes: {}", acked.len());
        check_agreement(&c, &acked).await;
    })
    .await
    .expect("test timed out");
}

/// The newest write-ahead log file of the RocksDB instance in `dir`.
fn newest_wal(dir: &std::path::Path) -> std::path::PathBuf {
    let mut wals: Vec<_> = std::fs::read_dir(dir)
        .expect("read db dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
        .collect();
    wals.sort();
    wals.pop()
        .unwrap_or_else(|| panic!("no WAL in {}", dir.display()))
}

/// Cuts the last 5 bytes off the newest WAL of the log in `dir`: its last record torn.
fn tear_log_tail(dir: &std::path::Path) {
    let wal = newest_wal(dir);
    let len = std::fs::metadata(&wal).expect("wal").len();
    assert!(len > 64, "{} is only {len} bytes", wal.display());
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&wal)
        .expect("open wal");
    f.set_len(len - 5).expect("truncate wal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_log_tail_is_dropped_and_a_corrupt_log_is_rebuilt_from_peers() {
    tokio::time::timeout(Duration::from_secs(300), async {
        let mut c = Cluster::start_with_env(3, &["--initial-shards", "1"], FAULTS);
        c.wait_ready(Duration::from_secs(30));
        let (stop, writers) = start_writers(&c, &[0, 1], "t", 300).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;

        // A torn write: the node dies while its last log record is half on disk. It dies
        // right after writing a batch, before acknowledging it (a record still being written
        // is never acknowledged: acknowledgements follow the fsync), and that record is cut
        // short; the node must start, drop it, and catch up from its peers. (Cutting an
        // acknowledged record would be a disk losing synced data: the leader, counting on
        // the follower having it, would keep probing above what is left.)
        arm(&c, 2, "log_write_after");
        wait_crash(&mut c, 2, "log_write_after");
        tear_log_tail(&c.nodes[2].dir.join("raft"));
        c.nodes[2].spawn();
        c.wait_ready(Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let mut acked = stop_writers(&stop, writers).await;
        assert!(acked.len() > 50, "only {} writes acknowledged", acked.len());
        check_reads(&c, &acked).await;

        // A disk that loses synced data: killed at any moment, its last record cut though it
        // may have been acknowledged. The leader finds the follower's log shorter than what
        // it acknowledged and sends it the missing entries again.
        let (stop, writers) = start_writers(&c, &[0, 1], "u", 300).await;
        tokio::time::sleep(Duration::from_millis(1000)).await;
        c.nodes[2].kill9();
        tear_log_tail(&c.nodes[2].dir.join("raft"));
        c.nodes[2].spawn();
        c.wait_ready(Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(1000)).await;
        acked.extend(stop_writers(&stop, writers).await);
        check_reads(&c, &acked).await;

        // A flipped bit inside the log (not at its tail) is corruption. The node never
        // replays or serves that log: it sets its stores aside and its replicas are rebuilt
        // from its peers (out of each group, back as an empty learner, a snapshot,
        // promoted), while clients keep writing through the others.
        c.nodes[2].kill9();
        flip_bits(&newest_wal(&c.nodes[2].dir.join("raft")), &[(1, 2)]);
        let (stop, writers) = start_writers(&c, &[0, 1], "v", 300).await;
        c.nodes[2].spawn();
        // Killed early in its rebuild (the stores set aside, the rebuild perhaps not yet
        // registered), it carries on after a restart under the same token.
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.nodes[2].kill9();
        c.nodes[2].spawn();
        wait_rebuilt(&c, 2, Duration::from_secs(90)).await;
        acked.extend(stop_writers(&stop, writers).await);
        let log = c.nodes[2].log_text();
        assert!(
            log.contains("set aside as corrupt") && log.contains("Corruption"),
            "no clear message about the corrupt log:\n{log}"
        );
        let (_, status) = http_get(c.nodes[2].http_port, "/status");
        assert!(status.contains(r#""rebuilding":false"#), "{status}");
        let kept = quarantined(&c.nodes[2].dir)
            .iter()
            .any(|q| q.join("raft").is_dir());
        assert!(kept, "the corrupt log was not kept for inspection");
        check_reads(&c, &acked).await;

        // The rebuilt replica holds the data: with node 0 down it leads, and reads are
        // served from its state machine.
        c.nodes[0].kill9();
        let name = c.nodes[2].name.clone();
        let body = format!(r#"{{"to":"{name}"}}"#);
        let deadline = Instant::now() + Duration::from_secs(30);
        while leader_of(&c, 1) != Some(2) {
            let got = http_post(
                c.nodes[1].http_port,
                "/admin/shard/shard_0/transfer-leader",
                &body,
            );
            assert!(
                Instant::now() < deadline,
                "{name} never led: {got:?}\n{}",
                c.logs()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        check_reads_on(&c, 1, &acked).await;
        // And it replicates: writes while node 0 is down, then node 1 down and node 0
        // back: node 0 can only have caught up on those from the rebuilt node.
        let (stop, writers) = start_writers(&c, &[1, 2], "w", 200).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        acked.extend(stop_writers(&stop, writers).await);
        c.nodes[0].spawn();
        c.wait_ready(Duration::from_secs(30));
        c.nodes[1].kill9();
        check_reads_on(&c, 0, &acked).await;
    })
    .await
    .expect("test timed out");
}

/// Corruption met at run time (flipped bits in the state machine's SST files, read when
/// writes apply) stops the node before it applies or serves anything from them; restarted,
/// as a supervisor would, it rebuilds its replicas from its peers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_state_machine_stops_the_node_and_it_is_rebuilt() {
    tokio::time::timeout(Duration::from_secs(240), async {
        let mut c = Cluster::start(3, &["--initial-shards", "1", "--write-buffer-mb", "1"]);
        c.wait_ready(Duration::from_secs(30));
        // About 4 MiB of 1 KiB values through a 1 MiB memtable budget: SST files everywhere.
        let mut conn = c.nodes[0].conn().await;
        let mut acked = BTreeMap::new();
        let write_all = |round: usize| {
            (0..4000)
                .map(|i| (format!("c{i}"), format!("{round}-{i}-{}", "x".repeat(1024))))
                .collect::<Vec<_>>()
        };
        let mut set_all = async |round: usize, acked: &mut BTreeMap<String, String>| {
            for chunk in write_all(round).chunks(200) {
                let mut p = redis::pipe();
                for (k, v) in chunk {
                    p.set(k, v).ignore();
                }
                let () = p.query_async(&mut conn).await.expect("write");
                acked.extend(chunk.iter().cloned());
            }
        };
        set_all(0, &mut acked).await;
        c.nodes[2].signal("TERM");
        assert!(c.nodes[2].wait_exit(Duration::from_secs(30)).is_some());
        let kv = c.nodes[2].dir.join("kv");
        let ssts: Vec<_> = std::fs::read_dir(&kv)
            .expect("kv dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "sst"))
            .collect();
        assert!(!ssts.is_empty(), "no SST file in {}", kv.display());
        for sst in &ssts {
            flip_bits(sst, &[(1, 4), (1, 2), (3, 4)]);
        }
        c.nodes[2].spawn();
        // Overwrite every key: applying a SET reads the key's old record on every replica.
        set_all(1, &mut acked).await;
        // Either the node met the bad blocks at run time and stopped (then it is restarted)
        // or RocksDB refused them at start already and it is rebuilding.
        if c.nodes[2].wait_exit(Duration::from_secs(20)).is_some() {
            let log = c.nodes[2].log_text();
            assert!(
                log.contains("corrupt data read; stopping") && log.contains("Corruption"),
                "{} stopped without saying why:\n{log}",
                c.nodes[2].name
            );
            eprintln!(
                "{} stopped at run time on the corrupt blocks",
                c.nodes[2].name
            );
            c.nodes[2].spawn();
        } else {
            eprintln!("{} found the corrupt blocks at start", c.nodes[2].name);
        }
        wait_rebuilt(&c, 2, Duration::from_secs(90)).await;
        check_reads(&c, &acked).await;
        c.nodes[0].kill9();
        check_reads_on(&c, 1, &acked).await;
    })
    .await
    .expect("test timed out");
}

/// A lone node has no peer to rebuild from: a corrupt log stops it, saying so, and its
/// data directory is left as it was (to restore or inspect).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_node_with_a_corrupt_log_stops_and_keeps_its_data() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let mut c = Cluster::start(1, &[]);
        c.wait_ready(Duration::from_secs(30));
        let (stop, writers) = start_writers(&c, &[0], "s", 100).await;
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let acked = stop_writers(&stop, writers).await;
        assert!(!acked.is_empty());
        c.nodes[0].kill9();
        let wal = newest_wal(&c.nodes[0].dir.join("raft"));
        let bytes = flip_bits(&wal, &[(1, 2)]);
        let st = c.nodes[0].start_expecting_exit(Duration::from_secs(30));
        let log = c.nodes[0].log_text();
        assert!(
            st.is_some_and(|s| !s.success()),
            "a lone node with a corrupt log kept running ({st:?}):\n{log}"
        );
        assert!(
            log.contains("raft log") && log.contains("Corruption") && log.contains("no peer"),
            "no clear message about the corrupt log:\n{log}"
        );
        assert!(
            std::fs::read(&wal).is_ok_and(|b| b == bytes),
            "the log was changed"
        );
        assert!(
            quarantined(&c.nodes[0].dir).is_empty(),
            "a lone node set its only copy aside"
        );
    })
    .await
    .expect("test timed out");
}

/// Flips one bit of `path` at each fraction `(a, b)` of its length (`a * len / b`);
/// returns the new contents.
fn flip_bits(path: &std::path::Path, at: &[(usize, usize)]) -> Vec<u8> {
    let mut bytes = std::fs::read(path).expect("read file to corrupt");
    let n = bytes.len();
    for (a, b) in at {
        bytes[a * n / b] ^= 0x40;
    }
    std::fs::write(path, &bytes).expect("write corrupted file");
    bytes
}

/// The `quarantine-*` directories in a node's data directory (stores set aside).
fn quarantined(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .expect("data dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("quarantine-"))
        .map(|e| e.path())
        .collect()
}

/// Waits until node `i` has rebuilt its replicas: the metadata shows rebuild operations
/// for it, all done, and it hosts every group again.
async fn wait_rebuilt(c: &Cluster, i: usize, within: Duration) {
    let deadline = Instant::now() + within;
    let name = c.nodes[i].name.clone();
    let other = (i + 1) % c.nodes.len();
    loop {
        let (_, ops) = http_get(c.nodes[other].http_port, "/admin/operations");
        let ops: Value = serde_json::from_str(&ops).unwrap_or_default();
        let rebuilds: Vec<&Value> = ops["operations"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|o| o["kind"] == "rebuild" && o["node"] == name.as_str())
                    .collect()
            })
            .unwrap_or_default();
        let (_, status) = http_get(c.nodes[i].http_port, "/status");
        let status: Value = serde_json::from_str(&status).unwrap_or_default();
        // One shard and the metadata group.
        let hosted = status["groups"].as_array().map_or(0, Vec::len)
            + usize::from(status["meta"].is_object());
        if rebuilds.len() == 2 && rebuilds.iter().all(|o| o["state"] == "done") && hosted == 2 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} not rebuilt within {within:?}: {rebuilds:?}, {hosted} groups hosted\n{}",
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// An fsync that fails (fail point `log_write_error`, as EIO from the disk) stops the node:
/// writes waiting on that batch are answered with an error rather than dropped or
/// acknowledged, nothing after it is acknowledged, and after a restart every acknowledged
/// write is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fsync_stops_the_node_with_an_error_to_its_clients() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let mut c = Cluster::start_with_env(1, &[], FAULTS);
        c.wait_ready(Duration::from_secs(30));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut writers = Vec::new();
        for w in 0..8 {
            let mut conn = c.nodes[0].conn().await;
            let stop = stop.clone();
            writers.push(tokio::spawn(async move {
                let (mut acked, mut errors) = (Vec::new(), Vec::new());
                for i in 0..100_000 {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let key = format!("f{w}:{i}");
                    let r: redis::RedisResult<()> = redis::cmd("SET")
                        .arg(&key)
                        .arg(i)
                        .query_async(&mut conn)
                        .await;
                    match r {
                        Ok(()) => acked.push(key),
                        Err(e) => {
                            errors.push(e.to_string());
                            break;
                        }
                    }
                }
                (acked, errors)
            }));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        arm(&c, 0, "log_write_error");
        let status = c.nodes[0].wait_exit(Duration::from_secs(20));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(
            status.is_some_and(|s| !s.success()),
            "the node kept running after a failed fsync ({status:?})\n{}",
            c.logs()
        );
        let (mut acked, mut errors) = (Vec::new(), Vec::new());
        for w in writers {
            let (a, e) = w.await.expect("writer");
            acked.extend(a);
            errors.extend(e);
        }
        assert!(
            acked.len() > 20,
            "only {} writes before the fault",
            acked.len()
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("MISCONF") && e.contains("disk")),
            "no writer was told about the disk: {errors:?}"
        );
        let log = c.nodes[0].log_text();
        assert!(log.contains("Raft log write failed"), "{log}");

        // Restarted (the fault gone), every acknowledged write is there.
        c.nodes[0].env.clear();
        c.nodes[0].spawn();
        c.wait_ready(Duration::from_secs(30));
        let mut conn = c.nodes[0].conn().await;
        let n = acked.len();
        for key in acked {
            let v: Option<String> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .expect("GET after restart");
            assert!(
                v.is_some(),
                "{key} acknowledged before the fault, lost after ({n} acked)"
            );
        }
    })
    .await
    .expect("test timed out");
}
