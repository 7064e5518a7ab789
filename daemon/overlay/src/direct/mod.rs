//! Direct delivery: one bounded, opaque body sent to the node with a given [`NodeId`] and
//! acknowledged by that node (`docs/protocol.md`, "Direct delivery").
//!
//! A sub-protocol of the overlay ([`Direct`], `node.rs`) and the transport of private
//! messages: the layer above encrypts end to end, so a body is ciphertext here and is never
//! logged (the `Debug` forms below show its length only). The sender finds the target through
//! a lookup of its id (or a small cache of recent answers), checks that the lookup ended at
//! exactly that id (else [`DirectError::NotInRing`]) and asks it through the ring's RPC engine
//! (`wire.rs`), which resends and times out. The target checks the size and a per-origin rate,
//! raises [`DirectEvent::Received`] and acknowledges — unless the application asked it to
//! refuse bodies for a while ([`DirectInput::Refuse`]: it cannot store them), when it answers
//! a refusal and delivers nothing. Delivery is at most once per request
//! (resends of one request are recognised); the end-to-end acknowledgement of the layer above
//! closes the remaining gaps.

mod node;
mod service;
#[cfg(test)]
mod tests;
pub mod wire;

pub use node::Direct;

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::id::NodeId;
use crate::wire::Peer;

/// Largest body of one direct message.
pub const MAX_BODY: usize = 8 * 1024;
/// Longest refusal text kept from a target.
pub const MAX_REASON: usize = 200;

/// Direct delivery's tunables (defaults in `docs/protocol.md`, "Direct delivery").
#[derive(Clone, Debug)]
pub struct DirectConfig {
    /// Sends in flight at once on this node; beyond this a send fails with
    /// [`DirectError::Busy`].
    pub max_outstanding: usize,
    /// Targets whose address is remembered (id → peer) to skip the lookup.
    pub cache_entries: usize,
    /// How long a remembered address is used.
    pub cache_ttl: Duration,
    /// Bodies accepted per second from one origin node.
    pub rate_per_sec: u32,
    /// Burst of bodies accepted from one origin node.
    pub rate_burst: u32,
    /// Origins whose rate is tracked (the least recently heard is forgotten).
    pub max_origins: usize,
    /// How long a delivered request is remembered, so that a resend of it is acknowledged
    /// without a second delivery.
    pub dedup_window: Duration,
    /// Delivered requests remembered at most.
    pub dedup_entries: usize,
}

impl Default for DirectConfig {
    fn default() -> Self {
        DirectConfig {
            max_outstanding: 1024,
            cache_entries: 256,
            cache_ttl: Duration::from_secs(60),
            rate_per_sec: 50,
            rate_burst: 100,
            max_origins: 4096,
            dedup_window: Duration::from_secs(30),
            dedup_entries: 4096,
        }
    }
}

/// What the application asks of direct delivery.
#[derive(Clone, PartialEq, Eq)]
pub enum DirectInput {
    /// Deliver `body` (at most [`MAX_BODY`] bytes) to the node `to`; answered by
    /// [`DirectEvent::Done`] with `token`.
    Send {
        token: u64,
        to: NodeId,
        body: Vec<u8>,
    },
    /// Refuse bodies for this node for `duration` (the application cannot take them now: its
    /// store cannot write): each is answered [`DirectError::Refused`] with `reason` (at most
    /// [`MAX_REASON`] bytes) instead of being delivered, so the sender keeps it and uses
    /// another way (the mailbox). A later `Refuse` replaces the period.
    Refuse { duration: Duration, reason: String },
    /// Accept bodies again (ends a [`DirectInput::Refuse`] early).
    Accept,
}

impl fmt::Debug for DirectInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DirectInput::Send { token, to, body } => f
                .debug_struct("Send")
                .field("token", token)
                .field("to", &to.short())
                .field("body_len", &body.len())
                .finish(),
            DirectInput::Refuse { duration, reason } => f
                .debug_struct("Refuse")
                .field("duration", duration)
                .field("reason", reason)
                .finish(),
            DirectInput::Accept => f.write_str("Accept"),
        }
    }
}

/// What direct delivery tells the application.
#[derive(Clone, PartialEq, Eq)]
pub enum DirectEvent {
    /// A send finished: `Ok` once the target acknowledged the body.
    Done {
        token: u64,
        result: Result<(), DirectError>,
    },
    /// A body for this node arrived from `from` (the driver authenticated `from.id`).
    Received { from: Peer, body: Vec<u8> },
}

impl fmt::Debug for DirectEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DirectEvent::Done { token, result } => f
                .debug_struct("Done")
                .field("token", token)
                .field("result", result)
                .finish(),
            DirectEvent::Received { from, body } => f
                .debug_struct("Received")
                .field("from", &from.id.short())
                .field("body_len", &body.len())
                .finish(),
        }
    }
}

/// Why a send failed: shown to the sender's user, so each says what happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum DirectError {
    /// The lookup of the target's id ended at another node: no member has that id.
    #[error("no ring member has that node id")]
    NotInRing,
    /// The target (or a route to it) did not answer after the RPC engine's retries.
    #[error("the target node did not answer")]
    Unreachable,
    /// The target refused: this node sends it more than its rate allows.
    #[error("the target is receiving too much from this node; retry in {retry_after_ms} ms")]
    RateLimited { retry_after_ms: u64 },
    /// The body is over the bound.
    #[error("the body is over its bound of {max} bytes")]
    TooLarge { max: usize },
    /// Too many sends are in flight on this node.
    #[error("too many direct sends in flight")]
    Busy,
    /// This node is not a ring member (yet).
    #[error("this node is not a ring member")]
    NotMember,
    /// The target refused for another reason (its words, at most [`MAX_REASON`] bytes).
    #[error("the target refused: {0}")]
    Refused(String),
}

/// Direct delivery's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirectStats {
    /// Sends of this node's clients acknowledged by their target.
    pub sent_ok: u64,
    /// Sends of this node's clients that failed or were refused.
    pub failed: u64,
    /// Bodies delivered to this node (from others or itself).
    pub received: u64,
    /// Resends of a request already delivered here (acknowledged, not delivered again).
    pub duplicates: u64,
    /// Refused here: the origin was over its rate.
    pub refused_rate: u64,
    /// Refused here: the body was over [`MAX_BODY`].
    pub refused_size: u64,
    /// Refused here: the application asked for it ([`DirectInput::Refuse`]).
    pub refused_app: u64,
}
