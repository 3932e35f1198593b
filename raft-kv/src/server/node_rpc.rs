//! The `Node` gRPC service: requests proxied from other nodes, and this node's addresses.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::Server;
use crate::protocol::frame_codec;
use crate::raftstore::transport::pb::exec_request::Kind as ExecKind;
use crate::raftstore::transport::pb::node_server::{Node, NodeServer};
use crate::raftstore::transport::pb::{
    ChangeReply, ExecReply, ExecRequest, GroupChange, GroupInfo, GroupQuery, HelloRequest,
    JoinReply, JoinRequest, LoadReport, MemberProgress, MetaProposal, MetaReply, NodeInfo,
    ShardLeader,
};
use crate::raftstore::GroupDetail;
use prost::Message as _;
use raft::eraftpb::ConfChangeV2;

pub struct NodeService {
    srv: Arc<Server>,
}

pub fn service(srv: Arc<Server>) -> NodeServer<NodeService> {
    NodeServer::new(NodeService { srv })
        .max_decoding_message_size(1 << 30)
        .max_encoding_message_size(1 << 30)
}

#[tonic::async_trait]
impl Node for NodeService {
    async fn execute(&self, request: Request<ExecRequest>) -> Result<Response<ExecReply>, Status> {
        self.srv.cluster_secret.check(&request)?;
        let req = request.into_inner();
        let kind = ExecKind::try_from(req.kind)
            .map_err(|_| Status::invalid_argument(format!("unknown request kind {}", req.kind)))?;
        let frame = self
            .srv
            .store
            .serve_proxied(req.shard, req.epoch, kind, &req.op)
            .await;
        Ok(Response::new(ExecReply {
            frame: frame_codec::encode(&frame).into(),
        }))
    }

    async fn hello(&self, request: Request<HelloRequest>) -> Result<Response<NodeInfo>, Status> {
        self.srv.cluster_secret.check(&request)?;
        let request_meta_version = request.get_ref().meta_version;
        let leading = {
            let map = self.srv.store.raft().status.read();
            map.iter()
                .filter(|(_, st)| st.is_leader)
                .map(|(id, st)| ShardLeader {
                    shard: *id,
                    term: st.term,
                })
                .collect()
        };
        let meta = self.srv.meta.current();
        let known = request_meta_version;
        Ok(Response::new(NodeInfo {
            node_id: self.srv.node_id,
            name: self.srv.node_name().to_string(),
            redis_addr: self.srv.advertised_redis_addr(),
            leading,
            meta_version: meta.version,
            meta: if known < meta.version {
                meta.encode().into()
            } else {
                Default::default()
            },
        }))
    }

    async fn detail(&self, request: Request<GroupQuery>) -> Result<Response<GroupInfo>, Status> {
        self.srv.cluster_secret.check(&request)?;
        let q = request.into_inner();
        let d = self.srv.store.raft().detail(q.shard, q.sync).await;
        Ok(Response::new(detail_to_pb(d)))
    }

    async fn change_group(
        &self,
        request: Request<GroupChange>,
    ) -> Result<Response<ChangeReply>, Status> {
        self.srv.cluster_secret.check(&request)?;
        let req = request.into_inner();
        let raft = self.srv.store.raft();
        let result = if req.compact {
            match raft.compact_now(req.shard).await {
                Some(_) => Ok(()),
                None => Err("this node does not serve that shard".to_string()),
            }
        } else if !req.admin.is_empty() {
            match crate::raftstore::split::AdminEntry::decode(&req.admin) {
                Ok(entry) => raft.propose_admin(req.shard, entry).await,
                Err(e) => Err(format!("bad admin entry: {e}")),
            }
        } else if req.transfer_to != 0 {
            raft.transfer_leader(req.shard, req.transfer_to).await;
            Ok(())
        } else {
            match ConfChangeV2::decode(req.conf_change.as_ref()) {
                Ok(cc) => raft.change_conf(req.shard, cc).await,
                Err(e) => Err(format!("bad membership change: {e}")),
            }
        };
        Ok(Response::new(ChangeReply {
            error: result.err().unwrap_or_default(),
        }))
    }

    async fn join(&self, request: Request<JoinRequest>) -> Result<Response<JoinReply>, Status> {
        self.srv.cluster_secret.check(&request)?;
        let error = self.join_impl(request.into_inner()).await;
        Ok(Response::new(JoinReply { error }))
    }

    async fn propose_meta(
        &self,
        request: Request<MetaProposal>,
    ) -> Result<Response<MetaReply>, Status> {
        self.srv.cluster_secret.check(&request)?;
        let cmd = request.into_inner().cmd.to_vec();
        let (value, error) = match crate::meta::driver::propose_local(&self.srv.store, cmd).await {
            Ok(v) => (v, String::new()),
            Err(e) => (0, e),
        };
        Ok(Response::new(MetaReply { value, error }))
    }

    async fn heartbeat(
        &self,
        request: Request<LoadReport>,
    ) -> Result<Response<LoadReport>, Status> {
        self.srv.cluster_secret.check(&request)?;
        let load: crate::meta::load::NodeLoad = serde_json::from_slice(&request.into_inner().json)
            .map_err(|e| Status::invalid_argument(format!("bad load report: {e}")))?;
        let table = &self.srv.cluster.load;
        table.put(load);
        let json = serde_json::to_vec(&table.relay())
            .map_err(|e| Status::internal(format!("encoding the load table: {e}")))?;
        Ok(Response::new(LoadReport { json: json.into() }))
    }
}

impl NodeService {
    async fn join_impl(&self, req: JoinRequest) -> String {
        let cmd = crate::meta::MetaCmd::AddNode {
            id: crate::raftstore::members::raft_id(&req.name),
            name: req.name.clone(),
            addr: req.addr.clone(),
        };
        match self.srv.cluster.propose(&cmd).await {
            Ok(_) => {
                tracing::info!(node = %req.name, addr = %req.addr, "node joined");
                String::new()
            }
            Err(e) => e,
        }
    }
}

pub fn detail_to_pb(d: Option<GroupDetail>) -> GroupInfo {
    let Some(d) = d else {
        return GroupInfo::default();
    };
    GroupInfo {
        hosted: true,
        leader: d.leader,
        is_leader: d.is_leader,
        term: d.term,
        commit: d.commit,
        applied: d.applied,
        last_index: d.last_index,
        voters: d.voters,
        learners: d.learners,
        voters_outgoing: d.voters_outgoing,
        first_slot: u32::from(d.first_slot),
        last_slot: u32::from(d.last_slot),
        epoch: d.epoch,
        version_base: d.version_base,
        progress: d
            .progress
            .into_iter()
            .map(|(node, matched, recent_active)| MemberProgress {
                node,
                matched,
                recent_active,
            })
            .collect(),
    }
}

pub fn detail_from_pb(g: GroupInfo) -> Option<GroupDetail> {
    g.hosted.then(|| GroupDetail {
        leader: g.leader,
        is_leader: g.is_leader,
        term: g.term,
        commit: g.commit,
        applied: g.applied,
        last_index: g.last_index,
        voters: g.voters,
        learners: g.learners,
        voters_outgoing: g.voters_outgoing,
        first_slot: g.first_slot as u16,
        last_slot: g.last_slot as u16,
        epoch: g.epoch,
        version_base: g.version_base,
        progress: g
            .progress
            .into_iter()
            .map(|p| (p.node, p.matched, p.recent_active))
            .collect(),
    })
}
