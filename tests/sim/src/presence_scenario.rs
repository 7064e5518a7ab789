//! The presence scenario: what telling everybody who is online costs, measured on the same
//! code the daemon runs — the overlay, and the people service's presence engine
//! ([`chat_people::Engine`], one per node). A settled ring churns (joins, graceful leaves and
//! crashes, each `--churn-rate` of the nodes per minute) and every node's engine is driven as
//! the daemon's people service (`daemon/src/people`) drives it: a node that joins publishes its
//! user's profile; a node that leaves publishes its user offline first and leaves 1 s later
//! (the daemon's bound on waiting for that); the engine is told each predecessor change and
//! its clock every [`chat_people::engine::TICK_MS`] on average, and its actions are done
//! through the simulated overlay (puts, broadcasts, down reports when the directory still
//! shows the node online). Payloads are the size of a signed profile.
//!
//! What the scenario itself stands for: the records layer's handing of a stored item to its
//! holder's engine (the ended epochs' items in the true holders' stores are offered to their
//! engines), the network-wide directory (one set of nodes shown online), and the events'
//! contents (random bytes). With `--presence-direct` the engines broadcast each event on its
//! own ([`Gather::Direct`], for comparison). Reports presence events per second, the broadcast
//! messages they cost per node per second (payloads, and payloads with the per-hop and
//! completion acks), the records messages (the epochs' puts, on top of the records layer's own
//! sync), and how long a crash takes to be reported.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use chat_overlay::records::{Kind, Record, Value};
use chat_overlay::sim::Sim;
use chat_overlay::{Event, NodeId, Time};
use chat_people::down::REPORT_AFTER_MS;
use chat_people::engine::{Action, Alone, Engine, Gather, OFFLINE_DEADLINE_MS, TICK_MS};
use chat_people::epoch::{self, EPOCH, GRACE};
use ed25519_dalek::SigningKey;
use rand::Rng;

use crate::report::{Report, percentile};
use crate::scenario::{Params, secs};

/// Bytes of a people event: a signed profile with its nickname claim (486 for a typical one,
/// `daemon/src/people/event.rs`, test `a_profile_event_is_about_the_size_the_simulator_uses`).
const EVENT_BYTES: usize = 490;
/// How long after announcing offline a leaving node leaves the ring (the daemon waits for
/// the put to be stored, at most this long).
const LEAVE_AFTER: Duration = Duration::from_millis(OFFLINE_DEADLINE_MS);
/// Churn decisions are taken this often.
const TICK: Duration = Duration::from_millis(100);
/// The engines' clock ticks this often on average (as the daemon's people service ticks it).
const FLUSH: Duration = Duration::from_millis(TICK_MS);
/// How long a node waits for a vanished predecessor's goodbye before reporting it (the
/// daemon's, from `chat_people::down`).
const REPORT_AFTER: Duration = Duration::from_millis(REPORT_AFTER_MS);

/// What the scenario keeps: every node's engine, and what the network would show.
struct Watch {
    gather: Gather,
    /// Each node's presence engine (kept after its node stopped while items it put wait).
    engines: BTreeMap<u32, Engine>,
    /// Each host's broadcast sequence numbers.
    seqs: Vec<u64>,
    /// Items put (numbers their records).
    puts: u64,
    /// Which host signed items with a key (to hand a batch's items back to their engines).
    owners: HashMap<[u8; 32], u32>,
    /// Epochs with items put.
    open: BTreeSet<u64>,
    crashed_at: HashMap<NodeId, Time>,
    report_delays_ms: Vec<u32>,
    events: u64,
    /// Items put again (their epoch went out without them), broadcast alone after the
    /// engine's tries, and dropped because their publisher's node went down.
    resubmits: u64,
    fallbacks: u64,
    publisher_gone: u64,
    batches: u64,
    epoch_waits_ms: Vec<u32>,
    /// Nodes whose users every directory shows online.
    online: BTreeSet<NodeId>,
    next_flush: Option<Time>,
}

fn ms(x: u64) -> u32 {
    x.min(u64::from(u32::MAX)) as u32
}

impl Watch {
    fn new(gather: Gather) -> Watch {
        Watch {
            gather,
            engines: BTreeMap::new(),
            seqs: Vec::new(),
            puts: 0,
            owners: HashMap::new(),
            open: BTreeSet::new(),
            crashed_at: HashMap::new(),
            report_delays_ms: Vec::new(),
            events: 0,
            resubmits: 0,
            fallbacks: 0,
            publisher_gone: 0,
            batches: 0,
            epoch_waits_ms: Vec::new(),
            online: BTreeSet::new(),
            next_flush: None,
        }
    }

