//! Blocking work off the async workers: every SQLite read a client asks for (History, Search,
//! ListRooms, positions, subscription replays, IRC history) and every private-message engine
//! call ([`crate::dm::Dm`]'s vodozemac work and its store commit) runs on tokio's blocking
//! pool through [`Offload::run`], never on an async worker, which the ring's driver shares.
//!
//! Each kind of work ([`Work`]) has its own bound: at most `running` calls of that kind run at
//! once, at most `queued` more wait for a place, and a client's call waits at most `wait`
//! (queueing with a deadline). A call past either bound fails at once with
//! [`OffloadError::Busy`] (the control API's RESOURCE_EXHAUSTED, `control/error.rs`); so a
//! flood of Search calls can neither occupy the blocking pool nor starve History or the
//! private messages, and a client is told to retry instead of hanging. The service's own
//! work (the private-message tasks acting on what the network brought, a subscription's
//! replay once it is open) uses [`Offload::run_owed`]: it waits for a place as long as it
//! takes, since dropping it would lose what the node already took.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::Semaphore;

/// A kind of blocking work, each with its own bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// Full-text search (public `Search`, `SearchPrivate`): the longest reads.
    Search,
    /// Other history reads: `History`, `ListRooms`, positions, subscription replays, IRC
    /// replays and `CHATHISTORY`, private history.
    Read,
    /// Private-message engine calls and their store commits (`Dm::act`), and what the
    /// private service reads and writes in `dm.sqlite3`.
    Private,
}

impl Work {
    fn index(self) -> usize {
        match self {
            Work::Search => 0,
            Work::Read => 1,
            Work::Private => 2,
        }
    }

    /// The name errors and docs use.
    pub fn name(self) -> &'static str {
        match self {
            Work::Search => "search",
            Work::Read => "history read",
            Work::Private => "private-message",
        }
    }
}

impl fmt::Display for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One kind's bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// Calls of this kind running at once.
    pub running: usize,
    /// Calls waiting for a place, beyond which a client's call is refused at once.
    pub queued: usize,
    /// Longest a client's call waits for a place.
    pub wait: Duration,
}

/// The bounds of [`Work::Search`], [`Work::Read`] and [`Work::Private`].
pub const DEFAULT_LIMITS: [Limit; 3] = [
    // Searches scan the full-text index: two at once keep one core for delivery.
    Limit {
        running: 2,
        queued: 32,
        wait: Duration::from_secs(5),
    },
    Limit {
        running: 4,
        queued: 128,
        wait: Duration::from_secs(5),
    },
    // One engine lock: more would only wait on it on blocking threads.
    Limit {
        running: 2,
        queued: 256,
        wait: Duration::from_secs(10),
    },
];

/// Why offloaded work did not run.
#[derive(Debug, thiserror::Error)]
pub enum OffloadError {
    /// The kind's queue is full, or the call waited its longest for a place.
    #[error(
        "this node is busy with {kind} calls ({running} running, {queued} more waiting at \
         most, {waited_ms} ms waited); retry shortly"
    )]
    Busy {
        kind: Work,
        running: usize,
        queued: usize,
        waited_ms: u128,
    },
    /// The work panicked or the runtime is shutting down.
    #[error("blocking {kind} task failed: {detail}")]
    Task { kind: Work, detail: String },
}

struct Lane {
    limit: Limit,
    places: Arc<Semaphore>,
    waiting: AtomicUsize,
}

/// The bounded gate to the blocking pool. Cheap to clone; one per process
/// ([`Offload::shared`]) unless a test builds its own.
#[derive(Clone)]
pub struct Offload {
    lanes: Arc<[Lane; 3]>,
}

impl fmt::Debug for Offload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Offload").finish_non_exhaustive()
    }
}

