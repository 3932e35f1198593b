//! HyperLogLog commands over string values in Redis' HLL format (see `types::hll`).

use bytes::Bytes;

use super::string::{get_string, put_string};
use super::{flag, spec, CmdError, CmdResult, CommandSpec, Kind};
use crate::protocol::Frame;
use crate::storage::Ctx;
use crate::types::hll::{self, HllError, HLL_REGISTERS};

pub const COMMANDS: &[CommandSpec] = &[
    spec(
        "pfadd",
        -2,
        flag::WRITE | flag::DENYOOM | flag::FAST,
        (1, 1, 1),
        Kind::Write(pfadd),
    ),
    spec(
        "pfcount",
        -2,
        flag::READONLY,
        (1, -1, 1),
        // Read-only to clients (as Redis flags it), but it stores the computed cardinality
        // in the HLL header like Redis does, so it goes through the log as a write.
        Kind::Write(pfcount),
    ),
    spec(
        "pfmerge",
        -2,
        flag::WRITE | flag::DENYOOM,
        (1, -1, 1),
        Kind::Write(pfmerge),
    ),
    spec(
        "pfdebug",
        3,
        flag::WRITE | flag::ADMIN,
        (2, 2, 1),
        Kind::Write(pfdebug),
    ),
    spec(
        "pfselftest",
        1,
        flag::ADMIN,
        (0, 0, 0),
        Kind::Read(pfselftest),
    ),
];

fn hll_err(e: HllError) -> CmdError {
    match e {
        HllError::NotHll => {
            CmdError::Other("WRONGTYPE Key is not a valid HyperLogLog string value.".into())
        }
        HllError::Corrupt => CmdError::Other("INVALIDOBJ Corrupted HLL object detected".into()),
    }
}

/// The raw HLL string at `key` (validated), `None` if missing.
fn load(ctx: &Ctx, key: &[u8]) -> Result<Option<Vec<u8>>, CmdError> {
    match get_string(ctx, key)? {
        None => Ok(None),
        Some(m) => {
            hll::validate(&m.value).map_err(hll_err)?;
            Ok(Some(m.value))
        }
    }
}

fn pfadd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let existing = get_string(ctx, key)?;
    let (mut regs, created, dense) = match &existing {
        None => (vec![0u8; HLL_REGISTERS], true, false),
        Some(m) => {
            hll::validate(&m.value).map_err(hll_err)?;
            let regs = hll::registers(&m.value).map_err(hll_err)?;
            (regs, false, hll::is_dense(&m.value))
        }
    };
    let mut updated = created;
    for ele in &args[2..] {
        updated |= hll::add(&mut regs, ele);
    }
    if updated {
        let mut value = hll::encode(&regs, dense);
        match existing {
            Some(mut m) => {
                hll::keep_stale_card(&mut value, &m.value);
                m.value = value;
                ctx.put_meta(key, &mut m)?;
            }
            None => put_string(ctx, key, value, 0)?,
        }
    }
    Ok(Frame::Integer(updated as i64))
}

fn pfcount(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() == 2 {
        let Some(v) = load(ctx, &args[1])? else {
            return Ok(Frame::Integer(0));
        };
        if let Some(card) = hll::cached_card(&v) {
            return Ok(Frame::Integer(card as i64));
        }
        let regs = hll::registers(&v).map_err(hll_err)?;
        let card = hll::count(&regs);
        if ctx.is_writable() {
            if let Some(mut m) = get_string(ctx, &args[1])? {
                hll::set_cached_card(&mut m.value, card);
                ctx.put_meta(&args[1], &mut m)?;
            }
        }
        return Ok(Frame::Integer(card as i64));
    }
    let (regs, _) = merged(ctx, &args[1..])?;
    Ok(Frame::Integer(hll::count(&regs) as i64))
}

/// The register-wise maximum of the HLLs at `keys` (missing keys count as empty), and
/// whether any of them was dense.
fn merged(ctx: &Ctx, keys: &[Bytes]) -> Result<(Vec<u8>, bool), CmdError> {
    let mut max = vec![0u8; HLL_REGISTERS];
    let mut dense = false;
    for key in keys {
        if let Some(v) = load(ctx, key)? {
            dense |= hll::is_dense(&v);
            let regs = hll::registers(&v).map_err(hll_err)?;
            for (m, r) in max.iter_mut().zip(regs) {
                *m = (*m).max(r);
            }
        }
    }
    Ok((max, dense))
}

