//! Messages between overlay nodes: serde types, versioned, each with a size bound.
//!
//! The daemon encodes a [`Message`] as CBOR inside a length-prefixed frame; the simulator passes
//! the values directly. Every list has a length bound, and [`Message::validate`] checks the bounds
//! and the ring positions a message claims before the state machine looks at it.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::broadcast::{Envelope, HopState, MAX_DEPTH, MAX_DIGEST, MAX_PAYLOAD, MsgId};
use crate::id::NodeId;

/// Version of the overlay wire format; a peer speaking another version is refused.
pub const WIRE_VERSION: u16 = 1;

/// Longest list of peers in any message.
pub const MAX_PEER_LIST: usize = 64;

/// Upper bound of an encoded message (CBOR), checked by tests against the largest message.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;

/// A node as others reach it: its identifier and its overlay address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Peer {
    /// The node's identifier (hash of its public key).
    pub id: NodeId,
    /// Where the node listens.
    pub addr: SocketAddr,
}

/// One overlay message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Message {
    /// A request; the answer carries the same `id`.
    Request { id: u64, body: Request },
    /// The answer to request `id`.
    Response { id: u64, body: Response },
    /// A message that expects no answer.
    Notice(Notice),
    /// Broadcast traffic.
    Bcast(Bcast),
}

/// Broadcast messages (see `docs/protocol.md`, "Broadcast").
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

/// Requests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// Are you alive?
    Ping,
    /// Your predecessor and successor list (and fingers, when asked).
    GetState { fingers: bool },
    /// One step of an iterative lookup for the successor of `key`.
    FindSuccessor { key: NodeId },
    /// How far is your part of broadcast `id` (`origin`, `seq`)?
    BcastStatus { id: MsgId, origin: NodeId, seq: u64 },
}

/// Responses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Response {
    /// Answer to `Ping`.
    Pong,
    /// Answer to `GetState`.
    State {
        pred: Option<Peer>,
        succs: Vec<Peer>,
        fingers: Vec<Peer>,
    },
    /// The key's successor is `succs[0]`; the rest follow it on the ring (fallbacks).
    Found { succs: Vec<Peer> },
    /// Nodes closer to the key than the responder, best first.
    Closer { peers: Vec<Peer> },
    /// Answer to `BcastStatus`.
    BcastStatus(HopState),
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

/// Messages without an answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Notice {
    /// "I think I am your predecessor" (Chord's notify; a proposal only).
    Notify,
    /// The sender leaves the ring; here are its neighbours so the hole closes at once.
    Leaving {
        pred: Option<Peer>,
        succs: Vec<Peer>,
    },
}

/// Why a message was rejected before reaching the state machine.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidMessage {
    /// A peer list is longer than [`MAX_PEER_LIST`].
    #[error("peer list of {0} entries exceeds the bound")]
    ListTooLong(usize),
    /// A list is not strictly clockwise from the sender, or repeats an entry.
    #[error("peer list is not in ring order from the sender")]
    NotInRingOrder,
    /// A message names the sender as its own neighbour.
    #[error("message names the sender as its own neighbour")]
    SelfReference,
    /// A routing answer does not move towards the key.
    #[error("routing answer does not lie between the responder and the key")]
    OutOfRange,
    /// A broadcast's id is not the hash of its envelope.
    #[error("broadcast id does not match its envelope")]
    BadId,
    /// A broadcast payload or path is over its bound.
    #[error("broadcast payload or path over its bound")]
    Oversized,
}

