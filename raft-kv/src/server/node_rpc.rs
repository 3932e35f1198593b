//! The `Node` gRPC service: requests proxied from other nodes, and this node's addresses.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::Server;
use crate::protocol::frame_codec;
use crate::raftstore::transport::pb::exec_request::Kind as ExecKind;
use crate::raftstore::transport::pb::node_server::{Node, NodeServer};
use crate::raftstore::transport::pb::{
    ExecReply, ExecRequest, HelloRequest, NodeInfo, ShardLeader,
};

pub struct NodeService {
    srv: Arc<Server>,
}

pub fn service(srv: Arc<Server>) -> NodeServer<NodeService> {
    NodeServer::new(NodeService { srv }).max_decoding_message_size(1 << 30)
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
        Ok(Response::new(NodeInfo {
            node_id: self.srv.node_id,
            name: self.srv.node_name().to_string(),
            redis_addr: self.srv.advertised_redis_addr(),
            leading,
        }))
    }
}
