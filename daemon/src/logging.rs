//! Logging: `tracing` events to stderr.
//!
//! The filter comes from the configuration key `log.filter` (the environment variable
//! `CHATD_LOG` sets it; see [`crate::config`]). Colours only when stderr is a terminal and
//! `NO_COLOR` is unset, so logs captured by journald or a file stay plain text.

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
        .with_ansi(use_colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ))
        .try_init();
}

/// Colours only on a terminal, and not when `NO_COLOR` is set to anything non-empty
/// (<https://no-color.org>).
fn use_colour(is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::use_colour;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some("".into())));
        assert!(!use_colour(true, Some("1".into())));
        assert!(!use_colour(false, None));
    }
}
