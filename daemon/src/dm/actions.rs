//! The network actions of the engines, carried out concurrently but bounded: at most
//! [`MAX_RUNNING`] at once, up to [`MAX_WAITING`] more wait in order and start as running ones
//! finish; beyond that an action is refused with a warning and counted (`dm_actions_full` in
//! the status's drops) — the engine asks again (its retries and timeouts cover a lost action).
//! A panic in an action is kept and re-raised by the service's supervised task, which stops
//! the daemon.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::task::JoinSet;
use tracing::warn;

/// Actions running at once, at most.
pub const MAX_RUNNING: usize = 256;
/// Actions waiting for a slot, at most.
pub const MAX_WAITING: usize = 4096;

type Job = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

#[derive(Default)]
struct Inner {
    running: JoinSet<()>,
    waiting: VecDeque<Job>,
    /// A panic from a finished action, for [`Pool::take_panic`].
    panic: Option<Box<dyn std::any::Any + Send>>,
}

/// The bounded set of running actions.
#[derive(Default)]
pub struct Pool {
    inner: Mutex<Inner>,
    refused: AtomicU64,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").finish_non_exhaustive()
    }
}

impl Pool {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts `job` now if a slot is free, else queues it; refuses it (counted, warned) when
    /// the queue is full. Must run inside a tokio runtime.
    pub fn run(&self, job: impl Future<Output = ()> + Send + 'static) {
        let mut inner = self.lock();
        Self::reap(&mut inner);
        if inner.running.len() < MAX_RUNNING {
            inner.running.spawn(job);
        } else if inner.waiting.len() < MAX_WAITING {
            inner.waiting.push_back(Box::pin(job));
        } else {
            drop(inner);
            let n = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
            warn!(
                refused = n,
                "private messages: {MAX_RUNNING} network actions running and {MAX_WAITING} waiting; refusing one (the engine retries)"
            );
        }
    }

    /// Collects finished actions and starts waiting ones in their slots.
    pub fn reap_now(&self) {
        Self::reap(&mut self.lock());
    }

    fn reap(inner: &mut Inner) {
        while let Some(done) = inner.running.try_join_next() {
            if let Err(e) = done
                && e.is_panic()
                && inner.panic.is_none()
            {
                inner.panic = Some(e.into_panic());
            }
        }
        while inner.running.len() < MAX_RUNNING {
            let Some(job) = inner.waiting.pop_front() else {
                break;
            };
            inner.running.spawn(job);
        }
    }

    /// The panic of an action that failed, once.
    pub fn take_panic(&self) -> Option<Box<dyn std::any::Any + Send>> {
        self.lock().panic.take()
    }

    /// (running, waiting) now.
    pub fn load(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.running.len(), inner.waiting.len())
    }

    /// Actions refused because the queue was full.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn actions_are_bounded_queued_then_refused_and_panics_are_kept() {
        let pool = Pool::default();
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let done = Arc::new(AtomicU64::new(0));
        for _ in 0..MAX_RUNNING + MAX_WAITING + 3 {
            let (gate, done) = (gate.clone(), done.clone());
            pool.run(async move {
                let _ = gate.acquire().await;
                done.fetch_add(1, Ordering::Relaxed);
            });
        }
        assert_eq!(pool.load(), (MAX_RUNNING, MAX_WAITING));
        assert_eq!(pool.refused(), 3);
        // Let everything through: the waiting ones start as slots free up.
        gate.add_permits(MAX_RUNNING + MAX_WAITING);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while done.load(Ordering::Relaxed) < (MAX_RUNNING + MAX_WAITING) as u64 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "actions did not finish"
            );
            pool.reap_now();
            tokio::task::yield_now().await;
        }
        assert!(pool.take_panic().is_none());
        pool.run(async { panic!("injected") });
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            pool.reap_now();
            if pool.take_panic().is_some() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the panic was not kept"
            );
            tokio::task::yield_now().await;
        }
    }
}
