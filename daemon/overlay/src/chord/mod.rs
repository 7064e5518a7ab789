//! Chord ring maintenance and lookups as a deterministic state machine.
//!
//! A [`Node`] is driven by [`Node::handle`]: the driver passes the current [`Time`] and one
//! [`Input`]; the node answers with [`Output`]s (messages to send, timers to arm, events). The
//! rules follow Zave's corrected Chord (see `docs/protocol.md`): never adopt a neighbour without
//! checking it is alive, successor list = successor + its list, `notify` only proposes, a joiner
//! is a member only once it holds a full successor list. Peers lost without a goodbye are kept in
//! a bounded graveyard and probed, which merges rings split by a partition once it heals.

mod bcast;
mod io;
mod lookup;
mod maintain;
mod replies;
mod table;

use std::collections::BTreeMap;

pub use bcast::BroadcastError;
pub use io::{Event, Input, LookupError, Output, Timer};
pub use table::Finger;

use crate::config::ChordConfig;
use crate::id::NodeId;
use crate::rng::Rng;
use crate::time::Time;
use crate::wire::{Message, Peer, Request, Response};
use lookup::{Lookup, Purpose as LookupPurpose};
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

/// Counters for status pages and the simulator.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages handled.
    pub messages_in: u64,
    /// Messages sent.
    pub messages_out: u64,
    /// Messages dropped because they failed validation.
    pub invalid: u64,
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
    /// A step of lookup `id`.
    Lookup(u64),
    /// `GetState` to the node we believe is finger `k` (or a node its predecessor pointer
    /// showed us), checking it is still the successor of the finger's start; `steps` bounds the
    /// walk back through predecessors.
    FingerCheck { k: usize, bit: u32, steps: u8 },
    /// `GetState` to the successor a joining node found.
    JoinState,
    /// `BcastStatus` to the child of broadcast hop `hop`.
    BcastStatus { hop: u64 },
}

#[derive(Clone, Debug)]
struct Pending {
    to: Peer,
    body: Request,
    purpose: Purpose,
    attempts_left: u8,
    attempts_used: u8,
}

/// Consecutive timeouts after which a peer is suspected.
const SUSPECT_AFTER: u8 = 2;

/// One Chord node.
#[derive(Debug)]
pub struct Node {
    cfg: ChordConfig,
    phase: Phase,
    t: Table,
    rpcs: BTreeMap<u64, Pending>,
    lookups: BTreeMap<u64, Lookup>,
    next_id: u64,
    rng: Rng,
    out: Vec<Output>,
    stats: Stats,
    stabilizing: bool,
    fix_next: usize,
    fix_inflight: bool,
    fix_interval: std::time::Duration,
    fix_cycle_changed: bool,
    merge_inflight: bool,
    join_via: Vec<Peer>,
    join_attempt: u32,
    bc: bcast::BcState,
    replies: replies::Replies,
}

impl Node {
    /// A node with identity `me`; `seed` makes its timer jitter and request ids reproducible.
    pub fn new(me: Peer, cfg: ChordConfig, seed: u64) -> Node {
        let mut rng = Rng::new(seed ^ me.id.high_u64());
        let next_id = rng.next_u64() >> 16;
        let bc = bcast::BcState::new(cfg.broadcast.clone());
        Node {
            fix_interval: cfg.fix_fingers_min,
            cfg,
            phase: Phase::Idle,
            t: Table::new(me),
            rpcs: BTreeMap::new(),
            lookups: BTreeMap::new(),
            next_id,
            rng,
            out: Vec::new(),
            stats: Stats::default(),
            stabilizing: false,
            fix_next: 0,
            fix_inflight: false,
            fix_cycle_changed: false,
            merge_inflight: false,
            join_via: Vec::new(),
            join_attempt: 0,
            bc,
            replies: replies::Replies::default(),
        }
    }

