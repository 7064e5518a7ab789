//! WAL checkpoints away from the write path.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses the WAL size threshold:
//! that commit copies the log into the database and fsyncs, which takes milliseconds and would
//! stall the ring driver delivering a message. The store turns automatic checkpoints off and
//! this thread, with its own connection, runs a PASSIVE checkpoint (it never blocks the
//! writer) once a second when something was written. Dropping the [`Checkpointer`] stops the
//! thread after a last checkpoint.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;
use tracing::warn;

/// How often the log is copied into the database while messages arrive.
pub const INTERVAL: Duration = Duration::from_secs(1);
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
            .spawn(move || run(&db, &flag, &stopped))
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
    loop {
        let stopping = !matches!(
            stop.recv_timeout(INTERVAL),
            Err(mpsc::RecvTimeoutError::Timeout)
        );
        if dirty.swap(false, Ordering::Relaxed) || stopping {
            let done = db.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0));
            if let Err(e) = done {
                warn!(error = %e, "WAL checkpoint failed");
            }
        }
        if stopping {
            return;
        }
    }
}
