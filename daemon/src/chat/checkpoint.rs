//! WAL checkpoints away from the write path.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses the WAL size threshold:
//! that commit copies the log into the database and fsyncs, which takes milliseconds and would
//! stall the overlay driver delivering a message. The store turns automatic checkpoints off and
//! this thread, with its own connection, runs PASSIVE checkpoints (they never block the
//! writer) once a second when something was written. Dropping the [`Checkpointer`] stops the
//! thread after a last checkpoint.
//!
//! The log restarts from its beginning only when a transaction begins while everything in it
//! has been copied. A single pass never gets there under steady writes: what was committed
//! while it copied is still in the log when the writer comes back. The log then grows for as
//! long as messages keep arriving, and every commit appends to fresh file pages, which costs
//! several times more than rewriting cached ones (docs/performance.md). So a checkpoint makes
//! up to [`MAX_PASSES`] passes, each copying what the previous one left, until one finds
//! nothing new. That restarts the log about once a second up to a few hundred commits a
//! second; under a heavier stream of commits it still grows, and once it holds more than
//! [`RESTART_AFTER_FRAMES`] a RESTART checkpoint makes the writer wait (milliseconds) while
//! the rest is copied, so the log file stays bounded.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;
use tracing::warn;

/// How often the log is copied into the database while messages arrive.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// Checkpoint passes in a row at most (the later ones copy only a few pages).
pub const MAX_PASSES: usize = 4;
/// Frames in the log (64 MiB of 4 KiB pages) past which a checkpoint blocks the writer until
/// the log can start over.
pub const RESTART_AFTER_FRAMES: i64 = 16_384;
/// How long a checkpoint waits for the write lock the writer holds (PASSIVE needs it only
/// briefly at the start, to read the log's header).
const BUSY_TIMEOUT: Duration = Duration::from_millis(200);

/// The checkpoint thread of one database.
#[derive(Debug)]
pub struct Checkpointer {
    dirty: Arc<AtomicBool>,
    /// Dropped to stop the thread.
    _stop: mpsc::Sender<()>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path` (already in WAL mode). `None` (logged)
    /// when the connection or the thread cannot be made: the caller keeps SQLite's automatic
    /// checkpoints then.
    pub fn start(path: &Path) -> Option<Checkpointer> {
        let db = Connection::open(path)
            .and_then(|db| db.busy_timeout(BUSY_TIMEOUT).map(|()| db))
            .map_err(|e| warn!(error = %e, "no checkpoint connection; SQLite checkpoints inline"))
            .ok()?;
        let dirty = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = mpsc::channel::<()>();
        let flag = dirty.clone();
        std::thread::Builder::new()
            .name("chat-checkpoint".into())
            .spawn(move || {
                // Restarted if it panics: with automatic checkpoints off, a dead checkpointer
                // would let the log grow without limit.
                crate::supervise::keep_running("the WAL checkpointer", || run(&db, &flag, &stopped))
            })
            .map_err(|e| warn!(error = %e, "no checkpoint thread; SQLite checkpoints inline"))
            .ok()?;
        Some(Checkpointer { dirty, _stop: stop })
    }

    /// Notes that a transaction was committed.
    pub fn written(&self) {
        self.dirty.store(true, Ordering::Relaxed);
    }
}

fn run(db: &Connection, dirty: &AtomicBool, stop: &mpsc::Receiver<()>) {
    if crate::supervise::fault("checkpointer") {
        panic!("injected fault: the WAL checkpointer panics");
    }
    loop {
        let stopping = !matches!(
            stop.recv_timeout(INTERVAL),
            Err(mpsc::RecvTimeoutError::Timeout)
        );
        if dirty.swap(false, Ordering::Relaxed) || stopping {
            checkpoint(db);
        }
        if stopping {
            return;
        }
    }
}

/// Checkpoints until a pass finds no new frames (the writer's next transaction then restarts
/// the log), the log restarted, or [`MAX_PASSES`] passes were made; then, if the log is over
/// [`RESTART_AFTER_FRAMES`], once more in RESTART mode.
fn checkpoint(db: &Connection) {
    let mut previous: Option<i64> = None;
    for _ in 0..MAX_PASSES {
        let Some((busy, log)) = pass(db, "PASSIVE") else {
            return;
        };
        if busy || previous.is_some_and(|p| log <= p) {
            return;
        }
        previous = Some(log);
    }
    if previous.is_some_and(|log| log > RESTART_AFTER_FRAMES) {
        pass(db, "RESTART");
    }
}

/// One checkpoint in `mode`: whether it was kept from finishing by a lock, and the frames in
/// the log. `None` (logged) if it failed.
fn pass(db: &Connection, mode: &str) -> Option<(bool, i64)> {
    let sql = format!("PRAGMA wal_checkpoint({mode})");
    db.query_row(&sql, [], |r| {
        Ok((r.get::<_, i64>(0)? != 0, r.get::<_, i64>(1)?))
    })
    .map_err(|e| warn!(error = %e, mode, "WAL checkpoint failed"))
    .ok()
}
