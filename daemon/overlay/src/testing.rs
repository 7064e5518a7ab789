//! A service for tests only: [`Echo`], a [`Service`] added at run time on service [`TEST_ECHO`] that a test
//! installs on some nodes of a ring and not on others, to prove that a new service can be rolled
//! out into a running network: nodes without it count its messages and ignore them, answer its
//! requests "unsupported", and keep the ring and the broadcast whole.
//!
//! A node with it sends, every [`Echo::PERIOD`], a notice to its successor and a request to
//! its predecessor, and counts what comes back.

use std::any::Any;
use std::time::Duration;

use crate::overlay::Timer;
use crate::protocol::{Ctx, Reply, RingEvent, Service};
use crate::wire::{Message, Notice, Opaque, Peer, Request, Response, TEST_ECHO};

/// What an [`Echo`] saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EchoStats {
    /// Notices sent and received.
    pub notices_sent: u64,
    pub notices_received: u64,
    /// Requests sent, and their outcomes.
    pub requests_sent: u64,
    pub answered: u64,
    pub unsupported: u64,
    pub failed: u64,
    /// Requests this node answered.
    pub served: u64,
    /// Ring events seen: neighbours changed, peers suspected.
    pub neighbours_changed: u64,
    pub suspected: u64,
}

/// The test-only echo service.
#[derive(Debug, Default)]
pub struct Echo {
    stats: EchoStats,
    next_token: u64,
}

impl Echo {
    /// How often a node with the service speaks.
    pub const PERIOD: Duration = Duration::from_secs(1);

    /// What it saw.
    pub fn stats(&self) -> &EchoStats {
        &self.stats
    }

    fn body(text: &[u8]) -> Opaque {
        Opaque {
            service: TEST_ECHO,
            version: 1,
            body: text.to_vec(),
        }
    }

    fn arm(cx: &mut Ctx<'_>) {
        let at = cx.now() + Self::PERIOD;
        cx.set_timer(
            at,
            Timer::Service {
                service: TEST_ECHO,
                id: 0,
            },
        );
    }
}

impl Service for Echo {
    fn service(&self) -> u16 {
        TEST_ECHO
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn on_ring_event(&mut self, cx: &mut Ctx<'_>, ev: &RingEvent) {
        match ev {
            RingEvent::Joined => Self::arm(cx),
            RingEvent::NeighboursChanged => self.stats.neighbours_changed += 1,
            RingEvent::PeerSuspected(_) => self.stats.suspected += 1,
            RingEvent::Unreachable(_) => {}
        }
    }

    fn on_timer(&mut self, cx: &mut Ctx<'_>, _timer: Timer) {
        if !cx.ring().is_member() {
            return;
        }
        if let Some(s) = cx.ring().successor() {
            self.stats.notices_sent += 1;
            cx.send(s, Message::Notice(Notice::Other(Self::body(b"echo"))));
        }
        if let Some(p) = cx.ring().predecessor() {
            self.next_token += 1;
            if cx.request(
                p,
                Request::Other(Self::body(b"ping")),
                TEST_ECHO,
                self.next_token,
            ) {
                self.stats.requests_sent += 1;
            }
        }
        Self::arm(cx);
    }

    fn on_notice(&mut self, cx: &mut Ctx<'_>, _from: Peer, notice: Notice) {
        match notice {
            Notice::Other(_) => self.stats.notices_received += 1,
            _ => cx.count_unknown(),
        }
    }

    fn on_request(&mut self, _cx: &mut Ctx<'_>, _from: Peer, _id: u64, body: Request) -> Response {
        self.stats.served += 1;
        match body {
            Request::Other(o) if o.body == b"ping" => Response::Other(Self::body(b"pong")),
            _ => Response::Unsupported,
        }
    }

    fn on_reply(&mut self, _cx: &mut Ctx<'_>, _token: u64, reply: Reply) {
        match reply {
            Reply::Answer {
                body: Response::Other(_),
                ..
            } => self.stats.answered += 1,
            Reply::Answer { .. } | Reply::Unsupported { .. } => self.stats.unsupported += 1,
            Reply::Failed { .. } => self.stats.failed += 1,
        }
    }
}
