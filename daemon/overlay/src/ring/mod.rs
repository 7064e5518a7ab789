//! The ring core: Chord ring maintenance, lookups and the one RPC engine, as a deterministic
//! state machine.
//!
//! [`Ring`] holds the routing table and drives membership: create, join, stabilize,
//! notify/rectify, check-predecessor, fix-fingers, graceful leave, the probing of lost peers
//! that merges partitions, and iterative lookups. Its RPC engine (request ids, deadlines,
//! resends, strikes and suspicion) serves the sub-protocols too ([`crate::protocol::Ctx`]).
//! The rules follow Zave's corrected Chord (see `docs/protocol.md`): never adopt a neighbour
//! without checking it is alive, successor list = successor + its list, `notify` only
//! proposes, a joiner is a member only once it holds a full successor list. Peers lost without
//! a goodbye are kept in a bounded graveyard and probed, which merges rings split by a
//! partition once it heals. Members also swap small random samples of the peers they know and
//! keep them as merge candidates, probed while peers are lost, so that each side of a partition
//! closes into one ring even when it was cut before its members knew each other
//! (`sample.rs`). It is driven through [`crate::Overlay`].

mod config;
mod lookup;
mod maintain;
mod sample;
mod table;
pub mod wire;

use std::collections::{BTreeMap, VecDeque};

pub use config::RingConfig;
pub use table::Finger;
pub use wire::{ErrorCode, RingNotice, RingRequest, RingResponse};

use crate::id::NodeId;
use crate::overlay::{Event, LookupError, Output, Timer};
use crate::protocol::{Reply, RingEvent, Up};
use crate::rng::Rng;
use crate::time::Time;
use crate::wire::{Message, Notice, Peer, Request, Response};
use lookup::{Lookup, LookupFor};
use table::Table;

/// Where the node is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Created, neither founded nor joined a ring.
    Idle,
    /// Looking for its successor.
    Joining,
    /// A ring member.
    Member,
    /// Left gracefully; ignores everything.
    Left,
}

/// The ring core's timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RingTimer {
    /// Periodic stabilize.
    Stabilize,
    /// Periodic fix-fingers.
    FixFingers,
    /// Periodic check-predecessor.
    CheckPredecessor,
    /// Periodic probe of lost peers (partition merge).
    Probe,
    /// Retry a failed join.
    JoinRetry,
    /// Deadline of the request with this id.
    Rpc(u64),
    /// Deadline of the lookup with this id.
    Lookup(u64),
}

impl From<RingTimer> for Timer {
    fn from(t: RingTimer) -> Timer {
        Timer::Ring(t)
    }
}

/// Counters for status pages and the simulator.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages handled.
    pub messages_in: u64,
    /// Messages sent.
    pub messages_out: u64,
    /// Messages dropped because they failed validation.
    pub invalid: u64,
    /// Messages of a service, version or message type this node does not speak (ignored;
    /// requests answered "unsupported").
    pub unknown: u64,
    /// Requests of ours that a peer answered "unsupported".
    pub unsupported: u64,
    /// Responses that matched no outstanding request (late, duplicated or forged).
    pub stale: u64,
    /// Requests that ran out of attempts.
    pub rpc_failures: u64,
    /// Requests refused because too many were outstanding.
    pub rpc_refused: u64,
    /// Lookups that finished with an answer.
    pub lookups_ok: u64,
    /// Lookups that failed.
    pub lookups_failed: u64,
}

/// What an outstanding request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    /// `GetState` to our successor.
    Stabilize,
    /// `GetState` to a node that may be a closer successor; `steps` counts the walk back
    /// through predecessors within one round.
    Candidate { steps: u8 },
    /// `Ping` to our predecessor.
    CheckPred,
    /// `Ping` to a node proposed as predecessor by a leaving one.
    PredCandidate,
    /// `Ping` to a lost peer.
    Probe,
    /// `Ping` to a merge candidate (`sample.rs`).
    Sample,
    /// A step of lookup `id`.
    Lookup(u64),
    /// `GetState` to the node we believe is finger `k` (or a node its predecessor pointer
    /// showed us), checking it is still the successor of the finger's start; `steps` bounds the
    /// walk back through predecessors.
    FingerCheck { k: usize, bit: u32, steps: u8 },
    /// `GetState` to the successor a joining node found.
    JoinState,
    /// `GetState` for a sample only, to the peer a join lookup started at (`sample.rs`).
    DoorSample,
    /// `Ping` announcing a new member to a peer of its join samples (`sample.rs`).
    Announce,
    /// A sub-protocol's request; the answer goes back to `service` with `token`.
    Service { service: u16, token: u64 },
}

