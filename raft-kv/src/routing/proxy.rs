//! Requests for shards this node does not host go to a node that does, over the `Node` gRPC
//! service (one lazily connected HTTP/2 channel per peer). The reply comes back as an encoded
//! frame and is written to the client in its own protocol here.
//!
//! Peers also tell each other their Redis address (`Hello`), for `CLUSTER SLOTS` and
//! `-MOVED` replies.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use tonic::transport::Channel;

use crate::meta::{MetaState, MetaView};
use crate::protocol::{frame_codec, Frame};
use crate::raftstore::auth::ClusterSecret;
use crate::raftstore::dial::Dialer;
use crate::raftstore::transport::pb::exec_request::Kind as ExecKind;
use crate::raftstore::transport::pb::node_client::NodeClient;
use crate::raftstore::transport::pb::{ExecRequest, HelloRequest};
use crate::raftstore::tryagain;

pub struct Proxy {
    /// Peers join at run time (`--join`), hence the lock.
    channels: RwLock<HashMap<u64, Channel>>,
    /// Redis addresses of peers, learned from `Hello`.
    redis_addrs: RwLock<HashMap<u64, String>>,
    /// Leaders of shards as peers report them: shard -> (term, node). Only used for shards
    /// this node hosts no replica of (its own replicas know better).
    leaders: RwLock<HashMap<u64, (u64, u64)>>,
    /// Wakes the `Hello` loop early (a request met a stale route).
    refresh: tokio::sync::Notify,
    /// When each peer last answered `Hello`.
    last_seen: RwLock<HashMap<u64, std::time::Instant>>,
    timeout: Duration,
    secret: ClusterSecret,
    dialer: Dialer,
}

/// A lazily connected channel to a peer's `--port`.
fn channel(dialer: &Dialer, addr: &str) -> Result<Channel, String> {
    Ok(dialer
        .endpoint(addr)?
        .connect_timeout(Duration::from_millis(500))
        .tcp_nodelay(true)
        .connect_lazy())
}

impl Proxy {
    /// `peers`: (Raft id, gRPC address) of every other member. Must run inside tokio.
    pub fn new(
        peers: &[(u64, String)],
        timeout: Duration,
        secret: ClusterSecret,
        dialer: Dialer,
    ) -> Result<Arc<Proxy>, String> {
        let mut channels = HashMap::new();
        for (id, addr) in peers {
            channels.insert(*id, channel(&dialer, addr)?);
        }
        Ok(Arc::new(Proxy {
            channels: RwLock::new(channels),
            redis_addrs: RwLock::new(HashMap::new()),
            leaders: RwLock::new(HashMap::new()),
            last_seen: RwLock::new(HashMap::new()),
            refresh: tokio::sync::Notify::new(),
            timeout,
            secret,
            dialer,
        }))
    }

    /// Runs a request on node `to`. A failed read is a TRYAGAIN; a write that failed in
    /// transit may still have been proposed there, so its outcome is unknown.
    pub async fn execute(
        &self,
        to: u64,
        shard: u64,
        epoch: u64,
        kind: ExecKind,
        op: Vec<u8>,
    ) -> Frame {
        let Some(ch) = self.channels.read().get(&to).cloned() else {
            return tryagain("the shard's replicas are unknown to this node");
        };
        let mut client = NodeClient::new(ch.clone()).max_decoding_message_size(1 << 30);
        let mut req = tonic::Request::new(ExecRequest {
            shard,
            epoch,
            kind: kind as i32,
            op: op.into(),
        });
        self.secret.attach(&mut req);
        match tokio::time::timeout(self.timeout, client.execute(req)).await {
            Ok(Ok(reply)) => frame_codec::decode(&reply.into_inner().frame)
                .unwrap_or_else(|e| Frame::Error(format!("ERR bad reply from a peer: {e}"))),
            // Refused before anything ran there.
            Ok(Err(status)) if status.code() == tonic::Code::Unauthenticated => {
                Frame::Error("ERR a peer refused this node's cluster secret".into())
            }
            Ok(Err(status)) if kind != ExecKind::Write => {
                tryagain(&format!("proxied read failed: {}", status.message()))
            }
            _ if kind != ExecKind::Write => tryagain("proxied read timed out"),
            _ => crate::raftstore::unknown_outcome(),
        }
    }

