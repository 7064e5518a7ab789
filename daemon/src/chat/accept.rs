//! The chat core's own side of accepting a message: the writer's lock, the counters, the
//! group commit, and the dedupe-store-publish of a verified message from the ring — called on
//! the overlay driver (`CHAT_STORE=driver`, in-memory histories) or on the store's own thread
//! (`pipeline.rs`).

use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};
use std::time::Instant;

use super::envelope::{ChatMessage, Kind};
use super::store::{Insert, Stored};
use super::{AcceptError, ChatError, Inner, State, hlc};

impl Inner {
    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn count(
        &self,
        result: Result<Arc<Stored>, AcceptError>,
    ) -> Result<Arc<Stored>, AcceptError> {
        match &result {
            Ok(_) => self.counters.received.fetch_add(1, Ordering::Relaxed),
            Err(AcceptError::Duplicate) => 0,
            Err(_) => self.counters.refused.fetch_add(1, Ordering::Relaxed),
        };
        result
    }

    /// Notes how late a text message from the ring is shown here.
    pub(super) fn observe_latency(&self, stored: &Stored) {
        if stored.message.kind == Kind::Text {
            let late_ms = hlc::wall_millis().saturating_sub(stored.message.hlc.millis());
            self.metrics
                .delivery_latency
                .observe(late_ms as f64 / 1000.0);
        }
    }

    /// Commits what waits uncommitted in the writer's transaction.
    pub(super) fn commit_writer(&self) -> Result<(), ChatError> {
        let mut state = self.state();
        let pending = state.store.commit_deadline().is_some();
        let started = Instant::now();
        state.store.commit()?;
        if pending {
            let took = started.elapsed().as_secs_f64();
            self.metrics.commit_seconds.observe(took);
        }
        Ok(())
    }

    /// Dedupes, stores and publishes a verified message from the ring.
    pub(super) fn accept_message(
        &self,
        mut message: ChatMessage,
    ) -> Result<Arc<Stored>, AcceptError> {
        let mut state = self.state();
        // The store recognises duplicates itself (in the insert's transaction).
        self.clock.observe(message.hlc)?;
        if message.kind == Kind::People {
            if state
                .store
                .position(&message.id)
                .map_err(ChatError::from)?
                .is_some()
            {
                return Err(AcceptError::Duplicate);
            }
            message.text = match self.people.get() {
                Some(p) => p.apply(&message),
                None => String::new(),
            };
        }
        // Published under the positions' lock, in position order (`pipeline.rs`).
        let mut positions = self.pipeline.get().map(|p| p.shown());
        let at = positions.as_mut().map(|s| s.reserve());
        let (pos, shown) = match state
            .store
            .insert_at(&message, at)
            .map_err(ChatError::from)?
        {
            Insert::New(pos) => (pos, true),
            Insert::Amended(pos) => {
                // Edits came first: show the message as they left it.
                if let Some(now) = state.store.get(pos).map_err(ChatError::from)? {
                    message = now.message;
                }
                (pos, true)
            }
            Insert::Redacted(pos) | Insert::Held(pos) | Insert::Superseded(pos) => (pos, false),
            Insert::Duplicate | Insert::Deleted => return Err(AcceptError::Duplicate),
            Insert::SeqReused => {
                return Err(AcceptError::Replay("sequence number already used"));
            }
            Insert::Stale => return Err(AcceptError::Replay("older than the kept history")),
            Insert::Forbidden => return Err(AcceptError::NotAuthor),
        };
        let stored = Arc::new(Stored { pos, message });
        if !shown {
            return Ok(stored);
        }
        self.observe_latency(&stored);
        if stored.message.kind != Kind::People || !stored.message.text.is_empty() {
            self.hub.publish(stored.clone());
            if let Some(positions) = positions.as_mut() {
                positions.shown(stored.clone());
            }
        }
        Ok(stored)
    }
}
