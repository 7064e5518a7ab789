//! The scenarios: join, crash, churn and partition. Each builds a ring, disturbs it, and
//! reports how the ring and its lookups fared.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chat_overlay::{NodeId, Time};
use rand::Rng;

use crate::report::{LookupSummary, Report, peak_rss_mb};
use chat_overlay::sim::oracle::{self, RingCheck};
use chat_overlay::sim::{Sim, SimConfig};

/// Which scenario to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Nodes join one after another through random members; then the ring settles.
    Join,
    /// A settled ring loses a fraction of its nodes at once.
    Crash,
    /// Continuous joins, graceful leaves and crashes.
    Churn,
    /// The network splits in two for a while, then heals.
    Partition,
    /// Broadcasts from random origins over a settled ring (with crashes, loss or isolated
    /// nodes as asked).
    Broadcast,
    /// DHT records put, replicated and read back (with a crash, churn or a partition as
    /// asked).
    Records,
    /// Churn with the people service's presence events (join, leave, crash reports)
    /// broadcast as the daemon does: what presence costs per node.
    Presence,
    /// A second ring of the same size, founded apart (as on a LAN where two groups could not
    /// hear each other at first), merges with the first through one discovery hint.
    Merge,
    /// Private messages to offline recipients while nodes crash: every node hosts an account
    /// with a real `chat_dm` engine; the recipients come back and read their mailboxes.
    Dm,
    /// Every node of the settled ring goes down (a site's power cut); a random subset
    /// (`--back`) comes back one by one in random order, each with only the peers it
    /// remembered and no bootstrap, as the daemon restarts: one ring of them must form.
    Revive,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Join => "join",
            Scenario::Crash => "crash",
            Scenario::Churn => "churn",
            Scenario::Partition => "partition",
            Scenario::Broadcast => "broadcast",
            Scenario::Records => "records",
            Scenario::Merge => "merge",
            Scenario::Presence => "presence",
            Scenario::Dm => "dm",
            Scenario::Revive => "revive",
        }
    }
}

/// When the dm scenario's recipients come back, and whether their senders are up then.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DmOrder {
    /// After every item is in their mailbox and the crash waves (senders among the victims,
    /// restarted) are repaired.
    Late,
    /// Right after the sends, while items are still on their way (direct attempts failing,
    /// puts under way); the crash waves spare the senders (mailbox holders die).
    Early,
    /// After every item is stored and every sender has stopped for good: only the mailbox
    /// (whose holders the crash waves hit) and the recipients' reads remain.
    SendersGone,
    /// Every sender stops (gracefully) right after its sends, items still on their way; the
    /// recipients come back, then the senders: what they had under way goes out after their
    /// restart. Messages are timed from when both ends were back.
    SenderBack,
}

/// Parameters of a run.
#[derive(Clone, Debug)]
pub struct Params {
    /// Scenario to run.
    pub scenario: Scenario,
    /// Nodes in the initial ring.
    pub nodes: usize,
    /// Fraction of nodes that crash (crash scenario).
    pub crash_fraction: f64,
    /// Lookups measured on the final ring (and right after a crash).
    pub lookups: usize,
    /// Broadcasts (broadcast scenario).
    pub broadcasts: usize,
    /// Nodes cut off from the rest while the broadcasts run (broadcast scenario).
    pub isolate: usize,
    /// Gap between two joins while the ring is built.
    pub join_gap: Duration,
    /// Longest time allowed for settling or repair.
    pub settle_max: Duration,
    /// How long churn lasts.
    pub churn_duration: Duration,
    /// Each of joins, leaves and crashes per minute during churn, as a fraction of the nodes.
    pub churn_rate: f64,
    /// Presence scenario: broadcast each event on its own instead of gathering them per
    /// epoch.
    pub presence_direct: bool,
    /// How long the partition lasts.
    pub partition_duration: Duration,
    /// Partition scenario: every node joins through host 0, and the cut comes the moment the
    /// ring is first correct (not settled), host 0 on side 0 (issue 37: a ring cut young).
    pub young_cut: bool,
    /// Records put (records scenario).
    pub records: usize,
    /// Records read back at each check (records scenario; all when fewer).
    pub reads: usize,
    /// Names claimed on both sides of the partition (records scenario).
    pub claims: usize,
    /// Held names attacked by a lying holder each: it keeps a backdated claim of its own
    /// planted in its store (records scenario).
    pub liars: usize,
    /// Recipients that go offline (dm scenario; default a tenth of the nodes).
    pub recipients: Option<usize>,
    /// Private messages sent to them (dm scenario; default one per node).
    pub messages: Option<usize>,
    /// When the recipients come back (dm scenario).
    pub dm_order: DmOrder,
    /// Nodes that come back (revive scenario; default a quarter).
    pub back: Option<usize>,
    /// Gap between two returns (revive scenario).
    pub back_gap: Duration,
    /// Network model and protocol settings.
    pub sim: SimConfig,
    /// Print the ring's state to stderr while settling.
    pub progress: bool,
}

