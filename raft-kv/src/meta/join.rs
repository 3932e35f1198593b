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
use tonic::transport::Channel;

/// How long a joining node keeps trying before it gives up.
const JOIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Asks the node at `seed` (its `--port`) to add `me`; returns the metadata that lists it.
pub async fn join(
    seed: &str,
    me: &Member,
    secret: &ClusterSecret,
    dialer: &Dialer,
) -> Result<MetaState, String> {
    let mut client = client(dialer, seed).map_err(|e| format!("--join: {e}"))?;
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
            if let Some(state) = metadata_listing(&mut client, secret, me.id).await {
                return Ok(state);
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
        clients.push(client(dialer, addr)?);
    }
    let deadline = Instant::now() + JOIN_TIMEOUT;
    while Instant::now() < deadline {
        let mut best: Option<MetaState> = None;
        for client in &mut clients {
            if let Some(state) = metadata_listing(client, secret, me).await {
                if best.as_ref().is_none_or(|b| b.version < state.version) {
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

/// A `Node` client for the peer at `addr` (its `--port`), connected on first use.
fn client(dialer: &Dialer, addr: &str) -> Result<NodeClient<Channel>, String> {
    let channel = dialer
        .endpoint(addr)?
        .connect_timeout(Duration::from_secs(2))
        .connect_lazy();
    Ok(NodeClient::new(channel).max_decoding_message_size(1 << 30))
}

/// The metadata the peer behind `client` knows, if it answers within a few seconds and the
/// metadata lists node `me`.
async fn metadata_listing(
    client: &mut NodeClient<Channel>,
    secret: &ClusterSecret,
    me: u64,
) -> Option<MetaState> {
    let mut req = tonic::Request::new(HelloRequest { meta_version: 0 });
    secret.attach(&mut req);
    let r = tokio::time::timeout(Duration::from_secs(3), client.hello(req))
        .await
        .ok()?
        .ok()?;
    MetaState::decode(&r.into_inner().meta)
        .ok()
        .filter(|s| s.node(me).is_some())
}