fn pfmerge(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (regs, dense) = merged(ctx, &args[1..])?;
    let dest = &args[1];
    let mut value = hll::encode(&regs, dense);
    match get_string(ctx, dest)? {
        Some(mut m) => {
            hll::keep_stale_card(&mut value, &m.value);
            m.value = value;
            ctx.put_meta(dest, &mut m)?;
        }
        None => put_string(ctx, dest, value, 0)?,
    }
    Ok(Frame::ok())
}

/// PFDEBUG GETREG|DECODE|ENCODING|TODENSE key.
fn pfdebug(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = String::from_utf8_lossy(&args[1]).to_string();
    let key = &args[2];
    let Some(mut m) = get_string(ctx, key)? else {
        return Err(CmdError::err("The specified key does not exist"));
    };
    hll::validate(&m.value).map_err(hll_err)?;
    let sparse = !hll::is_dense(&m.value);
    let lower = sub.to_ascii_lowercase();
    match lower.as_str() {
        "getreg" | "todense" => {
            let regs = hll::registers(&m.value).map_err(hll_err)?;
            if sparse {
                // Promote in place, keeping the cached cardinality bytes as Redis does.
                let mut dense = hll::encode_dense(&regs);
                dense[8..16].copy_from_slice(&m.value[8..16]);
                m.value = dense;
                ctx.put_meta(key, &mut m)?;
            }
            if lower == "todense" {
                Ok(Frame::Integer(sparse as i64))
            } else {
                Ok(Frame::Array(
                    regs.into_iter().map(|r| Frame::Integer(r as i64)).collect(),
                ))
            }
        }
        "decode" => {
            if !sparse {
                return Err(CmdError::err("HLL encoding is not sparse"));
            }
            Ok(Frame::Bulk(Bytes::from(hll::decode_sparse_text(&m.value))))
        }
        "encoding" => Ok(Frame::Simple(
            if sparse { "sparse" } else { "dense" }.into(),
        )),
        _ => Err(CmdError::err(format!("Unknown PFDEBUG subcommand '{sub}'"))),
    }
}

/// PFSELFTEST: checks the register packing and the estimator's accuracy on a known input.
fn pfselftest(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let mut regs = vec![0u8; HLL_REGISTERS];
    for (i, r) in regs.iter_mut().enumerate() {
        *r = ((i * 7 + 3) % 64) as u8;
    }
    let decoded = hll::registers(&hll::encode_dense(&regs)).map_err(hll_err)?;
    if let Some(i) = (0..HLL_REGISTERS).find(|&i| decoded[i] != regs[i]) {
        return Err(CmdError::Other(format!("TESTFAILED Register error at {i}")));
    }
    let mut regs = vec![0u8; HLL_REGISTERS];
    for i in 0..10_000u32 {
        hll::add(&mut regs, &i.to_le_bytes());
    }
    let n = hll::count(&regs) as f64;
    if (n - 10_000.0).abs() > 10_000.0 * 0.05 {
        return Err(CmdError::Other(format!(
            "TESTFAILED Too big error. card:10000 abserr:{}",
            (n - 10_000.0).abs()
        )));
    }
    Ok(Frame::ok())
}

#[cfg(test)]
const REFERENCE: &[(usize, i64)] = &[
    (1, 1),
    (10, 10),
    (100, 100),
    (1000, 1001),
    (5000, 4985),
    (20000, 19891),
];

#[cfg(test)]
mod tests {
    use crate::testutil::*;

    #[test]
    fn pfadd_pfcount_pfmerge() {
        let mut db = TestDb::new();
        assert_eq!(db.run(&["PFCOUNT", "h"]), int(0));
        assert_eq!(db.run(&["PFADD", "h"]), int(1));
        assert_eq!(db.run(&["PFADD", "h"]), int(0));
        assert_eq!(db.run(&["PFADD", "h", "a", "b", "c"]), int(1));
        assert_eq!(db.run(&["PFADD", "h", "a"]), int(0));
        assert_eq!(db.run(&["PFCOUNT", "h"]), int(3));
        assert_eq!(db.run(&["PFADD", "h2", "c", "d"]), int(1));
        assert_eq!(db.run(&["PFCOUNT", "h", "h2", "nokey"]), int(4));
        assert_eq!(db.run(&["PFMERGE", "m", "h", "h2"]), ok());
        assert_eq!(db.run(&["PFCOUNT", "m"]), int(4));
        assert_eq!(db.run(&["PFMERGE", "m2"]), ok());
        assert_eq!(db.run(&["PFCOUNT", "m2"]), int(0));
        db.run(&["SET", "s", "notanhll"]);
        let wrong = err("WRONGTYPE Key is not a valid HyperLogLog string value.");
        assert_eq!(db.run(&["PFADD", "s", "a"]), wrong);
        assert_eq!(db.run(&["PFCOUNT", "s"]), wrong);
        assert_eq!(db.run(&["PFCOUNT", "h", "s"]), wrong);
        assert_eq!(db.run(&["PFMERGE", "h", "s"]), wrong);
    }

