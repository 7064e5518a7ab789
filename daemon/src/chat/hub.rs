//! The hub: fans accepted messages out to every live subscription.
//!
//! It is a `tokio::sync::broadcast` channel of fixed capacity (`chat.subscriber_queue`):
//! publishing never waits, and each subscriber reads at its own pace from its own position in
//! the ring buffer. A subscriber that falls more than the capacity behind loses the oldest
//! entries and is told how many (see [`super::subscription`]), so memory stays bounded and a
//! slow subscriber can never slow the node.

use std::sync::Arc;

use tokio::sync::broadcast;

use super::store::Stored;

/// The fan-out point for accepted messages.
#[derive(Debug)]
pub struct Hub {
    tx: broadcast::Sender<Arc<Stored>>,
}

impl Hub {
    /// A hub whose subscribers may fall `capacity` messages behind.
    pub fn new(capacity: usize) -> Hub {
        Hub {
            tx: broadcast::Sender::new(capacity.max(1)),
        }
    }

    /// Hands `stored` to every subscriber; never waits.
    pub fn publish(&self, stored: Arc<Stored>) {
        // No subscribers is not an error.
        let _ = self.tx.send(stored);
    }

    /// A receiver of every message published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Stored>> {
        self.tx.subscribe()
    }

    /// Live receivers.
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }
}
