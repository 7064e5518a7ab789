//! `chat-bench --compare` (issue 24): the latency scenario of chat-bench — one publisher at
//! `--rate` messages a second for `--seconds`, one subscriber per node, latency from the start
//! of the publish call to the arrival at each subscriber — run in one go against two anchors
//! and then chatd, so that their ratios are taken on the same machine in the same minutes:
//!
//! 1. ngircd: a tree of N IRC servers (each linked to its parent, a binary tree; the publisher
//!    and node 0's subscriber on the root), raw IRC clients ([`irc`]);
//! 2. nats-server: a cluster of N servers in a full mesh of routes, raw NATS clients ([`nats`]);
//! 3. chatd: a ring of N daemons, measured by chat-bench's own latency step ([`crate::load`]).
//!
//! Server CPU per delivery is the servers' CPU time (`/proc/PID/stat`) over the measured step
//! divided by the deliveries, as for chatd. Every server listens on its own 127.0.X.Y address;
//! the ports the anchors need are bind-tested before anything starts (a taken port stops the
//! run). An anchor that is not installed or does not start is reported and skipped; chatd
//! still runs. The anchors' processes are stopped by pid when they are done, and on drop.

mod irc;
mod nats;
mod procs;

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;

use crate::load::{self, Arrival};
use crate::{StepReport, samples};

/// How long a whole anchor may take to start (servers, links, clients, first probe through).
const ANCHOR_DEADLINE: Duration = Duration::from_secs(60);
/// How long one client may take to connect and register or subscribe.
const CLIENT_DEADLINE: Duration = Duration::from_secs(15);

/// One system's line of the table.
#[derive(Serialize, Clone, Default)]
pub struct Row {
    pub system: String,
    pub nodes: usize,
    /// Why the system was not measured, if it was not.
    pub skipped: Option<String>,
    /// The measured step (`None` when skipped).
    pub step: Option<StepReport>,
}

/// chatd's figure ÷ the best anchor's, per figure.
#[derive(Serialize, Clone, Default)]
pub struct Ratios {
    pub p50: f64,
    pub p99: f64,
    pub cpu_per_delivery: f64,
}

/// What `--compare` measured.
#[derive(Serialize, Default)]
pub struct CompareReport {
    pub nodes: usize,
    pub rate: f64,
    pub seconds: u64,
    pub rows: Vec<Row>,
    /// `None` unless chatd and at least one anchor were measured.
    pub chatd_over_best_anchor: Option<Ratios>,
}

/// What each subscriber saw: (step, sequence number, arrival).
pub type Seen = Arc<Mutex<Vec<Arrival>>>;

fn lock(s: &Seen) -> std::sync::MutexGuard<'_, Vec<Arrival>> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// A publishing connection: the framing of the protocol and the socket's write half, shared
/// with the task that reads the connection and answers the server's PINGs.
pub struct Publisher {
    writer: Arc<tokio::sync::Mutex<OwnedWriteHalf>>,
    frame: fn(&str) -> String,
    reader: tokio::task::JoinHandle<()>,
}

