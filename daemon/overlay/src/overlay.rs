//! The overlay node: the ring core and the sub-protocols composed behind one
//! `handle(now, input) -> outputs`, and what goes in and out of it.
//!
//! The [`Ring`] handles membership, routing and the one RPC engine. Everything it cannot
//! handle itself (another service's notices and requests, answers to requests a sub-protocol
//! made, lookups it asked for, ring events) it queues ([`crate::protocol::Up`]); after each
//! input [`Overlay`] hands the queue to the sub-protocol that owns each item, each with a
//! [`Ctx`]: a read-only view of the ring plus the right to send, arm timers, make requests and
//! lookups, and report a failed peer. Every sub-protocol is a [`Service`] in one registry
//! (`crate::services`), found by its service number: a new one is a folder and one line in
//! `services::registered` (or [`Overlay::add_service`] at run time); nothing here names it.
//! Services this build does not know are counted and ignored (requests answered
//! [`Response::Unsupported`]).

use crate::broadcast::wire::Bcast;
use crate::broadcast::{
    Broadcast, BroadcastError, BroadcastEvent, BroadcastTimer, Envelope, Validator,
};
use crate::config::ChordConfig;
use crate::direct::{Direct, DirectEvent, DirectInput};
use crate::id::NodeId;
use crate::protocol::{Ctx, Service, ServiceEvent, Up, unsupported};
use crate::records::{Records, RecordsEvent, RecordsInput, RecordsTimer};
use crate::ring::{Phase, Ring, RingTimer};
use crate::services::{AddServiceError, Services, registered};
use crate::time::Time;
use crate::wire::{BROADCAST, Message, Notice, Peer, RECORDS, RING, Request, Response};

/// An event the driver feeds to the node.
#[derive(Clone, Debug)]
pub enum Input {
    /// Found a new ring with this node as its only member.
    Create,
    /// Join the ring through any of these members (tried in turn, retried with backoff).
    Join { via: Vec<Peer> },
    /// Join through any of these peers, which may be waiting for a ring themselves (peers
    /// remembered from an earlier run, or found on the LAN): when a whole round of attempts
    /// finds every one of them not a member, the node whose id is lowest founds the ring.
    JoinOrFound { via: Vec<Peer> },
    /// Peers this node knew in an earlier run that do not answer now (remembered peers whose
    /// ring is down): kept as lost peers and probed once this node is a member, so that when
    /// one of them comes back in a ring of its own the two rings merge as after a partition.
    /// Feed it before the join (or `Create`); this node, and peers already in its routing
    /// state, are skipped; at most the graveyard's size is kept.
    Lost { peers: Vec<Peer> },
    /// A message arrived from `from` (the driver has authenticated `from.id`).
    Message { from: Peer, msg: Message },
    /// A timer the node armed has expired.
    Timer(Timer),
    /// The driver could not reach this peer (connection refused, reset or timed out).
    Unreachable(NodeId),
    /// The application asks for the successor of `key` (and learns the nodes after it);
    /// answered by [`Event::LookupDone`].
    Lookup { key: NodeId, token: u64 },
    /// Leave the ring gracefully.
    Leave,
    /// Broadcast `payload` to every ring member as this node's message number `seq` (1, 2, …;
    /// the application numbers its messages and signs the number with the payload).
    /// A refusal comes back in the same call's outputs as [`BroadcastEvent::Refused`].
    Broadcast { seq: u64, payload: Vec<u8> },
    /// A records operation; answers come back as [`Event::Records`].
    Records(RecordsInput),
    /// A direct-delivery send; answered by [`Event::Direct`] (`DirectEvent::Done`).
    Direct(DirectInput),
    /// A peer found outside the ring protocol (LAN discovery). A member looks its own id up
    /// through it: when the peer belongs to another ring, that finds this node's successor
    /// there and the two rings merge as after a partition. Ignored while not a member, for a
    /// peer already in the routing state, and while another merge lookup runs.
    Discovered(Peer),
    /// Ask the ring how broadcast (`origin`, `seq`) travelled: every node the answers lead to
    /// is asked for its part (`broadcast/trace.rs`); answered by
    /// [`BroadcastEvent::Traced`] with the same `token`.
    Trace {
        origin: NodeId,
        seq: u64,
        token: u64,
    },
}

