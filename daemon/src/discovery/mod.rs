//! Finding the network again: the peers this node remembers (`cache.rs`), tried at start
//! beside the configured bootstrap so the ring is rejoined while any of them is up; and, with
//! `--lan`, the peers on the local network (`mdns.rs`), which feed the first contact and, once
//! in a ring, merge hints (`hints.rs`).

pub mod cache;
pub mod hints;
pub mod mdns;
