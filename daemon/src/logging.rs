//! Logging: `tracing` events to the systemd journal or to stderr, with a filter that SIGHUP can
//! change.
//!
//! - **Journal** when `JOURNAL_STREAM` names the device and inode of our stderr — what systemd
//!   sets when stderr is connected to the journal (see systemd.exec(5), "JOURNAL_STREAM"). Events
//!   then go over the native journal protocol (tracing-journald): the level becomes the
//!   priority (ERROR 3, WARN 4, INFO 5, DEBUG 6, TRACE 7) and fields become journal fields with
//!   an `F_` prefix (`F_ID`, the short node id, from the `node` span). If the journal socket cannot be opened,
//!   stderr is used.
//! - **stderr** otherwise, as plain text. Colours only when stderr is a terminal and `NO_COLOR`
//!   is unset, so logs captured by a file stay plain.
//!
//! The filter is the configuration key `log.filter` (`CHATD_LOG` sets it; see
//! [`crate::config`]); [`LogHandle::set_filter`] replaces it at run time.

use std::ffi::OsStr;
use std::io::IsTerminal;
use std::os::fd::AsFd;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

use crate::env::Env;

/// Where log events go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The systemd journal, natively.
    Journal,
    /// Standard error, as text.
    Stderr,
}

/// Changes the log filter of the installed subscriber.
#[derive(Debug)]
pub struct LogHandle {
    handle: reload::Handle<EnvFilter, Registry>,
    filter: String,
    target: Target,
}

/// Why a new filter was not applied.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The filter does not parse.
    #[error("log.filter: invalid filter {filter:?}: {message}")]
    Invalid { filter: String, message: String },
    /// The subscriber is gone (cannot happen while the process runs).
    #[error("log.filter: cannot change the filter: {0}")]
    Reload(String),
}

impl LogHandle {
    /// The filter in force.
    pub fn filter(&self) -> &str {
        &self.filter
    }

    /// Where events go.
    pub fn target(&self) -> Target {
        self.target
    }

    /// Replaces the filter; returns whether it changed.
    pub fn set_filter(&mut self, filter: &str) -> Result<bool, LogError> {
        if filter == self.filter {
            return Ok(false);
        }
        let parsed = EnvFilter::builder()
            .parse(filter)
            .map_err(|e| LogError::Invalid {
                filter: filter.to_owned(),
                message: e.to_string(),
            })?;
        self.handle
            .reload(parsed)
            .map_err(|e| LogError::Reload(e.to_string()))?;
        self.filter = filter.to_owned();
        Ok(true)
    }
}

/// Installs the global subscriber. `filter` was validated with the configuration; an invalid
/// one falls back to `info` rather than failing. Calling it twice is harmless (the second
/// subscriber is not installed), which tests rely on.
pub fn init(filter: &str, env: &Env) -> LogHandle {
    let (filter, parsed) = match EnvFilter::builder().parse(filter) {
        Ok(parsed) => (filter.to_owned(), parsed),
        Err(_) => {
            let default = crate::config::DEFAULT_LOG_FILTER;
            (default.to_owned(), EnvFilter::new(default))
        }
    };
    let (filter_layer, handle) = reload::Layer::new(parsed);
    let journal = if stderr_is_journal(env) {
        tracing_journald::layer()
            .ok()
            .map(|l| l.with_syslog_identifier("chatd".to_owned()))
    } else {
        None
    };
    let target = match journal {
        Some(_) => Target::Journal,
        None => Target::Stderr,
    };
    let stderr = journal.is_none().then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(use_colour(
                std::io::stderr().is_terminal(),
                env.var_os("NO_COLOR"),
            ))
    });
    let _ = tracing_subscriber::registry()
        .with(filter_layer)
        .with(journal)
        .with(stderr)
        .try_init();
    LogHandle {
        handle,
        filter,
        target,
    }
}

/// Prints a fatal error as one line on stderr, before or instead of logging: `chatd: MESSAGE`,
/// with the syslog priority prefix `<3>` (error) when stderr is the journal, so that
/// `journalctl -p err` shows it.
pub fn fatal(env: &Env, message: &dyn std::fmt::Display) {
    if stderr_is_journal(env) {
        eprintln!("<3>chatd: {message}");
    } else {
        eprintln!("chatd: {message}");
    }
}

/// Whether `JOURNAL_STREAM` matches our stderr.
pub fn stderr_is_journal(env: &Env) -> bool {
    let Some(value) = env.var_os("JOURNAL_STREAM") else {
        return false;
    };
    match rustix::fs::fstat(std::io::stderr().as_fd()) {
        Ok(stat) => journal_stream_is(&value, stat.st_dev, stat.st_ino),
        Err(_) => false,
    }
}

/// Whether a `JOURNAL_STREAM` value (`DEVICE:INODE`, decimal) names this device and inode.
fn journal_stream_is(value: &OsStr, dev: u64, ino: u64) -> bool {
    let Some((d, i)) = value.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    d.parse::<u64>().ok() == Some(dev) && i.parse::<u64>().ok() == Some(ino)
}

/// Colours only on a terminal, and not when `NO_COLOR` is set to anything non-empty
/// (<https://no-color.org>).
fn use_colour(is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some("".into())));
        assert!(!use_colour(true, Some("1".into())));
        assert!(!use_colour(false, None));
    }

    #[test]
    fn journal_stream_must_name_our_stderr() {
        assert!(journal_stream_is(OsStr::new("8:1234"), 8, 1234));
        assert!(!journal_stream_is(OsStr::new("8:1234"), 8, 1235));
        assert!(!journal_stream_is(OsStr::new("9:1234"), 8, 1234));
        for bad in ["", "8", "8:", ":1234", "x:y", "8:1234:5"] {
            assert!(!journal_stream_is(OsStr::new(bad), 8, 1234), "{bad:?}");
        }
        // Our stderr under `cargo test` is not a journal stream whatever the variable says.
        let env = Env::from_pairs([("JOURNAL_STREAM", "0:0")]);
        assert!(!stderr_is_journal(&env));
        assert!(!stderr_is_journal(&Env::default()));
    }

    #[test]
    fn the_filter_can_be_replaced_and_bad_ones_are_refused() {
        let mut handle = init("info", &Env::default());
        assert_eq!(handle.target(), Target::Stderr);
        assert_eq!(handle.filter(), "info");
        assert!(!handle.set_filter("info").expect("same"), "unchanged");
        assert!(handle.set_filter("debug,chatd=trace").expect("valid"));
        assert_eq!(handle.filter(), "debug,chatd=trace");
        let err = handle.set_filter("chatd=loud").expect_err("invalid");
        assert!(
            err.to_string().starts_with("log.filter: invalid filter"),
            "{err}"
        );
        assert_eq!(handle.filter(), "debug,chatd=trace", "kept the old one");
    }
}
