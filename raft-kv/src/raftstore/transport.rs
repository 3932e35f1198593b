//! Node-to-node transport over tonic gRPC.
//!
//! One long-lived client stream per peer node carries batches of messages of all groups.
//! Sending never blocks the runtime: each peer has a bounded queue and a full queue drops the
//! batch (Raft retransmits). A link reconnects with exponential backoff and reports the peer
//! unreachable so leaders fall back to probing. Snapshots go on their own stream, in chunks.
//!
//! A test-only fault hook ([`Transport::set_partitioned`]) drops traffic to and/or from
//! chosen nodes, so the consistency test can partition a cluster (symmetric, asymmetric,
//! bridges) without root privileges.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use raft::eraftpb::Message;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tonic::transport::Endpoint;
use tonic::{Request, Response, Status, Streaming};

use super::auth::ClusterSecret;
use super::dial::Dialer;
use super::Inbox;

#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("raftkv.transport");
}

use pb::raft_transport_client::RaftTransportClient;
use pb::raft_transport_server::{RaftTransport, RaftTransportServer};
use pb::{Done, GroupMessage, MessageBatch, SnapshotChunk};

/// Batches queued per peer before new ones are dropped.
const LINK_QUEUE: usize = 1024;
const SNAPSHOT_CHUNK: usize = 1 << 20;
/// Largest gRPC message accepted (an append batch may carry large values).
const MAX_MESSAGE: usize = 1 << 30;

pub struct Transport {
    /// Peers join at run time (`--join`), hence the locks (read-mostly).
    links: RwLock<HashMap<u64, mpsc::Sender<MessageBatch>>>,
    addrs: RwLock<HashMap<u64, String>>,
    partitioned: RwLock<Partition>,
    inbox: mpsc::Sender<Inbox>,
    rt: tokio::runtime::Handle,
    secret: ClusterSecret,
    dialer: Dialer,
}

/// The fault hook's cuts: nodes cut both ways, and one-way cuts (asymmetric partitions).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Partition {
    pub both: HashSet<u64>,
    /// Nothing is sent to these; what they send is heard.
    pub outbound: HashSet<u64>,
    /// Nothing from these is heard; they are still sent to.
    pub inbound: HashSet<u64>,
    /// Lossy links: this share (per mille) of the batches sent to a node is dropped.
    pub lossy: BTreeMap<u64, u16>,
    /// Slow links: batches to a node are held this many ms (and may overtake each other).
    pub slow: BTreeMap<u64, u64>,
}

impl Partition {
    pub fn blocks_to(&self, node: u64) -> bool {
        self.both.contains(&node) || self.outbound.contains(&node)
    }

    pub fn blocks_from(&self, node: u64) -> bool {
        self.both.contains(&node) || self.inbound.contains(&node)
    }
}

impl Transport {
    /// Starts one link task per peer (must be called inside the tokio runtime).
    pub fn start(
        peers: &[(u64, String)],
        inbox: mpsc::Sender<Inbox>,
        secret: ClusterSecret,
        dialer: Dialer,
    ) -> Arc<Transport> {
        let t = Arc::new(Transport {
            links: RwLock::new(HashMap::new()),
            addrs: RwLock::new(HashMap::new()),
            partitioned: RwLock::new(Partition::default()),
            inbox,
            rt: tokio::runtime::Handle::current(),
            secret,
            dialer,
        });
        for (id, addr) in peers {
            t.add_peer(*id, addr);
        }
        t
    }

    /// Starts a link to a node (no-op if it has one).
    pub fn add_peer(&self, id: u64, addr: &str) {
        let mut links = self.links.write();
        if links.contains_key(&id) {
            return;
        }
        let (tx, rx) = mpsc::channel(LINK_QUEUE);
        links.insert(id, tx);
        self.addrs.write().insert(id, addr.to_string());
        self.rt.spawn(run_link(
            id,
            addr.to_string(),
            rx,
            self.inbox.clone(),
            self.secret.clone(),
            self.dialer.clone(),
        ));
    }

