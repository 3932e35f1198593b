//! Set operations over the key encoding: one `Cf::Sub` record per member (empty value),
//! `Meta.size` = cardinality. Iteration is in member byte order. The generic element-record
//! helpers live in `types::hash` (a set is a hash without values).

use std::collections::BTreeSet;

use super::hash as elems;
use crate::cmd::CmdError;
use crate::storage::encoding::{DataType, Meta};
use crate::storage::Ctx;

pub fn lookup(ctx: &Ctx, key: &[u8]) -> Result<Option<Meta>, CmdError> {
    ctx.meta_of(key, DataType::Set)
}

pub fn is_member(ctx: &Ctx, key: &[u8], meta: &Meta, member: &[u8]) -> Result<bool, CmdError> {
    Ok(elems::get(ctx, key, meta, member)?.is_some())
}

/// Adds `member`; returns whether it is new.
pub fn add(ctx: &mut Ctx, key: &[u8], meta: &mut Meta, member: &[u8]) -> Result<bool, CmdError> {
    elems::put(ctx, key, meta, member, Vec::new())
}

/// Removes `member`; returns whether it was present.
pub fn remove(ctx: &mut Ctx, key: &[u8], meta: &mut Meta, member: &[u8]) -> Result<bool, CmdError> {
    elems::remove(ctx, key, meta, member)
}

/// Every member in byte order.
pub fn members(ctx: &Ctx, key: &[u8], meta: &Meta) -> Result<Vec<Vec<u8>>, CmdError> {
    let mut out = Vec::with_capacity(meta.size.min(1 << 16) as usize);
    elems::for_each(ctx, key, meta, None, false, |m, _| {
        out.push(m.to_vec());
        Ok(true)
    })?;
    Ok(out)
}

/// Replaces whatever `key` holds with a set of `members` (deleting `key` when empty);
/// returns the new cardinality.
pub fn store(ctx: &mut Ctx, key: &[u8], members: &BTreeSet<Vec<u8>>) -> Result<u64, CmdError> {
    ctx.delete_key(key)?;
    if members.is_empty() {
        return Ok(0);
    }
    let mut meta = Meta::new_collection(DataType::Set, ctx.new_version());
    for m in members {
        add(ctx, key, &mut meta, m)?;
    }
    ctx.put_meta(key, &mut meta)?;
    Ok(meta.size)
}
