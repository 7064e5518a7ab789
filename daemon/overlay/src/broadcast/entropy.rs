//! Anti-entropy for broadcast: every `ae_interval` a node sends a ring neighbour (its
//! predecessor and successor in turn) a digest of the sequence numbers it holds per origin; the
//! neighbour pushes back what the sender lacks (messages older than `ae_grace`, at most
//! `ae_max_repairs` per exchange) and asks for what it lacks itself. A repaired message travels
//! on along the ring away from its sender until it meets a node that has it, so a hole left by
//! a lost arc closes at network speed.

use super::trace::Via;
use super::tree::Broadcast;
use super::wire::Bcast;
use super::{BroadcastEvent, BroadcastTimer, Envelope, MAX_DIGEST, MsgId};
use crate::id::NodeId;
use crate::overlay::Event;
use crate::protocol::Ctx;
use crate::wire::{Message, Notice, Peer};

impl Broadcast {
    pub(super) fn tick_anti_entropy(&mut self, cx: &mut Ctx<'_>) {
        if !cx.ring().is_member() {
            return;
        }
        self.ae_to_pred = !self.ae_to_pred;
        let to = if self.ae_to_pred {
            cx.ring().predecessor().or(cx.ring().successor())
        } else {
            cx.ring().successor().or(cx.ring().predecessor())
        };
        if let Some(to) = to {
            self.send_digest(cx, to, false);
        }
        let d = cx.jittered(self.cfg.ae_interval);
        cx.set_timer(cx.now() + d, BroadcastTimer::AntiEntropy.into());
    }

    fn send_digest(&mut self, cx: &mut Ctx<'_>, to: Peer, reply: bool) {
        let (heads, complete) = self.memory.digest(MAX_DIGEST);
        cx.send(
            to,
            Message::Notice(Notice::Broadcast(Bcast::Digest {
                heads,
                complete,
                reply,
            })),
        );
    }

    pub(super) fn on_digest(
        &mut self,
        cx: &mut Ctx<'_>,
        from: Peer,
        heads: Vec<(NodeId, u64)>,
        complete: bool,
        reply: bool,
    ) {
        let cfg = &self.cfg;
        let repairs: Vec<(MsgId, Envelope)> = self
            .memory
            .missing_for(&heads, complete, cx.now(), cfg.ae_grace, cfg.ae_max_repairs)
            .into_iter()
            .map(|m| (m.id, m.env.clone()))
            .collect();
        for (id, env) in repairs {
            self.stats.repairs_sent += 1;
            self.stats.payload_sends += 1;
            self.tracing.log.sent(env.origin, env.seq, from, cx.now());
            cx.send(
                from,
                Message::Notice(Notice::Broadcast(Bcast::Repair { id, env })),
            );
        }
        if !reply && self.memory.lacks_any(&heads) {
            self.send_digest(cx, from, true);
        }
    }

    /// A neighbour pushed a message we lacked. Pass it on along the ring, away from the
    /// sender: a neighbour that missed a message often shares the hole (a lost arc), and the
    /// wave runs at network speed instead of one anti-entropy round per node. It stops at the
    /// first node that has the message.
    pub(super) fn on_repair(&mut self, cx: &mut Ctx<'_>, from: Peer, id: MsgId, env: Envelope) {
        if self.memory.is_seen(&env.origin, env.seq) {
            self.stats.duplicates += 1;
            return;
        }
        if !self.valid(&env) {
            self.stats.dropped_invalid += 1;
            return;
        }
        if !self.rate.allow(&env.origin, cx.now()) {
            self.stats.dropped_rate += 1;
            return;
        }
        self.memory.insert(cx.now(), env.clone(), id);
        self.numbering.met(&cx.me().id, &env);
        let arrived = self.tracing.arrival(cx.now());
        self.tracing
            .log
            .received(env.origin, env.seq, Some(from), Via::Repair, None, arrived);
        self.stats.delivered += 1;
        self.stats.repairs_received += 1;
        let onward = if cx.ring().successor().is_some_and(|s| s.id == from.id) {
            cx.ring().predecessor()
        } else {
            cx.ring().successor()
        };
        if let Some(to) = onward.filter(|p| p.id != from.id) {
            self.stats.repairs_sent += 1;
            self.stats.payload_sends += 1;
            self.tracing.log.sent(env.origin, env.seq, to, cx.now());
            cx.send(
                to,
                Message::Notice(Notice::Broadcast(Bcast::Repair {
                    id,
                    env: env.clone(),
                })),
            );
        }
        cx.event(Event::Broadcast(BroadcastEvent::Deliver {
            id,
            env,
            depth: None,
        }));
    }
}
