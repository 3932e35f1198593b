//! A cluster of real `raft-kv` processes on loopback, each with its own data directory and
//! log file (kept in a temp dir, printed when a test fails to start a node).

use std::fs::File;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, http_get, wait_listening};

pub struct Node {
    pub name: String,
    pub redis_port: u16,
    pub http_port: u16,
    pub dir: PathBuf,
    log: PathBuf,
    cluster: String,
    pub extra: Vec<String>,
    /// Environment variables for this node's process.
    pub env: Vec<(String, String)>,
    child: Option<Child>,
}

impl Node {
    fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_raft-kv"));
        c.arg("--node-id")
            .arg(&self.name)
            .arg("--data-dir")
            .arg(&self.dir)
            .arg("--port")
            .arg(self.http_port.to_string())
            .arg("--redis-port")
            .arg(self.redis_port.to_string());
        // A node that joined has no member list of its own (its `extra` says `--join`).
        if !self.cluster.is_empty() {
            c.arg("--cluster").arg(&self.cluster);
        }
        c.arg("--log-level")
            .arg("info")
            .args(&self.extra)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        c
    }

    pub fn spawn(&mut self) {
        if let Err(e) = self.try_spawn() {
            panic!("{e}");
        }
    }

    /// Spawns the node's process with stdout and stderr appended to its log file.
    fn spawn_logged(&self) -> std::process::Child {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open node log");
        self.command()
            .stderr(Stdio::from(log.try_clone().expect("dup log")))
            .stdout(Stdio::from(log))
            .spawn()
            .expect("spawn raft-kv")
    }

    /// Starts the node; Err (with its log) if it does not come up.
    fn try_spawn(&mut self) -> Result<(), String> {
        let child = self.spawn_logged();
        // Stored first, so a node that fails to come up is still killed on drop.
        let child = self.child.insert(child);
        let listening = wait_listening(self.redis_port, child);
        // Something else may own the port (then the connect above reached it and this node
        // exited on "address in use"): make sure it is this node that listens.
        let alive = listening.is_ok() && {
            std::thread::sleep(Duration::from_millis(100));
            matches!(child.try_wait(), Ok(None))
        };
        match listening {
            Err(e) => Err(format!("{} {e}:\n{}", self.name, self.log_text())),
            Ok(()) if !alive => Err(format!(
                "{} exited at start:\n{}",
                self.name,
                self.log_text()
            )),
            Ok(()) => Ok(()),
        }
    }

    /// Starts the node expecting it to refuse to run: its exit status, or None if it is
    /// still running after `within` (it is then killed).
    pub fn start_expecting_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        self.child = Some(self.spawn_logged());
        let st = self.wait_exit(within);
        if st.is_none() {
            self.kill9();
        }
        st
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn signal(&self, sig: &str) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(pid.to_string())
                .status();
        }
    }

    /// Waits for the process to exit by itself.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            let st = self.child.as_mut()?.try_wait();
            if let Ok(Some(st)) = st {
                self.child = None;
                return Some(st);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.redis_port)
    }

    /// A client with a bounded response timeout.
    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        let cfg = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_secs(10));
        redis::Client::open(self.url())
            .expect("client")
            .get_multiplexed_async_connection_with_config(&cfg)
            .await
            .expect("connect")
    }

    /// The node's view of group 1 from `/status`: (is_leader, leader name, first_index).
    pub fn status(&self) -> Option<(bool, Option<String>, u64)> {
        self.child.as_ref()?;
        let (line, body) = http_get_opt(self.http_port, "/status")?;
        if !line.contains("200") {
            return None;
        }
        let is_leader = body.contains("\"is_leader\":true");
        let leader = body
            .split("\"leader\":\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .map(str::to_string);
        let first = body
            .split("\"first_index\":")
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        Some((is_leader, leader, first))
    }
}

fn http_get_opt(port: u16, path: &str) -> Option<(String, String)> {
    TcpStream::connect(("127.0.0.1", port)).ok()?;
    Some(http_get(port, path))
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            // A stopped process cannot die of SIGKILL until continued on some systems.
            let _ = Command::new("kill")
                .arg("-CONT")
                .arg(pid.to_string())
                .status();
        }
        self.kill9();
    }
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    pub tmp: tempfile::TempDir,
}

impl Cluster {
    /// Starts `n` nodes named n1..nN with `extra` flags on each (one shard unless `extra`
    /// says `--initial-shards`).
    pub fn start(n: usize, extra: &[&str]) -> Cluster {
        Cluster::start_with_env(n, extra, &[])
    }

