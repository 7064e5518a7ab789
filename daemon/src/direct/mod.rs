//! The direct-delivery service: one bounded, opaque body sent to the node with a given
//! `NodeId` through the overlay's `direct` sub-protocol, acknowledged by that node; the
//! transport of end-to-end-encrypted private messages (a service above encrypts and
//! acknowledges end to end; this one never sees plaintext and never logs bodies).
//!
//! It hears the overlay's direct events inline from the overlay driver ([`DirectSink`]): a send's
//! outcome completes the waiting [`Direct::send`] call; a body for this node goes to the one
//! receiver handed out by [`Direct::received`], through a bounded queue. When that queue is
//! full the body is dropped and counted, although its sender was already told it was
//! accepted: the layer above acknowledges end to end and resends what it misses.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chat_overlay::{DirectError, DirectEvent, DirectInput, Input, NodeId};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use crate::overlay::{DirectSink, OverlayHandle};

/// Sends of the API waiting for the overlay, at most (the overlay's own bound is the same).
pub const MAX_PENDING: usize = 1024;
/// How long a send waits for its outcome. The overlay bounds every send by its lookup's
/// deadline and its request's resends; this only guards against a driver that stopped.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Bodies received and not yet taken by the receiver, at most.
pub const RECEIVED_QUEUE: usize = 1024;

