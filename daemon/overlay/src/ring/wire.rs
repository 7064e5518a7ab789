//! The ring core's messages (service [`crate::wire::RING`]): liveness, state exchange for
//! stabilize and fix-fingers, iterative lookup steps, notify and goodbye.
//!
//! Compatible changes (a new optional field with `#[serde(default)]`, a new message type that
//! old nodes may ignore) keep [`VERSION`]; see `docs/protocol.md`, "Evolving the wire".

use serde::{Deserialize, Serialize};

use crate::id::NodeId;
use crate::wire::{InvalidMessage, MAX_PEER_LIST, Peer, check_ring_order};

/// Wire version of the ring service.
pub const VERSION: u16 = 1;

/// Most peers a state answer's `sample` may name.
pub const MAX_SAMPLE: usize = 16;

fn is_zero(n: &u8) -> bool {
    *n == 0
}

/// Requests of the ring core.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RingRequest {
    /// Are you alive?
    Ping,
    /// Your predecessor and successor list (and fingers, when asked; and a random sample of
    /// up to `sample` of the members you know: a field added compatibly after 0.1.0, which older
    /// nodes ignore, and which is left out of the encoding when 0).
    GetState {
        fingers: bool,
        #[serde(default, skip_serializing_if = "is_zero")]
        sample: u8,
    },
    /// One step of an iterative lookup for the successor of `key`.
    FindSuccessor { key: NodeId },
}

/// Responses of the ring core.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RingResponse {
    /// Answer to `Ping`.
    Pong,
    /// Answer to `GetState`.
    State {
        pred: Option<Peer>,
        succs: Vec<Peer>,
        fingers: Vec<Peer>,
        /// A random sample of members the responder knows (issue 37), when asked; at most
        /// [`MAX_SAMPLE`]. Receivers keep them as merge candidates only: see `ring/sample.rs`.
        /// Added compatibly in 0.2: older nodes ignore it, and it is left out when empty.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        sample: Vec<Peer>,
    },
    /// The key's successor is `succs[0]`; the rest follow it on the ring (fallbacks).
    Found { succs: Vec<Peer> },
    /// Nodes closer to the key than the responder, best first.
    Closer { peers: Vec<Peer> },
    /// The request could not be served.
    Error(ErrorCode),
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The responder is not (yet, or any more) a ring member.
    NotMember,
    /// The responder knows no node closer to the key.
    NoRoute,
    /// The responder is overloaded.
    Busy,
}

/// Notices of the ring core.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RingNotice {
    /// "I think I am your predecessor" (Chord's notify; a proposal only).
    Notify,
    /// The sender leaves the ring; here are its neighbours so the hole closes at once.
    Leaving {
        pred: Option<Peer>,
        succs: Vec<Peer>,
    },
}

impl RingResponse {
    /// Checks bounds and positions that need no context: list lengths, ring order of successor
    /// lists, and that the sender does not name itself as a neighbour. Checks that need the
    /// request (does a routing answer approach the key?) are done where the answer is matched.
    pub fn validate(&self, sender: &NodeId) -> Result<(), InvalidMessage> {
        match self {
            RingResponse::State {
                pred,
                succs,
                fingers,
                sample,
            } => {
                if pred.is_some_and(|p| p.id == *sender) {
                    return Err(InvalidMessage::SelfReference);
                }
                if sample.len() > MAX_SAMPLE {
                    return Err(InvalidMessage::ListTooLong(sample.len()));
                }
                check_ring_order(sender, succs)?;
                check_ring_order(sender, fingers)
            }
            RingResponse::Found { succs } => {
                if succs.is_empty() {
                    return Err(InvalidMessage::OutOfRange);
                }
                // The responder may name itself as the successor (first entry only).
                let rest = if succs[0].id == *sender {
                    &succs[1..]
                } else {
                    &succs[..]
                };
                check_ring_order(sender, rest)
            }
            RingResponse::Closer { peers } => {
                if peers.len() > MAX_PEER_LIST {
                    return Err(InvalidMessage::ListTooLong(peers.len()));
                }
                if peers.iter().any(|p| p.id == *sender) {
                    return Err(InvalidMessage::SelfReference);
                }
                Ok(())
            }
            RingResponse::Pong | RingResponse::Error(_) => Ok(()),
        }
    }
}

impl RingNotice {
    /// Checks the goodbye's lists like a state answer's.
    pub fn validate(&self, sender: &NodeId) -> Result<(), InvalidMessage> {
        match self {
            RingNotice::Notify => Ok(()),
            RingNotice::Leaving { pred, succs } => {
                if pred.is_some_and(|p| p.id == *sender) {
                    return Err(InvalidMessage::SelfReference);
                }
                check_ring_order(sender, succs)
            }
        }
    }
}