/// Timers are data: the node arms them through [`Output::SetTimer`] and the driver hands them
/// back through [`Input::Timer`] when they expire. Timers are never cancelled: a timer that is
/// no longer wanted is ignored when it fires ([`Overlay::wants_timer`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// The ring core's.
    Ring(RingTimer),
    /// Broadcast's.
    Broadcast(BroadcastTimer),
    /// Records'.
    Records(RecordsTimer),
    /// Another service's: its service number and its own number.
    Service { service: u16, id: u64 },
}

impl Timer {
    /// The service whose timer it is.
    pub fn service(&self) -> u16 {
        match self {
            Timer::Ring(_) => RING,
            Timer::Broadcast(_) => BROADCAST,
            Timer::Records(_) => RECORDS,
            Timer::Service { service, .. } => *service,
        }
    }
}

/// An action for the driver.
#[derive(Clone, Debug)]
pub enum Output {
    /// Send `msg` to `to`.
    Send { to: Peer, msg: Message },
    /// Hand `timer` back at `at`.
    SetTimer { at: Time, timer: Timer },
    /// Something the application may want to know.
    Event(Event),
}

/// Notifications for the application.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The node is a ring member (founded a ring, or joined with a full successor list).
    Joined,
    /// A join attempt failed; another follows at `retry_at`.
    JoinFailed { retry_at: Time },
    /// An application lookup finished.
    LookupDone {
        token: u64,
        result: Result<Peer, LookupError>,
        hops: u32,
        /// On success, the nodes after the successor on the ring, nearest first, as far as
        /// the lookup learnt them (usually the successor's own successor list; shorter when
        /// it could not tell, empty on failure; at most [`crate::wire::MAX_PEER_LIST`]):
        /// with the successor, the key's successors, for placing something on several.
        followers: Vec<Peer>,
    },
    /// The first successor changed.
    SuccessorChanged(Option<Peer>),
    /// The predecessor changed.
    PredecessorChanged(Option<Peer>),
    /// A peer stopped answering and is routed around.
    PeerSuspected(NodeId),
    /// The node left the ring; the driver may close everything.
    Left,
    /// From broadcast.
    Broadcast(BroadcastEvent),
    /// From records.
    Records(RecordsEvent),
    /// From direct delivery: a send's outcome, or a body for this node.
    Direct(DirectEvent),
    /// From another service (one without a variant here).
    Service(ServiceEvent),
}

/// Why a lookup failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// This node is not a ring member.
    #[error("this node is not a ring member")]
    NotMember,
    /// Too many lookups in flight.
    #[error("too many lookups in flight")]
    Busy,
    /// Every candidate on the way failed.
    #[error("no live route towards the key")]
    NoRoute,
    /// The lookup took longer than its deadline or hop bound.
    #[error("lookup timed out")]
    Timeout,
}

/// One overlay node: the ring core and its sub-protocols.
#[derive(Debug)]
pub struct Overlay {
    ring: Ring,
    services: Services,
}

/// Every node registers these ([`crate::services`]'s list), so their typed accessors find them.
const REGISTERED: &str = "the node registers it in services::registered";

impl Overlay {
    /// A node with identity `me`; `seed` makes its timer jitter and request ids reproducible.
    pub fn new(me: Peer, cfg: ChordConfig, seed: u64) -> Overlay {
        let services = Services::new(registered(&cfg, me, seed));
        Overlay {
            ring: Ring::new(me, cfg.ring, seed),
            services,
        }
    }

    /// Adds a service at run time (one per service number: a second one replaces the first).
    /// The numbers of the frame layer, the ring core and the services every node runs are
    /// refused.
    pub fn add_service(&mut self, s: Box<dyn Service>) -> Result<(), AddServiceError> {
        self.services.add(s)
    }

