//! The broadcast state machine: the El-Ansary spanning tree over our fingers and successors,
//! per-hop acks with resend and re-routing, completion acks; anti-entropy with the ring
//! neighbours is `entropy.rs`. It reads the ring and acts through a [`Ctx`]; types, bounds and
//! the message memory live in [`crate::broadcast`].

use std::collections::BTreeMap;
use std::fmt;

use super::memory::Memory;
use super::numbering::{NUMBERING_TOKEN, Numbering};
use super::replies::Replies;
use super::trace::{TRACE_TOKEN, Tracing, Via};
use super::wire::{Bcast, BroadcastRequest, BroadcastResponse};
use super::{
    BroadcastConfig, BroadcastError, BroadcastEvent, BroadcastStats, BroadcastTimer, Envelope,
    HopState, MAX_PAYLOAD, MsgId, Validator,
};
use crate::common::rate::RateLimiter;
use crate::id::NodeId;
use crate::overlay::Event;
use crate::protocol::{Ctx, Reply, RingEvent};
use crate::rng::Rng;
use crate::time::Time;
use crate::wire::{BROADCAST, Message, Notice, Peer, Request, Response};

/// Parents remembered per message (a message reaches a node more than once only after
/// re-routing).
const MAX_PARENTS: usize = 8;

/// A message this node is forwarding: it reports `Done` to its parents once every child hop is
/// resolved.
#[derive(Debug)]
struct Task {
    env: Envelope,
    depth: u8,
    parents: Vec<(Peer, u64)>,
    open: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Waiting for the child's ack.
    Ack,
    /// Acked; waiting for the child's completion.
    Done,
    /// Asking the child how far it is.
    Status,
    /// Looking for the next live node of the arc.
    Lookup,
}

/// One child transmission: the message, the child, and the arc it must cover.
#[derive(Debug)]
struct Hop {
    msg: MsgId,
    child: Peer,
    limit: NodeId,
    stage: Stage,
    /// When the timer of the current stage fires: an earlier timer of the hop (one armed
    /// before a resend or a re-route) is ignored, so a timer that is not wanted once is never
    /// wanted again ([`crate::Overlay::wants_timer`]).
    deadline: Time,
    attempts: u8,
    waits: u32,
    reroutes: u8,
}

/// The node's broadcast state.
pub struct Broadcast {
    pub(super) cfg: BroadcastConfig,
    pub(super) memory: Memory,
    pub(super) rate: RateLimiter,
    tasks: BTreeMap<MsgId, Task>,
    hops: BTreeMap<u64, Hop>,
    validator: Option<Validator>,
    pub(super) stats: BroadcastStats,
    pub(super) ae_to_pred: bool,
    /// Names of our child hops (starting at a random number).
    next_hop: u64,
    pub(super) replies: Replies,
    pub(super) tracing: Tracing,
    pub(super) numbering: Numbering,
}