    fn next_seq(&mut self, host: u32) -> u64 {
        let i = host as usize;
        if self.seqs.len() <= i {
            self.seqs.resize(i + 1, 0);
        }
        self.seqs[i] += 1;
        self.seqs[i]
    }

    /// Host `host`'s engine, made for a member that has none.
    fn engine(&mut self, sim: &Sim, host: u32) -> &mut Engine {
        let (id, gather) = (sim.hosts[host as usize].peer.id, self.gather);
        self.engines
            .entry(host)
            .or_insert_with(|| Engine::new(id, gather))
    }

    /// Host `host` publishes an event (its user's profile, offline, a down report).
    fn announce(&mut self, sim: &mut Sim, host: u32) {
        self.events += 1;
        let mut payload = vec![0u8; EVENT_BYTES];
        sim.rng().fill(&mut payload[..]);
        let now_ms = sim.cfg.chord.records.wall_ms(sim.now());
        let action = self
            .engine(sim, host)
            .publish(payload, String::new(), now_ms);
        self.act(sim, host, action);
    }

    /// Does host `host`'s engine's `first` action, and those it leads to, through the
    /// simulated overlay.
    fn act(&mut self, sim: &mut Sim, host: u32, first: Action) {
        let now_ms = sim.cfg.chord.records.wall_ms(sim.now());
        let mut next = Some(first);
        while let Some(action) = next.take() {
            match action {
                Action::Put(put) => {
                    self.puts += 1;
                    if put.publication.tries > 1 {
                        self.resubmits += 1;
                    }
                    let key = SigningKey::from_bytes(blake3::hash(&host.to_be_bytes()).as_bytes());
                    self.owners.insert(key.verifying_key().to_bytes(), host);
                    let item = Record::sign(
                        Kind::Mailbox,
                        put.key.to_vec(),
                        Value::Data(put.value),
                        &key,
                        self.puts,
                        now_ms,
                        now_ms + put.ttl_ms,
                    );
                    let hash = item.hash();
                    sim.put_record(host, self.puts, item, false);
                    self.open.insert(put.epoch);
                    next = self
                        .engine(sim, host)
                        .put_done(put.publication, hash, now_ms);
                }
                Action::Broadcast { publication, why } => {
                    if why == Alone::NeverBatched {
                        self.fallbacks += 1;
                        let wait = now_ms.saturating_sub(publication.born_ms);
                        self.epoch_waits_ms.push(ms(wait));
                    }
                    let seq = self.next_seq(host);
                    sim.broadcast(host, seq, publication.event);
                }
                Action::Batch { items, .. } => {
                    // Each item's wait counts once, when it first goes out in a batch (its
                    // publisher's engine confirms it then).
                    for r in &items {
                        let publisher = self.owners.get(&r.owner).copied();
                        let back = publisher
                            .and_then(|p| self.engines.get_mut(&p))
                            .and_then(|e| e.confirm(&r.hash()));
                        if let Some(p) = back {
                            let wait = now_ms.saturating_sub(p.born_ms);
                            self.epoch_waits_ms.push(ms(wait));
                        }
                    }
                    let size: usize = items.iter().map(|r| r.value_len() + 200).sum();
                    let seq = self.next_seq(host);
                    sim.broadcast(host, seq, vec![0u8; size]);
                    self.batches += 1;
                }
                Action::ReportDown(dead) => {
                    // Another reported it first, or it said goodbye (the daemon's directory
                    // shows it offline already: nothing to report).
                    if !self.online.remove(&dead) {
                        continue;
                    }
                    if let Some(t) = self.crashed_at.get(&dead) {
                        let delay = sim.now().since(*t).as_millis();
                        self.report_delays_ms.push(ms(delay as u64));
                    }
                    self.announce(sim, host);
                }
            }
        }
    }

