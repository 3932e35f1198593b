//! Bookkeeping of pending ReadIndex requests on the leader.

use std::collections::{HashMap, HashSet, VecDeque};

use bytes::Bytes;

use crate::eraftpb::Message;

/// A read that may be served once the application applied up to `index`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadState {
    /// Read is linearizable once `applied >= index`.
    pub index: u64,
    /// The context passed to `read_index`.
    pub request_ctx: Bytes,
}

/// A pending read waiting for a quorum of heartbeat acks.
#[derive(Debug, Clone)]
pub struct ReadIndexStatus {
    /// The originating MsgReadIndex (from = 0 or self for local reads).
    pub req: Message,
    /// Commit index when the read was received.
    pub index: u64,
    /// Peers that acknowledged the heartbeat carrying this read's context.
    pub acks: HashSet<u64>,
}

/// Pending ReadIndex requests, in arrival order.
#[derive(Debug, Default, Clone)]
pub struct ReadOnly {
    pending: HashMap<Bytes, ReadIndexStatus>,
    queue: VecDeque<Bytes>,
}

impl ReadOnly {
    /// Adds a read request received at commit index `index`. Duplicate contexts are ignored.
    pub fn add_request(&mut self, index: u64, req: Message, ctx: Bytes, self_id: u64) {
        if self.pending.contains_key(&ctx) {
            return;
        }
        let mut acks = HashSet::new();
        acks.insert(self_id);
        self.pending
            .insert(ctx.clone(), ReadIndexStatus { req, index, acks });
        self.queue.push_back(ctx);
    }

    /// Records a heartbeat ack carrying `ctx`; returns the ack set if the read is pending.
    pub fn recv_ack(&mut self, id: u64, ctx: &[u8]) -> Option<&HashSet<u64>> {
        self.pending.get_mut(ctx).map(|rs| {
            rs.acks.insert(id);
            &rs.acks
        })
    }

    /// Dequeues the read with `ctx` and every read queued before it (a later read's quorum
    /// confirms all earlier ones).
    pub fn advance(&mut self, ctx: &[u8]) -> Vec<ReadIndexStatus> {
        let pos = match self.queue.iter().position(|c| c.as_ref() == ctx) {
            Some(p) => p,
            None => return Vec::new(),
        };
        self.queue
            .drain(..=pos)
            .filter_map(|c| self.pending.remove(&c))
            .collect()
    }

    /// Context of the latest pending read.
    pub fn last_pending_request_ctx(&self) -> Option<Bytes> {
        self.queue.back().cloned()
    }

    /// Number of pending reads.
    pub fn pending_read_count(&self) -> usize {
        self.queue.len()
    }
}