impl fmt::Debug for Broadcast {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broadcast")
            .field("stored", &self.memory.len())
            .field("tasks", &self.tasks.len())
            .field("hops", &self.hops.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Broadcast {
    pub(crate) fn new(cfg: BroadcastConfig, seed: u64) -> Broadcast {
        Broadcast {
            memory: Memory::new(cfg.max_stored, cfg.max_origins, cfg.max_out_of_order),
            rate: RateLimiter::new(cfg.rate_per_sec, cfg.rate_burst, cfg.max_origins),
            tasks: BTreeMap::new(),
            hops: BTreeMap::new(),
            validator: None,
            stats: BroadcastStats::default(),
            ae_to_pred: false,
            next_hop: Rng::new(seed).next_u64() >> 16,
            replies: Replies::default(),
            tracing: Tracing::new(cfg.trace_keep),
            numbering: Numbering::default(),
            cfg,
        }
    }

    /// Installs the application's envelope check (signature against the origin's key).
    pub(crate) fn set_validator(&mut self, v: Validator) {
        self.validator = Some(v);
    }

    /// How long answers to a parent may be held (`replies.rs`).
    pub(super) fn reply_delay(&self) -> std::time::Duration {
        self.cfg.reply_delay
    }

    /// Counts `n` answers sent to one parent together.
    pub(super) fn count_replies(&mut self, n: u64) {
        self.stats.replies += n;
        self.stats.reply_batches += 1;
    }

    /// Broadcast counters.
    pub fn stats(&self) -> &BroadcastStats {
        &self.stats
    }

    /// Messages being forwarded and child hops outstanding (for status pages and tests).
    pub fn broadcasts_in_flight(&self) -> (usize, usize) {
        (self.tasks.len(), self.hops.len())
    }

    /// The bounds every input must leave intact.
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        if self.replies.len() > super::replies::MAX_HELD {
            return Err("held replies over their bound".into());
        }
        self.tracing.check_invariants()
    }

    /// Whether broadcast (`origin`, `seq`) was seen here (delivered, or below its origin's head).
    pub fn is_seen(&self, origin: &NodeId, seq: u64) -> bool {
        self.memory.is_seen(origin, seq)
    }

    /// Forgets that (`origin`, `seq`) was seen ([`Memory::forget`]): anti-entropy asks the
    /// neighbours for it again.
    pub(crate) fn forget(&mut self, origin: &NodeId, seq: u64) {
        self.memory.forget(origin, seq);
    }

    pub(super) fn valid(&self, env: &Envelope) -> bool {
        self.validator.as_ref().is_none_or(|v| v(env))
    }

    // ---- origin ------------------------------------------------------------------------------

    /// Whether this node may broadcast at `now`: a member, not too many broadcasts in flight,
    /// a token in its own bucket. Takes nothing: [`Broadcast::originate`] checks the same.
    pub fn admits(&self, ring: &crate::Ring, now: Time) -> Result<(), BroadcastError> {
        if !ring.is_member() {
            return Err(BroadcastError::NotMember);
        }
        if self.numbering.learning(now) {
            return Err(BroadcastError::Numbering);
        }
        if self.tasks.len() >= self.cfg.max_tasks {
            return Err(BroadcastError::Busy);
        }
        let retry_after = self.rate.wait(&ring.me().id, now);
        if !retry_after.is_zero() {
            return Err(BroadcastError::RateLimited { retry_after });
        }
        Ok(())
    }

    pub(crate) fn originate(&mut self, cx: &mut Ctx<'_>, seq: u64, payload: Vec<u8>) {
        let me = cx.me().id;
        let refuse = if let Err(e) = self.admits(cx.ring(), cx.now()) {
            Some(e)
        } else if payload.len() > MAX_PAYLOAD {
            Some(BroadcastError::TooLarge)
        } else if seq <= self.numbering.high() || self.memory.is_seen(&me, seq) {
            Some(BroadcastError::SeqUsed)
        } else if !self.rate.allow(&me, cx.now()) {
            // `admits` saw a token at this very time.
            Some(BroadcastError::RateLimited {
                retry_after: self.rate.wait(&me, cx.now()),
            })
        } else {
            None
        };
        if let Some(error) = refuse {
            cx.event(Event::Broadcast(BroadcastEvent::Refused { seq, error }));
            return;
        }
        let env = Envelope {
            origin: me,
            seq,
            payload,
        };
        let id = env.id();
        self.memory.insert(cx.now(), env.clone(), id);
        self.numbering.saw(seq);
        self.tracing
            .log
            .received(me, seq, None, Via::Origin, Some(0), cx.now());
        self.stats.originated += 1;
        let opened = self.fan_out(cx, id, &env, me, 1);
        if opened == 0 {
            cx.event(Event::Broadcast(BroadcastEvent::Done(id)));
        } else {
            self.tasks.insert(
                id,
                Task {
                    env,
                    depth: 1,
                    parents: Vec::new(),
                    open: opened,
                },
            );
        }
    }

    /// Sends `env` to every distinct finger and successor in our arc up to `limit`, each with
    /// the next one as its limit, skipping what an earlier pass already covered. Returns the
    /// number of hops opened.
    fn fan_out(
        &mut self,
        cx: &mut Ctx<'_>,
        id: MsgId,
        env: &Envelope,
        limit: NodeId,
        depth: u8,
    ) -> u32 {
        let ring = cx.ring();
        let me = cx.me().id;
        let mut peers: Vec<Peer> = ring
            .fingers()
            .iter()
            .map(|f| f.peer)
            .chain(ring.successors().iter().copied())
            .filter(|p| in_arc(&me, &p.id, &limit) && !ring.is_suspect(&p.id, cx.now()))
            .collect();
        peers.sort_by_key(|p| ring.dist(&p.id));
        peers.dedup_by_key(|p| p.id);
        let covered = self
            .memory
            .get(&env.origin, env.seq)
            .and_then(|m| m.covered);
        let mut opened = 0;
        for i in 0..peers.len() {
            let child = peers[i];
            let child_limit = peers.get(i + 1).map_or(limit, |p| p.id);
            // Already sent, child and sub-arc, by an earlier pass that covered up to `cov`.
            if covered.is_some_and(|cov| {
                in_arc(&me, &child.id, &cov) && child_limit.in_half_open(&me, &cov)
            }) {
                continue;
            }
            let hop = self.next_hop;
            self.next_hop = self.next_hop.wrapping_add(1);
            self.hops.insert(
                hop,
                Hop {
                    msg: id,
                    child,
                    limit: child_limit,
                    stage: Stage::Ack,
                    deadline: cx.now(),
                    attempts: 0,
                    waits: 0,
                    reroutes: 0,
                },
            );
            self.send_data(cx, hop, child, child_limit, depth, id, env.clone());
            opened += 1;
        }
        if covered.is_none_or(|cov| in_arc(&me, &cov, &limit))
            && let Some(m) = self.memory.get_mut(&env.origin, env.seq)
        {
            m.covered = Some(limit);
        }
        opened
    }

    #[allow(clippy::too_many_arguments)]
    fn send_data(
        &mut self,
        cx: &mut Ctx<'_>,
        hop: u64,
        to: Peer,
        limit: NodeId,
        depth: u8,
        id: MsgId,
        env: Envelope,
    ) {
        self.stats.payload_sends += 1;
        self.tracing.log.sent(env.origin, env.seq, to, cx.now());
        cx.send(
            to,
            Message::Notice(Notice::Broadcast(Bcast::Data {
                hop,
                limit,
                depth,
                id,
                env,
            })),
        );
        self.arm_hop(
            cx,
            hop,
            cx.now() + self.cfg.ack_timeout,
            BroadcastTimer::Ack(hop),
        );
    }

    /// Arms the timer of `hop`'s current stage.
    fn arm_hop(&mut self, cx: &mut Ctx<'_>, hop: u64, at: Time, timer: BroadcastTimer) {
        if let Some(h) = self.hops.get_mut(&hop) {
            h.deadline = at;
        }
        cx.set_timer(at, timer.into());
    }

    /// Whether broadcast timer `timer` would act if it fired now: its hop is still waiting in
    /// the stage the timer is for.
    pub(crate) fn wants_timer(&self, timer: &BroadcastTimer) -> bool {
        let (hop, stage) = match timer {
            BroadcastTimer::Ack(hop) => (hop, Stage::Ack),
            BroadcastTimer::Done(hop) => (hop, Stage::Done),
            BroadcastTimer::Replies(batch) => return self.wants_replies_timer(*batch),
            BroadcastTimer::AntiEntropy => return true,
            BroadcastTimer::Numbering => return self.numbering.asking(),
        };
        self.hops.get(hop).is_some_and(|h| h.stage == stage)
    }

    // ---- receiving ---------------------------------------------------------------------------

    /// One of our timers fired.
    pub(crate) fn on_timer(&mut self, cx: &mut Ctx<'_>, timer: BroadcastTimer) {
        match timer {
            BroadcastTimer::Ack(hop) => self.on_ack_timer(cx, hop),
            BroadcastTimer::Done(hop) => self.on_done_timer(cx, hop),
            BroadcastTimer::Replies(batch) => self.on_replies_timer(cx, batch),
            BroadcastTimer::AntiEntropy => self.tick_anti_entropy(cx),
            BroadcastTimer::Numbering => self.numbering_deadline(cx.now()),
        }
    }

    /// What the ring core reports.
    pub(crate) fn on_ring_event(&mut self, cx: &mut Ctx<'_>, ev: &RingEvent) {
        match ev {
            RingEvent::Joined => {
                let a = cx.jittered(self.cfg.ae_interval);
                cx.set_timer(cx.now() + a, BroadcastTimer::AntiEntropy.into());
                self.numbering_start(cx);
            }
            RingEvent::Unreachable(id) => self.on_unreachable(cx, *id),
            RingEvent::NeighboursChanged => self.numbering_ask(cx),
            // Arcs are re-routed on a child's failure, not on suspicion alone; the tree is
            // cut from the tables at each message.
            RingEvent::PeerSuspected(_) => {}
        }
    }

    /// A broadcast notice arrived.
    pub(crate) fn on_notice(&mut self, cx: &mut Ctx<'_>, from: Peer, b: Bcast) {
        if let Err(e) = b.validate() {
            cx.count_invalid();
            match e {
                crate::wire::InvalidMessage::BadId => self.stats.dropped_bad_id += 1,
                crate::wire::InvalidMessage::Oversized => self.stats.dropped_oversized += 1,
                _ => {}
            }
            return;
        }
        if !cx.ring().is_member() {
            return;
        }
        match b {
            Bcast::Data {
                hop,
                limit,
                depth,
                id,
                env,
            } => self.on_data(cx, from, hop, limit, depth, id, env),
            Bcast::Ack { hop } => self.on_ack(cx, from, hop),
            Bcast::Done { hop } => {
                if self.hops.get(&hop).is_some_and(|h| h.child.id == from.id) {
                    self.resolve(cx, hop);
                }
            }
            Bcast::Digest {
                heads,
                complete,
                reply,
            } => self.on_digest(cx, from, heads, complete, reply),
            Bcast::Repair { id, env } => self.on_repair(cx, from, id, env),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_data(
        &mut self,
        cx: &mut Ctx<'_>,
        from: Peer,
        hop: u64,
        limit: NodeId,
        depth: u8,
        id: MsgId,
        env: Envelope,
    ) {
        let me = cx.me().id;
        // Our arc runs from us to `limit`; it cannot be the whole ring, contain the sender, or
        // reach past the origin (every arc lies inside the origin's).
        let in_range = limit != me
            && !in_arc(&me, &from.id, &limit)
            && (env.origin == me || limit == env.origin || in_arc(&me, &limit, &env.origin));
        if !in_range {
            self.stats.dropped_out_of_range += 1;
            return;
        }
        if !self.valid(&env) {
            self.stats.dropped_invalid += 1;
            return;
        }
        if self.memory.is_seen(&env.origin, env.seq) {
            self.stats.duplicates += 1;
            self.reply_ack(cx, from, hop);
            self.cover_again(cx, from, hop, limit, id, env);
            return;
        }
        // A `Done` also acknowledges: a hop that finishes at once (a leaf of the tree, a busy
        // node, an origin over its rate) answers with `Done` alone.
        if !self.rate.allow(&env.origin, cx.now()) {
            // Answered so the parent does not re-route it, but neither kept nor forwarded.
            self.stats.dropped_rate += 1;
            self.reply_done(cx, from, hop);
            return;
        }
        self.memory.insert(cx.now(), env.clone(), id);
        self.numbering.met(&cx.me().id, &env);
        let arrived = self.tracing.arrival(cx.now());
        self.tracing.log.received(
            env.origin,
            env.seq,
            Some(from),
            Via::Tree,
            Some(depth),
            arrived,
        );
        self.stats.delivered += 1;
        cx.event(Event::Broadcast(BroadcastEvent::Deliver {
            id,
            env: env.clone(),
            depth: Some(depth),
        }));
        if self.tasks.len() >= self.cfg.max_tasks {
            self.stats.dropped_busy += 1;
            self.reply_done(cx, from, hop);
            return;
        }
        let next = depth.saturating_add(1);
        let opened = self.fan_out(cx, id, &env, limit, next);
        if opened == 0 {
            self.reply_done(cx, from, hop);
        } else {
            self.reply_ack(cx, from, hop);
            self.tasks.insert(
                id,
                Task {
                    env,
                    depth: next,
                    parents: vec![(from, hop)],
                    open: opened,
                },
            );
        }
    }

    /// A message we already have arrived again (a parent re-routed an arc to us): cover the
    /// part of the new arc we have not covered yet, and report `Done` when that is finished.
    fn cover_again(
        &mut self,
        cx: &mut Ctx<'_>,
        from: Peer,
        hop: u64,
        limit: NodeId,
        id: MsgId,
        env: Envelope,
    ) {
        let depth = self.tasks.get(&id).map_or(1, |t| t.depth);
        let known = self.memory.get(&env.origin, env.seq).is_some();
        let opened = if known && env.origin != cx.me().id {
            self.fan_out(cx, id, &env, limit, depth)
        } else {
            0
        };
        match self.tasks.get_mut(&id) {
            Some(t) if t.parents.len() < MAX_PARENTS => {
                t.parents.push((from, hop));
                t.open += opened;
            }
            Some(t) => {
                t.open += opened;
                self.reply_done(cx, from, hop);
            }
            None if opened > 0 => {
                self.tasks.insert(
                    id,
                    Task {
                        env,
                        depth,
                        parents: vec![(from, hop)],
                        open: opened,
                    },
                );
            }
            None => self.reply_done(cx, from, hop),
        }
    }

    fn on_ack(&mut self, cx: &mut Ctx<'_>, from: Peer, hop: u64) {
        let Some(h) = self.hops.get_mut(&hop) else {
            return;
        };
        if h.child.id != from.id || h.stage != Stage::Ack {
            return;
        }
        self.await_done(cx, hop);
    }

    /// Hop `hop` was acknowledged: wait for its completion, up to `done_timeout`.
    fn await_done(&mut self, cx: &mut Ctx<'_>, hop: u64) {
        if let Some(h) = self.hops.get_mut(&hop) {
            h.stage = Stage::Done;
        }
        self.arm_hop(
            cx,
            hop,
            cx.now() + self.cfg.done_timeout,
            BroadcastTimer::Done(hop),
        );
    }

    // ---- failures ----------------------------------------------------------------------------

    fn on_ack_timer(&mut self, cx: &mut Ctx<'_>, hop: u64) {
        let Some(h) = self.hops.get_mut(&hop) else {
            return;
        };
        if h.stage != Stage::Ack || cx.now() < h.deadline {
            return;
        }
        if h.attempts < self.cfg.ack_retries {
            h.attempts += 1;
            self.stats.resends += 1;
            self.send_hop(cx, hop);
            return;
        }
        let child = h.child;
        cx.peer_failed(child);
        self.reroute(cx, hop);
    }

    fn on_done_timer(&mut self, cx: &mut Ctx<'_>, hop: u64) {
        let Some(h) = self.hops.get_mut(&hop) else {
            return;
        };
        if h.stage != Stage::Done || cx.now() < h.deadline {
            return;
        }
        let (child, msg) = (h.child, h.msg);
        let Some(t) = self.tasks.get(&msg) else {
            return;
        };
        let body = Request::Broadcast(BroadcastRequest::Status {
            id: msg,
            origin: t.env.origin,
            seq: t.env.seq,
        });
        if cx.request(child, body, BROADCAST, hop) {
            if let Some(h) = self.hops.get_mut(&hop) {
                h.stage = Stage::Status;
            }
        } else {
            // Too many requests outstanding: ask again after another wait.
            self.await_done(cx, hop);
        }
    }

    /// The outcome of a request: a status request about hop `hop`, or a trace question.
    pub(crate) fn on_reply(&mut self, cx: &mut Ctx<'_>, hop: u64, reply: Reply) {
        if hop == NUMBERING_TOKEN {
            return self.numbering_reply(reply);
        }
        if hop & TRACE_TOKEN != 0 {
            return self.tracing.on_reply(cx, hop, reply);
        }
        let Some(h) = self.hops.get_mut(&hop) else {
            return;
        };
        if h.stage != Stage::Status {
            return;
        }
        let state = match reply {
            Reply::Answer {
                body: Response::Broadcast(BroadcastResponse::Status(state)),
                ..
            } => state,
            // No answer, or none it understood: the child cannot report; hand its arc on.
            _ => return self.reroute(cx, hop),
        };
        match state {
            HopState::Done => self.resolve(cx, hop),
            HopState::Working => {
                h.waits += 1;
                if h.waits > self.cfg.max_done_waits {
                    self.stats.abandoned += 1;
                    self.resolve(cx, hop);
                } else {
                    self.await_done(cx, hop);
                }
            }
            HopState::Unknown => {
                // The child lost the message (it restarted): send it again.
                let child = h.child;
                self.retarget(cx, hop, child);
            }
        }
    }

    /// A status question from a parent, or a trace question.
    pub(crate) fn on_request(
        &mut self,
        cx: &mut Ctx<'_>,
        from: Peer,
        r: BroadcastRequest,
    ) -> BroadcastResponse {
        match r {
            BroadcastRequest::Status { id, origin, seq } => {
                BroadcastResponse::Status(self.hop_state(&id, &origin, seq))
            }
            BroadcastRequest::Trace { origin, seq } => {
                BroadcastResponse::Trace(self.tracing.answer(from, origin, seq, cx.now()))
            }
            BroadcastRequest::Head { origin } => {
                BroadcastResponse::Head(self.head_of(&cx.me().id, &origin))
            }
        }
    }

    /// The driver lost the connection to `id`: re-route every arc handed to it.
    fn on_unreachable(&mut self, cx: &mut Ctx<'_>, id: NodeId) {
        let hit: Vec<u64> = self
            .hops
            .iter()
            .filter(|(_, h)| h.child.id == id && matches!(h.stage, Stage::Ack | Stage::Done))
            .map(|(k, _)| *k)
            .collect();
        for hop in hit {
            self.reroute(cx, hop);
        }
    }

    /// The child of `hop` failed: hand its arc to the next live node after it that lies before
    /// the limit — from the successor list when the child is in it (the list has no gaps),
    /// otherwise through a lookup.
    fn reroute(&mut self, cx: &mut Ctx<'_>, hop: u64) {
        let Some(h) = self.hops.get_mut(&hop) else {
            return;
        };
        h.reroutes += 1;
        if h.reroutes > self.cfg.max_reroutes {
            self.stats.abandoned += 1;
            self.resolve(cx, hop);
            return;
        }
        self.stats.reroutes += 1;
        let (child, limit) = (h.child, h.limit);
        let ring = cx.ring();
        if let Some(i) = ring.successors().iter().position(|s| s.id == child.id) {
            let next = ring.successors()[i + 1..]
                .iter()
                .find(|s| !ring.is_suspect(&s.id, cx.now()))
                .copied();
            match next {
                Some(n) if in_arc(&cx.me().id, &n.id, &limit) => return self.retarget(cx, hop, n),
                // The next live node is at or past the limit: the arc held only the child.
                Some(_) => return self.resolve(cx, hop),
                None => {}
            }
        }
        if let Some(h) = self.hops.get_mut(&hop) {
            h.stage = Stage::Lookup;
        }
        let key = child.id.add_pow2(0);
        cx.lookup(key, BROADCAST, hop);
    }

    /// The lookup for the next live node after a failed child of hop `hop` ended.
    pub(crate) fn on_lookup(&mut self, cx: &mut Ctx<'_>, hop: u64, found: Option<Peer>) {
        let Some(h) = self.hops.get(&hop) else {
            return;
        };
        if h.stage != Stage::Lookup {
            return;
        }
        match found {
            Some(p) if in_arc(&cx.me().id, &p.id, &h.limit) => self.retarget(cx, hop, p),
            Some(_) => self.resolve(cx, hop),
            None => {
                self.stats.abandoned += 1;
                self.resolve(cx, hop);
            }
        }
    }

    fn retarget(&mut self, cx: &mut Ctx<'_>, hop: u64, to: Peer) {
        let Some(h) = self.hops.get_mut(&hop) else {
            return;
        };
        h.child = to;
        h.stage = Stage::Ack;
        h.attempts = 0;
        h.waits = 0;
        self.send_hop(cx, hop);
    }

    /// (Re)sends hop `hop`'s message to its current child.
    fn send_hop(&mut self, cx: &mut Ctx<'_>, hop: u64) {
        let Some(h) = self.hops.get(&hop) else {
            return;
        };
        let (child, limit, msg) = (h.child, h.limit, h.msg);
        let Some(t) = self.tasks.get(&msg) else {
            return;
        };
        let (env, depth) = (t.env.clone(), t.depth);
        self.send_data(cx, hop, child, limit, depth, msg, env);
    }

    /// A child hop is finished (done, empty, or given up): maybe the whole message is.
    fn resolve(&mut self, cx: &mut Ctx<'_>, hop: u64) {
        let Some(h) = self.hops.remove(&hop) else {
            return;
        };
        let Some(t) = self.tasks.get_mut(&h.msg) else {
            return;
        };
        t.open = t.open.saturating_sub(1);
        if t.open > 0 {
            return;
        }
        if let Some(t) = self.tasks.remove(&h.msg) {
            if t.parents.is_empty() {
                cx.event(Event::Broadcast(BroadcastEvent::Done(h.msg)));
            }
            for (parent, phop) in t.parents {
                self.reply_done(cx, parent, phop);
            }
        }
    }

    /// Answer to a parent asking about a message we acknowledged.
    fn hop_state(&self, id: &MsgId, origin: &NodeId, seq: u64) -> HopState {
        if self.tasks.contains_key(id) {
            HopState::Working
        } else if self.memory.is_seen(origin, seq) {
            HopState::Done
        } else {
            HopState::Unknown
        }
    }
}

/// `id` lies in the arc from `me` up to `limit` (exclusive); `limit == me` is the whole ring.
fn in_arc(me: &NodeId, id: &NodeId, limit: &NodeId) -> bool {
    id.in_open(me, limit)
}
