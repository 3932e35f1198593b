//! The binary layout shared by the node's internal encodings (write ops in the Raft log,
//! replies relayed between nodes): big-endian integers and `len u32 | bytes` blobs, every
//! read bounds-checked.

use bytes::Bytes;

/// Appends `len u32 | bytes`.
pub fn put_blob(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

/// Reads a buffer front to back; errors name `what` is being decoded and the byte offset.
pub struct WireReader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> WireReader<'a> {
    pub fn new(buf: &'a [u8], what: &'static str) -> WireReader<'a> {
        WireReader { buf, pos: 0, what }
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).ok_or("length overflow")?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| format!("{} truncated at byte {}", self.what, self.pos))?;
        self.pos = end;
        Ok(s)
    }

    pub fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64(&mut self) -> Result<u64, String> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }

    /// A `len u32 | bytes` blob.
    pub fn blob(&mut self) -> Result<Bytes, String> {
        let n = self.u32()? as usize;
        Ok(Bytes::copy_from_slice(self.take(n)?))
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_was_written_and_refuses_short_input() {
        let mut out = vec![7u8];
        put_blob(&mut out, b"abc");
        out.extend_from_slice(&9u64.to_be_bytes());
        let mut r = WireReader::new(&out, "thing");
        assert_eq!(r.u8(), Ok(7));
        assert_eq!(r.blob().as_deref(), Ok(&b"abc"[..]));
        assert_eq!(r.u64(), Ok(9));
        assert_eq!(r.remaining(), 0);
        assert_eq!(r.u8(), Err("thing truncated at byte 16".to_string()));
    }
}
