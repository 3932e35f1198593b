//! The registry of connected clients (CLIENT LIST / INFO / KILL, INFO clients, maxclients).
//!
//! A connection owns its state; the registry holds a small shared handle per client with what
//! other connections may look at or act on: identity, the fields CLIENT LIST shows, a kill
//! switch, and the queue of pub/sub messages pushed to it (bounded by bytes pending).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
#[cfg(test)]
use std::time::Duration;
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::{mpsc, Notify};

use super::settings::OutputLimit;
use crate::protocol::Frame;

/// Fields shown by CLIENT LIST that the connection updates as it runs.
#[derive(Default, Clone)]
pub struct ClientFields {
    pub name: Option<Bytes>,
    pub lib_name: Option<Bytes>,
    pub lib_ver: Option<Bytes>,
    pub last_cmd: String,
    pub resp: u8,
    pub sub: usize,
    pub psub: usize,
    pub ssub: usize,
    /// Commands queued in MULTI, or -1 outside MULTI.
    pub multi: i64,
    pub blocked: bool,
    pub qbuf: usize,
    /// The ACL user the connection acts as.
    pub user: String,
}

pub struct ClientHandle {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub created: Instant,
    pub last_active: Mutex<Instant>,
    pub fields: Mutex<ClientFields>,
    killed: AtomicBool,
    /// CLIENT UNBLOCK request: 0 none, 1 as if timed out, 2 with an error.
    unblock: AtomicU8,
    /// Wakes the connection for a kill or an unblock.
    pub kill_signal: Notify,
    /// Wakes a connection blocked writing to its socket, for a kill only (an unblock must
    /// not cut a write short).
    pub kill_write: Notify,
    msg_tx: mpsc::UnboundedSender<Frame>,
    /// Bytes of pub/sub messages queued but not yet written to the socket.
    pub pending_out: AtomicUsize,
    /// Milliseconds after `created` (plus one) since which `pending_out` has been over the
    /// soft limit; 0 while under it.
    soft_over_since: AtomicU64,
}

impl ClientHandle {
    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }

    /// Asks the connection to close (it notices at its next await).
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.kill_signal.notify_one();
        self.kill_write.notify_one();
    }

    /// CLIENT UNBLOCK: wakes the client if it is blocked; `false` if it wasn't.
    pub fn request_unblock(&self, with_error: bool) -> bool {
        if !self.fields.lock().blocked {
            return false;
        }
        self.unblock
            .store(if with_error { 2 } else { 1 }, Ordering::Release);
        self.kill_signal.notify_one();
        true
    }

    /// Consumes a pending unblock request.
    pub fn take_unblock(&self) -> bool {
        self.unblock.load(Ordering::Acquire) != 0
    }

    /// Whether the pending unblock asked for an error; clears the request.
    pub fn unblock_with_error(&self) -> bool {
        self.unblock.swap(0, Ordering::AcqRel) == 2
    }

    /// Queues a pub/sub message; a subscriber past the hard limit, or over the soft limit
    /// for longer than its seconds (`client-output-buffer-limit pubsub`), is disconnected,
    /// so a slow or stuck subscriber holds neither memory nor the publishers.
    /// Whether the message was queued (a closing client receives nothing).
    pub fn deliver(&self, frame: Frame, size: usize, limit: &OutputLimit) -> bool {
        if self.is_killed() {
            return false;
        }
        let pending = (self.pending_out.fetch_add(size, Ordering::AcqRel) + size) as u64;
        let over_soft = limit.soft > 0 && pending > limit.soft;
        let now = self.created.elapsed().as_millis() as u64 + 1;
        let since = if over_soft {
            match self
                .soft_over_since
                .compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => now,
                Err(t) => t,
            }
        } else {
            self.soft_over_since.store(0, Ordering::Release);
            0
        };
        let hard = limit.hard > 0 && pending > limit.hard;
        let soft_too_long = over_soft && now - since >= limit.soft_secs * 1000;
        if hard || soft_too_long {
            tracing::warn!(
                client = self.id,
                addr = %self.addr,
                pending,
                limit = if hard { "hard" } else { "soft" },
                "closing client that reached the pub/sub output buffer limit"
            );
            self.kill();
            return false;
        }
        if self.msg_tx.send(frame).is_err() {
            self.kill();
            return false;
        }
        true
    }

    /// The CLIENT LIST / CLIENT INFO line (without the trailing newline).
    /// Whether this client is of `CLIENT LIST/KILL TYPE` kind `t` (already lower-case):
    /// `pubsub` when it holds any subscription, `normal` otherwise.
    pub fn is_type(&self, t: &str) -> bool {
        let pubsub = {
            let f = self.fields.lock();
            f.sub + f.psub + f.ssub > 0
        };
        match t {
            "normal" => !pubsub,
            "pubsub" => pubsub,
            _ => false,
        }
    }

    pub fn describe(&self, now: Instant) -> String {
        let f = self.fields.lock().clone();
        let last = *self.last_active.lock();
        let flags = {
            let mut s = String::new();
            if f.sub + f.psub + f.ssub > 0 {
                s.push('P');
            }
            if f.multi >= 0 {
                s.push('x');
            }
            if f.blocked {
                s.push('b');
            }
            if s.is_empty() {
                s.push('N');
            }
            s
        };
        let lossy = |b: &Option<Bytes>| {
            b.as_ref()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        format!(
            "id={} addr={} laddr={} fd=8 name={} age={} idle={} flags={} db=0 sub={} psub={} ssub={} \
             multi={} qbuf={} qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem={} \
             tot-mem=0 events=r cmd={} user={} redir=-1 resp={}",
            self.id,
            self.addr,
            self.laddr,
            lossy(&f.name),
            now.duration_since(self.created).as_secs(),
            now.duration_since(last).as_secs(),
            flags,
            f.sub,
            f.psub,
            f.ssub,
            f.multi,
            f.qbuf,
            self.pending_out.load(Ordering::Relaxed),
            if f.last_cmd.is_empty() { "NULL" } else { &f.last_cmd },
            f.user,
            f.resp,
        )
    }
}