    /// The engines' clock: the ended epochs' items their true holders store reach the
    /// holders' engines (as the records layer hands them over), then every engine ticks.
    /// A stopped node's engine only tells which of its items were waiting (lost with it).
    fn tick(&mut self, sim: &mut Sim) {
        let now_ms = sim.cfg.chord.records.wall_ms(sim.now());
        if self.gather == Gather::Epochs {
            let epoch_ms = EPOCH.as_millis() as u64;
            let grace = GRACE.as_millis() as u64;
            let due: Vec<u64> = self
                .open
                .iter()
                .copied()
                .filter(|e| (e + 1) * epoch_ms + grace <= now_ms)
                .collect();
            for e in due {
                let loc = epoch::epoch_location(e);
                let key = epoch::epoch_key(e);
                for id in sim.true_holders(&loc, 3) {
                    let Some(host) = sim.host_of(&id) else {
                        continue;
                    };
                    let Some(node) = sim.hosts[host as usize].node.as_ref() else {
                        continue;
                    };
                    let items: Vec<Record> = node
                        .records()
                        .store()
                        .get(&loc, Kind::Mailbox as u8, &key, now_ms)
                        .into_iter()
                        .cloned()
                        .collect();
                    if let Some(engine) = self.engines.get_mut(&host) {
                        for r in items {
                            engine.held(r, now_ms);
                        }
                    }
                }
            }
            // Epochs long over are done (their holders keep nothing older either).
            let old = epoch::epoch_of(now_ms).saturating_sub(30);
            self.open.retain(|e| *e >= old);
        }
        let hosts: Vec<u32> = self.engines.keys().copied().collect();
        for host in hosts {
            let Some(engine) = self.engines.get_mut(&host) else {
                continue;
            };
            if engine.idle() {
                // Its tick would do nothing; a stopped node's is done with.
                if !sim.is_up(host) {
                    self.engines.remove(&host);
                }
                continue;
            }
            let actions = engine.tick(now_ms);
            if sim.is_up(host) {
                for a in actions {
                    self.act(sim, host, a);
                }
                continue;
            }
            self.publisher_gone += actions
                .iter()
                .filter(|a| {
                    matches!(
                        a,
                        Action::Put(_)
                            | Action::Broadcast {
                                why: Alone::NeverBatched,
                                ..
                            }
                    )
                })
                .count() as u64;
            if engine.pending() == 0 {
                self.engines.remove(&host);
            }
        }
    }

    /// Ticks the engines if their time has come (every [`FLUSH`] on average).
    fn maybe_tick(&mut self, sim: &mut Sim) {
        let now = sim.now();
        let at = *self.next_flush.get_or_insert(now);
        if now >= at {
            self.tick(sim);
            self.next_flush = Some(at + FLUSH);
        }
    }

    /// Items put and not yet seen in a batch.
    fn pending(&self) -> usize {
        self.engines.values().map(Engine::pending).sum()
    }

    /// Acts on the ring events since the last call: joined nodes announce, every engine
    /// hears of its new predecessors.
    fn react(&mut self, sim: &mut Sim) {
        let evs = sim.ring_events.replace(Vec::new()).unwrap_or_default();
        for (host, ev) in evs {
            if !sim.is_up(host) {
                continue;
            }
            match ev {
                Event::Joined => {
                    let id = sim.hosts[host as usize].peer.id;
                    self.engines.insert(host, Engine::new(id, self.gather));
                    self.online.insert(id);
                    self.announce(sim, host);
                }
                Event::PredecessorChanged(new) => {
                    let now_ms = sim.cfg.chord.records.wall_ms(sim.now());
                    let online = &self.online;
                    // The directory's nodes with users online between two nodes, as the
                    // daemon's directory answers.
                    let between = |from: &NodeId, to: &NodeId| {
                        chat_people::down::online_between(online.iter().copied(), from, to)
                    };
                    let (id, gather) = (sim.hosts[host as usize].peer.id, self.gather);
                    self.engines
                        .entry(host)
                        .or_insert_with(|| Engine::new(id, gather))
                        .predecessor_changed(new, between, now_ms);
                }
                _ => {}
            }
        }
    }
}

