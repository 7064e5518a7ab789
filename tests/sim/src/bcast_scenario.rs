//! The broadcast scenario: a settled ring, `B` broadcasts from random origins, optionally with
//! crashes spread over the broadcasts (before any repair), message loss, or a few nodes cut off
//! while the broadcasts run and reconnected afterwards. It runs until every live node has every
//! message (or the deadline) and reports deliveries, misses, duplicates, transmissions, depth
//! and latency.

use std::time::Duration;

use rand::Rng;

use crate::report::{Report, percentile};
use crate::scenario::Params;
use std::collections::HashMap;

use chat_overlay::NodeId;
use chat_overlay::broadcast::MsgId;
use chat_overlay::broadcast::trace::{TraceHop, TraceOutcome};
use chat_overlay::sim::Sim;

/// Gap between two broadcasts.
const INTERVAL: Duration = Duration::from_millis(20);

/// Payload bytes per broadcast.
const PAYLOAD: usize = 64;

/// The last broadcasts of a run are traced (`trace_*` figures).
const TRACED: usize = 3;

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
    // The last broadcasts are traced at the end (every host's delivery time kept).
    let mut watched = Vec::new();
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
        let seq = seqs[origin as usize];
        if let Some(id) = sim.broadcast(origin, seq, payload)
            && b + TRACED >= p.broadcasts
        {
            let now = sim.now();
            sim.tracker.watch(id, origin, now);
            watched.push((id, origin, seq));
        }
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
    if sim.cfg.chord.broadcast.trace_keep > 0 {
        trace_check(sim, &watched, rep);
    }
}

/// Traces each watched broadcast from a random live host and compares the walk's result with
/// what the simulator saw: who answered, the tree's edges and depth, each node's latency by
/// the trace against its delivery time, and each parent naming its child.
fn trace_check(sim: &mut Sim, watched: &[(MsgId, u32, u64)], rep: &mut Report) {
    let mut sums = TraceSums::default();
    for (token, (id, origin, seq)) in watched.iter().enumerate() {
        let alive = live_hosts(sim);
        let Some(origin_id) = sim.hosts[*origin as usize].node.as_ref().map(|n| n.me().id) else {
            continue;
        };
        let tracer = alive[sim.rng().random_range(0..alive.len())];
        sim.trace(tracer, origin_id, *seq, token as u64);
        let deadline = sim.now() + Duration::from_secs(60);
        while !sim.traces.iter().any(|t| t.1 == token as u64) && sim.now() < deadline {
            sim.run_for(Duration::from_millis(100));
        }
        let Some(Ok(result)) = sim
            .traces
            .iter()
            .find(|t| t.1 == token as u64)
            .map(|t| t.2.clone())
        else {
            sums.failed += 1;
            continue;
        };
        sums.walks += 1;
        sums.truncated |= result.truncated;
        sums.expected += alive.len() as u64;
        let hops: HashMap<NodeId, &TraceHop> = result
            .nodes
            .iter()
            .filter_map(|(p, o)| match o {
                TraceOutcome::Hop(h) => Some((p.id, h)),
                _ => None,
            })
            .collect();
        sums.answered += hops.len() as u64;
        sums.no_answer += result
            .nodes
            .iter()
            .filter(|(_, o)| matches!(o, TraceOutcome::NoAnswer))
            .count() as u64;
        let times = sim.tracker.watched.get(id).cloned().unwrap_or_default();
        let started = times.get(origin).copied();
        let origin_at = hops.get(&origin_id).map(|h| h.received_us);
        for (node, h) in &hops {
            if let Some(parent) = h.from {
                sums.edges += 1;
                if !hops
                    .get(&parent.id)
                    .is_some_and(|p| p.children.iter().any(|c| c.id == *node))
                {
                    sums.parent_mismatches += 1;
                }
            }
            if let Some(d) = h.depth {
                sums.depth_max = sums.depth_max.max(d);
            }
            let seen = sim
                .host_of(node)
                .and_then(|host| times.get(&host))
                .zip(started)
                .map(|(t, s)| t.since(s).as_micros() as u64);
            let traced = origin_at.map(|o| h.received_us.saturating_sub(o));
            if seen.is_none() || seen != traced {
                sums.latency_mismatches += 1;
            }
        }
    }
    rep.put("trace_walks", sums.walks);
    rep.put("trace_failed", sums.failed);
    rep.put("trace_nodes_expected", sums.expected);
    rep.put("trace_nodes_answered", sums.answered);
    rep.put("trace_no_answer", sums.no_answer);
    rep.put("trace_edges", sums.edges);
    rep.put("trace_depth_max", sums.depth_max);
    rep.put("trace_truncated", sums.truncated);
    rep.put("trace_latency_mismatches", sums.latency_mismatches);
    rep.put("trace_parent_mismatches", sums.parent_mismatches);
}

#[derive(Default)]
struct TraceSums {
    walks: u64,
    failed: u64,
    expected: u64,
    answered: u64,
    no_answer: u64,
    edges: u64,
    depth_max: u8,
    truncated: bool,
    latency_mismatches: u64,
    parent_mismatches: u64,
}
