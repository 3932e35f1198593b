//! Clients blocked on keys (BLPOP, BZPOPMIN, XREADGROUP BLOCK ...), served in Redis' order.
//!
//! Redis serves the clients blocked on a key first come, first served: when an element
//! arrives, the client that blocked first gets it. Here a blocked client gets an element by
//! re-running its command (a write through Raft), so two clients retrying at once would race
//! for it. Instead every key has a FIFO queue of the clients blocked on it, and at most one
//! attempt per queue is in flight: after each touch of the key, the clients of its queue take
//! turns in order, each retrying its command on that key only (as Redis serves from the key
//! that became ready), until one finds nothing (the key is empty: nobody behind it would get
//! anything either) or the queue has had its turn. A client served, timed out, unblocked or
//! disconnected leaves every queue (on drop of its `Waiter`), handing the turn on.
//!
//! XREADGROUP clients compete only within a group, so their queues are per (key, group).
//! XREAD consumes nothing and does not queue. The order holds among the clients blocked on
//! this node; a plain pop racing with the wake-up may still take the element first.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::{broadcast, Notify};

/// What a blocked client waits on: a key and, for XREADGROUP, the group.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WaitKey {
    pub key: Bytes,
    pub group: Option<Bytes>,
}

/// How an attempt went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The client got a reply (elements or an error) and stops waiting.
    Served,
    /// Nothing there: the key is empty for everyone in its queue.
    Empty,
    /// Not for this client (the key now holds another type): the next one tries.
    Skip,
}

struct Entry {
    token: u64,
    /// The touch version this client last tried the key at (None: not tried yet).
    seen: Option<u64>,
    notify: Arc<Notify>,
}

struct Queue {
    /// The version of the key's latest touch.
    version: u64,
    /// The client whose attempt is in flight.
    busy: Option<u64>,
    entries: VecDeque<Entry>,
}

impl Queue {
    fn done(&self, e: &Entry) -> bool {
        e.seen.is_some_and(|s| s >= self.version)
    }

    /// Whose turn it is: the first client not done with the latest touch, unless an attempt
    /// is in flight.
    fn turn(&self) -> Option<&Entry> {
        if self.busy.is_some() {
            return None;
        }
        self.entries.iter().find(|e| !self.done(e))
    }

    fn kick(&self) {
        if let Some(e) = self.turn() {
            e.notify.notify_one();
        }
    }
}

#[derive(Default)]
struct State {
    next_token: u64,
    /// Touch counter: one global sequence, so versions of different keys compare by age.
    version: u64,
    queues: HashMap<Bytes, HashMap<Option<Bytes>, Queue>>,
}

impl State {
    fn queue(&mut self, k: &WaitKey) -> Option<&mut Queue> {
        self.queues.get_mut(&k.key)?.get_mut(&k.group)
    }
}

/// The queues of blocked clients, shared by every connection.
#[derive(Default)]
pub struct Blocked {
    state: Mutex<State>,
}

/// An attempt granted to a waiter: indices into its keys, with their versions.
#[derive(Debug)]
pub struct Attempt {
    pub keys: Vec<usize>,
    versions: Vec<u64>,
}

/// One blocked client's place in the queues of its keys; dropping it leaves them.
pub struct Waiter {
    blocked: Arc<Blocked>,
    token: u64,
    keys: Vec<WaitKey>,
    notify: Arc<Notify>,
}

impl Blocked {
    /// Queues a client at the back of each of `keys` (distinct).
    pub fn register(self: &Arc<Self>, keys: Vec<WaitKey>) -> Waiter {
        let notify = Arc::new(Notify::new());
        let mut st = self.state.lock();
        st.next_token += 1;
        let token = st.next_token;
        let version = st.version;
        for k in &keys {
            let q = st
                .queues
                .entry(k.key.clone())
                .or_default()
                .entry(k.group.clone())
                .or_insert_with(|| Queue {
                    version,
                    busy: None,
                    entries: VecDeque::new(),
                });
            q.entries.push_back(Entry {
                token,
                seen: None,
                notify: notify.clone(),
            });
        }
        Waiter {
            blocked: self.clone(),
            token,
            keys,
            notify,
        }
    }

    /// Keys were written: their queues get a turn.
    pub fn touch(&self, keys: &[Bytes]) {
        let mut st = self.state.lock();
        if st.queues.is_empty() {
            return;
        }
        st.version += 1;
        let version = st.version;
        for key in keys {
            if let Some(qs) = st.queues.get_mut(key) {
                for q in qs.values_mut() {
                    q.version = version;
                    q.kick();
                }
            }
        }
    }