    /// Feeds one input at time `now` and returns what the driver must do.
    pub fn handle(&mut self, now: Time, input: Input) -> Vec<Output> {
        let succ = self.t.successor();
        let pred = self.t.pred;
        if self.phase != Phase::Left {
            // A timer nobody wants must do nothing at all (`wants_timer`'s promise).
            let idle = matches!(&input, Input::Timer(t) if !self.wants_timer(t));
            self.dispatch(now, input);
            if !idle {
                self.flush_replies_if_due(now);
            }
        }
        if self.phase == Phase::Member {
            if self.t.successor() != succ {
                self.on_successor_changed();
                self.event(Event::SuccessorChanged(self.t.successor()));
            }
            if self.t.pred != pred {
                self.event(Event::PredecessorChanged(self.t.pred));
            }
        }
        std::mem::take(&mut self.out)
    }

    fn dispatch(&mut self, now: Time, input: Input) {
        match input {
            Input::Create => self.create(now),
            Input::Join { via } => self.join(now, via),
            Input::Message { from, msg } => self.on_message(now, from, msg),
            Input::Timer(timer) => self.on_timer(now, timer),
            Input::Unreachable(id) => self.on_unreachable(now, id),
            Input::Lookup { key, token } => {
                self.start_lookup(now, key, LookupPurpose::App(token), None);
            }
            Input::Leave => self.leave(),
            Input::Broadcast { seq, payload } => self.originate(now, seq, payload),
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
    /// The successor list (empty: alone in the ring).
    pub fn successors(&self) -> &[Peer] {
        &self.t.succs
    }
    /// The distinct finger chain.
    pub fn fingers(&self) -> &[Finger] {
        &self.t.fingers
    }
    /// Estimated number of ring members.
    pub fn ring_size_estimate(&self) -> u64 {
        self.t.size_estimate()
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
        if self.replies.len() > replies::MAX_HELD {
            return Err("held replies over their bound".into());
        }
        Ok(())
    }

    /// Whether `timer` would do anything if it fired now. Deadlines of requests, lookups and
    /// broadcast hops that have completed are not wanted, and such a timer never becomes
    /// wanted again (a retry arms a new one), so a driver may drop it instead of waking up for
    /// it. Periodic timers are always wanted.
    pub fn wants_timer(&self, timer: &Timer) -> bool {
        match timer {
            Timer::Rpc(id) => self.rpcs.contains_key(id),
            Timer::Lookup(id) => self.lookups.contains_key(id),
            Timer::BcastAck(_) | Timer::BcastDone(_) => self.wants_bcast_timer(timer),
            Timer::BcastReplies(batch) => self.wants_replies_timer(*batch),
            Timer::Stabilize
            | Timer::FixFingers
            | Timer::CheckPredecessor
            | Timer::Probe
            | Timer::JoinRetry
            | Timer::AntiEntropy => true,
        }
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
    /// The configuration in force.
    pub fn config(&self) -> &ChordConfig {
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

    // ---- plumbing --------------------------------------------------------------------------

    fn event(&mut self, e: Event) {
        self.out.push(Output::Event(e));
    }

    fn send(&mut self, to: Peer, msg: Message) {
        self.stats.messages_out += 1;
        self.out.push(Output::Send { to, msg });
    }

    fn set_timer(&mut self, at: Time, timer: Timer) {
        self.out.push(Output::SetTimer { at, timer });
    }

    /// `base` with ±25 % jitter, so that nodes do not act in lockstep.
    fn jittered(&mut self, base: std::time::Duration) -> std::time::Duration {
        let us = base.as_micros() as u64;
        let spread = us / 2;
        std::time::Duration::from_micros(us - us / 4 + self.rng.below(spread.max(1)))
    }

    /// Sends a request and arms its deadline. Returns `None` when too many are outstanding.
    fn request(&mut self, now: Time, to: Peer, body: Request, purpose: Purpose) -> Option<u64> {
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
            (Purpose::Lookup(_), Request::FindSuccessor { .. }) => 0,
            _ => self.cfg.rpc_retries,
        };
        self.send(
            to,
            Message::Request {
                id,
                body: body.clone(),
            },
        );
        self.set_timer(now + self.cfg.rpc_timeout, Timer::Rpc(id));
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

    fn on_timer(&mut self, now: Time, timer: Timer) {
        match timer {
            Timer::Rpc(id) => self.on_rpc_timeout(now, id),
            Timer::Lookup(id) => self.on_lookup_deadline(now, id),
            Timer::Stabilize => self.tick_stabilize(now),
            Timer::FixFingers => self.tick_fix_fingers(now),
            Timer::CheckPredecessor => self.tick_check_predecessor(now),
            Timer::Probe => self.tick_probe(now),
            Timer::JoinRetry => self.retry_join(now),
            Timer::BcastAck(hop) => self.on_bcast_ack_timer(now, hop),
            Timer::BcastDone(hop) => self.on_bcast_done_timer(now, hop),
            Timer::BcastReplies(batch) => self.on_replies_timer(batch),
            Timer::AntiEntropy => self.tick_anti_entropy(now),
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
            self.set_timer(now + self.cfg.rpc_timeout, Timer::Rpc(id));
            return;
        }
        if let Some(p) = self.rpcs.remove(&id) {
            self.rpc_failed(now, p);
        }
    }

    fn on_unreachable(&mut self, now: Time, id: NodeId) {
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
        self.bcast_unreachable(now, id);
    }

    fn suspect(&mut self, now: Time, peer: Peer) {
        if peer.id == self.t.me.id {
            return;
        }
        let was = self.t.is_suspect(&peer.id, now);
        self.t.suspect(peer, now, &self.cfg);
        if !was {
            self.event(Event::PeerSuspected(peer.id));
        }
    }

    fn rpc_failed(&mut self, now: Time, p: Pending) {
        self.stats.rpc_failures += 1;
        if p.purpose == Purpose::Probe {
            self.probe_failed(now, p.to);
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
        match p.purpose {
            Purpose::Stabilize => {
                self.stabilizing = false;
                self.stabilize(now);
            }
            Purpose::Candidate { .. } => self.notify_successor(),
            Purpose::CheckPred | Purpose::PredCandidate | Purpose::Probe => {}
            Purpose::Lookup(lid) => self.lookup_step(now, lid),
            Purpose::JoinState => self.join_failed(now),
            Purpose::BcastStatus { hop } => self.bcast_status_failed(now, hop),
            Purpose::FingerCheck { k, bit, .. } => self.finger_check_failed(now, k, bit),
        }
    }

    fn on_message(&mut self, now: Time, from: Peer, msg: Message) {
        self.stats.messages_in += 1;
        if from.id == self.t.me.id {
            self.stats.invalid += 1;
            return;
        }
        if let Err(e) = msg.validate(&from.id) {
            self.stats.invalid += 1;
            match e {
                crate::wire::InvalidMessage::BadId => self.bc_dropped_bad_id(),
                crate::wire::InvalidMessage::Oversized => self.bc_dropped_oversized(),
                _ => {}
            }
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
        self.observe_message(now, from, &msg);
        match msg {
            Message::Request { id, body } => self.on_request(now, from, id, body),
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
            Message::Notice(n) => self.on_notice(now, from, n),
            Message::Bcast(b) => self.on_bcast(now, from, b),
        }
    }

    fn on_request(&mut self, now: Time, from: Peer, id: u64, body: Request) {
        let resp = match body {
            Request::Ping => Response::Pong,
            Request::GetState { fingers } => self.state_response(fingers),
            Request::FindSuccessor { key } => self.route_step(now, &key),
            Request::BcastStatus { id, origin, seq } => {
                Response::BcastStatus(self.hop_state(&id, &origin, seq))
            }
        };
        self.send(from, Message::Response { id, body: resp });
    }

    fn on_response(&mut self, now: Time, p: Pending, from: Peer, body: Response) {
        match p.purpose {
            Purpose::Lookup(lid) => self.lookup_response(now, lid, from, body),
            Purpose::Stabilize => self.stabilize_response(now, from, body),
            Purpose::Candidate { steps } => self.candidate_response(now, from, body, steps),
            Purpose::JoinState => self.join_state_response(now, from, body),
            Purpose::FingerCheck { k, bit, steps } => {
                self.finger_check_response(now, from, body, k, bit, steps)
            }
            Purpose::CheckPred | Purpose::Probe => {}
            Purpose::PredCandidate => self.pred_candidate_alive(now, from),
            Purpose::BcastStatus { hop } => self.bcast_status_response(now, hop, body),
        }
    }
}

#[cfg(test)]
mod bcast_tests;
#[cfg(test)]
mod tests;
