//! One node's presence engine, without I/O: what happens to the people events it publishes
//! and to the presence epochs it holds, and which vanished neighbours it reports offline. The
//! daemon's people service (`daemon/src/people/`) and the simulator's presence scenario
//! (`tests/sim/src/presence_scenario.rs`) drive this same engine; each does the actions in its
//! own way (the daemon through its records layer and the ring, the simulator through the
//! simulated overlay).
//!
//! In: an event to publish ([`Engine::publish`]), the answer to a put
//! ([`Engine::put_done`], [`Engine::put_failed`]), an item of ours seen in a batch
//! ([`Engine::confirm`]), a mailbox item this node now holds ([`Engine::held`]), a new
//! predecessor ([`Engine::predecessor_changed`]) and the clock ([`Engine::tick`], every
//! [`TICK_MS`]). Out: [`Action`]s.
//!
//! - An event is put as a mailbox item under the key of its epoch (`epoch::epoch_of(now)`),
//!   its value the event behind [`ITEM_CONTEXT`] ([`item_value`]); it is *pending* until it
//!   comes back in the epoch's batch. One that did not come back within three epochs (and
//!   the grace) is put again under the epoch of the moment; after [`TRIES`] puts it is
//!   broadcast on its own. So is one whose put failed, or took longer than [`PUT_WAIT_MS`],
//!   and the oldest pending one when more than [`MAX_PENDING`] wait.
//! - The node that holds an epoch first (the epoch's location lies in its arc, by the
//!   predecessor it was last told) broadcasts its items once the epoch is over
//!   ([`epoch::Held`]), in parts of at most [`epoch::BATCH_BYTES`].
//! - A predecessor that vanished without leaving is reported down after
//!   [`crate::down::REPORT_AFTER_MS`] ([`DownWatch`]); the driver reports it only if its
//!   directory still shows the node's users online.

use chat_overlay::records::{Hash, Record};
use chat_overlay::{NodeId, Peer};

use crate::down::DownWatch;
use crate::epoch::{self, EPOCH, GRACE, Held, ITEM_TTL};

/// How often the driver calls [`Engine::tick`] (looks for ended epochs, reports due, events
/// to put again).
pub const TICK_MS: u64 = 250;
/// Events waiting for their batch, at most (past it the oldest is broadcast on its own).
pub const MAX_PENDING: usize = 1024;
/// How long a put may take before the driver answers [`Engine::put_failed`] (the event is
/// then broadcast on its own).
pub const PUT_WAIT_MS: u64 = 800;
/// How long a stopping node waits for its users' offline events to be published before it
/// leaves the ring.
pub const OFFLINE_DEADLINE_MS: u64 = 1_000;
/// Puts of one event before it is broadcast on its own.
pub const TRIES: u32 = 3;
/// What the value of a presence epoch's item starts with, before the people event it
/// carries: the record is signed by the publishing node, and the prefix names the purpose, so
/// a record the node signed for anything else is never taken for one of its people events.
pub const ITEM_CONTEXT: &[u8] = b"chatd/v1/presence-epoch\0";

/// The value of an epoch's item carrying `event`.
pub fn item_value(event: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(ITEM_CONTEXT.len() + event.len());
    v.extend_from_slice(ITEM_CONTEXT);
    v.extend_from_slice(event);
    v
}

/// The event an item's value carries; `None` if the value was not made as an epoch item.
pub fn item_event(value: &[u8]) -> Option<&[u8]> {
    value.strip_prefix(ITEM_CONTEXT)
}

/// How the node sends its events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gather {
    /// Through the presence epochs (the daemon's way).
    Epochs,
    /// Each broadcast on its own (the simulator's `--presence-direct`, for comparison).
    Direct,
}

/// An event on its way, handed back by the driver with the answer to its put.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publication {
    /// The people event.
    pub event: Vec<u8>,
    /// What the driver keeps with it (the daemon: its line, shown when it is confirmed).
    pub note: String,
    /// Puts so far, this one included.
    pub tries: u32,
    /// When it was first published (Unix ms).
    pub born_ms: u64,
}

/// A put to do: a mailbox item under `key`, valued `value`, living `ttl_ms`; answer with
/// [`Engine::put_done`] (and the record's hash) or [`Engine::put_failed`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Put {
    /// The epoch the item is for.
    pub epoch: u64,
    /// The item's key (`epoch::epoch_key(epoch)`).
    pub key: [u8; 32],
    /// The item's value ([`item_value`]).
    pub value: Vec<u8>,
    /// Its lifetime at the holders.
    pub ttl_ms: u64,
    /// What to hand back with the answer.
    pub publication: Publication,
}

/// Why an event is broadcast on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alone {
    /// The engine does not gather ([`Gather::Direct`]).
    Direct,
    /// Its put failed or took too long.
    PutFailed,
    /// More than [`MAX_PENDING`] events waited (it was the oldest).
    Overflow,
    /// It did not come back in a batch after [`TRIES`] puts.
    NeverBatched,
}

/// What the engine asks its driver to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Put an epoch's item.
    Put(Put),
    /// Broadcast one event on its own.
    Broadcast {
        /// The event.
        publication: Publication,
        /// Why it goes alone.
        why: Alone,
    },
    /// Broadcast (part of) an ended epoch's items this node holds first, as one batch event.
    Batch {
        /// The epoch.
        epoch: u64,
        /// Its items (at most [`epoch::BATCH_BYTES`], or one larger item).
        items: Vec<Record>,
    },
    /// Node `0` vanished without leaving and is still outside the ring: report its users
    /// offline if the directory shows any online.
    ReportDown(NodeId),
}

