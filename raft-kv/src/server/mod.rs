//! The Redis-protocol server: listener, connections, and connection-level commands.
//!
//! - `conn`: one task per connection: read, parse, execute, reply (pipelined, batched writes),
//!   MULTI/EXEC, blocking commands, pub/sub delivery.
//! - `admin`: connection and server commands (`Kind::Server` in the command table).
//! - `clients`, `pubsub`, `settings`, `blocked` (FIFO queues of blocked clients): shared
//!   state. `info`: INFO. `http`: the admin HTTP port.

pub mod acl;
pub mod acl_cmd;
pub mod admin;
pub mod admin_api;
pub mod admin_requests;
pub mod blocked;
pub mod client_stream;
pub mod clients;
pub mod cluster;
pub mod command_info;
pub mod conn;
pub mod http;
pub mod info;
pub mod node_rpc;
pub mod pubsub;
pub mod settings;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{Config, RouteMode};
use crate::meta::{self, MetaMachine, MetaState, MetaView, NodeMeta, META_GROUP};
use crate::metrics::Metrics;
use crate::raftstore::auth::ClusterSecret;
use crate::raftstore::dial::Dialer;
use crate::raftstore::log_engine::RocksLogEngine;
use crate::raftstore::members::{
    format_cluster, identity_exists, load_or_init_identity, raft_id, Member,
};
use crate::raftstore::peer_storage::ApplyState;
use crate::raftstore::quarantine::{self, StoreError};
use crate::raftstore::runtime::{self, StartOptions};
use crate::raftstore::transport::Transport;
use crate::routing::proxy::Proxy;
use crate::routing::{Layout, ShardSpec};
use crate::storage::{Engine, EngineOptions};
use crate::store::{self, Store};
use crate::tls::Tls;
use blocked::Blocked;
use client_stream::ClientStream;
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
    pub metrics: Arc<Metrics>,
    /// Requests slower than this are logged (`--slow-request-ms`; 0 = off).
    pub slow_request: Option<Duration>,
    /// This node's Raft id.
    pub node_id: u64,
    pub settings: Settings,
    pub clients: Clients,
    pub pubsub: PubSub,
    /// Clients blocked on keys, in the order they blocked.
    pub blocked: Arc<Blocked>,
    pub stats: ServerStats,
    pub started: Instant,
    pub started_unix: u64,
    pub last_save: AtomicU64,
    pub run_id: String,
    pub redis_addr: SocketAddr,
    pub http_port: u16,
    pub data_dir: PathBuf,
    /// Proxy or redirect for requests of non-cluster-aware connections.
    pub route_mode: RouteMode,
    /// Required on node-to-node gRPC and the admin HTTP routes when set.
    pub cluster_secret: ClusterSecret,
    /// The latest cluster metadata this node knows.
    pub meta: Arc<MetaView>,
    /// Metadata proposals and shard-group requests to peers (admin API).
    pub cluster: Arc<meta::driver::Cluster>,
    /// ACL users (from the metadata) and the ACL log.
    pub acl: acl::Acl,
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

    /// Cluster members (this node included) that are not removed, from the metadata.
    pub fn members(&self) -> Vec<Member> {
        self.meta.current().members()
    }

    /// The ACL users this node enforces now.
    pub fn users(&self) -> Arc<acl::Users> {
        self.acl.users(&self.meta, || self.settings.requirepass())
    }

    pub fn node_name(&self) -> String {
        self.meta.current().name_of(self.node_id)
    }

    /// `host:port` clients should use for this node's Redis port: the host of its cluster
    /// address (reachable by peers, unlike a wildcard bind address).
    pub fn advertised_redis_addr(&self) -> String {
        let host = self
            .meta
            .current()
            .node(self.node_id)
            .and_then(|m| m.addr.rsplit_once(':').map(|(h, _)| h.to_string()))
            .unwrap_or_else(|| self.redis_addr.ip().to_string());
        format!("{host}:{}", self.redis_addr.port())
    }

    /// The Redis address of node `id` (None while a peer has not told us yet).
    pub fn redis_addr_of(&self, id: u64) -> Option<String> {
        if id == self.node_id {
            return Some(self.advertised_redis_addr());
        }
        self.store.proxy().and_then(|p| p.redis_addr(id))
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
    config.members()?;
    config.raft_options()?;
    let threads = config.worker_threads.filter(|&n| n > 0).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .thread_name("raft-kv-worker")
        .build()
        .map_err(|e| format!("cannot start the runtime: {}", io_text(&e)))?;
    let result = rt.block_on(serve(config));
    // Drop the remaining tasks (and their handles on the engines) before returning, so the
    // databases close while no other thread can touch them.
    rt.shutdown_timeout(Duration::from_secs(5));
    result
}

