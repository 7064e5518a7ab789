//! What goes into a [`Node`](super::Node) and what comes out.

use super::bcast::BroadcastError;
use crate::broadcast::{Envelope, MsgId};
use crate::id::NodeId;
use crate::time::Time;
use crate::wire::{Message, Peer};

/// An event the driver feeds to the node.
#[derive(Clone, Debug)]
pub enum Input {
    /// Found a new ring with this node as its only member.
    Create,
    /// Join the ring through any of these members (tried in turn, retried with backoff).
    Join { via: Vec<Peer> },
    /// A message arrived from `from` (the driver has authenticated `from.id`).
    Message { from: Peer, msg: Message },
    /// A timer the node armed has expired.
    Timer(Timer),
    /// The driver could not reach this peer (connection refused, reset or timed out).
    Unreachable(NodeId),
    /// The application asks for the successor of `key`; answered by [`Event::LookupDone`].
    Lookup { key: NodeId, token: u64 },
    /// Leave the ring gracefully.
    Leave,
    /// Broadcast `payload` to every ring member as this node's message number `seq` (1, 2, …;
    /// the application numbers its messages and signs the number with the payload).
    /// Refusals come back as [`Event::BroadcastRefused`].
    Broadcast { seq: u64, payload: Vec<u8> },
}

/// Timers are data: the node arms them through [`Output::SetTimer`] and the driver hands them
/// back through [`Input::Timer`] when they expire. Timers are never cancelled: a timer that is
/// no longer wanted is ignored when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// Periodic stabilize.
    Stabilize,
    /// Periodic fix-fingers.
    FixFingers,
    /// Periodic check-predecessor.
    CheckPredecessor,
    /// Periodic probe of lost peers (partition merge).
    Probe,
    /// Retry a failed join.
    JoinRetry,
    /// Deadline of the request with this id.
    Rpc(u64),
    /// Deadline of the lookup with this id.
    Lookup(u64),
    /// Deadline of the ack of broadcast hop `id`.
    BcastAck(u64),
    /// Deadline of the completion of broadcast hop `id`.
    BcastDone(u64),
    /// Held answers to parents (batch number) must leave.
    BcastReplies(u64),
    /// Periodic anti-entropy with a ring neighbour.
    AntiEntropy,
}

/// An action for the driver.
#[derive(Clone, Debug)]
pub enum Output {
    /// Send `msg` to `to`.
    Send { to: Peer, msg: Message },
    /// Hand `timer` back at `at`.
    SetTimer { at: Time, timer: Timer },
    /// Something the application may want to know.
    Event(Event),
}

/// Notifications for the application.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The node is a ring member (founded a ring, or joined with a full successor list).
    Joined,
    /// A join attempt failed; another follows at `retry_at`.
    JoinFailed { retry_at: Time },
    /// An application lookup finished.
    LookupDone {
        token: u64,
        result: Result<Peer, LookupError>,
        hops: u32,
    },
    /// The first successor changed.
    SuccessorChanged(Option<Peer>),
    /// The predecessor changed.
    PredecessorChanged(Option<Peer>),
    /// A peer stopped answering and is routed around.
    PeerSuspected(NodeId),
    /// The node left the ring; the driver may close everything.
    Left,
    /// A broadcast arrived for the first time (validated, stored): hand it to the
    /// application. `depth` is its distance from the origin in the tree (`None`: it came
    /// through anti-entropy).
    Deliver {
        id: MsgId,
        env: Envelope,
        depth: Option<u8>,
    },
    /// A broadcast this node originated has been covered by the whole tree.
    BroadcastDone(MsgId),
    /// A broadcast was refused.
    BroadcastRefused { seq: u64, error: BroadcastError },
}

/// Why a lookup failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// This node is not a ring member.
    #[error("this node is not a ring member")]
    NotMember,
    /// Too many lookups in flight.
    #[error("too many lookups in flight")]
    Busy,
    /// Every candidate on the way failed.
    #[error("no live route towards the key")]
    NoRoute,
    /// The lookup took longer than its deadline or hop bound.
    #[error("lookup timed out")]
    Timeout,
}