impl Bcast {
    fn validate(&self) -> Result<(), InvalidMessage> {
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

/// Checks that `list` runs strictly clockwise from `origin` without repeats or `origin` itself.
pub fn check_ring_order(origin: &NodeId, list: &[Peer]) -> Result<(), InvalidMessage> {
    if list.len() > MAX_PEER_LIST {
        return Err(InvalidMessage::ListTooLong(list.len()));
    }
    let mut last = NodeId::ZERO;
    for p in list {
        let d = origin.distance_to(&p.id);
        if d == NodeId::ZERO {
            return Err(InvalidMessage::SelfReference);
        }
        if d <= last {
            return Err(InvalidMessage::NotInRingOrder);
        }
        last = d;
    }
    Ok(())
}

impl Message {
    /// Checks bounds and positions that need no context: list lengths, ring order of successor
    /// lists, and that the sender does not name itself as a neighbour. Checks that need the
    /// request (does a routing answer approach the key?) are done where the answer is matched.
    pub fn validate(&self, sender: &NodeId) -> Result<(), InvalidMessage> {
        match self {
            Message::Request { .. } => Ok(()),
            Message::Response { body, .. } => match body {
                Response::State {
                    pred,
                    succs,
                    fingers,
                } => {
                    if pred.is_some_and(|p| p.id == *sender) {
                        return Err(InvalidMessage::SelfReference);
                    }
                    check_ring_order(sender, succs)?;
                    check_ring_order(sender, fingers)
                }
                Response::Found { succs } => {
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
                Response::Closer { peers } => {
                    if peers.len() > MAX_PEER_LIST {
                        return Err(InvalidMessage::ListTooLong(peers.len()));
                    }
                    if peers.iter().any(|p| p.id == *sender) {
                        return Err(InvalidMessage::SelfReference);
                    }
                    Ok(())
                }
                Response::Pong | Response::BcastStatus(_) | Response::Error(_) => Ok(()),
            },
            Message::Notice(Notice::Notify) => Ok(()),
            Message::Notice(Notice::Leaving { pred, succs }) => {
                if pred.is_some_and(|p| p.id == *sender) {
                    return Err(InvalidMessage::SelfReference);
                }
                check_ring_order(sender, succs)
            }
            Message::Bcast(b) => b.validate(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv6Addr, SocketAddr};

    fn peer(i: u8) -> Peer {
        Peer {
            id: NodeId([i; 32]),
            addr: SocketAddr::from((Ipv6Addr::new(0xfd00, 1, 2, 3, 4, 5, 6, u16::from(i)), 65535)),
        }
    }

    fn cbor(m: &Message) -> Vec<u8> {
        let mut buf = Vec::new();
        ciborium::into_writer(m, &mut buf).expect("encodes");
        buf
    }

    #[test]
    fn largest_message_fits_the_bound_and_round_trips() {
        let list: Vec<Peer> = (1..=MAX_PEER_LIST as u8).map(peer).collect();
        let biggest = Message::Response {
            id: u64::MAX,
            body: Response::State {
                pred: Some(peer(0xff)),
                succs: list.clone(),
                fingers: list,
            },
        };
        let bytes = cbor(&biggest);
        assert!(bytes.len() <= MAX_MESSAGE_BYTES, "{} bytes", bytes.len());
        let back: Message = ciborium::from_reader(bytes.as_slice()).expect("decodes");
        assert_eq!(back, biggest);
    }

    #[test]
    fn largest_broadcast_messages_fit_the_bound() {
        let env = Envelope {
            origin: NodeId([0xff; 32]),
            seq: u64::MAX,
            payload: vec![0xff; MAX_PAYLOAD],
        };
        let data = Message::Bcast(Bcast::Data {
            hop: u64::MAX,
            limit: NodeId([0xff; 32]),
            depth: MAX_DEPTH,
            id: env.id(),
            env,
        });
        let digest = Message::Bcast(Bcast::Digest {
            heads: (0..MAX_DIGEST)
                .map(|_| (NodeId([0xff; 32]), u64::MAX))
                .collect(),
            complete: true,
            reply: true,
        });
        for m in [data, digest] {
            let bytes = cbor(&m);
            assert!(bytes.len() <= MAX_MESSAGE_BYTES, "{} bytes", bytes.len());
            let back: Message = ciborium::from_reader(bytes.as_slice()).expect("decodes");
            assert_eq!(back, m);
            assert_eq!(m.validate(&NodeId([1; 32])), Ok(()));
        }
    }

    #[test]
    fn broadcast_validation_rejects_bad_ids_and_sizes() {
        let env = Envelope {
            origin: NodeId([3; 32]),
            seq: 1,
            payload: b"hi".to_vec(),
        };
        let mut wrong = env.id();
        wrong.0[0] ^= 1;
        let bad_id = Message::Bcast(Bcast::Repair { id: wrong, env });
        assert_eq!(
            bad_id.validate(&NodeId([1; 32])),
            Err(InvalidMessage::BadId)
        );
        let big = Envelope {
            origin: NodeId([3; 32]),
            seq: 1,
            payload: vec![0; MAX_PAYLOAD + 1],
        };
        let oversized = Message::Bcast(Bcast::Data {
            hop: 1,
            limit: NodeId([9; 32]),
            depth: 1,
            id: big.id(),
            env: big,
        });
        assert_eq!(
            oversized.validate(&NodeId([1; 32])),
            Err(InvalidMessage::Oversized)
        );
    }

    #[test]
    fn validation_rejects_bad_lists() {
        let sender = NodeId([0; 32]);
        let too_long = Message::Notice(Notice::Leaving {
            pred: None,
            succs: (0..=MAX_PEER_LIST as u8).map(|i| peer(i + 1)).collect(),
        });
        assert!(matches!(
            too_long.validate(&sender),
            Err(InvalidMessage::ListTooLong(_))
        ));
        let backwards = Message::Response {
            id: 1,
            body: Response::State {
                pred: None,
                succs: vec![peer(9), peer(3)],
                fingers: vec![],
            },
        };
        assert_eq!(
            backwards.validate(&sender),
            Err(InvalidMessage::NotInRingOrder)
        );
        let me_as_pred = Message::Notice(Notice::Leaving {
            pred: Some(peer(0)),
            succs: vec![],
        });
        assert_eq!(
            me_as_pred.validate(&sender),
            Err(InvalidMessage::SelfReference)
        );
        let empty_found = Message::Response {
            id: 1,
            body: Response::Found { succs: vec![] },
        };
        assert_eq!(
            empty_found.validate(&sender),
            Err(InvalidMessage::OutOfRange)
        );
        let good = Message::Response {
            id: 1,
            body: Response::State {
                pred: Some(peer(7)),
                succs: vec![peer(3), peer(9)],
                fingers: vec![],
            },
        };
        assert_eq!(good.validate(&sender), Ok(()));
    }

    #[test]
    fn garbage_does_not_decode() {
        for junk in [&[0xffu8, 0x00, 0x13][..], &[], &[0x82, 0x01]] {
            assert!(ciborium::from_reader::<Message, _>(junk).is_err());
        }
    }
}
