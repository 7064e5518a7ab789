//! The chat core behind the ring ([`crate::overlay::Inbox`]).
//!
//! The ring's validator verifies each broadcast's signed envelope — signature, signing key
//! hashing to the broadcast's origin, same sequence number — before the overlay stores or
//! forwards it. The verified message then waits in a small buffer until the overlay delivers
//! it (in the same driver step), and the store takes it without decoding or verifying it
//! again: one ed25519 verification per message per node, with the origin keys of recent
//! messages kept decompressed ([`envelope::OriginKeys`]). A delivery whose message is not in
//! the buffer (not possible with the current overlay) is verified again, never trusted.
//!
//! When one wake-up of the driver brings several broadcasts, the driver hands their envelopes
//! to [`Inbox::prevalidate`] first: their signatures are checked as one batch
//! ([`super::batch`]; a failed batch falls back to single checks), and each verdict waits in
//! the same buffer, so the overlay's `validate` of each finds it there instead of verifying
//! again. A refused envelope's verdict is kept too, so it is not verified twice; it is never
//! forwarded, stored or shown.
//!
//! [`Inbox::deliver`] only collects the verified message; at the end of the driver's turn, its
//! forwards queued, [`Inbox::end_turn`] hands the turn's messages to the chat core at once
//! ([`Chat::hand_over`]), which shows those that are certainly new to local subscribers and
//! queues all of them for the store's own thread (`pipeline.rs`). With the store on the driver
//! (`CHAT_STORE=driver`, or an in-memory history) they are stored there and then, and the
//! driver calls [`Inbox::flush`] when a group commit is due.
//!
//! [`Inbox::deliver`]: crate::overlay::Inbox::deliver
//! [`Inbox::end_turn`]: crate::overlay::Inbox::end_turn
//! [`Inbox::flush`]: crate::overlay::Inbox::flush
//! [`Inbox::prevalidate`]: crate::overlay::Inbox::prevalidate

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use chat_overlay::broadcast::Envelope;
use tracing::debug;

use super::envelope::OriginKeys;
use super::{Chat, ChatMessage, batch, envelope};

/// Verdicts waiting for their validation or delivery: a whole batch from the driver and a few
/// more; older ones (validated but never delivered: duplicates, over-rate origins) are
/// forgotten first.
const VERIFIED_SLOTS: usize = crate::overlay::MAX_BATCH + 16;

/// A signature check's verdict on one payload.
#[derive(Debug)]
// Almost every verdict is a good one: boxing the message would cost an allocation per message
// to save a few hundred bytes in each of the buffer's slots.
#[allow(clippy::large_enum_variant)]
enum Verdict {
    /// Verified (and its origin and sequence number matched its envelope's).
    Good(ChatMessage),
    /// Refused; the payload, to recognise it.
    Bad(Vec<u8>),
}

impl Verdict {
    fn wire(&self) -> &[u8] {
        match self {
            Verdict::Good(m) => &m.wire,
            Verdict::Bad(w) => w,
        }
    }
}

/// The chat core as the ring's [`crate::overlay::Inbox`].
#[derive(Debug)]
pub struct RingInbox {
    chat: Chat,
    verified: Mutex<VecDeque<Verdict>>,
    keys: Mutex<OriginKeys>,
    /// What this turn of the driver delivered (at most a turn's worth: `crate::overlay::MAX_BATCH`
    /// messages and the few a timer may bring).
    turn: Mutex<Vec<ChatMessage>>,
}

impl RingInbox {
    /// An inbox that stores into `chat`.
    pub fn new(chat: Chat) -> RingInbox {
        RingInbox {
            chat,
            verified: Mutex::new(VecDeque::with_capacity(VERIFIED_SLOTS)),
            keys: Mutex::default(),
            turn: Mutex::default(),
        }
    }

