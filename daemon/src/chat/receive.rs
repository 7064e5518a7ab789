//! Receiving: messages from the ring handed over to the store's own thread (`pipeline.rs`)
//! or accepted here (verified, deduped, stored, published); the group commit of the ring's
//! messages, what a failed write lost for the ring to fetch again, and the pruning of expired
//! history.

use std::sync::Arc;
use std::time::Instant;

use super::envelope::{self, EnvelopeError};
use super::{AcceptError, Chat, ChatError, ChatMessage, Stored, hlc};

impl Chat {
    /// Hands one driver turn's verified messages from the ring over to the store's thread
    /// (`pipeline.rs`), or stores them here when there is none.
    pub fn hand_over(&self, messages: Vec<ChatMessage>) {
        match self.inner.pipeline.get() {
            Some(p) => p.hand_over(&self.inner, messages),
            None => {
                for m in messages {
                    if let Err(e) = self.accept_verified(m) {
                        tracing::debug!(
                            reason = e.reason(),
                            "broadcast not accepted by the chat store"
                        );
                    }
                }
            }
        }
    }

    /// Whether messages from the ring go to the store's own thread (`pipeline.rs`).
    pub fn pipelined(&self) -> bool {
        self.inner.pipeline.get().is_some()
    }

    /// Verifies, dedupes, stores and publishes an envelope from the ring. `Ok` means the
    /// message is new here (forward it); [`AcceptError::Duplicate`] means it was seen before.
    pub fn accept_remote(&self, wire: &[u8]) -> Result<Arc<Stored>, AcceptError> {
        let message = envelope::open(wire).map_err(|e| match e {
            EnvelopeError::Oversized(n) => AcceptError::Oversized(n),
            EnvelopeError::Malformed(why) => AcceptError::Malformed(why),
            EnvelopeError::BadSignature => AcceptError::BadSignature,
        });
        self.inner
            .count(message.and_then(|m| self.inner.accept_message(m)))
    }

    /// [`Chat::accept_remote`] for a message already verified in this process (by the ring's
    /// validator, [`RingInbox`]).
    pub fn accept_verified(&self, message: ChatMessage) -> Result<Arc<Stored>, AcceptError> {
        self.inner.count(self.inner.accept_message(message))
    }

    /// Deletes the messages older than `max_age` (`chat.retention_days`), in chunks so that
    /// the writer is never held for long; returns how many went.
    pub fn prune_expired(&self, max_age: std::time::Duration) -> Result<usize, ChatError> {
        /// Messages deleted per hold of the writer.
        const CHUNK: usize = 5000;
        let now = hlc::wall_millis();
        let cut = now.saturating_sub(u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX));
        let mut total = 0;
        loop {
            let n = self.state().store.prune_older(cut, CHUNK)?;
            total += n;
            if n < CHUNK {
                return Ok(total);
            }
        }
    }

    /// Whether messages from the ring have waited the commit delay at `now`.
    pub fn commit_due(&self, now: Instant) -> bool {
        !self.pipelined() && self.state().store.commit_due(now)
    }

    /// When messages from the ring waiting uncommitted must be committed at the latest.
    pub fn commit_deadline(&self) -> Option<Instant> {
        if self.pipelined() {
            return None;
        }
        self.state().store.commit_deadline()
    }

    /// Takes the `(origin, seq)` of the messages from the ring that a failed write lost (disk
    /// full, I/O error) since the last call: the ring's driver makes the overlay forget it saw
    /// them, so that anti-entropy brings them back (`docs/protocol.md`, "Anti-entropy").
    pub fn take_dropped(&self) -> Vec<([u8; 32], u64)> {
        let mut d = self.inner.dropped.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *d)
    }

    /// Commits messages from the ring that wait uncommitted (a failure is logged by the store
    /// and rolls them back).
    /// With the store's own thread: waits until it has stored and committed everything
    /// handed over before (shutdown, tests).
    pub fn commit(&self) -> Result<(), ChatError> {
        if let Some(p) = self.inner.pipeline.get() {
            p.settle();
        }
        self.inner.commit_writer()
    }
}
