//! Broadcast inside the node: the El-Ansary spanning tree over our fingers and successors,
//! per-hop acks with resend and re-routing, completion acks, and anti-entropy with the ring
//! neighbours. Types, bounds and the message store live in [`crate::broadcast`].

use std::collections::BTreeMap;
use std::fmt;

use super::lookup::Purpose as LookupPurpose;
use super::{Event, Node, Phase, Purpose, SUSPECT_AFTER, Timer};
use crate::broadcast::rate::RateLimiter;
use crate::broadcast::store::Store;
use crate::broadcast::{
    BroadcastConfig, BroadcastStats, Envelope, HopState, MAX_DIGEST, MAX_PAYLOAD, MsgId, Validator,
};
use crate::id::NodeId;
use crate::time::Time;
use crate::wire::{Bcast, Message, Peer, Request, Response};

/// Parents remembered per message (a message reaches a node more than once only after
/// re-routing).
const MAX_PARENTS: usize = 8;

/// Why the node refused to broadcast.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BroadcastError {
    /// This node is not a ring member.
    #[error("this node is not a ring member")]
    NotMember,
    /// The payload is over the bound.
    #[error("payload over {MAX_PAYLOAD} bytes")]
    TooLarge,
    /// This sequence number was used before.
    #[error("sequence number already used")]
    SeqUsed,
    /// This node's own rate limit is exhausted.
    #[error("over the broadcast rate")]
    RateLimited,
    /// Too many broadcasts are in flight.
    #[error("too many broadcasts in flight")]
    Busy,
}

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
    /// wanted again ([`super::Node::wants_timer`]).
    deadline: Time,
    attempts: u8,
    waits: u32,
    reroutes: u8,
}

/// The node's broadcast state.
pub(super) struct BcState {
    cfg: BroadcastConfig,
    store: Store,
    rate: RateLimiter,
    tasks: BTreeMap<MsgId, Task>,
    hops: BTreeMap<u64, Hop>,
    validator: Option<Validator>,
    stats: BroadcastStats,
    ae_to_pred: bool,
}

