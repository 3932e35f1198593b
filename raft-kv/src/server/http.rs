//! The node's `--port`: the HTTP admin API and the node-to-node gRPC service on one listener
//! (axum routes plain HTTP/1.1 and HTTP/2 requests; gRPC paths go to tonic).
//!
//! With a cluster secret, `/status`, `/admin/...` and `/debug/partition` need
//! `Authorization: Bearer <secret>` (health, readiness and metrics stay open for probes and
//! scrapers).
//!
//! Routes: `GET /health` (live), `GET /ready` (metadata reachable, every shard on this node
//! has a leader),
//! `GET /metrics` (Prometheus text), `GET /status` (JSON: groups, leaders, indexes), and with
//! `RAFTKV_FAULT_INJECTION=1` the test-only `POST /debug/partition` (body: comma-separated node
//! names to cut off both ways, `out:NAME` to stop sending to one, `in:NAME` to stop hearing
//! one, `drop30:NAME` to lose 30% of what is sent to one, `slow200:NAME` to hold it 200 ms;
//! empty heals).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::Server;
use crate::meta::META_GROUP;
use crate::raftstore::transport::{Partition, Transport};
use crate::tls::TlsListener;

#[derive(Clone)]
struct AppState {
    srv: Arc<Server>,
    transport: Option<Arc<Transport>>,
}

pub fn router(srv: Arc<Server>, transport: Option<Arc<Transport>>) -> Router {
    let node_srv = srv.clone();
    let state = AppState {
        srv,
        transport: transport.clone(),
    };
    let mut admin = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/status", get(status));
    if std::env::var("RAFTKV_FAULT_INJECTION").is_ok_and(|v| v == "1") {
        admin = admin
            .route("/debug/partition", post(partition))
            .route("/debug/failpoint", post(failpoint));
    }
    let admin = admin
        .with_state(state)
        .merge(super::admin_api::routes().with_state(node_srv.clone()));
    let app = match transport {
        Some(t) => tonic::service::Routes::new(t.service())
            .add_service(super::node_rpc::service(node_srv))
            .into_axum_router()
            .merge(admin),
        None => admin,
    };
    // Unknown paths are plain HTTP 404s, not gRPC "unimplemented" replies.
    app.fallback(|| async { (StatusCode::NOT_FOUND, "not found") })
}

/// Serves `--port`, over TLS when `tls` is given.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    srv: Arc<Server>,
    transport: Option<Arc<Transport>>,
) {
    let mut shutdown = srv.shutdown_receiver();
    let app = router(srv, transport);
    let stop = async move {
        let _ = shutdown.changed().await;
    };
    let served = match tls {
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
        }
        Some(acceptor) => match TlsListener::new(listener, acceptor) {
            Ok(l) => axum::serve(l, app).with_graceful_shutdown(stop).await,
            Err(e) => Err(e),
        },
    };
    if let Err(e) = served {
        tracing::error!(error = %e, "admin/gRPC server failed");
    }
}

fn name_of(srv: &Server, id: u64) -> String {
    srv.members()
        .iter()
        .find(|m| m.id == id)
        .map_or_else(|| id.to_string(), |m| m.name.clone())
}

/// With a cluster secret configured, admin routes need `Authorization: Bearer <secret>`.
pub(super) fn authorized(srv: &Server, headers: &HeaderMap) -> Result<(), (StatusCode, String)> {
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if srv.cluster_secret.matches(given) {
        Ok(())
    } else {
        Err((
            StatusCode::UNAUTHORIZED,
            "missing or wrong cluster secret (Authorization: Bearer <secret>)\n".into(),
        ))
    }
}

