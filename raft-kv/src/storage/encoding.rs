//! The on-disk key encoding (see DESIGN.md, "Storage encoding").
//!
//! Every user key has one metadata record in the `meta` column family, keyed by
//! `slot (2B BE) | user_key`, so that each hash slot is one contiguous key range.
//! Collections keep one record per element in `sub` (and `zscore` for sorted-set score order),
//! keyed by `slot | key_len (4B BE) | user_key | version (8B BE) | element`. A new collection
//! gets a fresh version; deleting or overwriting one only rewrites its metadata (O(1)) and drops
//! a `gc` record naming the dead `key|version` prefix, which a background sweeper range-deletes.

use super::slot::key_slot;

/// Column families. `sys` holds per-state-machine bookkeeping (applied index, sequence).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cf {
    Meta,
    Sub,
    Score,
    Gc,
    Sys,
}

impl Cf {
    pub const ALL: [Cf; 5] = [Cf::Meta, Cf::Sub, Cf::Score, Cf::Gc, Cf::Sys];

    pub fn name(self) -> &'static str {
        match self {
            Cf::Meta => "meta",
            Cf::Sub => "sub",
            Cf::Score => "zscore",
            Cf::Gc => "gc",
            Cf::Sys => "sys",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum DataType {
    String = 1,
    Hash = 2,
    List = 3,
    Set = 4,
    ZSet = 5,
    Stream = 6,
}

impl DataType {
    pub fn from_u8(b: u8) -> Option<DataType> {
        Some(match b {
            1 => DataType::String,
            2 => DataType::Hash,
            3 => DataType::List,
            4 => DataType::Set,
            5 => DataType::ZSet,
            6 => DataType::Stream,
            _ => return None,
        })
    }

    /// The name `TYPE` replies with.
    pub fn name(self) -> &'static str {
        match self {
            DataType::String => "string",
            DataType::Hash => "hash",
            DataType::List => "list",
            DataType::Set => "set",
            DataType::ZSet => "zset",
            DataType::Stream => "stream",
        }
    }
}

/// A decoded metadata record.
///
/// `rev` is the sequence number of the last write op that modified the key (used by WATCH);
/// `expire_ms` is an absolute unix time in milliseconds, 0 for none. For strings `value` holds
/// the payload and `version`/`size` are unused; for collections `version` names the live
/// element records, `size` counts elements and `value` holds type-specific extra state (list
/// head/tail indexes, stream ids).
#[derive(Clone, Debug, PartialEq)]
pub struct Meta {
    pub dtype: DataType,
    pub expire_ms: u64,
    pub rev: u64,
    pub version: u64,
    pub size: u64,
    pub value: Vec<u8>,
}

const HEADER: usize = 1 + 8 + 8;

impl Meta {
    pub fn new_string(value: Vec<u8>) -> Meta {
        Meta {
            dtype: DataType::String,
            expire_ms: 0,
            rev: 0,
            version: 0,
            size: 0,
            value,
        }
    }

    pub fn new_collection(dtype: DataType, version: u64) -> Meta {
        Meta {
            dtype,
            expire_ms: 0,
            rev: 0,
            version,
            size: 0,
            value: Vec::new(),
        }
    }

    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expire_ms != 0 && self.expire_ms <= now_ms
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + 16 + self.value.len());
        out.push(self.dtype as u8);
        out.extend_from_slice(&self.expire_ms.to_be_bytes());
        out.extend_from_slice(&self.rev.to_be_bytes());
        if self.dtype != DataType::String {
            out.extend_from_slice(&self.version.to_be_bytes());
            out.extend_from_slice(&self.size.to_be_bytes());
        }
        out.extend_from_slice(&self.value);
        out
    }

    /// Decodes a stored record; `None` means the record is corrupt.
    pub fn decode(raw: &[u8]) -> Option<Meta> {
        if raw.len() < HEADER {
            return None;
        }
        let dtype = DataType::from_u8(raw[0])?;
        let expire_ms = u64::from_be_bytes(raw[1..9].try_into().ok()?);
        let rev = u64::from_be_bytes(raw[9..17].try_into().ok()?);
        let (version, size, rest) = if dtype == DataType::String {
            (0, 0, &raw[HEADER..])
        } else {
            if raw.len() < HEADER + 16 {
                return None;
            }
            (
                u64::from_be_bytes(raw[HEADER..HEADER + 8].try_into().ok()?),
                u64::from_be_bytes(raw[HEADER + 8..HEADER + 16].try_into().ok()?),
                &raw[HEADER + 16..],
            )
        };
        Some(Meta {
            dtype,
            expire_ms,
            rev,
            version,
            size,
            value: rest.to_vec(),
        })
    }
}

