//! `--join host:port`: a new node asks a running cluster to add it, then waits until the
//! metadata lists it and starts from that metadata (no shards yet: the scheduler balances
//! replicas onto it, or an admin migrates them).

use std::time::{Duration, Instant};

use super::MetaState;
use crate::raftstore::auth::ClusterSecret;
use crate::raftstore::dial::Dialer;
use crate::raftstore::members::Member;
use crate::raftstore::transport::pb::node_client::NodeClient;
use crate::raftstore::transport::pb::{HelloRequest, JoinRequest};

/// How long a joining node keeps trying before it gives up.
const JOIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Asks the node at `seed` (its `--port`) to add `me`; returns the metadata that lists it.
pub async fn join(
    seed: &str,
    me: &Member,
    secret: &ClusterSecret,
    dialer: &Dialer,
) -> Result<MetaState, String> {
    let channel = dialer
        .endpoint(seed)
        .map_err(|e| format!("--join: {e}"))?
        .connect_timeout(Duration::from_secs(2))
        .connect_lazy();
    let mut client = NodeClient::new(channel).max_decoding_message_size(1 << 30);
    let deadline = Instant::now() + JOIN_TIMEOUT;
    let mut last = String::new();
    let mut added = false;
    while Instant::now() < deadline {
        if !added {
            let mut req = tonic::Request::new(JoinRequest {
                name: me.name.clone(),
                addr: me.addr.clone(),
            });
            secret.attach(&mut req);
            match client.join(req).await {
                Ok(r) if r.get_ref().error.is_empty() => {
                    tracing::info!(seed, "joined the cluster; waiting for its metadata");
                    added = true;
                }
                Ok(r) => {
                    let e = r.into_inner().error;
                    // Refused by the metadata itself (a taken name, say): retrying won't help.
                    if !e.starts_with("TRYAGAIN")
                        && !e.starts_with("UNCERTAIN")
                        && !e.contains("reachable")
                    {
                        return Err(format!("--join {seed} refused: {e}"));
                    }
                    last = e;
                }
                Err(s) if s.code() == tonic::Code::Unauthenticated => {
                    return Err(format!("--join {seed}: the cluster secret was refused"));
                }
                Err(s) => last = s.message().to_string(),
            }
        }
        if added {
            let mut req = tonic::Request::new(HelloRequest { meta_version: 0 });
            secret.attach(&mut req);
            if let Ok(r) = client.hello(req).await {
                if let Ok(state) = MetaState::decode(&r.into_inner().meta) {
                    if state.node(me.id).is_some() {
                        return Ok(state);
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(format!(
        "--join {seed}: not added within {}s (last error: {last})",
        JOIN_TIMEOUT.as_secs()
    ))
}

/// The newest metadata that lists node `me`, from whichever of `peers` (`--port`
/// addresses) answer: a node that lost its stores starts from it, not from `--cluster`.
pub async fn fetch(
    peers: &[String],
    me: u64,
    secret: &ClusterSecret,
    dialer: &Dialer,
) -> Result<MetaState, String> {
    let mut clients = Vec::new();
    for addr in peers {
        let channel = dialer
            .endpoint(addr)?
            .connect_timeout(Duration::from_secs(2))
            .connect_lazy();
        clients.push(NodeClient::new(channel).max_decoding_message_size(1 << 30));
    }
    let deadline = Instant::now() + JOIN_TIMEOUT;
    while Instant::now() < deadline {
        let mut best: Option<MetaState> = None;
        for client in &mut clients {
            let mut req = tonic::Request::new(HelloRequest { meta_version: 0 });
            secret.attach(&mut req);
            let Ok(Ok(r)) = tokio::time::timeout(Duration::from_secs(3), client.hello(req)).await
            else {
                continue;
            };
            if let Ok(state) = MetaState::decode(&r.into_inner().meta) {
                if state.node(me).is_some()
                    && best.as_ref().is_none_or(|b| b.version < state.version)
                {
                    best = Some(state);
                }
            }
        }
        if let Some(s) = best {
            return Ok(s);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(format!(
        "no peer ({}) gave this node the cluster's metadata within {}s",
        peers.join(", "),
        JOIN_TIMEOUT.as_secs()
    ))
}
