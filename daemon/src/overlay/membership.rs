//! What the overlay driver tells the rest of the daemon: whether the node is a member (drives
//! READY=1 and gRPC health), the ring size, the bootstrap's retry, and the driver's heartbeat.
//! Made before the driver starts and shared with it; the node and the status read it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::watch;

/// What the overlay driver tells the rest of the daemon: whether the node is a member, the ring
/// size, and a heartbeat that moves while the driver's loop turns (the watchdog pings only
/// then).
#[derive(Debug)]
pub struct Membership {
    joined: watch::Sender<bool>,
    ring_size: AtomicU64,
    ring_exact: AtomicBool,
    turns: AtomicU64,
    retry: std::sync::Mutex<Option<Retry>>,
}

/// The first contact is waiting to try the bootstrap peers again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    /// Why the last round failed (each address's error, shortened).
    pub reason: String,
    /// When the next round starts, Unix milliseconds.
    pub next_unix_ms: u64,
}

impl Default for Membership {
    fn default() -> Self {
        Membership {
            joined: watch::Sender::new(false),
            ring_size: AtomicU64::new(0),
            ring_exact: AtomicBool::new(false),
            turns: AtomicU64::new(0),
            retry: std::sync::Mutex::new(None),
        }
    }
}

impl Membership {
    /// Sets the `joined` flag (subscribers hear of a change).
    pub fn set_joined(&self, joined: bool) {
        self.joined
            .send_if_modified(|j| std::mem::replace(j, joined) != joined);
    }

    /// Whether the node is a ring member.
    pub fn is_joined(&self) -> bool {
        *self.joined.borrow()
    }

    /// Follows the `joined` flag.
    pub fn subscribe_joined(&self) -> watch::Receiver<bool> {
        self.joined.subscribe()
    }

    /// Records the driver's ring size: the exact count (`exact`) or the estimate.
    pub fn set_ring_size(&self, n: u64, exact: bool) {
        self.ring_size.store(n, Ordering::Relaxed);
        self.ring_exact.store(exact, Ordering::Relaxed);
    }

    /// Whether [`Membership::ring_size`] is the exact count rather than an estimate.
    pub fn ring_size_is_exact(&self) -> bool {
        self.ring_exact.load(Ordering::Relaxed)
    }

    /// The ring size, exact or estimated ([`Membership::ring_size_is_exact`]); 0 while not a
    /// member.
    pub fn ring_size(&self) -> u64 {
        if self.is_joined() {
            self.ring_size.load(Ordering::Relaxed)
        } else {
            0
        }
    }

    /// Records that the bootstrap is retried (`None`: it is not, or no longer).
    pub fn set_retry(&self, retry: Option<Retry>) {
        *self.retry.lock().unwrap_or_else(|p| p.into_inner()) = retry;
    }

    /// Whether (and why, and until when) the bootstrap is being retried.
    pub fn retry(&self) -> Option<Retry> {
        self.retry.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The driver's loop turned once more.
    pub fn turned(&self) {
        self.turns.fetch_add(1, Ordering::Relaxed);
    }

    /// Turns of the driver's loop so far.
    pub fn turns(&self) -> u64 {
        self.turns.load(Ordering::Relaxed)
    }
}
