//! Sorted-set operations over the key encoding.
//!
//! Layout: `Meta.size` = cardinality; `Cf::Sub` `sub_key(key, version, member)` -> score as
//! 8-byte big-endian f64 bits; `Cf::Score` `sub_prefix(key, version) | encode_score(score) |
//! member` -> empty, which orders members by (score, member bytes) exactly like Redis'
//! skiplist. Rank-based access walks the score index, so it costs O(rank) (from whichever end
//! is closer for ranges).

use super::hash as elems;
use crate::cmd::CmdError;
use crate::storage::encoding::{
    decode_score, encode_score, prefix_end, sub_prefix, Cf, DataType, Meta,
};
use crate::storage::Ctx;

pub fn lookup(ctx: &Ctx, key: &[u8]) -> Result<Option<Meta>, CmdError> {
    ctx.meta_of(key, DataType::ZSet)
}

/// Redis' compact sorted sets store a zero score as the integer 0, dropping the sign.
pub fn normalize(score: f64) -> f64 {
    if score == 0.0 {
        0.0
    } else {
        score
    }
}

fn decode_value(raw: &[u8]) -> Option<f64> {
    Some(f64::from_bits(u64::from_be_bytes(
        raw.get(..8)?.try_into().ok()?,
    )))
}

fn corrupt() -> CmdError {
    CmdError::Storage("corrupt sorted-set record".into())
}

pub fn score(ctx: &Ctx, key: &[u8], meta: &Meta, member: &[u8]) -> Result<Option<f64>, CmdError> {
    match elems::get(ctx, key, meta, member)? {
        Some(raw) => Ok(Some(decode_value(&raw).ok_or_else(corrupt)?)),
        None => Ok(None),
    }
}

fn index_key(key: &[u8], version: u64, score: f64, member: &[u8]) -> Vec<u8> {
    let mut k = sub_prefix(key, version);
    k.extend_from_slice(&encode_score(score));
    k.extend_from_slice(member);
    k
}

/// Sets `member`'s score (`old` is its current score, if any); counts new members.
pub fn put(
    ctx: &mut Ctx,
    key: &[u8],
    meta: &mut Meta,
    member: &[u8],
    score: f64,
    old: Option<f64>,
) -> Result<(), CmdError> {
    let score = normalize(score);
    if let Some(o) = old {
        if o.to_bits() == score.to_bits() {
            return Ok(());
        }
        ctx.delete(Cf::Score, index_key(key, meta.version, o, member))?;
    }
    let sk = crate::storage::encoding::sub_key(key, meta.version, member);
    ctx.put(Cf::Sub, sk, score.to_bits().to_be_bytes().to_vec())?;
    ctx.put(
        Cf::Score,
        index_key(key, meta.version, score, member),
        Vec::new(),
    )?;
    if old.is_none() {
        meta.size += 1;
    }
    Ok(())
}

/// Removes `member` (whose score is `score`).
pub fn remove_known(
    ctx: &mut Ctx,
    key: &[u8],
    meta: &mut Meta,
    member: &[u8],
    score: f64,
) -> Result<(), CmdError> {
    let sk = crate::storage::encoding::sub_key(key, meta.version, member);
    ctx.delete(Cf::Sub, sk)?;
    ctx.delete(Cf::Score, index_key(key, meta.version, score, member))?;
    meta.size = meta.size.saturating_sub(1);
    Ok(())
}

