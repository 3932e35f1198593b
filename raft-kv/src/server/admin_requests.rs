//! Admin API request bodies read against the metadata: each becomes the metadata command it
//! asks for, or the HTTP answer to give instead (an error, or 200 where there is nothing to
//! do). Pure, so `fuzzing` feeds them arbitrary bodies.

use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::meta::{MetaCmd, MetaState};
use crate::routing::ShardSpec;

pub type Reply = (StatusCode, Json<Value>);

/// A command to propose and what to answer about it once accepted.
pub type Request = (MetaCmd, Value);

pub fn err(code: StatusCode, reason: impl Into<String>) -> Reply {
    (code, Json(json!({ "error": reason.into() })))
}

pub fn ok(v: Value) -> Reply {
    (StatusCode::OK, Json(v))
}

pub fn names(state: &MetaState, ids: &[u64]) -> Vec<String> {
    ids.iter().map(|id| state.name_of(*id)).collect()
}

pub fn find_shard(state: &MetaState, id: &str) -> Result<ShardSpec, Reply> {
    ShardSpec::parse_name(id)
        .and_then(|g| state.group(g))
        .ok_or_else(|| err(StatusCode::NOT_FOUND, format!("unknown shard {id:?}")))
}

/// Parses a JSON object body, with a clear error for anything else.
fn body_object(body: &[u8]) -> Result<serde_json::Map<String, Value>, Reply> {
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

/// `{"from": "node1", "to": "node4"}`: move shard `id`'s replica.
pub fn migrate(state: &MetaState, id: &str, body: &[u8], now: u64) -> Result<Request, Reply> {
    let spec = find_shard(state, id)?;
    let body = body_object(body)?;
    let from = node_field(state, &body, "from")?;
    let to = node_field(state, &body, "to")?;
    let cmd = MetaCmd::BeginMigrate {
        shard: spec.id,
        from,
        to,
        reason: "admin".into(),
        now_ms: now,
    };
    Ok((
        cmd,
        json!({
            "shard": spec.name(),
            "from": state.name_of(from),
            "to": state.name_of(to),
        }),
    ))
}

/// `{"to": "node2"}`: the shard and the node to lead it.
pub fn transfer_leader(
    state: &MetaState,
    id: &str,
    body: &[u8],
) -> Result<(ShardSpec, u64), Reply> {
    let spec = find_shard(state, id)?;
    let body = body_object(body)?;
    Ok((spec, node_field(state, &body, "to")?))
}

/// Drain node `id`.
pub fn decommission(state: &MetaState, id: &str, now: u64) -> Result<Request, Reply> {
    let Some(node) = state.node_by_name(id).map(|n| n.id) else {
        return Err(err(StatusCode::NOT_FOUND, format!("unknown node {id:?}")));
    };
    let cmd = MetaCmd::Decommission { node, now_ms: now };
    Ok((cmd, json!({ "node": id })))
}

/// `{"paused": true|false}`.
pub fn scheduler(body: &[u8]) -> Result<MetaCmd, Reply> {
    match body_object(body)?.get("paused").and_then(Value::as_bool) {
        Some(paused) => Ok(MetaCmd::SetSchedulerPaused { paused }),
        None => Err(err(
            StatusCode::BAD_REQUEST,
            "missing field \"paused\" (true or false)",
        )),
    }
}

/// `{"at_slot": N}` (default: the middle) and/or `{"new_shards": ["shard_0", "shard_10"]}`
/// (the parent keeps its name; the second names the new shard, default the next free id).
pub fn split(state: &MetaState, id: &str, body: &[u8], now: u64) -> Result<Request, Reply> {
    let spec = find_shard(state, id)?;
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Map::new()
    } else {
        body_object(body)?
    };
    let at = match body.get("at_slot") {
        None => spec.first_slot + (spec.last_slot - spec.first_slot).div_ceil(2),
        Some(v) => match v.as_u64().and_then(|n| u16::try_from(n).ok()) {
            Some(n) => n,
            None => {
                return Err(err(
                    StatusCode::BAD_REQUEST,
                    "at_slot must be a slot number",
                ))
            }
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
                    return Err(err(
                        StatusCode::BAD_REQUEST,
                        format!(
                        "new_shards must be [\"{}\", \"shard_N\"]: the shard keeps its name and \
                             the new one takes the upper slots",
                        spec.name()
                    ),
                    ))
                }
            }
        }
    };
    let cmd = MetaCmd::BeginSplit {
        shard: spec.id,
        at,
        new_id,
        reason: String::new(),
        now_ms: now,
    };
    Ok((
        cmd,
        json!({
            "shard": spec.name(),
            "new_shard": ShardSpec::name_of(new_id),
            "at_slot": at,
        }),
    ))
}