#[derive(Clone, Debug)]
struct Pending {
    to: Peer,
    body: Request,
    purpose: Purpose,
    attempts_left: u8,
    attempts_used: u8,
}

/// What [`Ring::report_neighbour_changes`] compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Neighbours {
    succ: Option<Peer>,
    pred: Option<Peer>,
    list: u64,
}

/// Consecutive timeouts after which a peer is suspected.
const SUSPECT_AFTER: u8 = 2;

/// The ring core of one node.
#[derive(Debug)]
pub struct Ring {
    cfg: RingConfig,
    phase: Phase,
    t: Table,
    rpcs: BTreeMap<u64, Pending>,
    lookups: BTreeMap<u64, Lookup>,
    next_id: u64,
    rng: Rng,
    out: Vec<Output>,
    up: VecDeque<Up>,
    stats: Stats,
    stabilizing: bool,
    fix_next: usize,
    fix_inflight: bool,
    fix_interval: std::time::Duration,
    fix_cycle_changed: bool,
    merge_inflight: bool,
    join_via: Vec<Peer>,
    join_attempt: u32,
    /// `Input::JoinOrFound`: found a ring when every `join_via` peer is waiting too and this
    /// node's id is the lowest.
    found_if_waiting: bool,
    /// The join attempt at which each `join_via` peer last answered "not a member".
    join_waiting: BTreeMap<NodeId, u32>,
    /// Members' addresses kept for merging a split side (`sample.rs`).
    cands: sample::Candidates,
    /// When stabilize next asks for a sample.
    next_sample: Time,
    /// Until then (`sample_interval` after becoming a member) every stabilize asks for one.
    young_until: Time,
    /// When a peer was last suspected (failed): merge candidates are probed for
    /// `candidate_window` after it.
    last_failure: Option<Time>,
    /// The sample's own randomness, apart from `rng`: sampling does not move the timers.
    sample_rng: Rng,
    /// The announcement of a join in progress (`sample.rs`).
    news: sample::JoinNews,
}

impl Ring {
    /// A ring core with identity `me`; `seed` makes its timer jitter and request ids
    /// reproducible.
    pub(crate) fn new(me: Peer, cfg: RingConfig, seed: u64) -> Ring {
        let mut rng = Rng::new(seed ^ me.id.high_u64());
        let sample_rng = Rng::new(seed ^ me.id.high_u64() ^ 0x5a3c_96e1_0f87_d24b);
        let next_id = rng.next_u64() >> 16;
        Ring {
            fix_interval: cfg.fix_fingers_min,
            cfg,
            phase: Phase::Idle,
            t: Table::new(me),
            rpcs: BTreeMap::new(),
            lookups: BTreeMap::new(),
            next_id,
            rng,
            out: Vec::new(),
            up: VecDeque::new(),
            stats: Stats::default(),
            stabilizing: false,
            fix_next: 0,
            fix_inflight: false,
            fix_cycle_changed: false,
            merge_inflight: false,
            join_via: Vec::new(),
            join_attempt: 0,
            found_if_waiting: false,
            join_waiting: BTreeMap::new(),
            cands: sample::Candidates::default(),
            next_sample: Time::from_micros(0),
            young_until: Time::from_micros(0),
            last_failure: None,
            sample_rng,
            news: sample::JoinNews::default(),
        }
    }

    // ---- accessors -------------------------------------------------------------------------

