//! How a sub-protocol meets the ring core: the context it acts through ([`Ctx`]), the ring
//! events it sees ([`RingEvent`]), and the interface of services added at run time
//! ([`Extension`]).
//!
//! A sub-protocol reads the ring only through [`Ctx::ring`] (a shared reference: it cannot
//! change the tables) and acts only through the context: send, arm a timer, raise an event,
//! make a request through the ring's one RPC engine (ids, resends, suspicion), start a lookup,
//! report a peer that failed it. Answers to its requests and lookups come back tagged with the
//! service number and the token it chose.

use std::any::Any;
use std::fmt;
use std::time::Duration;

use crate::id::NodeId;
use crate::overlay::{Event, Output, Timer};
use crate::ring::Ring;
use crate::time::Time;
use crate::wire::{Message, Notice, Opaque, Peer, Request, Response};

/// What the ring core tells sub-protocols about the ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RingEvent {
    /// The node became a ring member.
    Joined,
    /// The driver could not reach this peer (its connection failed).
    Unreachable(NodeId),
    /// The ring core stopped routing through this peer (it failed requests).
    PeerSuspected(NodeId),
    /// The successor list or the predecessor changed (raised once per input, after the
    /// core's and the sub-protocols' work on it): replicas may have moved.
    NeighboursChanged,
}

/// The outcome of a request a sub-protocol made.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// The peer answered.
    Answer { from: Peer, body: Response },
    /// The peer does not speak the service (it is alive; it is not suspected).
    Unsupported { from: Peer },
    /// No answer after every attempt (the peer has been struck, perhaps suspected).
    Failed { to: Peer },
}

/// Work the ring core queued for the sub-protocols (drained by [`crate::Overlay`]).
#[derive(Debug)]
pub(crate) enum Up {
    Ring(RingEvent),
    Notice {
        from: Peer,
        notice: Notice,
    },
    Request {
        from: Peer,
        id: u64,
        body: Request,
    },
    Reply {
        service: u16,
        token: u64,
        reply: Reply,
    },
    Lookup {
        service: u16,
        token: u64,
        result: Option<Peer>,
    },
}

/// A sub-protocol's hold on the node during one input.
pub struct Ctx<'a> {
    ring: &'a mut Ring,
    now: Time,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(ring: &'a mut Ring, now: Time) -> Ctx<'a> {
        Ctx { ring, now }
    }

    /// The current time.
    pub fn now(&self) -> Time {
        self.now
    }

    /// The ring, read-only.
    pub fn ring(&self) -> &Ring {
        self.ring
    }

    /// This node.
    pub fn me(&self) -> Peer {
        self.ring.me()
    }

    /// Sends `msg` to `to`.
    pub fn send(&mut self, to: Peer, msg: Message) {
        self.ring.send(to, msg);
    }

    /// Arms `timer` for `at`.
    pub fn set_timer(&mut self, at: Time, timer: Timer) {
        self.ring.push(Output::SetTimer { at, timer });
    }

    /// Raises an event for the application.
    pub fn event(&mut self, e: Event) {
        self.ring.push(Output::Event(e));
    }

    /// Sends request `body` to `to` through the ring's RPC engine; the outcome comes back as a
    /// [`Reply`] for `service` with `token`. `false`: too many requests are outstanding.
    pub fn request(&mut self, to: Peer, body: Request, service: u16, token: u64) -> bool {
        self.ring
            .service_request(self.now, to, body, service, token)
    }

    /// Looks up the successor of `key`; the result comes back for `service` with `token`.
    pub fn lookup(&mut self, key: NodeId, service: u16, token: u64) {
        self.ring.service_lookup(self.now, key, service, token);
    }

    /// `peer` failed a sub-protocol's exchange as badly as repeated timeouts: strike it and
    /// route around it.
    pub fn peer_failed(&mut self, peer: Peer) {
        self.ring.peer_failed(self.now, peer);
    }

    /// `base` with ±25 % jitter.
    pub fn jittered(&mut self, base: Duration) -> Duration {
        self.ring.jittered(base)
    }

    /// Counts a message that failed a sub-protocol's checks.
    pub fn count_invalid(&mut self) {
        self.ring.count_invalid();
    }

    /// Counts a message of a service or type this node does not speak.
    pub fn count_unknown(&mut self) {
        self.ring.count_unknown();
    }
}

/// A service added to a node at run time. It speaks through [`Opaque`] bodies (its own
/// encoding), arms [`Timer::Extension`] timers with its service number, and is told what the
/// ring does. Nodes without it count its messages and ignore them.
pub trait Extension: fmt::Debug + Send {
    /// The service number it serves.
    fn service(&self) -> u16;
    /// For tests and status pages: the concrete type behind the trait.
    fn as_any(&self) -> &dyn Any;
    /// A ring event.
    fn on_ring_event(&mut self, cx: &mut Ctx<'_>, ev: &RingEvent);
    /// One of its timers fired.
    fn on_timer(&mut self, cx: &mut Ctx<'_>, id: u64);
    /// Whether timer `id` would act now.
    fn wants_timer(&self, id: u64) -> bool {
        let _ = id;
        true
    }
    /// A notice for it arrived.
    fn on_notice(&mut self, cx: &mut Ctx<'_>, from: Peer, body: &Opaque);
    /// A request for it arrived; `None` answers [`Response::Unsupported`].
    fn on_request(&mut self, cx: &mut Ctx<'_>, from: Peer, body: &Opaque) -> Option<Opaque>;
    /// The outcome of a request it made.
    fn on_reply(&mut self, cx: &mut Ctx<'_>, token: u64, reply: Reply);
    /// The outcome of a lookup it started.
    fn on_lookup(&mut self, cx: &mut Ctx<'_>, token: u64, result: Option<Peer>) {
        let _ = (cx, token, result);
    }
}
