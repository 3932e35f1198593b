//! The `/admin` HTTP API: JSON in, JSON out, 4xx with `{"error": reason}` for bad requests.
//!
//! Reads answer from this node's metadata view (refreshed every second from peers) plus live
//! group state; changes are metadata commands proposed through the metadata group, which
//! validates them (the same on every replica) and refuses conflicting ones. Long operations
//! answer 202 with the operation id; `GET /admin/operations` shows their progress.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::{json, Value};

use super::Server;
use crate::meta::load::LoadSummary;
use crate::meta::{MetaCmd, MetaState, OpKind, Operation};
use crate::routing::ShardSpec;
use crate::store::now_ms;

use super::admin_requests::{self as req, err, find_shard, names, ok, Reply};

pub fn routes() -> Router<Arc<Server>> {
    Router::new()
        .route("/admin/nodes", get(nodes))
        .route("/admin/shards", get(shards))
        .route("/admin/shard/{id}", get(shard))
        .route("/admin/operations", get(operations))
        .route("/admin/shard/{id}/migrate", post(migrate))
        .route("/admin/shard/{id}/transfer-leader", post(transfer_leader))
        .route("/admin/shard", post(create))
        .route("/admin/shard/merge", post(merge))
        .route("/admin/shard/{id}/split", post(split))
        .route("/admin/node/{id}/decommission", post(decommission))
        .route("/admin/scheduler", get(scheduler).post(set_scheduler))
}

/// The cluster secret check of the other admin routes, answered in JSON.
fn check(srv: &Server, headers: &HeaderMap) -> Result<(), Reply> {
    super::http::authorized(srv, headers).map_err(|(code, why)| err(code, why.trim_end()))
}

/// The shard's leader as this node knows it (its own replica's view, else peers' reports).
fn leader_of(srv: &Server, spec: &ShardSpec) -> u64 {
    if spec.has_replica(srv.node_id) {
        return srv.store.raft().status(spec.id).leader;
    }
    srv.store
        .proxy()
        .and_then(|p| p.reported_leader(spec.id))
        .unwrap_or(0)
}

/// The cluster's load as this node knows it (its own and relayed heartbeats).
fn load_summary(srv: &Server, state: &MetaState) -> LoadSummary {
    srv.cluster
        .load
        .summary(state, crate::meta::heartbeat::FRESH)
}

fn shard_json(srv: &Server, state: &MetaState, load: &LoadSummary, s: &ShardSpec) -> Value {
    let leader = leader_of(srv, s);
    let op = state.running().find(|o| o.touches(s.id)).map(|o| o.id);
    let l = load.shards.get(&s.id);
    json!({
        "id": s.name(),
        "group": s.id,
        "slots": [s.first_slot, s.last_slot],
        "epoch": s.epoch,
        "conf_ver": s.conf_ver,
        "replicas": names(state, &s.replicas),
        "learners": names(state, &s.learners),
        "leader": (leader != 0).then(|| state.name_of(leader)),
        "preferred_leader": s.replicas.first().map(|n| state.name_of(*n)),
        "operation": op,
        "size_bytes": l.and_then(|l| l.size_bytes),
        "reads_per_sec": l.map(|l| round(l.reads_per_sec)),
        "writes_per_sec": l.map(|l| round(l.writes_per_sec)),
    })
}

