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

type Reply = (StatusCode, Json<Value>);

fn err(code: StatusCode, reason: impl Into<String>) -> Reply {
    (code, Json(json!({ "error": reason.into() })))
}

fn ok(v: Value) -> Reply {
    (StatusCode::OK, Json(v))
}

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

fn names(state: &MetaState, ids: &[u64]) -> Vec<String> {
    ids.iter().map(|id| state.name_of(*id)).collect()
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

fn find_shard(state: &MetaState, id: &str) -> Result<ShardSpec, Reply> {
    ShardSpec::parse_name(id)
        .and_then(|g| state.group(g))
        .ok_or_else(|| err(StatusCode::NOT_FOUND, format!("unknown shard {id:?}")))
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

/// Parses a JSON object body, with a clear error for anything else.
fn body_object(body: &Bytes) -> Result<serde_json::Map<String, Value>, Reply> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(err(
            StatusCode::BAD_REQUEST,
            "the body must be a JSON object",
        )),
        Err(e) => Err(err(StatusCode::BAD_REQUEST, format!("bad JSON: {e}"))),
    }
}

/// A node named by field `field` of the body.
fn node_field(
    state: &MetaState,
    body: &serde_json::Map<String, Value>,
    field: &str,
) -> Result<u64, Reply> {
    let name = body.get(field).and_then(Value::as_str).ok_or_else(|| {
        err(
            StatusCode::BAD_REQUEST,
            format!("missing field {field:?} (a node id such as \"node1\")"),
        )
    })?;
    state
        .node_by_name(name)
        .map(|n| n.id)
        .ok_or_else(|| err(StatusCode::NOT_FOUND, format!("unknown node {name:?}")))
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
    let state = srv.meta.current();
    let parsed = find_shard(&state, &id).and_then(|spec| {
        let body = body_object(&body)?;
        Ok((
            spec,
            node_field(&state, &body, "from")?,
            node_field(&state, &body, "to")?,
        ))
    });
    let (spec, from, to) = match parsed {
        Ok(v) => v,
        Err(e) => return e,
    };
    let cmd = MetaCmd::BeginMigrate {
        shard: spec.id,
        from,
        to,
        reason: "admin".into(),
        now_ms: now_ms(),
    };
    start(
        &srv,
        &cmd,
        "migration accepted",
        json!({
            "shard": spec.name(),
            "from": state.name_of(from),
            "to": state.name_of(to),
        }),
    )
    .await
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
    let parsed = find_shard(&state, &id).and_then(|spec| {
        let body = body_object(&body)?;
        Ok((spec, node_field(&state, &body, "to")?))
    });
    let (spec, to) = match parsed {
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

/// `{"at_slot": N}` (default: the middle) and/or `{"new_shards": ["shard_0", "shard_10"]}`
/// (the parent keeps its name; the second names the new shard, default the next free id).
async fn split(
    State(srv): State<Arc<Server>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    if let Err(e) = check(&srv, &headers) {
        return e;
    }
    let state = srv.meta.current();
    let spec = match find_shard(&state, &id) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Map::new()
    } else {
        match body_object(&body) {
            Ok(b) => b,
            Err(e) => return e,
        }
    };
    let at = match body.get("at_slot") {
        None => spec.first_slot + (spec.last_slot - spec.first_slot).div_ceil(2),
        Some(v) => match v.as_u64().and_then(|n| u16::try_from(n).ok()) {
            Some(n) => n,
            None => return err(StatusCode::BAD_REQUEST, "at_slot must be a slot number"),
        },
    };
    let new_id = match body.get("new_shards") {
        None => state.next_shard_id(),
        Some(v) => {
            let names: Vec<&str> = v
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let parsed: Vec<Option<u64>> = names.iter().map(|n| ShardSpec::parse_name(n)).collect();
            match parsed.as_slice() {
                [Some(p), Some(n)] if *p == spec.id => *n,
                _ => {
                    return err(
                        StatusCode::BAD_REQUEST,
                        format!(
                        "new_shards must be [\"{}\", \"shard_N\"]: the shard keeps its name and \
                             the new one takes the upper slots",
                        spec.name()
                    ),
                    )
                }
            }
        }
    };
    let cmd = MetaCmd::BeginSplit {
        shard: spec.id,
        at,
        new_id,
        reason: String::new(),
        now_ms: now_ms(),
    };
    start(
        &srv,
        &cmd,
        "split accepted",
        json!({
            "shard": spec.name(),
            "new_shard": ShardSpec::name_of(new_id),
            "at_slot": at,
        }),
    )
    .await
}

/// `{"shard_id": "shard_9", "nodes": ["node1", "node2", "node3"], "slots": [4096, 8191]}`, or
/// `"from": "shard_0"` instead of `slots` (the upper half of that shard).
async fn create(State(srv): State<Arc<Server>>, headers: HeaderMap, body: Bytes) -> Reply {
    if let Err(e) = check(&srv, &headers) {
        return e;
    }
    let state = srv.meta.current();
    let body = match body_object(&body) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let Some(id) = body
        .get("shard_id")
        .and_then(Value::as_str)
        .and_then(ShardSpec::parse_name)
    else {
        return err(
            StatusCode::BAD_REQUEST,
            "missing or bad field \"shard_id\" (such as \"shard_9\")",
        );
    };
    let mut nodes = Vec::new();
    for n in body
        .get("nodes")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect::<Vec<_>>())
        .unwrap_or_default()
    {
        match n.as_str().and_then(|name| state.node_by_name(name)) {
            Some(m) => nodes.push(m.id),
            None => return err(StatusCode::NOT_FOUND, format!("unknown node {n}")),
        }
    }
    if nodes.is_empty() {
        return err(
            StatusCode::BAD_REQUEST,
            "missing field \"nodes\" (node ids)",
        );
    }
    let (slots_given, from_given) = (body.get("slots"), body.get("from"));
    if slots_given.is_none() && from_given.is_none() {
        if let Some(existing) = state.shard(id) {
            // Creating what exists is idempotent when it is where asked (the README's first
            // example on a fresh cluster); moving it is a migration.
            let mut want = nodes.clone();
            let mut have = existing.replicas.clone();
            want.sort_unstable();
            have.sort_unstable();
            if want == have && existing.learners.is_empty() {
                return ok(json!({
                    "shard": existing.name(),
                    "slots": [existing.first_slot, existing.last_slot],
                    "replicas": names(&state, &existing.replicas),
                    "created": false,
                }));
            }
            return err(
                StatusCode::CONFLICT,
                format!(
                    "{} already exists on {}; move its replicas with POST /admin/shard/{}/migrate",
                    existing.name(),
                    names(&state, &existing.replicas).join(","),
                    existing.name()
                ),
            );
        }
    }
    // Neither slots nor a source: the upper half of the shard with the most slots.
    let largest = state
        .shards
        .iter()
        .max_by_key(|s| (s.last_slot - s.first_slot, std::cmp::Reverse(s.id)))
        .map(|s| s.name());
    let from_default = (slots_given.is_none() && from_given.is_none())
        .then_some(largest)
        .flatten();
    let from_name = body
        .get("from")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or(from_default);
    let slots = match (slots_given, from_name.as_deref()) {
        (Some(v), None) => {
            let pair: Vec<Option<u16>> = v
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|x| x.as_u64().and_then(|n| u16::try_from(n).ok()))
                        .collect()
                })
                .unwrap_or_default();
            match pair.as_slice() {
                [Some(a), Some(b)] => (*a, *b),
                _ => return err(StatusCode::BAD_REQUEST, "\"slots\" must be [first, last]"),
            }
        }
        (None, Some(from)) => match find_shard(&state, from) {
            Ok(s) => (
                s.first_slot + (s.last_slot - s.first_slot).div_ceil(2),
                s.last_slot,
            ),
            Err(e) => return e,
        },
        _ => return err(
            StatusCode::BAD_REQUEST,
            "give either \"slots\": [first, last] or \"from\": a shard to take the upper half of",
        ),
    };
    let cmd = MetaCmd::BeginCreate {
        id,
        first: slots.0,
        last: slots.1,
        nodes,
        now_ms: now_ms(),
    };
    start(
        &srv,
        &cmd,
        "create accepted",
        json!({
            "shard": ShardSpec::name_of(id),
            "slots": [slots.0, slots.1],
        }),
    )
    .await
}

