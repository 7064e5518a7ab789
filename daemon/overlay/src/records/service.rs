//! Records as the node sees it: its [`Service`] registration (pushes, store/fetch/digest
//! requests, its sync, renew and retry timers, handing held records on when the node leaves).

use std::any::Any;

use super::Records;
use crate::overlay::Timer;
use crate::protocol::{Ctx, Reply, RingEvent, Service, unsupported};
use crate::wire::{Notice, Peer, RECORDS, Request, Response};

impl Service for Records {
    fn service(&self) -> u16 {
        RECORDS
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn on_ring_event(&mut self, cx: &mut Ctx<'_>, ev: &RingEvent) {
        Records::on_ring_event(self, cx, ev);
    }

    fn on_timer(&mut self, cx: &mut Ctx<'_>, timer: Timer) {
        if let Timer::Records(t) = timer {
            Records::on_timer(self, cx, t);
        }
    }

    fn wants_timer(&self, timer: &Timer) -> bool {
        matches!(timer, Timer::Records(t) if Records::wants_timer(self, t))
    }

    fn on_notice(&mut self, cx: &mut Ctx<'_>, from: Peer, notice: Notice) {
        match notice {
            Notice::Records(n) => Records::on_notice(self, cx, from, n),
            _ => cx.count_unknown(),
        }
    }

    fn on_request(&mut self, cx: &mut Ctx<'_>, from: Peer, _id: u64, body: Request) -> Response {
        match body {
            Request::Records(r) => Response::Records(Records::on_request(self, cx, from, r)),
            _ => unsupported(cx),
        }
    }

    fn on_reply(&mut self, cx: &mut Ctx<'_>, token: u64, reply: Reply) {
        Records::on_reply(self, cx, token, reply);
    }

    fn on_lookup(&mut self, cx: &mut Ctx<'_>, token: u64, result: Option<Peer>) {
        Records::on_lookup(self, cx, token, result);
    }

    fn on_leave(&mut self, cx: &mut Ctx<'_>) {
        // Held records go to the successors that hold them next.
        Records::on_leave(self, cx);
    }

    fn check_invariants(&self) -> Result<(), String> {
        Records::check_invariants(self)
    }
}
