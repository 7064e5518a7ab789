//! The deterministic simulator: thousands of real [`Overlay`] nodes in one process on virtual
//! time — a seeded RNG, an event queue, per-link latency, loss, crashes, restarts with the same
//! id, graceful leaves and partitions — fed every input the daemon's driver produces: messages,
//! timers, `Unreachable` when a destination is down or cut off (after
//! [`SimConfig::unreachable_after`], as a failed dial), and an application validator on every
//! node ([`sign`]/[`verify`] stand in for the chat layer's signatures).
//!
//! The overlay's own tests and the `chat-sim` binary (`tests/sim`) both use it. For property
//! tests it can hold messages ([`Sim::set_hold`]) so an adversary delivers, duplicates or drops
//! them in any order, check every node's invariants after every input and the promise of
//! [`Overlay::wants_timer`] ([`SimConfig::checks`]), and pass every message through the wire
//! encoding ([`SimConfig::wire`]) so nodes built with and without a service can be mixed.
//! [`oracle`] compares the nodes' tables with the true ring; [`tracker`] follows broadcasts.

mod direct;
pub mod oracle;
mod outputs;
mod queue;
mod records;
mod restart;
mod service;
mod signature;
pub mod tracker;

pub use signature::{sign, verify};

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::broadcast::trace::TraceResult;
use crate::broadcast::wire::Bcast;
use crate::broadcast::{Envelope, MsgId};
use crate::direct::DirectEvent;
use crate::protocol::{Service, ServiceEvent};
use crate::records::RecordsEvent;
use crate::wire::{Notice, Request, Response};
use crate::{
    BroadcastEvent, ChordConfig, Event, Input, Message, NodeId, Output, Overlay, Peer, Time, Timer,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use queue::Queued;

/// Network model and protocol settings of one run.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Seed of everything random in the run.
    pub seed: u64,
    /// One-way latency of a link is drawn once per link from `latency_min..latency_max`.
    pub latency_min: Duration,
    /// See `latency_min`.
    pub latency_max: Duration,
    /// Extra per-message delay, uniform in `0..jitter` (reorders messages on a link).
    pub jitter: Duration,
    /// Probability that a message is lost.
    pub loss: f64,
    /// The overlay's tunables.
    pub chord: ChordConfig,
    /// A node that sends to a host that is down or cut off is told `Unreachable` this long
    /// after the message was lost (the daemon's dial timeout), once per pair and period;
    /// `None` never tells it (timeouts alone).
    pub unreachable_after: Option<Duration>,
    /// Install the [`verify`] validator on every node.
    pub validate: bool,
    /// Pass every message through [`crate::wire::encode`] and [`crate::wire::decode`].
    pub wire: bool,
    /// After every input: check the node's invariants and that a timer it once reported
    /// unwanted does nothing when it fires (panics otherwise), and record every event in
    /// [`Sim::events`]. For tests: it costs a scan of the event queue per input.
    pub checks: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            latency_min: Duration::from_millis(5),
            latency_max: Duration::from_millis(60),
            jitter: Duration::from_millis(4),
            loss: 0.0,
            chord: ChordConfig::default(),
            unreachable_after: Some(Duration::from_secs(3)),
            validate: true,
            wire: false,
            checks: false,
        }
    }
}

#[derive(Debug)]
enum Ev {
    Deliver {
        to: u32,
        inc: u32,
        from: Peer,
        msg: Message,
    },
    Timer {
        node: u32,
        inc: u32,
        timer: Timer,
        /// The node reported it unwanted since it was armed (with [`SimConfig::checks`]).
        unwanted: bool,
    },
    Input {
        node: u32,
        inc: u32,
        input: Input,
    },
}

/// Makes a fresh instance of a service for a host (at every start).
pub type ServiceFactory = fn() -> Box<dyn Service>;

