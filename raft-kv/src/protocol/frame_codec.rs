//! A compact, protocol-neutral binary encoding of `Frame`, for replies relayed between nodes
//! (a proxied request's reply keeps its RESP3 shape and is encoded for the client's protocol
//! only on the node that holds the connection).
//!
//! `tag u8 | body`: strings and blobs are `len u32 | bytes`, integers big-endian, containers
//! `count u32 | items`. Decoding checks every length and bounds the nesting.

use bytes::{Bytes, BytesMut};

use super::Frame;

const MAX_DEPTH: usize = 64;

pub fn encode(f: &Frame) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    put(&mut out, f);
    out
}

fn put_blob(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
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
    let mut r = Reader { buf: raw, pos: 0 };
    let f = r.frame(0)?;
    if r.pos != raw.len() {
        return Err("trailing bytes after frame".into());
    }
    Ok(f)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.pos.checked_add(n).ok_or("length overflow")?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| format!("frame truncated at byte {}", self.pos))?;
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<usize, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    fn u64(&mut self) -> Result<u64, String> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }

    fn blob(&mut self) -> Result<Bytes, String> {
        let n = self.u32()?;
        Ok(Bytes::from(BytesMut::from(self.take(n)?)))
    }

    fn text(&mut self) -> Result<String, String> {
        let b = self.blob()?;
        String::from_utf8(b.to_vec()).map_err(|_| "frame text is not UTF-8".to_string())
    }

    fn list(&mut self, depth: usize) -> Result<Vec<Frame>, String> {
        let n = self.u32()?;
        // Every item takes at least one byte: a count beyond the input is corrupt.
        if n > self.buf.len() - self.pos {
            return Err("frame count exceeds its input".into());
        }
        (0..n).map(|_| self.frame(depth + 1)).collect()
    }

    fn pairs(&mut self, depth: usize) -> Result<Vec<(Frame, Frame)>, String> {
        let n = self.u32()?;
        if n > (self.buf.len() - self.pos) / 2 {
            return Err("frame count exceeds its input".into());
        }
        (0..n)
            .map(|_| Ok((self.frame(depth + 1)?, self.frame(depth + 1)?)))
            .collect()
    }

    fn frame(&mut self, depth: usize) -> Result<Frame, String> {
        if depth > MAX_DEPTH {
            return Err("frame nested too deeply".into());
        }
        Ok(match self.take(1)?[0] {
            0 => Frame::Simple(self.text()?),
            1 => Frame::Error(self.text()?),
            2 => Frame::Integer(self.u64()? as i64),
            3 => Frame::Bulk(self.blob()?),
            4 => Frame::Null,
            5 => Frame::NullArray,
            6 => Frame::Array(self.list(depth)?),
            7 => Frame::Map(self.pairs(depth)?),
            8 => Frame::Set(self.list(depth)?),
            9 => Frame::KeyedMap(self.pairs(depth)?),
            10 => Frame::Pairs(self.pairs(depth)?),
            11 => Frame::Double(f64::from_bits(self.u64()?)),
            12 => Frame::Boolean(self.take(1)?[0] != 0),
            13 => Frame::Verbatim(self.blob()?),
            14 => Frame::Push(self.list(depth)?),
            15 => Frame::Raw(self.blob()?),
            t => return Err(format!("unknown frame tag {t}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
