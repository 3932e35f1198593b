//! Stream operations over the key encoding.
//!
//! Layout:
//! - `meta.value` = `last_id | max_deleted_id | first_id | entries_added`, each id being
//!   `ms u64 | seq u64` and every integer big-endian (56 bytes). `meta.size` is the length.
//!   Unlike other collections, an empty stream is kept (Redis semantics).
//! - Records in `Cf::Sub` under `sub_prefix(key, version)` followed by a tag byte:
//!   - `0x01 | ms u64 | seq u64` → entry: `n u32 | (len u32 | bytes) * n` (field, value, ...).
//!   - `0x02 | group` → consumer group: `last_id (16) | entries_read i64` (-1 = unknown).
//!   - `0x03 | group_len u32 | group | id` → pending entry:
//!     `delivery_time u64 | delivery_count u64 | consumer`.
//!   - `0x04 | group_len u32 | group | consumer` → consumer: `seen_time u64`.
//!
//! The entry tag keeps entries contiguous and in id order, so ranges are one bounded scan.

use bytes::Bytes;

use crate::cmd::CmdError;
use crate::storage::encoding::{sub_prefix, Cf, DataType, Meta};
use crate::storage::Ctx;

pub const TAG_ENTRY: u8 = 0x01;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    pub fn to_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.ms.to_be_bytes());
        b[8..].copy_from_slice(&self.seq.to_be_bytes());
        b
    }

    pub fn from_bytes(b: &[u8]) -> Option<StreamId> {
        Some(StreamId {
            ms: u64::from_be_bytes(b.get(..8)?.try_into().ok()?),
            seq: u64::from_be_bytes(b.get(8..16)?.try_into().ok()?),
        })
    }

    /// The next id, or None past the maximum.
    pub fn incr(self) -> Option<StreamId> {
        if self.seq == u64::MAX {
            if self.ms == u64::MAX {
                None
            } else {
                Some(StreamId::new(self.ms + 1, 0))
            }
        } else {
            Some(StreamId::new(self.ms, self.seq + 1))
        }
    }

    /// The previous id, or None below 0-0.
    pub fn decr(self) -> Option<StreamId> {
        if self.seq == 0 {
            if self.ms == 0 {
                None
            } else {
                Some(StreamId::new(self.ms - 1, u64::MAX))
            }
        } else {
            Some(StreamId::new(self.ms, self.seq - 1))
        }
    }

    pub fn to_bulk(self) -> Bytes {
        Bytes::from(self.to_string())
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// One stream entry: its id and its field/value pairs (flattened).
pub type Entry = (StreamId, Vec<Bytes>);

pub fn encode_fields(fields: &[Bytes]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + fields.iter().map(|f| f.len() + 4).sum::<usize>());
    out.extend_from_slice(&(fields.len() as u32).to_be_bytes());
    for f in fields {
        out.extend_from_slice(&(f.len() as u32).to_be_bytes());
        out.extend_from_slice(f);
    }
    out
}

pub fn decode_fields(raw: &[u8]) -> Option<Vec<Bytes>> {
    let n = u32::from_be_bytes(raw.get(..4)?.try_into().ok()?) as usize;
    let mut pos = 4;
    let mut out = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let len = u32::from_be_bytes(raw.get(pos..pos + 4)?.try_into().ok()?) as usize;
        pos += 4;
        out.push(Bytes::copy_from_slice(raw.get(pos..pos + len)?));
        pos += len;
    }
    Some(out)
}

/// A loaded stream.
pub struct Stream {
    pub key: Vec<u8>,
    pub meta: Meta,
    pub last_id: StreamId,
    pub max_deleted: StreamId,
    pub first_id: StreamId,
    pub entries_added: u64,
}

fn corrupt(key: &[u8]) -> CmdError {
    CmdError::Storage(format!(
        "corrupt stream metadata for key {:?}",
        String::from_utf8_lossy(key)
    ))
}

