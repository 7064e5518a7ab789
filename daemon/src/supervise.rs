//! Supervision: the app owns its long-lived tasks, and a task that ends on its own is a failure
//! of the whole daemon.
//!
//! A daemon with a dead ring driver or a dead transport would keep its control API up and look
//! alive while it relays nothing. So the app spawns every long-lived task into one [`Tasks`]
//! (a `JoinSet` that remembers names) and waits on [`Tasks::ended`] beside the signals; the
//! first task that returns or panics before shutdown ends the daemon with an error (exit
//! status 1), and systemd (`Restart=on-failure`) starts it again. At shutdown the app stops
//! listening and [`Tasks::shutdown`] aborts what is left and waits for it.
//! Short-lived tasks (one per connection, per subscription, per handshake) end with the thing
//! they serve and are not supervised here.

use std::collections::HashMap;
use std::future::Future;

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

    /// Resolves when a task ends (never, while there are none).
    pub async fn ended(&mut self) -> Ended {
        loop {
            match self.set.join_next_with_id().await {
                Some(Ok((id, ()))) => {
                    return Ended {
                        name: self.names.remove(&id).unwrap_or("a task"),
                        panicked: false,
                    };
                }
                Some(Err(e)) => {
                    let name = self.names.remove(&e.id()).unwrap_or("a task");
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
}