/// Removes `member`; returns whether it was present.
pub fn remove(ctx: &mut Ctx, key: &[u8], meta: &mut Meta, member: &[u8]) -> Result<bool, CmdError> {
    match score(ctx, key, meta, member)? {
        Some(s) => {
            remove_known(ctx, key, meta, member, s)?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Walks the score index between `lower` and `upper` (suffixes after the collection prefix;
/// an empty `upper` means the end), forward or backward; `f(member, score)` returns false to
/// stop.
fn walk(
    ctx: &Ctx,
    key: &[u8],
    meta: &Meta,
    lower: &[u8],
    upper: Option<&[u8]>,
    reverse: bool,
    mut f: impl FnMut(&[u8], f64) -> Result<bool, CmdError>,
) -> Result<(), CmdError> {
    let prefix = sub_prefix(key, meta.version);
    let mut lo = prefix.clone();
    lo.extend_from_slice(lower);
    let hi = match upper {
        Some(u) => {
            let mut hi = prefix.clone();
            hi.extend_from_slice(u);
            hi
        }
        None => prefix_end(&prefix),
    };
    let plen = prefix.len();
    ctx.scan(Cf::Score, &lo, &hi, reverse, |k, _| {
        let rest = k.get(plen..).ok_or_else(corrupt)?;
        let s = decode_score(rest).ok_or_else(corrupt)?;
        f(&rest[8..], s)
    })
}

/// Every member with its score, in order (or reverse order).
pub fn walk_all(
    ctx: &Ctx,
    key: &[u8],
    meta: &Meta,
    reverse: bool,
    f: impl FnMut(&[u8], f64) -> Result<bool, CmdError>,
) -> Result<(), CmdError> {
    walk(ctx, key, meta, &[], None, reverse, f)
}

/// 0-based rank of `member` in ascending order, O(rank).
pub fn rank(ctx: &Ctx, key: &[u8], meta: &Meta, member: &[u8]) -> Result<Option<u64>, CmdError> {
    let Some(s) = score(ctx, key, meta, member)? else {
        return Ok(None);
    };
    let mut end = encode_score(s).to_vec();
    end.extend_from_slice(member);
    let mut n = 0u64;
    walk(ctx, key, meta, &[], Some(&end), false, |_, _| {
        n += 1;
        Ok(true)
    })?;
    Ok(Some(n))
}

/// Members at ranks `start..=end` (0-based, already clipped to the set, start <= end) counted
/// in the given direction; walks from the nearer end.
pub fn by_rank(
    ctx: &Ctx,
    key: &[u8],
    meta: &Meta,
    start: u64,
    end: u64,
    reverse: bool,
) -> Result<Vec<(Vec<u8>, f64)>, CmdError> {
    let size = meta.size;
    let want = (end - start + 1) as usize;
    let mut out = Vec::with_capacity(want.min(1 << 16));
    let from_far_end = start > size.saturating_sub(1 + end);
    let (skip, dir) = if from_far_end {
        (size.saturating_sub(1 + end), !reverse)
    } else {
        (start, reverse)
    };
    let mut i = 0u64;
    walk_all(ctx, key, meta, dir, |m, s| {
        if i >= skip {
            out.push((m.to_vec(), s));
        }
        i += 1;
        Ok(out.len() < want)
    })?;
    if from_far_end {
        out.reverse();
    }
    Ok(out)
}

/// A score interval as Redis parses it (`(` for exclusive bounds).
#[derive(Clone, Copy, Debug)]
pub struct ScoreRange {
    pub min: f64,
    pub max: f64,
    pub minex: bool,
    pub maxex: bool,
}

impl ScoreRange {
    pub fn gte_min(&self, s: f64) -> bool {
        if self.minex {
            s > self.min
        } else {
            s >= self.min
        }
    }

    pub fn lte_max(&self, s: f64) -> bool {
        if self.maxex {
            s < self.max
        } else {
            s <= self.max
        }
    }

    pub fn is_empty(&self) -> bool {
        self.min > self.max || (self.min == self.max && (self.minex || self.maxex))
    }
}

/// OFFSET/LIMIT paging shared by the range walks.
struct Page {
    offset: u64,
    limit: Option<u64>,
    skipped: u64,
    taken: u64,
}

impl Page {
    fn new(offset: u64, limit: Option<u64>) -> Page {
        Page {
            offset,
            limit,
            skipped: 0,
            taken: 0,
        }
    }

    /// Feeds one member inside the range: skipped while under the offset, else handed to
    /// `f`. Returns whether the walk goes on.
    fn feed(
        &mut self,
        m: &[u8],
        s: f64,
        f: &mut impl FnMut(&[u8], f64) -> Result<bool, CmdError>,
    ) -> Result<bool, CmdError> {
        if self.skipped < self.offset {
            self.skipped += 1;
            return Ok(true);
        }
        self.taken += 1;
        if !f(m, s)? {
            return Ok(false);
        }
        Ok(self.limit.is_none_or(|l| self.taken < l))
    }
}

/// Members whose score is in `range`, ascending (or descending), skipping `offset` and taking
/// at most `limit` (`None` = all). `f` returns false to stop early.
// The range walk's knobs mirror ZRANGE's options one to one; a struct would only rename them.
#[allow(clippy::too_many_arguments)]
pub fn by_score(
    ctx: &Ctx,
    key: &[u8],
    meta: &Meta,
    range: &ScoreRange,
    reverse: bool,
    offset: u64,
    limit: Option<u64>,
    mut f: impl FnMut(&[u8], f64) -> Result<bool, CmdError>,
) -> Result<(), CmdError> {
    if range.is_empty() || limit == Some(0) {
        return Ok(());
    }
    let min = encode_score(normalize(range.min));
    let max_end = prefix_end(&encode_score(normalize(range.max)));
    let mut page = Page::new(offset, limit);
    walk(ctx, key, meta, &min, Some(&max_end), reverse, |m, s| {
        let in_range = range.gte_min(s) && range.lte_max(s);
        if !in_range {
            // Only the exclusive boundary scores can be out of range here: skip past them.
            let past = if reverse {
                !range.gte_min(s)
            } else {
                !range.lte_max(s)
            };
            return Ok(!past);
        }
        page.feed(m, s, &mut f)
    })
}

/// One end of a lex range.
#[derive(Clone, Debug, PartialEq)]
pub enum LexBound {
    NegInf,
    PosInf,
    Incl(Vec<u8>),
    Excl(Vec<u8>),
}

impl LexBound {
    /// Redis' `zslParseLexRangeItem`.
    pub fn parse(b: &[u8]) -> Option<LexBound> {
        match b.first()? {
            b'+' if b.len() == 1 => Some(LexBound::PosInf),
            b'-' if b.len() == 1 => Some(LexBound::NegInf),
            b'[' => Some(LexBound::Incl(b[1..].to_vec())),
            b'(' => Some(LexBound::Excl(b[1..].to_vec())),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct LexRange {
    pub min: LexBound,
    pub max: LexBound,
}

impl LexRange {
    pub fn gte_min(&self, m: &[u8]) -> bool {
        match &self.min {
            LexBound::NegInf => true,
            LexBound::PosInf => false,
            LexBound::Incl(v) => m >= v.as_slice(),
            LexBound::Excl(v) => m > v.as_slice(),
        }
    }

    pub fn lte_max(&self, m: &[u8]) -> bool {
        match &self.max {
            LexBound::NegInf => false,
            LexBound::PosInf => true,
            LexBound::Incl(v) => m <= v.as_slice(),
            LexBound::Excl(v) => m < v.as_slice(),
        }
    }

    /// Redis' emptiness test (`zslIsInLexRange` preamble).
    pub fn is_empty(&self) -> bool {
        use LexBound::*;
        match (&self.min, &self.max) {
            (PosInf, _) | (_, NegInf) => true,
            (NegInf, _) | (_, PosInf) => false,
            (Incl(a) | Excl(a), Incl(b) | Excl(b)) => {
                a > b || (a == b && (matches!(self.min, Excl(_)) || matches!(self.max, Excl(_))))
            }
        }
    }
}

/// Members in the lex range (meaningful when all scores are equal, as in Redis), ascending
/// or descending, with `offset`/`limit` as `by_score`.
// The range walk's knobs mirror ZRANGE's options one to one; a struct would only rename them.
#[allow(clippy::too_many_arguments)]
pub fn by_lex(
    ctx: &Ctx,
    key: &[u8],
    meta: &Meta,
    range: &LexRange,
    reverse: bool,
    offset: u64,
    limit: Option<u64>,
    mut f: impl FnMut(&[u8], f64) -> Result<bool, CmdError>,
) -> Result<(), CmdError> {
    if range.is_empty() || limit == Some(0) {
        return Ok(());
    }
    // Seek to the bound within the score of the first (last) member: with equal scores, as
    // lex ranges assume, that is exactly where the range starts.
    let mut edge: Option<f64> = None;
    walk_all(ctx, key, meta, reverse, |_, s| {
        edge = Some(s);
        Ok(false)
    })?;
    let Some(edge) = edge else {
        return Ok(());
    };
    let mut seek = encode_score(edge).to_vec();
    let (lower, upper): (Vec<u8>, Option<Vec<u8>>) = if reverse {
        match &range.max {
            LexBound::Incl(v) => {
                seek.extend_from_slice(v);
                seek.push(0);
                (Vec::new(), Some(seek))
            }
            LexBound::Excl(v) => {
                seek.extend_from_slice(v);
                (Vec::new(), Some(seek))
            }
            _ => (Vec::new(), None),
        }
    } else {
        match &range.min {
            LexBound::Incl(v) | LexBound::Excl(v) => {
                seek.extend_from_slice(v);
                (seek, None)
            }
            _ => (Vec::new(), None),
        }
    };
    let mut page = Page::new(offset, limit);
    walk(ctx, key, meta, &lower, upper.as_deref(), reverse, |m, s| {
        let (before, after) = if reverse {
            (!range.lte_max(m), !range.gte_min(m))
        } else {
            (!range.gte_min(m), !range.lte_max(m))
        };
        if before {
            return Ok(true);
        }
        if after {
            return Ok(false);
        }
        page.feed(m, s, &mut f)
    })
}

/// Replaces whatever `key` holds with a sorted set of `items` (deleting `key` when empty);
/// returns the new cardinality.
pub fn store(ctx: &mut Ctx, key: &[u8], items: &[(Vec<u8>, f64)]) -> Result<u64, CmdError> {
    ctx.delete_key(key)?;
    if items.is_empty() {
        return Ok(0);
    }
    let mut meta = Meta::new_collection(DataType::ZSet, ctx.new_version());
    for (m, s) in items {
        let old = score(ctx, key, &meta, m)?;
        put(ctx, key, &mut meta, m, *s, old)?;
    }
    ctx.put_meta(key, &mut meta)?;
    Ok(meta.size)
}