fn round(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn op_json(state: &MetaState, o: &Operation) -> Value {
    let mut v = json!({
        "id": o.id,
        "state": o.state,
        "reason": o.reason,
        "step": o.step,
        "message": o.message,
        "started_ms": o.started_ms,
        "updated_ms": o.updated_ms,
    });
    match o.kind {
        OpKind::TransferLeader { shard, to } => {
            v["kind"] = json!("transfer_leader");
            v["shard"] = json!(ShardSpec::name_of(shard));
            v["to"] = json!(state.name_of(to));
        }
        OpKind::Migrate { shard, from, to } => {
            v["kind"] = json!("migrate");
            v["shard"] = json!(ShardSpec::name_of(shard));
            v["from"] = json!(state.name_of(from));
            v["to"] = json!(state.name_of(to));
        }
        OpKind::Decommission { node } => {
            v["kind"] = json!("decommission");
            v["node"] = json!(state.name_of(node));
        }
        OpKind::Create {
            shard,
            first,
            last,
            ref nodes,
        } => {
            v["kind"] = json!("create");
            v["shard"] = json!(ShardSpec::name_of(shard));
            v["slots"] = json!([first, last]);
            v["nodes"] = json!(names(state, nodes));
        }
        OpKind::Merge { source, target } => {
            v["kind"] = json!("merge");
            v["source"] = json!(ShardSpec::name_of(source));
            v["target"] = json!(ShardSpec::name_of(target));
        }
        OpKind::Rebuild { shard, node, .. } => {
            v["kind"] = json!("rebuild");
            v["shard"] = json!(ShardSpec::name_of(shard));
            v["node"] = json!(state.name_of(node));
        }
        OpKind::Split { shard, at, new_id } => {
            v["kind"] = json!("split");
            v["shard"] = json!(ShardSpec::name_of(shard));
            v["new_shard"] = json!(ShardSpec::name_of(new_id));
            v["at_slot"] = json!(at);
        }
    }
    v
}

async fn nodes(State(srv): State<Arc<Server>>, headers: HeaderMap) -> Reply {
    if let Err(e) = check(&srv, &headers) {
        return e;
    }
    let state = srv.meta.current();
    let load = load_summary(&srv, &state);
    let list: Vec<Value> = state
        .nodes
        .iter()
        .map(|n| {
            let up = n.id == srv.node_id
                || srv
                    .store
                    .proxy()
                    .is_some_and(|p| p.seen_within(n.id, Duration::from_secs(5)));
            let replicas = state.shards.iter().filter(|s| s.has_replica(n.id)).count();
            let leaders = state
                .shards
                .iter()
                .filter(|s| leader_of(&srv, s) == n.id)
                .count();
            let l = load.nodes.get(&n.id);
            json!({
                "id": n.name,
                "raft_id": n.id,
                "addr": n.addr,
                "redis_addr": srv.redis_addr_of(n.id),
                "state": n.state,
                "reachable": up,
                "meta_replica": state.meta_replicas.contains(&n.id),
                "replicas": replicas,
                "leaders": leaders,
                "preferred_leaders": state
                    .shards
                    .iter()
                    .filter(|s| s.replicas.first() == Some(&n.id))
                    .count(),
                // From the node's last load report (null: none within 10 s).
                "load": l.map(|l| json!({
                    "size_bytes": l.size_bytes,
                    "reads_per_sec": round(l.reads_per_sec),
                    "writes_per_sec": round(l.writes_per_sec),
                })),
            })
        })
        .collect();
    ok(json!({ "version": state.version, "nodes": list }))
}

async fn shards(State(srv): State<Arc<Server>>, headers: HeaderMap) -> Reply {
    if let Err(e) = check(&srv, &headers) {
        return e;
    }
    let state = srv.meta.current();
    let load = load_summary(&srv, &state);
    let list: Vec<Value> = state
        .shards
        .iter()
        .map(|s| shard_json(&srv, &state, &load, s))
        .collect();
    ok(json!({ "version": state.version, "shards": list }))
}

async fn shard(
    State(srv): State<Arc<Server>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    if let Err(e) = check(&srv, &headers) {
        return e;
    }
    let state = srv.meta.current();
    let spec = match find_shard(&state, &id) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let load = load_summary(&srv, &state);
    let mut v = shard_json(&srv, &state, &load, &spec);
    // Live replication state from the shard's leader.
    if let Some((_, d)) = srv.cluster.leader_of(&spec).await {
        v["leader"] = json!(state.name_of(d.leader));
        v["term"] = json!(d.term);
        v["commit_index"] = json!(d.commit);
        v["applied_index"] = json!(d.applied);
        v["voters"] = json!(names(&state, &d.voters));
        v["voters_outgoing"] = json!(names(&state, &d.voters_outgoing));
        v["progress"] = d
            .progress
            .iter()
            .map(|(n, matched, active)| {
                json!({ "node": state.name_of(*n), "matched": matched, "active": active })
            })
            .collect();
    }
    ok(v)
}

async fn operations(State(srv): State<Arc<Server>>, headers: HeaderMap) -> Reply {
    if let Err(e) = check(&srv, &headers) {
        return e;
    }
    let state = srv.meta.current();
    let list: Vec<Value> = state
        .operations
        .iter()
        .rev()
        .map(|o| op_json(&state, o))
        .collect();
    ok(json!({ "version": state.version, "operations": list }))
}

/// Proposes a command that starts an operation: 202 with the operation's id and `what`
/// describes (logged with `action`), or the refusal as an HTTP status.
async fn start(srv: &Server, cmd: &MetaCmd, action: &str, what: Value) -> Reply {
    match srv.cluster.propose(cmd).await {
        Ok(op) => {
            tracing::info!(op, request = %what, "{action}");
            let mut v = what;
            v["operation"] = json!(op);
            v["progress"] = json!("/admin/operations");
            (StatusCode::ACCEPTED, Json(v))
        }
        Err(e) => refusal(e),
    }
}

/// A metadata refusal as an HTTP status.
fn refusal(reason: String) -> Reply {
    let code = if reason.contains("unknown") {
        StatusCode::NOT_FOUND
    } else if reason.contains("busy") {
        StatusCode::CONFLICT
    } else if reason.starts_with("TRYAGAIN") || reason.starts_with("UNCERTAIN") {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::BAD_REQUEST
    };
    err(code, reason)
}

async fn migrate(
    State(srv): State<Arc<Server>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    if let Err(e) = check(&srv, &headers) {
        return e;
    }
    match req::migrate(&srv.meta.current(), &id, &body, now_ms()) {
        Ok((cmd, what)) => start(&srv, &cmd, "migration accepted", what).await,
        Err(e) => e,
    }
}

async fn transfer_leader(
    State(srv): State<Arc<Server>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    if let Err(e) = check(&srv, &headers) {
        return e;
    }
    let state = srv.meta.current();
    let (spec, to) = match req::transfer_leader(&state, &id, &body) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let Some((leader, d)) = srv.cluster.leader_of(&spec).await else {
        return err(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{} has no leader right now", spec.name()),
        );
    };
    if !d.voters.contains(&to) || !d.voters_outgoing.is_empty() {
        return err(
            StatusCode::BAD_REQUEST,
            format!(
                "{} is not a voting replica of {}",
                state.name_of(to),
                spec.name()
            ),
        );
    }
    // Recorded as the preferred leader, so the group's leader balance keeps it there.
    let cmd = MetaCmd::SetLeader {
        shard: spec.id,
        node: to,
        reason: String::new(),
        now_ms: now_ms(),
    };
    if let Err(e) = srv.cluster.propose(&cmd).await {
        return refusal(e);
    }
    if leader != to {
        if let Err(e) = srv.cluster.change(leader, spec.id, None, to).await {
            return err(StatusCode::SERVICE_UNAVAILABLE, e);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if matches!(srv.cluster.detail(to, spec.id, false).await, Ok(Some(d)) if d.is_leader) {
                break;
            }
            if Instant::now() > deadline {
                return err(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!(
                        "{} did not take over {} within 5s (is it caught up?)",
                        state.name_of(to),
                        spec.name()
                    ),
                );
            }
        }
        tracing::info!(shard = %spec.name(), to = %state.name_of(to), "leadership transferred by request");
    }
    ok(json!({ "shard": spec.name(), "leader": state.name_of(to) }))
}

async fn split(
    State(srv): State<Arc<Server>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    if let Err(e) = check(&srv, &headers) {
        return e;
    }
    match req::split(&srv.meta.current(), &id, &body, now_ms()) {
        Ok((cmd, what)) => start(&srv, &cmd, "split accepted", what).await,
        Err(e) => e,
    }
}

async fn create(State(srv): State<Arc<Server>>, headers: HeaderMap, body: Bytes) -> Reply {
    if let Err(e) = check(&srv, &headers) {
        return e;
    }
    match req::create(&srv.meta.current(), &body, now_ms()) {
        Ok((cmd, what)) => start(&srv, &cmd, "create accepted", what).await,
        Err(e) => e,
    }
}

async fn merge(State(srv): State<Arc<Server>>, headers: HeaderMap, body: Bytes) -> Reply {
    if let Err(e) = check(&srv, &headers) {
        return e;
    }
    match req::merge(&srv.meta.current(), &body, now_ms()) {
        Ok((cmd, what)) => start(&srv, &cmd, "merge accepted", what).await,
        Err(e) => e,
    }
}

async fn decommission(
    State(srv): State<Arc<Server>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    if let Err(e) = check(&srv, &headers) {
        return e;
    }
    match req::decommission(&srv.meta.current(), &id, now_ms()) {
        Ok((cmd, what)) => start(&srv, &cmd, "decommission accepted", what).await,
        Err(e) => e,
    }
}

async fn scheduler(State(srv): State<Arc<Server>>, headers: HeaderMap) -> Reply {
    if let Err(e) = check(&srv, &headers) {
        return e;
    }
    let state = srv.meta.current();
    let decisions: Vec<Value> = state
        .operations
        .iter()
        .rev()
        .filter(|o| o.reason != "admin")
        .map(|o| op_json(&state, o))
        .collect();
    let policy = srv.cluster.policy;
    ok(json!({
        "paused": state.scheduler_paused,
        "split_size_bytes": policy.split_size,
        "split_ops": policy.split_ops,
        "decisions": decisions,
    }))
}

async fn set_scheduler(State(srv): State<Arc<Server>>, headers: HeaderMap, body: Bytes) -> Reply {
    if let Err(e) = check(&srv, &headers) {
        return e;
    }
    let cmd = match req::scheduler(&body) {
        Ok(cmd) => cmd,
        Err(e) => return e,
    };
    let paused = matches!(cmd, MetaCmd::SetSchedulerPaused { paused: true });
    match srv.cluster.propose(&cmd).await {
        Ok(_) => {
            tracing::info!(paused, "scheduler paused/resumed by request");
            ok(json!({ "paused": paused }))
        }
        Err(e) => refusal(e),
    }
}
