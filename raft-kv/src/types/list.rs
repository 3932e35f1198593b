//! List operations over the key encoding.
//!
//! Layout: `meta.value` = `head u64 | tail u64` (big-endian); element `i` (0-based from the
//! head) lives in `Cf::Sub` at `sub_key(key, version, (head + i) as 8 BE bytes)`, so live
//! records are exactly the indexes `head <= idx < tail`. A new list starts at
//! `head = tail = 2^63` so pushes on both ends have room. `meta.size` is the length.
//! Index access is one point read; ranges are one bounded scan.

use bytes::Bytes;

use crate::cmd::CmdError;
use crate::storage::encoding::{sub_key, sub_prefix, Cf, DataType, Meta};
use crate::storage::Ctx;

const START: u64 = 1 << 63;

/// A loaded list: its key, metadata and decoded head/tail.
pub struct List {
    pub key: Vec<u8>,
    pub meta: Meta,
    head: u64,
    tail: u64,
}

impl List {
    /// The live list at `key`; `WRONGTYPE` for another type.
    pub fn load(ctx: &Ctx, key: &[u8]) -> Result<Option<List>, CmdError> {
        let Some(meta) = ctx.meta_of(key, DataType::List)? else {
            return Ok(None);
        };
        let (head, tail) = match (meta.value.get(0..8), meta.value.get(8..16)) {
            (Some(h), Some(t)) => (
                u64::from_be_bytes(h.try_into().unwrap_or([0; 8])),
                u64::from_be_bytes(t.try_into().unwrap_or([0; 8])),
            ),
            _ => {
                return Err(CmdError::Storage(format!(
                    "corrupt list metadata for key {:?}",
                    String::from_utf8_lossy(key)
                )))
            }
        };
        Ok(Some(List {
            key: key.to_vec(),
            meta,
            head,
            tail,
        }))
    }

    /// A new empty list (not stored until `save`); removes any expired record first.
    pub fn create(ctx: &mut Ctx, key: &[u8]) -> Result<List, CmdError> {
        ctx.delete_key(key)?;
        let meta = Meta::new_collection(DataType::List, ctx.new_version());
        Ok(List {
            key: key.to_vec(),
            meta,
            head: START,
            tail: START,
        })
    }

    /// The list at `key`, created empty if absent; `WRONGTYPE` for another type.
    pub fn load_or_create(ctx: &mut Ctx, key: &[u8]) -> Result<List, CmdError> {
        match List::load(ctx, key)? {
            Some(l) => Ok(l),
            None => List::create(ctx, key),
        }
    }

    pub fn len(&self) -> u64 {
        self.tail - self.head
    }

    pub fn is_empty(&self) -> bool {
        self.tail == self.head
    }

    fn raw_key(&self, idx: u64) -> Vec<u8> {
        sub_key(&self.key, self.meta.version, &idx.to_be_bytes())
    }

    /// Converts a Redis index (negative from the tail) into a 0-based position.
    pub fn position(&self, index: i64) -> Option<u64> {
        let len = self.len() as i64;
        let i = if index < 0 {
            len.checked_add(index)?
        } else {
            index
        };
        if i < 0 || i >= len {
            None
        } else {
            Some(i as u64)
        }
    }

    /// The element at 0-based position `pos`.
    pub fn get(&self, ctx: &Ctx, pos: u64) -> Result<Option<Bytes>, CmdError> {
        if pos >= self.len() {
            return Ok(None);
        }
        Ok(ctx
            .get(Cf::Sub, &self.raw_key(self.head + pos))?
            .map(Bytes::from))
    }

    /// Overwrites the element at 0-based position `pos` (must exist).
    pub fn set(&mut self, ctx: &mut Ctx, pos: u64, value: &[u8]) -> Result<(), CmdError> {
        ctx.put(Cf::Sub, self.raw_key(self.head + pos), value.to_vec())
    }