    /// As `start`, with environment variables for every node (set per process: changing
    /// this test process's environment would race with other tests spawning processes).
    pub fn start_with_env(n: usize, extra: &[&str], env: &[(&str, &str)]) -> Cluster {
        let mut extra: Vec<&str> = extra.to_vec();
        if !extra.contains(&"--initial-shards") {
            extra.extend(["--initial-shards", "1"]);
        }
        let tmp = tempfile::tempdir().expect("temp dir");
        // Held until all are picked, so no two nodes get the same port (a released port can
        // come back from the next bind to port 0).
        let held: Vec<std::net::TcpListener> = (0..2 * n)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port"))
            .collect();
        let port = |i: usize| held[i].local_addr().expect("local addr").port();
        let ports: Vec<(u16, u16)> = (0..n).map(|i| (port(2 * i), port(2 * i + 1))).collect();
        drop(held);
        let cluster = (0..n)
            .map(|i| format!("n{}=127.0.0.1:{}", i + 1, ports[i].1))
            .collect::<Vec<_>>()
            .join(",");
        let mut nodes: Vec<Node> = (0..n)
            .map(|i| Node {
                name: format!("n{}", i + 1),
                redis_port: ports[i].0,
                http_port: ports[i].1,
                dir: tmp.path().join(format!("n{}", i + 1)),
                log: tmp.path().join(format!("n{}.log", i + 1)),
                cluster: cluster.clone(),
                extra: extra.iter().map(|s| s.to_string()).collect(),
                env: env
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                child: None,
            })
            .collect();
        for node in &mut nodes {
            // A free port can be taken between picking it and the node binding it (another
            // process's outgoing connection, say). The Redis port is no part of the cluster's
            // membership, so the first start may move it.
            for attempt in 1.. {
                match node.try_spawn() {
                    Ok(()) => break,
                    Err(e)
                        if attempt < 3
                            && e.contains(&format!(
                                ":{}: Address already in use",
                                node.redis_port
                            )) =>
                    {
                        node.kill9();
                        node.redis_port = free_port();
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        }
        Cluster { nodes, tmp }
    }

    /// Starts one more node, named after its position, that joins the running cluster
    /// through node `via` (`--join`); returns its index.
    pub fn join_node(&mut self, via: usize, extra: &[&str]) -> usize {
        let i = self.nodes.len();
        let name = format!("n{}", i + 1);
        let mut args = vec![
            "--join".to_string(),
            format!("127.0.0.1:{}", self.nodes[via].http_port),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut node = Node {
            name: name.clone(),
            redis_port: free_port(),
            http_port: free_port(),
            dir: self.tmp.path().join(&name),
            log: self.tmp.path().join(format!("{name}.log")),
            cluster: String::new(),
            extra: args,
            env: self.nodes[via].env.clone(),
            child: None,
        };
        node.spawn();
        self.nodes.push(node);
        i
    }

    /// Index of the node that reports itself leader (checked on every running node).
    pub fn leader(&self) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.status().is_some_and(|(is_leader, _, _)| is_leader))
    }

    /// Index of the node that leads the metadata group (by its own `/status`), waiting up to
    /// 15 s for one.
    pub fn meta_leader(&self) -> usize {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            for (i, n) in self
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| n.is_running())
            {
                let (_, body) = http_get(n.http_port, "/status");
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) {
                    if v["meta"]["leader"].as_str() == Some(n.name.as_str()) {
                        return i;
                    }
                }
            }
            assert!(Instant::now() < deadline, "no metadata leader");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn wait_leader(&self, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            if let Some(i) = self.leader() {
                return i;
            }
            if Instant::now() > deadline {
                panic!("no leader within {within:?}\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until every running node reports every shard it hosts has a leader.
    pub fn wait_ready(&self, within: Duration) {
        let deadline = Instant::now() + within;
        for n in self.nodes.iter().filter(|n| n.child.is_some()) {
            while !http_get_opt(n.http_port, "/ready")
                .is_some_and(|(line, _)| line.contains(" 200 "))
            {
                if Instant::now() > deadline {
                    panic!("{} not ready within {within:?}\n{}", n.name, self.logs());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| {
                let text = n.log_text();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("--- {} ---\n{}\n", n.name, tail.join("\n"))
            })
            .collect()
    }
}

/// A failing test shows what the nodes were saying when it gave up (CI keeps no files).
impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("node logs (last lines):\n{}", self.logs());
        }
    }
}