impl Params {
    /// Defaults for a scenario at a size.
    pub fn new(scenario: Scenario, nodes: usize, seed: u64) -> Params {
        // The records scenario disturbs the ring only as asked.
        let quiet = scenario == Scenario::Records;
        Params {
            scenario,
            nodes,
            crash_fraction: match scenario {
                Scenario::Records => 0.0,
                Scenario::Dm => 0.3,
                _ => 0.5,
            },
            lookups: 10_000,
            broadcasts: 100,
            isolate: 0,
            join_gap: Duration::from_millis(2),
            settle_max: Duration::from_secs(600),
            churn_duration: Duration::from_secs(if quiet { 0 } else { 600 }),
            churn_rate: 0.01,
            presence_direct: false,
            partition_duration: Duration::from_secs(if quiet { 0 } else { 60 }),
            young_cut: false,
            records: 1000,
            reads: 10_000,
            claims: 100,
            liars: 0,
            recipients: None,
            messages: None,
            dm_order: DmOrder::Late,
            back: None,
            back_gap: Duration::from_millis(200),
            progress: false,
            sim: SimConfig {
                seed,
                ..SimConfig::default()
            },
        }
    }
}

/// Runs a scenario and reports.
pub fn run(p: &Params) -> Report {
    let wall = Instant::now();
    let mut sim = Sim::new(p.sim.clone());
    let mut rep = Report {
        scenario: p.scenario.name().to_string(),
        seed: p.sim.seed,
        ..Report::default()
    };
    let young = p.young_cut && p.scenario == Scenario::Partition;
    build_ring_via(&mut sim, p.nodes, p.join_gap, young);
    sim.progress = p.progress;
    if young {
        rep.put("formed_seconds", repair(&mut sim, p.settle_max));
    } else {
        let settled = settle(&mut sim, p.settle_max);
        rep.put("settle_seconds", settled);
    }
    match p.scenario {
        Scenario::Join => {}
        Scenario::Crash => crash(&mut sim, p, &mut rep),
        Scenario::Churn => churn(&mut sim, p, &mut rep),
        Scenario::Partition => partition(&mut sim, p, &mut rep),
        Scenario::Broadcast => crate::bcast_scenario::run(&mut sim, p, &mut rep),
        Scenario::Records => crate::records_scenario::run(&mut sim, p, &mut rep),
        Scenario::Merge => merge(&mut sim, p, &mut rep),
        Scenario::Presence => crate::presence_scenario::run(&mut sim, p, &mut rep),
        Scenario::Dm => crate::dm_scenario::run(&mut sim, p, &mut rep),
        Scenario::Revive => revive(&mut sim, p, &mut rep),
    }
    let check = oracle::check(&sim);
    let final_lookups = measure_lookups(&mut sim, p.lookups);
    fill(&mut rep, &sim, &check, &final_lookups);
    rep.wall_seconds = wall.elapsed().as_secs_f64();
    rep.peak_rss_mb = peak_rss_mb();
    rep
}

fn fill(rep: &mut Report, sim: &Sim, c: &RingCheck, l: &LookupSummary) {
    rep.nodes = sim.hosts.len();
    rep.live_nodes = sim.live_count();
    rep.ring_correct = c.ring_correct;
    rep.successor_lists_correct = c.successor_lists_correct;
    rep.fingers_correct = c.fingers_correct;
    rep.lookups = l.lookups;
    rep.lookup_failures = l.failures;
    rep.lookup_hops_mean = l.hops_mean;
    rep.lookup_hops_p99 = l.hops_p99;
    rep.virtual_seconds = sim.now().as_micros() as f64 / 1e6;
    rep.messages = sim.net.delivered;
}

/// Host 0 founds the ring; the others join one after another, each through a random member,
/// at most one every `gap`. Joins overlap only as the ring grows: at most one join per hundred
/// members is in flight, so a ring of a handful of nodes is not flooded by hundreds of
/// simultaneous joiners.
pub fn build_ring(sim: &mut Sim, n: usize, gap: Duration) {
    build_ring_via(sim, n, gap, false);
}