    /// Every queue gets a turn (touches were missed).
    pub fn touch_all(&self) {
        let mut st = self.state.lock();
        st.version += 1;
        let version = st.version;
        for q in st.queues.values_mut().flat_map(|qs| qs.values_mut()) {
            q.version = version;
            q.kick();
        }
    }

    /// Feeds the keys applied on this node to the queues until the store stops.
    pub async fn run(self: Arc<Self>, mut touched: broadcast::Receiver<Arc<Vec<Bytes>>>) {
        loop {
            match touched.recv().await {
                Ok(keys) => self.touch(&keys),
                Err(broadcast::error::RecvError::Lagged(_)) => self.touch_all(),
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    /// How many clients wait on `key` (any group).
    pub fn waiting(&self, key: &[u8]) -> usize {
        self.state
            .lock()
            .queues
            .get(key)
            .map_or(0, |qs| qs.values().map(|q| q.entries.len()).sum())
    }

    fn remove(&self, token: u64, keys: &[WaitKey]) {
        let mut st = self.state.lock();
        for k in keys {
            let Some(qs) = st.queues.get_mut(&k.key) else {
                continue;
            };
            let Some(q) = qs.get_mut(&k.group) else {
                continue;
            };
            q.entries.retain(|e| e.token != token);
            if q.busy == Some(token) {
                q.busy = None;
            }
            if q.entries.is_empty() {
                qs.remove(&k.group);
                if qs.is_empty() {
                    st.queues.remove(&k.key);
                }
            } else {
                q.kick();
            }
        }
    }
}

impl Waiter {
    /// Waits until it may be this client's turn somewhere.
    pub async fn notified(&self) {
        self.notify.notified().await
    }

    fn grant(&self, multi: bool) -> Option<Attempt> {
        let mut st = self.blocked.state.lock();
        let mut mine: Vec<(u64, usize)> = Vec::new();
        for (i, k) in self.keys.iter().enumerate() {
            if let Some(q) = st.queue(k) {
                if q.turn().is_some_and(|e| e.token == self.token) {
                    mine.push((q.version, i));
                }
            }
        }
        if !multi {
            // The key touched first goes first, as Redis serves ready keys in order.
            mine.sort();
            mine.truncate(1);
        }
        if mine.is_empty() {
            return None;
        }
        let mut a = Attempt {
            keys: Vec::with_capacity(mine.len()),
            versions: Vec::with_capacity(mine.len()),
        };
        for (v, i) in mine {
            if let Some(q) = st.queue(&self.keys[i]) {
                q.busy = Some(self.token);
            }
            a.keys.push(i);
            a.versions.push(v);
        }
        Some(a)
    }

    /// The first try of the command: on every key where it is this client's turn (in key
    /// order); keys where others are being served are left to later turns.
    pub fn first_attempt(&self) -> Option<Attempt> {
        self.grant(true)
    }

    /// A retry on one key where it is this client's turn, if any.
    pub fn next_attempt(&self) -> Option<Attempt> {
        self.grant(false)
    }

    /// Records how an attempt went and hands the turn on.
    pub fn finish(&self, a: Attempt, outcome: Outcome) {
        if outcome == Outcome::Served {
            self.blocked.remove(self.token, &self.keys);
            return;
        }
        let mut st = self.blocked.state.lock();
        for (i, v) in a.keys.into_iter().zip(a.versions) {
            let Some(q) = st.queue(&self.keys[i]) else {
                continue;
            };
            if q.busy == Some(self.token) {
                q.busy = None;
            }
            for e in q.entries.iter_mut() {
                let update = if e.token == self.token {
                    true
                } else {
                    // The key was empty after touch `v`: those who tried it already get
                    // nothing more from that touch. Those who never tried still do (their
                    // first try may also report an error).
                    outcome == Outcome::Empty && e.seen.is_some()
                };
                if update {
                    e.seen = Some(e.seen.map_or(v, |s| s.max(v)));
                }
            }
            q.kick();
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.blocked.remove(self.token, &self.keys);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wk(k: &str) -> WaitKey {
        WaitKey {
            key: Bytes::copy_from_slice(k.as_bytes()),
            group: None,
        }
    }

    fn key(k: &str) -> Bytes {
        Bytes::copy_from_slice(k.as_bytes())
    }

    /// Registers and makes the (empty) first attempt, as a connection does.
    fn block(b: &Arc<Blocked>, keys: &[&str]) -> Waiter {
        let w = b.register(keys.iter().map(|k| wk(k)).collect());
        if let Some(a) = w.first_attempt() {
            w.finish(a, Outcome::Empty);
        }
        w
    }

    #[test]
    fn turns_go_in_blocking_order_one_at_a_time() {
        let b = Arc::new(Blocked::default());
        let w1 = block(&b, &["k"]);
        let w2 = block(&b, &["k"]);
        let w3 = block(&b, &["k"]);
        assert!(w1.next_attempt().is_none());
        b.touch(&[key("k")]);
        assert!(w2.next_attempt().is_none());
        assert!(w3.next_attempt().is_none());
        let a = w1.next_attempt().expect("head's turn");
        // Only one attempt in flight per key.
        assert!(w2.next_attempt().is_none());
        w1.finish(a, Outcome::Served);
        let a = w2
            .next_attempt()
            .expect("second's turn after the head was served");
        assert!(w3.next_attempt().is_none());
        // The key is empty again: the round ends, w3 does not retry.
        w2.finish(a, Outcome::Empty);
        assert!(w3.next_attempt().is_none());
        assert!(w2.next_attempt().is_none());
        b.touch(&[key("k")]);
        assert!(w3.next_attempt().is_none());
        let a = w2.next_attempt().expect("w2 is the head now");
        w2.finish(a, Outcome::Skip);
        let a = w3.next_attempt().expect("skipped: w3's turn");
        w3.finish(a, Outcome::Served);
        drop(w2);
        assert_eq!(b.waiting(b"k"), 0);
        assert!(b.state.lock().queues.is_empty());
    }

    #[test]
    fn a_dropped_head_hands_its_turn_on() {
        let b = Arc::new(Blocked::default());
        let w1 = block(&b, &["k"]);
        let w2 = block(&b, &["k"]);
        b.touch(&[key("k")]);
        let a = w1.next_attempt().expect("head's turn");
        assert!(w2.next_attempt().is_none());
        // The head disconnects with its attempt in flight.
        drop(a);
        drop(w1);
        assert!(w2.next_attempt().is_some());
    }

    #[test]
    fn newcomers_wait_for_a_round_in_progress() {
        let b = Arc::new(Blocked::default());
        let w1 = block(&b, &["a"]);
        b.touch(&[key("a")]);
        let a1 = w1.next_attempt().expect("head's turn");
        // A new client on a and b: it may try b now, a only after w1.
        let w2 = b.register(vec![wk("a"), wk("b")]);
        let first = w2.first_attempt().expect("b is free");
        assert_eq!(first.keys, vec![1]);
        w2.finish(first, Outcome::Empty);
        assert!(w2.next_attempt().is_none());
        w1.finish(a1, Outcome::Served);
        // w2 never tried a: its turn comes even though the round's version is old.
        let a2 = w2.next_attempt().expect("w2's turn on a");
        assert_eq!(a2.keys, vec![0]);
        w2.finish(a2, Outcome::Empty);
        assert!(w2.next_attempt().is_none());
    }

    #[test]
    fn empty_ends_the_round_only_for_those_who_tried() {
        let b = Arc::new(Blocked::default());
        let w1 = block(&b, &["k"]);
        let w2 = b.register(vec![wk("k")]);
        // w2 has not made its first try yet; w1 finds the key empty after a touch.
        b.touch(&[key("k")]);
        let a = w1.next_attempt().expect("head's turn");
        w1.finish(a, Outcome::Empty);
        assert!(w2.first_attempt().is_some());
    }

    #[test]
    fn earliest_touched_key_first_and_groups_apart() {
        let b = Arc::new(Blocked::default());
        let w = block(&b, &["a", "b"]);
        b.touch(&[key("b")]);
        b.touch(&[key("a")]);
        let a = w.next_attempt().expect("a turn");
        assert_eq!(a.keys, vec![1]);
        w.finish(a, Outcome::Empty);
        let a = w.next_attempt().expect("a turn");
        assert_eq!(a.keys, vec![0]);
        w.finish(a, Outcome::Empty);

        let g = |name: &str| WaitKey {
            key: key("s"),
            group: Some(key(name)),
        };
        let x = b.register(vec![g("g1")]);
        let y = b.register(vec![g("g2")]);
        // Different groups don't wait for each other.
        assert!(x.first_attempt().is_some());
        assert!(y.first_attempt().is_some());
        assert_eq!(b.waiting(b"s"), 2);
    }
}
