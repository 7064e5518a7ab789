//! Numbering this node's own messages: above the highest own number the ring is known to
//! hold ([`super::Chat::number_above`], given by the overlay), and past any own message the
//! store already holds at the next number — one the ring brought back after this node's
//! history was lost — never reusing it and never failing for it (`docs/protocol.md`, "Own
//! sequence numbers").

use ed25519_dalek::VerifyingKey;

use super::envelope::{ChatMessage, TextError};
use super::store::{Insert, StoreError};
use super::{Chat, ChatError, SendError, State};

/// Own numbers skipped at most for one message before it counts as a corrupt store (each
/// skip jumps past the highest own number stored, so one is the most a sane store needs).
const MAX_SKIPS: usize = 4;

impl Chat {
    /// Numbers this node's next message above `floor`: the highest number of its own that
    /// the ring is known to hold ([`chat_overlay::Overlay::own_seq_floor`]). Never lowers the
    /// counter.
    pub fn number_above(&self, floor: u64) {
        let mut state = self.state();
        state.seq = state.seq.max(floor);
    }
}

/// Signs `sign(seq)` with the next own number and stores it at `at` (a reserved position, or
/// the next); `Ok` with its position and the message. A number an own message already holds
/// in the store is skipped: the counter moves past the highest own number stored and the
/// message is signed again.
pub(super) fn insert_own(
    state: &mut State,
    key: &VerifyingKey,
    at: Option<i64>,
    sign: impl Fn(u64) -> Result<ChatMessage, TextError>,
) -> Result<(i64, ChatMessage), SendError> {
    for _ in 0..MAX_SKIPS {
        let seq = state.seq + 1;
        let message = sign(seq)?;
        match state
            .store
            .insert_own_at(&message, at)
            .map_err(ChatError::from)?
        {
            Insert::New(pos) | Insert::Superseded(pos) => {
                state.seq = seq;
                return Ok((pos, message));
            }
            Insert::SeqReused => {
                let (held, _) = state.store.resume_point(key).map_err(ChatError::from)?;
                let past = held.max(seq);
                tracing::warn!(
                    seq,
                    next = past + 1,
                    "an own message already holds this sequence number (was this node's history lost?); numbering past it"
                );
                state.seq = past;
            }
            // Only possible if the database was edited behind our back.
            _ => return Err(corrupt("own message not stored as new")),
        }
    }
    Err(corrupt("own sequence numbers keep colliding"))
}

fn corrupt(why: &'static str) -> SendError {
    SendError::Chat(ChatError::Store(StoreError::Corrupt(why)))
}