/// [`build_ring`], every join through host 0 when `via_first`.
fn build_ring_via(sim: &mut Sim, n: usize, gap: Duration, via_first: bool) {
    let first = sim.add_host();
    sim.create(first);
    for _ in 1..n {
        sim.run_for(gap);
        let mut waited = Duration::ZERO;
        while sim.live_count() - sim.members().len() >= (sim.members().len() / 20).max(1)
            && waited < Duration::from_secs(60)
        {
            sim.run_for(Duration::from_millis(1));
            waited += Duration::from_millis(1);
        }
        let i = sim.add_host();
        let via = if via_first {
            first
        } else {
            sim.random_member().unwrap_or(first)
        };
        sim.join(i, via);
    }
}

fn settled(c: &RingCheck) -> bool {
    c.ring_correct && c.successor_lists_correct >= 0.999 && c.fingers_correct >= 0.999
}

/// Runs until every live host is a member and the ring is correct with ≥ 99.9 % of successor
/// entries and fingers right, or `max` passes. Returns the virtual seconds it took.
pub fn settle(sim: &mut Sim, max: Duration) -> f64 {
    let start = sim.now();
    let step = sim.cfg.chord.ring.stabilize_interval;
    loop {
        sim.run_for(step);
        let elapsed = sim.now().since(start);
        let c = oracle::check(sim);
        if sim.progress {
            eprintln!(
                "t={:.1}s members={}/{} ring={} wrong_succ={} wrong_pred={} succs={:.4} fingers={:.4}",
                secs(sim.now()),
                sim.members().len(),
                sim.live_count(),
                c.ring_correct,
                c.wrong_successors,
                c.wrong_predecessors,
                c.successor_lists_correct,
                c.fingers_correct
            );
        }
        if sim.members().len() == sim.live_count() && settled(&c) {
            return elapsed.as_secs_f64();
        }
        if elapsed >= max {
            return elapsed.as_secs_f64();
        }
    }
}

/// Runs until the ring (successors and predecessors) is correct; returns the seconds taken.
fn repair(sim: &mut Sim, max: Duration) -> Option<f64> {
    let start = sim.now();
    let step = sim.cfg.chord.ring.stabilize_interval / 4;
    while sim.now().since(start) < max {
        sim.run_for(step);
        if sim.members().len() == sim.live_count() && oracle::check(sim).ring_correct {
            return Some(sim.now().since(start).as_secs_f64());
        }
    }
    None
}

fn random_key(sim: &mut Sim) -> NodeId {
    let mut k = [0u8; 32];
    sim.rng().fill(&mut k);
    NodeId(k)
}

/// Issues `count` lookups from random members for random keys over `spread`, without waiting.
fn issue_lookups(sim: &mut Sim, count: usize, spread: Duration) {
    let base = sim.now();
    for _ in 0..count {
        let Some(i) = sim.random_member() else { return };
        let key = random_key(sim);
        let off = sim.rng().random_range(0..spread.as_micros().max(1) as u64);
        sim.lookup_at(base + Duration::from_micros(off), i, key);
    }
}

/// Issues `count` lookups over a few seconds and waits for all of them.
pub fn measure_lookups(sim: &mut Sim, count: usize) -> LookupSummary {
    sim.take_lookups();
    issue_lookups(sim, count, Duration::from_secs(5));
    let deadline = sim.now() + Duration::from_secs(5) + sim.cfg.chord.ring.lookup_timeout * 2;
    while sim.lookups_pending() > 0 && sim.now() < deadline {
        sim.run_for(Duration::from_millis(500));
    }
    collect_lookups(sim)
}

/// Summarises the finished lookups; those still unanswered count as failed.
fn collect_lookups(sim: &mut Sim) -> LookupSummary {
    let abandoned = sim.abandon_lookups();
    let mut s = LookupSummary::from_records(&sim.take_lookups());
    s.lookups += abandoned;
    s.failures += abandoned;
    s
}

