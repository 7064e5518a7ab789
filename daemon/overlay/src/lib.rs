//! chatd's overlay core, written sans-IO.
//!
//! Nothing in this crate touches a socket, a clock, a thread or a global random number
//! generator. A [`chord::Node`] is driven by `handle(now, input)` and answers with outputs
//! (messages to send, timers to arm, events for the application): Chord ring maintenance,
//! lookups, and broadcast along the finger table. The daemon's QUIC driver and
//! the deterministic simulator (`tests/sim`) run this very same code.

pub mod id;

pub use id::{ID_BITS, NodeId, ParseIdError};
pub mod broadcast;
pub mod chord;
pub mod config;
pub mod rng;
pub mod time;
pub mod wire;

pub use chord::{Event, Input, LookupError, Node, Output, Phase, Timer};
pub use config::ChordConfig;
pub use time::Time;
pub use wire::{Message, Peer};