async fn status(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, (StatusCode, String)> {
    let srv = &st.srv;
    authorized(srv, &headers)?;
    let groups: Vec<serde_json::Value> = {
        let map = srv.store.raft().status.read();
        let mut ids: Vec<&u64> = map.keys().collect();
        ids.sort();
        ids.into_iter()
            .filter(|id| **id != META_GROUP)
            .filter_map(|id| map.get(id).map(|g| (id, g)))
            .map(|(id, g)| {
                serde_json::json!({
                    "id": id,
                    "leader": if g.leader == 0 { None } else { Some(name_of(srv, g.leader)) },
                    "is_leader": g.is_leader,
                    "term": g.term,
                    "commit_index": g.commit,
                    "applied_index": g.applied,
                    "first_index": g.first_index,
                    "last_index": g.last_index,
                    "voters": g.voters.iter().map(|v| name_of(srv, *v)).collect::<Vec<_>>(),
                })
            })
            .collect()
    };
    let meta = srv.store.raft().status.read().get(&META_GROUP).cloned();
    Ok(Json(serde_json::json!({
        "node_id": name_of(srv, srv.node_id),
        "redis_addr": srv.redis_addr.to_string(),
        "groups": groups,
        // Its stores were found corrupt: it holds no replica until every group dropped it.
        "rebuilding": srv.meta.replicas_held(),
        "meta": meta.map(|g| serde_json::json!({
            "leader": if g.leader == 0 { None } else { Some(name_of(srv, g.leader)) },
            "term": g.term,
            "applied_index": g.applied,
            "version": srv.meta.current().version,
        })),
    })))
}

/// Ready when the metadata is reachable (its group has a leader here, or a metadata replica
/// answered lately) and every shard hosted here has a leader, so requests can be served.
async fn ready(State(st): State<AppState>) -> (StatusCode, String) {
    let srv = &st.srv;
    let meta = srv.meta.current();
    let node = srv.node_id;
    let hosts_meta = meta.meta_replicas.contains(&node);
    let hosted: Vec<u64> = meta
        .shards
        .iter()
        .filter(|s| s.has_replica(node))
        .map(|s| s.id)
        .collect();
    let map = srv.store.raft().status.read().clone();
    let unavailable = |why: String| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
    };
    if hosts_meta && map.get(&META_GROUP).is_none_or(|g| g.leader == 0) {
        return unavailable("the metadata group has no leader".into());
    }
    if !hosts_meta {
        let seen = srv.store.proxy().is_some_and(|p| {
            meta.meta_replicas
                .iter()
                .any(|m| p.seen_within(*m, std::time::Duration::from_secs(5)))
        });
        if !seen {
            return unavailable("no metadata replica answered in the last 5s".into());
        }
    }
    let mut missing: Vec<String> = hosted
        .iter()
        .filter(|id| map.get(id).is_none_or(|g| g.leader == 0))
        .map(|id| format!("shard_{}", id - 1))
        .collect();
    if missing.is_empty() {
        return (StatusCode::OK, "ready\n".into());
    }
    missing.sort_unstable();
    unavailable(format!("no leader for {}", missing.join(", ")))
}

