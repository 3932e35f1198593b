//! Integration-test harness: runs the real `raft-kv` binary on free loopback ports with a
//! temporary data directory, and talks to it with the `redis` crate, raw sockets or
//! `redis-cli`. The process is killed when the handle is dropped.

#![allow(dead_code)]

pub mod cluster;
pub mod load;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Every test body runs under this bound.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Retries `op` (a request that may hit an election) until it succeeds or `within` passes.
pub async fn retry<T, F, Fut>(within: Duration, mut op: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = redis::RedisResult<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        match op().await {
            Ok(v) => return v,
            Err(e) if Instant::now() < deadline => {
                eprintln!("retrying after: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("still failing after {within:?}: {e}"),
        }
    }
}

/// Waits up to 30 s for `port` to accept connections; Err if the process exits first or
/// the time runs out (the text says which).
pub fn wait_listening(port: u16, child: &mut Child) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("exited during startup: {status}"));
        }
        if Instant::now() >= deadline {
            return Err("did not start listening in 30s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Runs a redis-py script that prints `ok` when its checks pass; skipped (with a note) when
/// python3 or redis-py is missing.
pub fn run_redis_py(script: &str) {
    match std::process::Command::new(python3())
        .arg("-c")
        .arg(script)
        .output()
    {
        Ok(out) if String::from_utf8_lossy(&out.stderr).contains("No module named") => {
            eprintln!("note: redis-py not installed; skipping RedisCluster");
        }
        Ok(out) => assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "ok",
            "RedisCluster: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => eprintln!("note: python3 not installed; skipping RedisCluster"),
    }
}

/// The Python that has Debian's python3-redis (CI installs it): the system one, even when
/// another `python3` (pyenv, a venv) comes first on PATH.
pub fn python3() -> &'static str {
    if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

pub struct TestServer {
    child: Option<Child>,
    pub port: u16,
    pub http_port: u16,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    extra: Vec<String>,
}

impl TestServer {
    /// A server on a fresh temporary data directory.
    pub fn start() -> TestServer {
        Self::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> TestServer {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("data");
        let mut s = Self::start_in(&dir, extra);
        s._tmp = Some(tmp);
        s
    }

    /// A server on `dir` (kept after the server stops; for restart tests).
    pub fn start_in(dir: &Path, extra: &[&str]) -> TestServer {
        let mut s = TestServer {
            child: None,
            port: free_port(),
            http_port: free_port(),
            dir: dir.to_path_buf(),
            _tmp: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        s.spawn();
        // Another test's server may have taken a port between `free_port` and the bind: the
        // connect in `spawn` then reached that server and ours exited ("address in use").
        // Make sure ours is the one listening, with fresh ports otherwise.
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(100));
            match s.child.as_mut().map(|c| c.try_wait()) {
                Some(Ok(None)) => return s,
                _ => {
                    s.child = None;
                    s.port = free_port();
                    s.http_port = free_port();
                    s.spawn();
                }
            }
        }
        s
    }

    fn spawn(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_raft-kv"))
            .arg("--redis-port")
            .arg(self.port.to_string())
            .arg("--port")
            .arg(self.http_port.to_string())
            .arg("--data-dir")
            .arg(&self.dir)
            .arg("--log-level")
            .arg("warn")
            .args(&self.extra)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn raft-kv");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Err(e) = wait_listening(self.port, child) {
                panic!("raft-kv {e}");
            }
        }
    }

    /// SIGKILL, no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the binary again on the same ports and data directory.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Waits for the process to exit by itself (after SHUTDOWN or a signal).
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("redis client")
    }

    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        self.client()
            .get_multiplexed_async_connection()
            .await
            .expect("connect")
    }

    pub async fn conn_resp3(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(format!("{}?protocol=resp3", self.url()))
            .expect("redis client")
            .get_multiplexed_async_connection()
            .await
            .expect("connect")
    }

    pub fn raw(&self) -> Raw {
        Raw::connect(self.port)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A raw protocol connection (blocking std socket with timeouts).
pub struct Raw {
    pub stream: TcpStream,
    pending: Vec<u8>,
}

/// Length of the first complete RESP reply in `buf`, if there is one.
pub fn reply_len(buf: &[u8]) -> Option<usize> {
    fn line(buf: &[u8], from: usize) -> Option<(usize, &[u8])> {
        let rel = buf.get(from..)?.windows(2).position(|w| w == b"\r\n")?;
        Some((from + rel + 2, &buf[from + 1..from + rel]))
    }
    fn at(buf: &[u8], pos: usize) -> Option<usize> {
        let tag = *buf.get(pos)?;
        let (next, body) = line(buf, pos)?;
        let n: i64 = std::str::from_utf8(body).ok()?.parse().unwrap_or(-1);
        match tag {
            b'$' | b'=' | b'!' => {
                if n < 0 {
                    Some(next)
                } else {
                    let end = next + n as usize + 2;
                    (buf.len() >= end).then_some(end)
                }
            }
            b'*' | b'~' | b'>' | b'%' | b'|' => {
                let count = if tag == b'%' || tag == b'|' { n * 2 } else { n };
                let mut p = next;
                for _ in 0..count.max(0) {
                    p = at(buf, p)?;
                }
                Some(p)
            }
            _ => Some(next),
        }
    }
    at(buf, 0)
}

impl Raw {
    pub fn connect(port: u16) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        Raw {
            stream,
            pending: Vec::new(),
        }
    }

    /// Reads one complete reply (raw bytes), waiting up to 10 s.
    pub fn read_reply(&mut self) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 65536];
        loop {
            if let Some(n) = reply_len(&self.pending) {
                return self.pending.drain(..n).collect();
            }
            if Instant::now() > deadline {
                return std::mem::take(&mut self.pending);
            }
            match self.stream.read(&mut buf) {
                Ok(0) => return std::mem::take(&mut self.pending),
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return std::mem::take(&mut self.pending),
            }
        }
    }

    /// Sends a command and reads its one reply.
    pub fn call(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.send(bytes);
        self.read_reply()
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Reads until `expected` bytes arrived (or the peer closed, or 10 s passed).
    pub fn read_n(&mut self, expected: usize) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.pending);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 65536];
        while out.len() < expected && Instant::now() < deadline {
            match self.stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => break,
            }
        }
        out
    }

    /// Sends `bytes` and returns exactly the reply bytes expected (by length).
    pub fn roundtrip(&mut self, bytes: &[u8], expected: &[u8]) -> Vec<u8> {
        self.send(bytes);
        self.read_n(expected.len())
    }

    /// Whether the server closed the connection (EOF within 5 s).
    pub fn is_closed(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 1024];
        while Instant::now() < deadline {
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return true,
            }
        }
        false
    }
}

