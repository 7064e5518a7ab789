//! Broadcast along the finger table (El-Ansary et al., IPTPS 2003): the message types' payload
//! ([`Envelope`]), the tunables, and the bounded per-message and per-origin state.
//!
//! A sub-protocol of the overlay ([`Broadcast`], `tree.rs`): it routes over the ring's tables,
//! which it reads through [`crate::protocol::Ctx`]: the origin splits the ring into arcs, one per distinct finger; every receiver
//! splits its arc the same way, so a stable ring delivers each message to every node exactly once
//! with N−1 transmissions. Per-hop acks, completion acks, re-routing around dead children and
//! anti-entropy between ring neighbours make it lossless under crashes, loss and partitions
//! (`docs/protocol.md`, "Broadcast").

mod entropy;
pub mod memory;
mod numbering;
#[cfg(test)]
mod numbering_tests;
mod replies;
mod service;
#[cfg(test)]
mod tests;
pub mod trace;
mod tree;
pub mod wire;

pub use numbering::MAX_ASKED;
pub use tree::Broadcast;

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::id::NodeId;

/// Largest application payload of a broadcast.
pub const MAX_PAYLOAD: usize = 16 * 1024;

/// Longest path a broadcast may take (a sanity bound; a correct tree is ⌈log2 N⌉ deep).
pub const MAX_DEPTH: u8 = 64;

/// How long the daemon lets a node that has just joined learn its own numbering from its
/// neighbours ([`BroadcastConfig::numbering_wait`]).
pub const NUMBERING_WAIT: Duration = Duration::from_secs(3);

/// Longest anti-entropy digest (origins per message).
pub const MAX_DIGEST: usize = 128;

/// Why the node refused to broadcast.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BroadcastError {
    /// This node is not a ring member.
    #[error("this node is not a ring member")]
    NotMember,
    /// The payload is over the bound.
    #[error("payload over {MAX_PAYLOAD} bytes")]
    TooLarge,
    /// This sequence number was used before.
    #[error("sequence number already used")]
    SeqUsed,
    /// This node's own rate limit is exhausted; a token comes after `retry_after`.
    #[error("this node is over its broadcast rate; retry in {} ms", retry_after.as_millis().max(1))]
    RateLimited { retry_after: std::time::Duration },
    /// Too many broadcasts are in flight.
    #[error("too many broadcasts in flight")]
    Busy,
    /// This node has just joined and is still learning from its neighbours the highest
    /// sequence number of its own the ring holds (at most `numbering_wait`).
    #[error("this node is still learning its message numbering from the ring; retry shortly")]
    Numbering,
}

/// Broadcast's timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BroadcastTimer {
    /// Deadline of the ack of hop `id`.
    Ack(u64),
    /// Deadline of the completion of hop `id`.
    Done(u64),
    /// Held answers to parents (batch number) must leave.
    Replies(u64),
    /// Periodic anti-entropy with a ring neighbour.
    AntiEntropy,
    /// The deadline for learning this node's own numbering (`numbering.rs`).
    Numbering,
}

impl From<BroadcastTimer> for crate::overlay::Timer {
    fn from(t: BroadcastTimer) -> Self {
        crate::overlay::Timer::Broadcast(t)
    }
}

/// What broadcast tells the application.
#[derive(Clone, Debug, PartialEq)]
pub enum BroadcastEvent {
    /// A broadcast arrived for the first time (validated, stored): hand it to the
    /// application. `depth` is its distance from the origin in the tree (`None`: it came
    /// through anti-entropy).
    Deliver {
        id: MsgId,
        env: Envelope,
        depth: Option<u8>,
    },
    /// A broadcast this node originated has been covered by the whole tree.
    Done(MsgId),
    /// A broadcast was refused (raised in the outputs of the input that asked for it).
    Refused { seq: u64, error: BroadcastError },
    /// The walk of [`crate::Input::Trace`] with this `token` ended: every node it asked and
    /// what each said, or why it could not start.
    Traced {
        token: u64,
        result: Result<trace::TraceResult, BroadcastError>,
    },
}

/// A message's identity: blake3 of its envelope.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MsgId(pub [u8; 32]);

impl fmt::Debug for MsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MsgId({})", hex::encode(&self.0[..4]))
    }
}

/// What is broadcast: an opaque payload from `origin`, numbered per origin from 1.
///
/// The overlay cannot check who wrote the payload; the application installs a validator
/// ([`Validator`]) that checks the payload's signature against `origin` and `seq` before the
/// message is stored, delivered or forwarded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The node that broadcast the message.
    pub origin: NodeId,
    /// The origin's sequence number (1, 2, …).
    pub seq: u64,
    /// The application's bytes (at most [`MAX_PAYLOAD`]).
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

impl Envelope {
    /// blake3 over a domain tag, the origin, the sequence number and the payload.
    pub fn id(&self) -> MsgId {
        let mut h = blake3::Hasher::new();
        h.update(b"chatd/bcast/v1");
        h.update(&self.origin.0);
        h.update(&self.seq.to_be_bytes());
        h.update(&self.payload);
        MsgId(*h.finalize().as_bytes())
    }
}

