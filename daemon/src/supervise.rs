//! Supervision: the app owns its long-lived tasks, and a task that ends on its own is a failure
//! of the whole daemon.
//!
//! A daemon with a dead overlay driver or a dead transport would keep its control API up and look
//! alive while it relays nothing. So the app spawns every long-lived task into one [`Tasks`]
//! (a `JoinSet` that remembers names) and waits on [`Tasks::ended`] beside the signals; the
//! first task that returns or panics before shutdown ends the daemon with an error (exit
//! status 1), and systemd (`Restart=on-failure`) starts it again. At shutdown the app stops
//! listening and [`Tasks::shutdown`] aborts what is left and waits for it.
//! Short-lived tasks (one per connection, per subscription, per handshake) end with the thing
//! they serve and are not supervised here. A task that ends by design once its job is done
//! (the bootstrap) joins with [`Tasks::spawn_finite`]: its return is fine, its panic is not.
//!
//! Threads: a plain OS thread (the WAL checkpointer, the search indexer, the event log's and
//! the record file's writers, mDNS browsing) runs its loop through [`keep_running`], which
//! restarts the loop when it panics and counts the restart ([`restarts`], shown on
//! `/metrics` as `chatd_restarts_total`). A thread whose death would go unnoticed (the WAL
//! would grow without limit once the checkpointer is gone) is thus restarted by design.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::task::{Id, JoinSet};
use tracing::Instrument;

/// How a supervised task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// The task's name.
    pub name: &'static str,
    /// Whether it panicked (otherwise it returned).
    pub panicked: bool,
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = if self.panicked { "panicked" } else { "stopped" };
        write!(f, "{} {how}", self.name)
    }
}

/// The app's long-lived tasks.
#[derive(Debug, Default)]
pub struct Tasks {
    set: JoinSet<()>,
    names: HashMap<Id, &'static str>,
    /// Tasks that may return (not panic) before shutdown.
    finite: HashSet<Id>,
}

impl Tasks {
    /// Spawns `fut` as the task `name`, in the current tracing span.
    pub fn spawn<F>(&mut self, name: &'static str, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let handle = self.set.spawn(fut.in_current_span());
        self.names.insert(handle.id(), name);
    }

    /// Spawns `fut` as the task `name`, which ends by design when its job is done: its
    /// return is not a failure, its panic is.
    pub fn spawn_finite<F>(&mut self, name: &'static str, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let handle = self.set.spawn(fut.in_current_span());
        self.names.insert(handle.id(), name);
        self.finite.insert(handle.id());
    }

    /// Resolves when a task ends (never, while there are none).
    pub async fn ended(&mut self) -> Ended {
        loop {
            match self.set.join_next_with_id().await {
                Some(Ok((id, ()))) => {
                    if self.finite.remove(&id) {
                        self.names.remove(&id);
                        continue;
                    }
                    return Ended {
                        name: self.names.remove(&id).unwrap_or("a task"),
                        panicked: false,
                    };
                }
                Some(Err(e)) => {
                    let name = self.names.remove(&e.id()).unwrap_or("a task");
                    self.finite.remove(&e.id());
                    if e.is_cancelled() {
                        continue;
                    }
                    return Ended {
                        name,
                        panicked: e.is_panic(),
                    };
                }
                None => std::future::pending::<()>().await,
            }
        }
    }

    /// Aborts every task left and waits until they are gone.
    pub async fn shutdown(&mut self) {
        self.set.shutdown().await;
        self.names.clear();
        self.finite.clear();
    }