/// One simulated host.
pub struct Host {
    /// Identity and address.
    pub peer: Peer,
    /// The overlay node while the host is up.
    pub node: Option<Overlay>,
    /// Services this host's build adds.
    pub services: Vec<ServiceFactory>,
    /// Bumped on every restart; stale events of an earlier life are dropped.
    pub incarnation: u32,
    /// Partition group.
    pub group: u8,
}

/// A finished application lookup.
#[derive(Clone, Copy, Debug)]
pub struct LookupRecord {
    /// Whether the answer was the key's true successor among live members.
    pub ok: bool,
    /// Requests the lookup needed.
    pub hops: u32,
}

/// Counters of the network.
#[derive(Clone, Debug, Default)]
pub struct NetStats {
    /// Messages handed to a live destination.
    pub delivered: u64,
    /// Messages lost to the loss model.
    pub lost: u64,
    /// Messages dropped at a partition boundary or a dead host.
    pub dropped: u64,
    /// `Unreachable` inputs given to senders.
    pub unreachable: u64,
    /// Records messages sent (requests, responses, notices).
    pub records_messages: u64,
    /// Messages sent, and their encoded bytes (counted with [`SimConfig::wire`] only).
    pub sent: u64,
    /// See `sent`.
    pub sent_bytes: u64,
}

/// A message held for an adversary ([`Sim::set_hold`]): destination host, sender, message.
pub type Held = (u32, Peer, Message);

/// The simulator.
pub struct Sim {
    /// Settings of the run.
    pub cfg: SimConfig,
    now: Time,
    rng: ChaCha8Rng,
    queue: BinaryHeap<Reverse<Queued>>,
    slab: Vec<Option<Ev>>,
    free: Vec<u32>,
    seq: u64,
    /// Every host ever created, by index.
    pub hosts: Vec<Host>,
    by_id: HashMap<NodeId, u32>,
    members: BTreeSet<NodeId>,
    /// Member host indices in no order, for O(1) random picks; `slot[i]` is host i's position.
    member_list: Vec<u32>,
    slot: Vec<Option<usize>>,
    up: usize,
    partitioned: bool,
    pending_lookups: HashMap<u64, NodeId>,
    next_token: u64,
    /// Finished application lookups since the last [`Sim::take_lookups`].
    pub lookups: Vec<LookupRecord>,
    /// Network counters.
    pub net: NetStats,
    /// Scenarios print progress to stderr when set.
    pub progress: bool,
    /// Broadcast bookkeeping.
    pub tracker: tracker::Tracker,
    /// Every event, by host, with [`SimConfig::checks`].
    pub events: Vec<(u32, Event)>,
    /// Records' answers and notices, by host: every event but `Held` and `Released`.
    pub record_events: Vec<(u32, RecordsEvent)>,
    /// Direct delivery's outcomes and deliveries, by host.
    pub direct_events: Vec<(u32, DirectEvent)>,
    /// Events of services without a variant in [`Event`] ([`Event::Service`]), by host.
    pub service_events: Vec<(u32, ServiceEvent)>,
    /// Ended trace walks: the host that traced, its token, and the result.
    pub traces: Vec<(u32, u64, Result<TraceResult, crate::BroadcastError>)>,
    /// When set, `Joined` and `PredecessorChanged` events by host (what an application
    /// watching its ring neighbours sees; the presence scenario takes them out as it runs).
    pub ring_events: Option<Vec<(u32, Event)>>,
    /// Messages waiting for an adversary while holding.
    pub held: VecDeque<Held>,
    hold: bool,
    /// When each (sender, destination) pair was last told `Unreachable`.
    told: HashMap<(u32, u32), Time>,
}

fn host_addr(i: u32) -> SocketAddr {
    let b = i.to_be_bytes();
    SocketAddr::from((Ipv4Addr::new(10, b[1], b[2], b[3]), 7400))
}

fn host_index(addr: &SocketAddr) -> Option<u32> {
    match addr {
        SocketAddr::V4(a) => {
            let o = a.ip().octets();
            Some(u32::from_be_bytes([0, o[1], o[2], o[3]]))
        }
        SocketAddr::V6(_) => None,
    }
}

