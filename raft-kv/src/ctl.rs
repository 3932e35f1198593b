//! `raft-kv ctl ...`: the admin API from a shell. Prints the JSON answers; a migration is
//! followed step by step until it finishes (or `--no-wait`).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use rustls::pki_types::ServerName;
use serde_json::Value;

#[derive(Parser, Debug)]
#[command(
    name = "raft-kv ctl",
    about = "Administer a RaftKV cluster through a node's --port"
)]
pub struct CtlArgs {
    /// Admin address (host:port) of any node.
    #[arg(long, default_value = "127.0.0.1:5001")]
    pub addr: String,
    /// File holding the cluster secret (or RAFTKV_CLUSTER_SECRET).
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
    /// Talk HTTPS, trusting this CA (for nodes started with TLS certificates).
    #[arg(long)]
    pub tls_ca_cert_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: CtlCommand,
}

#[derive(Subcommand, Debug)]
pub enum CtlCommand {
    /// Nodes with their state and replica counts.
    Nodes,
    /// Every shard: slots, epoch, replicas, leader.
    Shards,
    /// One shard with its live replication progress.
    Shard { id: String },
    /// Scheduling operations, newest first.
    Operations,
    /// Moves a shard's replica from one node to another, online.
    Migrate {
        id: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        /// Return once accepted instead of following the migration.
        #[arg(long)]
        no_wait: bool,
        /// Give up following after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout_secs: u64,
    },
    /// Splits a shard: the new shard takes the upper slots, on the same replicas.
    Split {
        id: String,
        /// First slot of the new shard (default: the middle of the range).
        #[arg(long)]
        at_slot: Option<u16>,
        #[arg(long)]
        no_wait: bool,
        #[arg(long, default_value_t = 120)]
        timeout_secs: u64,
    },
    /// Creates a shard from some slots of an existing one, on the given nodes.
    Create {
        id: String,
        /// Comma-separated node ids.
        #[arg(long, value_delimiter = ',')]
        nodes: Vec<String>,
        /// First and last slot: `--slots 4096-8191` (else `--from`).
        #[arg(long, conflicts_with = "from")]
        slots: Option<String>,
        /// Take the upper half of this shard.
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        no_wait: bool,
        #[arg(long, default_value_t = 600)]
        timeout_secs: u64,
    },
    /// Merges two adjacent shards on the same nodes; `source` goes into `target`.
    Merge {
        target: String,
        source: String,
        #[arg(long)]
        no_wait: bool,
        #[arg(long, default_value_t = 120)]
        timeout_secs: u64,
    },
    /// Makes a voting replica the shard's leader.
    TransferLeader {
        id: String,
        #[arg(long)]
        to: String,
    },
    /// Moves every replica off a node, then removes it from the cluster.
    Decommission {
        node: String,
        /// Return once accepted instead of following it.
        #[arg(long)]
        no_wait: bool,
        #[arg(long, default_value_t = 1800)]
        timeout_secs: u64,
    },
    /// Shows the scheduler (paused or not, its recent decisions), or pauses/resumes it.
    Scheduler {
        #[arg(long, conflicts_with = "resume")]
        pause: bool,
        #[arg(long)]
        resume: bool,
    },
}

