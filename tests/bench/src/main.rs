//! chat-bench: starts N real chatd daemons on loopback, lets them form a ring with the default
//! (production) timers, and measures what a user and an operator see:
//!
//! 1. idle cost: CPU share and resident memory of each daemon while nothing is sent;
//! 2. latency: one publisher sends at a fixed rate (200 messages/s by default) on node 0 and one
//!    subscriber per node receives; end-to-end latency from the message's due send time to its
//!    arrival on each subscriber's stream, p50/p99/max, and daemon CPU per delivery;
//! 3. throughput: the rate doubles step by step until the ring no longer keeps up (a delivery
//!    missing, a subscriber lagging, or p99 over the bound); the last step that kept up gives
//!    the maximum sustained deliveries per second.
//!
//! With `--reader search`, the latency step runs twice in the same run: plain, then with a
//! client looping on `Search` and `History` against node 0 (the publisher's); both steps and
//! the ratio of their figures are reported (issue 33: reads must not move p99 by over 10 %).
//!
//! Figures go into docs/performance.md with the command that produced them. This is a
//! benchmark, not a test: it reports what it measured and fails only when a message is lost.

mod cluster;
mod compare;
mod dm;
mod edits;
mod load;
mod procstat;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde::Serialize;

/// Benchmark a ring of real chatd daemons on loopback.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Daemons to start (default 10; with --compare 20, and as many servers of each anchor).
    #[arg(long, value_parser = clap::value_parser!(u16).range(2..=200))]
    nodes: Option<u16>,
    /// The chatd binary (default: `chatd` next to this program).
    #[arg(long)]
    chatd: Option<PathBuf>,
    /// Async worker threads per daemon (TOKIO_WORKER_THREADS). Many daemons share this
    /// machine's cores, so one each by default; a daemon alone on a server uses one per core.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    worker_threads: u16,
    /// Where the daemons' data directories go (default: the system's temporary directory).
    /// Many daemons fsyncing on one disk contend for its journal; /dev/shm takes the disk
    /// out of the measurement.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Third octet of the daemons' 127.0.X.Y addresses.
    #[arg(long, default_value_t = 90)]
    net: u8,
    /// Seconds to let the ring settle after it is correct, before the idle measurement.
    #[arg(long, default_value_t = 10)]
    settle: u64,
    /// Seconds of the idle measurement (0: skip it).
    #[arg(long, default_value_t = 30)]
    idle: u64,
    /// Messages per second of the latency measurement.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// Seconds of the latency measurement.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Seconds of each throughput step (0: skip the throughput search).
    #[arg(long, default_value_t = 5)]
    step_seconds: u64,
    /// A throughput step keeps up only if its p99 latency stays under this many milliseconds.
    #[arg(long, default_value_t = 250)]
    sustain_p99_ms: u64,
    /// Highest rate the throughput search tries, in messages per second.
    #[arg(long, default_value_t = 25_600.0)]
    max_rate: f64,
    /// Measure private messages instead: `--rate` end-to-end encrypted messages a second,
    /// each node writing to four others, for `--seconds` (no throughput search).
    #[arg(long)]
    dm: bool,
    /// Measure edits instead: node 0 edits its messages, `--rate` a second for `--seconds`;
    /// every node's subscription times the edit's arrival.
    #[arg(long)]
    edits: bool,
    /// Compare with IRC, NATS and gossipsub (issues 24, 33): the latency step through a tree
    /// of ngircd servers, a cluster of nats-server processes, rust-libp2p gossipsub nodes, then
    /// the chatd ring, in one run; prints one table with the ratios chatd ÷ best of
    /// ngircd/NATS and chatd ÷ gossipsub. The anchors listen on 127.0.(net+1).x, (net+2).x
    /// and (net+3).x; install ngircd and NATS with tests/bench/scripts/install-anchors.sh.
    #[arg(long, conflicts_with_all = ["dm", "edits"])]
    compare: bool,
    /// The ngircd binary for --compare.
    #[arg(long, default_value = "/usr/sbin/ngircd")]
    ngircd: PathBuf,
    /// The nats-server binary for --compare.
    #[arg(long, default_value = "/usr/sbin/nats-server")]
    nats_server: PathBuf,
    /// The gossip-node binary for --compare (default: built with cargo from
    /// tests/bench/gossip-node into $CARGO_TARGET_DIR/gossip-node).
    #[arg(long)]
    gossip_node: Option<PathBuf>,
    /// Turn the daemons' event log (`[log] events`, on by default) off, to measure its cost.
    #[arg(long)]
    no_event_log: bool,
    /// Run the latency step a second time with a reader beside it (`search`: a client
    /// looping on Search and History against node 0), and report both and their ratio.
    #[arg(long, value_enum, conflicts_with_all = ["dm", "edits", "compare"])]
    reader: Option<Reader>,
    /// Print one JSON object instead of the report.
    #[arg(long)]
    json: bool,
}