impl Publisher {
    async fn publish(&self, text: &str) -> Result<()> {
        let bytes = (self.frame)(text);
        self.writer.lock().await.write_all(bytes.as_bytes()).await?;
        Ok(())
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Client tasks, aborted when dropped.
#[derive(Default)]
pub struct Tasks(pub Vec<tokio::task::JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// Refuses (with the port named) when any of `addrs` cannot be bound for TCP right now.
pub fn check_ports(addrs: &[SocketAddr]) -> Result<()> {
    for a in addrs {
        if let Err(e) = TcpListener::bind(a) {
            bail!(
                "port {} on {} is taken or cannot be bound ({e}); refusing to start: stop what \
                 uses it or pick other addresses with --net",
                a.port(),
                a.ip()
            );
        }
    }
    Ok(())
}

/// Runs the comparison; see the module's documentation.
pub async fn run(args: &crate::Args, chatd: &std::path::Path) -> Result<CompareReport> {
    let n = usize::from(args.node_count());
    let say = |msg: String| {
        if !args.json {
            eprintln!("{msg}");
        }
    };
    let irc_net = args.net.wrapping_add(1);
    let nats_net = args.net.wrapping_add(2);
    let (ngircd, nats_server) = (&args.ngircd, &args.nats_server);
    let missing = |p: &std::path::Path| -> Option<String> {
        (!p.exists()).then(|| {
            format!(
                "{} is not installed (run tests/bench/scripts/install-anchors.sh)",
                p.display()
            )
        })
    };
    let irc_missing = missing(ngircd);
    let nats_missing = missing(nats_server);
    let mut ports = Vec::new();
    if irc_missing.is_none() {
        ports.extend(irc::addrs(n, irc_net));
    }
    if nats_missing.is_none() {
        ports.extend(nats::addrs(n, nats_net));
    }
    check_ports(&ports)?;

    let mut report = CompareReport {
        nodes: n,
        rate: args.rate,
        seconds: args.seconds,
        ..CompareReport::default()
    };
    let irc_name = format!("ngircd (server tree, {} hops)", irc::depth(n));
    say(format!("{irc_name}: {n} servers on 127.0.{irc_net}.x …"));
    let row = match irc_missing {
        Some(why) => skipped(&irc_name, n, why),
        None => match irc::measure(ngircd, n, irc_net, args.rate, args.seconds).await {
            Ok(step) => measured(&irc_name, n, step),
            Err(e) => skipped(&irc_name, n, format!("could not start or measure: {e:#}")),
        },
    };
    say(describe(&row));
    report.rows.push(row);

    let nats_name = "NATS cluster (full mesh)".to_owned();
    say(format!("{nats_name}: {n} servers on 127.0.{nats_net}.x …"));
    let row = match nats_missing {
        Some(why) => skipped(&nats_name, n, why),
        None => match nats::measure(nats_server, n, nats_net, args.rate, args.seconds).await {
            Ok(step) => measured(&nats_name, n, step),
            Err(e) => skipped(&nats_name, n, format!("could not start or measure: {e:#}")),
        },
    };
    say(describe(&row));
    report.rows.push(row);

    say(format!("chatd: {n} daemons on 127.0.{}.x …", args.net));
    let step = chatd_step(args, chatd, n).await?;
    let row = measured("chatd", n, step);
    say(describe(&row));
    report.rows.push(row);
    report.chatd_over_best_anchor = ratios(&report.rows);
    Ok(report)
}

fn skipped(system: &str, nodes: usize, why: String) -> Row {
    Row {
        system: system.to_owned(),
        nodes,
        skipped: Some(why),
        step: None,
    }
}

fn measured(system: &str, nodes: usize, step: StepReport) -> Row {
    Row {
        system: system.to_owned(),
        nodes,
        skipped: None,
        step: Some(step),
    }
}

fn describe(row: &Row) -> String {
    match (&row.step, &row.skipped) {
        (Some(s), _) => format!(
            "  {}: p50 {:.2} ms, p99 {:.2} ms, {:.0} µs server CPU per delivery, {} of {} \
             delivered",
            row.system,
            s.p50_ms,
            s.p99_ms,
            s.cpu_us_per_delivery,
            s.delivered,
            s.deliveries_expected
        ),
        (None, Some(why)) => format!("  {}: SKIPPED — {why}", row.system),
        (None, None) => format!("  {}: not measured", row.system),
    }
}

/// The latency step of plain chat-bench: the same daemons, settings, subscribers and publisher.
async fn chatd_step(args: &crate::Args, chatd: &std::path::Path, n: usize) -> Result<StepReport> {
    let cluster = crate::cluster::Cluster::start(
        chatd,
        n,
        args.net,
        crate::CONFIG,
        args.worker_threads,
        args.dir.as_deref(),
    )
    .await?;
    cluster.await_ring(crate::RING_DEADLINE).await?;
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    let pids: Vec<u32> = cluster.nodes.iter().map(|d| d.pid()).collect();
    let sockets: Vec<_> = cluster.nodes.iter().map(|d| d.socket.clone()).collect();
    let subs = load::Subscribers::start(&sockets).await?;
    let step = load::Step {
        id: 1,
        rate: args.rate,
        messages: messages(args.rate, args.seconds),
    };
    let before = samples(&pids)?;
    let out = load::run(&sockets[0], &subs, step, crate::DRAIN).await?;
    let after = samples(&pids)?;
    let sustain = Duration::from_millis(args.sustain_p99_ms);
    Ok(crate::step_report(step, &out, &before, &after, sustain))
}

fn messages(rate: f64, seconds: u64) -> u64 {
    (rate * seconds as f64).round().max(1.0) as u64
}

/// The anchors' step, once their servers run and `subs` (one per server) are subscribed:
/// probes (step 0) until every subscriber has one, then `rate` messages a second for `seconds`
/// (step 1) through `publisher`, open loop, each message's latency counted from the start of
/// its write; then up to [`crate::DRAIN`] for the last deliveries. CPU is the `pids`' over the
/// step.
pub async fn anchor_step(
    publisher: &Publisher,
    subs: &[Seen],
    pids: &[u32],
    rate: f64,
    seconds: u64,
) -> Result<StepReport> {
    let probe_end = Instant::now() + ANCHOR_DEADLINE;
    let mut probe = 0;
    while subs.iter().any(|s| !lock(s).iter().any(|a| a.0 == 0)) {
        if Instant::now() >= probe_end {
            let missing = subs
                .iter()
                .filter(|s| !lock(s).iter().any(|a| a.0 == 0))
                .count();
            bail!("{missing} subscriber(s) got no probe within {ANCHOR_DEADLINE:?}");
        }
        publisher.publish(&load::text(0, probe)).await?;
        probe += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let step = load::Step {
        id: 1,
        rate,
        messages: messages(rate, seconds),
    };
    let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let mut out = load::Outcome::default();
    let mut starts = Vec::with_capacity(step.messages as usize);
    let period = Duration::from_secs_f64(1.0 / rate);
    let before = samples(pids)?;
    let t0 = Instant::now() + Duration::from_millis(50);
    for seq in 0..step.messages {
        let due = t0 + period.mul_f64(seq as f64);
        tokio::time::sleep_until(due.into()).await;
        let start = Instant::now();
        match publisher.publish(&load::text(step.id, seq)).await {
            Ok(()) => {
                out.sent += 1;
                out.send_us.push(micros(start.elapsed()));
                out.slip_us
                    .push(micros(start.saturating_duration_since(due)));
                starts.push(Some(start));
            }
            Err(_) => {
                out.send_errors += 1;
                starts.push(None);
            }
        }
    }
    out.expected = out.sent * subs.len() as u64;
    let count = || -> u64 {
        subs.iter()
            .map(|s| lock(s).iter().filter(|a| a.0 == step.id).count() as u64)
            .sum()
    };
    let end = Instant::now() + crate::DRAIN;
    while count() < out.expected && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let after = samples(pids)?;
    let mut last = t0;
    for s in subs {
        if let Some(at) = load::tally(&mut out, step.id, &starts, &lock(s)) {
            last = last.max(at);
        }
    }
    load::finish(&mut out, t0, last);
    out.send_us.sort_unstable();
    out.slip_us.sort_unstable();
    let sustain = Duration::from_secs(3600);
    Ok(crate::step_report(step, &out, &before, &after, sustain))
}

/// chatd ÷ the best (lowest) anchor figure, for each of p50, p99 and CPU per delivery.
fn ratios(rows: &[Row]) -> Option<Ratios> {
    let chatd = rows.iter().find(|r| r.system == "chatd")?.step.as_ref()?;
    let anchors: Vec<&StepReport> = rows
        .iter()
        .filter(|r| r.system != "chatd")
        .filter_map(|r| r.step.as_ref())
        .collect();
    let best = |f: fn(&StepReport) -> f64| {
        anchors.iter().map(|s| f(s)).fold(f64::INFINITY, f64::min)
    };
    let div = |a: f64, b: f64| if b > 0.0 && b.is_finite() { a / b } else { f64::NAN };
    if anchors.is_empty() {
        return None;
    }
    Some(Ratios {
        p50: div(chatd.p50_ms, best(|s| s.p50_ms)),
        p99: div(chatd.p99_ms, best(|s| s.p99_ms)),
        cpu_per_delivery: div(chatd.cpu_us_per_delivery, best(|s| s.cpu_us_per_delivery)),
    })
}

/// Prints the table (Markdown, so that it can go into docs/performance.md as it is).
pub fn print_table(r: &CompareReport) {
    println!(
        "one publisher at {:.0} msg/s for {} s, one subscriber per node",
        r.rate, r.seconds
    );
    println!();
    println!("| system | nodes | p50 | p99 | server CPU per delivery | delivered / expected |");
    println!("|---|---|---|---|---|---|");
    for row in &r.rows {
        match (&row.step, &row.skipped) {
            (Some(s), _) => println!(
                "| {} | {} | {:.2} ms | {:.2} ms | {:.0} µs | {} / {}{} |",
                row.system,
                row.nodes,
                s.p50_ms,
                s.p99_ms,
                s.cpu_us_per_delivery,
                s.delivered,
                s.deliveries_expected,
                if s.duplicates > 0 {
                    format!(", {} duplicates", s.duplicates)
                } else {
                    String::new()
                }
            ),
            (None, why) => println!(
                "| {} | {} | — | — | — | skipped: {} |",
                row.system,
                row.nodes,
                why.as_deref().unwrap_or("not measured")
            ),
        }
    }
    if let Some(q) = &r.chatd_over_best_anchor {
        println!(
            "| **chatd ÷ best anchor** | | **{:.2}×** | **{:.2}×** | **{:.2}×** | |",
            q.p50, q.p99, q.cpu_per_delivery
        );
    }
}

/// Connects to `addr`, retrying until `deadline` (a server may still be starting).
pub async fn connect(addr: SocketAddr, deadline: Duration) -> Result<tokio::net::TcpStream> {
    let end = Instant::now() + deadline;
    loop {
        match tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr))
            .await
        {
            Ok(Ok(s)) => {
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Ok(Err(e)) if Instant::now() >= end => bail!("connecting to {addr}: {e}"),
            Err(_) if Instant::now() >= end => bail!("connecting to {addr}: timed out"),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_port_is_refused_and_named() {
        let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = taken.local_addr().expect("addr");
        let err = check_ports(&[addr]).expect_err("taken");
        assert!(err.to_string().contains(&format!("port {}", addr.port())), "{err}");
        drop(taken);
        assert!(check_ports(&[addr]).is_ok());
    }

    #[test]
    fn ratios_divide_by_the_best_anchor() {
        let row = |system: &str, p50: f64, p99: f64, cpu: f64| {
            let step = StepReport {
                p50_ms: p50,
                p99_ms: p99,
                cpu_us_per_delivery: cpu,
                ..StepReport::default()
            };
            measured(system, 20, step)
        };
        let rows = vec![
            row("irc", 2.0, 4.0, 100.0),
            row("nats", 1.0, 5.0, 200.0),
            skipped("other", 20, "absent".into()),
            row("chatd", 3.0, 8.0, 300.0),
        ];
        let q = ratios(&rows).expect("ratios");
        assert_eq!((q.p50, q.p99, q.cpu_per_delivery), (3.0, 2.0, 3.0));
        assert!(ratios(&rows[2..]).is_none());
    }
}
