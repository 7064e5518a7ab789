//! chatd's people service (`daemon/src/people/`) without I/O: the decisions about presence
//! that the daemon and the simulator (`tests/sim/src/presence_scenario.rs`) take with the
//! same code, handed what happened and the time, answering what to do.
//!
//! - [`down`]: which vanished neighbours a node reports offline, and when (after
//!   [`down::REPORT_AFTER_MS`], if their goodbye did not come and they are still outside the
//!   ring).

pub mod down;

pub use down::{DownWatch, vanished};
