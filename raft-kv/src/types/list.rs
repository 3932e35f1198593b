//! list operations over the key encoding.