async fn metrics(State(st): State<AppState>) -> ([(&'static str, &'static str); 1], String) {
    let srv = st.srv.clone();
    // Gauges describing state are refreshed at scrape time; the disk and key estimates read
    // RocksDB properties, so keep them off the async workers.
    let text = tokio::task::spawn_blocking(move || {
        let m = &srv.metrics;
        let groups = srv.store.raft().status.read().clone();
        // One engine holds every shard of the node: its key estimate is shared out by each
        // shard's share of the data (evenly while nothing is flushed to measure).
        let engine = srv.store.engine();
        let keys = engine.estimate_keys() as f64;
        let layout = srv.store.layout();
        let sizes: std::collections::HashMap<u64, u64> = groups
            .keys()
            .filter_map(|id| layout.shard(*id))
            .map(|s| (s.id, engine.approximate_size(s.first_slot, s.last_slot)))
            .collect();
        let total: u64 = sizes.values().sum();
        let share = |id: u64| match sizes.get(&id) {
            Some(size) if total > 0 => *size as f64 / total as f64,
            Some(_) => 1.0 / sizes.len() as f64,
            None => 0.0,
        };
        for (id, g) in &groups {
            let shard = if *id == META_GROUP {
                "meta".to_string()
            } else {
                id.to_string()
            };
            m.raft_term.with_label_values(&[&shard]).set(g.term as i64);
            m.raft_commit_index
                .with_label_values(&[&shard])
                .set(g.commit as i64);
            m.raft_applied_index
                .with_label_values(&[&shard])
                .set(g.applied as i64);
            m.raft_is_leader
                .with_label_values(&[&shard])
                .set(i64::from(g.is_leader));
            if let Some(size) = sizes.get(id) {
                m.keys
                    .with_label_values(&[&shard])
                    .set((keys * share(*id)).round() as i64);
                m.shard_size.with_label_values(&[&shard]).set(*size as i64);
            }
        }
        if let Some(own) = srv.cluster.load.get(srv.node_id) {
            let secs = own.window_secs.max(0.001);
            for s in &own.shards {
                let shard = s.shard.to_string();
                for (kind, n) in [("reads", s.reads), ("writes", s.writes)] {
                    m.shard_requests
                        .with_label_values(&[shard.as_str(), kind])
                        .set(n as f64 / secs);
                }
            }
        }
        m.disk_usage.set(srv.store.engine().disk_usage() as i64);
        m.connected_clients.set(srv.clients.count() as i64);
        m.render()
    })
    .await
    .unwrap_or_else(|e| format!("# metrics failed: {e}\n"));
    (
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
}

/// `POST /debug/failpoint` (body: a fail point's name) arms it: the process aborts when it
/// gets there (`failpoint.rs`).
async fn failpoint(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, String) {
    if let Err(e) = authorized(&st.srv, &headers) {
        return e;
    }
    let name = body.trim();
    if name.is_empty() {
        return (StatusCode::BAD_REQUEST, "give a fail point's name\n".into());
    }
    if !crate::failpoint::arm(name) {
        return (
            StatusCode::CONFLICT,
            "fail points are compiled out (the `failpoints` feature)\n".into(),
        );
    }
    tracing::warn!(point = name, "fault injection: fail point armed");
    (StatusCode::OK, "armed\n".into())
}

async fn partition(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, String) {
    if let Err(e) = authorized(&st.srv, &headers) {
        return e;
    }
    let Some(t) = &st.transport else {
        return (StatusCode::CONFLICT, "no transport".into());
    };
    let mut cut = Partition::default();
    for token in body.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (way, name) = token.split_once(':').unwrap_or(("", token));
        // Removed nodes too: they still run (and route client requests).
        let Some(id) = st.srv.meta.current().node_by_name(name).map(|m| m.id) else {
            return (StatusCode::BAD_REQUEST, format!("unknown node {name:?}\n"));
        };
        let percent = way.strip_prefix("drop").and_then(|p| p.parse::<u16>().ok());
        let ms = way.strip_prefix("slow").and_then(|p| p.parse::<u64>().ok());
        match (way, percent, ms) {
            ("", _, _) => cut.both.insert(id),
            ("out", _, _) => cut.outbound.insert(id),
            ("in", _, _) => cut.inbound.insert(id),
            (_, Some(p), _) if p <= 100 => cut.lossy.insert(id, p * 10).is_none(),
            (_, _, Some(ms)) => cut.slow.insert(id, ms).is_none(),
            _ => {
                return (
                    StatusCode::BAD_REQUEST,
                    format!(
                        "bad cut {token:?}: NAME, out:NAME, in:NAME, dropP:NAME (P% lost) or \
                         slowMS:NAME\n"
                    ),
                )
            }
        };
    }
    tracing::warn!(cuts = %body.trim(), "fault injection: partitioned from nodes");
    t.set_partitioned(cut);
    (StatusCode::OK, "ok\n".into())
}
