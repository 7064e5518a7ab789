//! The `chat-sim` scenarios: joins, crashes, churn, partitions, broadcasts, DHT records, presence and private messages at scale, run
//! on the overlay's one deterministic simulator ([`chat_overlay::sim`]: virtual time, latency,
//! loss, crashes, restarts, leaves, partitions, `Unreachable` on lost messages, a validator on
//! every node) and checked against the true ring by its oracle. The `chat-sim` binary runs
//! them at full size; `tests/scenarios.rs` at test sizes.

mod bcast_scenario;
pub mod dm_driver;
mod dm_scenario;
mod presence_scenario;
mod records_scenario;
pub mod report;
pub mod scenario;

pub use chat_overlay::sim::{Sim, SimConfig};
pub use report::Report;
pub use scenario::{DmOrder, Params, Scenario, run};
