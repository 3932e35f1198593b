//! Hash operations over the key encoding, and the element-record helpers that sets and sorted
//! sets share (a set is a hash whose values are empty; a sorted set keeps member -> score here).
//!
//! Layout: the hash's `Meta` (`size` = number of fields) in `meta`, one record per field in
//! `Cf::Sub` keyed `sub_key(key, version, field)` holding the value. Iteration is in field byte
//! order.

use std::collections::BTreeMap;

use crate::cmd::CmdError;
use crate::storage::encoding::{prefix_end, sub_key, sub_prefix, Cf, DataType, Meta};
use crate::storage::Ctx;

/// The live collection of type `dtype` at `key`, or a new empty one (not stored yet) with a
/// fresh version. A dead (expired) record under `key` is deleted first so its elements are
/// garbage-collected. Write contexts only.
pub fn open_or_create(ctx: &mut Ctx, key: &[u8], dtype: DataType) -> Result<Meta, CmdError> {
    if let Some(m) = ctx.meta_of(key, dtype)? {
        return Ok(m);
    }
    ctx.delete_key(key)?;
    Ok(Meta::new_collection(dtype, ctx.new_version()))
}

/// Stores `meta` after a change, or deletes the key when the collection became empty.
pub fn save(ctx: &mut Ctx, key: &[u8], meta: &mut Meta) -> Result<(), CmdError> {
    if meta.size == 0 {
        ctx.delete_key(key)?;
        Ok(())
    } else {
        ctx.put_meta(key, meta)
    }
}

/// The value of element `field`, if present.
pub fn get(ctx: &Ctx, key: &[u8], meta: &Meta, field: &[u8]) -> Result<Option<Vec<u8>>, CmdError> {
    ctx.get(Cf::Sub, &sub_key(key, meta.version, field))
}

/// Sets element `field` to `value`; returns whether it is new (and counts it in `meta.size`).
pub fn put(
    ctx: &mut Ctx,
    key: &[u8],
    meta: &mut Meta,
    field: &[u8],
    value: Vec<u8>,
) -> Result<bool, CmdError> {
    let k = sub_key(key, meta.version, field);
    let existed = ctx.get(Cf::Sub, &k)?.is_some();
    ctx.put(Cf::Sub, k, value)?;
    if !existed {
        meta.size += 1;
    }
    Ok(!existed)
}

/// Removes element `field`; returns whether it was present.
pub fn remove(ctx: &mut Ctx, key: &[u8], meta: &mut Meta, field: &[u8]) -> Result<bool, CmdError> {
    let k = sub_key(key, meta.version, field);
    if ctx.get(Cf::Sub, &k)?.is_none() {
        return Ok(false);
    }
    ctx.delete(Cf::Sub, k)?;
    meta.size = meta.size.saturating_sub(1);
    Ok(true)
}

/// Visits elements in byte order starting at `from` (inclusive; `None` = first), or in reverse
/// from the last; `f` returns false to stop.
pub fn for_each(
    ctx: &Ctx,
    key: &[u8],
    meta: &Meta,
    from: Option<&[u8]>,
    reverse: bool,
    mut f: impl FnMut(&[u8], &[u8]) -> Result<bool, CmdError>,
) -> Result<(), CmdError> {
    let prefix = sub_prefix(key, meta.version);
    let upper = prefix_end(&prefix);
    let lower = match from {
        Some(e) => sub_key(key, meta.version, e),
        None => prefix.clone(),
    };
    let plen = prefix.len();
    ctx.scan(Cf::Sub, &lower, &upper, reverse, |k, v| {
        f(k.get(plen..).unwrap_or(&[]), v)
    })
}

/// An element record: (element, value).
pub type Element = (Vec<u8>, Vec<u8>);

/// Every element (for commands whose reply is the whole collection).
pub fn all(ctx: &Ctx, key: &[u8], meta: &Meta) -> Result<Vec<Element>, CmdError> {
    let mut out = Vec::new();
    for_each(ctx, key, meta, None, false, |f, v| {
        out.push((f.to_vec(), v.to_vec()));
        Ok(true)
    })?;
    Ok(out)
}

/// The elements at the given positions (in byte order), in the order asked (positions may
/// repeat). One scan up to the largest position.
pub fn at_positions(
    ctx: &Ctx,
    key: &[u8],
    meta: &Meta,
    positions: &[u64],
) -> Result<Vec<Element>, CmdError> {
    let mut wanted: BTreeMap<u64, Option<Element>> = BTreeMap::new();
    for &p in positions {
        wanted.insert(p, None);
    }
    let Some(&last) = wanted.keys().next_back() else {
        return Ok(Vec::new());
    };
    let mut i = 0u64;
    for_each(ctx, key, meta, None, false, |f, v| {
        if let Some(slot) = wanted.get_mut(&i) {
            *slot = Some((f.to_vec(), v.to_vec()));
        }
        i += 1;
        Ok(i <= last)
    })?;
    Ok(positions
        .iter()
        .filter_map(|p| wanted.get(p).cloned().flatten())
        .collect())
}

/// `count` distinct random positions below `size` (count <= size), in random order.
pub fn distinct_positions(ctx: &mut Ctx, size: u64, count: u64) -> Vec<u64> {
    // Floyd's sampling, then a shuffle so the reply order is random too.
    let mut chosen = std::collections::BTreeSet::new();
    for j in size - count..size {
        let t = ctx.rand_below(j + 1);
        if !chosen.insert(t) {
            chosen.insert(j);
        }
    }
    let mut out: Vec<u64> = chosen.into_iter().collect();
    shuffle(ctx, &mut out);
    out
}

/// `count` random positions below `size` (size > 0), repetitions allowed.
pub fn positions_with_repeats(ctx: &mut Ctx, size: u64, count: u64) -> Vec<u64> {
    (0..count).map(|_| ctx.rand_below(size)).collect()
}

/// Fisher-Yates with the context's deterministic generator.
pub fn shuffle<T>(ctx: &mut Ctx, v: &mut [T]) {
    for i in (1..v.len()).rev() {
        let j = ctx.rand_below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
}
