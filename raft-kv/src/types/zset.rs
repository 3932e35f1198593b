//! zset operations over the key encoding.
