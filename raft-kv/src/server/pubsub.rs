//! Pub/Sub on one node: channels, patterns and shard channels (which behave like channels on a
//! single node but are a separate namespace, as in Redis).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use super::clients::ClientHandle;
use super::settings::OutputLimit;
use crate::protocol::{matches, Frame};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubKind {
    Channel,
    Pattern,
    Shard,
}

impl SubKind {
    pub fn subscribe_word(self) -> &'static str {
        match self {
            SubKind::Channel => "subscribe",
            SubKind::Pattern => "psubscribe",
            SubKind::Shard => "ssubscribe",
        }
    }

    pub fn unsubscribe_word(self) -> &'static str {
        match self {
            SubKind::Channel => "unsubscribe",
            SubKind::Pattern => "punsubscribe",
            SubKind::Shard => "sunsubscribe",
        }
    }
}

type Subscribers = HashMap<Bytes, HashMap<u64, Arc<ClientHandle>>>;

#[derive(Default)]
struct Inner {
    channels: Subscribers,
    patterns: Subscribers,
    shard: Subscribers,
}

impl Inner {
    fn table(&mut self, kind: SubKind) -> &mut Subscribers {
        match kind {
            SubKind::Channel => &mut self.channels,
            SubKind::Pattern => &mut self.patterns,
            SubKind::Shard => &mut self.shard,
        }
    }
}

#[derive(Default)]
pub struct PubSub {
    inner: Mutex<Inner>,
}

/// Rough encoded size of a message, for the subscriber's output limit.
fn frame_size(parts: &[&[u8]]) -> usize {
    parts.iter().map(|p| p.len() + 16).sum::<usize>() + 8
}

impl PubSub {
    pub fn subscribe(&self, kind: SubKind, name: &Bytes, client: &Arc<ClientHandle>) {
        self.inner
            .lock()
            .table(kind)
            .entry(name.clone())
            .or_default()
            .insert(client.id, client.clone());
    }

    pub fn unsubscribe(&self, kind: SubKind, name: &[u8], client_id: u64) {
        let mut inner = self.inner.lock();
        let table = inner.table(kind);
        if let Some(subs) = table.get_mut(name) {
            subs.remove(&client_id);
            if subs.is_empty() {
                table.remove(name);
            }
        }
    }

    /// PUBLISH / SPUBLISH: delivers to channel subscribers (and, for PUBLISH, pattern
    /// subscribers); returns how many clients received it.
    pub fn publish(
        &self,
        shard: bool,
        channel: &Bytes,
        message: &Bytes,
        limit: &OutputLimit,
    ) -> i64 {
        let inner = self.inner.lock();
        let mut n = 0;
        let (table, word) = if shard {
            (&inner.shard, "smessage")
        } else {
            (&inner.channels, "message")
        };
        if let Some(subs) = table.get(channel) {
            let size = frame_size(&[word.as_bytes(), &channel[..], &message[..]]);
            for c in subs.values() {
                let f = Frame::Push(vec![
                    Frame::bulk(word),
                    Frame::Bulk(channel.clone()),
                    Frame::Bulk(message.clone()),
                ]);
                n += c.deliver(f, size, limit) as i64;
            }
        }
        if !shard {
            for (pattern, subs) in &inner.patterns {
                if !matches(pattern, channel, false) {
                    continue;
                }
                let size =
                    frame_size(&[&b"pmessage"[..], &pattern[..], &channel[..], &message[..]]);
                for c in subs.values() {
                    let f = Frame::Push(vec![
                        Frame::bulk("pmessage"),
                        Frame::Bulk(pattern.clone()),
                        Frame::Bulk(channel.clone()),
                        Frame::Bulk(message.clone()),
                    ]);
                    n += c.deliver(f, size, limit) as i64;
                }
            }
        }
        n
    }

    /// PUBSUB CHANNELS / SHARDCHANNELS [pattern].
    pub fn channels(&self, shard: bool, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let mut inner = self.inner.lock();
        let table = inner.table(if shard {
            SubKind::Shard
        } else {
            SubKind::Channel
        });
        table
            .keys()
            .filter(|c| pattern.is_none_or(|p| matches(p, c, false)))
            .cloned()
            .collect()
    }

    /// PUBSUB NUMSUB / SHARDNUMSUB channel.
    pub fn numsub(&self, shard: bool, channel: &[u8]) -> i64 {
        let mut inner = self.inner.lock();
        let table = inner.table(if shard {
            SubKind::Shard
        } else {
            SubKind::Channel
        });
        table.get(channel).map(|s| s.len() as i64).unwrap_or(0)
    }

    /// PUBSUB NUMPAT: distinct patterns with at least one subscriber.
    pub fn numpat(&self) -> i64 {
        self.inner.lock().patterns.len() as i64
    }

    /// Every subscription: (kind, channel or pattern, client).
    pub fn subscriptions(&self) -> Vec<(SubKind, Bytes, Arc<ClientHandle>)> {
        let inner = self.inner.lock();
        let mut out = Vec::new();
        for (kind, table) in [
            (SubKind::Channel, &inner.channels),
            (SubKind::Pattern, &inner.patterns),
            (SubKind::Shard, &inner.shard),
        ] {
            for (name, subs) in table {
                out.extend(subs.values().map(|c| (kind, name.clone(), c.clone())));
            }
        }
        out
    }

    pub fn counts(&self) -> (usize, usize, usize) {
        let inner = self.inner.lock();
        (
            inner.channels.len(),
            inner.patterns.len(),
            inner.shard.len(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::clients::Clients;

    #[test]
    fn publish_reaches_channel_and_pattern_subscribers() {
        let clients = Clients::default();
        let (a, mut rx_a) = clients.register("a".into(), "l".into(), 10).unwrap();
        let (b, mut rx_b) = clients.register("b".into(), "l".into(), 10).unwrap();
        let ps = PubSub::default();
        ps.subscribe(SubKind::Channel, &Bytes::from("news"), &a);
        ps.subscribe(SubKind::Pattern, &Bytes::from("n*"), &b);
        ps.subscribe(SubKind::Shard, &Bytes::from("news"), &b);
        assert_eq!(
            ps.publish(
                false,
                &Bytes::from("news"),
                &Bytes::from("hi"),
                &OutputLimit::default()
            ),
            2
        );
        assert_eq!(
            rx_a.try_recv().ok(),
            Some(Frame::Push(vec![
                Frame::bulk("message"),
                Frame::bulk("news"),
                Frame::bulk("hi")
            ]))
        );
        assert_eq!(
            rx_b.try_recv().ok(),
            Some(Frame::Push(vec![
                Frame::bulk("pmessage"),
                Frame::bulk("n*"),
                Frame::bulk("news"),
                Frame::bulk("hi")
            ]))
        );
        assert_eq!(
            ps.publish(
                true,
                &Bytes::from("news"),
                &Bytes::from("s"),
                &OutputLimit::default()
            ),
            1
        );
        assert_eq!(ps.numsub(false, b"news"), 1);
        assert_eq!(ps.numpat(), 1);
        assert_eq!(ps.channels(false, Some(b"x*")), Vec::<Bytes>::new());
        ps.unsubscribe(SubKind::Channel, b"news", a.id);
        assert_eq!(ps.numsub(false, b"news"), 0);
        assert_eq!(
            ps.publish(
                false,
                &Bytes::from("other"),
                &Bytes::from("x"),
                &OutputLimit::default()
            ),
            0
        );
    }
}