/// An event put and not yet seen in a batch.
#[derive(Clone, Debug)]
struct Pending {
    hash: Hash,
    publication: Publication,
    put_ms: u64,
}

/// One node's presence engine.
#[derive(Debug)]
pub struct Engine {
    me: NodeId,
    gather: Gather,
    down: DownWatch,
    held: Held,
    pending: Vec<Pending>,
}

impl Engine {
    /// The engine of node `me`, before it knows a predecessor.
    pub fn new(me: NodeId, gather: Gather) -> Engine {
        Engine {
            me,
            gather,
            down: DownWatch::new(me),
            held: Held::default(),
            pending: Vec::new(),
        }
    }

    /// Publishes `event` (`note`: what the driver wants back with it) at `now_ms`.
    pub fn publish(&mut self, event: Vec<u8>, note: String, now_ms: u64) -> Action {
        let publication = Publication {
            event,
            note,
            tries: 1,
            born_ms: now_ms,
        };
        match self.gather {
            Gather::Direct => Action::Broadcast {
                publication,
                why: Alone::Direct,
            },
            Gather::Epochs => put(publication, now_ms),
        }
    }

    /// The put of `publication` was stored as the record `hash` (at `now_ms`): it waits for
    /// its batch. Answers the oldest waiting event when too many wait.
    pub fn put_done(
        &mut self,
        publication: Publication,
        hash: Hash,
        now_ms: u64,
    ) -> Option<Action> {
        self.pending.push(Pending {
            hash,
            publication,
            put_ms: now_ms,
        });
        (self.pending.len() > MAX_PENDING).then(|| Action::Broadcast {
            publication: self.pending.remove(0).publication,
            why: Alone::Overflow,
        })
    }

    /// The put of `publication` failed or took too long: it goes on its own.
    pub fn put_failed(&mut self, publication: Publication) -> Action {
        Action::Broadcast {
            publication,
            why: Alone::PutFailed,
        }
    }

    /// An item with hash `hash` came back in a batch: if it is one of ours, it is published
    /// (answered, with its note); it waits no more.
    pub fn confirm(&mut self, hash: &Hash) -> Option<Publication> {
        let i = self.pending.iter().position(|p| &p.hash == hash)?;
        Some(self.pending.swap_remove(i).publication)
    }

    /// This node now holds the mailbox record `r` (an item of a recent epoch is kept for
    /// broadcasting).
    pub fn held(&mut self, r: Record, now_ms: u64) {
        self.held.offer(r, now_ms);
    }

    /// The predecessor is now `new` ([`DownWatch::predecessor_changed`]).
    pub fn predecessor_changed(
        &mut self,
        new: Option<Peer>,
        online_between: impl FnOnce(&NodeId, &NodeId) -> Vec<NodeId>,
        now_ms: u64,
    ) {
        self.down.predecessor_changed(new, online_between, now_ms);
    }

    /// The clock at `now_ms` (every [`TICK_MS`]): the ended epochs this node holds first go
    /// out, vanished predecessors whose wait is over are reported, events that did not come
    /// back in their batch are put again or broadcast alone.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Action> {
        let me = self.me;
        let pred = self.down.predecessor();
        let mut out = Vec::new();
        let due = self.held.due(now_ms, |loc| {
            pred.is_none_or(|p| *loc == me || loc.in_open(&p.id, &me))
        });
        for (e, items) in due {
            for part in epoch::chunks(items) {
                out.push(Action::Batch {
                    epoch: e,
                    items: part,
                });
            }
        }
        out.extend(self.down.due(now_ms).into_iter().map(Action::ReportDown));
        let late = (3 * EPOCH + GRACE).as_millis() as u64;
        let (stale, keep): (Vec<Pending>, Vec<Pending>) = self
            .pending
            .drain(..)
            .partition(|p| now_ms.saturating_sub(p.put_ms) > late);
        self.pending = keep;
        for p in stale {
            let mut publication = p.publication;
            out.push(if publication.tries < TRIES {
                publication.tries += 1;
                put(publication, now_ms)
            } else {
                Action::Broadcast {
                    publication,
                    why: Alone::NeverBatched,
                }
            });
        }
        out
    }

    /// Whether a [`Engine::tick`] now would do nothing: no event waits for its batch, no
    /// epoch item is held, no neighbour is suspected (a driver running many engines may skip
    /// an idle one's tick).
    pub fn idle(&self) -> bool {
        self.pending.is_empty() && self.held.is_empty() && self.down.waiting() == 0
    }

    /// Events put and not yet seen in a batch.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Items held for broadcasting.
    pub fn held_items(&self) -> usize {
        self.held.len()
    }

    /// Vanished neighbours waiting to be reported.
    pub fn suspects(&self) -> usize {
        self.down.waiting()
    }
}

/// The put of `publication` under the epoch of `now_ms`.
fn put(publication: Publication, now_ms: u64) -> Action {
    let e = epoch::epoch_of(now_ms);
    Action::Put(Put {
        epoch: e,
        key: epoch::epoch_key(e),
        value: item_value(&publication.event),
        ttl_ms: ITEM_TTL.as_millis() as u64,
        publication,
    })
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