    /// The service serving number `service`, if any.
    pub fn service(&self, service: u16) -> Option<&dyn Service> {
        self.services.get(service)
    }

    /// The service of type `T`, if the node runs one (read-only: state, counters).
    pub fn service_ref<T: Service>(&self) -> Option<&T> {
        self.services.typed::<T>()
    }

    /// Runs `f` on the service of type `T` at time `now`, as one input: what it does (sends,
    /// timers, events, requests, lookups) and what follows within the input comes back as the
    /// outputs. `None`: the node runs no such service, or has left the ring (then `f` does not
    /// run). A service's own inputs come in this way; nothing in [`Input`] names them.
    pub fn call<T: Service, R>(
        &mut self,
        now: Time,
        f: impl FnOnce(&mut T, &mut Ctx<'_>) -> R,
    ) -> Option<(R, Vec<Output>)> {
        self.services.typed::<T>()?;
        let mut result = None;
        let out = self.turn(now, false, |o| {
            if let Some(s) = o.services.typed_mut::<T>() {
                result = Some(f(s, &mut Ctx::new(&mut o.ring, now)));
            }
        });
        result.map(|r| (r, out))
    }

    /// Installs the application's envelope check (signature against the origin's key).
    pub fn set_validator(&mut self, v: Validator) {
        self.broadcast_mut().set_validator(v);
    }

    /// The ring core (read-only): membership, tables, counters.
    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// Broadcast's state (read-only): counters, messages in flight.
    pub fn broadcast(&self) -> &Broadcast {
        self.services.typed().expect(REGISTERED)
    }

    fn broadcast_mut(&mut self) -> &mut Broadcast {
        self.services.typed_mut().expect(REGISTERED)
    }

    /// The envelope the validator will be asked about when `msg` is handled, if any: a tree
    /// `Data`'s (always judged), or a `Repair`'s of a message not seen here. A driver that
    /// takes several messages at once can check these together (batch verification) before
    /// handling them one by one.
    pub fn envelope_to_validate<'m>(&self, msg: &'m Message) -> Option<&'m Envelope> {
        match msg {
            Message::Notice(Notice::Broadcast(Bcast::Data { env, .. })) => Some(env),
            Message::Notice(Notice::Broadcast(Bcast::Repair { env, .. }))
                if !self.broadcast().is_seen(&env.origin, env.seq) =>
            {
                Some(env)
            }
            _ => None,
        }
    }

    /// Plants `r` in this node's record store with no policy, as a modified node would: for
    /// the adversarial tests and the simulator only.
    #[doc(hidden)]
    pub fn plant_record(&mut self, r: crate::records::Record) {
        self.services
            .typed_mut::<Records>()
            .expect(REGISTERED)
            .plant(r);
    }

    /// Records' state (read-only): the store, counters, operations in flight.
    pub fn records(&self) -> &Records {
        self.services.typed().expect(REGISTERED)
    }

    /// Direct delivery's state (read-only): counters, sends in flight.
    pub fn direct(&self) -> &Direct {
        self.services.typed().expect(REGISTERED)
    }

    /// Whether [`Input::Broadcast`] would be accepted at `now` (for a payload within
    /// [`crate::broadcast::MAX_PAYLOAD`] and an unused sequence number). Takes nothing, so a
    /// driver can ask before it numbers, signs and stores a message, and tell its client the
    /// truth: after an `Ok` here, a broadcast fed at the same or a later time with no other
    /// broadcast in between is accepted.
    pub fn admits_broadcast(&self, now: Time) -> Result<(), BroadcastError> {
        self.broadcast().admits(&self.ring, now)
    }

    /// The highest sequence number of this node's own that the ring is known to hold (its
    /// neighbours' answers after it joined, and every own message met since): number the next
    /// broadcast above it, never at or below (`broadcast/numbering.rs`). While
    /// [`Overlay::admits_broadcast`] answers [`BroadcastError::Numbering`] it may still rise.
    pub fn own_seq_floor(&self) -> u64 {
        self.broadcast().own_floor()
    }

    /// The application could not keep broadcast `(origin, seq)` it was delivered (its store
    /// failed): the node forgets it saw it, so anti-entropy brings it back from the
    /// neighbours (`docs/protocol.md`, "Anti-entropy"). Takes nothing and sends nothing.
    pub fn forget_broadcast(&mut self, origin: &NodeId, seq: u64) {
        self.broadcast_mut().forget(origin, seq);
    }

    /// Tells the node its driver's epoch as Unix time in microseconds, so that trace answers
    /// carry times other nodes can compare (the simulator leaves it at zero).
    pub fn set_wall_clock(&mut self, epoch_unix_us: u64) {
        self.broadcast_mut().set_wall_clock(epoch_unix_us);
    }

    /// [`Overlay::handle`] for an input that reached the driver at `arrived` (before `now`:
    /// it waited in a queue). Only the trace log reads it (when a message arrived, so the
    /// wait before it was sent on counts as the node's).
    pub fn handle_arrived(&mut self, now: Time, arrived: Time, input: Input) -> Vec<Output> {
        self.broadcast_mut().set_arrival(Some(arrived));
        let out = self.handle(now, input);
        self.broadcast_mut().set_arrival(None);
        out
    }

    /// Feeds one input at time `now` and returns what the driver must do.
    pub fn handle(&mut self, now: Time, input: Input) -> Vec<Output> {
        // A timer nobody wants must do nothing at all (`wants_timer`'s promise).
        let idle = matches!(&input, Input::Timer(t) if !self.wants_timer(t));
        self.turn(now, idle, |o| o.dispatch(now, input))
    }

    /// One input's turn: `work`, then what the ring core queued for the services, the
    /// services' flushes (unless the input was `idle`), the neighbour changes it made.
    fn turn(&mut self, now: Time, idle: bool, work: impl FnOnce(&mut Self)) -> Vec<Output> {
        if self.ring.phase() != Phase::Left {
            let before = self.ring.neighbours();
            work(self);
            self.drain(now);
            if !idle {
                for s in self.services.iter_mut() {
                    s.flush(&mut Ctx::new(&mut self.ring, now));
                }
            }
            self.ring.report_neighbour_changes(before);
            self.drain(now);
        }
        self.ring.take_outputs()
    }

    /// Runs `f` on the service of type `T` (every node runs the ones this is used for).
    fn with<T: Service>(&mut self, now: Time, f: impl FnOnce(&mut T, &mut Ctx<'_>)) {
        if let Some(s) = self.services.typed_mut::<T>() {
            f(s, &mut Ctx::new(&mut self.ring, now));
        }
    }

    fn dispatch(&mut self, now: Time, input: Input) {
        match input {
            Input::Timer(Timer::Ring(t)) => self.ring.on_timer(now, t),
            Input::Timer(t) => {
                if let Some(s) = self.services.get_mut(t.service()) {
                    s.on_timer(&mut Ctx::new(&mut self.ring, now), t);
                }
            }
            Input::Broadcast { seq, payload } => {
                self.with(now, |b: &mut Broadcast, cx| b.originate(cx, seq, payload))
            }
            Input::Trace { origin, seq, token } => {
                self.with(now, |b: &mut Broadcast, cx| b.trace(cx, origin, seq, token))
            }
            Input::Records(r) => self.with(now, |d: &mut Records, cx| d.on_input(cx, r)),
            Input::Direct(d) => self.with(now, |x: &mut Direct, cx| x.on_input(cx, d)),
            Input::Leave => {
                for s in self.services.iter_mut() {
                    s.on_leave(&mut Ctx::new(&mut self.ring, now));
                }
                self.ring.leave();
            }
            Input::Create => self.ring.create(now),
            Input::Join { via } => self.ring.join(now, via),
            Input::JoinOrFound { via } => self.ring.join_or_found(now, via),
            Input::Lost { peers } => self.ring.lost(now, peers),
            Input::Message { from, msg } => self.ring.on_message(now, from, msg),
            Input::Unreachable(id) => self.ring.on_unreachable(now, id),
            Input::Lookup { key, token } => self.ring.app_lookup(now, key, token),
            Input::Discovered(peer) => self.ring.discovered(now, peer),
        }
    }

    /// Hands what the ring core queued to the services, by service number, until nothing is
    /// left (a handler may queue more: a lookup that ends at once, a request that cannot be
    /// sent).
    fn drain(&mut self, now: Time) {
        while let Some(up) = self.ring.next_up() {
            let cx = &mut Ctx::new(&mut self.ring, now);
            match up {
                Up::Ring(ev) => {
                    for s in self.services.iter_mut() {
                        s.on_ring_event(cx, &ev);
                    }
                }
                // The ring core keeps its own notices.
                Up::Notice {
                    notice: Notice::Ring(_),
                    ..
                } => {}
                Up::Notice { from, notice } => match self.services.get_mut(notice.service()) {
                    Some(s) => s.on_notice(cx, from, notice),
                    None => cx.count_unknown(),
                },
                Up::Request { from, id, body } => {
                    let answer = match body {
                        Request::Ring(_) => Response::Unsupported,
                        body => match self.services.get_mut(body.service()) {
                            Some(s) => s.on_request(cx, from, id, body),
                            None => unsupported(cx),
                        },
                    };
                    cx.send(from, Message::Response { id, body: answer });
                }
                Up::Reply {
                    service,
                    token,
                    reply,
                } => {
                    if let Some(s) = self.services.get_mut(service) {
                        s.on_reply(cx, token, reply);
                    }
                }
                Up::Lookup {
                    service,
                    token,
                    result,
                } => {
                    if let Some(s) = self.services.get_mut(service) {
                        s.on_lookup(cx, token, result);
                    }
                }
            }
        }
    }

    /// Whether `timer` would do anything if it fired now. Deadlines of requests, lookups and
    /// broadcast hops that have completed are not wanted, and such a timer never becomes
    /// wanted again (a retry arms a new one), so a driver may drop it instead of waking up for
    /// it. Periodic timers are always wanted.
    pub fn wants_timer(&self, timer: &Timer) -> bool {
        match timer {
            Timer::Ring(t) => self.ring.wants_timer(t),
            t => self
                .services
                .get(t.service())
                .is_some_and(|s| s.wants_timer(t)),
        }
    }

    /// Checks the local invariants that must hold after every input, whatever the input was
    /// (the ring core's and every sub-protocol's bounds).
    pub fn check_invariants(&self) -> Result<(), String> {
        self.ring.check_invariants()?;
        self.services.iter().try_for_each(|s| s.check_invariants())
    }

    // ---- shortcuts for drivers -------------------------------------------------------------

    /// This node.
    pub fn me(&self) -> Peer {
        self.ring.me()
    }
    /// Lifecycle phase.
    pub fn phase(&self) -> Phase {
        self.ring.phase()
    }
    /// Whether the node is a ring member.
    pub fn is_member(&self) -> bool {
        self.ring.is_member()
    }
    /// Estimated number of ring members.
    pub fn ring_size_estimate(&self) -> u64 {
        self.ring.ring_size_estimate()
    }
    /// The exact number of ring members, when this node can know it
    /// ([`crate::ring::Ring::ring_size_exact`]).
    pub fn ring_size_exact(&self) -> Option<u64> {
        self.ring.ring_size_exact()
    }
}

/// A broadcast refusal, for drivers that look for it in a call's outputs.
pub fn refusal(outputs: &[Output], seq: u64) -> Option<BroadcastError> {
    outputs.iter().find_map(|o| match o {
        Output::Event(Event::Broadcast(BroadcastEvent::Refused { seq: s, error })) if *s == seq => {
            Some(*error)
        }
        _ => None,
    })
}
