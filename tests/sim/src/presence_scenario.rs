//! The presence scenario: what telling everybody who is online costs, measured on the same
//! overlay code the daemon runs. A settled ring churns (joins, graceful leaves and crashes,
//! each `--churn-rate` of the nodes per minute) and every node does what the daemon's people
//! service does (`daemon/src/people`): a node that joins publishes its user's profile; a
//! node that leaves publishes its user offline first and leaves 1 s later (the daemon's bound
//! on waiting for that); a node whose predecessor vanished without leaving (the new
//! predecessor does not lie between the old one and itself) reports it down 3 s later.
//! Payloads are the size of a signed profile.
//!
//! Events travel as the daemon sends them: gathered per presence epoch
//! ([`chat_overlay::presence`]: each event is put as a mailbox item under the epoch's key, and
//! the epoch's primary holder broadcasts the items together once the epoch is over), or, with
//! `--presence-direct`, each broadcast on its own (the daemon's fallback). Reports presence
//! events per second, the broadcast messages they cost per node per second (payloads, and
//! payloads with the per-hop and completion acks), the records messages (the epochs' puts, on
//! top of the records layer's own sync), and how long a crash takes to be reported.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use chat_overlay::presence::{self, EPOCH, GRACE, ITEM_TTL};
use chat_overlay::records::{Hash, Kind, Record, Value};
use chat_overlay::sim::Sim;
use chat_overlay::{Event, NodeId, Time};
use chat_people::DownWatch;
use chat_people::down::REPORT_AFTER_MS;
use ed25519_dalek::SigningKey;
use rand::Rng;

use crate::report::{Report, percentile};
use crate::scenario::{Params, secs};

/// Bytes of a people event: a signed profile with its nickname claim (486 for a typical one,
/// `daemon/src/people/event.rs`, test `a_profile_event_is_about_the_size_the_simulator_uses`).
const EVENT_BYTES: usize = 490;
/// How long after announcing offline a leaving node leaves the ring (the daemon waits for
/// the put to be stored, at most `OFFLINE_DEADLINE`, 1 s).
const LEAVE_AFTER: Duration = Duration::from_millis(1000);
/// Churn decisions are taken this often.
const TICK: Duration = Duration::from_millis(100);
/// Holders look for ended epochs this often (as the daemon's people service does).
const FLUSH: Duration = Duration::from_millis(250);
/// How long a node waits for a vanished predecessor's goodbye before reporting it (the
/// daemon's, from `chat_people::down`).
const REPORT_AFTER: Duration = Duration::from_millis(REPORT_AFTER_MS);

/// How many times a publisher puts an item before broadcasting it alone (the daemon's `TRIES`).
const TRIES: u32 = 3;

/// An item a publisher waits to see in a batch.
struct Pending {
    host: u32,
    payload: Vec<u8>,
    /// When the event happened (its wait counts from here).
    born: Time,
    /// When it was last put.
    put_at: Time,
    tries: u32,
}

/// Per-host state the scenario keeps, as each daemon would.
#[derive(Default)]
struct Watch {
    seqs: Vec<u64>,
    /// Items put (numbers their records).
    puts: u64,
    /// Each node's watch on its predecessors: the daemon's [`DownWatch`].
    downs: std::collections::BTreeMap<u32, DownWatch>,
    crashed_at: HashMap<NodeId, Time>,
    report_delays_ms: Vec<u32>,
    events: u64,
    /// Gather events per epoch (the daemon's way) rather than broadcast each.
    batched: bool,
    /// Each holder's view of the epochs' items.
    held: HashMap<u32, presence::Held>,
    /// Epochs with items put.
    open: BTreeSet<u64>,
    /// Items put and not yet seen in a batch, by hash (the daemon's `pending`).
    pending: HashMap<Hash, Pending>,
    /// Items put again (their epoch went out without them), broadcast alone after
    /// [`TRIES`] puts, and dropped because their publisher's node went down.
    resubmits: u64,
    fallbacks: u64,
    publisher_gone: u64,
    batches: u64,
    epoch_waits_ms: Vec<u32>,
    /// Nodes whose users every directory shows online.
    online: std::collections::BTreeSet<NodeId>,
    next_flush: Option<Time>,
}

impl Watch {
    fn next_seq(&mut self, host: u32) -> u64 {
        let i = host as usize;
        if self.seqs.len() <= i {
            self.seqs.resize(i + 1, 0);
        }
        self.seqs[i] += 1;
        self.seqs[i]
    }

