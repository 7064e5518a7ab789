//! Message traces: how one broadcast travelled.
//!
//! Every node keeps a bounded log ([`TraceLog`]) of the newest broadcasts it received: from
//! whom, when, at which depth of the tree, when it sent them on and to whom (tree sends,
//! resends, re-routes and anti-entropy repairs alike). It answers a peer's `Trace` question
//! about one `(origin, seq)` from that log, rate-limited per asker.
//!
//! A node asked to trace ([`crate::Input::Trace`]) walks the answers: it starts from its own
//! entry and its ring neighbours and fingers, asks every node an answer names (the parent and
//! the children), and ends when every question is answered or has failed. The walk is bounded
//! (nodes asked, questions in flight, walks at once) and ends with
//! [`super::BroadcastEvent::Traced`]. Answers are the answering node's own account: a hostile
//! node can lie about its part, and a node that does not answer hides the children only it
//! knows (the walk still reaches them through other nodes' answers where they name them).

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::tree::Broadcast;
use super::{BroadcastError, BroadcastEvent};
use crate::common::rate::RateLimiter;
use crate::id::NodeId;
use crate::overlay::Event;
use crate::protocol::{Ctx, Reply};
use crate::time::Time;
use crate::wire::{BROADCAST, MAX_PEER_LIST, Peer, Request, Response};

/// Next hops remembered per message (a node sends a message on to ⌈log2 N⌉ children, more
/// only after re-routing or repairs).
pub const MAX_TRACE_CHILDREN: usize = MAX_PEER_LIST;
/// Nodes one walk asks at most.
pub const MAX_TRACE_NODES: usize = 1024;
/// Questions of one walk in flight at once.
const WALK_PARALLEL: usize = 16;
/// Walks running at once on one node.
pub const MAX_WALKS: usize = 4;
/// Trace questions answered per asking node: sustained per second, and at once. A walk asks
/// each node once or twice.
const ANSWER_RATE: u32 = 20;
const ANSWER_BURST: u32 = 100;
/// Asking nodes whose rate is remembered.
const MAX_ASKERS: usize = 1024;
/// Broadcast's request tokens for trace questions have this bit set (hop numbers stay below
/// 2^48); the low bits name the walk.
pub(super) const TRACE_TOKEN: u64 = 1 << 63;

/// How a node got a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Via {
    /// It broadcast the message itself.
    Origin,
    /// From its parent in the broadcast tree.
    Tree,
    /// From a ring neighbour, through anti-entropy.
    Repair,
}

/// One node's account of one message, as it answers a `Trace` question.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceHop {
    /// The node it came from (`None` at the origin).
    pub from: Option<Peer>,
    /// How it came.
    pub via: Via,
    /// Hops from the origin (0 at the origin; `None` when it came by anti-entropy).
    pub depth: Option<u8>,
    /// When it arrived at the node (at the origin: when it was broadcast), in microseconds
    /// since the Unix epoch by the node's clock.
    pub received_us: u64,
    /// When the node first sent it on, same clock (`None`: it sent it to nobody).
    pub forwarded_us: Option<u64>,
    /// The nodes it sent it to, in order, each once (at most [`MAX_TRACE_CHILDREN`]).
    pub children: Vec<Peer>,
}

/// The answer to a `Trace` question.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TraceReply {
    /// The node has no record of the message (never got it, or forgot it).
    Unknown,
    /// The node refused to answer (the asker is over its rate).
    Busy,
    /// The node's account.
    Hop(TraceHop),
}

/// What the walk learnt of one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceOutcome {
    /// It answered with its account.
    Hop(TraceHop),
    /// It answered that it has no record of the message.
    Unknown,
    /// It did not answer (unreachable, timed out, or does not speak traces).
    NoAnswer,
    /// It refused (rate).
    Busy,
}

/// The result of a walk: every node asked, with what it said, ordered by node id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceResult {
    /// The traced message's origin.
    pub origin: NodeId,
    /// Its sequence number.
    pub seq: u64,
    /// Every node asked and its outcome.
    pub nodes: Vec<(Peer, TraceOutcome)>,
    /// The walk stopped at [`MAX_TRACE_NODES`] with nodes left to ask.
    pub truncated: bool,
}

/// A log entry: one message as this node saw it.
#[derive(Clone, Debug)]
struct Entry {
    from: Option<Peer>,
    via: Via,
    depth: Option<u8>,
    received: Time,
    forwarded: Option<Time>,
    children: Vec<Peer>,
}

