//! The private-messages scenario: every node of a settled ring hosts one account with a real
//! [`chat_dm::Engine`] (real keys, Olm sessions and sealed items), driven as the daemon drives
//! it: the daemon's delivery service ([`chat_dm::service`]) through [`crate::dm_driver`]. Every account publishes its key bundle; `R` recipients leave
//! gracefully (their bundles stay in the DHT); disjoint senders send `M` messages to random
//! recipients over a minute — direct delivery fails, so they become mailbox items — while
//! 30 % of the other nodes (senders included) crash in three waves. Crashed senders restart
//! five minutes later with their engine restored from what it persisted; the rest stay down.
//! After more than 1.3 re-put periods the recipients come back (same node id, engine
//! restored) and read their mailboxes at once, then after 2 s doubling up to every 120 s (and
//! when a sender's node pokes them); their senders, seeing them online again, send what waits
//! directly. Other orders ([`DmOrder`]): `early` — the recipients come back right after the
//! sends, while items are still on their way, and the crash waves spare the senders;
//! `senders-gone` — every sender stops for good once its items are stored, before the
//! recipients return; `sender-back` — every sender stops right after its sends (items still on
//! their way), the recipients return, then the senders (each message then timed from the
//! later of the two returns).
//!
//! Reported: `lost` (messages never shown), `duplicates` (shown more than once), `out_of_order`
//! (shown out of the sender's order), `outboxes_pending` (messages a sender still waits to
//! have acknowledged), the mailbox items that lost every replica in a crash wave and how many
//! lacked a copy when the recipients returned, re-puts, how long the recipients took to see
//! everything, and the slowest message counted from its recipient's own return.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use chat_dm::Status;
use chat_dm::engine::REPUT_MS;
use chat_overlay::Time;
use chat_overlay::sim::Sim;
use ed25519_dalek::SigningKey;
use rand::Rng;

use crate::dm_driver::Driver;
use crate::report::Report;
use crate::scenario::{DmOrder, Params, secs};

/// The driver acts (ticks the engines) this often.
const TICK: Duration = Duration::from_secs(1);
/// Crashed senders come back after this long.
const RESTART_AFTER: Duration = Duration::from_secs(300);
/// Crash waves while the messages are sent.
const WAVES: usize = 3;
/// Longest wait for the recipients to see everything after they return.
const DRAIN_MAX: Duration = Duration::from_secs(1800);

/// The driver and the scenario's schedule.
struct World {
    d: Driver,
    last_tick: Time,
    /// Crashed senders' restarts: (when, host).
    restarts: Vec<(Time, u32)>,
}

impl World {
    /// Runs the simulation until `until`, the driver acting every [`TICK`] and restarting the
    /// senders that are due.
    fn advance(&mut self, sim: &mut Sim, until: Time) {
        while sim.now() < until {
            let next = (self.last_tick + TICK).min(until);
            sim.run_until(next);
            self.d.pump(sim);
            if sim.now() >= self.last_tick + TICK {
                self.last_tick = sim.now();
                let now = sim.now();
                let due: Vec<u32> = self
                    .restarts
                    .iter()
                    .filter(|(t, _)| *t <= now)
                    .map(|(_, h)| *h)
                    .collect();
                self.restarts.retain(|(t, _)| *t > now);
                for h in due {
                    if let Some(via) = sim.random_member() {
                        self.d.restart(sim, h, via);
                    }
                }
                self.d.tick(sim);
            }
        }
    }

    fn advance_for(&mut self, sim: &mut Sim, d: Duration) {
        let until = sim.now() + d;
        self.advance(sim, until);
    }
}

fn shuffle(sim: &mut Sim, v: &mut [u32]) {
    for i in (1..v.len()).rev() {
        let j = sim.rng().random_range(0..=i);
        v.swap(i, j);
    }
}