    /// Queues messages for node `to`; drops them if the link is backed up or partitioned.
    pub fn send(&self, to: u64, msgs: Vec<GroupMessage>) {
        let (lossy, slow) = {
            let cut = self.partitioned.read();
            if cut.blocks_to(to) {
                return;
            }
            (cut.lossy.get(&to).copied(), cut.slow.get(&to).copied())
        };
        if lossy.is_some_and(|per_mille| rand::random::<u16>() % 1000 < per_mille) {
            return;
        }
        let Some(link) = self.links.read().get(&to).cloned() else {
            tracing::debug!(to, "message to an unknown node dropped");
            return;
        };
        if let Some(ms) = slow {
            self.rt.spawn(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                let _ = link.try_send(MessageBatch { msgs });
            });
            return;
        }
        if link.try_send(MessageBatch { msgs }).is_err() {
            tracing::debug!(to, "link queue full; batch dropped");
        }
    }

    /// Streams a snapshot to node `to` and reports the outcome to the runtime.
    pub fn send_snapshot(self: &Arc<Self>, to: u64, group: u64, msg: Message, data: Vec<u8>) {
        let this = self.clone();
        self.rt.spawn(async move {
            let ok = if this.partitioned.read().blocks_to(to) {
                false
            } else {
                match this.stream_snapshot(to, group, msg, data).await {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!(to, group, error = %e, "sending snapshot failed");
                        false
                    }
                }
            };
            let _ = this
                .inbox
                .send(Inbox::SnapshotStatus { group, to, ok })
                .await;
        });
    }

    async fn stream_snapshot(
        &self,
        to: u64,
        group: u64,
        msg: Message,
        data: Vec<u8>,
    ) -> Result<(), String> {
        let addr = self.addrs.read().get(&to).cloned().ok_or("unknown node")?;
        let addr = addr.as_str();
        let channel = endpoint(&self.dialer, addr)?
            .connect()
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let mut client = RaftTransportClient::new(channel).max_encoding_message_size(MAX_MESSAGE);
        let metadata = msg.snapshot.as_ref().and_then(|s| s.metadata.clone());
        let total = data.len();
        tracing::info!(to, group, bytes = total, "sending snapshot");
        let mut chunks = Vec::new();
        let mut offset = 0;
        loop {
            let end = (offset + SNAPSHOT_CHUNK).min(total);
            chunks.push(SnapshotChunk {
                group_id: group,
                msg: (offset == 0).then(|| msg.clone()),
                metadata: (offset == 0).then(|| metadata.clone()).flatten(),
                offset: offset as u64,
                data: data[offset..end].to_vec().into(),
                last: end == total,
            });
            if end == total {
                break;
            }
            offset = end;
        }
        let mut req = Request::new(tokio_stream::iter(chunks));
        self.secret.attach(&mut req);
        tokio::time::timeout(Duration::from_secs(60), client.snapshot(req))
            .await
            .map_err(|_| "timed out".to_string())?
            .map_err(|e| e.message().to_string())?;
        Ok(())
    }

    /// Whether the fault hook keeps this node from reaching `node` (the proxy honours it).
    pub fn is_partitioned(&self, node: u64) -> bool {
        self.partitioned.read().blocks_to(node)
    }

    /// Test-only fault hook: which traffic to drop (the default heals).
    pub fn set_partitioned(&self, p: Partition) {
        *self.partitioned.write() = p;
    }

    pub fn service(self: &Arc<Self>) -> RaftTransportServer<TransportService> {
        RaftTransportServer::new(TransportService {
            transport: self.clone(),
        })
        .max_decoding_message_size(MAX_MESSAGE)
    }
}

fn endpoint(dialer: &Dialer, addr: &str) -> Result<Endpoint, String> {
    Ok(dialer
        .endpoint(addr)?
        .connect_timeout(Duration::from_millis(500))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(2))
        .keep_alive_timeout(Duration::from_secs(2))
        .keep_alive_while_idle(true))
}