/// Why a direct send failed.
#[derive(Debug, thiserror::Error)]
pub enum DirectSendError {
    /// The overlay (here or at the target) refused or could not deliver it.
    #[error(transparent)]
    Refused(#[from] DirectError),
    /// The overlay driver is not running (or not attached yet).
    #[error("the overlay driver is not running")]
    DriverClosed,
    /// No outcome within [`SEND_TIMEOUT`]: the body may or may not have arrived.
    #[error("no outcome within {} s; the body may or may not have arrived", SEND_TIMEOUT.as_secs())]
    Timeout,
}

/// A body received from another node: its sender and the bytes.
pub type Received = (NodeId, Vec<u8>);

/// The direct-delivery service.
pub struct Direct {
    ring: OnceLock<OverlayHandle>,
    waiters: Mutex<HashMap<u64, oneshot::Sender<Result<(), DirectError>>>>,
    next: AtomicU64,
    tx: mpsc::Sender<Received>,
    rx: Mutex<Option<mpsc::Receiver<Received>>>,
    dropped: AtomicU64,
}

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direct")
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl Direct {
    /// A service not yet attached to a ring.
    pub fn new() -> Arc<Direct> {
        let (tx, rx) = mpsc::channel(RECEIVED_QUEUE);
        Arc::new(Direct {
            ring: OnceLock::new(),
            waiters: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
            tx,
            rx: Mutex::new(Some(rx)),
            dropped: AtomicU64::new(0),
        })
    }

    /// Connects the service to the running ring (once; later calls are ignored).
    pub fn attach(&self, ring: OverlayHandle) {
        let _ = self.ring.set(ring);
    }

    /// The bodies sent to this node, from now on (one receiver: `None` after the first call).
    pub fn received(&self) -> Option<mpsc::Receiver<Received>> {
        self.rx.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Bodies dropped because the receiver's queue was full (or nobody took the receiver).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Sends `body` (at most [`chat_overlay::direct::MAX_BODY`] bytes) to the node `to`;
    /// `Ok` once that node acknowledged it.
    pub async fn send(&self, to: NodeId, body: Vec<u8>) -> Result<(), DirectSendError> {
        let Some(ring) = self.ring.get() else {
            return Err(DirectSendError::DriverClosed);
        };
        let (tx, rx) = oneshot::channel();
        let token = {
            let mut waiters = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
            if waiters.len() >= MAX_PENDING {
                return Err(DirectError::Busy.into());
            }
            let token = self.next.fetch_add(1, Ordering::Relaxed);
            waiters.insert(token, tx);
            token
        };
        if !ring.submit(Input::Direct(DirectInput::Send { token, to, body })) {
            self.forget(token);
            return Err(if ring.is_closed() {
                DirectSendError::DriverClosed
            } else {
                DirectError::Busy.into()
            });
        }
        match tokio::time::timeout(SEND_TIMEOUT, rx).await {
            Ok(Ok(result)) => Ok(result?),
            Ok(Err(_)) => {
                self.forget(token);
                Err(DirectSendError::DriverClosed)
            }
            Err(_) => {
                self.forget(token);
                Err(DirectSendError::Timeout)
            }
        }
    }

    /// Has the overlay refuse bodies for this node for `duration`, answering `reason`
    /// ([`DirectInput::Refuse`]): the receiver cannot store them now. Best effort (a driver
    /// not running or full drops it; the period is renewed at the next failure).
    pub fn refuse(&self, duration: Duration, reason: &str) {
        if let Some(ring) = self.ring.get() {
            let _ = ring.submit(Input::Direct(DirectInput::Refuse {
                duration,
                reason: reason.to_owned(),
            }));
        }
    }

    /// Has the overlay accept bodies again ([`DirectInput::Accept`]).
    pub fn accept(&self) {
        if let Some(ring) = self.ring.get() {
            let _ = ring.submit(Input::Direct(DirectInput::Accept));
        }
    }

    fn forget(&self, token: u64) {
        self.waiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&token);
    }

    /// Sends waiting for their outcome.
    pub fn pending(&self) -> usize {
        self.waiters.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl DirectSink for Direct {
    fn event(&self, e: DirectEvent) {
        match e {
            DirectEvent::Done { token, result } => {
                let waiter = self
                    .waiters
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&token);
                if let Some(tx) = waiter {
                    let _ = tx.send(result);
                }
            }
            DirectEvent::Received { from, body } => {
                let len = body.len();
                if self.tx.try_send((from.id, body)).is_err() {
                    let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                    warn!(
                        from = %from.id.short(),
                        bytes = len,
                        dropped,
                        "a direct delivery was dropped: the receiving queue is full"
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddr};

    use chat_overlay::Peer;

    use super::*;

    fn peer(i: u8) -> Peer {
        Peer {
            id: NodeId([i; 32]),
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 7400)),
        }
    }

    #[tokio::test]
    async fn a_send_without_a_ring_says_the_driver_is_not_running() {
        let d = Direct::new();
        assert!(matches!(
            d.send(NodeId([2; 32]), vec![1]).await,
            Err(DirectSendError::DriverClosed)
        ));
        assert_eq!(d.pending(), 0);
    }

    #[tokio::test]
    async fn received_bodies_reach_the_one_receiver_and_overflow_is_counted() {
        let d = Direct::new();
        let mut rx = d.received().expect("the first receiver");
        assert!(d.received().is_none());
        d.event(DirectEvent::Received {
            from: peer(2),
            body: b"sealed".to_vec(),
        });
        assert_eq!(rx.recv().await, Some((peer(2).id, b"sealed".to_vec())));
        for _ in 0..RECEIVED_QUEUE + 3 {
            d.event(DirectEvent::Received {
                from: peer(3),
                body: vec![0],
            });
        }
        assert_eq!(d.dropped(), 3);
    }

    #[test]
    fn an_outcome_completes_its_waiter_only() {
        let d = Direct::new();
        let (tx, mut rx) = oneshot::channel();
        d.waiters.lock().expect("lock").insert(7, tx);
        d.event(DirectEvent::Done {
            token: 8,
            result: Ok(()),
        });
        assert!(rx.try_recv().is_err());
        d.event(DirectEvent::Done {
            token: 7,
            result: Err(DirectError::NotInRing),
        });
        assert_eq!(rx.try_recv().ok(), Some(Err(DirectError::NotInRing)));
        assert_eq!(d.pending(), 0);
    }
}