impl Stream {
    pub fn load(ctx: &Ctx, key: &[u8]) -> Result<Option<Stream>, CmdError> {
        let Some(meta) = ctx.meta_of(key, DataType::Stream)? else {
            return Ok(None);
        };
        let v = &meta.value;
        let id_at = |i: usize| StreamId::from_bytes(v.get(i..i + 16).unwrap_or(&[]));
        let (Some(last_id), Some(max_deleted), Some(first_id)) = (id_at(0), id_at(16), id_at(32))
        else {
            return Err(corrupt(key));
        };
        let entries_added = v
            .get(48..56)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| corrupt(key))?;
        Ok(Some(Stream {
            key: key.to_vec(),
            meta,
            last_id,
            max_deleted,
            first_id,
            entries_added,
        }))
    }

    /// A new empty stream (stored by `save`); removes any expired record first.
    pub fn create(ctx: &mut Ctx, key: &[u8]) -> Result<Stream, CmdError> {
        ctx.delete_key(key)?;
        Ok(Stream {
            key: key.to_vec(),
            meta: Meta::new_collection(DataType::Stream, ctx.new_version()),
            last_id: StreamId::MIN,
            max_deleted: StreamId::MIN,
            first_id: StreamId::MIN,
            entries_added: 0,
        })
    }

    pub fn len(&self) -> u64 {
        self.meta.size
    }

    pub fn is_empty(&self) -> bool {
        self.meta.size == 0
    }

    fn tagged(&self, tag: u8) -> Vec<u8> {
        let mut k = sub_prefix(&self.key, self.meta.version);
        k.push(tag);
        k
    }

    fn entry_key(&self, id: StreamId) -> Vec<u8> {
        let mut k = self.tagged(TAG_ENTRY);
        k.extend_from_slice(&id.to_bytes());
        k
    }

    pub fn save(&mut self, ctx: &mut Ctx) -> Result<(), CmdError> {
        let mut v = Vec::with_capacity(56);
        v.extend_from_slice(&self.last_id.to_bytes());
        v.extend_from_slice(&self.max_deleted.to_bytes());
        v.extend_from_slice(&self.first_id.to_bytes());
        v.extend_from_slice(&self.entries_added.to_be_bytes());
        self.meta.value = v;
        ctx.put_meta(&self.key, &mut self.meta)
    }

    /// Appends an entry with id `id` (the caller checked `id > last_id`).
    pub fn append(
        &mut self,
        ctx: &mut Ctx,
        id: StreamId,
        fields: &[Bytes],
    ) -> Result<(), CmdError> {
        ctx.put(Cf::Sub, self.entry_key(id), encode_fields(fields))?;
        if self.meta.size == 0 {
            self.first_id = id;
        }
        self.meta.size += 1;
        self.last_id = id;
        self.entries_added += 1;
        Ok(())
    }

    /// Visits entries with `start <= id <= end` in order (or reverse); `f` returns false to stop.
    pub fn visit(
        &self,
        ctx: &Ctx,
        start: StreamId,
        end: StreamId,
        reverse: bool,
        mut f: impl FnMut(StreamId, &[u8]) -> Result<bool, CmdError>,
    ) -> Result<(), CmdError> {
        if start > end {
            return Ok(());
        }
        let lower = self.entry_key(start);
        let mut upper = self.entry_key(end);
        upper.push(0);
        let plen = lower.len() - 16;
        ctx.scan(Cf::Sub, &lower, &upper, reverse, |k, v| {
            let id = StreamId::from_bytes(k.get(plen..).unwrap_or(&[])).unwrap_or_default();
            f(id, v)
        })
    }

    /// Up to `count` entries (0 = all) with `start <= id <= end`.
    pub fn range(
        &self,
        ctx: &Ctx,
        start: StreamId,
        end: StreamId,
        count: u64,
        reverse: bool,
    ) -> Result<Vec<Entry>, CmdError> {
        let mut out = Vec::new();
        self.visit(ctx, start, end, reverse, |id, v| {
            out.push((id, decode_fields(v).unwrap_or_default()));
            Ok(count == 0 || (out.len() as u64) < count)
        })?;
        Ok(out)
    }

    /// Whether an entry with `id` exists.
    pub fn has(&self, ctx: &Ctx, id: StreamId) -> Result<bool, CmdError> {
        Ok(ctx.get(Cf::Sub, &self.entry_key(id))?.is_some())
    }

    /// Deletes the entry `id` if present; returns whether it was.
    pub fn delete(&mut self, ctx: &mut Ctx, id: StreamId) -> Result<bool, CmdError> {
        if !self.has(ctx, id)? {
            return Ok(false);
        }
        ctx.delete(Cf::Sub, self.entry_key(id))?;
        self.meta.size -= 1;
        if id > self.max_deleted {
            self.max_deleted = id;
        }
        Ok(true)
    }

    /// Recomputes `first_id` after deletions from the front.
    pub fn refresh_first(&mut self, ctx: &Ctx) -> Result<(), CmdError> {
        if self.meta.size == 0 {
            self.first_id = StreamId::MIN;
            return Ok(());
        }
        let mut first = StreamId::MIN;
        self.visit(ctx, StreamId::MIN, StreamId::MAX, false, |id, _| {
            first = id;
            Ok(false)
        })?;
        self.first_id = first;
        Ok(())
    }

    /// Deletes up to `n` entries from the front, stopping at the first id `>= below`.
    /// Returns how many were deleted. Like Redis' trimming, this leaves `max_deleted` alone.
    pub fn trim_front(&mut self, ctx: &mut Ctx, n: u64, below: StreamId) -> Result<u64, CmdError> {
        if n == 0 {
            return Ok(0);
        }
        let mut ids = Vec::new();
        self.visit(ctx, StreamId::MIN, StreamId::MAX, false, |id, _| {
            if id >= below {
                return Ok(false);
            }
            ids.push(id);
            Ok((ids.len() as u64) < n)
        })?;
        for id in &ids {
            ctx.delete(Cf::Sub, self.entry_key(*id))?;
            self.meta.size -= 1;
        }
        if !ids.is_empty() {
            self.refresh_first(ctx)?;
        }
        Ok(ids.len() as u64)
    }

    /// Counts entries with id `< below`, stopping at `cap`.
    pub fn count_below(&self, ctx: &Ctx, below: StreamId, cap: u64) -> Result<u64, CmdError> {
        let mut n = 0u64;
        if below == StreamId::MIN {
            return Ok(0);
        }
        self.visit(
            ctx,
            StreamId::MIN,
            below.decr().unwrap_or_default(),
            false,
            |_, _| {
                n += 1;
                Ok(n < cap)
            },
        )?;
        Ok(n)
    }
}