/// Keeps one stream to a peer open. The stream reads the link's queue itself (no task in
/// between), so a batch costs the runtime's `try_send` and one wake-up of the HTTP/2
/// connection, not a hop through a forwarding task as well.
async fn run_link(
    to: u64,
    addr: String,
    rx: mpsc::Receiver<MessageBatch>,
    inbox: mpsc::Sender<Inbox>,
    secret: ClusterSecret,
    dialer: Dialer,
) {
    // Shared with each connection's stream; a stream of a dead connection that is still
    // polled can at worst take a batch into the void, which Raft resends.
    let rx = Arc::new(Mutex::new(rx));
    let mut backoff = Duration::from_millis(50);
    let mut was_up = true;
    loop {
        if rx.lock().is_closed() {
            return;
        }
        let connected = match endpoint(&dialer, &addr) {
            Ok(ep) => ep.connect().await.map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        let channel = match connected {
            Ok(c) => c,
            Err(e) => {
                if was_up {
                    tracing::warn!(to, %addr, error = %e, "peer unreachable; retrying");
                    was_up = false;
                }
                let _ = inbox.try_send(Inbox::Unreachable(to));
                // Drop what queued while down: Raft resends what still matters.
                {
                    let mut q = rx.lock();
                    while q.try_recv().is_ok() {}
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        if !was_up {
            tracing::info!(to, %addr, "peer reachable again");
            was_up = true;
        }
        backoff = Duration::from_millis(50);
        let mut client = RaftTransportClient::new(channel).max_encoding_message_size(MAX_MESSAGE);
        let mut req = Request::new(Merging(rx.clone()));
        secret.attach(&mut req);
        match client.raft(req).await {
            Err(e) if e.code() == tonic::Code::Unauthenticated => tracing::warn!(
                to,
                "peer refused our cluster secret; every member must use the same"
            ),
            Err(e) => tracing::debug!(to, error = %e, "raft stream to peer ended"),
            Ok(_) => {}
        }
        if rx.lock().is_closed() {
            return;
        }
        let _ = inbox.try_send(Inbox::Unreachable(to));
        tokio::time::sleep(backoff).await;
    }
}

/// Most messages merged into one outgoing batch.
const MAX_MERGED: usize = 4096;

/// The stream of a link: every batch queued while the encoder was busy goes out as one
/// gRPC message, so a busy node sends (and its peer decodes and queues) one batch per
/// wake-up instead of one per runtime round and group mix.
struct Merging(Arc<Mutex<mpsc::Receiver<MessageBatch>>>);

impl Stream for Merging {
    type Item = MessageBatch;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<MessageBatch>> {
        let mut rx = self.0.lock();
        let std::task::Poll::Ready(first) = rx.poll_recv(cx) else {
            return std::task::Poll::Pending;
        };
        let Some(mut batch) = first else {
            return std::task::Poll::Ready(None);
        };
        while batch.msgs.len() < MAX_MERGED {
            match rx.try_recv() {
                Ok(more) => batch.msgs.extend(more.msgs),
                Err(_) => break,
            }
        }
        std::task::Poll::Ready(Some(batch))
    }
}

pub struct TransportService {
    transport: Arc<Transport>,
}

#[tonic::async_trait]
impl RaftTransport for TransportService {
    async fn raft(
        &self,
        request: Request<Streaming<MessageBatch>>,
    ) -> Result<Response<Done>, Status> {
        self.transport.secret.check(&request)?;
        let mut stream = request.into_inner();
        while let Some(batch) = stream.message().await? {
            let msgs: Vec<GroupMessage> = {
                let blocked = self.transport.partitioned.read();
                batch
                    .msgs
                    .into_iter()
                    .filter(|m| m.msg.as_ref().is_some_and(|m| !blocked.blocks_from(m.from)))
                    .collect()
            };
            if msgs.is_empty() {
                continue;
            }
            if self.transport.inbox.try_send(Inbox::Raft(msgs)).is_err() {
                tracing::debug!("runtime inbox full; incoming batch dropped");
            }
        }
        Ok(Response::new(Done {}))
    }

    async fn snapshot(
        &self,
        request: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<Done>, Status> {
        self.transport.secret.check(&request)?;
        let mut stream = request.into_inner();
        let mut head: Option<(u64, Message)> = None;
        let mut data = Vec::new();
        while let Some(chunk) = stream.message().await? {
            if chunk.offset != data.len() as u64 {
                return Err(Status::invalid_argument(format!(
                    "snapshot chunk at offset {} but {} bytes received",
                    chunk.offset,
                    data.len()
                )));
            }
            if head.is_none() {
                let msg = chunk
                    .msg
                    .clone()
                    .ok_or_else(|| Status::invalid_argument("first snapshot chunk has no msg"))?;
                if self.transport.partitioned.read().blocks_from(msg.from) {
                    return Err(Status::unavailable("partitioned"));
                }
                head = Some((chunk.group_id, msg));
            }
            data.extend_from_slice(&chunk.data);
            if chunk.last {
                let Some((group, msg)) = head.take() else {
                    break;
                };
                tracing::info!(
                    group,
                    from = msg.from,
                    bytes = data.len(),
                    "received snapshot"
                );
                self.transport
                    .inbox
                    .send(Inbox::Snapshot {
                        group,
                        msg: Box::new(msg),
                        data,
                    })
                    .await
                    .map_err(|_| Status::unavailable("node is shutting down"))?;
                return Ok(Response::new(Done {}));
            }
        }
        Err(Status::invalid_argument("snapshot stream ended early"))
    }
}
