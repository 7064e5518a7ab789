//! The `[log]` keys beyond `filter`: the event log (`log.events`, `log.events_max_bytes`,
//! `log.events_files`) and the periodic statistics line (`log.stats_interval_secs`) — their
//! settings, defaults, bounds, the check of each key and how `check-config` prints them.
//!
//! The event log itself is `crate::eventlog`; its privacy effect is described in
//! `docs/security.md` ("The event log").

use std::ops::RangeInclusive;
use std::time::Duration;

use config::{Map, Value};

use super::ConfigError;
use super::check::Checker;

/// Default `log.events_max_bytes`: 10 MiB per file.
pub const DEFAULT_EVENTS_MAX_BYTES: u64 = 10 * 1024 * 1024;
/// Accepted range of `log.events_max_bytes`: from 64 KiB (every record fits in a file: a
/// record is at most about 25 KiB, a 4 KiB text with every byte escaped) to 1 GiB.
pub const EVENTS_MAX_BYTES_RANGE: RangeInclusive<u64> = 65_536..=(1 << 30);
/// Default `log.events_files`: `events.log` and four rotated files.
pub const DEFAULT_EVENTS_FILES: u64 = 5;
/// Accepted range of `log.events_files`.
pub const EVENTS_FILES_RANGE: RangeInclusive<u64> = 1..=100;
/// Default `log.stats_interval_secs`.
pub const DEFAULT_STATS_INTERVAL_SECS: u64 = 60;
/// Accepted range of `log.stats_interval_secs` (0 turns the line off; at most a day).
pub const STATS_INTERVAL_RANGE: RangeInclusive<u64> = 0..=86_400;

/// The event log and the statistics line (`log.events*`, `log.stats_interval_secs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventLogConfig {
    /// `log.events`: keep `events.log` in the data directory.
    pub enabled: bool,
    /// `log.events_max_bytes`: the size at which `events.log` is rotated; no file is larger.
    pub max_bytes: u64,
    /// `log.events_files`: files kept, `events.log` included (`events.log.1` … `.N-1` are the
    /// rotated ones); the log never takes more than `max_bytes × files`.
    pub files: u32,
    /// `log.stats_interval_secs`: period of the one-line summary (zero: none).
    pub stats_interval: Duration,
}

impl Default for EventLogConfig {
    fn default() -> Self {
        EventLogConfig {
            enabled: true,
            max_bytes: DEFAULT_EVENTS_MAX_BYTES,
            files: DEFAULT_EVENTS_FILES as u32,
            stats_interval: Duration::from_secs(DEFAULT_STATS_INTERVAL_SECS),
        }
    }
}

impl EventLogConfig {
    /// The most bytes the event log takes on disk.
    pub fn total_bytes(&self) -> u64 {
        self.max_bytes.saturating_mul(u64::from(self.files))
    }

    /// Adds the keys to the `[log]` table `check-config` prints.
    pub(super) fn to_toml(&self, log: &mut toml::Table) {
        use toml::Value as T;
        let int = |n: u64| T::Integer(i64::try_from(n).unwrap_or(i64::MAX));
        log.insert("events".into(), T::Boolean(self.enabled));
        log.insert("events_max_bytes".into(), int(self.max_bytes));
        log.insert("events_files".into(), int(u64::from(self.files)));
        log.insert(
            "stats_interval_secs".into(),
            int(self.stats_interval.as_secs()),
        );
    }
}

impl Checker {
    /// Checks (and removes) the event-log keys of the `[log]` section.
    pub(super) fn event_log(
        &self,
        log: &mut Map<String, Value>,
    ) -> Result<EventLogConfig, ConfigError> {
        let d = EventLogConfig::default();
        Ok(EventLogConfig {
            enabled: match log.remove("events") {
                Some(v) => self.boolean("log.events", v)?,
                None => d.enabled,
            },
            max_bytes: match log.remove("events_max_bytes") {
                Some(v) => self.integer("log.events_max_bytes", v, EVENTS_MAX_BYTES_RANGE)?,
                None => d.max_bytes,
            },
            files: match log.remove("events_files") {
                Some(v) => self.integer("log.events_files", v, EVENTS_FILES_RANGE)? as u32,
                None => d.files,
            },
            stats_interval: match log.remove("stats_interval_secs") {
                Some(v) => Duration::from_secs(self.integer(
                    "log.stats_interval_secs",
                    v,
                    STATS_INTERVAL_RANGE,
                )?),
                None => d.stats_interval,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{err, file, home_env, with_file};
    use super::*;
    use crate::config::Settings;

    #[test]
    fn defaults_keep_the_log_bounded() {
        let s = Settings::load(&with_file(&file("")), &home_env(&[])).expect("loads");
        assert_eq!(s.event_log, EventLogConfig::default());
        assert!(s.event_log.enabled);
        assert_eq!(s.event_log.total_bytes(), 50 * 1024 * 1024);
        assert_eq!(s.event_log.stats_interval, Duration::from_secs(60));
    }

    #[test]
    fn values_are_read_from_file_and_environment() {
        let f = file(
            "[log]\nevents = false\nevents_max_bytes = 65536\nevents_files = 2\nstats_interval_secs = 0\n",
        );
        let s = Settings::load(&with_file(&f), &home_env(&[])).expect("loads");
        assert!(!s.event_log.enabled);
        assert_eq!(s.event_log.max_bytes, 65_536);
        assert_eq!(s.event_log.files, 2);
        assert!(s.event_log.stats_interval.is_zero());
        let env = home_env(&[
            ("CHATD_LOG__EVENTS", "off"),
            ("CHATD_LOG__EVENTS_FILES", "7"),
        ]);
        let s = Settings::load(&with_file(&file("")), &env).expect("loads");
        assert!(!s.event_log.enabled);
        assert_eq!(s.event_log.files, 7);
    }

    #[test]
    fn bad_values_name_the_key_and_the_bounds() {
        for (text, key, says) in [
            ("events = \"maybe\"", "log.events", "expected true or false"),
            (
                "events_max_bytes = 1000",
                "log.events_max_bytes",
                "65536..=",
            ),
            (
                "events_max_bytes = -1",
                "log.events_max_bytes",
                "out of range",
            ),
            ("events_files = 0", "log.events_files", "1..=100"),
            ("events_files = 101", "log.events_files", "1..=100"),
            ("events_files = 1.5", "log.events_files", "whole number"),
            (
                "stats_interval_secs = 86401",
                "log.stats_interval_secs",
                "0..=86400",
            ),
            ("event = true", "log.event", "unknown key"),
        ] {
            let f = file(&format!("[log]\n{text}\n"));
            let e = err(&with_file(&f), &home_env(&[]));
            assert!(e.starts_with(key) && e.contains(says), "{text}: {e}");
            assert!(e.contains("(in "), "{text}: the file is named: {e}");
        }
        let env = home_env(&[("CHATD_LOG__EVENTS_MAX_BYTES", "lots")]);
        let e = err(&with_file(&file("")), &env);
        assert!(
            e.contains("log.events_max_bytes") && e.contains("$CHATD_LOG__EVENTS_MAX_BYTES"),
            "{e}"
        );
    }
}