    /// Tasks still running.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether none is running.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

/// Test builds only (debug assertions on): `CHAT_TEST_FAULT=<what>[,<what>…]` makes each
/// named piece of supervised work panic once, where it calls [`fault`]; release builds ignore
/// it. Names: `checkpointer` (the WAL checkpointer: restarted and counted), `direct-intake`
/// (the private direct deliveries' task: the daemon stops), `chat-store` (the chat store's
/// thread: the daemon stops). The supervision tests use it
/// (tests/e2e/ops/supervision.rs).
pub const FAULT_ENV: &str = "CHAT_TEST_FAULT";

/// Whether `what` should panic now (a fault injected by [`FAULT_ENV`]; once per process).
pub fn fault(what: &'static str) -> bool {
    static STRUCK: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    if !cfg!(debug_assertions) {
        return false;
    }
    let Ok(wanted) = std::env::var(FAULT_ENV) else {
        return false;
    };
    if !wanted.split(',').any(|w| w.trim() == what) {
        return false;
    }
    let mut struck = STRUCK.lock().unwrap_or_else(|p| p.into_inner());
    if struck.contains(&what) {
        return false;
    }
    struck.push(what);
    true
}

/// Restarts of supervised loops so far, by name.
static RESTARTS: Mutex<BTreeMap<&'static str, u64>> = Mutex::new(BTreeMap::new());

/// The first wait before a panicked loop runs again; it doubles up to [`MAX_BACKOFF`] while
/// the loop keeps panicking at once.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between two restarts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A run this long resets the backoff.
const STEADY: Duration = Duration::from_secs(30);

/// Runs `body` on the current thread (meant as an OS thread's whole work) until it returns;
/// when it panics it is counted as a restart of `name`, logged, and run again after a short
/// backoff. `body` returns only when its work is meant to end (its owner stopped it).
pub fn keep_running(name: &'static str, mut body: impl FnMut()) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let started = std::time::Instant::now();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(&mut body)) {
            Ok(()) => return,
            Err(_) => {
                let n = {
                    let mut all = RESTARTS.lock().unwrap_or_else(|p| p.into_inner());
                    let n = all.entry(name).or_insert(0);
                    *n += 1;
                    *n
                };
                if started.elapsed() >= STEADY {
                    backoff = FIRST_BACKOFF;
                }
                tracing::error!(
                    thread = name,
                    restarts = n,
                    "{name} panicked; restarting it in {backoff:?}"
                );
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Restarts counted by [`keep_running`], by name (only names restarted at least once).
pub fn restarts() -> Vec<(&'static str, u64)> {
    RESTARTS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(k, v)| (*k, *v))
        .collect()
}

/// Restarts of `name` so far.
pub fn restarts_of(name: &str) -> u64 {
    RESTARTS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(name)
        .copied()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_that_returns_or_panics_is_named() {
        let mut tasks = Tasks::default();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tasks.spawn("waits", async move {
            let _ = rx.await;
        });
        tasks.spawn("panics", async { panic!("injected") });
        assert_eq!(
            tasks.ended().await,
            Ended {
                name: "panics",
                panicked: true
            }
        );
        tx.send(()).expect("still waiting");
        assert_eq!(
            tasks.ended().await,
            Ended {
                name: "waits",
                panicked: false
            }
        );
        assert!(tasks.is_empty());
    }

    #[tokio::test]
    async fn shutdown_aborts_what_is_left() {
        let mut tasks = Tasks::default();
        tasks.spawn("forever", std::future::pending());
        assert_eq!(tasks.len(), 1);
        tasks.shutdown().await;
        assert!(tasks.is_empty());
    }

    #[tokio::test]
    async fn a_finite_task_may_return_but_not_panic() {
        let mut tasks = Tasks::default();
        tasks.spawn_finite("done", async {});
        tasks.spawn_finite("breaks", async {
            tokio::task::yield_now().await;
            panic!("injected")
        });
        assert_eq!(
            tasks.ended().await,
            Ended {
                name: "breaks",
                panicked: true
            }
        );
        assert!(tasks.is_empty());
    }

    #[test]
    fn a_panicking_loop_is_restarted_and_counted() {
        let name = "the test loop";
        let before = restarts_of(name);
        let mut runs = 0;
        keep_running(name, || {
            runs += 1;
            if runs < 3 {
                panic!("injected");
            }
        });
        assert_eq!(runs, 3);
        assert_eq!(restarts_of(name), before + 2);
        assert!(restarts().iter().any(|(n, c)| *n == name && *c >= 2));
    }
}
