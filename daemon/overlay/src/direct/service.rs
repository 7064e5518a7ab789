//! Direct delivery as the node sees it: its [`Service`] registration (delivery requests, the
//! answers and lookups of its sends; it has no notices and no timers of its own).

use std::any::Any;

use super::Direct;
use crate::protocol::{Ctx, Reply, RingEvent, Service, unsupported};
use crate::wire::{DIRECT, Peer, Request, Response};

impl Service for Direct {
    fn service(&self) -> u16 {
        DIRECT
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn on_ring_event(&mut self, cx: &mut Ctx<'_>, ev: &RingEvent) {
        Direct::on_ring_event(self, cx, ev);
    }

    fn on_request(&mut self, cx: &mut Ctx<'_>, from: Peer, id: u64, body: Request) -> Response {
        match body {
            Request::Direct(r) => Response::Direct(Direct::on_request(self, cx, from, id, r)),
            _ => unsupported(cx),
        }
    }

    fn on_reply(&mut self, cx: &mut Ctx<'_>, token: u64, reply: Reply) {
        Direct::on_reply(self, cx, token, reply);
    }

    fn on_lookup(&mut self, cx: &mut Ctx<'_>, token: u64, result: Option<Peer>) {
        Direct::on_lookup(self, cx, token, result);
    }

    fn on_leave(&mut self, cx: &mut Ctx<'_>) {
        Direct::on_leave(self, cx);
    }

    fn check_invariants(&self) -> Result<(), String> {
        Direct::check_invariants(self)
    }
}
