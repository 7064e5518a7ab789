//! `chat-sim`: runs an overlay scenario in the deterministic simulator and reports.

use std::time::Duration;

use chat_sim::{DmOrder, Params, Scenario, run};
use clap::Parser;

/// Simulate a chatd ring: thousands of real overlay nodes on virtual time.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Nodes in the initial ring.
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// Seed; the same seed gives the same output.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Scenario to run.
    #[arg(long, value_enum, default_value_t = Scenario::Join)]
    scenario: Scenario,
    /// Fraction of nodes that crash: at once (crash scenario, default 0.5) or spread over the
    /// broadcasts (broadcast scenario, default 0), or in three waves among the nodes that stay
    /// online while private messages are sent (dm scenario, default 0.3).
    #[arg(long)]
    crash_fraction: Option<f64>,
    /// Broadcasts from random origins, 20 ms apart (broadcast scenario).
    #[arg(long, default_value_t = 100)]
    broadcasts: usize,
    /// Nodes cut off while the broadcasts run and reconnected after (broadcast scenario).
    #[arg(long, default_value_t = 0)]
    isolate: usize,
    /// Broadcasts each node remembers for traces (`broadcast.trace_keep`; 0 keeps none and
    /// skips the trace checks of the broadcast scenario).
    #[arg(long, default_value_t = 4096)]
    trace_keep: usize,
    /// Lookups measured at the end (and right after a crash).
    #[arg(long, default_value_t = 10_000)]
    lookups: usize,
    /// Probability that any message is lost.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Milliseconds between two joins while the ring is built.
    #[arg(long, default_value_t = 2.0)]
    join_gap_ms: f64,
    /// Seconds of churn (churn scenario; records scenario: default none).
    #[arg(long)]
    churn_secs: Option<u64>,
    /// Seconds the partition lasts (partition scenario; records scenario: default none).
    #[arg(long)]
    partition_secs: Option<u64>,
    /// Partition scenario: every node joins through host 0 and the cut comes the moment the
    /// ring is first correct (before it settles), host 0 on side 0.
    #[arg(long)]
    young_cut: bool,
    /// Turn the peer sample and the merge candidates off (`sample_size` and `candidates` 0:
    /// the ring core before issue 37), for A/B runs.
    #[arg(long)]
    no_sample: bool,
    /// Records put (records scenario).
    #[arg(long, default_value_t = 1000)]
    records: usize,
    /// Records read back at each check, all when fewer (records scenario).
    #[arg(long, default_value_t = 10_000)]
    reads: usize,
    /// Names claimed on both sides of the partition (records scenario with --partition-secs).
    #[arg(long, default_value_t = 100)]
    claims: usize,
    /// Held names attacked by a lying holder each, which keeps a backdated claim of its own
    /// planted in its store (records scenario).
    #[arg(long, default_value_t = 0)]
    liars: usize,
    /// Recipients that go offline and get the messages (dm scenario; default a tenth of the
    /// nodes).
    #[arg(long)]
    recipients: Option<usize>,
    /// Private messages sent to the offline recipients (dm scenario; default one per node).
    #[arg(long)]
    messages: Option<usize>,
    /// When the recipients come back (dm scenario): late (after every item is stored),
    /// early (right after the sends), senders-gone (after every sender stopped), sender-back
    /// (the senders stop right after the sends and return after the recipients).
    #[arg(long, value_enum, default_value_t = DmOrder::Late)]
    dm_order: DmOrder,
    /// Nodes that come back after the whole ring went down (revive scenario; default a
    /// quarter of the nodes).
    #[arg(long)]
    back: Option<usize>,
    /// Churn: each of joins, leaves and crashes per minute, as a fraction of the nodes.
    #[arg(long, default_value_t = 0.01)]
    churn_rate: f64,
    /// How long a node holds its answers to a parent (`Ack`, `Done`) so that several leave
    /// together; 0 sends each at once.
    #[arg(long, default_value_t = 20)]
    reply_delay_ms: u64,
    /// Presence scenario: broadcast each people event on its own instead of gathering them
    /// per presence epoch.
    #[arg(long)]
    presence_direct: bool,
    /// Print the ring's state to stderr while it settles.
    #[arg(long)]
    progress: bool,
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    json: bool,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    anyhow::ensure!(a.nodes >= 1, "--nodes must be at least 1");
    let records = a.scenario == Scenario::Records;
    let default_crash = match a.scenario {
        Scenario::Broadcast | Scenario::Records => 0.0,
        Scenario::Dm => 0.3,
        _ => 0.5,
    };
    let crash_fraction = a.crash_fraction.unwrap_or(default_crash);
    anyhow::ensure!(
        (0.0..=1.0).contains(&crash_fraction),
        "--crash-fraction must be in 0..=1"
    );
    anyhow::ensure!(
        a.isolate < a.nodes,
        "--isolate must be smaller than --nodes"
    );
    anyhow::ensure!((0.0..1.0).contains(&a.loss), "--loss must be in 0..1");
    anyhow::ensure!(
        a.join_gap_ms >= 0.0 && a.join_gap_ms.is_finite(),
        "--join-gap-ms must be ≥ 0"
    );
    let mut p = Params::new(a.scenario, a.nodes, a.seed);
    p.crash_fraction = crash_fraction;
    p.broadcasts = a.broadcasts;
    p.isolate = a.isolate;
    p.lookups = a.lookups;
    p.sim.loss = a.loss;
    anyhow::ensure!(
        a.reply_delay_ms <= 1000,
        "--reply-delay-ms must be at most 1000"
    );
    p.sim.chord.broadcast.reply_delay = Duration::from_millis(a.reply_delay_ms);
    anyhow::ensure!(a.trace_keep <= 1 << 20, "--trace-keep is at most 1,048,576");
    p.sim.chord.broadcast.trace_keep = a.trace_keep;
    p.join_gap = Duration::from_secs_f64(a.join_gap_ms / 1000.0);
    let (churn_default, partition_default) = if records { (0, 0) } else { (600, 60) };
    p.churn_duration = Duration::from_secs(a.churn_secs.unwrap_or(churn_default));
    p.partition_duration = Duration::from_secs(a.partition_secs.unwrap_or(partition_default));
    anyhow::ensure!(
        (0.0..=1.0).contains(&a.churn_rate),
        "--churn-rate must be in 0..=1"
    );
    p.churn_rate = a.churn_rate;
    p.young_cut = a.young_cut;
    if a.no_sample {
        p.sim.chord.ring.sample_size = 0;
        p.sim.chord.ring.candidates = 0;
    }
    p.presence_direct = a.presence_direct;
    anyhow::ensure!(
        a.records <= 10_000_000
            && a.reads <= 10_000_000
            && a.claims <= 1_000_000
            && a.liars <= a.nodes,
        "--records, --reads and --claims are bounded (10 M, 10 M, 1 M), --liars by --nodes"
    );
    p.records = a.records;
    p.reads = a.reads;
    p.claims = a.claims;
    p.liars = a.liars;
    anyhow::ensure!(
        a.recipients.is_none_or(|r| r >= 1 && r <= a.nodes / 3)
            && a.messages.is_none_or(|m| m <= 10_000_000),
        "--recipients must be in 1..=nodes/3 and --messages at most 10 M"
    );
    p.recipients = a.recipients;
    p.messages = a.messages;
    p.dm_order = a.dm_order;
    p.back = a.back;
    p.progress = a.progress;
    let rep = run(&p);
    if a.json {
        println!("{}", serde_json::to_string(&rep)?);
    } else {
        print!("{}", rep.human());
    }
    Ok(())
}