    #[test]
    fn sparse_dense_and_debug() {
        use crate::protocol::Frame;
        let mut db = TestDb::new();
        db.run(&["PFADD", "h", "a", "b", "c"]);
        assert_eq!(
            db.run(&["PFDEBUG", "ENCODING", "h"]),
            Frame::Simple("sparse".into())
        );
        let Frame::Bulk(dec) = db.run(&["PFDEBUG", "DECODE", "h"]) else {
            panic!()
        };
        assert!(dec.starts_with(b"Z:") || dec.starts_with(b"z:") || dec.starts_with(b"v:"));
        assert_eq!(db.run(&["PFCOUNT", "h"]), int(3));
        // PFCOUNT cached the cardinality: like Redis, a later count trusts the cache even
        // after garbage was appended to the sparse value...
        db.run(&["APPEND", "h", "hello"]);
        assert_eq!(db.run(&["PFCOUNT", "h"]), int(3));
        // ...but without a valid cache the corruption is detected.
        db.run(&["DEL", "h"]);
        db.run(&["PFADD", "h", "a", "b", "c"]);
        db.run(&["APPEND", "h", "hello"]);
        assert_eq!(
            db.run(&["PFCOUNT", "h"]),
            err("INVALIDOBJ Corrupted HLL object detected")
        );
        db.run(&["DEL", "h"]);
        db.run(&["PFADD", "h", "a", "b", "c"]);
        assert_eq!(db.run(&["PFDEBUG", "TODENSE", "h"]), int(1));
        assert_eq!(db.run(&["PFDEBUG", "TODENSE", "h"]), int(0));
        assert_eq!(
            db.run(&["PFDEBUG", "ENCODING", "h"]),
            Frame::Simple("dense".into())
        );
        assert_eq!(
            db.run(&["PFDEBUG", "DECODE", "h"]),
            err("ERR HLL encoding is not sparse")
        );
        assert_eq!(db.run(&["PFCOUNT", "h"]), int(3));
        let Frame::Array(regs) = db.run(&["PFDEBUG", "GETREG", "h"]) else {
            panic!()
        };
        assert_eq!(regs.len(), 16384);
        assert_eq!(
            db.run(&["PFDEBUG", "FOO", "h"]),
            err("ERR Unknown PFDEBUG subcommand 'FOO'")
        );
        assert_eq!(
            db.run(&["PFDEBUG", "GETREG", "nokey"]),
            err("ERR The specified key does not exist")
        );
        assert_eq!(db.run(&["PFSELFTEST"]), ok());
        // Stays dense once promoted; a sparse HLL merged with a dense one becomes dense.
        db.run(&["PFADD", "s", "x"]);
        assert_eq!(db.run(&["PFMERGE", "s", "h"]), ok());
        assert_eq!(
            db.run(&["PFDEBUG", "ENCODING", "s"]),
            Frame::Simple("dense".into())
        );
        assert_eq!(db.run(&["PFCOUNT", "s"]), int(4));
    }

    #[test]
    fn counts_match_redis() {
        // Reference cardinalities from redis-server 7.0.15 for PFADD of "0".."n-1".
        let mut db = TestDb::new();
        let mut added = 0;
        for (n, want) in super::REFERENCE {
            while added < *n {
                let hi = (*n).min(added + 500);
                let mut cmd = vec!["PFADD".to_string(), "h".to_string()];
                cmd.extend((added..hi).map(|i| i.to_string()));
                let refs: Vec<&str> = cmd.iter().map(String::as_str).collect();
                db.run(&refs);
                added = hi;
            }
            assert_eq!(db.run(&["PFCOUNT", "h"]), int(*want), "n={n}");
        }
    }
}