fn crash(sim: &mut Sim, p: &Params, rep: &mut Report) {
    let members: Vec<u32> = (0..sim.hosts.len() as u32)
        .filter(|i| sim.is_up(*i))
        .collect();
    let kill = ((members.len() as f64) * p.crash_fraction).round() as usize;
    let mut order = members;
    for i in (1..order.len()).rev() {
        let j = sim.rng().random_range(0..=i);
        order.swap(i, j);
    }
    for i in order.iter().take(kill) {
        sim.crash(*i);
    }
    rep.put("crashed", kill);
    // Lookups issued right after the crash, before any repair; meanwhile, note when the ring
    // is correct again.
    let crashed_at = sim.now();
    sim.take_lookups();
    issue_lookups(sim, p.lookups, Duration::from_secs(5));
    let deadline = crashed_at + p.settle_max;
    let mut repaired = None;
    while sim.now() < deadline && (sim.lookups_pending() > 0 || repaired.is_none()) {
        sim.run_for(sim.cfg.chord.ring.stabilize_interval / 4);
        if repaired.is_none()
            && sim.members().len() == sim.live_count()
            && oracle::check(sim).ring_correct
        {
            repaired = Some(sim.now().since(crashed_at).as_secs_f64());
        }
    }
    let during = collect_lookups(sim);
    rep.put("crash_lookups", during.lookups);
    rep.put("crash_lookup_failures", during.failures);
    rep.put("crash_lookup_success", during.success_rate());
    rep.put("crash_lookup_hops_mean", during.hops_mean);
    rep.put("crash_lookup_hops_p99", during.hops_p99);
    rep.put("repair_seconds", repaired);
    settle(sim, p.settle_max);
}

fn churn(sim: &mut Sim, p: &Params, rep: &mut Report) {
    let n = p.nodes as f64;
    // Events per second of each kind.
    let rate = p.churn_rate * n / 60.0;
    let tick = Duration::from_millis(100);
    let per_tick = rate * tick.as_secs_f64();
    let lookups_per_tick = 2;
    let mut crashed: Vec<u32> = Vec::new();
    let (mut joins, mut leaves, mut crashes, mut restarts) = (0, 0, 0, 0);
    sim.take_lookups();
    let end = sim.now() + p.churn_duration;
    while sim.now() < end {
        if sim.rng().random_bool(per_tick.min(1.0)) {
            let restart = !crashed.is_empty() && sim.rng().random_bool(0.5);
            if let Some(via) = sim.random_member() {
                let i = if restart {
                    restarts += 1;
                    let k = sim.rng().random_range(0..crashed.len());
                    crashed.swap_remove(k)
                } else {
                    joins += 1;
                    sim.add_host()
                };
                sim.join(i, via);
            }
        }
        if sim.rng().random_bool(per_tick.min(1.0))
            && let Some(i) = sim.random_member()
        {
            sim.leave(i);
            leaves += 1;
        }
        if sim.rng().random_bool(per_tick.min(1.0))
            && let Some(i) = sim.random_member()
        {
            sim.crash(i);
            crashed.push(i);
            crashes += 1;
        }
        issue_lookups(sim, lookups_per_tick, tick);
        sim.run_for(tick);
    }
    // Let the last lookups finish.
    sim.run_for(sim.cfg.chord.ring.lookup_timeout);
    let abandoned = sim.abandon_lookups();
    let during = LookupSummary::from_records(&sim.take_lookups());
    rep.put("churn_joins", joins);
    rep.put("churn_restarts", restarts);
    rep.put("churn_leaves", leaves);
    rep.put("churn_crashes", crashes);
    rep.put("churn_lookups", during.lookups);
    rep.put("churn_lookup_failures", during.failures);
    rep.put("churn_lookup_success", during.success_rate());
    rep.put("churn_lookups_abandoned", abandoned);
    let t = repair(sim, p.settle_max);
    rep.put("repair_seconds", t);
    rep.put(
        "repair_stabilize_rounds",
        t.map(|s| s / sim.cfg.chord.ring.stabilize_interval.as_secs_f64()),
    );
    settle(sim, p.settle_max);
}

