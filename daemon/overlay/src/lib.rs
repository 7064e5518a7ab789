//! chatd's overlay core, written sans-IO.
//!
//! Nothing in this crate touches a socket, a clock, a thread or a global random number
//! generator. An [`Overlay`] is driven by `handle(now, input)` and answers with outputs
//! (messages to send, timers to arm, events for the application). It is a ring core
//! ([`ring`]: Chord maintenance, lookups, the one RPC engine) with sub-protocols on top, each
//! in its own folder with its own state, messages, timers and events ([`broadcast`]: broadcast
//! along the finger table; [`records`]: the DHT of signed records; [`direct`]: one body to one
//! node, acknowledged), meeting the core through [`protocol`]: each is a
//! [`protocol::Service`] in one registry ([`services`]), so a new one is a folder and one
//! registration line (the test-only `ping` is the example; `docs/architecture.md` has the
//! steps). Tools they share live in [`common`]. The daemon's QUIC driver and the deterministic
//! simulator (`tests/sim`) run this very same code.

pub mod broadcast;
pub mod common;
pub mod config;
pub mod direct;
pub mod id;
pub mod overlay;
#[cfg(any(test, feature = "sim"))]
pub mod ping;
pub mod protocol;
pub mod records;
pub mod ring;
pub mod rng;
pub mod services;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
pub mod testing;
pub mod time;
pub mod wire;

pub use broadcast::{BroadcastError, BroadcastEvent};
pub use config::ChordConfig;
pub use direct::{DirectError, DirectEvent, DirectInput};
pub use id::{ID_BITS, NodeId, ParseIdError};
pub use overlay::{Event, Input, LookupError, Output, Overlay, Timer};
pub use protocol::{Service, ServiceEvent};
pub use ring::{Phase, Ring};
pub use time::Time;
pub use wire::{Message, Peer};
