//! Bounded window of in-flight append messages to one follower.

use std::collections::VecDeque;

/// The last indices of append messages sent but not yet acknowledged, oldest first.
/// When full, the leader stops sending appends to that follower (flow control).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inflights {
    buf: VecDeque<u64>,
    cap: usize,
}

impl Inflights {
    /// Window of at most `cap` messages.
    pub fn new(cap: usize) -> Self {
        Inflights {
            buf: VecDeque::new(),
            cap,
        }
    }

    /// Whether no more messages may be sent.
    pub fn full(&self) -> bool {
        self.buf.len() >= self.cap
    }

    /// Number of messages in flight.
    pub fn count(&self) -> usize {
        self.buf.len()
    }

    /// Records a message whose last entry index is `last`. Panics if full or not
    /// increasing (an internal invariant).
    pub fn add(&mut self, last: u64) {
        assert!(!self.full(), "[raft] cannot add into a full inflights");
        if let Some(&b) = self.buf.back() {
            assert!(last > b, "[raft] inflights must increase: {last} after {b}");
        }
        self.buf.push_back(last);
    }

    /// Frees all messages with last index `<= to`.
    pub fn free_to(&mut self, to: u64) {
        while let Some(&f) = self.buf.front() {
            if f > to {
                break;
            }
            self.buf.pop_front();
        }
    }

    /// Frees the oldest message (used on heartbeat response so a lost append does not
    /// stall the window forever).
    pub fn free_first_one(&mut self) {
        self.buf.pop_front();
    }

    /// Empties the window.
    pub fn reset(&mut self) {
        self.buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window() {
        let mut i = Inflights::new(3);
        i.add(1);
        i.add(5);
        i.add(7);
        assert!(i.full());
        i.free_to(5);
        assert_eq!(i.count(), 1);
        i.free_first_one();
        assert_eq!(i.count(), 0);
    }
}