/// `{"shard_id": "shard_9", "nodes": ["node1", "node2", "node3"], "slots": [4096, 8191]}`, or
/// `"from": "shard_0"` instead of `slots` (the upper half of that shard).
pub fn create(state: &MetaState, body: &[u8], now: u64) -> Result<Request, Reply> {
    let body = body_object(body)?;
    let Some(id) = body
        .get("shard_id")
        .and_then(Value::as_str)
        .and_then(ShardSpec::parse_name)
    else {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "missing or bad field \"shard_id\" (such as \"shard_9\")",
        ));
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
            None => return Err(err(StatusCode::NOT_FOUND, format!("unknown node {n}"))),
        }
    }
    if nodes.is_empty() {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "missing field \"nodes\" (node ids)",
        ));
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
                return Err(ok(json!({
                    "shard": existing.name(),
                    "slots": [existing.first_slot, existing.last_slot],
                    "replicas": names(state, &existing.replicas),
                    "created": false,
                })));
            }
            return Err(err(
                StatusCode::CONFLICT,
                format!(
                    "{} already exists on {}; move its replicas with POST /admin/shard/{}/migrate",
                    existing.name(),
                    names(state, &existing.replicas).join(","),
                    existing.name()
                ),
            ));
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
                _ => {
                    return Err(err(
                        StatusCode::BAD_REQUEST,
                        "\"slots\" must be [first, last]",
                    ))
                }
            }
        }
        (None, Some(from)) => {
            let s = find_shard(state, from)?;
            (
                s.first_slot + (s.last_slot - s.first_slot).div_ceil(2),
                s.last_slot,
            )
        }
        _ => return Err(err(
            StatusCode::BAD_REQUEST,
            "give either \"slots\": [first, last] or \"from\": a shard to take the upper half of",
        )),
    };
    let cmd = MetaCmd::BeginCreate {
        id,
        first: slots.0,
        last: slots.1,
        nodes,
        now_ms: now,
    };
    Ok((
        cmd,
        json!({
            "shard": ShardSpec::name_of(id),
            "slots": [slots.0, slots.1],
        }),
    ))
}

/// `{"sources": ["shard_1", "shard_2"], "target": "shard_1"}`: two adjacent shards on the same
/// nodes; the other source is merged into the target.
pub fn merge(state: &MetaState, body: &[u8], now: u64) -> Result<Request, Reply> {
    let body = body_object(body)?;
    let sources: Vec<&str> = body
        .get("sources")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(target) = body.get("target").and_then(Value::as_str) else {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "missing field \"target\" (a shard id)",
        ));
    };
    if sources.len() != 2 || !sources.contains(&target) {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "\"sources\" must name two adjacent shards, one of them the \"target\"",
        ));
    }
    let mut ids = Vec::new();
    for name in &sources {
        ids.push(find_shard(state, name)?.id);
    }
    let target_id = find_shard(state, target)?.id;
    let source_id = if ids[0] == target_id { ids[1] } else { ids[0] };
    let cmd = MetaCmd::BeginMerge {
        source: source_id,
        target: target_id,
        now_ms: now,
    };
    Ok((
        cmd,
        json!({
            "source": ShardSpec::name_of(source_id),
            "target": ShardSpec::name_of(target_id),
        }),
    ))
}