/// `{"sources": ["shard_1", "shard_2"], "target": "shard_1"}`: two adjacent shards on the same
/// nodes; the other source is merged into the target.
async fn merge(State(srv): State<Arc<Server>>, headers: HeaderMap, body: Bytes) -> Reply {
    if let Err(e) = check(&srv, &headers) {
        return e;
    }
    let state = srv.meta.current();
    let body = match body_object(&body) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let sources: Vec<&str> = body
        .get("sources")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(target) = body.get("target").and_then(Value::as_str) else {
        return err(
            StatusCode::BAD_REQUEST,
            "missing field \"target\" (a shard id)",
        );
    };
    if sources.len() != 2 || !sources.contains(&target) {
        return err(
            StatusCode::BAD_REQUEST,
            "\"sources\" must name two adjacent shards, one of them the \"target\"",
        );
    }
    let mut ids = Vec::new();
    for name in &sources {
        match find_shard(&state, name) {
            Ok(s) => ids.push(s.id),
            Err(e) => return e,
        }
    }
    let target_id = match find_shard(&state, target) {
        Ok(s) => s.id,
        Err(e) => return e,
    };
    let source_id = if ids[0] == target_id { ids[1] } else { ids[0] };
    let cmd = MetaCmd::BeginMerge {
        source: source_id,
        target: target_id,
        now_ms: now_ms(),
    };
    start(
        &srv,
        &cmd,
        "merge accepted",
        json!({
            "source": ShardSpec::name_of(source_id),
            "target": ShardSpec::name_of(target_id),
        }),
    )
    .await
}

async fn decommission(
    State(srv): State<Arc<Server>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    if let Err(e) = check(&srv, &headers) {
        return e;
    }
    let state = srv.meta.current();
    let Some(node) = state.node_by_name(&id).map(|n| n.id) else {
        return err(StatusCode::NOT_FOUND, format!("unknown node {id:?}"));
    };
    let cmd = MetaCmd::Decommission {
        node,
        now_ms: now_ms(),
    };
    start(&srv, &cmd, "decommission accepted", json!({ "node": id })).await
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
    let paused = match body_object(&body) {
        Ok(b) => match b.get("paused").and_then(Value::as_bool) {
            Some(p) => p,
            None => {
                return err(
                    StatusCode::BAD_REQUEST,
                    "missing field \"paused\" (true or false)",
                )
            }
        },
        Err(e) => return e,
    };
    match srv
        .cluster
        .propose(&MetaCmd::SetSchedulerPaused { paused })
        .await
    {
        Ok(_) => {
            tracing::info!(paused, "scheduler paused/resumed by request");
            ok(json!({ "paused": paused }))
        }
        Err(e) => refusal(e),
    }
}
