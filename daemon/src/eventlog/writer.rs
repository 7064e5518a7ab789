//! The writer: one thread that owns the files and writes the records handed to it.
//!
//! It takes [`Input`]s from a bounded channel: records (sent with `try_send`, so whoever logs
//! never waits: a full channel is a counted drop), snapshot requests (for `ReadLog`), ticks
//! (retention, once a minute) and the final close. It writes what it has, drains what else
//! waits, and tells followers each line it wrote. A failing disk is counted and logged at
//! most once a minute; the writer goes on with the next record.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{info, warn};

use super::Drops;
use super::file::{Files, Part};
use super::record::Record;

/// How often a failing disk is reported in chatd's own log, at most.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// What the writer is asked to do.
#[derive(Debug)]
pub(super) enum Input {
    /// Write one record.
    Record(Box<Record>),
    /// Open every file as it is now and start a follower there.
    Snapshot(oneshot::Sender<std::io::Result<Snapshot>>),
    /// Drop the records older than `chat.retention_days`, if set.
    Tick,
    /// Write what waits, force it to the disk and stop.
    Close(oneshot::Sender<()>),
}

/// The log as it was at one moment, and every line written since.
#[derive(Debug)]
pub struct Snapshot {
    /// Every file, oldest first, with the length to read up to.
    pub parts: Vec<Part>,
    /// The lines written after the snapshot.
    pub live: broadcast::Receiver<Arc<str>>,
}

/// The writer's state.
pub(super) struct Writer {
    pub(super) files: Files,
    pub(super) live: broadcast::Sender<Arc<str>>,
    pub(super) drops: Arc<Drops>,
    /// `chat.retention_days`.
    pub(super) retention: Option<Duration>,
    pub(super) last_warning: Option<Instant>,
}

impl Writer {
    /// Runs until the channel closes or a [`Input::Close`] arrives.
    pub(super) fn run(mut self, mut rx: mpsc::Receiver<Input>) {
        while let Some(input) = rx.blocking_recv() {
            if let Some(done) = self.handle(input) {
                let _ = done.send(());
                return;
            }
            // Whatever else waits, without blocking.
            while let Ok(input) = rx.try_recv() {
                if let Some(done) = self.handle(input) {
                    let _ = done.send(());
                    return;
                }
            }
        }
        self.sync();
    }

    /// Handles one input; `Some` when it was the close.
    fn handle(&mut self, input: Input) -> Option<oneshot::Sender<()>> {
        match input {
            Input::Record(r) => self.write(&r),
            Input::Snapshot(reply) => {
                let snap = self.files.snapshot().map(|parts| Snapshot {
                    parts,
                    live: self.live.subscribe(),
                });
                let _ = reply.send(snap);
            }
            Input::Tick => self.prune(),
            Input::Close(done) => {
                self.sync();
                return Some(done);
            }
        }
        None
    }

    fn write(&mut self, r: &Record) {
        let line = r.line();
        match self.files.append(&line) {
            Ok(()) => {
                // Followers only; nobody following is not an error.
                let _ = self.live.send(Arc::from(line.as_str()));
            }
            Err(e) => {
                self.drops.write_failed.fetch_add(1, Ordering::Relaxed);
                self.warn("could not write to the event log", &e);
            }
        }
    }

    fn prune(&mut self) {
        let Some(max_age) = self.retention else {
            return;
        };
        let now = crate::records::unix_ms();
        let cut = now.saturating_sub(u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX));
        match self.files.prune(cut) {
            Ok(0) => {}
            Ok(n) => info!(
                records = n,
                "deleted event-log records older than chat.retention_days"
            ),
            Err(e) => self.warn("could not delete expired event-log records", &e),
        }
    }

    fn sync(&mut self) {
        if let Err(e) = self.files.sync() {
            self.warn("could not sync the event log", &e);
        }
    }

    fn warn(&mut self, what: &str, e: &std::io::Error) {
        let now = Instant::now();
        if self
            .last_warning
            .is_none_or(|t| now.duration_since(t) >= WARN_EVERY)
        {
            self.last_warning = Some(now);
            let file = self.files.path(0);
            warn!(error = %e, file = %file.display(), "{what} (said at most once a minute)");
        }
    }
}