    /// Visits positions `start..=stop` (clamped) in order or reverse; `f` returns false to stop.
    pub fn visit(
        &self,
        ctx: &Ctx,
        start: u64,
        stop: u64,
        reverse: bool,
        mut f: impl FnMut(u64, &[u8]) -> Result<bool, CmdError>,
    ) -> Result<(), CmdError> {
        if self.is_empty() || start >= self.len() || start > stop {
            return Ok(());
        }
        let stop = stop.min(self.len() - 1);
        let lower = self.raw_key(self.head + start);
        let upper = self.raw_key(self.head + stop + 1);
        let plen = sub_prefix(&self.key, self.meta.version).len();
        let head = self.head;
        ctx.scan(Cf::Sub, &lower, &upper, reverse, |k, v| {
            let idx = k
                .get(plen..plen + 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
                .unwrap_or(head);
            f(idx - head, v)
        })
    }

    /// The elements at positions `start..=stop` (clamped).
    pub fn range(&self, ctx: &Ctx, start: u64, stop: u64) -> Result<Vec<Bytes>, CmdError> {
        let mut out = Vec::new();
        self.visit(ctx, start, stop, false, |_, v| {
            out.push(Bytes::copy_from_slice(v));
            Ok(true)
        })?;
        Ok(out)
    }

    /// Pushes one element at the head (`left`) or the tail.
    pub fn push(&mut self, ctx: &mut Ctx, value: &[u8], left: bool) -> Result<(), CmdError> {
        let idx = if left {
            self.head -= 1;
            self.head
        } else {
            self.tail += 1;
            self.tail - 1
        };
        ctx.put(Cf::Sub, self.raw_key(idx), value.to_vec())
    }

    /// Pops up to `count` elements from the head (`left`) or the tail, in pop order.
    pub fn pop(&mut self, ctx: &mut Ctx, left: bool, count: u64) -> Result<Vec<Bytes>, CmdError> {
        let n = count.min(self.len());
        if n == 0 {
            return Ok(Vec::new());
        }
        let (start, stop) = if left {
            (0, n - 1)
        } else {
            (self.len() - n, self.len() - 1)
        };
        let mut out = Vec::with_capacity(n as usize);
        self.visit(ctx, start, stop, !left, |_, v| {
            out.push(Bytes::copy_from_slice(v));
            Ok(true)
        })?;
        for i in start..=stop {
            ctx.delete(Cf::Sub, self.raw_key(self.head + i))?;
        }
        if left {
            self.head += n;
        } else {
            self.tail -= n;
        }
        Ok(out)
    }

    /// Keeps only positions `start..=stop`; an empty range empties the list.
    pub fn trim(&mut self, ctx: &mut Ctx, start: u64, stop: u64) -> Result<(), CmdError> {
        let len = self.len();
        let (keep_from, keep_to) = if start > stop || start >= len {
            (len, len) // nothing kept
        } else {
            (start, stop.min(len - 1) + 1)
        };
        for i in 0..keep_from {
            ctx.delete(Cf::Sub, self.raw_key(self.head + i))?;
        }
        for i in keep_to..len {
            ctx.delete(Cf::Sub, self.raw_key(self.head + i))?;
        }
        if keep_from >= keep_to {
            self.tail = self.head;
        } else {
            self.tail = self.head + keep_to;
            self.head += keep_from;
        }
        Ok(())
    }

    /// Inserts `value` so that it ends up at position `pos` (0..=len), shifting the shorter
    /// side by one.
    pub fn insert_at(&mut self, ctx: &mut Ctx, pos: u64, value: &[u8]) -> Result<(), CmdError> {
        let len = self.len();
        if pos <= len / 2 {
            // Shift positions 0..pos one step towards the head.
            let moved = if pos > 0 {
                self.range(ctx, 0, pos - 1)?
            } else {
                Vec::new()
            };
            self.head -= 1;
            for (i, v) in moved.into_iter().enumerate() {
                ctx.put(Cf::Sub, self.raw_key(self.head + i as u64), v.to_vec())?;
            }
            ctx.put(Cf::Sub, self.raw_key(self.head + pos), value.to_vec())
        } else {
            // Shift positions pos..len one step towards the tail.
            let moved = self.range(ctx, pos, len - 1)?;
            for (i, v) in moved.into_iter().enumerate() {
                ctx.put(
                    Cf::Sub,
                    self.raw_key(self.head + pos + 1 + i as u64),
                    v.to_vec(),
                )?;
            }
            self.tail += 1;
            ctx.put(Cf::Sub, self.raw_key(self.head + pos), value.to_vec())
        }
    }

    /// Removes the elements at the given sorted, distinct positions, compacting the shorter
    /// side.
    pub fn remove_positions(&mut self, ctx: &mut Ctx, positions: &[u64]) -> Result<(), CmdError> {
        let (Some(&first), Some(&last)) = (positions.first(), positions.last()) else {
            return Ok(());
        };
        let len = self.len();
        let removed = positions.len() as u64;
        let is_removed = |p: u64| positions.binary_search(&p).is_ok();
        if len - first <= last + 1 {
            // Compact first..len towards the head.
            let mut survivors = Vec::new();
            self.visit(ctx, first, len - 1, false, |p, v| {
                if !is_removed(p) {
                    survivors.push(v.to_vec());
                }
                Ok(true)
            })?;
            for (i, v) in survivors.into_iter().enumerate() {
                ctx.put(Cf::Sub, self.raw_key(self.head + first + i as u64), v)?;
            }
            for i in len - removed..len {
                ctx.delete(Cf::Sub, self.raw_key(self.head + i))?;
            }
            self.tail -= removed;
        } else {
            // Compact 0..=last towards the tail.
            let mut survivors = Vec::new();
            self.visit(ctx, 0, last, false, |p, v| {
                if !is_removed(p) {
                    survivors.push(v.to_vec());
                }
                Ok(true)
            })?;
            let new_head = self.head + removed;
            for (i, v) in survivors.into_iter().enumerate() {
                ctx.put(Cf::Sub, self.raw_key(new_head + i as u64), v)?;
            }
            for i in 0..removed {
                ctx.delete(Cf::Sub, self.raw_key(self.head + i))?;
            }
            self.head = new_head;
        }
        Ok(())
    }

    /// Stores the metadata, or deletes the key if the list became empty.
    pub fn save(&mut self, ctx: &mut Ctx) -> Result<(), CmdError> {
        if self.is_empty() {
            ctx.delete_key(&self.key)?;
            return Ok(());
        }
        self.meta.size = self.len();
        let mut value = Vec::with_capacity(16);
        value.extend_from_slice(&self.head.to_be_bytes());
        value.extend_from_slice(&self.tail.to_be_bytes());
        self.meta.value = value;
        ctx.put_meta(&self.key, &mut self.meta)
    }
}
