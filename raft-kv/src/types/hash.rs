//! hash operations over the key encoding.
