//! The writer: one thread that owns the files and writes the records handed to it.
//!
//! It takes [`Input`]s from a bounded channel: records (sent with `try_send`, so whoever logs
//! never waits: a full channel is a counted drop), snapshot requests (for `ReadLog`), ticks
//! (retention, once a minute) and the final close. After the first record of a batch it lets
//! the records of the next [`GATHER`] arrive, then writes them all with one `write` (one
//! wake-up of this thread per batch, not per message), and tells followers each line; a
//! `delete` record first blanks the deleted message's text (and its edits') in the files. A
//! failing disk is counted and logged at most once a minute; the writer goes on with the
//! next record.
//!
//! Reading (`NodeService.ReadLog`) starts from a [`Snapshot`], which the writer takes between
//! two records: the newest `last` records of its files, then (when following) every line
//! written after it, without gap or repeat. The files are read off the async threads, twice —
//! once to count the lines, once to send the last `last` of them, in chunks — so memory stays
//! bounded however large the log is; the client's pace holds the reader back (a small bounded
//! channel). A follower that falls more than the live channel's capacity behind is told how
//! many lines it missed.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{info, warn};

use super::Drops;
use super::file::{Files, Part, for_each_line};
use super::record::{Kind, Record};

/// How often a failing disk is reported in chatd's own log, at most.
const WARN_EVERY: Duration = Duration::from_secs(60);
/// How long the writer lets records gather after the first of a batch arrives. A line
/// reaches `events.log` and `chatctl log -f` at most this much later.
const GATHER: Duration = Duration::from_millis(50);

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
    /// Lines appended but not yet told to followers: a follower sees a line once it is in
    /// the file ([`Writer::flush`]).
    pub(super) unsent: Vec<Arc<str>>,
}

impl Writer {
    /// Runs until the channel closes or a [`Input::Close`] arrives.
    /// A panic inside is caught by the thread's [`crate::supervise::keep_running`], which
    /// runs this again with the same writer and channel.
    pub(super) fn run(&mut self, rx: &mut mpsc::Receiver<Input>) {
        while let Some(input) = rx.blocking_recv() {
            let record = matches!(input, Input::Record(_));
            if let Some(done) = self.handle(input) {
                let _ = done.send(());
                return;
            }
            if record {
                // Let the records of the next moment gather: one wake-up and one write for
                // all of them instead of one each (a delivery's CPU, docs/performance.md).
                // Senders never wait meanwhile: the channel holds `QUEUE` records.
                std::thread::sleep(GATHER);
            }
            // Whatever else waits, without blocking.
            while let Ok(input) = rx.try_recv() {
                if let Some(done) = self.handle(input) {
                    let _ = done.send(());
                    return;
                }
            }
            self.flush();
        }
        self.sync();
    }

    /// Writes the buffered lines, then tells followers; counts the lines lost to a failed
    /// write (here or in a rotation, pruning or blanking, which write what is buffered first).
    fn flush(&mut self) {
        if let Err(e) = self.files.flush() {
            self.warn("could not write to the event log", &e);
        }
        let lost = self.files.take_lost();
        if lost > 0 {
            self.drops.write_failed.fetch_add(lost, Ordering::Relaxed);
            // Which of the batch's lines reached the file is not known: followers are not
            // shown lines the file may lack.
            self.unsent.clear();
        }
        for line in self.unsent.drain(..) {
            // Nobody following is not an error.
            let _ = self.live.send(line);
        }
    }

    /// Handles one input; `Some` when it was the close.
    fn handle(&mut self, input: Input) -> Option<oneshot::Sender<()>> {
        match input {
            Input::Record(r) => self.write(&r),
            Input::Snapshot(reply) => {
                // Lines written before the snapshot are in its files, not in its follower.
                self.flush();
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
            Ok(()) => self.unsent.push(Arc::from(line.as_str())),
            Err(e) => {
                self.drops.write_failed.fetch_add(1, Ordering::Relaxed);
                self.warn("could not write to the event log", &e);
            }
        }
        if r.kind == Kind::Delete
            && !r.target.is_empty()
            && let Err(e) = self.files.redact(&r.target)
        {
            self.warn(
                "could not blank a deleted message's text in the event log",
                &e,
            );
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
        self.flush();
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

/// Lines per chunk sent to the client.
const CHUNK: usize = 256;
/// Chunks buffered for the client.
const QUEUE: usize = 4;

/// What the client receives.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chunk {
    /// Records, oldest first, one JSON object each (no newline).
    pub lines: Vec<String>,
    /// Records a follower missed because it read too slowly.
    pub missed: u64,
}

/// Streams the newest `last` records of `snapshot` and, with `follow`, the ones written
/// after it, until the client goes away or (following) the log closes.
pub fn read(snapshot: Snapshot, last: usize, follow: bool) -> mpsc::Receiver<Chunk> {
    let (tx, rx) = mpsc::channel(QUEUE);
    let Snapshot { parts, live } = snapshot;
    tokio::spawn(async move {
        let history = tx.clone();
        let read = tokio::task::spawn_blocking(move || send_tail(parts, last, &history));
        match read.await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => return, // the client went away
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not read the event log");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the event log failed");
                return;
            }
        }
        if follow {
            forward(live, &tx).await;
        }
    });
    rx
}

/// Sends the last `last` lines of `parts`; `Ok(false)` once the client is gone.
fn send_tail(parts: Vec<Part>, last: usize, tx: &mpsc::Sender<Chunk>) -> std::io::Result<bool> {
    if last == 0 {
        return Ok(true);
    }
    let mut total = 0usize;
    let mut kept = Vec::with_capacity(parts.len());
    for (file, len) in parts {
        let counter = file.try_clone()?;
        for_each_line(counter, len, |_| {
            total += 1;
            true
        })?;
        kept.push((file, len));
    }
    let mut skip = total.saturating_sub(last);
    let mut chunk = Vec::with_capacity(CHUNK.min(last));
    let mut open = true;
    for (file, len) in kept {
        for_each_line(file, len, |line| {
            if skip > 0 {
                skip -= 1;
                return true;
            }
            chunk.push(line.trim_end_matches('\n').to_owned());
            if chunk.len() >= CHUNK {
                let lines = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                open = tx.blocking_send(Chunk { lines, missed: 0 }).is_ok();
            }
            open
        })?;
        if !open {
            return Ok(false);
        }
    }
    if !chunk.is_empty() {
        return Ok(tx
            .blocking_send(Chunk {
                lines: chunk,
                missed: 0,
            })
            .is_ok());
    }
    Ok(true)
}

/// Sends each line written from now on, a chunk at a time, until the client goes away or
/// the log closes.
async fn forward(mut live: broadcast::Receiver<Arc<str>>, tx: &mpsc::Sender<Chunk>) {
    loop {
        let first = tokio::select! {
            () = tx.closed() => return,
            r = live.recv() => r,
        };
        let mut chunk = Chunk::default();
        match first {
            Ok(line) => chunk.lines.push(line.trim_end_matches('\n').to_owned()),
            Err(broadcast::error::RecvError::Lagged(n)) => chunk.missed = n,
            Err(broadcast::error::RecvError::Closed) => return,
        }
        while chunk.lines.len() < CHUNK {
            match live.try_recv() {
                Ok(line) => chunk.lines.push(line.trim_end_matches('\n').to_owned()),
                Err(broadcast::error::TryRecvError::Lagged(n)) => chunk.missed += n,
                Err(_) => break,
            }
        }
        if tx.send(chunk).await.is_err() {
            return;
        }
    }
}
