//! The Redis-protocol server: listener, connections, and connection-level commands.
//!
//! - `conn`: one task per connection: read, parse, execute, reply (pipelined, batched writes),
//!   MULTI/EXEC, blocking commands, pub/sub delivery.
//! - `admin`: connection and server commands (`Kind::Server` in the command table).
//! - `clients`, `pubsub`, `settings`: shared state. `info`: INFO. `http`: the admin HTTP port.

pub mod admin;
pub mod clients;
pub mod command_info;
pub mod conn;
pub mod http;
pub mod info;
pub mod pubsub;
pub mod settings;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::storage::{Engine, EngineOptions};
use crate::store::{self, Store};
use clients::Clients;
use pubsub::PubSub;
use settings::Settings;

/// The Redis version we report and behave as.
pub const REDIS_VERSION: &str = "7.0.15";

/// Counters for INFO stats.
#[derive(Default)]
pub struct ServerStats {
    pub connections_received: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub commands_processed: AtomicU64,
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
    pub error_replies: AtomicU64,
    pub pubsub_messages: AtomicU64,
}

impl ServerStats {
    pub fn reset(&self) {
        for c in [
            &self.connections_received,
            &self.rejected_connections,
            &self.commands_processed,
            &self.net_input_bytes,
            &self.net_output_bytes,
            &self.error_replies,
            &self.pubsub_messages,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }
}

/// State shared by every connection.
pub struct Server {
    pub store: Arc<Store>,
    pub settings: Settings,
    pub clients: Clients,
    pub pubsub: PubSub,
    pub stats: ServerStats,
    pub started: Instant,
    pub started_unix: u64,
    pub last_save: AtomicU64,
    pub run_id: String,
    pub redis_addr: SocketAddr,
    pub http_port: u16,
    pub data_dir: PathBuf,
    shutdown: watch::Sender<bool>,
}

impl Server {
    /// Starts a graceful shutdown: stop accepting, close connections, flush, exit.
    pub fn request_shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    pub fn shutdown_receiver(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}

/// `io::Error` text without the `(os error N)` suffix, as a user-facing message.
fn io_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn random_run_id() -> String {
    (0..40)
        .map(|_| {
            let d = rand::random::<u8>() % 16;
            char::from_digit(d as u32, 16).unwrap_or('0')
        })
        .collect()
}

/// Runs the node until it is told to stop.
pub fn run(config: Config) -> Result<(), String> {
    config.validate_cluster()?;
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .thread_name("raft-kv-worker")
        .build()
        .map_err(|e| format!("cannot start the runtime: {}", io_text(&e)))?;
    rt.block_on(serve(config))
}

async fn bind(addr: &str) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {}", io_text(&e)))
}

async fn serve(config: Config) -> Result<(), String> {
    let redis_addr = format!("{}:{}", config.bind, config.redis_port);
    let http_addr = format!("{}:{}", config.bind, config.port);
    let listener = bind(&redis_addr).await?;
    let http_listener = bind(&http_addr).await?;

    let data_dir = config.data_dir();
    std::fs::create_dir_all(&data_dir).map_err(|e| {
        format!(
            "cannot create data directory {}: {}",
            data_dir.display(),
            io_text(&e)
        )
    })?;
    let engine = Engine::open(
        &data_dir,
        EngineOptions {
            block_cache_bytes: config.block_cache_mb.max(1) << 20,
            sync_writes: true,
        },
    )
    .map_err(|e| format!("cannot open data directory {}: {e}", data_dir.display()))?;
    let engine = Arc::new(engine);
    let store = Store::start(engine.clone()).map_err(|e| format!("cannot start the store: {e}"))?;

    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on {redis_addr}: {}", io_text(&e)))?;
    let (shutdown, _) = watch::channel(false);
    let now_unix = store::now_ms() / 1000;
    let srv = Arc::new(Server {
        store: store.clone(),
        settings: Settings::new(
            config.redis_port,
            &config.bind,
            &data_dir.display().to_string(),
            config.requirepass.as_deref(),
            config.maxclients,
        ),
        clients: Clients::default(),
        pubsub: PubSub::default(),
        stats: ServerStats::default(),
        started: Instant::now(),
        started_unix: now_unix,
        last_save: AtomicU64::new(now_unix),
        run_id: random_run_id(),
        redis_addr: local,
        http_port: config.port,
        data_dir: data_dir.clone(),
        shutdown,
    });

    tokio::spawn(store::background::run_active_expiry(store.clone()));
    {
        let engine = engine.clone();
        std::thread::Builder::new()
            .name("gc".into())
            .spawn(move || store::background::run_gc(engine))
            .map_err(|e| format!("cannot start the garbage sweeper: {e}"))?;
    }
    tokio::spawn(http::serve(http_listener, srv.clone()));
    tokio::spawn(watch_signals(srv.clone()));

    tracing::info!(
        redis = %redis_addr,
        http = %http_addr,
        data_dir = %data_dir.display(),
        node_id = %config.node_id,
        "raft-kv {} ready (Redis {REDIS_VERSION} protocol)",
        env!("CARGO_PKG_VERSION")
    );

    let mut shutdown_rx = srv.shutdown_receiver();
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown_rx.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    srv.stats.connections_received.fetch_add(1, Ordering::Relaxed);
                    let _ = stream.set_nodelay(true);
                    tasks.spawn(conn::handle(srv.clone(), stream, peer));
                }
                Err(e) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    drop(listener);
    tracing::info!("shutting down: closing connections");
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(5), drain)
        .await
        .is_err()
    {
        tracing::warn!("connections did not finish within 5s; closing them");
        tasks.abort_all();
    }
    if let Err(e) = engine.db().flush() {
        tracing::warn!(error = %e, "flush at shutdown failed");
    }
    tracing::info!("raft-kv stopped");
    Ok(())
}

async fn watch_signals(srv: Arc<Server>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::warn!("cannot install signal handlers");
            return;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    srv.request_shutdown();
}