/// Mailbox items (of messages) of which no true holder has a copy now.
fn items_without_copy(sim: &Sim, w: &World, recipients: &BTreeSet<[u8; 32]>) -> usize {
    let k = sim.cfg.chord.records.replicas;
    w.d.stored
        .iter()
        .filter(|(to, _)| recipients.contains(to))
        .filter(|(_, r)| {
            let h = r.hash();
            !sim.true_holders(&r.location(), k).iter().any(|id| {
                sim.node(id)
                    .is_some_and(|n| n.records().store().contains(&h))
            })
        })
        .count()
}

/// Runs the private-messages scenario on a settled ring and fills the report.
pub fn run(sim: &mut Sim, p: &Params, rep: &mut Report) {
    let mut live: Vec<u32> = (0..sim.hosts.len() as u32)
        .filter(|i| sim.is_up(*i))
        .collect();
    let n = live.len();
    let r = p.recipients.unwrap_or(n / 10).clamp(1, (n / 3).max(1));
    let s = r.min(n - r).max(1);
    let m = p.messages.unwrap_or(n);
    let mut w = World {
        d: Driver::new(),
        last_tick: sim.now(),
        restarts: Vec::new(),
    };
    let t_start = sim.now();
    let msgs_start = sim.net.delivered;
    let rec_msgs_start = sim.net.records_messages;

    // 1. Every account publishes its bundle.
    for &h in &live {
        let mut seed = [0u8; 32];
        sim.rng().fill(&mut seed);
        w.d.host(sim, h, SigningKey::from_bytes(&seed));
    }
    let t0 = sim.now();
    while (w.d.stats().bundles_published as usize) < n && sim.now().since(t0) < p.settle_max {
        w.advance_for(sim, TICK);
    }
    rep.put("accounts", n);
    rep.put("bundles_published", w.d.stats().bundles_published);
    rep.put("publish_seconds", sim.now().since(t0).as_secs_f64());

    // 2. The recipients leave; the senders are others.
    shuffle(sim, &mut live);
    let recipients: Vec<u32> = live[..r].to_vec();
    let senders: Vec<u32> = live[r..r + s].to_vec();
    // The crash waves' victims: senders too only in the late order.
    let pool: Vec<u32> = if p.dm_order == DmOrder::Late {
        live[r..].to_vec()
    } else {
        live[r + s..].to_vec()
    };
    let sender_set: BTreeSet<u32> = senders.iter().copied().collect();
    let rcpt_accounts: Vec<[u8; 32]> = recipients
        .iter()
        .map(|h| w.d.account(*h).expect("hosted"))
        .collect();
    let rcpt_set: BTreeSet<[u8; 32]> = rcpt_accounts.iter().copied().collect();
    for &h in &recipients {
        w.d.stop(sim, h, true);
    }
    w.advance_for(sim, Duration::from_secs(10));
    rep.put("recipients", r);
    rep.put("senders", s);
    rep.put("messages", m);

    // 3. and 4. The sends, spread over a minute, and the crash waves among them.
    let spread = Duration::from_secs(60);
    let send_start = sim.now();
    let per_wave = ((pool.len() as f64) * p.crash_fraction / WAVES as f64).round() as usize;
    let mut crash_order = pool.clone();
    shuffle(sim, &mut crash_order);
    let mut crash_iter = crash_order.into_iter();
    let mut waves_done = 0;
    let mut crashed = 0usize;
    let mut senders_crashed = 0usize;
    let mut lost_all = 0usize;
    let mut last_wave = send_start;
    // Per (sender, recipient) the message numbers in the order the sender's engine took them.
    let mut sent_order: BTreeMap<([u8; 32], [u8; 32]), Vec<usize>> = BTreeMap::new();
    let mut sent_ids: HashMap<[u8; 16], usize> = HashMap::new();
    let mut edits: HashMap<[u8; 16], usize> = HashMap::new();
    let mut edits_refused = 0usize;
    let mut refused = 0usize;
    let mut deferred: Vec<usize> = Vec::new();
    let mut targets: Vec<(usize, [u8; 32])> = Vec::with_capacity(m);
    for k in 0..m {
        let to = rcpt_accounts[sim.rng().random_range(0..rcpt_accounts.len())];
        targets.push((k, to));
    }
    let mut k = 0usize;
    let mut turn = 0usize;
    while k < m || !deferred.is_empty() {
        let at = if k < m {
            send_start + spread.mul_f64(k as f64 / m as f64)
        } else {
            sim.now() + TICK
        };
        // A crash wave is due at each quarter of the spread.
        let wave_at = send_start + spread.mul_f64((waves_done + 1) as f64 / (WAVES + 1) as f64);
        if waves_done < WAVES && wave_at <= at {
            w.advance(sim, wave_at);
            let mut victims = Vec::new();
            for h in crash_iter.by_ref() {
                if sim.is_up(h) {
                    victims.push(h);
                }
                if victims.len() == per_wave {
                    break;
                }
            }
            for &h in &victims {
                w.d.stop(sim, h, false);
                if sender_set.contains(&h) {
                    senders_crashed += 1;
                    w.restarts.push((sim.now() + RESTART_AFTER, h));
                }
            }
            crashed += victims.len();
            lost_all += items_without_copy(sim, &w, &rcpt_set);
            waves_done += 1;
            last_wave = sim.now();
            if sim.progress {
                eprintln!(
                    "t={:.1}s wave {waves_done}: {} crashed, {lost_all} items without a copy so far",
                    secs(sim.now()),
                    victims.len()
                );
            }
            continue;
        }
        w.advance(sim, at);
        let (kk, to) = if k < m {
            k += 1;
            targets[k - 1]
        } else {
            targets[deferred.remove(0)]
        };
        // The next sender whose node is up (a crashed one's user cannot send).
        let mut from = None;
        for _ in 0..senders.len() {
            let h = senders[turn % senders.len()];
            turn += 1;
            if w.d.engine(h).is_some() {
                from = Some(h);
                break;
            }
        }
        let Some(from) = from else {
            deferred.push(kk);
            continue;
        };
        let text = kk.to_string();
        match w.d.send_text(sim, from, to, &text) {
            Ok(shown) => {
                let me = w.d.account(from).expect("hosted");
                sent_order.entry((me, to)).or_default().push(kk);
                sent_ids.insert(shown.id, kk);
                // Every tenth message is edited at once (in the same stream, behind it).
                if kk % 10 == 0 {
                    match w
                        .d
                        .edit_text(sim, from, to, shown.id, &format!("{kk} edited"))
                    {
                        Ok(()) => {
                            edits.insert(shown.id, kk);
                        }
                        Err(_) => edits_refused += 1,
                    }
                }
            }
            Err(_) => {
                refused += 1;
                deferred.push(kk);
            }
        }
    }
    rep.put("edits_sent", edits.len());
    rep.put("edits_refused", edits_refused);
    rep.put("send_seconds", sim.now().since(send_start).as_secs_f64());
    rep.put("sends_refused_then_retried", refused);
    rep.put("crash_waves", waves_done);
    rep.put("crashed", crashed);
    rep.put("senders_crashed", senders_crashed);
    rep.put("items_lost_every_replica", lost_all);

    match p.dm_order {
        DmOrder::Late => {
            // The DHT repairs; the restarted senders re-put what lost its copies.
            let back_at = last_wave
                + Duration::from_millis((REPUT_MS as f64 * 1.3) as u64)
                + Duration::from_secs(60);
            w.advance(sim, back_at.max(sim.now()));
        }
        DmOrder::Early => w.advance_for(sim, Duration::from_secs(2)),
        DmOrder::SenderBack => {
            // Each sender's user quits right after the sends: what is under way stops with it.
            w.advance_for(sim, Duration::from_secs(1));
            for &h in &senders {
                w.d.stop(sim, h, true);
            }
            w.advance_for(sim, Duration::from_secs(5));
        }
        DmOrder::SendersGone => {
            // Every sender waits until all it sent is stored, then stops for good.
            let until = sim.now() + p.settle_max;
            while sim.now() < until
                && senders.iter().any(|h| {
                    w.d.engine(*h)
                        .is_some_and(|e| e.pending().iter().any(|(_, _, st)| *st != Status::Stored))
                })
            {
                w.advance_for(sim, TICK);
            }
            for &h in &senders {
                w.d.stop(sim, h, true);
            }
            w.advance_for(sim, Duration::from_secs(5));
        }
    }
    let restarted_all = w.restarts.is_empty();
    rep.put("dm_order", format!("{:?}", p.dm_order));
    rep.put("senders_restarted", senders_crashed - w.restarts.len());
    rep.put("restarts_done", restarted_all);
    rep.put(
        "items_without_copy_when_recipients_return",
        items_without_copy(sim, &w, &rcpt_set),
    );
    rep.put("items_put_before_return", w.d.stats().items_put);
    rep.put("reputs_before_return", w.d.stats().reputs);

    // 5. The recipients return and read their mailboxes.
    let returned = sim.now();
    let gap = Duration::from_secs(20).div_f64(recipients.len().max(1) as f64);
    let mut back_at: HashMap<u32, Time> = HashMap::new();
    let mut slowest = Duration::ZERO;
    let mut scanned = 0;
    for &h in &recipients {
        let via = sim.random_member().expect("members");
        w.d.restart(sim, h, via);
        back_at.insert(h, sim.now());
        let next = sim.now() + gap;
        w.advance(sim, next);
        for (host, _) in &w.d.shown[scanned..] {
            if let Some(t) = back_at.get(host) {
                slowest = slowest.max(sim.now().since(*t));
            }
        }
        scanned = w.d.shown.len();
    }
    if p.dm_order == DmOrder::SenderBack {
        // The senders come back after every recipient: from now on both ends are up.
        for &h in &senders {
            if let Some(via) = sim.random_member() {
                w.d.restart(sim, h, via);
            }
        }
        let both = sim.now();
        for t in back_at.values_mut() {
            *t = both;
        }
        rep.put(
            "senders_back_seconds_after_first_return",
            both.since(returned).as_secs_f64(),
        );
    }
    let mut all_shown_at = None;
    let mut all_acked_at = None;
    let mut shown_count: HashMap<usize, usize> = w.d.shown[..scanned]
        .iter()
        .filter_map(|(_, sh)| sh.text.parse::<usize>().ok())
        .fold(HashMap::new(), |mut m, kk| {
            *m.entry(kk).or_insert(0) += 1;
            m
        });
    while sim.now().since(returned) < DRAIN_MAX {
        w.advance_for(sim, TICK);
        for (host, sh) in &w.d.shown[scanned..] {
            if let Some(t) = back_at.get(host) {
                slowest = slowest.max(sim.now().since(*t));
            }
            if let Ok(kk) = sh.text.parse::<usize>() {
                *shown_count.entry(kk).or_insert(0) += 1;
            }
        }
        scanned = w.d.shown.len();
        if all_shown_at.is_none() && shown_count.len() >= m {
            all_shown_at = Some(sim.now().since(returned).as_secs_f64());
        }
        if all_acked_at.is_none() && all_shown_at.is_some() && w.d.pending() == 0 {
            all_acked_at = Some(sim.now().since(returned).as_secs_f64());
        }
        if all_shown_at.is_some() && all_acked_at.is_some() {
            break;
        }
    }
    // A last mailbox round: nothing may be shown twice later either.
    w.advance_for(sim, crate::dm_driver::DRAIN_EVERY + Duration::from_secs(10));

    // 6. The tally.
    let mut count: HashMap<usize, usize> = HashMap::new();
    let mut order: BTreeMap<([u8; 32], [u8; 32]), Vec<usize>> = BTreeMap::new();
    let mut misrouted = 0usize;
    for (host, sh) in &w.d.shown {
        let Ok(kk) = sh.text.parse::<usize>() else {
            misrouted += 1;
            continue;
        };
        let right = targets
            .get(kk)
            .is_some_and(|(_, to)| *to == sh.to && w.d.account(*host).is_some_and(|a| a == *to));
        if !right {
            misrouted += 1;
        }
        *count.entry(kk).or_insert(0) += 1;
        order.entry((sh.from, sh.to)).or_default().push(kk);
    }
    let lost = (0..m).filter(|kk| !count.contains_key(kk)).count();
    let duplicates: usize = count.values().map(|c| c.saturating_sub(1)).sum();
    let out_of_order = sent_order
        .iter()
        .filter(|(pair, want)| {
            let got: Vec<usize> = order.get(pair).cloned().unwrap_or_default();
            let mut dedup = got.clone();
            dedup.dedup();
            let seen: BTreeSet<usize> = got.iter().copied().collect();
            let want_seen: Vec<usize> = want.iter().copied().filter(|x| seen.contains(x)).collect();
            dedup != want_seen
        })
        .count();
    let delivered: BTreeSet<[u8; 16]> =
        w.d.statuses
            .iter()
            .filter(|(_, _, st)| *st == Status::Delivered)
            .map(|(_, id, _)| *id)
            .collect();
    let expired =
        w.d.statuses
            .iter()
            .filter(|(_, _, st)| *st == Status::Expired)
            .count();
    // Each edit reaches its message's recipient once, after the message, from its sender.
    let mut edit_count: HashMap<[u8; 16], usize> = HashMap::new();
    let mut edits_wrong = 0usize;
    for (host, c) in &w.d.changes {
        let right = edits.get(&c.id).is_some_and(|kk| {
            targets
                .get(*kk)
                .is_some_and(|(_, to)| w.d.account(*host) == Some(*to))
                && c.text.as_deref() == Some(&format!("{kk} edited"))
        });
        if !right {
            edits_wrong += 1;
        }
        *edit_count.entry(c.id).or_insert(0) += 1;
    }
    rep.put(
        "edits_lost",
        edits
            .keys()
            .filter(|id| !edit_count.contains_key(*id))
            .count(),
    );
    rep.put(
        "edits_twice",
        edit_count
            .values()
            .map(|c| c.saturating_sub(1))
            .sum::<usize>(),
    );
    rep.put("edits_wrong", edits_wrong);
    rep.put("shown", w.d.shown.len());
    rep.put("lost", lost);
    rep.put("duplicates", duplicates);
    rep.put("out_of_order_pairs", out_of_order);
    rep.put("misrouted", misrouted);
    rep.put(
        "delivered_status",
        sent_ids.keys().filter(|id| delivered.contains(*id)).count(),
    );
    rep.put("expired_status", expired);
    rep.put("outboxes_pending", w.d.pending());
    rep.put("all_shown_seconds_after_return", all_shown_at);
    rep.put("all_acknowledged_seconds_after_return", all_acked_at);
    // Each message counted from its own recipient's return (to the tick it was shown in; in
    // the sender-back order from the senders' return, if it was shown after it).
    rep.put(
        "slowest_message_seconds_after_own_return",
        slowest.as_secs_f64(),
    );
    let st = w.d.stats();
    rep.put("pokes", st.pokes);
    rep.put("online_retries", st.online_retries);
    rep.put("direct_ok", st.direct_ok);
    rep.put("direct_failed", st.direct_failed);
    rep.put("items_put", st.items_put);
    rep.put("items_failed", st.items_failed);
    rep.put("reputs", st.reputs);
    rep.put("reputs_refused_removed", st.reputs_removed);
    rep.put("bundle_fetches", st.bundle_fetches);
    rep.put("bundle_fetches_empty", st.bundles_missing);
    rep.put("mailbox_reads", st.drains);
    rep.put("items_drained", st.items_drained);
    rep.put("removals", st.removals);
    rep.put("removals_failed", st.removals_failed);
    rep.put("direct_misaddressed", st.misaddressed);
    rep.put("engine_drops", w.d.drops());
    let window = sim.now().since(t_start).as_secs_f64().max(1.0);
    let nodes = sim.live_count().max(1) as f64;
    rep.put(
        "overlay_messages_per_node_per_second",
        (sim.net.delivered - msgs_start) as f64 / nodes / window,
    );
    rep.put(
        "records_messages_per_node_per_second",
        (sim.net.records_messages - rec_msgs_start) as f64 / nodes / window,
    );
    rep.put("dm_virtual_seconds", window);
}