/// Encodes a command as a RESP multibulk.
pub fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Runs `redis-cli -p port args...`; `None` (with a note) when redis-cli isn't installed.
pub fn redis_cli(port: u16, args: &[&str]) -> Option<String> {
    match Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) => Some(String::from_utf8_lossy(&out.stdout).into_owned()),
        Err(_) => {
            eprintln!("note: redis-cli not installed; skipping the redis-cli part of this test");
            None
        }
    }
}

/// Runs `redis-cli` with `input` on stdin.
pub fn redis_cli_stdin(port: u16, args: &[&str], input: &str) -> Option<String> {
    let mut child = match Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(_) => {
            eprintln!("note: redis-cli not installed; skipping the redis-cli part of this test");
            return None;
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    let out = child.wait_with_output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// An HTTP GET on the admin port: (status line, body).
pub fn http_get(port: u16, path: &str) -> (String, String) {
    http_get_with(port, path, "")
}

/// An HTTP GET with extra header lines (each ending in `\r\n`): (status line, body).
pub fn http_get_with(port: u16, path: &str, headers: &str) -> (String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect http");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n")
            .as_bytes(),
    )
    .expect("write");
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    let status = resp.lines().next().unwrap_or("").to_string();
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// An HTTP/1.1 POST on the admin port: (status line, body). Errors (refused, timed out)
/// are returned rather than panicking, since fault-injection tests talk to flaky nodes.
pub fn http_post(port: u16, path: &str, body: &str) -> std::io::Result<(String, String)> {
    let mut s = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    )?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(
        format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )?;
    // Read until EOF (`Connection: close`) or until Content-Length bytes of body arrived,
    // whichever comes first, so a server keeping the connection open costs no timeout.
    let mut resp = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(head_end) = resp.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&resp[..head_end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if len.is_some_and(|len| resp.len() >= head_end + 4 + len) {
                break;
            }
        }
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => resp.extend_from_slice(&buf[..n]),
            Err(e) if resp.is_empty() => return Err(e),
            Err(_) => break,
        }
    }
    let resp = String::from_utf8_lossy(&resp);
    let status = resp.lines().next().unwrap_or("").to_string();
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    Ok((status, body))
}

/// A redis-server (no persistence) on a free loopback port, stopped on drop; None when
/// redis-server is not installed or does not come up.
pub struct RedisServer {
    child: Child,
    pub port: u16,
}

impl RedisServer {
    pub fn start() -> Option<RedisServer> {
        let port = free_port();
        let mut child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        if wait_listening(port, &mut child).is_err() {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        Some(RedisServer { child, port })
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