impl Sim {
    /// An empty network.
    pub fn new(cfg: SimConfig) -> Sim {
        Sim {
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            cfg,
            now: Time::ZERO,
            queue: BinaryHeap::new(),
            slab: Vec::new(),
            free: Vec::new(),
            seq: 0,
            hosts: Vec::new(),
            by_id: HashMap::new(),
            members: BTreeSet::new(),
            member_list: Vec::new(),
            slot: Vec::new(),
            up: 0,
            partitioned: false,
            pending_lookups: HashMap::new(),
            next_token: 0,
            lookups: Vec::new(),
            net: NetStats::default(),
            progress: false,
            tracker: tracker::Tracker::default(),
            events: Vec::new(),
            record_events: Vec::new(),
            direct_events: Vec::new(),
            service_events: Vec::new(),
            traces: Vec::new(),
            ring_events: None,
            held: VecDeque::new(),
            hold: false,
            told: HashMap::new(),
        }
    }

    /// Current virtual time.
    pub fn now(&self) -> Time {
        self.now
    }

    /// The run's random generator (scenarios draw from it so one seed fixes everything).
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    /// Ids of live ring members, sorted.
    pub fn members(&self) -> &BTreeSet<NodeId> {
        &self.members
    }

    /// Number of hosts that are up (members or joining).
    pub fn live_count(&self) -> usize {
        self.up
    }

    fn add_member(&mut self, i: u32) {
        if self.members.insert(self.hosts[i as usize].peer.id) {
            self.slot[i as usize] = Some(self.member_list.len());
            self.member_list.push(i);
        }
    }

    fn remove_member(&mut self, i: u32) {
        if self.members.remove(&self.hosts[i as usize].peer.id)
            && let Some(k) = self.slot[i as usize].take()
        {
            self.member_list.swap_remove(k);
            if let Some(moved) = self.member_list.get(k) {
                self.slot[*moved as usize] = Some(k);
            }
        }
    }

    /// The host of a live member.
    pub fn node(&self, id: &NodeId) -> Option<&Overlay> {
        let i = *self.by_id.get(id)?;
        self.hosts[i as usize].node.as_ref()
    }

    /// Creates a host with a fresh random id (not started).
    pub fn add_host(&mut self) -> u32 {
        let mut id = [0u8; 32];
        self.rng.fill(&mut id);
        self.add_host_with_id(NodeId(id))
    }

    /// Creates a host with identifier `id` (not started).
    pub fn add_host_with_id(&mut self, id: NodeId) -> u32 {
        let i = self.hosts.len() as u32;
        let peer = Peer {
            id,
            addr: host_addr(i),
        };
        self.by_id.insert(peer.id, i);
        self.hosts.push(Host {
            peer,
            node: None,
            services: Vec::new(),
            incarnation: 0,
            group: 0,
        });
        self.slot.push(None);
        i
    }

    fn boot(&mut self, i: u32, input: Input) {
        let h = &mut self.hosts[i as usize];
        h.incarnation += 1;
        let seed = self.cfg.seed ^ ((i as u64) << 20) ^ h.incarnation as u64;
        if h.node.is_none() {
            self.up += 1;
        }
        let mut node = Overlay::new(h.peer, self.cfg.chord.clone(), seed);
        if self.cfg.validate {
            node.set_validator(Box::new(verify));
        }
        for make in &h.services {
            if let Err(e) = node.add_service(make()) {
                panic!("host {i}: {e}");
            }
        }
        h.node = Some(node);
        self.apply(i, input);
    }

    /// Starts host `i` as the founder of a ring.
    pub fn create(&mut self, i: u32) {
        self.boot(i, Input::Create);
    }

    /// Starts host `i` and joins through the live member `via`.
    pub fn join(&mut self, i: u32, via: u32) {
        let via = vec![self.hosts[via as usize].peer];
        self.boot(i, Input::Join { via });
    }