impl fmt::Debug for BcState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BcState")
            .field("stored", &self.store.len())
            .field("tasks", &self.tasks.len())
            .field("hops", &self.hops.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl BcState {
    pub(super) fn new(cfg: BroadcastConfig) -> BcState {
        BcState {
            store: Store::new(cfg.max_stored, cfg.max_origins, cfg.max_out_of_order),
            rate: RateLimiter::new(cfg.rate_per_sec, cfg.rate_burst, cfg.max_origins),
            tasks: BTreeMap::new(),
            hops: BTreeMap::new(),
            validator: None,
            stats: BroadcastStats::default(),
            ae_to_pred: false,
            cfg,
        }
    }
}

impl Node {
    /// Installs the application's envelope check (signature against the origin's key).
    pub fn set_validator(&mut self, v: Validator) {
        self.bc.validator = Some(v);
    }

    /// How long answers to a parent may be held (`replies.rs`).
    pub(super) fn bc_reply_delay(&self) -> std::time::Duration {
        self.bc.cfg.reply_delay
    }

    /// Counts `n` answers sent to one parent together.
    pub(super) fn bc_count_replies(&mut self, n: u64) {
        self.bc.stats.replies += n;
        self.bc.stats.reply_batches += 1;
    }

    /// Broadcast counters.
    pub fn broadcast_stats(&self) -> &BroadcastStats {
        &self.bc.stats
    }

    /// Messages being forwarded and child hops outstanding (for status pages and tests).
    pub fn broadcasts_in_flight(&self) -> (usize, usize) {
        (self.bc.tasks.len(), self.bc.hops.len())
    }

    pub(super) fn bc_dropped_bad_id(&mut self) {
        self.bc.stats.dropped_bad_id += 1;
    }

    pub(super) fn bc_dropped_oversized(&mut self) {
        self.bc.stats.dropped_oversized += 1;
    }

    /// `id` lies in the arc from us up to `limit` (exclusive); `limit == me` is the whole ring.
    fn in_arc(&self, id: &NodeId, limit: &NodeId) -> bool {
        id.in_open(&self.t.me.id, limit)
    }

    fn valid(&self, env: &Envelope) -> bool {
        self.bc.validator.as_ref().is_none_or(|v| v(env))
    }

    // ---- origin ------------------------------------------------------------------------------

    pub(super) fn originate(&mut self, now: Time, seq: u64, payload: Vec<u8>) {
        let me = self.t.me.id;
        let refuse = if self.phase != Phase::Member {
            Some(BroadcastError::NotMember)
        } else if payload.len() > MAX_PAYLOAD {
            Some(BroadcastError::TooLarge)
        } else if seq == 0 || self.bc.store.is_seen(&me, seq) {
            Some(BroadcastError::SeqUsed)
        } else if self.bc.tasks.len() >= self.bc.cfg.max_tasks {
            Some(BroadcastError::Busy)
        } else if !self.bc.rate.allow(&me, now) {
            Some(BroadcastError::RateLimited)
        } else {
            None
        };
        if let Some(error) = refuse {
            self.event(Event::BroadcastRefused { seq, error });
            return;
        }
        let env = Envelope {
            origin: me,
            seq,
            payload,
        };
        let id = env.id();
        self.bc.store.insert(now, env.clone(), id);
        self.bc.stats.originated += 1;
        let opened = self.fan_out(now, id, &env, me, 1);
        if opened == 0 {
            self.event(Event::BroadcastDone(id));
        } else {
            self.bc.tasks.insert(
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
    fn fan_out(&mut self, now: Time, id: MsgId, env: &Envelope, limit: NodeId, depth: u8) -> u32 {
        let mut peers: Vec<Peer> = self
            .t
            .fingers
            .iter()
            .map(|f| f.peer)
            .chain(self.t.succs.iter().copied())
            .filter(|p| self.in_arc(&p.id, &limit) && !self.t.is_suspect(&p.id, now))
            .collect();
        peers.sort_by_key(|p| self.t.dist(&p.id));
        peers.dedup_by_key(|p| p.id);
        let covered = self
            .bc
            .store
            .get(&env.origin, env.seq)
            .and_then(|m| m.covered);
        let mut opened = 0;
        for i in 0..peers.len() {
            let child = peers[i];
            let child_limit = peers.get(i + 1).map_or(limit, |p| p.id);
            // Already sent, child and sub-arc, by an earlier pass that covered up to `cov`.
            let me = self.t.me.id;
            if covered.is_some_and(|cov| {
                self.in_arc(&child.id, &cov) && child_limit.in_half_open(&me, &cov)
            }) {
                continue;
            }
            let hop = self.next_id;
            self.next_id = self.next_id.wrapping_add(1);
            self.bc.hops.insert(
                hop,
                Hop {
                    msg: id,
                    child,
                    limit: child_limit,
                    stage: Stage::Ack,
                    deadline: now,
                    attempts: 0,
                    waits: 0,
                    reroutes: 0,
                },
            );
            self.send_data(now, hop, child, child_limit, depth, id, env.clone());
            opened += 1;
        }
        if covered.is_none_or(|cov| self.in_arc(&cov, &limit))
            && let Some(m) = self.bc.store.get_mut(&env.origin, env.seq)
        {
            m.covered = Some(limit);
        }
        opened
    }

    #[allow(clippy::too_many_arguments)]
    fn send_data(
        &mut self,
        now: Time,
        hop: u64,
        to: Peer,
        limit: NodeId,
        depth: u8,
        id: MsgId,
        env: Envelope,
    ) {
        self.bc.stats.payload_sends += 1;
        self.send(
            to,
            Message::Bcast(Bcast::Data {
                hop,
                limit,
                depth,
                id,
                env,
            }),
        );
        self.arm_hop(hop, now + self.bc.cfg.ack_timeout, Timer::BcastAck(hop));
    }

    /// Arms the timer of `hop`'s current stage.
    fn arm_hop(&mut self, hop: u64, at: Time, timer: Timer) {
        if let Some(h) = self.bc.hops.get_mut(&hop) {
            h.deadline = at;
        }
        self.set_timer(at, timer);
    }

    /// Whether broadcast timer `timer` would act if it fired now: its hop is still waiting in
    /// the stage the timer is for.
    pub(super) fn wants_bcast_timer(&self, timer: &Timer) -> bool {
        let (hop, stage) = match timer {
            Timer::BcastAck(hop) => (hop, Stage::Ack),
            Timer::BcastDone(hop) => (hop, Stage::Done),
            _ => return true,
        };
        self.bc.hops.get(hop).is_some_and(|h| h.stage == stage)
    }

    // ---- receiving ---------------------------------------------------------------------------

    pub(super) fn on_bcast(&mut self, now: Time, from: Peer, b: Bcast) {
        if self.phase != Phase::Member {
            return;
        }
        match b {
            Bcast::Data {
                hop,
                limit,
                depth,
                id,
                env,
            } => self.on_data(now, from, hop, limit, depth, id, env),
            Bcast::Ack { hop } => self.on_ack(now, from, hop),
            Bcast::Done { hop } => {
                if self
                    .bc
                    .hops
                    .get(&hop)
                    .is_some_and(|h| h.child.id == from.id)
                {
                    self.resolve(now, hop);
                }
            }
            Bcast::Digest {
                heads,
                complete,
                reply,
            } => self.on_digest(now, from, heads, complete, reply),
            Bcast::Repair { id, env } => self.on_repair(now, from, id, env),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_data(
        &mut self,
        now: Time,
        from: Peer,
        hop: u64,
        limit: NodeId,
        depth: u8,
        id: MsgId,
        env: Envelope,
    ) {
        let me = self.t.me.id;
        // Our arc runs from us to `limit`; it cannot be the whole ring, contain the sender, or
        // reach past the origin (every arc lies inside the origin's).
        let in_range = limit != me
            && !self.in_arc(&from.id, &limit)
            && (env.origin == me || limit == env.origin || self.in_arc(&limit, &env.origin));
        if !in_range {
            self.bc.stats.dropped_out_of_range += 1;
            return;
        }
        if !self.valid(&env) {
            self.bc.stats.dropped_invalid += 1;
            return;
        }
        if self.bc.store.is_seen(&env.origin, env.seq) {
            self.bc.stats.duplicates += 1;
            self.reply_ack(now, from, hop);
            self.cover_again(now, from, hop, limit, id, env);
            return;
        }
        // A `Done` also acknowledges: a hop that finishes at once (a leaf of the tree, a busy
        // node, an origin over its rate) answers with `Done` alone.
        if !self.bc.rate.allow(&env.origin, now) {
            // Answered so the parent does not re-route it, but neither kept nor forwarded.
            self.bc.stats.dropped_rate += 1;
            self.reply_done(now, from, hop);
            return;
        }
        self.bc.store.insert(now, env.clone(), id);
        self.bc.stats.delivered += 1;
        self.event(Event::Deliver {
            id,
            env: env.clone(),
            depth: Some(depth),
        });
        if self.bc.tasks.len() >= self.bc.cfg.max_tasks {
            self.bc.stats.dropped_busy += 1;
            self.reply_done(now, from, hop);
            return;
        }
        let next = depth.saturating_add(1);
        let opened = self.fan_out(now, id, &env, limit, next);
        if opened == 0 {
            self.reply_done(now, from, hop);
        } else {
            self.reply_ack(now, from, hop);
            self.bc.tasks.insert(
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
        now: Time,
        from: Peer,
        hop: u64,
        limit: NodeId,
        id: MsgId,
        env: Envelope,
    ) {
        let depth = self.bc.tasks.get(&id).map_or(1, |t| t.depth);
        let known = self.bc.store.get(&env.origin, env.seq).is_some();
        let opened = if known && env.origin != self.t.me.id {
            self.fan_out(now, id, &env, limit, depth)
        } else {
            0
        };
        match self.bc.tasks.get_mut(&id) {
            Some(t) if t.parents.len() < MAX_PARENTS => {
                t.parents.push((from, hop));
                t.open += opened;
            }
            Some(t) => {
                t.open += opened;
                self.reply_done(now, from, hop);
            }
            None if opened > 0 => {
                self.bc.tasks.insert(
                    id,
                    Task {
                        env,
                        depth,
                        parents: vec![(from, hop)],
                        open: opened,
                    },
                );
            }
            None => self.reply_done(now, from, hop),
        }
    }

    fn on_ack(&mut self, now: Time, from: Peer, hop: u64) {
        let Some(h) = self.bc.hops.get_mut(&hop) else {
            return;
        };
        if h.child.id != from.id || h.stage != Stage::Ack {
            return;
        }
        h.stage = Stage::Done;
        self.arm_hop(hop, now + self.bc.cfg.done_timeout, Timer::BcastDone(hop));
    }

    // ---- failures ----------------------------------------------------------------------------

    pub(super) fn on_bcast_ack_timer(&mut self, now: Time, hop: u64) {
        let Some(h) = self.bc.hops.get_mut(&hop) else {
            return;
        };
        if h.stage != Stage::Ack || now < h.deadline {
            return;
        }
        if h.attempts < self.bc.cfg.ack_retries {
            h.attempts += 1;
            self.bc.stats.resends += 1;
            self.send_hop(now, hop);
            return;
        }
        let child = h.child;
        if self.t.strike(child.id, SUSPECT_AFTER) >= SUSPECT_AFTER {
            self.suspect(now, child);
        }
        self.reroute(now, hop);
    }

    pub(super) fn on_bcast_done_timer(&mut self, now: Time, hop: u64) {
        let Some(h) = self.bc.hops.get_mut(&hop) else {
            return;
        };
        if h.stage != Stage::Done || now < h.deadline {
            return;
        }
        let (child, msg) = (h.child, h.msg);
        let Some(t) = self.bc.tasks.get(&msg) else {
            return;
        };
        let body = Request::BcastStatus {
            id: msg,
            origin: t.env.origin,
            seq: t.env.seq,
        };
        if self
            .request(now, child, body, Purpose::BcastStatus { hop })
            .is_some()
        {
            if let Some(h) = self.bc.hops.get_mut(&hop) {
                h.stage = Stage::Status;
            }
        } else {
            self.arm_hop(hop, now + self.bc.cfg.done_timeout, Timer::BcastDone(hop));
        }
    }

    pub(super) fn bcast_status_response(&mut self, now: Time, hop: u64, body: Response) {
        let Some(h) = self.bc.hops.get_mut(&hop) else {
            return;
        };
        if h.stage != Stage::Status {
            return;
        }
        match body {
            Response::BcastStatus(HopState::Done) => self.resolve(now, hop),
            Response::BcastStatus(HopState::Working) => {
                h.waits += 1;
                if h.waits > self.bc.cfg.max_done_waits {
                    self.bc.stats.abandoned += 1;
                    self.resolve(now, hop);
                } else {
                    h.stage = Stage::Done;
                    self.arm_hop(hop, now + self.bc.cfg.done_timeout, Timer::BcastDone(hop));
                }
            }
            Response::BcastStatus(HopState::Unknown) => {
                // The child lost the message (it restarted): send it again.
                let child = h.child;
                self.retarget(now, hop, child);
            }
            _ => self.reroute(now, hop),
        }
    }

    pub(super) fn bcast_status_failed(&mut self, now: Time, hop: u64) {
        if self
            .bc
            .hops
            .get(&hop)
            .is_some_and(|h| h.stage == Stage::Status)
        {
            self.reroute(now, hop);
        }
    }

    /// The driver lost the connection to `id`: re-route every arc handed to it.
    pub(super) fn bcast_unreachable(&mut self, now: Time, id: NodeId) {
        let hit: Vec<u64> = self
            .bc
            .hops
            .iter()
            .filter(|(_, h)| h.child.id == id && matches!(h.stage, Stage::Ack | Stage::Done))
            .map(|(k, _)| *k)
            .collect();
        for hop in hit {
            self.reroute(now, hop);
        }
    }

    /// The child of `hop` failed: hand its arc to the next live node after it that lies before
    /// the limit — from the successor list when the child is in it (the list has no gaps),
    /// otherwise through a lookup.
    fn reroute(&mut self, now: Time, hop: u64) {
        let Some(h) = self.bc.hops.get_mut(&hop) else {
            return;
        };
        h.reroutes += 1;
        if h.reroutes > self.bc.cfg.max_reroutes {
            self.bc.stats.abandoned += 1;
            self.resolve(now, hop);
            return;
        }
        self.bc.stats.reroutes += 1;
        let (child, limit) = (h.child, h.limit);
        if let Some(i) = self.t.succs.iter().position(|s| s.id == child.id) {
            let next = self.t.succs[i + 1..]
                .iter()
                .find(|s| !self.t.is_suspect(&s.id, now))
                .copied();
            match next {
                Some(n) if self.in_arc(&n.id, &limit) => return self.retarget(now, hop, n),
                // The next live node is at or past the limit: the arc held only the child.
                Some(_) => return self.resolve(now, hop),
                None => {}
            }
        }
        if let Some(h) = self.bc.hops.get_mut(&hop) {
            h.stage = Stage::Lookup;
        }
        let key = child.id.add_pow2(0);
        self.start_lookup(now, key, LookupPurpose::Reroute { hop }, None);
    }

    pub(super) fn reroute_found(&mut self, now: Time, hop: u64, found: Option<Peer>) {
        let Some(h) = self.bc.hops.get(&hop) else {
            return;
        };
        if h.stage != Stage::Lookup {
            return;
        }
        match found {
            Some(p) if self.in_arc(&p.id, &h.limit) => self.retarget(now, hop, p),
            Some(_) => self.resolve(now, hop),
            None => {
                self.bc.stats.abandoned += 1;
                self.resolve(now, hop);
            }
        }
    }

    fn retarget(&mut self, now: Time, hop: u64, to: Peer) {
        let Some(h) = self.bc.hops.get_mut(&hop) else {
            return;
        };
        h.child = to;
        h.stage = Stage::Ack;
        h.attempts = 0;
        h.waits = 0;
        self.send_hop(now, hop);
    }

    /// (Re)sends hop `hop`'s message to its current child.
    fn send_hop(&mut self, now: Time, hop: u64) {
        let Some(h) = self.bc.hops.get(&hop) else {
            return;
        };
        let (child, limit, msg) = (h.child, h.limit, h.msg);
        let Some(t) = self.bc.tasks.get(&msg) else {
            return;
        };
        let (env, depth) = (t.env.clone(), t.depth);
        self.send_data(now, hop, child, limit, depth, msg, env);
    }

    /// A child hop is finished (done, empty, or given up): maybe the whole message is.
    fn resolve(&mut self, now: Time, hop: u64) {
        let Some(h) = self.bc.hops.remove(&hop) else {
            return;
        };
        let Some(t) = self.bc.tasks.get_mut(&h.msg) else {
            return;
        };
        t.open = t.open.saturating_sub(1);
        if t.open > 0 {
            return;
        }
        if let Some(t) = self.bc.tasks.remove(&h.msg) {
            if t.parents.is_empty() {
                self.event(Event::BroadcastDone(h.msg));
            }
            for (parent, phop) in t.parents {
                self.reply_done(now, parent, phop);
            }
        }
    }

    /// Answer to a parent asking about a message we acknowledged.
    pub(super) fn hop_state(&self, id: &MsgId, origin: &NodeId, seq: u64) -> HopState {
        if self.bc.tasks.contains_key(id) {
            HopState::Working
        } else if self.bc.store.is_seen(origin, seq) {
            HopState::Done
        } else {
            HopState::Unknown
        }
    }

    // ---- anti-entropy ------------------------------------------------------------------------

    pub(super) fn tick_anti_entropy(&mut self, now: Time) {
        if self.phase != Phase::Member {
            return;
        }
        self.bc.ae_to_pred = !self.bc.ae_to_pred;
        let to = if self.bc.ae_to_pred {
            self.t.pred.or(self.t.successor())
        } else {
            self.t.successor().or(self.t.pred)
        };
        if let Some(to) = to {
            self.send_digest(to, false);
        }
        let d = self.jittered(self.bc.cfg.ae_interval);
        self.set_timer(now + d, Timer::AntiEntropy);
    }

    fn send_digest(&mut self, to: Peer, reply: bool) {
        let (heads, complete) = self.bc.store.digest(MAX_DIGEST);
        self.send(
            to,
            Message::Bcast(Bcast::Digest {
                heads,
                complete,
                reply,
            }),
        );
    }

    fn on_digest(
        &mut self,
        now: Time,
        from: Peer,
        heads: Vec<(NodeId, u64)>,
        complete: bool,
        reply: bool,
    ) {
        let cfg = &self.bc.cfg;
        let repairs: Vec<(MsgId, Envelope)> = self
            .bc
            .store
            .missing_for(&heads, complete, now, cfg.ae_grace, cfg.ae_max_repairs)
            .into_iter()
            .map(|m| (m.id, m.env.clone()))
            .collect();
        for (id, env) in repairs {
            self.bc.stats.repairs_sent += 1;
            self.bc.stats.payload_sends += 1;
            self.send(from, Message::Bcast(Bcast::Repair { id, env }));
        }
        if !reply && self.bc.store.lacks_any(&heads) {
            self.send_digest(from, true);
        }
    }

    /// A neighbour pushed a message we lacked. Pass it on along the ring, away from the
    /// sender: a neighbour that missed a message often shares the hole (a lost arc), and the
    /// wave runs at network speed instead of one anti-entropy round per node. It stops at the
    /// first node that has the message.
    fn on_repair(&mut self, now: Time, from: Peer, id: MsgId, env: Envelope) {
        if self.bc.store.is_seen(&env.origin, env.seq) {
            self.bc.stats.duplicates += 1;
            return;
        }
        if !self.valid(&env) {
            self.bc.stats.dropped_invalid += 1;
            return;
        }
        if !self.bc.rate.allow(&env.origin, now) {
            self.bc.stats.dropped_rate += 1;
            return;
        }
        self.bc.store.insert(now, env.clone(), id);
        self.bc.stats.delivered += 1;
        self.bc.stats.repairs_received += 1;
        let onward = if self.t.successor().is_some_and(|s| s.id == from.id) {
            self.t.pred
        } else {
            self.t.successor()
        };
        if let Some(to) = onward.filter(|p| p.id != from.id) {
            self.bc.stats.repairs_sent += 1;
            self.bc.stats.payload_sends += 1;
            self.send(
                to,
                Message::Bcast(Bcast::Repair {
                    id,
                    env: env.clone(),
                }),
            );
        }
        self.event(Event::Deliver {
            id,
            env,
            depth: None,
        });
    }
}
