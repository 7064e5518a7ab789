//! Broadcast as the node sees it: its [`Service`] registration (notices, status and trace
//! requests, its timers, the per-input flush of held answers to parents).

use std::any::Any;

use super::Broadcast;
use crate::overlay::Timer;
use crate::protocol::{Ctx, Reply, RingEvent, Service, unsupported};
use crate::wire::{BROADCAST, Notice, Peer, Request, Response};

impl Service for Broadcast {
    fn service(&self) -> u16 {
        BROADCAST
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn on_ring_event(&mut self, cx: &mut Ctx<'_>, ev: &RingEvent) {
        Broadcast::on_ring_event(self, cx, ev);
    }

    fn on_timer(&mut self, cx: &mut Ctx<'_>, timer: Timer) {
        if let Timer::Broadcast(t) = timer {
            Broadcast::on_timer(self, cx, t);
        }
    }

    fn wants_timer(&self, timer: &Timer) -> bool {
        matches!(timer, Timer::Broadcast(t) if Broadcast::wants_timer(self, t))
    }

    fn on_notice(&mut self, cx: &mut Ctx<'_>, from: Peer, notice: Notice) {
        match notice {
            Notice::Broadcast(b) => Broadcast::on_notice(self, cx, from, b),
            _ => cx.count_unknown(),
        }
    }

    fn on_request(&mut self, cx: &mut Ctx<'_>, from: Peer, _id: u64, body: Request) -> Response {
        match body {
            Request::Broadcast(r) => Response::Broadcast(Broadcast::on_request(self, cx, from, r)),
            _ => unsupported(cx),
        }
    }

    fn on_reply(&mut self, cx: &mut Ctx<'_>, token: u64, reply: Reply) {
        Broadcast::on_reply(self, cx, token, reply);
    }

    fn on_lookup(&mut self, cx: &mut Ctx<'_>, token: u64, result: Option<Peer>) {
        Broadcast::on_lookup(self, cx, token, result);
    }

    fn flush(&mut self, cx: &mut Ctx<'_>) {
        self.flush_replies_if_due(cx);
    }

    fn on_leave(&mut self, cx: &mut Ctx<'_>) {
        // Parents learn of finished hops now rather than ask after their timeout.
        self.flush_replies(cx);
    }

    fn check_invariants(&self) -> Result<(), String> {
        Broadcast::check_invariants(self)
    }
}