/// The reader `--reader` runs beside the second latency step.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Reader {
    /// Search and History calls, alternately, one at a time.
    Search,
}

impl Args {
    /// How many daemons (and anchor servers) to start.
    fn node_count(&self) -> u16 {
        self.nodes.unwrap_or(if self.compare { 20 } else { 10 })
    }

    /// The daemons' configuration file: [`CONFIG`], the event log off with --no-event-log.
    fn config(&self) -> String {
        if self.no_event_log {
            format!("{CONFIG}[log]\nevents = false\n")
        } else {
            CONFIG.to_owned()
        }
    }
}

/// Settings of the benchmarked daemons: default ring timers; client and origin rate limits
/// lifted so that the benchmark measures the ring, not the limits.
const CONFIG: &str = "\
[control]
send_rate = 1000000
send_burst = 1000000
[ring]
origin_rate = 1000000
origin_burst = 1000000
";

/// How long the ring may take to become correct.
const RING_DEADLINE: Duration = Duration::from_secs(180);
/// How long after the last send every delivery must have arrived.
const DRAIN: Duration = Duration::from_secs(10);

#[derive(Serialize, Default)]
struct Report {
    nodes: usize,
    worker_threads: u16,
    ring_correct_after_s: f64,
    idle: Option<Usage>,
    latency: Option<StepReport>,
    throughput_steps: Vec<StepReport>,
    max_sustained: Option<StepReport>,
    dm: Option<dm::DmReport>,
    edits: Option<edits::EditReport>,
    reader: Option<ReaderReport>,
    after_load: Option<Usage>,
}

/// The latency step with and without a reader (`--reader`), in one run.
#[derive(Serialize, Clone)]
struct ReaderReport {
    reader: Reader,
    /// The node the reader called.
    node: usize,
    plain: StepReport,
    with_reader: StepReport,
    calls: load::ReaderOutcome,
    /// With ÷ without.
    p50_ratio: f64,
    p99_ratio: f64,
    cpu_ratio: f64,
}

/// Per-daemon usage over an interval.
#[derive(Serialize, Clone, Copy, Default)]
struct Usage {
    seconds: f64,
    cpu_percent_mean: f64,
    cpu_percent_max: f64,
    rss_mb_mean: f64,
    rss_mb_max: f64,
    peak_rss_mb_max: f64,
}