/// The log's table: looked up, never iterated into outputs, so a fixed seed keeps runs
/// reproducible (foldhash: a third of SipHash's instructions per delivery, measured with
/// callgrind in `docs/performance.md`).
type Table = HashMap<(NodeId, u64), Entry, foldhash::fast::FixedState>;

/// The newest messages' entries, oldest evicted first.
#[derive(Debug)]
pub struct TraceLog {
    cap: usize,
    entries: Table,
    order: VecDeque<(NodeId, u64)>,
}

impl TraceLog {
    /// A log of at most `cap` messages (0: keeps none).
    pub fn new(cap: usize) -> TraceLog {
        TraceLog {
            cap,
            entries: Table::with_hasher(foldhash::fast::FixedState::with_seed(0x7ace)),
            order: VecDeque::new(),
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `(origin, seq)` arrived at `at` (the first copy only).
    pub(super) fn received(
        &mut self,
        origin: NodeId,
        seq: u64,
        from: Option<Peer>,
        via: Via,
        depth: Option<u8>,
        at: Time,
    ) {
        if self.cap == 0 {
            return;
        }
        if self.entries.len() >= self.cap {
            // A broadcast arrives once (the memory de-duplicates before this): evict first.
            if self.entries.contains_key(&(origin, seq)) {
                return;
            }
            while self.entries.len() >= self.cap {
                match self.order.pop_front() {
                    Some(old) => {
                        self.entries.remove(&old);
                    }
                    None => break,
                }
            }
        }
        if let std::collections::hash_map::Entry::Vacant(v) = self.entries.entry((origin, seq)) {
            v.insert(Entry {
                from,
                via,
                depth,
                received: at,
                forwarded: None,
                children: Vec::new(),
            });
            self.order.push_back((origin, seq));
        }
    }

    /// `(origin, seq)` was sent on to `to` at `at`.
    pub(super) fn sent(&mut self, origin: NodeId, seq: u64, to: Peer, at: Time) {
        let Some(e) = self.entries.get_mut(&(origin, seq)) else {
            return;
        };
        e.forwarded.get_or_insert(at);
        if e.children.len() < MAX_TRACE_CHILDREN && !e.children.iter().any(|c| c.id == to.id) {
            e.children.push(to);
        }
    }

    /// This node's account of `(origin, seq)`, its times moved to the Unix clock by adding
    /// `wall_offset_us`.
    fn hop(&self, origin: NodeId, seq: u64, wall_offset_us: u64) -> Option<TraceHop> {
        let e = self.entries.get(&(origin, seq))?;
        let wall = |t: Time| t.as_micros().saturating_add(wall_offset_us);
        Some(TraceHop {
            from: e.from,
            via: e.via,
            depth: e.depth,
            received_us: wall(e.received),
            forwarded_us: e.forwarded.map(wall),
            children: e.children.clone(),
        })
    }

    /// Checks the bounds.
    pub(super) fn check_invariants(&self) -> Result<(), String> {
        if self.entries.len() > self.cap || self.order.len() < self.entries.len() {
            return Err(format!(
                "trace log holds {} entries ({} in order) over its bound {}",
                self.entries.len(),
                self.order.len(),
                self.cap
            ));
        }
        if let Some(e) = self
            .entries
            .values()
            .find(|e| e.children.len() > MAX_TRACE_CHILDREN)
        {
            return Err(format!("trace entry with {} children", e.children.len()));
        }
        Ok(())
    }
}

impl Broadcast {
    /// Starts tracing broadcast (`origin`, `seq`) for the application's `token`; the walk
    /// ends with [`BroadcastEvent::Traced`].
    pub(crate) fn trace(&mut self, cx: &mut Ctx<'_>, origin: NodeId, seq: u64, token: u64) {
        self.tracing.start(cx, origin, seq, token);
    }

    /// The trace log and walks (read-only).
    pub fn tracing(&self) -> &Tracing {
        &self.tracing
    }

    /// The driver's epoch as Unix time in microseconds (trace answers carry Unix times).
    pub(crate) fn set_wall_clock(&mut self, epoch_unix_us: u64) {
        self.tracing.set_wall_clock(epoch_unix_us);
    }

    /// When the input about to be handled arrived at the driver (`None`: when it is handled).
    pub(crate) fn set_arrival(&mut self, at: Option<Time>) {
        self.tracing.arrived = at;
    }
}

/// One walk in progress.
#[derive(Debug)]
struct Walk {
    token: u64,
    origin: NodeId,
    seq: u64,
    /// Every node met, with its outcome once known.
    nodes: BTreeMap<NodeId, (Peer, Option<TraceOutcome>)>,
    queue: VecDeque<Peer>,
    in_flight: usize,
    truncated: bool,
}

/// Traces: the log, the answering side's rate, and the walks this node runs.
#[derive(Debug)]
pub struct Tracing {
    pub(super) log: TraceLog,
    rate: RateLimiter,
    walks: BTreeMap<u64, Walk>,
    next_walk: u64,
    /// Microseconds from the driver's epoch to the Unix epoch's (the driver's epoch as Unix
    /// time), so answers carry times comparable across nodes.
    wall_offset_us: u64,
    /// When the input being handled arrived at the driver (`None`: now).
    pub(super) arrived: Option<Time>,
}

impl Tracing {
    /// Tracing that keeps the newest `keep` messages.
    pub(super) fn new(keep: usize) -> Tracing {
        Tracing {
            log: TraceLog::new(keep),
            rate: RateLimiter::new(ANSWER_RATE, ANSWER_BURST, MAX_ASKERS),
            walks: BTreeMap::new(),
            next_walk: 0,
            wall_offset_us: 0,
            arrived: None,
        }
    }

    /// Sets the driver's epoch as Unix time in microseconds.
    pub(super) fn set_wall_clock(&mut self, epoch_unix_us: u64) {
        self.wall_offset_us = epoch_unix_us;
    }

    /// When the input being handled arrived (its frame reached the driver), at most `now`.
    pub(super) fn arrival(&self, now: Time) -> Time {
        self.arrived.map_or(now, |a| a.min(now))
    }

    /// Walks in progress.
    pub fn walks(&self) -> usize {
        self.walks.len()
    }

    /// A peer's `Trace` question.
    pub(super) fn answer(&mut self, from: Peer, origin: NodeId, seq: u64, now: Time) -> TraceReply {
        if !self.rate.allow(&from.id, now) {
            return TraceReply::Busy;
        }
        self.log
            .hop(origin, seq, self.wall_offset_us)
            .map_or(TraceReply::Unknown, TraceReply::Hop)
    }

    /// Starts a walk for the application's `token`.
    pub(super) fn start(&mut self, cx: &mut Ctx<'_>, origin: NodeId, seq: u64, token: u64) {
        if !cx.ring().is_member() {
            return traced(cx, token, Err(BroadcastError::NotMember));
        }
        if self.walks.len() >= MAX_WALKS {
            return traced(cx, token, Err(BroadcastError::Busy));
        }
        let id = self.next_walk;
        self.next_walk = (self.next_walk + 1) & !TRACE_TOKEN;
        let me = cx.me();
        let mut walk = Walk {
            token,
            origin,
            seq,
            nodes: BTreeMap::new(),
            queue: VecDeque::new(),
            in_flight: 0,
            truncated: false,
        };
        let own = self.log.hop(origin, seq, self.wall_offset_us);
        let outcome = match &own {
            Some(h) => TraceOutcome::Hop(h.clone()),
            None => TraceOutcome::Unknown,
        };
        walk.nodes.insert(me.id, (me, Some(outcome)));
        if let Some(h) = &own {
            walk.meet(h.from.iter().chain(&h.children).copied());
        }
        let ring = cx.ring();
        let neighbours: Vec<Peer> = ring
            .successors()
            .iter()
            .copied()
            .chain(ring.predecessor())
            .chain(ring.fingers().iter().map(|f| f.peer))
            .collect();
        walk.meet(neighbours);
        self.walks.insert(id, walk);
        self.pump(cx, id);
    }

    /// The outcome of a trace question of walk `token & !TRACE_TOKEN`.
    pub(super) fn on_reply(&mut self, cx: &mut Ctx<'_>, token: u64, reply: Reply) {
        let id = token & !TRACE_TOKEN;
        let Some(walk) = self.walks.get_mut(&id) else {
            return;
        };
        let (peer, outcome) = match reply {
            Reply::Answer {
                from,
                body: Response::Broadcast(super::wire::BroadcastResponse::Trace(r)),
            } => (
                from,
                match r {
                    TraceReply::Unknown => TraceOutcome::Unknown,
                    TraceReply::Busy => TraceOutcome::Busy,
                    TraceReply::Hop(mut h) => {
                        // A hostile answer may name more; the walk takes the bound.
                        h.children.truncate(MAX_TRACE_CHILDREN);
                        TraceOutcome::Hop(h)
                    }
                },
            ),
            // An answer of another kind is no answer to this question.
            Reply::Answer { from, .. } | Reply::Unsupported { from } => {
                (from, TraceOutcome::NoAnswer)
            }
            Reply::Failed { to } => (to, TraceOutcome::NoAnswer),
        };
        let Some(slot) = walk.nodes.get_mut(&peer.id) else {
            return;
        };
        if slot.1.is_some() {
            return;
        }
        walk.in_flight = walk.in_flight.saturating_sub(1);
        let named: Vec<Peer> = match &outcome {
            TraceOutcome::Hop(h) => h.from.iter().chain(&h.children).copied().collect(),
            _ => Vec::new(),
        };
        slot.1 = Some(outcome);
        walk.meet(named);
        self.pump(cx, id);
    }

    /// Sends walk `id`'s next questions, or ends it.
    fn pump(&mut self, cx: &mut Ctx<'_>, id: u64) {
        let Some(walk) = self.walks.get_mut(&id) else {
            return;
        };
        while walk.in_flight < WALK_PARALLEL {
            let Some(p) = walk.queue.pop_front() else {
                break;
            };
            let body = Request::Broadcast(super::wire::BroadcastRequest::Trace {
                origin: walk.origin,
                seq: walk.seq,
            });
            if cx.request(p, body, BROADCAST, TRACE_TOKEN | id) {
                walk.in_flight += 1;
            } else if let Some(slot) = walk.nodes.get_mut(&p.id) {
                // The RPC engine is full: this node counts as not answering.
                slot.1 = Some(TraceOutcome::NoAnswer);
            }
        }
        if walk.in_flight == 0
            && walk.queue.is_empty()
            && let Some(walk) = self.walks.remove(&id)
        {
            let result = TraceResult {
                origin: walk.origin,
                seq: walk.seq,
                nodes: walk
                    .nodes
                    .into_values()
                    .map(|(p, o)| (p, o.unwrap_or(TraceOutcome::NoAnswer)))
                    .collect(),
                truncated: walk.truncated,
            };
            traced(cx, walk.token, Ok(result));
        }
    }

    /// Checks the bounds.
    pub(super) fn check_invariants(&self) -> Result<(), String> {
        self.log.check_invariants()?;
        if self.walks.len() > MAX_WALKS {
            return Err(format!("{} trace walks over {MAX_WALKS}", self.walks.len()));
        }
        for w in self.walks.values() {
            if w.nodes.len() > MAX_TRACE_NODES || w.in_flight > WALK_PARALLEL {
                return Err(format!(
                    "trace walk of {} nodes, {} in flight",
                    w.nodes.len(),
                    w.in_flight
                ));
            }
        }
        Ok(())
    }
}

impl Walk {
    /// Queues the nodes in `peers` not met before, up to the walk's bound.
    fn meet(&mut self, peers: impl IntoIterator<Item = Peer>) {
        for p in peers {
            if self.nodes.contains_key(&p.id) {
                continue;
            }
            if self.nodes.len() >= MAX_TRACE_NODES {
                self.truncated = true;
                return;
            }
            self.nodes.insert(p.id, (p, None));
            self.queue.push_back(p);
        }
    }
}

fn traced(cx: &mut Ctx<'_>, token: u64, result: Result<TraceResult, BroadcastError>) {
    cx.event(Event::Broadcast(BroadcastEvent::Traced { token, result }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u8) -> Peer {
        Peer {
            id: NodeId([n; 32]),
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], 7000 + u16::from(n))),
        }
    }