    fn announce(&mut self, sim: &mut Sim, host: u32) {
        self.events += 1;
        let mut payload = vec![0u8; EVENT_BYTES];
        sim.rng().fill(&mut payload[..]);
        if !self.batched {
            let seq = self.next_seq(host);
            sim.broadcast(host, seq, payload);
            return;
        }
        let now = sim.now();
        self.put(sim, host, payload, now, 1);
    }

    /// Puts an item under the current epoch, as the daemon's `put_item`.
    fn put(&mut self, sim: &mut Sim, host: u32, payload: Vec<u8>, born: Time, tries: u32) {
        self.puts += 1;
        let now_ms = sim.cfg.chord.records.wall_ms(sim.now());
        let e = presence::epoch_of(now_ms);
        let key = SigningKey::from_bytes(blake3::hash(&host.to_be_bytes()).as_bytes());
        let item = Record::sign(
            Kind::Mailbox,
            presence::epoch_key(e).to_vec(),
            Value::Data(payload.clone()),
            &key,
            self.puts,
            now_ms,
            now_ms + ITEM_TTL.as_millis() as u64,
        );
        let pending = Pending {
            host,
            payload,
            born,
            put_at: sim.now(),
            tries,
        };
        self.pending.insert(item.hash(), pending);
        sim.put_record(host, self.puts, item, false);
        self.open.insert(e);
    }

    /// Items that did not come back in a batch within three epochs: put again, or after
    /// [`TRIES`] puts broadcast alone (the daemon's `resubmit`).
    fn resubmit(&mut self, sim: &mut Sim) {
        let now = sim.now();
        let late = EPOCH * 3 + GRACE;
        let stale: Vec<Hash> = self
            .pending
            .iter()
            .filter(|(_, p)| now.since(p.put_at) > late)
            .map(|(h, _)| *h)
            .collect();
        for h in stale {
            let Some(p) = self.pending.remove(&h) else {
                continue;
            };
            if !sim.is_up(p.host) {
                self.publisher_gone += 1;
            } else if p.tries < TRIES {
                self.resubmits += 1;
                self.put(sim, p.host, p.payload, p.born, p.tries + 1);
            } else {
                self.fallbacks += 1;
                let seq = self.next_seq(p.host);
                sim.broadcast(p.host, seq, p.payload);
                let ms = now.since(p.born).as_millis();
                self.epoch_waits_ms
                    .push(ms.min(u128::from(u32::MAX)) as u32);
            }
        }
    }

    /// Reports the vanished predecessors whose wait is over and that are still outside the
    /// ring (by a reporter still up), as the daemon's [`DownWatch`] says.
    fn report(&mut self, sim: &mut Sim) {
        let now = sim.now();
        let now_ms = sim.cfg.chord.records.wall_ms(now);
        let mut due = Vec::new();
        for (&host, w) in &mut self.downs {
            if sim.is_up(host) {
                due.extend(w.due(now_ms).into_iter().map(|dead| (host, dead)));
            }
        }
        for (host, dead) in due {
            // Another reported it first, or it said goodbye (the daemon's directory shows
            // it offline already: nothing to report).
            if !self.online.contains(&dead) {
                continue;
            }
            self.online.remove(&dead);
            if let Some(t) = self.crashed_at.get(&dead) {
                let ms = now.since(*t).as_millis();
                self.report_delays_ms
                    .push(ms.min(u128::from(u32::MAX)) as u32);
            }
            self.announce(sim, host);
        }
    }

