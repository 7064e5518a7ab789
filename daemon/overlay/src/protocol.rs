//! How a sub-protocol meets the ring core: the context it acts through ([`Ctx`]), the ring
//! events it sees ([`RingEvent`]), and the one interface every sub-protocol implements
//! ([`Service`]).
//!
//! A sub-protocol reads the ring only through [`Ctx::ring`] (a shared reference: it cannot
//! change the tables) and acts only through the context: send, arm a timer, raise an event,
//! make a request through the ring's one RPC engine (ids, resends, suspicion), start a lookup,
//! report a peer that failed it. Answers to its requests and lookups come back tagged with the
//! service number and the token it chose.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

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

/// One sub-protocol of the overlay, as the node sees it: broadcast, records, direct delivery,
/// and any service added later, all meet the node through this one interface. The node keeps
/// its services in one registry (`crate::services`), hands each the items of its service
/// number (notices, requests, answers to its requests, its lookups, its timers), tells every
/// one of them what the ring does, lets each flush what it held once per input, and checks its
/// invariants after every input.
///
/// A service's messages are the typed bodies of [`Notice`], [`Request`] and [`Response`] for
/// the services this crate was built with, and [`Opaque`] bodies (its own encoding, see
/// [`encode_body`] and [`decode_body`]) for any other: a new service needs no change in
/// `wire.rs`. Its timers are [`Timer::Service`] with its service number (the built-in ones
/// keep their typed variants), its events [`Event::Service`], its inputs a closure run through
/// [`crate::Overlay::call`]. Nodes without a service count its messages and ignore them, and
/// answer its requests [`Response::Unsupported`].
pub trait Service: fmt::Debug + Send + Any {
    /// The service number it serves (one service per number on a node).
    fn service(&self) -> u16;
    /// For typed access (`Overlay::service_ref`) and status pages: the concrete type.
    fn as_any(&self) -> &dyn Any;
    /// For typed access (`Overlay::call`): the concrete type.
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// A ring event (every service sees every one, in registration order).
    fn on_ring_event(&mut self, cx: &mut Ctx<'_>, ev: &RingEvent) {
        let _ = (cx, ev);
    }
    /// One of its timers fired (a timer whose [`Timer::service`] is its number).
    fn on_timer(&mut self, cx: &mut Ctx<'_>, timer: Timer) {
        let _ = (cx, timer);
    }
    /// Whether `timer` (one of its own) would act now; `false` lets a driver drop it.
    fn wants_timer(&self, timer: &Timer) -> bool {
        let _ = timer;
        true
    }
    /// A notice for it arrived.
    fn on_notice(&mut self, cx: &mut Ctx<'_>, from: Peer, notice: Notice) {
        let _ = (from, notice);
        cx.count_unknown();
    }
    /// A request for it arrived (`id` is the request's id on the wire); the answer is sent
    /// back with the same id.
    fn on_request(&mut self, cx: &mut Ctx<'_>, from: Peer, id: u64, body: Request) -> Response {
        let _ = (from, id, body);
        cx.count_unknown();
        Response::Unsupported
    }
    /// The outcome of a request it made.
    fn on_reply(&mut self, cx: &mut Ctx<'_>, token: u64, reply: Reply) {
        let _ = (cx, token, reply);
    }
    /// The outcome of a lookup it started.
    fn on_lookup(&mut self, cx: &mut Ctx<'_>, token: u64, result: Option<Peer>) {
        let _ = (cx, token, result);
    }
    /// Called once per input that did something (not for an unwanted timer), after the
    /// input's work: the node is awake anyway, so held messages that are nearly due may leave.
    fn flush(&mut self, cx: &mut Ctx<'_>) {
        let _ = cx;
    }
    /// The node is leaving the ring gracefully (before the ring core says goodbye).
    fn on_leave(&mut self, cx: &mut Ctx<'_>) {
        let _ = cx;
    }
    /// The service's local invariants, checked after every input by tests and the simulator.
    fn check_invariants(&self) -> Result<(), String> {
        Ok(())
    }
}

/// An event of a service that has no variant of its own in [`Event`]: its service number and
/// the service's own event value (read back with [`ServiceEvent::downcast_ref`]).
#[derive(Clone)]
pub struct ServiceEvent {
    /// The service that raised it.
    pub service: u16,
    value: Arc<dyn Any + Send + Sync>,
}

impl ServiceEvent {
    /// An event `value` of `service`.
    pub fn new<T: Any + Send + Sync + fmt::Debug>(service: u16, value: T) -> ServiceEvent {
        ServiceEvent {
            service,
            value: Arc::new(value),
        }
    }

    /// The event as the service's own type, if it is one.
    pub fn downcast_ref<T: Any>(&self) -> Option<&T> {
        self.value.downcast_ref::<T>()
    }
}

impl fmt::Debug for ServiceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceEvent")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl PartialEq for ServiceEvent {
    /// The same service and the very same value (events are not compared by content).
    fn eq(&self, other: &Self) -> bool {
        self.service == other.service && Arc::ptr_eq(&self.value, &other.value)
    }
}

/// `value` in a service's own encoding (CBOR) as an [`Opaque`] body of `service` at `version`:
/// how a service this crate does not list in `wire.rs` writes its messages.
pub fn encode_body<T: Serialize>(service: u16, version: u16, value: &T) -> Result<Opaque, String> {
    let mut body = Vec::with_capacity(64);
    ciborium::into_writer(value, &mut body).map_err(|e| e.to_string())?;
    Ok(Opaque {
        service,
        version,
        body,
    })
}

/// The body read as a message of `service` at `version`; `None` for another service, another
/// version or bytes that do not decode (the caller counts it as invalid).
pub fn decode_body<T: DeserializeOwned>(o: &Opaque, service: u16, version: u16) -> Option<T> {
    if o.service != service || o.version != version {
        return None;
    }
    ciborium::from_reader(o.body.as_slice()).ok()
}

/// What a service answers a request it cannot read (another version or message type): the
/// message is counted as unknown and the sender told at once.
pub fn unsupported(cx: &mut Ctx<'_>) -> Response {
    cx.count_unknown();
    Response::Unsupported
}