    fn verified(&self) -> MutexGuard<'_, VecDeque<Verdict>> {
        self.verified.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn keys(&self) -> MutexGuard<'_, OriginKeys> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The verified message whose wire bytes are `payload`, taken out of the buffer.
    fn take(&self, payload: &[u8]) -> Option<ChatMessage> {
        let mut verified = self.verified();
        let i = verified
            .iter()
            .rposition(|v| matches!(v, Verdict::Good(m) if m.wire == payload))?;
        match verified.remove(i) {
            Some(Verdict::Good(m)) => Some(m),
            _ => None,
        }
    }

    /// The buffered verdict on `env`, if any: whether it is valid.
    fn judged(&self, env: &Envelope) -> Option<bool> {
        let verified = self.verified();
        Some(
            match verified.iter().rev().find(|v| v.wire() == env.payload)? {
                Verdict::Good(m) => m.from_id() == env.origin && m.seq == env.seq,
                Verdict::Bad(_) => false,
            },
        )
    }

    fn keep(&self, verdict: Verdict) {
        let mut verified = self.verified();
        if verified.len() >= VERIFIED_SLOTS {
            verified.pop_front();
        }
        verified.push_back(verdict);
    }
}

impl crate::overlay::Inbox for RingInbox {
    fn validate(&self, env: &Envelope) -> bool {
        if let Some(valid) = self.judged(env) {
            return valid;
        }
        let mut keys = self.keys();
        let Ok(message) = envelope::open_with(&env.payload, &mut keys) else {
            return false;
        };
        if message.from_id() != env.origin || message.seq != env.seq {
            return false;
        }
        self.keep(Verdict::Good(message));
        true
    }

    fn prevalidate(&self, envs: &[&Envelope]) {
        if envs.len() < batch::BATCH_MIN {
            // Single checks, in `validate`, cost less.
            return;
        }
        let mut keys = self.keys();
        // Envelopes that do not decode, or whose message names another origin or sequence
        // number, are left to `validate`, which refuses them without checking a signature.
        let unchecked: Vec<_> = envs
            .iter()
            .filter_map(|env| {
                envelope::decode_with(&env.payload, &keys)
                    .ok()
                    .map(|u| (env, u))
            })
            .filter(|(env, u)| u.from_id() == env.origin && u.seq() == env.seq)
            .map(|(_, u)| u)
            .collect();
        let results = batch::check(unchecked, &mut keys);
        drop(keys);
        for result in results {
            self.keep(match result {
                Ok(message) => Verdict::Good(message),
                Err(wire) => Verdict::Bad(wire),
            });
        }
    }

    fn deliver(&self, env: &Envelope) {
        let message = match self.take(&env.payload) {
            Some(message) => message,
            None if self.chat.pipelined() => match envelope::open(&env.payload) {
                Ok(message) => message,
                Err(e) => {
                    debug!(error = %e, "broadcast not accepted by the chat store");
                    self.chat.counters().refused.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            },
            None => {
                if let Err(e) = self.chat.accept_remote(&env.payload) {
                    debug!(
                        reason = e.reason(),
                        "broadcast not accepted by the chat store"
                    );
                }
                return;
            }
        };
        if self.chat.pipelined() {
            self.turn
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(message);
        } else if let Err(e) = self.chat.accept_verified(message) {
            debug!(
                reason = e.reason(),
                "broadcast not accepted by the chat store"
            );
        }
    }

    fn end_turn(&self) {
        let turn = std::mem::take(&mut *self.turn.lock().unwrap_or_else(|e| e.into_inner()));
        if !turn.is_empty() {
            self.chat.hand_over(turn);
        }
    }

    fn flush_due(&self, now: Instant) -> bool {
        self.chat.commit_due(now)
    }

    fn flush_deadline(&self) -> Option<Instant> {
        self.chat.commit_deadline()
    }

    fn flush(&self) {
        self.end_turn();
        // The store logged the failure and rolled the batch back (its messages are in
        // `take_dropped`).
        let _ = self.chat.commit();
    }

    fn take_dropped(&self) -> Vec<(chat_overlay::NodeId, u64)> {
        self.chat
            .take_dropped()
            .into_iter()
            .map(|(origin, seq)| (crate::identity::node_id_of_bytes(&origin), seq))
            .collect()
    }
}