    /// This node.
    pub fn me(&self) -> Peer {
        self.t.me
    }
    /// Lifecycle phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }
    /// Whether the node is a ring member.
    pub fn is_member(&self) -> bool {
        self.phase == Phase::Member
    }
    /// The predecessor, if known.
    pub fn predecessor(&self) -> Option<Peer> {
        self.t.pred
    }
    /// Whether this node is the successor of `key` (it is alone, or `key ∈ (pred, self]`).
    pub fn owns(&self, key: &NodeId) -> bool {
        self.t.owns(key)
    }
    /// The first successor, if any.
    pub fn successor(&self) -> Option<Peer> {
        self.t.successor()
    }
    /// The successor list (empty: alone in the ring).
    pub fn successors(&self) -> &[Peer] {
        &self.t.succs
    }
    /// The distinct finger chain.
    pub fn fingers(&self) -> &[Finger] {
        &self.t.fingers
    }
    /// Whether `id` failed recently and is routed around.
    pub fn is_suspect(&self, id: &NodeId, now: Time) -> bool {
        self.t.is_suspect(id, now)
    }
    /// Clockwise distance from this node to `id`.
    pub fn dist(&self, id: &NodeId) -> NodeId {
        self.t.dist(id)
    }
    /// Estimated number of ring members.
    pub fn ring_size_estimate(&self) -> u64 {
        self.t.size_estimate()
    }
    /// The exact number of ring members, when this node can know it: it is a member and its
    /// successor list runs all the way round to itself (or it is alone and lost nobody).
    /// `None` otherwise: then only [`Ring::ring_size_estimate`] is known.
    pub fn ring_size_exact(&self) -> Option<u64> {
        if self.phase != Phase::Member {
            return None;
        }
        self.t.exact_size()
    }
    /// The peers suspected of having failed (they did not answer, or their connection
    /// failed) whose suspicion has not yet expired at `now`; at most `max_suspects`.
    pub fn suspects(&self, now: Time) -> Vec<NodeId> {
        self.t.suspects(now)
    }
    /// The merge candidates (`sample.rs`): each peer, and whether it spoke to us directly.
    pub fn merge_candidates(&self) -> Vec<(Peer, bool)> {
        self.cands.iter().map(|c| (c.peer, c.confirmed)).collect()
    }
    /// Peers lost without a goodbye, still probed.
    pub fn lost_peers(&self) -> Vec<Peer> {
        self.t.graveyard.iter().map(|l| l.peer).collect()
    }
    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
    /// The configuration in force.
    pub fn config(&self) -> &RingConfig {
        &self.cfg
    }
    /// Live peers this node knows (successors, fingers, predecessor), without repeats.
    pub fn known_peers(&self) -> Vec<Peer> {
        let mut v: Vec<Peer> = self.t.succs.clone();
        v.extend(self.t.fingers.iter().map(|f| f.peer));
        v.extend(self.t.pred);
        v.sort_by_key(|p| p.id);
        v.dedup_by_key(|p| p.id);
        v
    }

    /// Checks the local invariants that must hold after every input, whatever the input was:
    /// the successor list runs clockwise without repeats or us and within its bound, fingers are
    /// distinct and ordered, no neighbour is us, and every queue is within its bound.
    pub fn check_invariants(&self) -> Result<(), String> {
        let me = self.t.me.id;
        if self.t.succs.len() > self.cfg.successors {
            return Err(format!("successor list of {} entries", self.t.succs.len()));
        }
        crate::wire::check_ring_order(&me, &self.t.succs)
            .map_err(|e| format!("successor list: {e}"))?;
        let fingers: Vec<Peer> = self.t.fingers.iter().map(|f| f.peer).collect();
        crate::wire::check_ring_order(&me, &fingers).map_err(|e| format!("fingers: {e}"))?;
        if self.t.fingers.windows(2).any(|w| w[0].bit >= w[1].bit) {
            return Err("finger exponents not increasing".into());
        }
        if self.t.pred.is_some_and(|p| p.id == me) {
            return Err("predecessor is the node itself".into());
        }
        if self.rpcs.len() > self.cfg.max_pending_rpcs || self.lookups.len() > self.cfg.max_lookups
        {
            return Err("pending work over its bound".into());
        }
        if self.t.graveyard.len() > self.cfg.graveyard_size {
            return Err("graveyard over its bound".into());
        }
        self.cands.check(&self.cfg)
    }

    /// Whether ring timer `timer` would do anything if it fired now.
    pub fn wants_timer(&self, timer: &RingTimer) -> bool {
        match timer {
            RingTimer::Rpc(id) => self.rpcs.contains_key(id),
            RingTimer::Lookup(id) => self.lookups.contains_key(id),
            RingTimer::Stabilize
            | RingTimer::FixFingers
            | RingTimer::CheckPredecessor
            | RingTimer::Probe
            | RingTimer::JoinRetry => true,
        }
    }

    // ---- for the overlay -------------------------------------------------------------------

