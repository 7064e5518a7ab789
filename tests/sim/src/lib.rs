//! A deterministic simulator for chatd's overlay.
//!
//! Thousands of [`chat_overlay::Node`]s run in one process on virtual time: a seeded RNG, an
//! event queue, per-link latency, message loss, crashes, restarts with the same id, graceful
//! leaves and partitions. The nodes are the daemon's own code; the simulator only carries their
//! messages and timers and checks the ring against the truth. The `chat-sim` binary runs the
//! scenarios in [`scenario`];
//! broadcasts are followed by a [`tracker::Tracker`].

mod bcast_scenario;
pub mod engine;
pub mod oracle;
pub mod report;
pub mod scenario;
pub mod tracker;

pub use engine::{Sim, SimConfig};
pub use report::Report;
pub use scenario::{Params, Scenario, run};