    /// A `Node` client for peer `to` and the request wrapper that carries the secret.
    pub fn client(&self, to: u64) -> Option<NodeClient<Channel>> {
        self.channels
            .read()
            .get(&to)
            .map(|ch| NodeClient::new(ch.clone()))
    }

    /// Adds a node that joined (no-op if known).
    pub fn add_peer(&self, id: u64, addr: &str) -> Result<(), String> {
        if let std::collections::hash_map::Entry::Vacant(e) = self.channels.write().entry(id) {
            e.insert(channel(&self.dialer, addr)?);
        }
        Ok(())
    }

    /// Wraps a request with the cluster secret.
    pub fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        self.secret.attach(&mut req);
        req
    }

    /// Asks peers for newer metadata now rather than at the next periodic round.
    pub fn refresh_now(&self) {
        self.refresh.notify_one();
    }

    /// Whether `node` answered `Hello` within `window`.
    pub fn seen_within(&self, node: u64, window: Duration) -> bool {
        self.last_seen
            .read()
            .get(&node)
            .is_some_and(|t| t.elapsed() < window)
    }

    pub fn redis_addr(&self, node: u64) -> Option<String> {
        self.redis_addrs.read().get(&node).cloned()
    }

    /// The leader of `shard` as last reported by a peer (highest term wins).
    pub fn reported_leader(&self, shard: u64) -> Option<u64> {
        self.leaders.read().get(&shard).map(|&(_, node)| node)
    }

    /// Asks every peer for its Redis address and the shards it leads, every second (every
    /// 200 ms until all peers answered once). A peer that does not answer loses its claims.
    pub async fn learn_addresses(self: Arc<Self>, meta: Arc<MetaView>) {
        loop {
            let mut missing = false;
            let peers: Vec<(u64, Channel)> = self
                .channels
                .read()
                .iter()
                .map(|(id, ch)| (*id, ch.clone()))
                .collect();
            for (id, ch) in peers {
                let mut client = NodeClient::new(ch.clone()).max_decoding_message_size(1 << 30);
                let mut req = tonic::Request::new(HelloRequest {
                    meta_version: meta.current().version,
                });
                self.secret.attach(&mut req);
                let fut = client.hello(req);
                match tokio::time::timeout(Duration::from_secs(1), fut).await {
                    Ok(Ok(info)) => {
                        let info = info.into_inner();
                        self.last_seen.write().insert(id, std::time::Instant::now());
                        if !info.meta.is_empty() {
                            match MetaState::decode(&info.meta) {
                                Ok(s) => {
                                    meta.offer(s);
                                }
                                Err(e) => {
                                    tracing::warn!(peer = id, error = %e, "bad metadata from a peer")
                                }
                            }
                        }
                        self.redis_addrs.write().insert(id, info.redis_addr);
                        let mut leaders = self.leaders.write();
                        leaders.retain(|_, (_, node)| *node != id);
                        for l in info.leading {
                            let newer = leaders.get(&l.shard).is_none_or(|(t, _)| *t <= l.term);
                            if newer {
                                leaders.insert(l.shard, (l.term, id));
                            }
                        }
                    }
                    _ => {
                        missing = !self.redis_addrs.read().contains_key(&id) || missing;
                        self.leaders.write().retain(|_, (_, node)| *node != id);
                    }
                }
            }
            let wait = if missing { 200 } else { 1_000 };
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
                _ = self.refresh.notified() => {}
            }
        }
    }
}