    #[test]
    fn the_log_keeps_the_newest_and_bounds_children() {
        let mut log = TraceLog::new(2);
        let o = NodeId([1; 32]);
        for seq in 1..=3 {
            log.received(o, seq, Some(peer(2)), Via::Tree, Some(1), Time(seq * 10));
        }
        assert_eq!(log.len(), 2);
        assert!(log.hop(o, 1, 0).is_none(), "the oldest is forgotten");
        // A second copy does not overwrite the first arrival.
        log.received(o, 3, Some(peer(9)), Via::Repair, None, Time(99));
        for n in 0..=255u8 {
            log.sent(o, 3, peer(n), Time(40));
            log.sent(o, 3, peer(n), Time(50));
        }
        let h = log.hop(o, 3, 1_000).expect("kept");
        assert_eq!(h.from, Some(peer(2)));
        assert_eq!((h.received_us, h.forwarded_us), (1_030, Some(1_040)));
        assert_eq!(h.children.len(), MAX_TRACE_CHILDREN);
        assert!(log.check_invariants().is_ok());
        // Sends of a message never received here are not logged.
        log.sent(o, 77, peer(3), Time(1));
        assert!(log.hop(o, 77, 0).is_none());
        assert!(TraceLog::new(0).is_empty());
    }

    /// A hostile node answers with far more children than a node can have, naming nodes that
    /// do not exist: the walk keeps the bound, asks each named node at most once, and ends
    /// with every node asked accounted for.
    #[test]
    fn a_lying_answer_cannot_grow_the_walk_past_its_bounds() {
        let me = peer(1);
        let mut ring = crate::Ring::new(me, crate::ring::RingConfig::default(), 7);
        ring.create(Time(0));
        let mut t = Tracing::new(16);
        let o = NodeId([1; 32]);
        t.log.received(o, 1, None, Via::Origin, Some(0), Time(1));
        t.log.sent(o, 1, peer(2), Time(2));
        t.start(&mut Ctx::new(&mut ring, Time(3)), o, 1, 42);
        let walk = *t.walks.keys().next().expect("a walk runs");
        // Node 2 lies: 3,000 children, all invented.
        let liar = TraceHop {
            from: Some(me),
            via: Via::Tree,
            depth: Some(1),
            received_us: 10,
            forwarded_us: Some(11),
            children: (0..3000u32)
                .map(|i| Peer {
                    id: NodeId(blake3::hash(&i.to_be_bytes()).into()),
                    addr: std::net::SocketAddr::from(([127, 0, 0, 9], 1)),
                })
                .collect(),
        };
        let answer = Reply::Answer {
            from: peer(2),
            body: Response::Broadcast(super::super::wire::BroadcastResponse::Trace(
                TraceReply::Hop(liar),
            )),
        };
        t.on_reply(
            &mut Ctx::new(&mut ring, Time(4)),
            TRACE_TOKEN | walk,
            answer,
        );
        assert!(t.check_invariants().is_ok());
        // The invented nodes never answer: each question fails in turn.
        let mut rounds = 0;
        while let Some(w) = t.walks.get(&walk) {
            let asked: Vec<Peer> = w
                .nodes
                .values()
                .filter(|(_, o)| o.is_none())
                .map(|(p, _)| *p)
                .take(WALK_PARALLEL)
                .collect();
            for p in asked {
                t.on_reply(
                    &mut Ctx::new(&mut ring, Time(5)),
                    TRACE_TOKEN | walk,
                    Reply::Failed { to: p },
                );
            }
            rounds += 1;
            assert!(rounds < 1000, "the walk does not end");
            assert!(t.check_invariants().is_ok());
        }
        let outs = ring.take_outputs();
        let result = outs
            .iter()
            .find_map(|o| match o {
                crate::Output::Event(Event::Broadcast(BroadcastEvent::Traced {
                    token: 42,
                    result,
                })) => Some(result.clone()),
                _ => None,
            })
            .expect("the walk ended")
            .expect("it ran");
        // Me, the liar, and at most MAX_TRACE_CHILDREN of its inventions.
        assert!(
            result.nodes.len() <= 2 + MAX_TRACE_CHILDREN,
            "{}",
            result.nodes.len()
        );
        let liar = result.nodes.iter().find(|(p, _)| p.id == peer(2).id);
        assert!(
            matches!(liar, Some((_, TraceOutcome::Hop(h))) if h.children.len() == MAX_TRACE_CHILDREN)
        );
        assert!(
            result
                .nodes
                .iter()
                .filter(|(p, _)| p.id != me.id && p.id != peer(2).id)
                .all(|(_, o)| *o == TraceOutcome::NoAnswer)
        );
    }

    #[test]
    fn a_flooding_asker_is_refused_and_others_still_answered() {
        let mut t = Tracing::new(16);
        let o = NodeId([1; 32]);
        t.log.received(o, 1, None, Via::Origin, Some(0), Time(5));
        let mut busy = 0;
        for i in 0..(ANSWER_BURST + 50) {
            match t.answer(peer(7), o, 1, Time(u64::from(i))) {
                TraceReply::Busy => busy += 1,
                TraceReply::Hop(h) => assert_eq!(h.via, Via::Origin),
                TraceReply::Unknown => panic!("the message is logged"),
            }
        }
        assert!(busy >= 49, "{busy} refusals");
        assert!(matches!(
            t.answer(peer(8), o, 1, Time(200)),
            TraceReply::Hop(_)
        ));
        assert_eq!(t.answer(peer(8), o, 2, Time(200)), TraceReply::Unknown);
    }
}