    /// A random live member's host index, if any.
    pub fn random_member(&mut self) -> Option<u32> {
        if self.member_list.is_empty() {
            return None;
        }
        let k = self.rng.random_range(0..self.member_list.len());
        Some(self.member_list[k])
    }

    /// Host `i` stops at once, losing its state; messages to it vanish.
    pub fn crash(&mut self, i: u32) {
        if self.hosts[i as usize].node.take().is_some() {
            self.up -= 1;
            self.remove_member(i);
        }
    }

    /// Host `i` leaves gracefully (its goodbyes are sent), then stops.
    pub fn leave(&mut self, i: u32) {
        if self.hosts[i as usize].node.is_some() {
            self.apply(i, Input::Leave);
            self.crash(i);
        }
    }

    /// Whether host `i` is up.
    pub fn is_up(&self, i: u32) -> bool {
        self.hosts[i as usize].node.is_some()
    }

    /// Splits the network: messages between hosts of different groups are dropped.
    pub fn partition(&mut self, groups: &[u8]) {
        for (h, g) in self.hosts.iter_mut().zip(groups) {
            h.group = *g;
        }
        self.partitioned = true;
    }

    /// Heals the partition.
    pub fn heal(&mut self) {
        self.partitioned = false;
    }

    /// Schedules a lookup from host `i` at time `at`; the outcome lands in [`Sim::lookups`].
    pub fn lookup_at(&mut self, at: Time, i: u32, key: NodeId) {
        let token = self.next_token;
        self.next_token += 1;
        self.pending_lookups.insert(token, key);
        let inc = self.hosts[i as usize].incarnation;
        self.push(
            at,
            Ev::Input {
                node: i,
                inc,
                input: Input::Lookup { key, token },
            },
        );
    }

    /// Host `i` traces broadcast (`origin`, `seq`) now; the result lands in [`Sim::traces`]
    /// with `token`.
    pub fn trace(&mut self, i: u32, origin: NodeId, seq: u64, token: u64) {
        self.apply(i, Input::Trace { origin, seq, token });
    }

    /// Host `i` broadcasts `payload` as its message `seq` now, signed for [`verify`]. Returns
    /// the message's id (`None`: the host is down).
    pub fn broadcast(&mut self, i: u32, seq: u64, payload: Vec<u8>) -> Option<MsgId> {
        let node = self.hosts[i as usize].node.as_ref()?;
        let payload = sign(&node.me().id, seq, payload);
        let env = Envelope {
            origin: node.me().id,
            seq,
            payload: payload.clone(),
        };
        let id = env.id();
        self.tracker.start(id, i, self.now);
        self.apply(i, Input::Broadcast { seq, payload });
        Some(id)
    }

    /// Host `i`'s build adds the service `make` makes (from its next start on).
    pub fn add_service(&mut self, i: u32, make: ServiceFactory) {
        self.hosts[i as usize].services.push(make);
    }

    /// The host index of `id`.
    pub fn host_of(&self, id: &NodeId) -> Option<u32> {
        self.by_id.get(id).copied()
    }

    /// Feeds `input` to host `i` now (as its driver would) and carries out the outputs.
    pub fn input(&mut self, i: u32, input: Input) {
        self.apply(i, input);
    }

    /// While holding, messages wait in [`Sim::held`] for [`Sim::deliver_held`] instead of
    /// travelling; releasing puts every held message on its way.
    pub fn set_hold(&mut self, hold: bool) {
        self.hold = hold;
        if !hold {
            while let Some((to, from, msg)) = self.held.pop_front() {
                self.travel(to, from, msg);
            }
        }
    }

    /// Delivers held message `k` now (keeping a copy when `duplicate`).
    pub fn deliver_held(&mut self, k: usize, duplicate: bool) {
        let item = if duplicate {
            self.held.get(k).cloned()
        } else {
            self.held.remove(k)
        };
        if let Some((to, from, msg)) = item
            && self
                .hosts
                .get(to as usize)
                .is_some_and(|h| h.node.is_some())
        {
            self.apply(to, Input::Message { from, msg });
        }
    }

