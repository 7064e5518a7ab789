//! The broadcast scenario: a settled ring, `B` broadcasts from random origins, optionally with
//! crashes spread over the broadcasts (before any repair), message loss, or a few nodes cut off
//! while the broadcasts run and reconnected afterwards. It runs until every live node has every
//! message (or the deadline) and reports deliveries, misses, duplicates, transmissions, depth
//! and latency.

use std::time::Duration;

use rand::Rng;

use crate::report::{Report, percentile};
use crate::scenario::Params;
use chat_overlay::sim::Sim;

/// Gap between two broadcasts.
const INTERVAL: Duration = Duration::from_millis(20);

/// Payload bytes per broadcast.
const PAYLOAD: usize = 64;

fn live_hosts(sim: &Sim) -> Vec<u32> {
    (0..sim.hosts.len() as u32)
        .filter(|i| sim.is_up(*i))
        .collect()
}

fn shuffled(sim: &mut Sim, mut v: Vec<u32>) -> Vec<u32> {
    for i in (1..v.len()).rev() {
        let j = sim.rng().random_range(0..=i);
        v.swap(i, j);
    }
    v
}

/// Runs the broadcasts on a settled ring and fills the report.
pub fn run(sim: &mut Sim, p: &Params, rep: &mut Report) {
    let hosts = live_hosts(sim);
    let n = hosts.len();
    let window = INTERVAL * p.broadcasts as u32;
    let start = sim.now();
    // Crashes at random moments inside the broadcast window.
    let kill = ((n as f64) * p.crash_fraction).round() as usize;
    let order = shuffled(sim, hosts.clone());
    let mut crashes: Vec<(Duration, u32)> = order
        .iter()
        .take(kill)
        .map(|h| {
            let us = sim.rng().random_range(0..window.as_micros().max(1) as u64);
            (Duration::from_micros(us), *h)
        })
        .collect();
    crashes.sort_unstable();
    // Nodes cut off for the whole window (taken from the survivors).
    let isolated: Vec<u32> = order.iter().skip(kill).take(p.isolate).copied().collect();
    if !isolated.is_empty() {
        let mut groups = vec![0u8; sim.hosts.len()];
        for h in &isolated {
            groups[*h as usize] = 1;
        }
        sim.partition(&groups);
    }
    let mut seqs = vec![0u64; sim.hosts.len()];
    let mut next_crash = 0;
    for b in 0..p.broadcasts {
        let at = start + INTERVAL * b as u32;
        while next_crash < crashes.len() && start + crashes[next_crash].0 <= at {
            let (t, h) = crashes[next_crash];
            sim.run_until(start + t);
            sim.crash(h);
            next_crash += 1;
        }
        sim.run_until(at);
        let origin = loop {
            let Some(o) = sim.random_member() else {
                break None;
            };
            if !isolated.contains(&o) {
                break Some(o);
            }
        };
        let Some(origin) = origin else { break };
        seqs[origin as usize] += 1;
        let mut payload = vec![0u8; PAYLOAD];
        sim.rng().fill(&mut payload[..]);
        sim.broadcast(origin, seqs[origin as usize], payload);
    }
    for (t, h) in crashes.iter().skip(next_crash) {
        sim.run_until(start + *t);
        sim.crash(*h);
    }
    let sent_done = sim.now();
    if !isolated.is_empty() {
        // Let the tree finish without them, then reconnect.
        sim.run_for(Duration::from_secs(5));
        sim.heal();
    }
    let healed = sim.now();
    // Run until every survivor has every message.
    let deadline = healed + p.settle_max;
    let step = Duration::from_millis(250);
    let mut caught_up = None;
    loop {
        let alive = live_hosts(sim);
        let expected = (sim.tracker.broadcasts() * alive.len()) as u64;
        if sim.tracker.deliveries(&alive) == expected {
            caught_up = Some(sim.now().since(healed).as_secs_f64());
            break;
        }
        if sim.now() >= deadline {
            break;
        }
        sim.run_for(step);
    }
    // Give the completion acks time to come back (they do not affect deliveries).
    sim.run_for(Duration::from_secs(5));
    let alive = live_hosts(sim);
    let t = &sim.tracker;
    let expected = (t.broadcasts() * alive.len()) as u64;
    let delivered = t.deliveries(&alive);
    let mut lat: Vec<u32> = t
        .latencies_us
        .iter()
        .map(|us| (*us / 1000).min(u64::from(u32::MAX)) as u32)
        .collect();
    lat.sort_unstable();
    let (tmin, tmax) = t.transmissions_range();
    rep.put("broadcasts", t.broadcasts());
    rep.put("deliveries_expected", expected);
    rep.put("deliveries", delivered);
    rep.put("missed", expected - delivered);
    rep.put("duplicates_delivered", t.duplicates_delivered);
    rep.put("transmissions_per_broadcast", t.transmissions_mean());
    rep.put("transmissions_min", tmin);
    rep.put("transmissions_max", tmax);
    let per = |x: u64| x as f64 / t.broadcasts().max(1) as f64;
    rep.put("replies_per_broadcast", per(t.replies));
    rep.put("reply_groups_per_broadcast", per(t.reply_groups));
    rep.put("ring_nodes_at_start", n);
    rep.put("depth_max", t.depth_max);
    rep.put("depth_bound", (n as f64).log2().ceil() as u32);
    rep.put("latency_ms_p50", percentile(&lat, 0.5));
    rep.put("latency_ms_p99", percentile(&lat, 0.99));
    rep.put("delivered_by_anti_entropy", t.repaired);
    rep.put("broadcasts_completed", t.completed);
    rep.put("crashed", kill);
    rep.put("isolated", isolated.len());
    rep.put("send_window_seconds", sent_done.since(start).as_secs_f64());
    rep.put("all_delivered_seconds_after_heal", caught_up);
}