    /// The epochs' holders broadcast what they hold for ended epochs, as the daemon does
    /// (`flush_epochs`): a holder sees its items in its store, decides by its own
    /// predecessor whether it holds the epoch first, and broadcasts the items in batches.
    fn flush(&mut self, sim: &mut Sim) {
        let now_ms = sim.cfg.chord.records.wall_ms(sim.now());
        let epoch_ms = EPOCH.as_millis() as u64;
        let grace = GRACE.as_millis() as u64;
        let due: Vec<u64> = self
            .open
            .iter()
            .copied()
            .filter(|e| (e + 1) * epoch_ms + grace <= now_ms)
            .collect();
        for e in due {
            let loc = presence::epoch_location(e);
            let key = presence::epoch_key(e);
            for id in sim.true_holders(&loc, 3) {
                let Some(host) = sim.host_of(&id) else {
                    continue;
                };
                let Some(node) = sim.hosts[host as usize].node.as_ref() else {
                    continue;
                };
                let me = node.me().id;
                let pred = node.ring().predecessor();
                let items: Vec<Record> = node
                    .records()
                    .store()
                    .get(&loc, Kind::Mailbox as u8, &key, now_ms)
                    .into_iter()
                    .cloned()
                    .collect();
                let held = self.held.entry(host).or_default();
                for r in items {
                    held.offer(r, now_ms);
                }
                let ready = held.due(now_ms, |l| {
                    pred.is_none_or(|p| *l == me || l.in_open(&p.id, &me))
                });
                for (_, its) in ready {
                    // Each item's wait counts once, when it first goes out in a batch.
                    let now = sim.now();
                    for r in &its {
                        if let Some(p) = self.pending.remove(&r.hash()) {
                            let ms = now.since(p.born).as_millis();
                            self.epoch_waits_ms
                                .push(ms.min(u128::from(u32::MAX)) as u32);
                        }
                    }
                    for part in presence::chunks(its) {
                        let size: usize = part.iter().map(|r| r.value_len() + 200).sum();
                        let seq = self.next_seq(host);
                        sim.broadcast(host, seq, vec![0u8; size]);
                        self.batches += 1;
                    }
                }
            }
        }
        // Epochs long over are done (their holders keep nothing older either).
        let old = presence::epoch_of(now_ms).saturating_sub(30);
        self.open.retain(|e| *e >= old);
        self.resubmit(sim);
    }

    /// Acts on the ring events since the last call: joined nodes announce, nodes whose
    /// predecessor vanished report it.
    fn react(&mut self, sim: &mut Sim) {
        let evs = sim.ring_events.replace(Vec::new()).unwrap_or_default();
        for (host, ev) in evs {
            if !sim.is_up(host) {
                continue;
            }
            match ev {
                Event::Joined => {
                    let id = sim.hosts[host as usize].peer.id;
                    self.downs.insert(host, DownWatch::new(id));
                    self.online.insert(id);
                    self.announce(sim, host);
                }
                Event::PredecessorChanged(new) => {
                    let me = sim.hosts[host as usize].peer.id;
                    let now_ms = sim.cfg.chord.records.wall_ms(sim.now());
                    let online = &self.online;
                    // The directory's nodes with users online between two nodes (sorted,
                    // at most 64, as the daemon's `online_nodes_between`).
                    let between = |from: &NodeId, to: &NodeId| {
                        online
                            .iter()
                            .filter(|n| n.in_open(from, to))
                            .take(64)
                            .copied()
                            .collect()
                    };
                    self.downs
                        .entry(host)
                        .or_insert_with(|| DownWatch::new(me))
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
    let mut w = Watch {
        batched: !p.presence_direct,
        ..Watch::default()
    };
    sim.ring_events = Some(Vec::new());
    // Every member knows its predecessor as churn starts.
    for h in 0..sim.hosts.len() as u32 {
        if sim.is_up(h) {
            let pred = sim.hosts[h as usize]
                .node
                .as_ref()
                .and_then(|o| o.ring().predecessor());
            let mut down = DownWatch::new(sim.hosts[h as usize].peer.id);
            down.predecessor_changed(pred, |_, _| Vec::new(), 0);
            w.downs.insert(h, down);
            w.online.insert(sim.hosts[h as usize].peer.id);
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
        w.report(sim);
        if w.batched && w.next_flush.is_none_or(|t| sim.now() >= t) {
            w.flush(sim);
            w.next_flush = Some(sim.now() + FLUSH);
        }
        live_sum += sim.members().len() as f64;
        ticks += 1;
    }
    // The last reports and epochs (no more churn): let them be made and broadcast; their
    // cost and time count.
    // Items put again late in the run get their epochs too (bounded: 30 s at most).
    let until = sim.now() + REPORT_AFTER + EPOCH * 2;
    let limit = sim.now() + Duration::from_secs(30);
    while sim.now() < until || (!w.pending.is_empty() && sim.now() < limit) {
        sim.run_for(FLUSH);
        w.react(sim);
        w.report(sim);
        if w.batched {
            w.flush(sim);
        }
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
    rep.put("presence_mode", if w.batched { "epochs" } else { "direct" });
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
    rep.put("presence_items_undelivered", w.pending.len());
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