#[derive(Default)]
pub struct Clients {
    next_id: AtomicU64,
    map: Mutex<BTreeMap<u64, Arc<ClientHandle>>>,
}

impl Clients {
    /// Registers a new connection; `None` when `maxclients` are already connected.
    pub fn register(
        &self,
        addr: String,
        laddr: String,
        maxclients: usize,
    ) -> Option<(Arc<ClientHandle>, mpsc::UnboundedReceiver<Frame>)> {
        let mut map = self.map.lock();
        if map.len() >= maxclients {
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let (msg_tx, msg_rx) = mpsc::unbounded_channel();
        let now = Instant::now();
        let handle = Arc::new(ClientHandle {
            id,
            addr,
            laddr,
            created: now,
            last_active: Mutex::new(now),
            fields: Mutex::new(ClientFields {
                resp: 2,
                multi: -1,
                user: crate::server::acl::DEFAULT_USER.to_string(),
                ..Default::default()
            }),
            killed: AtomicBool::new(false),
            unblock: AtomicU8::new(0),
            kill_signal: Notify::new(),
            kill_write: Notify::new(),
            msg_tx,
            pending_out: AtomicUsize::new(0),
            soft_over_since: AtomicU64::new(0),
        });
        map.insert(id, handle.clone());
        Some((handle, msg_rx))
    }

    pub fn unregister(&self, id: u64) {
        self.map.lock().remove(&id);
    }

    pub fn count(&self) -> usize {
        self.map.lock().len()
    }

    pub fn all(&self) -> Vec<Arc<ClientHandle>> {
        self.map.lock().values().cloned().collect()
    }

    pub fn get(&self, id: u64) -> Option<Arc<ClientHandle>> {
        self.map.lock().get(&id).cloned()
    }

    pub fn blocked_count(&self) -> usize {
        self.map
            .lock()
            .values()
            .filter(|c| c.fields.lock().blocked)
            .count()
    }

    pub fn pubsub_count(&self) -> usize {
        self.map
            .lock()
            .values()
            .filter(|c| {
                let f = c.fields.lock();
                f.sub + f.psub + f.ssub > 0
            })
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_enforces_maxclients_and_kills() {
        let clients = Clients::default();
        let (a, _rx_a) = clients.register("1.1.1.1:1".into(), "l".into(), 2).unwrap();
        let (b, mut rx_b) = clients.register("1.1.1.1:2".into(), "l".into(), 2).unwrap();
        assert!(clients.register("x".into(), "l".into(), 2).is_none());
        assert_eq!((a.id, b.id), (1, 2));
        let limit = OutputLimit {
            hard: 1000,
            soft: 100,
            soft_secs: 0,
        };
        b.deliver(Frame::bulk("m"), 1, &limit);
        assert_eq!(rx_b.try_recv().ok(), Some(Frame::bulk("m")));
        b.deliver(Frame::bulk("big"), 1001, &limit);
        assert!(b.is_killed());

        clients.unregister(a.id);
        assert_eq!(clients.count(), 1);
        let line = b.describe(Instant::now());
        assert!(line.starts_with("id=2 addr=1.1.1.1:2 laddr=l fd=8 name= age=0 idle=0 flags=N"));
        // Over the soft limit: tolerated for its seconds, then disconnected.
        let (c, _rx_c) = clients.register("1.1.1.1:3".into(), "l".into(), 3).unwrap();
        let soft = OutputLimit {
            hard: 0,
            soft: 100,
            soft_secs: 1,
        };
        c.deliver(Frame::bulk("x"), 150, &soft);
        assert!(!c.is_killed());
        c.pending_out.store(0, Ordering::Relaxed);
        c.deliver(Frame::bulk("x"), 10, &soft);
        std::thread::sleep(Duration::from_millis(1100));
        c.deliver(Frame::bulk("x"), 150, &soft);
        assert!(
            !c.is_killed(),
            "the soft clock restarts once under the limit"
        );
        std::thread::sleep(Duration::from_millis(1100));
        c.deliver(Frame::bulk("x"), 1, &soft);
        assert!(c.is_killed());
        clients.unregister(c.id);
    }
}