/// Runs the churn with presence and fills the report.
pub fn run(sim: &mut Sim, p: &Params, rep: &mut Report) {
    let n = p.nodes as f64;
    let rate = p.churn_rate * n / 60.0;
    let per_tick = (rate * TICK.as_secs_f64()).min(1.0);
    let mut w = Watch::new(if p.presence_direct {
        Gather::Direct
    } else {
        Gather::Epochs
    });
    sim.ring_events = Some(Vec::new());
    // Every member knows its predecessor as churn starts.
    for h in 0..sim.hosts.len() as u32 {
        if sim.is_up(h) {
            let pred = sim.hosts[h as usize]
                .node
                .as_ref()
                .and_then(|o| o.ring().predecessor());
            let id = sim.hosts[h as usize].peer.id;
            let mut engine = Engine::new(id, w.gather);
            engine.predecessor_changed(pred, |_, _| Vec::new(), 0);
            w.engines.insert(h, engine);
            w.online.insert(id);
        }
    }
    let before_sends: u64 = sim.tracker.transmissions_total();
    let before_replies = sim.tracker.replies;
    let before_groups = sim.tracker.reply_groups;
    let before_delivered = sim.net.delivered;
    let before_records = sim.net.records_messages;
    let (mut joins, mut leaves, mut crashes) = (0u64, 0u64, 0u64);
    let mut leaving: Vec<(Time, u32)> = Vec::new();
    let mut live_sum = 0.0;
    let mut ticks = 0u64;
    let start = sim.now();
    let end = start + p.churn_duration;
    while sim.now() < end {
        if crate::scenario::maybe_join(sim, per_tick) {
            joins += 1;
        }
        if sim.rng().random_bool(per_tick)
            && let Some(i) = sim.random_member()
            && !leaving.iter().any(|(_, h)| *h == i)
        {
            // Offline first, then leave (the daemon's shutdown order).
            w.online.remove(&sim.hosts[i as usize].peer.id);
            w.announce(sim, i);
            leaving.push((sim.now() + LEAVE_AFTER, i));
            leaves += 1;
        }
        if sim.rng().random_bool(per_tick)
            && let Some(i) = sim.random_member()
            && !leaving.iter().any(|(_, h)| *h == i)
        {
            w.crashed_at
                .insert(sim.hosts[i as usize].peer.id, sim.now());
            sim.crash(i);
            crashes += 1;
        }
        let now = sim.now();
        leaving.retain(|(at, h)| {
            if *at <= now {
                sim.leave(*h);
                false
            } else {
                true
            }
        });
        sim.run_for(TICK);
        w.react(sim);
        w.maybe_tick(sim);
        live_sum += sim.members().len() as f64;
        ticks += 1;
    }
    // The last reports and epochs (no more churn): let them be made and broadcast; their
    // cost and time count.
    // Items put again late in the run get their epochs too (bounded: 30 s at most).
    let until = sim.now() + REPORT_AFTER + EPOCH * 2;
    let limit = sim.now() + Duration::from_secs(30);
    while sim.now() < until || (w.pending() > 0 && sim.now() < limit) {
        sim.run_for(FLUSH);
        w.react(sim);
        w.tick(sim);
        live_sum += sim.members().len() as f64;
        ticks += 1;
    }
    w.report_delays_ms.sort_unstable();
    let seconds = secs(sim.now()) - secs(start);
    let live = live_sum / ticks.max(1) as f64;
    let sends = sim.tracker.transmissions_total() - before_sends;
    let replies = sim.tracker.replies - before_replies;
    let groups = sim.tracker.reply_groups - before_groups;
    let per_node_s = |x: u64| x as f64 / live / seconds;
    rep.put(
        "presence_mode",
        if w.gather == Gather::Epochs {
            "epochs"
        } else {
            "direct"
        },
    );
    rep.put("presence_seconds", seconds);
    rep.put("presence_live_nodes_mean", live);
    rep.put("churn_joins", joins);
    rep.put("churn_leaves", leaves);
    rep.put("churn_crashes", crashes);
    rep.put("presence_events", w.events);
    rep.put("presence_events_per_second", w.events as f64 / seconds);
    rep.put("crashes_reported", w.report_delays_ms.len());
    rep.put("crash_report_ms_p50", percentile(&w.report_delays_ms, 0.5));
    rep.put("crash_report_ms_p99", percentile(&w.report_delays_ms, 0.99));
    rep.put("presence_payloads_per_node_per_second", per_node_s(sends));
    rep.put(
        "presence_messages_per_node_per_second",
        per_node_s(sends + replies),
    );
    // Acks leave grouped per parent and node step: a datagram each on a real link.
    rep.put(
        "presence_datagrams_per_node_per_second",
        per_node_s(sends + groups),
    );
    rep.put(
        "all_messages_per_node_per_second",
        per_node_s(sim.net.delivered - before_delivered),
    );
    rep.put(
        "records_messages_per_node_per_second",
        per_node_s(sim.net.records_messages - before_records),
    );
    rep.put("presence_batches", w.batches);
    rep.put("presence_items_put", w.puts);
    rep.put("presence_items_put_again", w.resubmits);
    rep.put("presence_items_broadcast_alone", w.fallbacks);
    rep.put("presence_items_publisher_gone", w.publisher_gone);
    rep.put("presence_items_undelivered", w.pending());
    w.epoch_waits_ms.sort_unstable();
    rep.put("epoch_wait_ms_p50", percentile(&w.epoch_waits_ms, 0.5));
    rep.put("epoch_wait_ms_p99", percentile(&w.epoch_waits_ms, 0.99));
    let mut lat: Vec<u32> = sim
        .tracker
        .latencies_us
        .iter()
        .map(|us| (*us / 1000).min(u64::from(u32::MAX)) as u32)
        .collect();
    lat.sort_unstable();
    rep.put("event_latency_ms_p50", percentile(&lat, 0.5));
    rep.put("event_latency_ms_p99", percentile(&lat, 0.99));
    sim.ring_events = None;
    let t = crate::scenario::settle(sim, p.settle_max);
    rep.put("settle_after_churn_seconds", t);
}
