//! Answers to a parent (`Ack`, `Done`) wait up to `BroadcastConfig::reply_delay` and leave
//! together.
//!
//! Without the wait every broadcast hop costs two datagrams, `Data` down and `Done` up, and
//! the `Done` wakes the parent once per child per message. Held for a few milliseconds, a
//! child's answers to the same parent share one datagram (and carry the transport's
//! acknowledgements with them), and an inner node of the tree whose children all finish within
//! the wait answers with `Done` alone instead of `Ack` then `Done`. `Data` is never held, so
//! delivery is not slowed; only the parent's bookkeeping learns a little later that a hop is
//! finished, which the ack and done timeouts (hundreds of milliseconds and more) absorb.
//!
//! Held answers leave when the oldest is `reply_delay` old (a timer), earlier when the node is
//! awake anyway and the oldest is half that old, at once when [`MAX_HELD`] are held, and before
//! the node leaves the ring. A zero delay sends every answer at once.

use std::collections::BTreeMap;

use super::wire::Bcast;
use super::{Broadcast, BroadcastTimer};
use crate::id::NodeId;
use crate::protocol::Ctx;
use crate::time::Time;
use crate::wire::{Message, Notice, Peer};

/// Answers held at once, over every parent; the next one sends them all.
pub const MAX_HELD: usize = 4096;

/// One held answer, for the parent's hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    Ack(u64),
    Done(u64),
}

impl Answer {
    fn message(self) -> Message {
        Message::Notice(Notice::Broadcast(match self {
            Answer::Ack(hop) => Bcast::Ack { hop },
            Answer::Done(hop) => Bcast::Done { hop },
        }))
    }
}

/// The held answers, per parent in the order they were given.
#[derive(Debug, Default)]
pub(crate) struct Replies {
    held: BTreeMap<NodeId, (Peer, Vec<Answer>)>,
    count: usize,
    /// When the oldest held answer was given.
    since: Option<Time>,
    /// Number of the current batch: its timer carries it, so a timer armed for a batch that
    /// has left is never wanted again.
    batch: u64,
}

impl Replies {
    /// Answers held now.
    pub(super) fn len(&self) -> usize {
        self.count
    }
}

impl Broadcast {
    /// Tells `parent` that its hop `hop` arrived and is being forwarded.
    pub(super) fn reply_ack(&mut self, cx: &mut Ctx<'_>, parent: Peer, hop: u64) {
        self.hold(cx, parent, Answer::Ack(hop));
    }

    /// Tells `parent` that its hop `hop` is finished (which also acknowledges it).
    pub(super) fn reply_done(&mut self, cx: &mut Ctx<'_>, parent: Peer, hop: u64) {
        self.hold(cx, parent, Answer::Done(hop));
    }

    fn hold(&mut self, cx: &mut Ctx<'_>, parent: Peer, reply: Answer) {
        let now = cx.now();
        let delay = self.reply_delay();
        if delay.is_zero() {
            self.count_replies(1);
            cx.send(parent, reply.message());
            return;
        }
        let r = &mut self.replies;
        let entry = r.held.entry(parent.id).or_insert((parent, Vec::new()));
        entry.0 = parent;
        let list = &mut entry.1;
        // A `Done` replaces the `Ack` of the same hop that has not left yet (held once).
        if let Answer::Done(hop) = reply
            && let Some(x) = list.iter_mut().find(|x| **x == Answer::Ack(hop))
        {
            *x = reply;
            return;
        }
        if list.contains(&reply) {
            return;
        }
        list.push(reply);
        r.count += 1;
        if r.since.is_none() {
            r.since = Some(now);
            let batch = r.batch;
            cx.set_timer(now + delay, BroadcastTimer::Replies(batch).into());
        }
        if self.replies.count >= MAX_HELD {
            self.flush_replies(cx);
        }
    }

    /// Sends every held answer.
    pub(crate) fn flush_replies(&mut self, cx: &mut Ctx<'_>) {
        let r = &mut self.replies;
        if r.since.take().is_none() {
            return;
        }
        r.batch = r.batch.wrapping_add(1);
        r.count = 0;
        let held = std::mem::take(&mut r.held);
        for (parent, list) in held.into_values() {
            self.count_replies(list.len() as u64);
            for reply in list {
                cx.send(parent, reply.message());
            }
        }
    }

    /// Called after every input: the node is awake anyway, so answers at least half the delay
    /// old leave now rather than waking it again at the deadline.
    pub(crate) fn flush_replies_if_due(&mut self, cx: &mut Ctx<'_>) {
        let half = self.reply_delay() / 2;
        if self.replies.since.is_some_and(|t| cx.now() >= t + half) {
            self.flush_replies(cx);
        }
    }

    /// Whether the timer of batch `batch` would send anything.
    pub(super) fn wants_replies_timer(&self, batch: u64) -> bool {
        self.replies.since.is_some() && self.replies.batch == batch
    }

    pub(super) fn on_replies_timer(&mut self, cx: &mut Ctx<'_>, batch: u64) {
        if self.wants_replies_timer(batch) {
            self.flush_replies(cx);
        }
    }
}
