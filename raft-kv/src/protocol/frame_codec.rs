//! A compact, protocol-neutral binary encoding of `Frame`, for replies relayed between nodes
//! (a proxied request's reply keeps its RESP3 shape and is encoded for the client's protocol
//! only on the node that holds the connection).
//!
//! `tag u8 | body`: strings and blobs are `len u32 | bytes`, integers big-endian, containers
//! `count u32 | items`. Decoding checks every length and bounds the nesting.

use super::wire::{put_blob, WireReader};
use super::Frame;

const MAX_DEPTH: usize = 64;

pub fn encode(f: &Frame) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    put(&mut out, f);
    out
}

fn put_list(out: &mut Vec<u8>, tag: u8, items: &[Frame]) {
    out.push(tag);
    out.extend_from_slice(&(items.len() as u32).to_be_bytes());
    for i in items {
        put(out, i);
    }
}

fn put_pairs(out: &mut Vec<u8>, tag: u8, pairs: &[(Frame, Frame)]) {
    out.push(tag);
    out.extend_from_slice(&(pairs.len() as u32).to_be_bytes());
    for (k, v) in pairs {
        put(out, k);
        put(out, v);
    }
}

fn put(out: &mut Vec<u8>, f: &Frame) {
    match f {
        Frame::Simple(s) => {
            out.push(0);
            put_blob(out, s.as_bytes());
        }
        Frame::Error(s) => {
            out.push(1);
            put_blob(out, s.as_bytes());
        }
        Frame::Integer(i) => {
            out.push(2);
            out.extend_from_slice(&i.to_be_bytes());
        }
        Frame::Bulk(b) => {
            out.push(3);
            put_blob(out, b);
        }
        Frame::Null => out.push(4),
        Frame::NullArray => out.push(5),
        Frame::Array(v) => put_list(out, 6, v),
        Frame::Map(p) => put_pairs(out, 7, p),
        Frame::Set(v) => put_list(out, 8, v),
        Frame::KeyedMap(p) => put_pairs(out, 9, p),
        Frame::Pairs(p) => put_pairs(out, 10, p),
        Frame::Double(d) => {
            out.push(11);
            out.extend_from_slice(&d.to_bits().to_be_bytes());
        }
        Frame::Boolean(b) => out.extend_from_slice(&[12, u8::from(*b)]),
        Frame::Verbatim(b) => {
            out.push(13);
            put_blob(out, b);
        }
        Frame::Push(v) => put_list(out, 14, v),
        Frame::Raw(b) => {
            out.push(15);
            put_blob(out, b);
        }
    }
}

pub fn decode(raw: &[u8]) -> Result<Frame, String> {
    let mut r = WireReader::new(raw, "frame");
    let f = frame(&mut r, 0)?;
    if r.remaining() != 0 {
        return Err("trailing bytes after frame".into());
    }
    Ok(f)
}

fn text(r: &mut WireReader) -> Result<String, String> {
    let b = r.blob()?;
    String::from_utf8(b.to_vec()).map_err(|_| "frame text is not UTF-8".to_string())
}

fn list(r: &mut WireReader, depth: usize) -> Result<Vec<Frame>, String> {
    let n = r.u32()? as usize;
    // Every item takes at least one byte: a count beyond the input is corrupt.
    if n > r.remaining() {
        return Err("frame count exceeds its input".into());
    }
    (0..n).map(|_| frame(r, depth + 1)).collect()
}

fn pairs(r: &mut WireReader, depth: usize) -> Result<Vec<(Frame, Frame)>, String> {
    let n = r.u32()? as usize;
    if n > r.remaining() / 2 {
        return Err("frame count exceeds its input".into());
    }
    (0..n)
        .map(|_| Ok((frame(r, depth + 1)?, frame(r, depth + 1)?)))
        .collect()
}

fn frame(r: &mut WireReader, depth: usize) -> Result<Frame, String> {
    if depth > MAX_DEPTH {
        return Err("frame nested too deeply".into());
    }
    Ok(match r.u8()? {
        0 => Frame::Simple(text(r)?),
        1 => Frame::Error(text(r)?),
        2 => Frame::Integer(r.u64()? as i64),
        3 => Frame::Bulk(r.blob()?),
        4 => Frame::Null,
        5 => Frame::NullArray,
        6 => Frame::Array(list(r, depth)?),
        7 => Frame::Map(pairs(r, depth)?),
        8 => Frame::Set(list(r, depth)?),
        9 => Frame::KeyedMap(pairs(r, depth)?),
        10 => Frame::Pairs(pairs(r, depth)?),
        11 => Frame::Double(f64::from_bits(r.u64()?)),
        12 => Frame::Boolean(r.u8()? != 0),
        13 => Frame::Verbatim(r.blob()?),
        14 => Frame::Push(list(r, depth)?),
        15 => Frame::Raw(r.blob()?),
        t => return Err(format!("unknown frame tag {t}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn every_shape_round_trips() {
        let b = |s: &str| Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()));
        let f = Frame::Array(vec![
            Frame::Simple("OK".into()),
            Frame::Error("ERR x".into()),
            Frame::Integer(-7),
            b("v"),
            Frame::Null,
            Frame::NullArray,
            Frame::Map(vec![(b("k"), Frame::Double(1.5))]),
            Frame::Set(vec![b("m")]),
            Frame::KeyedMap(vec![(b("s"), Frame::Array(vec![]))]),
            Frame::Pairs(vec![(b("a"), Frame::Double(f64::INFINITY))]),
            Frame::Boolean(true),
            Frame::Verbatim(Bytes::from_static(b"txt")),
            Frame::Push(vec![b("p")]),
            Frame::Raw(Bytes::from_static(b"+RAW\r\n")),
        ]);
        let enc = encode(&f);
        assert_eq!(decode(&enc), Ok(f));
        for cut in 0..enc.len() {
            assert!(decode(&enc[..cut]).is_err(), "truncated at {cut}");
        }
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        assert!(decode(&[99]).is_err());
        assert!(decode(&[6, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode(&[2, 0, 0, 0, 0, 0, 0, 0, 0, 9]).is_err());
        let deep: Vec<u8> = std::iter::repeat_n([6u8, 0, 0, 0, 1], 100)
            .flatten()
            .chain([4])
            .collect();
        assert!(decode(&deep).is_err());
    }
}
