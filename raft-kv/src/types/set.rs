//! set operations over the key encoding.
