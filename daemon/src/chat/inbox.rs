//! The chat core behind the ring ([`crate::ring::Inbox`]).
//!
//! The ring's validator verifies each broadcast's signed envelope — signature, signing key
//! hashing to the broadcast's origin, same sequence number — before the overlay stores or
//! forwards it. The verified message then waits in a small buffer until the overlay delivers
//! it (in the same driver step), and the store takes it without decoding or verifying it
//! again: one ed25519 verification per message per node, with the origin keys of recent
//! messages kept decompressed ([`envelope::OriginKeys`]). A delivery whose message is not in
//! the buffer (not possible with the current overlay) is verified again, never trusted.
//!
//! The store commits messages from the ring in groups; the driver calls [`Inbox::flush`] when
//! a group is due (after its sends have left), so no extra task or wake-up is needed.
//!
//! [`Inbox::flush`]: crate::ring::Inbox::flush

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use chat_overlay::broadcast::Envelope;
use tracing::debug;

use super::envelope::OriginKeys;
use super::{Chat, ChatMessage, envelope};

/// Verified messages waiting for their delivery; older ones (validated but never delivered:
/// duplicates, over-rate origins) are forgotten first.
const VERIFIED_SLOTS: usize = 16;
/// The chat core as the ring's [`crate::ring::Inbox`].
#[derive(Debug)]
pub struct RingInbox {
    chat: Chat,
    verified: Mutex<VecDeque<ChatMessage>>,
    keys: Mutex<OriginKeys>,
}

impl RingInbox {
    /// An inbox that stores into `chat`.
    pub fn new(chat: Chat) -> RingInbox {
        RingInbox {
            chat,
            verified: Mutex::new(VecDeque::with_capacity(VERIFIED_SLOTS)),
            keys: Mutex::default(),
        }
    }

    fn verified(&self) -> MutexGuard<'_, VecDeque<ChatMessage>> {
        self.verified.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The verified message whose wire bytes are `payload`, taken out of the buffer.
    fn take(&self, payload: &[u8]) -> Option<ChatMessage> {
        let mut verified = self.verified();
        let i = verified.iter().rposition(|m| m.wire == payload)?;
        verified.remove(i)
    }
}

impl crate::ring::Inbox for RingInbox {
    fn validate(&self, env: &Envelope) -> bool {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let Ok(message) = envelope::open_with(&env.payload, &mut keys) else {
            return false;
        };
        if message.from_id() != env.origin || message.seq != env.seq {
            return false;
        }
        let mut verified = self.verified();
        if verified.len() >= VERIFIED_SLOTS {
            verified.pop_front();
        }
        verified.push_back(message);
        true
    }

    fn deliver(&self, env: &Envelope) {
        let result = match self.take(&env.payload) {
            Some(message) => self.chat.accept_verified(message),
            None => self.chat.accept_remote(&env.payload),
        };
        if let Err(e) = result {
            debug!(
                reason = e.reason(),
                "broadcast not accepted by the chat store"
            );
        }
    }

    fn flush_due(&self, now: Instant) -> bool {
        self.chat.commit_due(now)
    }

    fn flush_deadline(&self) -> Option<Instant> {
        self.chat.commit_deadline()
    }

    fn flush(&self) {
        // The store logged the failure and rolled the batch back.
        let _ = self.chat.commit();
    }
}
