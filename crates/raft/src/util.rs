//! Small helpers: a deterministic PRNG, message size accounting and entry batching.

use crate::eraftpb::{Entry, Message, MessageType};
use prost::Message as _;

/// A tiny deterministic PRNG (SplitMix64). The library never touches an OS RNG: the seed
/// comes from [`crate::Config::seed`] (or the node id), so runs are reproducible.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// Creates a generator from a seed.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value uniformly in `[lo, hi)`; returns `lo` if the range is empty.
    pub fn gen_range(&mut self, lo: usize, hi: usize) -> usize {
        if hi <= lo {
            return lo;
        }
        lo + (self.next_u64() % (hi - lo) as u64) as usize
    }
}

/// Encoded size of an entry, as counted against `max_size_per_msg` and
/// `max_uncommitted_size`.
pub fn entry_size(e: &Entry) -> u64 {
    e.encoded_len() as u64
}

/// Payload size of an entry (data + context); used for uncommitted-size flow control.
pub fn payload_size(e: &Entry) -> u64 {
    (e.data.len() + e.context.len()) as u64
}

/// Truncates `entries` so that their total size does not exceed `max` bytes, but always
/// keeps at least one entry. `None` means no limit.
pub fn limit_size(entries: &mut Vec<Entry>, max: Option<u64>) {
    let max = match max {
        Some(m) => m,
        None => return,
    };
    if entries.len() <= 1 {
        return;
    }
    let mut size = 0;
    let keep = entries
        .iter()
        .take_while(|e| {
            if size == 0 {
                size += entry_size(e);
                return true;
            }
            size += entry_size(e);
            size <= max
        })
        .count();
    entries.truncate(keep);
}

/// True for message types that are generated locally and must never arrive over the network.
pub fn is_local_msg(t: MessageType) -> bool {
    matches!(
        t,
        MessageType::MsgHup
            | MessageType::MsgBeat
            | MessageType::MsgUnreachable
            | MessageType::MsgSnapStatus
            | MessageType::MsgCheckQuorum
    )
}

/// True for message types that are responses to a request of the peer.
pub fn is_response_msg(t: MessageType) -> bool {
    matches!(
        t,
        MessageType::MsgAppendResponse
            | MessageType::MsgRequestVoteResponse
            | MessageType::MsgHeartbeatResponse
            | MessageType::MsgUnreachable
            | MessageType::MsgRequestPreVoteResponse
    )
}

/// Returns the vote response type for a vote request type.
pub fn vote_resp_msg_type(t: MessageType) -> MessageType {
    match t {
        MessageType::MsgRequestVote => MessageType::MsgRequestVoteResponse,
        MessageType::MsgRequestPreVote => MessageType::MsgRequestPreVoteResponse,
        _ => panic!("[raft] not a vote message: {t:?}"),
    }
}

/// Builds a message with the given type, destination and source.
pub fn new_message(to: u64, t: MessageType, from: u64) -> Message {
    let mut m = Message {
        to,
        from,
        ..Default::default()
    };
    m.set_msg_type(t);
    m
}

/// Builds a normal entry.
pub fn new_entry(term: u64, index: u64, data: impl Into<bytes::Bytes>) -> Entry {
    Entry {
        term,
        index,
        data: data.into(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_size_keeps_one() {
        let mut v: Vec<Entry> = (1..=5).map(|i| new_entry(1, i, vec![0u8; 100])).collect();
        let one = entry_size(&v[0]);
        limit_size(&mut v, Some(0));
        assert_eq!(v.len(), 1);
        let mut v: Vec<Entry> = (1..=5).map(|i| new_entry(1, i, vec![0u8; 100])).collect();
        limit_size(&mut v, Some(one * 3));
        assert_eq!(v.len(), 3);
        let mut v: Vec<Entry> = (1..=5).map(|i| new_entry(1, i, vec![0u8; 100])).collect();
        limit_size(&mut v, None);
        assert_eq!(v.len(), 5);
    }

    #[test]
    fn prng_deterministic() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        for _ in 0..100 {
            let x = a.gen_range(10, 20);
            assert_eq!(x, b.gen_range(10, 20));
            assert!((10..20).contains(&x));
        }
    }
}
