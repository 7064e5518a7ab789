//! Broadcast's messages (service [`crate::wire::BROADCAST`]): the tree's `Data` with its
//! answers, anti-entropy's digests and repairs, and the status question a parent asks a child
//! that acknowledged but has not finished.

use serde::{Deserialize, Serialize};

use super::trace::TraceReply;
use super::{Envelope, HopState, MAX_DEPTH, MAX_DIGEST, MAX_PAYLOAD, MsgId};
use crate::id::NodeId;
use crate::wire::InvalidMessage;

/// Wire version of the broadcast service.
pub const VERSION: u16 = 1;

/// Broadcast notices (see `docs/protocol.md`, "Broadcast").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Bcast {
    /// Deliver `env` and cover the arc from the receiver up to (not including) `limit`.
    /// `hop` names this transmission for its acks; `depth` counts hops from the origin.
    Data {
        hop: u64,
        limit: NodeId,
        depth: u8,
        id: MsgId,
        env: Envelope,
    },
    /// The receiver of hop `hop` has stored the message.
    Ack { hop: u64 },
    /// The receiver of hop `hop` has covered its whole arc.
    Done { hop: u64 },
    /// Anti-entropy: per origin, the highest sequence number below which the sender has
    /// everything; `complete` says the list names every origin the sender knows; `reply` marks
    /// an answer (which is not answered again).
    Digest {
        heads: Vec<(NodeId, u64)>,
        complete: bool,
        reply: bool,
    },
    /// Anti-entropy: a message the receiver lacks.
    Repair { id: MsgId, env: Envelope },
}

/// Broadcast requests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum BroadcastRequest {
    /// How far is your part of broadcast `id` (`origin`, `seq`)?
    Status { id: MsgId, origin: NodeId, seq: u64 },
    /// How did broadcast (`origin`, `seq`) reach you, and where did you send it on
    /// (`broadcast/trace.rs`)?
    Trace { origin: NodeId, seq: u64 },
    /// What is the highest sequence number of `origin` you have seen (`numbering.rs`: a node
    /// that has just joined asks it about itself)?
    Head { origin: NodeId },
}

/// Broadcast responses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum BroadcastResponse {
    /// Answer to `Status`.
    Status(HopState),
    /// Answer to `Trace`.
    Trace(TraceReply),
    /// Answer to `Head` (0: none seen).
    Head(u64),
}

impl Bcast {
    /// Checks what needs no context: the id matches the envelope, payload and path bounds,
    /// digest length.
    pub fn validate(&self) -> Result<(), InvalidMessage> {
        let check = |id: &MsgId, env: &Envelope| {
            if env.payload.len() > MAX_PAYLOAD {
                return Err(InvalidMessage::Oversized);
            }
            if env.id() != *id {
                return Err(InvalidMessage::BadId);
            }
            Ok(())
        };
        match self {
            Bcast::Data { depth, id, env, .. } => {
                if *depth > MAX_DEPTH {
                    return Err(InvalidMessage::Oversized);
                }
                check(id, env)
            }
            Bcast::Repair { id, env } => check(id, env),
            Bcast::Digest { heads, .. } if heads.len() > MAX_DIGEST => {
                Err(InvalidMessage::ListTooLong(heads.len()))
            }
            Bcast::Digest { .. } | Bcast::Ack { .. } | Bcast::Done { .. } => Ok(()),
        }
    }
}