/// Decrements a lane's waiting count when the wait ends (also when the call is dropped).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Offload {
    /// A gate with these bounds (indexed as [`Work`]: search, read, private).
    pub fn new(limits: [Limit; 3]) -> Offload {
        let lane = |limit: Limit| Lane {
            limit,
            places: Arc::new(Semaphore::new(limit.running.max(1))),
            waiting: AtomicUsize::new(0),
        };
        Offload {
            lanes: Arc::new(limits.map(lane)),
        }
    }

    /// The process's gate, with [`DEFAULT_LIMITS`].
    pub fn shared() -> Offload {
        static SHARED: OnceLock<Offload> = OnceLock::new();
        SHARED.get_or_init(|| Offload::new(DEFAULT_LIMITS)).clone()
    }

    /// Runs `f` on the blocking pool for a client: waits for a place of its kind at most the
    /// kind's `wait`, behind at most `queued` others, else [`OffloadError::Busy`].
    pub async fn run<T, F>(&self, kind: Work, f: F) -> Result<T, OffloadError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let lane = &self.lanes[kind.index()];
        let busy = |waited: Duration| OffloadError::Busy {
            kind,
            running: lane.limit.running,
            queued: lane.limit.queued,
            waited_ms: waited.as_millis(),
        };
        let permit = match lane.places.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if lane.waiting.fetch_add(1, Ordering::AcqRel) >= lane.limit.queued {
                    lane.waiting.fetch_sub(1, Ordering::AcqRel);
                    return Err(busy(Duration::ZERO));
                }
                let _waiting = Waiting(&lane.waiting);
                match tokio::time::timeout(lane.limit.wait, lane.places.clone().acquire_owned())
                    .await
                {
                    Ok(Ok(p)) => p,
                    Ok(Err(_)) | Err(_) => return Err(busy(lane.limit.wait)),
                }
            }
        };
        spawn(kind, permit, f).await
    }

    /// Runs `f` on the blocking pool for the service itself: waits for a place as long as it
    /// takes (what it carries must not be dropped), still within the kind's `running` bound.
    pub async fn run_owed<T, F>(&self, kind: Work, f: F) -> Result<T, OffloadError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let lane = &self.lanes[kind.index()];
        let permit = lane
            .places
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| OffloadError::Task {
                kind,
                detail: e.to_string(),
            })?;
        spawn(kind, permit, f).await
    }

    /// Places of `kind` free now (tests, metrics).
    pub fn available(&self, kind: Work) -> usize {
        self.lanes[kind.index()].places.available_permits()
    }

    /// Takes every place of `kind` until the guard drops, as long reads would (tests).
    pub async fn occupy(&self, kind: Work) -> tokio::sync::OwnedSemaphorePermit {
        let lane = &self.lanes[kind.index()];
        let n = u32::try_from(lane.limit.running.max(1)).unwrap_or(u32::MAX);
        lane.places
            .clone()
            .acquire_many_owned(n)
            .await
            .unwrap_or_else(|_| unreachable!("the semaphore is never closed"))
    }
}

async fn spawn<T, F>(
    kind: Work,
    permit: tokio::sync::OwnedSemaphorePermit,
    f: F,
) -> Result<T, OffloadError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        f()
    })
    .await
    .map_err(|e| OffloadError::Task {
        kind,
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(wait_ms: u64) -> Offload {
        let l = Limit {
            running: 1,
            queued: 1,
            wait: Duration::from_millis(wait_ms),
        };
        Offload::new([l, l, l])
    }

    #[tokio::test]
    async fn runs_off_the_worker_and_returns_the_value() {
        let o = tiny(1000);
        let worker = std::thread::current().id();
        let (v, there) = o
            .run(Work::Read, move || (7, std::thread::current().id()))
            .await
            .expect("runs");
        assert_eq!(v, 7);
        assert_ne!(there, worker, "ran on a blocking thread");
        assert_eq!(o.available(Work::Read), 1, "the place is given back");
    }

    #[tokio::test]
    async fn a_full_kind_refuses_after_its_wait_and_others_still_run() {
        let o = tiny(50);
        let held = o.occupy(Work::Search).await;
        let started = std::time::Instant::now();
        let err = o.run(Work::Search, || ()).await.expect_err("busy");
        assert!(matches!(
            err,
            OffloadError::Busy {
                kind: Work::Search,
                ..
            }
        ));
        assert!(
            started.elapsed() >= Duration::from_millis(50),
            "waited first"
        );
        // Another kind is not held up by searches.
        o.run(Work::Read, || ()).await.expect("reads still run");
        drop(held);
        o.run(Work::Search, || ()).await.expect("free again");
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let o = tiny(60_000);
        let held = o.occupy(Work::Search).await;
        let o2 = o.clone();
        let queued = tokio::spawn(async move { o2.run(Work::Search, || 1).await });
        // Wait until the first caller is queued.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while o.lanes[0].waiting.load(Ordering::Acquire) == 0 {
            assert!(std::time::Instant::now() < deadline, "never queued");
            tokio::task::yield_now().await;
        }
        let started = std::time::Instant::now();
        let err = o.run(Work::Search, || 2).await.expect_err("queue full");
        assert!(matches!(err, OffloadError::Busy { waited_ms: 0, .. }));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "refused at once"
        );
        drop(held);
        assert_eq!(queued.await.expect("task").expect("ran"), 1);
    }

    #[tokio::test]
    async fn owed_work_waits_for_its_place() {
        let o = tiny(1);
        let held = o.occupy(Work::Private).await;
        let o2 = o.clone();
        let owed = tokio::spawn(async move { o2.run_owed(Work::Private, || 3).await });
        tokio::task::yield_now().await;
        drop(held);
        assert_eq!(owed.await.expect("task").expect("ran"), 3);
    }
}
