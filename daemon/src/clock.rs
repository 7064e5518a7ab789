//! Wall-clock time in the form records, logs and the wire use: milliseconds since the Unix
//! epoch. A foundation module: it depends on nothing else of the daemon.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
