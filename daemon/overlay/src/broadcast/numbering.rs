//! This node's own sequence numbers after a lost history: the highest number of its own the
//! node knows the ring holds, learnt from its neighbours when it first joins and raised by every
//! own message it meets later, so that it never numbers a new message with a number the ring
//! already holds (the others would take it for a copy of the old one: de-duplication and
//! anti-entropy key messages by origin and number).
//!
//! When the node first becomes a member, it asks its predecessor and successors (at most
//! [`MAX_ASKED`]) `Head{origin: itself}`: the highest number of that origin each has seen. It
//! knows its numbering once every node asked has answered or failed, or at the deadline
//! (`numbering_wait` after joining) — a node alone in its ring waits for the deadline, asking
//! whoever joins meanwhile. Until then [`crate::Overlay::admits_broadcast`] answers
//! [`super::BroadcastError::Numbering`] (retryable). `docs/protocol.md`, "Own sequence numbers".

use std::collections::BTreeSet;

use super::BroadcastTimer;
use super::tree::Broadcast;
use super::wire::{BroadcastRequest, BroadcastResponse};
use crate::id::NodeId;
use crate::protocol::{Ctx, Reply};
use crate::time::Time;
use crate::wire::{BROADCAST, Request, Response};

/// Token of the `Head` questions (hops are below 2^48, trace walks carry bit 63).
pub(super) const NUMBERING_TOKEN: u64 = 1 << 62;

/// Neighbours asked at most.
pub const MAX_ASKED: usize = 4;

/// Answers above this are ignored: no node sends 2^40 messages (35,000 years at the default
/// 1,000 a second), so such an answer is a lie, which could otherwise push the numbering to the
/// end of the range. A lower lie can only make the node skip numbers, never reuse one.
pub const MAX_PLAUSIBLE: u64 = 1 << 40;

#[derive(Debug, Default)]
enum Stage {
    /// Not a member yet.
    #[default]
    Unasked,
    /// Waiting for the answers of `waiting` (of `asked` asked) until `deadline`.
    Asking {
        deadline: Time,
        asked: BTreeSet<NodeId>,
        waiting: BTreeSet<NodeId>,
    },
    /// Every answer came, or the deadline passed.
    Known,
}

/// What the node knows of its own numbers.
#[derive(Debug, Default)]
pub(super) struct Numbering {
    /// The highest number of ours the ring is known to hold (answers, own messages met).
    high: u64,
    stage: Stage,
}

impl Numbering {
    /// An own message numbered `seq` exists (sent, or met in the tree or anti-entropy).
    pub(super) fn saw(&mut self, seq: u64) {
        self.high = self.high.max(seq);
    }

    /// A message `env` arrived from the ring: when it is one of ours (sent before a restart),
    /// number above it from now on.
    pub(super) fn met(&mut self, me: &NodeId, env: &super::Envelope) {
        if env.origin == *me {
            self.saw(env.seq);
        }
    }

    /// The highest own number the ring is known to hold.
    pub(super) fn high(&self) -> u64 {
        self.high
    }

    /// Whether the node cannot know its numbering yet at `now`.
    pub(super) fn learning(&self, now: Time) -> bool {
        match &self.stage {
            Stage::Unasked => false,
            Stage::Asking { deadline, .. } => now < *deadline,
            Stage::Known => false,
        }
    }

    /// Waits for the answers of `asked` until `deadline` (tests).
    #[cfg(test)]
    pub(super) fn start_asking(&mut self, deadline: Time, asked: impl IntoIterator<Item = NodeId>) {
        let asked: BTreeSet<NodeId> = asked.into_iter().collect();
        self.stage = Stage::Asking {
            deadline,
            waiting: asked.clone(),
            asked,
        };
    }

    /// Whether the deadline timer still matters.
    pub(super) fn asking(&self) -> bool {
        matches!(self.stage, Stage::Asking { .. })
    }
}

impl Broadcast {
    /// The node became a member: ask the neighbours, once per process.
    pub(super) fn numbering_start(&mut self, cx: &mut Ctx<'_>) {
        if !matches!(self.numbering.stage, Stage::Unasked) {
            return;
        }
        if self.cfg.numbering_wait.is_zero() {
            self.numbering.stage = Stage::Known;
            return;
        }
        let deadline = cx.now() + self.cfg.numbering_wait;
        self.numbering.stage = Stage::Asking {
            deadline,
            asked: BTreeSet::new(),
            waiting: BTreeSet::new(),
        };
        cx.set_timer(deadline, BroadcastTimer::Numbering.into());
        self.numbering_ask(cx);
    }

    /// Asks the neighbours not asked yet (up to [`MAX_ASKED`] in all).
    pub(super) fn numbering_ask(&mut self, cx: &mut Ctx<'_>) {
        let Stage::Asking { asked, waiting, .. } = &mut self.numbering.stage else {
            return;
        };
        let me = cx.me().id;
        let mut candidates: Vec<_> = cx.ring().predecessor().into_iter().collect();
        candidates.extend(cx.ring().successors().iter().copied());
        for p in candidates {
            if asked.len() >= MAX_ASKED {
                break;
            }
            if p.id == me || asked.contains(&p.id) {
                continue;
            }
            let body = Request::Broadcast(BroadcastRequest::Head { origin: me });
            if cx.request(p, body, BROADCAST, NUMBERING_TOKEN) {
                asked.insert(p.id);
                waiting.insert(p.id);
            }
        }
    }

    /// An answer to `Head` (or its failure).
    pub(super) fn numbering_reply(&mut self, reply: Reply) {
        let (from, head) = match reply {
            Reply::Answer {
                from,
                body: Response::Broadcast(BroadcastResponse::Head(h)),
            } => (from, h),
            Reply::Answer { from, .. } | Reply::Unsupported { from } => (from, 0),
            Reply::Failed { to } => (to, 0),
        };
        let Stage::Asking { waiting, .. } = &mut self.numbering.stage else {
            return;
        };
        if !waiting.remove(&from.id) {
            return;
        }
        let done = waiting.is_empty();
        if head <= MAX_PLAUSIBLE {
            self.numbering.saw(head);
        }
        if done {
            self.numbering.stage = Stage::Known;
        }
    }

    /// The deadline passed: number from what is known.
    pub(super) fn numbering_deadline(&mut self, now: Time) {
        if !self.numbering.learning(now) && self.numbering.asking() {
            self.numbering.stage = Stage::Known;
        }
    }

    /// The answer to `Head{origin}`: the highest number of `origin` seen here.
    pub(super) fn head_of(&self, me: &NodeId, origin: &NodeId) -> u64 {
        let own = if origin == me { self.numbering.high } else { 0 };
        self.memory.highest(origin).max(own)
    }

    /// The highest own number the ring is known to hold: number new messages above it.
    pub fn own_floor(&self) -> u64 {
        self.numbering.high()
    }
}
