//! Finding the network again: the peers this node remembers (`cache.rs`), tried at start
//! beside the configured bootstrap so the ring is rejoined while any of them is up.

pub mod cache;
