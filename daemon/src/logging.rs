//! Logging: `tracing` events to stderr.
//!
//! The filter comes from the configuration key `log.filter` (the environment variable
//! `CHATD_LOG` sets it; see [`crate::config`]). Colours only when stderr is a terminal, so logs
//! captured by journald or a file stay plain text.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `filter` was validated with the configuration; an invalid
/// one falls back to `info` rather than failing. Calling it twice is harmless (the second call
/// does nothing), which tests rely on.
pub fn init(filter: &str) {
    let filter = EnvFilter::builder()
        .parse(filter)
        .unwrap_or_else(|_| EnvFilter::new(crate::config::DEFAULT_LOG_FILTER));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
