//! chatd's people service (`daemon/src/people/`) without I/O: the presence decisions that the
//! daemon and the simulator (`tests/sim/src/presence_scenario.rs`) take with the same code, and
//! each hosted account's life, handed what happened and the time, answering what to do.
//!
//! - [`engine`]: one node's presence engine — its events put into their presence epoch,
//!   confirmed by the epoch's batch, put again or broadcast alone; the epochs it holds first
//!   broadcast once over; its vanished predecessors reported down.
//! - [`epoch`]: the epochs themselves — which epoch a moment is in, the key and location of
//!   its items, the items a holder keeps and when it broadcasts them, batches' size.
//! - [`down`]: which vanished neighbours a node reports offline, and when (after
//!   [`down::REPORT_AFTER_MS`], if their goodbye did not come and they are still outside the
//!   ring).
//! - [`life`]: one hosted account's life — when its nickname is claimed, renewed and given
//!   up (only when the name's holders, by a majority, name another account), and when its
//!   profile is announced (a change, auto-away, going offline at a stop).

pub mod down;
pub mod engine;
pub mod epoch;
pub mod life;

pub use down::{DownWatch, vanished};
pub use engine::{Action, Alone, Engine, Gather, Publication, Put};
pub use life::{Claim, Do, Life, Presence, Snapshot, Why};