/// Runs a ctl command; Err is the message to print before exiting with status 1.
pub fn run(args: CtlArgs) -> Result<(), String> {
    let secret = match &args.secret_file {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| format!("cannot read {}: {e}", p.display()))?
                .trim()
                .to_string(),
        ),
        None => std::env::var("RAFTKV_CLUSTER_SECRET").ok(),
    };
    let tls = match &args.tls_ca_cert_file {
        Some(ca) => Some(crate::tls::client_config(ca)?),
        None => None,
    };
    let api = Api {
        addr: args.addr,
        secret,
        tls,
    };
    let print = |v: Value| {
        println!(
            "{}",
            serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string())
        )
    };
    match args.command {
        CtlCommand::Nodes => print(api.call("GET", "/admin/nodes", None)?),
        CtlCommand::Shards => print(api.call("GET", "/admin/shards", None)?),
        CtlCommand::Shard { id } => print(api.call("GET", &format!("/admin/shard/{id}"), None)?),
        CtlCommand::Operations => print(api.call("GET", "/admin/operations", None)?),
        CtlCommand::TransferLeader { id, to } => print(api.call(
            "POST",
            &format!("/admin/shard/{id}/transfer-leader"),
            Some(serde_json::json!({ "to": to })),
        )?),
        CtlCommand::Split {
            id,
            at_slot,
            no_wait,
            timeout_secs,
        } => {
            let body = match at_slot {
                Some(at) => serde_json::json!({ "at_slot": at }),
                None => serde_json::json!({}),
            };
            let v = api.call("POST", &format!("/admin/shard/{id}/split"), Some(body))?;
            let op = v["operation"]
                .as_u64()
                .ok_or("no operation id in the reply")?;
            println!(
                "operation {op}: splitting {id} at slot {} into {}",
                v["at_slot"], v["new_shard"]
            );
            if !no_wait {
                follow(&api, op, Duration::from_secs(timeout_secs))?;
            }
        }
        CtlCommand::Create {
            id,
            nodes,
            slots,
            from,
            no_wait,
            timeout_secs,
        } => {
            let mut body = serde_json::json!({ "shard_id": id, "nodes": nodes });
            match (slots, from) {
                (Some(r), _) => {
                    let (a, b) = r
                        .split_once('-')
                        .and_then(|(a, b)| Some((a.parse::<u16>().ok()?, b.parse::<u16>().ok()?)))
                        .ok_or("--slots takes FIRST-LAST, such as 4096-8191")?;
                    body["slots"] = serde_json::json!([a, b]);
                }
                (None, Some(f)) => body["from"] = serde_json::json!(f),
                (None, None) => return Err("give --slots FIRST-LAST or --from SHARD".into()),
            }
            let v = api.call("POST", "/admin/shard", Some(body))?;
            let op = v["operation"]
                .as_u64()
                .ok_or("no operation id in the reply")?;
            println!("operation {op}: creating {id} with slots {}", v["slots"]);
            if !no_wait {
                follow(&api, op, Duration::from_secs(timeout_secs))?;
            }
        }
        CtlCommand::Merge {
            target,
            source,
            no_wait,
            timeout_secs,
        } => {
            let body = serde_json::json!({ "sources": [target, source], "target": target });
            let v = api.call("POST", "/admin/shard/merge", Some(body))?;
            let op = v["operation"]
                .as_u64()
                .ok_or("no operation id in the reply")?;
            println!("operation {op}: merging {source} into {target}");
            if !no_wait {
                follow(&api, op, Duration::from_secs(timeout_secs))?;
            }
        }
        CtlCommand::Decommission {
            node,
            no_wait,
            timeout_secs,
        } => {
            let v = api.call("POST", &format!("/admin/node/{node}/decommission"), None)?;
            let op = v["operation"]
                .as_u64()
                .ok_or("no operation id in the reply")?;
            println!("operation {op}: decommissioning {node}");
            if !no_wait {
                follow(&api, op, Duration::from_secs(timeout_secs))?;
            }
        }
        CtlCommand::Scheduler { pause, resume } => {
            if pause || resume {
                print(api.call(
                    "POST",
                    "/admin/scheduler",
                    Some(serde_json::json!({ "paused": pause })),
                )?);
            } else {
                print(api.call("GET", "/admin/scheduler", None)?);
            }
        }
        CtlCommand::Migrate {
            id,
            from,
            to,
            no_wait,
            timeout_secs,
        } => {
            let v = api.call(
                "POST",
                &format!("/admin/shard/{id}/migrate"),
                Some(serde_json::json!({ "from": from, "to": to })),
            )?;
            let op = v["operation"]
                .as_u64()
                .ok_or("no operation id in the reply")?;
            println!("operation {op}: moving {id} from {from} to {to}");
            if !no_wait {
                follow(&api, op, Duration::from_secs(timeout_secs))?;
            }
        }
    }
    Ok(())
}

/// Prints each new step of operation `op` until it is done or failed.
fn follow(api: &Api, op: u64, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        let v = api.call("GET", "/admin/operations", None)?;
        let o = v["operations"]
            .as_array()
            .and_then(|ops| ops.iter().find(|o| o["id"].as_u64() == Some(op)))
            .cloned()
            .ok_or_else(|| format!("operation {op} not found"))?;
        let line = format!(
            "{} {}",
            o["step"].as_str().unwrap_or(""),
            o["message"].as_str().unwrap_or("")
        );
        if line != last {
            println!("  {}", line.trim_end());
            last = line;
        }
        match o["state"].as_str() {
            Some("done") => {
                println!("operation {op} done");
                return Ok(());
            }
            Some("failed") => return Err(format!("operation {op} failed: {}", o["message"])),
            _ => std::thread::sleep(Duration::from_millis(300)),
        }
    }
    Err(format!(
        "operation {op} still running after {}s; follow it with `raft-kv ctl operations`",
        timeout.as_secs()
    ))
}

struct Api {
    addr: String,
    secret: Option<String>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// Sends `req` and reads the answer to the end of the connection. An end without TLS
/// close_notify after some data is still an answer (the server closed as asked).
fn exchange(mut s: impl Read + Write, req: &[u8]) -> std::io::Result<String> {
    s.write_all(req)?;
    let mut resp = Vec::new();
    match s.read_to_end(&mut resp) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !resp.is_empty() => {}
        Err(e) => return Err(e),
    }
    Ok(String::from_utf8_lossy(&resp).into_owned())
}

impl Api {
    /// One HTTP/1.1 request (Connection: close); the JSON answer, or the API's error text.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let addr = self
            .addr
            .to_socket_addrs()
            .map_err(|e| format!("bad address {}: {e}", self.addr))?
            .next()
            .ok_or_else(|| format!("bad address {}", self.addr))?;
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
            .map_err(|e| format!("cannot reach {}: {e}", self.addr))?;
        let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let auth = self
            .secret
            .as_ref()
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n{auth}Content-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        let resp = match &self.tls {
            None => exchange(s, req.as_bytes()),
            Some(cfg) => {
                let host = self.addr.rsplit_once(':').map_or(&*self.addr, |(h, _)| h);
                let name = ServerName::try_from(host.trim_matches(['[', ']']).to_string())
                    .map_err(|e| format!("bad host {host}: {e}"))?;
                let tls = rustls::ClientConnection::new(cfg.clone(), name)
                    .map_err(|e| format!("TLS to {}: {e}", self.addr))?;
                exchange(rustls::StreamOwned::new(tls, s), req.as_bytes())
            }
        }
        .map_err(|e| format!("no answer from {}: {e}", self.addr))?;
        let status: u16 = resp
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or("not an HTTP answer")?;
        let text = resp.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        let v: Value = serde_json::from_str(text).unwrap_or(Value::String(text.to_string()));
        if (200..300).contains(&status) {
            Ok(v)
        } else {
            let why = v["error"]
                .as_str()
                .map_or_else(|| text.trim().to_string(), str::to_string);
            Err(format!("HTTP {status}: {why}"))
        }
    }
}
