//! The event log: every public message (with its text), private message (sender, recipient,
//! time and id — never its text), people event (join, leave, away/back, nickname change,
//! node down), the node's start and stop, and the periodic statistics, one JSON object a
//! line in `events.log` in the data directory (`docs/operations.md`, "The event log").
//!
//! - `record.rs`: a record and its JSON-lines form (escaping; no private text, ever);
//! - `file.rs`: the size-bounded rotating files (`log.events_max_bytes` × `log.events_files`);
//! - `writer.rs`: the thread that owns the files, fed by a bounded channel, and [`read`] for
//!   `NodeService.ReadLog` (`chatctl log [-f]`): the newest records, then new ones;
//! - `feed.rs`: the task that turns the chat hub's, people's and private service's events
//!   into records, and writes the statistics line (`log.stats_interval_secs`);
//! - `stats.rs`: what `chatctl status` adds about clients and private messages.
//!
//! Nothing on the message path waits for the log: records are handed over with `try_send`,
//! and one that finds the channel full is dropped and counted (`eventlog_full` in
//! `chatctl status` and `chatd_dropped_total`), as are records the feed missed
//! (`eventlog_lagged`) and writes that failed (`eventlog_write_failed`).

pub mod feed;
mod file;
pub mod record;
pub mod stats;
mod writer;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};

pub use file::{FILE, MODE};
pub use record::{Kind, PrivateFacts, Record};
pub use writer::{Chunk, Snapshot, read};

use crate::config::EventLogConfig;
use writer::{Input, Writer};

/// Records waiting for the writer, at most.
pub const QUEUE: usize = 4096;
/// Lines a follower (`chatctl log -f`) may fall behind by.
const LIVE_QUEUE: usize = 1024;

/// Why the event log could not start or answer.
#[derive(Debug, thiserror::Error)]
pub enum EventLogError {
    /// `events.log` could not be opened or repaired.
    #[error("event log {path}: {source}")]
    Open {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// The writer thread could not be started.
    #[error("event log: cannot start its writer thread: {0}")]
    Thread(std::io::Error),
    /// The writer has stopped (chatd is stopping).
    #[error("the event log is closed")]
    Closed,
    /// The files could not be opened for reading.
    #[error("event log: {0}")]
    Read(std::io::Error),
}

/// Records lost, by reason.
#[derive(Debug, Default)]
pub struct Drops {
    /// The writer's channel was full.
    full: AtomicU64,
    /// The feed fell behind a broadcast it reads.
    lagged: AtomicU64,
    /// Writing failed.
    write_failed: AtomicU64,
}

/// The running event log; clone it freely.
#[derive(Clone, Debug)]
pub struct EventLog {
    tx: mpsc::Sender<Input>,
    drops: Arc<Drops>,
    thread: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl EventLog {
    /// Opens `events.log` in `data_dir` and starts the writer. `retention` is
    /// `chat.retention_days`: older records are deleted once a minute ([`EventLog::tick`]).
    pub fn open(
        data_dir: &Path,
        cfg: &EventLogConfig,
        retention: Option<Duration>,
    ) -> Result<EventLog, EventLogError> {
        let files = file::Files::open(data_dir, cfg.max_bytes, cfg.files).map_err(|source| {
            EventLogError::Open {
                path: data_dir.join(FILE),
                source,
            }
        })?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let drops = Arc::new(Drops::default());
        let writer = Writer {
            files,
            live: broadcast::Sender::new(LIVE_QUEUE),
            drops: drops.clone(),
            retention,
            last_warning: None,
            unsent: Vec::new(),
        };
        let span = tracing::Span::current();
        let thread = std::thread::Builder::new()
            .name("chatd-eventlog".into())
            .spawn(move || {
                let _span = span.enter();
                let (mut writer, mut rx) = (writer, rx);
                crate::supervise::keep_running("the event log writer", || writer.run(&mut rx));
            })
            .map_err(EventLogError::Thread)?;
        Ok(EventLog {
            tx,
            drops,
            thread: Arc::new(Mutex::new(Some(thread))),
        })
    }

    /// Hands `record` to the writer without waiting; counted as dropped if it cannot take it.
    pub fn record(&self, record: Record) {
        if self.tx.try_send(Input::Record(Box::new(record))).is_err() {
            self.drops.full.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The feed missed `n` events of a broadcast it reads.
    pub fn lagged(&self, n: u64) {
        self.drops.lagged.fetch_add(n, Ordering::Relaxed);
    }

    /// Records lost, by reason (`eventlog_full`, `eventlog_lagged`, `eventlog_write_failed`).
    pub fn drops(&self) -> Vec<(String, u64)> {
        let d = &self.drops;
        [
            ("eventlog_full", &d.full),
            ("eventlog_lagged", &d.lagged),
            ("eventlog_write_failed", &d.write_failed),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.load(Ordering::Relaxed)))
        .collect()
    }

    /// Asks for the retention pass (the feed does, once a minute); skipped while the writer
    /// is busy.
    pub fn tick(&self) {
        let _ = self.tx.try_send(Input::Tick);
    }

    /// The log as it is now, and a follower of what comes next.
    pub async fn snapshot(&self) -> Result<Snapshot, EventLogError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Input::Snapshot(reply))
            .await
            .map_err(|_| EventLogError::Closed)?;
        answer
            .await
            .map_err(|_| EventLogError::Closed)?
            .map_err(EventLogError::Read)
    }

    /// Writes what waits, forces it to the disk and stops the writer, within `deadline`.
    pub async fn close(&self, deadline: Duration) {
        let (done, finished) = oneshot::channel();
        let closed = async {
            if self.tx.send(Input::Close(done)).await.is_ok() {
                let _ = finished.await;
            }
        };
        if tokio::time::timeout(deadline, closed).await.is_err() {
            tracing::warn!("the event log did not finish writing within {deadline:?}");
            return;
        }
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = thread
            && t.join().is_err()
        {
            tracing::warn!("the event log's writer panicked");
        }
    }
}

#[cfg(test)]
mod tests;
