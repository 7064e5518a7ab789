//! The `[log]` keys beyond `filter`: the event log (`log.events`, `log.events_max_bytes`,
//! `log.events_files`) and the periodic statistics line (`log.stats_interval_secs`), declared
//! once each (default, bounds, doc) with `section!`.
//!
//! The event log itself is `crate::eventlog`; its privacy effect is described in
//! `docs/security.md` ("The event log").

use std::ops::RangeInclusive;
use std::time::Duration;

use super::kinds::{Bool, Int, Secs};
use super::schema::section;

/// Accepted range of `log.events_files` (also the most rotated files the event log looks for).
pub const EVENTS_FILES_RANGE: RangeInclusive<u64> = 1..=100;

section! {
    /// The event log and the statistics line (`log.events*`, `log.stats_interval_secs`).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct EventLogConfig {
        /// The event log: events.log in the data directory, one JSON object a line — every
        /// public message with its text, every private message of this node's users as sender,
        /// recipient and time only (never the text), joins, leaves, away/back, renames, start,
        /// stop and the statistics below. Read it with `sudo chatctl log [-f] [--json]` (root
        /// and chatd's user only). It keeps who wrote privately to whom and when: see
        /// docs/security.md, "The event log".
        enabled @ "log.events": bool = true, Bool, Restart;
        /// events.log is rotated (to events.log.1, …) when the next record would take it past
        /// this many bytes; no event-log file is larger. The lower bound lets every record fit
        /// in a file (a record is at most about 25 KiB).
        max_bytes @ "log.events_max_bytes": u64 = 10 * 1024 * 1024,
            Int(65_536..=(1 << 30)), Restart;
        /// Event-log files kept, events.log included, so the log never takes more than
        /// events_max_bytes × events_files (50 MiB by default). Records older than
        /// chat.retention_days, if set, are removed within a minute.
        files @ "log.events_files": u32 = 5, Int(EVENTS_FILES_RANGE), Restart;
        /// Every this many seconds, one INFO line with the messages processed and the clients
        /// connected, also written to the event log as a "stats" record (0 turns it off).
        stats_interval @ "log.stats_interval_secs": Duration = Duration::from_secs(60),
            Secs(0..=86_400), Restart;
    }
}

impl EventLogConfig {
    /// The most bytes the event log takes on disk.
    pub fn total_bytes(&self) -> u64 {
        self.max_bytes.saturating_mul(u64::from(self.files))
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