/// `slot | user_key`: the metadata record's key.
pub fn meta_key(user_key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + user_key.len());
    k.extend_from_slice(&key_slot(user_key).to_be_bytes());
    k.extend_from_slice(user_key);
    k
}

/// The user key inside a metadata record's key.
pub fn user_key_of_meta(meta_key: &[u8]) -> &[u8] {
    meta_key.get(2..).unwrap_or(&[])
}

/// The first metadata key of a slot (inclusive) and of the next slot (exclusive).
pub fn slot_range(slot: u16) -> (Vec<u8>, Vec<u8>) {
    let start = slot.to_be_bytes().to_vec();
    let end = if slot == u16::MAX {
        vec![0xff, 0xff, 0xff]
    } else {
        (slot + 1).to_be_bytes().to_vec()
    };
    (start, end)
}

/// `slot | key_len | user_key | version`: the prefix of every element record of one collection.
pub fn sub_prefix(user_key: &[u8], version: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + 4 + user_key.len() + 8 + 16);
    k.extend_from_slice(&key_slot(user_key).to_be_bytes());
    k.extend_from_slice(&(user_key.len() as u32).to_be_bytes());
    k.extend_from_slice(user_key);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

/// An element record's key: the collection prefix followed by the element.
pub fn sub_key(user_key: &[u8], version: u64, element: &[u8]) -> Vec<u8> {
    let mut k = sub_prefix(user_key, version);
    k.extend_from_slice(element);
    k
}

/// The smallest key greater than every key starting with `prefix` (exclusive range end).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xff: no finite upper bound; callers treat an empty end as unbounded.
    Vec::new()
}

/// Order-preserving encoding of an f64 (for the sorted-set score index).
pub fn encode_score(score: f64) -> [u8; 8] {
    let bits = score.to_bits();
    let ordered = if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    };
    ordered.to_be_bytes()
}

pub fn decode_score(raw: &[u8]) -> Option<f64> {
    let ordered = u64::from_be_bytes(raw.get(..8)?.try_into().ok()?);
    let bits = if ordered >> 63 == 1 {
        ordered & !(1 << 63)
    } else {
        !ordered
    };
    Some(f64::from_bits(bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trips() {
        let mut m = Meta::new_collection(DataType::List, 77);
        m.expire_ms = 123;
        m.rev = 9;
        m.size = 3;
        m.value = vec![1, 2, 3];
        assert_eq!(Meta::decode(&m.encode()), Some(m));
        let s = Meta::new_string(b"hello".to_vec());
        assert_eq!(Meta::decode(&s.encode()), Some(s));
        assert_eq!(Meta::decode(&[9, 0]), None);
    }

    #[test]
    fn score_encoding_preserves_order() {
        let scores = [
            f64::NEG_INFINITY,
            -1e300,
            -1.5,
            -0.0,
            0.0,
            1e-300,
            2.5,
            1e300,
            f64::INFINITY,
        ];
        for w in scores.windows(2) {
            assert!(encode_score(w[0]) <= encode_score(w[1]), "{:?}", w);
        }
        for s in scores {
            assert_eq!(decode_score(&encode_score(s)), Some(s));
        }
    }

    #[test]
    fn prefixes_do_not_collide_between_keys() {
        // "ab" + version must not be a prefix of "a" + anything.
        let a = sub_prefix(b"a", 1);
        let ab = sub_prefix(b"ab", 1);
        assert!(!ab.starts_with(&a) && !a.starts_with(&ab));
        assert_eq!(prefix_end(&[1, 2, 0xff]), vec![1, 3]);
        assert_eq!(prefix_end(&[0xff]), Vec::<u8>::new());
    }
}