#[derive(Serialize, Clone, Default)]
struct StepReport {
    rate: f64,
    messages: u64,
    sent: u64,
    send_errors: u64,
    deliveries_expected: u64,
    delivered: u64,
    duplicates: u64,
    lagged: u64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// The publisher's `Send` round trip, median and 99th percentile.
    send_p50_ms: f64,
    send_p99_ms: f64,
    /// How late the publisher started its calls (99th percentile).
    publisher_slip_p99_ms: f64,
    /// Each node's median latency (node 0 published).
    node_p50_ms: Vec<f64>,
    deliveries_per_s: f64,
    cpu_us_per_delivery: f64,
    kept_up: bool,
    /// Drop counters that grew during the step, summed over the daemons.
    drops: BTreeMap<String, u64>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let chatd = match &args.chatd {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .context("locating chat-bench")?
            .with_file_name("chatd"),
    };
    if !chatd.exists() {
        bail!(
            "{} not found: build it first (cargo build --release --bin chatd --bin chat-bench) \
             or pass --chatd",
            chatd.display()
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    if args.compare {
        let report = runtime.block_on(compare::run(&args, &chatd))?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            compare::print_table(&report);
        }
        if let Some(l) = report
            .rows
            .iter()
            .find(|r| r.system == "chatd")
            .and_then(|r| r.step.as_ref())
            && (l.delivered != l.deliveries_expected || l.send_errors > 0)
        {
            bail!(
                "chatd lost messages: {} of {} deliveries",
                l.delivered,
                l.deliveries_expected
            );
        }
        return Ok(());
    }
    let report = runtime.block_on(bench(&args, &chatd))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    if let Some(d) = &report.dm
        && (d.shown != d.sent || d.send_errors > 0 || d.duplicates > 0)
    {
        bail!(
            "private messages: {} of {} shown, {} duplicates, {} refused",
            d.shown,
            d.sent,
            d.duplicates,
            d.send_errors
        );
    }
    if let Some(r) = &report.reader
        && (r.with_reader.delivered != r.with_reader.deliveries_expected
            || r.with_reader.send_errors > 0)
    {
        bail!(
            "messages were lost beside the reader: {} of {} deliveries",
            r.with_reader.delivered,
            r.with_reader.deliveries_expected
        );
    }
    if let Some(l) = &report.latency
        && (l.delivered != l.deliveries_expected || l.send_errors > 0)
    {
        bail!(
            "messages were lost at {} msg/s: {} of {} deliveries",
            l.rate,
            l.delivered,
            l.deliveries_expected
        );
    }
    Ok(())
}

async fn bench(args: &Args, chatd: &std::path::Path) -> Result<Report> {
    let n = usize::from(args.node_count());
    let say = |msg: String| {
        if !args.json {
            eprintln!("{msg}");
        }
    };
    say(format!(
        "starting {n} daemons on 127.0.{}.x, {} worker thread(s) each …",
        args.net, args.worker_threads
    ));
    let config = args.config();
    let cluster = cluster::Cluster::start(
        chatd,
        n,
        args.net,
        &config,
        args.worker_threads,
        args.dir.as_deref(),
    )
    .await?;
    let ring_time = cluster.await_ring(RING_DEADLINE).await?;
    say(format!(
        "ring correct after {:.1} s",
        ring_time.as_secs_f64()
    ));
    let pids: Vec<u32> = cluster.nodes.iter().map(|d| d.pid()).collect();
    let mut report = Report {
        nodes: n,
        worker_threads: args.worker_threads,
        ring_correct_after_s: ring_time.as_secs_f64(),
        ..Report::default()
    };

    if args.idle > 0 {
        tokio::time::sleep(Duration::from_secs(args.settle)).await;
        say(format!("measuring idle for {} s …", args.idle));
        let before = samples(&pids)?;
        tokio::time::sleep(Duration::from_secs(args.idle)).await;
        report.idle = Some(usage(&before, &samples(&pids)?, args.idle as f64));
    }

    let sockets: Vec<PathBuf> = cluster.nodes.iter().map(|d| d.socket.clone()).collect();
    if args.dm {
        let r = dm::run(&sockets, &pids, args.rate, args.seconds, &say).await?;
        say(format!(
            "dm at {:.0}/s: shown p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; \
             delivered (ack back) p50 {:.2} ms, p99 {:.2} ms; {} of {} shown, {} duplicates; \
             {:.0} µs CPU per message",
            r.rate,
            r.p50_ms,
            r.p90_ms,
            r.p99_ms,
            r.max_ms,
            r.ack_p50_ms,
            r.ack_p99_ms,
            r.shown,
            r.sent,
            r.duplicates,
            r.cpu_us_per_message
        ));
        report.dm = Some(r);
        drop(cluster);
        return Ok(report);
    }
    if args.edits {
        let n = (args.rate * args.seconds as f64).round().max(1.0) as u64;
        let r = edits::run(&sockets, args.rate, n).await?;
        say(format!(
            "edits at {:.0}/s: {} of {} arrivals, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            r.rate, r.seen, r.expected, r.p50_ms, r.p99_ms, r.max_ms
        ));
        report.edits = Some(r);
        drop(cluster);
        return Ok(report);
    }
    let subs = load::Subscribers::start(&sockets).await?;
    let publisher = sockets[0].clone();
    let sustain = Duration::from_millis(args.sustain_p99_ms);
    let mut step_id = 0;
    let mut run_step = async |rate: f64,
                              seconds: u64,
                              reader: Option<&std::sync::atomic::AtomicBool>|
           -> Result<StepReport> {
        step_id += 1;
        let step = load::Step {
            id: step_id,
            rate,
            messages: (rate * seconds as f64).round().max(1.0) as u64,
        };
        load::clear(&subs);
        let drops_before = cluster.drops().await?;
        let before = samples(&pids)?;
        let out = load::run(&publisher, &subs, step, DRAIN).await?;
        if let Some(stop) = reader {
            // The reader's calls end with the step (its drain included).
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let after = samples(&pids)?;
        let mut r = step_report(step, &out, &before, &after, sustain);
        for (reason, n) in cluster.drops().await? {
            let grew = n.saturating_sub(drops_before.get(&reason).copied().unwrap_or(0));
            if grew > 0 {
                r.drops.insert(reason, grew);
            }
        }
        say(format!(
            "{:>7.0} msg/s: p50 {:.2} ms, p99 {:.2} ms (Send p50 {:.2} ms), {} of {} delivered, \
             {:.0} deliveries/s, {:.0} µs CPU per delivery{}",
            r.rate,
            r.p50_ms,
            r.p99_ms,
            r.send_p50_ms,
            r.delivered,
            r.deliveries_expected,
            r.deliveries_per_s,
            r.cpu_us_per_delivery,
            if r.kept_up {
                ""
            } else {
                " — did not keep up"
            }
        ));
        if !r.drops.is_empty() {
            say(format!("         drops: {:?}", r.drops));
        }
        Ok(r)
    };

    say(format!(
        "latency: {} msg/s for {} s …",
        args.rate, args.seconds
    ));
    let plain = run_step(args.rate, args.seconds, None).await?;
    report.latency = Some(plain.clone());

    if let Some(kind) = args.reader {
        say(format!(
            "latency with a {kind:?} reader on node 0: {} msg/s for {} s …",
            args.rate, args.seconds
        ));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reading = tokio::spawn(load::read_until(sockets[0].clone(), stop.clone()));
        let with_reader = run_step(args.rate, args.seconds, Some(&stop)).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let calls = reading.await.context("the reader task")??;
        let with_reader = with_reader?;
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        let r = ReaderReport {
            reader: kind,
            node: 0,
            p50_ratio: ratio(with_reader.p50_ms, plain.p50_ms),
            p99_ratio: ratio(with_reader.p99_ms, plain.p99_ms),
            cpu_ratio: ratio(with_reader.cpu_us_per_delivery, plain.cpu_us_per_delivery),
            plain: plain.clone(),
            with_reader,
            calls,
        };
        say(format!(
            "reader: {} calls ({} refused or failed), call p50 {:.2} ms, p99 {:.2} ms; \
             delivery p99 {:.2} ms → {:.2} ms (× {:.3}), p50 × {:.3}, CPU per delivery × {:.3}",
            r.calls.calls,
            r.calls.errors,
            r.calls.call_p50_ms,
            r.calls.call_p99_ms,
            r.plain.p99_ms,
            r.with_reader.p99_ms,
            r.p99_ratio,
            r.p50_ratio,
            r.cpu_ratio
        ));
        report.reader = Some(r);
    }

    if args.step_seconds > 0 {
        let mut rate = args.rate * 2.0;
        while rate <= args.max_rate {
            let r = run_step(rate, args.step_seconds, None).await?;
            report.throughput_steps.push(r.clone());
            if !r.kept_up {
                break;
            }
            report.max_sustained = Some(r);
            rate *= 2.0;
        }
    }
    let end = samples(&pids)?;
    report.after_load = Some(usage(&end, &end, 0.0));
    drop(subs);
    drop(cluster);
    Ok(report)
}

fn samples(pids: &[u32]) -> Result<Vec<procstat::Sample>> {
    pids.iter().map(|&p| procstat::sample(p)).collect()
}

fn usage(before: &[procstat::Sample], after: &[procstat::Sample], seconds: f64) -> Usage {
    let n = after.len().max(1) as f64;
    let mb = |b: u64| b as f64 / 1_048_576.0;
    let cpu: Vec<f64> = before
        .iter()
        .zip(after)
        .map(|(b, a)| {
            let used = a.cpu.saturating_sub(b.cpu).as_secs_f64();
            if seconds > 0.0 {
                100.0 * used / seconds
            } else {
                0.0
            }
        })
        .collect();
    Usage {
        seconds,
        cpu_percent_mean: cpu.iter().sum::<f64>() / n,
        cpu_percent_max: cpu.iter().copied().fold(0.0, f64::max),
        rss_mb_mean: after.iter().map(|s| mb(s.rss)).sum::<f64>() / n,
        rss_mb_max: after.iter().map(|s| mb(s.rss)).fold(0.0, f64::max),
        peak_rss_mb_max: after.iter().map(|s| mb(s.peak_rss)).fold(0.0, f64::max),
    }
}

fn step_report(
    step: load::Step,
    out: &load::Outcome,
    before: &[procstat::Sample],
    after: &[procstat::Sample],
    sustain: Duration,
) -> StepReport {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let cpu: Duration = before
        .iter()
        .zip(after)
        .map(|(b, a)| a.cpu.saturating_sub(b.cpu))
        .sum();
    let kept_up = out.delivered == out.expected
        && out.send_errors == 0
        && out.lagged == 0
        && out.duplicates == 0
        && out.quantile(0.99) <= sustain;
    StepReport {
        rate: step.rate,
        messages: step.messages,
        sent: out.sent,
        send_errors: out.send_errors,
        deliveries_expected: out.expected,
        delivered: out.delivered,
        duplicates: out.duplicates,
        lagged: out.lagged,
        p50_ms: ms(out.quantile(0.5)),
        p90_ms: ms(out.quantile(0.9)),
        p99_ms: ms(out.quantile(0.99)),
        max_ms: ms(out.quantile(1.0)),
        send_p50_ms: ms(load::quantile(&out.send_us, 0.5)),
        send_p99_ms: ms(load::quantile(&out.send_us, 0.99)),
        publisher_slip_p99_ms: ms(load::quantile(&out.slip_us, 0.99)),
        node_p50_ms: out.node_p50.iter().map(|&d| ms(d)).collect(),
        deliveries_per_s: out.delivery_rate(),
        cpu_us_per_delivery: cpu.as_secs_f64() * 1e6 / out.delivered.max(1) as f64,
        kept_up,
        drops: BTreeMap::new(),
    }
}

fn print_report(r: &Report) {
    println!(
        "{} daemons; ring correct after {:.1} s",
        r.nodes, r.ring_correct_after_s
    );
    if let Some(u) = &r.idle {
        println!(
            "idle ({:.0} s): CPU per daemon mean {:.2} %, max {:.2} % of a core; \
             RSS mean {:.1} MB, max {:.1} MB",
            u.seconds, u.cpu_percent_mean, u.cpu_percent_max, u.rss_mb_mean, u.rss_mb_max
        );
    }
    if let Some(l) = &r.latency {
        println!(
            "latency at {:.0} msg/s ({} messages, {} deliveries): p50 {:.2} ms, p90 {:.2} ms, \
             p99 {:.2} ms, max {:.2} ms; missing {}, duplicates {}; {:.0} µs CPU per delivery",
            l.rate,
            l.sent,
            l.delivered,
            l.p50_ms,
            l.p90_ms,
            l.p99_ms,
            l.max_ms,
            l.deliveries_expected - l.delivered.min(l.deliveries_expected),
            l.duplicates,
            l.cpu_us_per_delivery
        );
    }
    if let Some(x) = &r.reader {
        println!(
            "reader ({:?} on node {}): p50 {:.2} → {:.2} ms (× {:.3}), p99 {:.2} → {:.2} ms \
             (× {:.3}), CPU per delivery {:.0} → {:.0} µs (× {:.3}); reader calls {} \
             (p50 {:.2} ms, p99 {:.2} ms), {} refused or failed",
            x.reader,
            x.node,
            x.plain.p50_ms,
            x.with_reader.p50_ms,
            x.p50_ratio,
            x.plain.p99_ms,
            x.with_reader.p99_ms,
            x.p99_ratio,
            x.plain.cpu_us_per_delivery,
            x.with_reader.cpu_us_per_delivery,
            x.cpu_ratio,
            x.calls.calls,
            x.calls.call_p50_ms,
            x.calls.call_p99_ms,
            x.calls.errors
        );
    }
    match &r.max_sustained {
        Some(m) => println!(
            "max sustained: {:.0} msg/s = {:.0} deliveries/s (p99 {:.1} ms), {:.0} µs CPU per \
             delivery",
            m.rate, m.deliveries_per_s, m.p99_ms, m.cpu_us_per_delivery
        ),
        None if !r.throughput_steps.is_empty() => {
            println!("max sustained: below the first throughput step")
        }
        None => {}
    }
    if let Some(u) = &r.after_load {
        println!(
            "after load: RSS mean {:.1} MB, max {:.1} MB; peak RSS max {:.1} MB",
            u.rss_mb_mean, u.rss_mb_max, u.peak_rss_mb_max
        );
    }
}