fn partition(sim: &mut Sim, p: &Params, rep: &mut Report) {
    let mut groups: Vec<u8> = (0..sim.hosts.len())
        .map(|_| sim.rng().random_range(0..2u8))
        .collect();
    if p.young_cut
        && let Some(g) = groups.first_mut()
    {
        *g = 0;
    }
    sim.partition(&groups);
    let sides: Vec<BTreeSet<NodeId>> = (0..2u8)
        .map(|g| {
            sim.hosts
                .iter()
                .filter(|h| h.group == g && h.node.is_some())
                .map(|h| h.peer.id)
                .collect()
        })
        .collect();
    // When each side first was one correct ring (checked every second).
    let r = sim.cfg.chord.ring.successors;
    let cut_at = sim.now();
    let mut first_ok: [Option<f64>; 2] = [None, None];
    while sim.now().since(cut_at) < p.partition_duration {
        let step = (p.partition_duration - sim.now().since(cut_at)).min(Duration::from_secs(1));
        sim.run_for(step);
        for (g, side) in sides.iter().enumerate() {
            if first_ok[g].is_none() && oracle::check_ring(sim, side, r).ring_correct {
                first_ok[g] = Some(sim.now().since(cut_at).as_secs_f64());
            }
        }
    }
    // Each side should have closed into a ring of its own.
    let mut sides_ok = true;
    for (g, side) in sides.iter().enumerate() {
        let c = oracle::check_ring(sim, side, r);
        rep.put(&format!("side{g}_nodes"), side.len());
        rep.put(&format!("side{g}_ring_correct"), c.ring_correct);
        rep.put(&format!("side{g}_one_ring_seconds"), first_ok[g]);
        sides_ok &= c.ring_correct;
    }
    rep.put("partition_sides_correct", sides_ok);
    sim.heal();
    let t = repair(sim, p.settle_max);
    rep.put("merge_seconds", t);
    settle(sim, p.settle_max);
}

/// Builds a second ring of `p.nodes` hosts beside the settled first one (its own founder, each
/// joiner through a random member of its own ring), lets it settle, then gives one node of the
/// first ring one node of the second as an `Input::Discovered` hint, once.
fn merge(sim: &mut Sim, p: &Params, rep: &mut Report) {
    let founder = sim.add_host();
    sim.create(founder);
    let mut second = vec![founder];
    for _ in 1..p.nodes {
        sim.run_for(p.join_gap.max(Duration::from_millis(20)));
        let i = sim.add_host();
        let k = sim.rng().random_range(0..second.len());
        sim.join(i, second[k]);
        second.push(i);
    }
    // Each ring on its own: wait until every host is a member, plus a settling while.
    let start = sim.now();
    while sim.members().len() < sim.live_count() && sim.now().since(start) < p.settle_max {
        sim.run_for(Duration::from_secs(1));
    }
    sim.run_for(Duration::from_secs(30));
    let side: BTreeSet<NodeId> = second
        .iter()
        .map(|&i| sim.hosts[i as usize].peer.id)
        .collect();
    let c = oracle::check_ring(sim, &side, sim.cfg.chord.ring.successors);
    rep.put("second_ring_correct", c.ring_correct);
    rep.put("two_rings_before", !oracle::check(sim).ring_correct);
    let at = sim.rng().random_range(0..founder);
    let to = second[sim.rng().random_range(0..second.len())];
    let peer = sim.hosts[to as usize].peer;
    let before = sim.net.delivered;
    sim.input(at, chat_overlay::Input::Discovered(peer));
    let t = repair(sim, p.settle_max);
    rep.put("merge_seconds", t);
    rep.put("merge_messages", sim.net.delivered - before);
    settle(sim, p.settle_max);
}

/// Every node down, then a random subset back in random order, each through the peers it
/// remembered ([`Sim::restart_remembering`], no bootstrap); reports how long after the last
/// return one correct ring of exactly the returners formed (`revive_seconds`, `None` if not
/// within `settle_max`).
fn revive(sim: &mut Sim, p: &Params, rep: &mut Report) {
    let n = sim.hosts.len() as u32;
    let back = p.back.unwrap_or(n as usize / 4).clamp(1, n as usize);
    // Each node restarts through its `peers` file: its routing view when it went down.
    let (_, first) = sim.revive_subset(back, p.back_gap);
    let last = sim.now();
    let mut took = None;
    while sim.now().since(last) <= p.settle_max {
        if sim.members().len() == back && oracle::check(sim).ring_correct {
            took = Some(sim.now().since(last).as_secs_f64());
            break;
        }
        sim.run_for(Duration::from_millis(250));
    }
    rep.put("back", back);
    rep.put("returns_spread_seconds", last.since(first).as_secs_f64());
    rep.put("revive_seconds", took);
    settle(sim, p.settle_max);
}

/// One churn step's join: with probability `p` a new host joins through a random member.
/// Whether one did.
pub fn maybe_join(sim: &mut Sim, p: f64) -> bool {
    if sim.rng().random_bool(p)
        && let Some(via) = sim.random_member()
    {
        let i = sim.add_host();
        sim.join(i, via);
        return true;
    }
    false
}

/// Virtual time as seconds.
pub fn secs(t: Time) -> f64 {
    t.as_micros() as f64 / 1e6
}