    /// Successor, predecessor and a fingerprint of the successor list, to compare after an
    /// input.
    pub(crate) fn neighbours(&self) -> Neighbours {
        Neighbours {
            succ: self.t.successor(),
            pred: self.t.pred,
            list: self.t.succs.iter().fold(self.t.succs.len() as u64, |h, p| {
                h.rotate_left(7) ^ p.id.high_u64()
            }),
        }
    }

    /// Raises the neighbour-change events for what changed since `before`, for the
    /// application and (as [`RingEvent::NeighboursChanged`]) for the sub-protocols.
    pub(crate) fn report_neighbour_changes(&mut self, before: Neighbours) {
        if self.phase != Phase::Member {
            return;
        }
        let now = self.neighbours();
        if now.succ != before.succ {
            self.on_successor_changed();
            self.event(Event::SuccessorChanged(now.succ));
        }
        if now.pred != before.pred {
            self.event(Event::PredecessorChanged(now.pred));
        }
        if now != before {
            self.up.push_back(Up::Ring(RingEvent::NeighboursChanged));
        }
    }

    pub(crate) fn take_outputs(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.out)
    }

    pub(crate) fn next_up(&mut self) -> Option<Up> {
        self.up.pop_front()
    }

    pub(crate) fn push(&mut self, o: Output) {
        self.out.push(o);
    }

    pub(crate) fn count_invalid(&mut self) {
        self.stats.invalid += 1;
    }

    pub(crate) fn count_unknown(&mut self) {
        self.stats.unknown += 1;
    }

    pub(crate) fn app_lookup(&mut self, now: Time, key: NodeId, token: u64) {
        self.start_lookup(now, key, LookupFor::App(token), None);
    }

    pub(crate) fn service_lookup(&mut self, now: Time, key: NodeId, service: u16, token: u64) {
        self.start_lookup(now, key, LookupFor::Service { service, token }, None);
    }

    pub(crate) fn service_request(
        &mut self,
        now: Time,
        to: Peer,
        body: Request,
        service: u16,
        token: u64,
    ) -> bool {
        self.request(now, to, body, Purpose::Service { service, token })
            .is_some()
    }

    /// A sub-protocol saw `peer` fail as badly as repeated timeouts.
    pub(crate) fn peer_failed(&mut self, now: Time, peer: Peer) {
        if self.t.strike(peer.id, SUSPECT_AFTER) >= SUSPECT_AFTER {
            self.suspect(now, peer);
        }
    }

    /// `base` with ±25 % jitter, so that nodes do not act in lockstep.
    pub(crate) fn jittered(&mut self, base: std::time::Duration) -> std::time::Duration {
        let us = base.as_micros() as u64;
        let spread = us / 2;
        std::time::Duration::from_micros(us - us / 4 + self.rng.below(spread.max(1)))
    }

    // ---- plumbing --------------------------------------------------------------------------

    fn event(&mut self, e: Event) {
        self.out.push(Output::Event(e));
    }

    pub(crate) fn send(&mut self, to: Peer, msg: Message) {
        self.stats.messages_out += 1;
        self.out.push(Output::Send { to, msg });
    }

    fn set_timer(&mut self, at: Time, timer: RingTimer) {
        self.out.push(Output::SetTimer {
            at,
            timer: Timer::Ring(timer),
        });
    }

    /// Sends a request and arms its deadline. Returns `None` when too many are outstanding.
    fn request(
        &mut self,
        now: Time,
        to: Peer,
        body: impl Into<Request>,
        purpose: Purpose,
    ) -> Option<u64> {
        let body = body.into();
        if self.rpcs.len() >= self.cfg.max_pending_rpcs {
            self.stats.rpc_refused += 1;
            return None;
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        // Routing steps do not resend: the lookup moves on to another candidate instead. The
        // final liveness check does resend: falling back to the next successor after a lost
        // ping would give a wrong answer.
        // (More tries for the confirming ping would make lossy links safer but slow down every
        // lookup that meets a run of crashed successors; see docs/protocol.md.)
        let attempts_left = match (purpose, &body) {
            (Purpose::Lookup(_), Request::Ring(RingRequest::FindSuccessor { .. })) => 0,
            _ => self.cfg.rpc_retries,
        };
        self.send(
            to,
            Message::Request {
                id,
                body: body.clone(),
            },
        );
        self.set_timer(now + self.cfg.rpc_timeout, RingTimer::Rpc(id));
        self.rpcs.insert(
            id,
            Pending {
                to,
                body,
                purpose,
                attempts_left,
                attempts_used: 0,
            },
        );
        Some(id)
    }

    pub(crate) fn on_timer(&mut self, now: Time, timer: RingTimer) {
        match timer {
            RingTimer::Rpc(id) => self.on_rpc_timeout(now, id),
            RingTimer::Lookup(id) => self.on_lookup_deadline(now, id),
            RingTimer::Stabilize => self.tick_stabilize(now),
            RingTimer::FixFingers => self.tick_fix_fingers(now),
            RingTimer::CheckPredecessor => self.tick_check_predecessor(now),
            RingTimer::Probe => self.tick_probe(now),
            RingTimer::JoinRetry => self.retry_join(now),
        }
    }

    fn on_rpc_timeout(&mut self, now: Time, id: u64) {
        let Some(p) = self.rpcs.get_mut(&id) else {
            return;
        };
        if p.attempts_left > 0 {
            p.attempts_left -= 1;
            p.attempts_used += 1;
            let (to, body) = (p.to, p.body.clone());
            self.send(to, Message::Request { id, body });
            self.set_timer(now + self.cfg.rpc_timeout, RingTimer::Rpc(id));
            return;
        }
        if let Some(p) = self.rpcs.remove(&id) {
            self.rpc_failed(now, p);
        }
    }

    pub(crate) fn on_unreachable(&mut self, now: Time, id: NodeId) {
        let failed: Vec<u64> = self
            .rpcs
            .iter()
            .filter(|(_, p)| p.to.id == id)
            .map(|(k, _)| *k)
            .collect();
        // The driver saw the connection fail: as good as repeated timeouts.
        self.t.strike(id, SUSPECT_AFTER);
        if failed.is_empty()
            && let Some(peer) = self.known_peers().into_iter().find(|p| p.id == id)
        {
            self.suspect(now, peer);
        }
        for k in failed {
            if let Some(p) = self.rpcs.remove(&k) {
                self.rpc_failed(now, p);
            }
        }
        self.up.push_back(Up::Ring(RingEvent::Unreachable(id)));
    }

    fn suspect(&mut self, now: Time, peer: Peer) {
        if peer.id == self.t.me.id {
            return;
        }
        let was = self.t.is_suspect(&peer.id, now);
        self.t.suspect(peer, now, &self.cfg);
        self.last_failure = Some(now);
        if !was {
            self.event(Event::PeerSuspected(peer.id));
            self.up
                .push_back(Up::Ring(RingEvent::PeerSuspected(peer.id)));
        }
    }

    fn rpc_failed(&mut self, now: Time, p: Pending) {
        self.stats.rpc_failures += 1;
        if p.purpose == Purpose::Probe {
            self.probe_failed(now, p.to);
            return;
        }
        if matches!(p.purpose, Purpose::Sample | Purpose::Announce) {
            // A candidate is not a neighbour: its silence costs it its entry, not a suspicion.
            self.cands.failed(&p.to.id, now, &self.cfg);
            return;
        }
        // A request that was resent has timed out twice: suspect at once. A single timeout of a
        // routing step only counts; the second one in a row makes the peer a suspect.
        let strikes = if p.attempts_used > 0 {
            SUSPECT_AFTER
        } else {
            1
        };
        if self.t.strike(p.to.id, strikes) >= SUSPECT_AFTER {
            self.suspect(now, p.to);
        }
        self.purpose_failed(now, p.purpose, p.to);
    }

    /// What a request was for could not be done (no answer, or no answer it could use).
    fn purpose_failed(&mut self, now: Time, purpose: Purpose, to: Peer) {
        match purpose {
            Purpose::Stabilize => {
                self.stabilizing = false;
                self.stabilize(now);
            }
            Purpose::Candidate { .. } => self.notify_successor(),
            Purpose::CheckPred
            | Purpose::PredCandidate
            | Purpose::Probe
            | Purpose::Sample
            | Purpose::Announce
            | Purpose::DoorSample => {}
            Purpose::Lookup(lid) => self.lookup_step(now, lid),
            Purpose::JoinState => self.join_failed(now),
            Purpose::FingerCheck { k, bit, .. } => self.finger_check_failed(now, k, bit),
            Purpose::Service { service, token } => self.up.push_back(Up::Reply {
                service,
                token,
                reply: Reply::Failed { to },
            }),
        }
    }

    pub(crate) fn on_message(&mut self, now: Time, from: Peer, msg: Message) {
        self.stats.messages_in += 1;
        if from.id == self.t.me.id {
            self.stats.invalid += 1;
            return;
        }
        let valid = match &msg {
            Message::Response {
                body: Response::Ring(r),
                ..
            } => r.validate(&from.id),
            Message::Notice(Notice::Ring(n)) => n.validate(&from.id),
            _ => Ok(()),
        };
        if valid.is_err() {
            self.stats.invalid += 1;
            // A malformed answer still settles the request it claims to answer: as a failure.
            if let Message::Response { id, .. } = msg
                && self.rpcs.get(&id).is_some_and(|p| p.to.id == from.id)
                && let Some(p) = self.rpcs.remove(&id)
            {
                self.rpc_failed(now, p);
            }
            return;
        }
        self.heard_from(now, from);
        self.heard_directly(now, from);
        self.observe_message(now, from, &msg);
        match msg {
            Message::Request {
                id,
                body: Request::Ring(body),
            } => self.on_request(now, from, id, body),
            Message::Request { id, body } => self.up.push_back(Up::Request { from, id, body }),
            Message::Response { id, body } => {
                let Some(p) = self.rpcs.get(&id) else {
                    self.stats.stale += 1;
                    return;
                };
                if p.to.id != from.id {
                    self.stats.stale += 1;
                    return;
                }
                if let Some(p) = self.rpcs.remove(&id) {
                    self.on_response(now, p, from, body);
                }
            }
            Message::Notice(Notice::Ring(n)) => self.on_notice(now, from, n),
            Message::Notice(notice) => self.up.push_back(Up::Notice { from, notice }),
        }
    }

    fn on_request(&mut self, now: Time, from: Peer, id: u64, body: RingRequest) {
        let resp = match body {
            RingRequest::Ping => RingResponse::Pong,
            RingRequest::GetState { fingers, sample } => {
                self.state_response(from.id, fingers, sample)
            }
            RingRequest::FindSuccessor { key } => self.route_step(now, &key),
        };
        self.send(
            from,
            Message::Response {
                id,
                body: Response::Ring(resp),
            },
        );
    }

    fn on_response(&mut self, now: Time, p: Pending, from: Peer, body: Response) {
        if body == Response::Unsupported {
            self.stats.unsupported += 1;
        }
        let body = match (p.purpose, body) {
            (Purpose::Service { service, token }, body) => {
                let reply = match body {
                    Response::Unsupported => Reply::Unsupported { from },
                    body => Reply::Answer { from, body },
                };
                self.up.push_back(Up::Reply {
                    service,
                    token,
                    reply,
                });
                return;
            }
            (_, Response::Ring(r)) => {
                if let (
                    RingResponse::State { sample, .. },
                    Request::Ring(RingRequest::GetState { sample: asked, .. }),
                ) = (&r, &p.body)
                {
                    self.learn_sample(now, from.id, sample, usize::from(*asked));
                    if matches!(p.purpose, Purpose::JoinState | Purpose::DoorSample) {
                        self.announce(now, from.id, sample, usize::from(*asked));
                    }
                }
                r
            }
            // A ring request answered in another service's words (or "unsupported"): the
            // peer is alive but cannot serve it, like a node that is not a member.
            (_, _) => RingResponse::Error(ErrorCode::NotMember),
        };
        match p.purpose {
            Purpose::Lookup(lid) => self.lookup_response(now, lid, from, body),
            Purpose::Stabilize => self.stabilize_response(now, from, body),
            Purpose::Candidate { steps } => self.candidate_response(now, from, body, steps),
            Purpose::JoinState => self.join_state_response(now, from, body),
            Purpose::FingerCheck { k, bit, steps } => {
                self.finger_check_response(now, from, body, k, bit, steps)
            }
            Purpose::CheckPred | Purpose::Probe | Purpose::DoorSample => {}
            Purpose::Sample => self.candidate_answered(now, from),
            Purpose::Announce => self.announce_answered(now, from),
            Purpose::PredCandidate => self.pred_candidate_alive(now, from),
            Purpose::Service { .. } => {}
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