    /// Timers in the queue of hosts' current lives: (host, timer).
    pub fn armed_timers(&self) -> Vec<(u32, Timer)> {
        self.slab
            .iter()
            .flatten()
            .filter_map(|ev| match ev {
                Ev::Timer {
                    node, inc, timer, ..
                } if self.hosts[*node as usize].incarnation == *inc => Some((*node, *timer)),
                _ => None,
            })
            .collect()
    }

    /// Runs only the timers due by `until` (messages stay held).
    pub fn fire_due(&mut self, until: Time) {
        self.run_until(until);
    }

    /// Lookups issued and not yet finished.
    pub fn lookups_pending(&self) -> usize {
        self.pending_lookups.len()
    }

    /// Drops lookups whose host died before answering; returns how many.
    pub fn abandon_lookups(&mut self) -> usize {
        let n = self.pending_lookups.len();
        self.pending_lookups.clear();
        n
    }

    fn push(&mut self, at: Time, ev: Ev) {
        self.seq += 1;
        let slot = match self.free.pop() {
            Some(s) => {
                self.slab[s as usize] = Some(ev);
                s
            }
            None => {
                self.slab.push(Some(ev));
                (self.slab.len() - 1) as u32
            }
        };
        self.queue.push(Reverse(Queued {
            at,
            seq: self.seq,
            slot,
        }));
    }