pub const TAG_GROUP: u8 = 0x02;
pub const TAG_PEL: u8 = 0x03;
pub const TAG_CONSUMER: u8 = 0x04;

/// Redis' `SCG_INVALID_ENTRIES_READ`.
pub const INVALID_ENTRIES_READ: i64 = -1;

/// A consumer group's state.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub name: Vec<u8>,
    pub last_id: StreamId,
    pub entries_read: i64,
}

/// A pending entry of a group.
#[derive(Clone, Debug, PartialEq)]
pub struct Pending {
    pub id: StreamId,
    pub delivery_time: u64,
    pub delivery_count: u64,
    pub consumer: Vec<u8>,
}

/// A consumer of a group.
#[derive(Clone, Debug, PartialEq)]
pub struct Consumer {
    pub name: Vec<u8>,
    pub seen_time: u64,
}

fn u64_at(b: &[u8], i: usize) -> u64 {
    b.get(i..i + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

impl Stream {
    fn group_scoped(&self, tag: u8, group: &[u8]) -> Vec<u8> {
        let mut k = self.tagged(tag);
        k.extend_from_slice(&(group.len() as u32).to_be_bytes());
        k.extend_from_slice(group);
        k
    }

    fn group_key(&self, group: &[u8]) -> Vec<u8> {
        let mut k = self.tagged(TAG_GROUP);
        k.extend_from_slice(group);
        k
    }

    pub fn get_group(&self, ctx: &Ctx, name: &[u8]) -> Result<Option<Group>, CmdError> {
        Ok(ctx.get(Cf::Sub, &self.group_key(name))?.map(|v| Group {
            name: name.to_vec(),
            last_id: StreamId::from_bytes(&v).unwrap_or_default(),
            entries_read: u64_at(&v, 16) as i64,
        }))
    }

    pub fn put_group(&self, ctx: &mut Ctx, g: &Group) -> Result<(), CmdError> {
        let mut v = g.last_id.to_bytes().to_vec();
        v.extend_from_slice(&(g.entries_read as u64).to_be_bytes());
        ctx.put(Cf::Sub, self.group_key(&g.name), v)
    }

    /// Every group, in name order.
    pub fn groups(&self, ctx: &Ctx) -> Result<Vec<Group>, CmdError> {
        let prefix = self.tagged(TAG_GROUP);
        let end = crate::storage::encoding::prefix_end(&prefix);
        let mut out = Vec::new();
        ctx.scan(Cf::Sub, &prefix, &end, false, |k, v| {
            out.push(Group {
                name: k.get(prefix.len()..).unwrap_or(&[]).to_vec(),
                last_id: StreamId::from_bytes(v).unwrap_or_default(),
                entries_read: u64_at(v, 16) as i64,
            });
            Ok(true)
        })?;
        Ok(out)
    }

    /// Deletes a group with its consumers and pending entries.
    pub fn delete_group(&self, ctx: &mut Ctx, name: &[u8]) -> Result<(), CmdError> {
        ctx.delete(Cf::Sub, self.group_key(name))?;
        for tag in [TAG_PEL, TAG_CONSUMER] {
            let prefix = self.group_scoped(tag, name);
            let end = crate::storage::encoding::prefix_end(&prefix);
            let mut keys = Vec::new();
            ctx.scan(Cf::Sub, &prefix, &end, false, |k, _| {
                keys.push(k.to_vec());
                Ok(true)
            })?;
            for k in keys {
                ctx.delete(Cf::Sub, k)?;
            }
        }
        Ok(())
    }

    fn consumer_key(&self, group: &[u8], name: &[u8]) -> Vec<u8> {
        let mut k = self.group_scoped(TAG_CONSUMER, group);
        k.extend_from_slice(name);
        k
    }

    pub fn get_consumer(
        &self,
        ctx: &Ctx,
        group: &[u8],
        name: &[u8],
    ) -> Result<Option<Consumer>, CmdError> {
        Ok(ctx
            .get(Cf::Sub, &self.consumer_key(group, name))?
            .map(|v| Consumer {
                name: name.to_vec(),
                seen_time: u64_at(&v, 0),
            }))
    }

    pub fn put_consumer(&self, ctx: &mut Ctx, group: &[u8], c: &Consumer) -> Result<(), CmdError> {
        let v = c.seen_time.to_be_bytes().to_vec();
        ctx.put(Cf::Sub, self.consumer_key(group, &c.name), v)
    }

    /// Every consumer of `group`, in name order.
    pub fn consumers(&self, ctx: &Ctx, group: &[u8]) -> Result<Vec<Consumer>, CmdError> {
        let prefix = self.group_scoped(TAG_CONSUMER, group);
        let end = crate::storage::encoding::prefix_end(&prefix);
        let mut out = Vec::new();
        ctx.scan(Cf::Sub, &prefix, &end, false, |k, v| {
            out.push(Consumer {
                name: k.get(prefix.len()..).unwrap_or(&[]).to_vec(),
                seen_time: u64_at(v, 0),
            });
            Ok(true)
        })?;
        Ok(out)
    }

    /// Deletes a consumer and its pending entries; returns how many were pending.
    pub fn delete_consumer(
        &self,
        ctx: &mut Ctx,
        group: &[u8],
        name: &[u8],
    ) -> Result<u64, CmdError> {
        let mut ids = Vec::new();
        self.visit_pel(ctx, group, StreamId::MIN, StreamId::MAX, |p| {
            if p.consumer == name {
                ids.push(p.id);
            }
            Ok(true)
        })?;
        for id in &ids {
            ctx.delete(Cf::Sub, self.pel_key(group, *id))?;
        }
        ctx.delete(Cf::Sub, self.consumer_key(group, name))?;
        Ok(ids.len() as u64)
    }

    fn pel_key(&self, group: &[u8], id: StreamId) -> Vec<u8> {
        let mut k = self.group_scoped(TAG_PEL, group);
        k.extend_from_slice(&id.to_bytes());
        k
    }

    fn decode_pel(id: StreamId, v: &[u8]) -> Pending {
        Pending {
            id,
            delivery_time: u64_at(v, 0),
            delivery_count: u64_at(v, 8),
            consumer: v.get(16..).unwrap_or(&[]).to_vec(),
        }
    }

    pub fn get_pending(
        &self,
        ctx: &Ctx,
        group: &[u8],
        id: StreamId,
    ) -> Result<Option<Pending>, CmdError> {
        Ok(ctx
            .get(Cf::Sub, &self.pel_key(group, id))?
            .map(|v| Stream::decode_pel(id, &v)))
    }

    pub fn put_pending(&self, ctx: &mut Ctx, group: &[u8], p: &Pending) -> Result<(), CmdError> {
        let mut v = p.delivery_time.to_be_bytes().to_vec();
        v.extend_from_slice(&p.delivery_count.to_be_bytes());
        v.extend_from_slice(&p.consumer);
        ctx.put(Cf::Sub, self.pel_key(group, p.id), v)
    }

    pub fn delete_pending(
        &self,
        ctx: &mut Ctx,
        group: &[u8],
        id: StreamId,
    ) -> Result<(), CmdError> {
        ctx.delete(Cf::Sub, self.pel_key(group, id))
    }

    /// Visits the group's pending entries with `start <= id <= end` in id order.
    pub fn visit_pel(
        &self,
        ctx: &Ctx,
        group: &[u8],
        start: StreamId,
        end: StreamId,
        mut f: impl FnMut(Pending) -> Result<bool, CmdError>,
    ) -> Result<(), CmdError> {
        if start > end {
            return Ok(());
        }
        let lower = self.pel_key(group, start);
        let mut upper = self.pel_key(group, end);
        upper.push(0);
        let plen = lower.len() - 16;
        ctx.scan(Cf::Sub, &lower, &upper, false, |k, v| {
            let id = StreamId::from_bytes(k.get(plen..).unwrap_or(&[])).unwrap_or_default();
            f(Stream::decode_pel(id, v))
        })
    }

    /// The entry `id`'s fields, if it exists.
    pub fn get_entry(&self, ctx: &Ctx, id: StreamId) -> Result<Option<Vec<Bytes>>, CmdError> {
        Ok(ctx
            .get(Cf::Sub, &self.entry_key(id))?
            .map(|v| decode_fields(&v).unwrap_or_default()))
    }

    /// The id of the last live entry (0-0 when empty).
    pub fn last_entry_id(&self, ctx: &Ctx) -> Result<StreamId, CmdError> {
        let mut last = StreamId::MIN;
        self.visit(ctx, StreamId::MIN, StreamId::MAX, true, |id, _| {
            last = id;
            Ok(false)
        })?;
        Ok(last)
    }

    /// Redis' `streamRangeHasTombstones(s, start, NULL)`.
    pub fn has_tombstones_from(&self, start: StreamId) -> bool {
        if self.is_empty() || self.max_deleted == StreamId::MIN {
            return false;
        }
        start <= self.max_deleted
    }

    /// Redis' `streamEstimateDistanceFromFirstEverEntry`.
    pub fn estimate_distance(&self, id: StreamId) -> i64 {
        if self.entries_added == 0 {
            return 0;
        }
        if self.is_empty() && id <= self.last_id {
            return self.entries_added as i64;
        }
        if id == self.last_id {
            return self.entries_added as i64;
        } else if id > self.last_id {
            return INVALID_ENTRIES_READ;
        }
        if self.max_deleted == StreamId::MIN || self.max_deleted < self.first_id {
            if id < self.first_id {
                return (self.entries_added - self.len()) as i64;
            } else if id == self.first_id {
                return (self.entries_added - self.len() + 1) as i64;
            }
        }
        INVALID_ENTRIES_READ
    }

    /// A group's lag as XINFO GROUPS reports it (None = unknown).
    pub fn group_lag(&self, g: &Group) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if g.entries_read != INVALID_ENTRIES_READ && !self.has_tombstones_from(g.last_id) {
            return Some(self.entries_added as i64 - g.entries_read);
        }
        let read = self.estimate_distance(g.last_id);
        if read != INVALID_ENTRIES_READ {
            Some(self.entries_added as i64 - read)
        } else {
            None
        }
    }
}
