//! End-to-end tests of the ring over QUIC: real chatd processes on 127.0.N.x addresses form a
//! Chord ring, leave it gracefully, crash, rejoin, and shrug off hostile input.
//!
//! Every wait polls a condition (through `chatctl … --json`) until a deadline; nothing sleeps
//! and hopes. Ring timers are shortened through the `[ring]` config section.

mod support;

#[path = "ring/cluster.rs"]
mod cluster;
#[path = "ring/hostile.rs"]
mod hostile;
#[path = "ring/membership.rs"]
mod membership;