    fn link_latency(&mut self, a: u32, b: u32) -> Duration {
        let (lo, hi) = (
            self.cfg.latency_min.as_micros() as u64,
            self.cfg.latency_max.as_micros() as u64,
        );
        // A fixed latency per unordered pair: hash the pair with the seed.
        let (x, y) = if a < b { (a, b) } else { (b, a) };
        let mut h = (x as u64) << 32 | y as u64;
        h ^= self.cfg.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h = (h ^ (h >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        let base = lo + h % (hi - lo).max(1);
        let jitter = self.cfg.jitter.as_micros() as u64;
        let j = if jitter > 0 {
            self.rng.random_range(0..jitter)
        } else {
            0
        };
        Duration::from_micros(base + j)
    }

    /// Feeds `input` to host `i` now and carries out the outputs; returns how many there
    /// were.
    pub(crate) fn apply(&mut self, i: u32, input: Input) -> usize {
        let now = self.now;
        let Some(node) = self.hosts[i as usize].node.as_mut() else {
            return 0;
        };
        let outs = node.handle(now, input);
        self.carry_out(i, outs)
    }

    /// A message from `from` to host `to` was lost because `to` is down or cut off: the
    /// sender's driver notices, as a failed dial does, once per period.
    fn tell_unreachable(&mut self, from: &Peer, to: u32) {
        let Some(after) = self.cfg.unreachable_after else {
            return;
        };
        let Some(f) = self.host_of(&from.id) else {
            return;
        };
        let now = self.now;
        if self.told.get(&(f, to)).is_some_and(|t| now < *t + after) {
            return;
        }
        self.told.insert((f, to), now);
        self.net.unreachable += 1;
        let inc = self.hosts[f as usize].incarnation;
        let id = self.hosts[to as usize].peer.id;
        self.push(
            now + after,
            Ev::Input {
                node: f,
                inc,
                input: Input::Unreachable(id),
            },
        );
    }

    fn on_event(&mut self, i: u32, e: Event) {
        if self.cfg.checks {
            self.events.push((i, e.clone()));
        }
        if let Some(watch) = &mut self.ring_events
            && matches!(e, Event::Joined | Event::PredecessorChanged(_))
        {
            watch.push((i, e.clone()));
        }
        match e {
            Event::Joined => self.add_member(i),
            Event::Broadcast(BroadcastEvent::Deliver { id, depth, .. }) => {
                self.tracker.on_deliver(i, &id, depth, self.now);
            }
            Event::Broadcast(BroadcastEvent::Done(_)) => self.tracker.completed += 1,
            Event::Broadcast(BroadcastEvent::Traced { token, result }) => {
                self.traces.push((i, token, result))
            }
            Event::Records(RecordsEvent::Held(_) | RecordsEvent::Released(_)) => {}
            Event::Records(r) => self.record_events.push((i, r)),
            Event::Direct(d) => self.direct_events.push((i, d)),
            Event::Service(e) => self.service_events.push((i, e)),
            Event::Left => self.remove_member(i),
            Event::LookupDone {
                token,
                result,
                hops,
                ..
            } => {
                if let Some(key) = self.pending_lookups.remove(&token) {
                    let truth = self.true_successor(&key);
                    let ok = matches!((result, truth), (Ok(p), Some(t)) if p.id == t);
                    self.lookups.push(LookupRecord { ok, hops });
                }
            }
            _ => {}
        }
    }

    /// The successor of `key` among live members.
    pub fn true_successor(&self, key: &NodeId) -> Option<NodeId> {
        self.members
            .range(key..)
            .next()
            .or_else(|| self.members.iter().next())
            .copied()
    }

    /// Runs every event up to and including time `until`.
    pub fn run_until(&mut self, until: Time) {
        while let Some(Reverse(q)) = self.queue.peek() {
            if q.at > until {
                break;
            }
            let Some(Reverse(q)) = self.queue.pop() else {
                break;
            };
            self.now = q.at;
            let Some(ev) = self.slab[q.slot as usize].take() else {
                continue;
            };
            self.free.push(q.slot);
            match ev {
                Ev::Deliver { to, inc, from, msg } => {
                    let Some(h) = self.hosts.get(to as usize) else {
                        continue;
                    };
                    let cut = self.partitioned
                        && self
                            .by_id
                            .get(&from.id)
                            .is_some_and(|f| self.hosts[*f as usize].group != h.group);
                    if h.node.is_none() || h.incarnation != inc || cut {
                        self.net.dropped += 1;
                        if h.node.is_none() || cut {
                            self.tell_unreachable(&from, to);
                        }
                        continue;
                    }
                    self.net.delivered += 1;
                    self.apply(to, Input::Message { from, msg });
                }
                Ev::Timer {
                    node,
                    inc,
                    timer,
                    unwanted,
                } => {
                    if self.hosts[node as usize].incarnation == inc {
                        let outputs = self.apply(node, Input::Timer(timer));
                        assert!(
                            !unwanted || outputs == 0,
                            "host {node}: {timer:?} acted after it was unwanted"
                        );
                    }
                }
                Ev::Input { node, inc, input } => {
                    if self.hosts[node as usize].incarnation == inc {
                        self.apply(node, input);
                    } else if let Input::Lookup { token, .. } = input {
                        self.pending_lookups.remove(&token);
                    }
                }
            }
        }
        self.now = self.now.max(until);
    }

    /// Forms one ring of the hosts `0..n` (already added): host 0 founds it, the others join
    /// through it 50 ms apart; then runs until all `n` are members and the ring is correct (and,
    /// with `full_lists`, every successor list complete). Panics after 120 virtual seconds.
    pub fn form_ring(&mut self, n: u32, full_lists: bool) {
        self.create(0);
        for i in 1..n {
            self.join(i, 0);
            self.run_for(Duration::from_millis(50));
        }
        let deadline = self.now() + Duration::from_secs(120);
        while !(self.members().len() == n as usize && {
            let c = oracle::check(self);
            c.ring_correct && (!full_lists || c.successor_lists_correct == 1.0)
        }) {
            assert!(self.now() < deadline, "the ring did not form");
            self.run_for(Duration::from_millis(500));
        }
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    /// Removes and returns the finished lookups.
    pub fn take_lookups(&mut self) -> Vec<LookupRecord> {
        std::mem::take(&mut self.lookups)
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod young_cut;