/// The application's check of an envelope (signature, origin key): `true` to accept.
pub type Validator = Box<dyn Fn(&Envelope) -> bool + Send + Sync>;

/// What a child reports when its parent asks about a message it acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HopState {
    /// Never heard of it (it restarted): send it again.
    Unknown,
    /// Still waiting for its own children.
    Working,
    /// Its whole arc is done.
    Done,
}

/// Broadcast tunables.
#[derive(Clone, Debug)]
pub struct BroadcastConfig {
    /// Wait for a child's ack before resending.
    pub ack_timeout: Duration,
    /// How long a node may hold its answers (`Ack`, `Done`) to a parent so that several leave
    /// together (`broadcast/replies.rs`); zero sends each at once. Keep it well under
    /// `ack_timeout`.
    pub reply_delay: Duration,
    /// Resends to the same child before it counts as failed and its arc is re-routed.
    pub ack_retries: u8,
    /// Wait for a child's completion before asking it how far it is.
    pub done_timeout: Duration,
    /// Times a working child is waited for again before its arc is left to anti-entropy.
    pub max_done_waits: u32,
    /// Re-routes of one arc before it is left to anti-entropy.
    pub max_reroutes: u8,
    /// Messages being forwarded at once; beyond this a message is stored and acked but its arc
    /// is left to anti-entropy.
    pub max_tasks: usize,
    /// Messages kept for anti-entropy (oldest evicted first).
    pub max_stored: usize,
    /// Origins whose sequence numbers are remembered (least recently active evicted).
    pub max_origins: usize,
    /// Out-of-order sequence numbers remembered per origin; past this the gap is given up.
    pub max_out_of_order: usize,
    /// Period of the anti-entropy exchange with a ring neighbour.
    pub ae_interval: Duration,
    /// A message is offered by anti-entropy only once it is this old (the tree has had its
    /// chance), so a healthy broadcast never pays for repairs.
    pub ae_grace: Duration,
    /// Messages pushed to one neighbour per anti-entropy exchange.
    pub ae_max_repairs: usize,
    /// Messages whose path this node remembers for traces (`broadcast/trace.rs`; oldest
    /// forgotten first; 0 keeps none).
    pub trace_keep: usize,
    /// Sustained messages per second accepted from one origin, at every hop.
    pub rate_per_sec: u32,
    /// Burst accepted from one origin.
    pub rate_burst: u32,
    /// How long a node that has just joined waits for its neighbours to tell it the highest
    /// number of its own they hold before it broadcasts (`numbering.rs`); zero (the default,
    /// which the simulator's scenarios keep) numbers at once without asking. The daemon waits
    /// [`NUMBERING_WAIT`].
    pub numbering_wait: Duration,
}

impl Default for BroadcastConfig {
    fn default() -> Self {
        BroadcastConfig {
            ack_timeout: Duration::from_millis(500),
            reply_delay: Duration::from_millis(20),
            ack_retries: 1,
            done_timeout: Duration::from_secs(3),
            max_done_waits: 20,
            max_reroutes: 8,
            max_tasks: 4096,
            max_stored: 4096,
            max_origins: 65_536,
            max_out_of_order: 1024,
            ae_interval: Duration::from_secs(2),
            ae_grace: Duration::from_secs(5),
            ae_max_repairs: 32,
            trace_keep: 4096,
            rate_per_sec: 20,
            rate_burst: 200,
            numbering_wait: Duration::ZERO,
        }
    }
}

/// Broadcast counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BroadcastStats {
    /// Messages this node broadcast.
    pub originated: u64,
    /// Messages delivered to the application (from the tree or from anti-entropy).
    pub delivered: u64,
    /// Payload transmissions: tree sends, resends and re-routes.
    pub payload_sends: u64,
    /// Of those, resends to the same child.
    pub resends: u64,
    /// Arcs handed to another node after a child failed.
    pub reroutes: u64,
    /// Arcs left to anti-entropy after every attempt failed.
    pub abandoned: u64,
    /// Messages pushed to a neighbour by anti-entropy.
    pub repairs_sent: u64,
    /// Messages received from anti-entropy that were new.
    pub repairs_received: u64,
    /// Copies of messages already seen (not delivered again).
    pub duplicates: u64,
    /// Dropped: the id does not match the envelope.
    pub dropped_bad_id: u64,
    /// Dropped: the validator refused the envelope (bad signature, unknown origin).
    pub dropped_invalid: u64,
    /// Dropped: the limit lies outside the arc the receiver can be given.
    pub dropped_out_of_range: u64,
    /// Dropped: payload over [`MAX_PAYLOAD`] or path over [`MAX_DEPTH`].
    pub dropped_oversized: u64,
    /// Dropped: the origin is over its rate.
    pub dropped_rate: u64,
    /// Forwarding skipped because too many messages were in flight.
    pub dropped_busy: u64,
    /// Answers (`Ack`, `Done`) sent to parents.
    pub replies: u64,
    /// Groups those answers left in: one per parent per flush (each usually one datagram).
    pub reply_batches: u64,
}