/// Opens the state machine and the Raft log and checks them: the whole log, every group's
/// apply state and range, the metadata this node keeps.
fn open_stores(
    data_dir: &std::path::Path,
    config: &Config,
) -> Result<(Arc<Engine>, Arc<RocksLogEngine>), StoreError> {
    let engine = Engine::open(
        &data_dir.join("kv"),
        EngineOptions {
            block_cache_bytes: config.block_cache_mb.max(1) << 20,
            // The Raft log is synced; the state machine replays from it after a crash.
            sync_writes: false,
            write_buffer_bytes: config.write_buffer_mb.max(1) << 20,
        },
    )
    .map_err(|e| {
        StoreError::from_text(format!(
            "cannot open data directory {}: {e}",
            data_dir.display()
        ))
    })?;
    let checked = |r: Result<(), String>| r.map_err(StoreError::from_text);
    for group in ApplyState::list(&engine).map_err(StoreError::from_text)? {
        checked(ApplyState::load(&engine, group).map(drop))?;
        checked(crate::raftstore::split::RangeState::load(&engine, group).map(drop))?;
    }
    checked(meta::load_cache(&engine).map(drop))?;
    let log = RocksLogEngine::open(&data_dir.join("raft"))?;
    log.verify()?;
    Ok((Arc::new(engine), Arc::new(log)))
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
    let secret = ClusterSecret::new(config.cluster_secret()?);
    let tls = match config.tls_files()? {
        Some(files) => Some(Tls::load(&files)?),
        None => None,
    };
    let dialer = Dialer::new(tls.as_ref().map(|t| t.dial.clone()));
    // A first start with --join asks the cluster to add this node and starts from its
    // metadata; later starts find the directory initialised and skip this.
    let joined_meta = match &config.join {
        Some(seed) if !identity_exists(&data_dir) => {
            let me = config
                .members()?
                .into_iter()
                .next()
                .ok_or("no member for this node")?;
            tracing::info!(seed = %seed, addr = %me.addr, "joining a running cluster");
            Some(meta::join::join(seed, &me, &secret, &dialer).await?)
        }
        _ => None,
    };
    let given = match &joined_meta {
        Some(s) => s.members(),
        None => config.members()?,
    };
    let identity = load_or_init_identity(
        &data_dir,
        &config.node_id,
        given,
        config.initial_shards(),
        joined_meta.is_some(),
    )?;
    let members = identity.members;
    let node_id = raft_id(&config.node_id);
    if identity.fresh {
        tracing::info!(
            cluster = %format_cluster(&members),
            shards = identity.initial_shards,
            "initialising a new data directory"
        );
    }
    // Every node derives the same layout: members in name order, not `--cluster` order.
    let mut by_name: Vec<&Member> = members.iter().collect();
    by_name.sort_by(|a, b| a.name.cmp(&b.name));
    // A directory from before sharding has one group on every member: keep it that way.
    let replicas = if identity.legacy {
        members.len()
    } else {
        crate::routing::layout::REPLICATION_FACTOR
    };
    let layout = Layout::initial_with_replicas(
        &by_name.iter().map(|m| m.id).collect::<Vec<_>>(),
        identity.initial_shards,
        replicas,
    )?;
    // Stores that fail a check are set aside and this node's replicas rebuilt from its
    // peers (`raftstore::quarantine`); with no peer there is nothing to rebuild from.
    let can_rebuild = members.iter().any(|m| m.id != node_id);
    let mut rebuild = match quarantine::load_marker(&data_dir)? {
        Some(m) if !m.moved => Some(quarantine::set_aside(&data_dir, &m.reason)?),
        Some(m) => Some(m.token),
        None => None,
    };
    let (engine, log) = match open_stores(&data_dir, &config) {
        Ok(stores) => stores,
        Err(e) if e.corrupt && can_rebuild => {
            tracing::error!(error = %e.text, "this node's data failed a check");
            rebuild = Some(quarantine::set_aside(&data_dir, &e.text)?);
            open_stores(&data_dir, &config).map_err(|e| e.text)?
        }
        Err(e) if e.corrupt => {
            return Err(format!(
                "{} (this node has no peer to rebuild its data from: restore the data \
                 directory from a backup)",
                e.text
            ))
        }
        Err(e) => return Err(e.text),
    };
    if can_rebuild {
        // Corruption met at run time (a bad block of an SST, say) stops the node before
        // it serves or applies anything from it; the next start rebuilds it.
        let dir = data_dir.clone();
        crate::storage::on_corruption(move |what| {
            tracing::error!(
                error = %what,
                "corrupt data read; stopping: the next start sets the stores aside and rebuilds this node's replicas from its peers"
            );
            if let Err(e) = quarantine::mark(&dir, what) {
                tracing::error!(error = %e, "cannot mark the data directory for a rebuild");
            }
            std::process::exit(1);
        });
    }
    if rebuild.is_some() {
        let addrs: Vec<String> = members
            .iter()
            .filter(|m| m.id != node_id)
            .map(|m| m.addr.clone())
            .collect();
        tracing::warn!("rebuilding this node's replicas: asking peers for the cluster's metadata");
        let s = meta::join::fetch(&addrs, node_id, &secret, &dialer).await?;
        meta::store_cache(&engine, &s)?;
    }
    // The metadata: what this node last knew, else the new cluster's (the same everywhere).
    let member_ids: Vec<u64> = by_name.iter().map(|m| m.id).collect();
    let meta_members = meta::meta_replicas(&member_ids, config.meta_replicas);
    let initial_meta = MetaState::initial(
        by_name
            .iter()
            .map(|m| NodeMeta {
                id: m.id,
                name: m.name.clone(),
                addr: m.addr.clone(),
                state: meta::NodeState::Up,
            })
            .collect(),
        &layout,
        meta_members.clone(),
    );
    if let Some(s) = &joined_meta {
        meta::store_cache(&engine, s)?;
    }
    let known = match meta::load_cache(&engine)? {
        Some(s) if s.version >= initial_meta.version => s,
        _ => initial_meta.clone(),
    };
    let layout = known.layout()?;
    let view = MetaView::new(known.clone());
    view.hold_replicas(rebuild.is_some());
    // A learner being added (a metadata migration) starts like the sync task creates it:
    // the voters it would bootstrap with are never itself.
    let meta_group = if rebuild.is_none()
        && (known.meta_replicas.contains(&node_id) || known.meta_learners.contains(&node_id))
    {
        let spec = ShardSpec {
            id: META_GROUP,
            first_slot: 0,
            last_slot: 0,
            epoch: 0,
            replicas: known.meta_replicas.clone(),
            learners: known.meta_learners.clone(),
            conf_ver: 1,
            bootstrap: known.meta_replicas.clone(),
        };
        Some((spec, {
            let m = MetaMachine::load(&engine, initial_meta, view.clone())?;
            // A learner that never got its snapshot has only a seed, not the metadata.
            if known.meta_learners.contains(&node_id) && !m.from_disk() {
                m.await_snapshot()
            } else {
                m
            }
        }))
    } else {
        None
    };
    let stats = Arc::new(store::StoreStats::default());
    let metrics = Arc::new(Metrics::new());
    // Peers: every node the metadata knows (joined ones included) and the --cluster list.
    let mut peers: Vec<(u64, String)> = Vec::new();
    for m in known.members().into_iter().chain(members.iter().cloned()) {
        if m.id != node_id && !peers.iter().any(|(id, _)| *id == m.id) {
            peers.push((m.id, m.addr));
        }
    }
    let raft = runtime::start(
        StartOptions {
            metrics: metrics.clone(),
            node_id,
            groups: known
                .shards
                .iter()
                .filter(|s| rebuild.is_none() && s.has_replica(node_id))
                .cloned()
                .collect(),
            meta: meta_group,
            stale_slots: known.shards.clone(),
            tombstones: known.tombstones.clone(),
            fresh: identity.fresh,
            opts: config.raft_options()?,
            engine: engine.clone(),
            log,
            stats: stats.clone(),
        },
        |inbox| {
            Some(Transport::start(
                &peers,
                inbox,
                secret.clone(),
                dialer.clone(),
            ))
        },
    )?;
    let opts = config.raft_options()?;
    // Even a single node has one: nodes may join it later.
    let proxy = Proxy::new(
        &peers,
        opts.request_timeout + Duration::from_secs(1),
        secret.clone(),
        dialer,
    )?;
    tokio::spawn(proxy.clone().learn_addresses(view.clone()));
    let proxy = Some(proxy);
    let store = Store::new(
        engine.clone(),
        raft.clone(),
        stats,
        layout,
        proxy,
        metrics.clone(),
    );

    tokio::spawn(meta::sync::run(view.clone(), store.clone()));
    let cluster = Arc::new(meta::driver::Cluster {
        store: store.clone(),
        view: view.clone(),
        metrics: metrics.clone(),
        down_after: Duration::from_secs(config.node_down_after_secs.max(1)),
        started: Instant::now(),
        load: Default::default(),
        policy: {
            let (split_size, split_ops) = config.split_thresholds();
            meta::balance::Policy {
                split_size,
                split_ops,
            }
        },
    });
    tokio::spawn(meta::driver::run(cluster.clone()));
    if let Some(token) = rebuild {
        tokio::spawn(meta::rebuild::run(cluster.clone(), data_dir.clone(), token));
    }
    tokio::spawn(meta::heartbeat::run(cluster.clone()));

    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on {redis_addr}: {}", io_text(&e)))?;
    let (shutdown, _) = watch::channel(false);
    let now_unix = store::now_ms() / 1000;
    let blocked = Arc::new(Blocked::default());
    // Subscribed before any client can block, so no touch goes unseen.
    tokio::spawn(blocked.clone().run(store.subscribe_touched()));
    let srv = Arc::new(Server {
        store: store.clone(),
        metrics: metrics.clone(),
        slow_request: (config.slow_request_ms > 0)
            .then(|| Duration::from_millis(config.slow_request_ms)),
        node_id,
        settings: Settings::new(
            config.redis_port,
            &config.bind,
            &data_dir.display().to_string(),
            config.requirepass.as_deref(),
            config.maxclients,
        ),
        clients: Clients::default(),
        pubsub: PubSub::default(),
        blocked,
        stats: ServerStats::default(),
        started: Instant::now(),
        started_unix: now_unix,
        last_save: AtomicU64::new(now_unix),
        run_id: random_run_id(),
        redis_addr: local,
        http_port: config.port,
        data_dir: data_dir.clone(),
        route_mode: config.route_mode,
        cluster_secret: secret.clone(),
        meta: view,
        cluster,
        acl: acl::Acl::default(),
        shutdown,
    });

    tokio::spawn(acl::reap_clients(srv.clone()));

    tokio::spawn(store::background::run_active_expiry(store.clone()));
    let gc_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let gc = {
        let engine = engine.clone();
        let stop = gc_stop.clone();
        std::thread::Builder::new()
            .name("gc".into())
            .spawn(move || store::background::run_gc(engine, stop))
            .map_err(|e| format!("cannot start the garbage sweeper: {e}"))?
    };
    tokio::spawn(http::serve(
        http_listener,
        tls.as_ref().map(|t| t.node.clone()),
        srv.clone(),
        raft.transport.clone(),
    ));
    tokio::spawn(watch_signals(srv.clone()));

    tracing::info!(
        redis = %redis_addr,
        http = %http_addr,
        data_dir = %data_dir.display(),
        node_id = %config.node_id,
        tls = tls.is_some(),
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
                    let local = stream.local_addr().map(|a| a.to_string()).unwrap_or_default();
                    let srv = srv.clone();
                    match &tls {
                        None => tasks.spawn(conn::handle(srv, ClientStream::Plain(stream), peer, local)),
                        Some(tls) => {
                            let acceptor = tls.redis.clone();
                            tasks.spawn(async move {
                                if let Some(s) = crate::tls::accept(&acceptor, stream, peer).await {
                                    conn::handle(srv, ClientStream::Tls(Box::new(s)), peer, local).await;
                                }
                            })
                        }
                    };
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
    hand_over_leadership(&srv).await;
    tracing::info!("shutting down: closing connections");
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(5), drain)
        .await
        .is_err()
    {
        tracing::warn!("connections did not finish within 5s; closing them");
        tasks.abort_all();
    }
    raft.shutdown().await;
    // Every thread using the engines must be gone before they are dropped: RocksDB torn
    // down under a live user thread is a use-after-free at exit.
    gc_stop.store(true, Ordering::Relaxed);
    let _ = tokio::task::spawn_blocking(move || gc.join()).await;
    if let Err(e) = engine.db().flush() {
        tracing::warn!(error = %e, "flush at shutdown failed");
    }
    tracing::info!("raft-kv stopped");
    Ok(())
}

/// Before stopping, a leader hands its groups to other voters so clients see no election
/// timeout (bounded: a stuck transfer does not hold the shutdown).
async fn hand_over_leadership(srv: &Server) {
    let raft = srv.store.raft();
    let led: Vec<(u64, u64)> = {
        let map = raft.status.read();
        map.iter()
            .filter(|(_, st)| st.is_leader)
            .filter_map(|(g, st)| {
                // Spread the groups over the other voters.
                let others: Vec<u64> = st
                    .voters
                    .iter()
                    .copied()
                    .filter(|v| *v != srv.node_id)
                    .collect();
                (!others.is_empty()).then(|| (*g, others[(*g as usize) % others.len()]))
            })
            .collect()
    };
    if led.is_empty() {
        return;
    }
    tracing::info!(
        groups = led.len(),
        "transferring leadership before shutdown"
    );
    for (g, to) in &led {
        raft.transfer_leader(*g, *to).await;
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline && led.iter().any(|(g, _)| raft.status(*g).is_leader) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
