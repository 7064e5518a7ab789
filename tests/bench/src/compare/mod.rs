//! `chat-bench --compare` (issues 24 and 33): the latency scenario of chat-bench — one
//! publisher at `--rate` messages a second for `--seconds`, one subscriber per node, latency
//! from the start of the publish call to the arrival at each subscriber — run in one go against
//! three anchors and then chatd, so that their ratios are taken on the same machine in the same
//! minutes:
//!
//! 1. ngircd: a tree of N IRC servers (each linked to its parent, a binary tree; the publisher
//!    and node 0's subscriber on the root), raw IRC clients ([`irc`]);
//! 2. nats-server: a cluster of N servers in a full mesh of routes, raw NATS clients ([`nats`]);
//! 3. rust-libp2p gossipsub: N `gossip-node` processes over QUIC, signed messages checked on
//!    every node, clients of its line protocol ([`gossip`]); the node program is built with
//!    cargo from tests/bench/gossip-node unless `--gossip-node` names one;
//! 4. chatd: a ring of N daemons, measured by chat-bench's own latency step ([`crate::load`]).
//!
//! Server CPU per delivery is the servers' CPU time (`/proc/PID/stat`) over the measured step
//! divided by the deliveries, as for chatd. Every server listens on its own 127.0.X.Y address;
//! the ports the anchors need are bind-tested before anything starts (a taken port stops the
//! run). An anchor that is not installed, cannot be built or does not start is reported and
//! skipped; chatd still runs. The anchors' processes are stopped by pid when they are done,
//! and on drop.

mod gossip;
mod irc;
mod nats;
mod procs;
mod report;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;

use crate::load::{self, Arrival};
use crate::{StepReport, samples};
pub use report::GOSSIPSUB;
pub use report::{CompareReport, print_table};
use report::{describe, measured, ratios, skipped};

/// How long a whole anchor may take to start (servers, links, clients, first probe through).
const ANCHOR_DEADLINE: Duration = Duration::from_secs(60);
/// How long one client may take to connect and register or subscribe.
const CLIENT_DEADLINE: Duration = Duration::from_secs(15);

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

/// Refuses (with the port named) when any of `addrs` cannot be bound for UDP right now.
pub fn check_udp_ports(addrs: &[SocketAddr]) -> Result<()> {
    for a in addrs {
        if let Err(e) = UdpSocket::bind(a) {
            bail!(
                "UDP port {} on {} is taken or cannot be bound ({e}); refusing to start: stop \
                 what uses it or pick other addresses with --net",
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
    let gossip_net = args.net.wrapping_add(3);
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
    let gossip_bin = gossip::binary(args.gossip_node.as_deref(), say).await;
    if gossip_bin.is_ok() {
        ports.extend(gossip::addrs(n, gossip_net));
        check_udp_ports(&gossip::udp_addrs(n, gossip_net))?;
    }
    check_ports(&ports)?;

    let mut report = CompareReport {
        nodes: n,
        rate: args.rate,
        seconds: args.seconds,
        ..CompareReport::default()
    };
    let hops = irc::depth(n);
    let irc_name = format!(
        "ngircd (server tree, {hops} hop{})",
        if hops == 1 { "" } else { "s" }
    );
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

    say(format!("{GOSSIPSUB}: {n} nodes on 127.0.{gossip_net}.x …"));
    let row = match gossip_bin {
        Err(why) => skipped(GOSSIPSUB, n, why),
        Ok(bin) => match gossip::measure(&bin, n, gossip_net, args.rate, args.seconds).await {
            Ok(step) => measured(GOSSIPSUB, n, step),
            Err(e) => skipped(GOSSIPSUB, n, format!("could not start or measure: {e:#}")),
        },
    };
    say(describe(&row));
    report.rows.push(row);

    say(format!("chatd: {n} daemons on 127.0.{}.x …", args.net));
    let step = chatd_step(args, chatd, n).await?;
    let row = measured("chatd", n, step);
    say(describe(&row));
    report.rows.push(row);
    report.chatd_over_best_anchor = ratios(&report.rows, |r| r.system != GOSSIPSUB);
    report.chatd_over_gossipsub = ratios(&report.rows, |r| r.system == GOSSIPSUB);
    Ok(report)
}

/// The latency step of plain chat-bench: the same daemons, settings, subscribers and publisher.
async fn chatd_step(args: &crate::Args, chatd: &std::path::Path, n: usize) -> Result<StepReport> {
    let cluster = crate::cluster::Cluster::start(
        chatd,
        n,
        args.net,
        &args.config(),
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
        assert!(
            err.to_string().contains(&format!("port {}", addr.port())),
            "{err}"
        );
        drop(taken);
        assert!(check_ports(&[addr]).is_ok());
    }
}
