//! The gossipsub anchor (issue 33): N processes of `gossip-node` (tests/bench/gossip-node, a
//! rust-libp2p gossipsub node over QUIC, its own Cargo project that only this comparison
//! builds) and raw clients of its line protocol over tokio TCP.
//!
//! Node `i` listens for QUIC on 127.0.`net`.(10+i):[`QUIC_PORT`] (UDP) and for its clients on
//! the same address at [`CONTROL_PORT`] (TCP). It dials its predecessor `i-1` and up to three
//! earlier nodes picked by a fixed pseudo-random rule ([`peers`]), so the connections form one
//! connected graph of small diameter, as peer discovery would give; gossipsub builds its mesh
//! (D = 6) over them. Before the step, every node must be connected to all its peers and have a
//! mesh of at least min(5, peers) (gossipsub's D_lo), asked with `MESH`; then the common step
//! ([`super::anchor_step`]) sends probes until every subscriber has one. Clients: `SUB` until
//! `OK` for the subscribers, `PUB <text>` for the publisher, `MSG <text>` received.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::procs::Procs;
use super::{ANCHOR_DEADLINE, CLIENT_DEADLINE, Publisher, Seen, Tasks};
use crate::StepReport;
use crate::load;

/// QUIC (UDP) port of every node, each on its own address.
pub const QUIC_PORT: u16 = 19093;
/// TCP port of every node's line protocol.
pub const CONTROL_PORT: u16 = 14093;
/// The longest line accepted from a node.
const MAX_LINE: usize = 64 * 1024;
/// gossipsub's default D_lo: below it a heartbeat grafts more peers into the mesh.
const MESH_LOW: usize = 5;

fn ip(net: u8, i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, net, u8::try_from(10 + i).unwrap_or(u8::MAX))
}

/// The TCP addresses the `n` nodes listen on (their UDP ones are [`udp_addrs`]).
pub fn addrs(n: usize, net: u8) -> Vec<SocketAddr> {
    (0..n)
        .map(|i| SocketAddr::from((ip(net, i), CONTROL_PORT)))
        .collect()
}

/// The UDP addresses of the `n` nodes' QUIC endpoints.
pub fn udp_addrs(n: usize, net: u8) -> Vec<SocketAddr> {
    (0..n)
        .map(|i| SocketAddr::from((ip(net, i), QUIC_PORT)))
        .collect()
}

/// The earlier nodes node `i` dials: `i-1`, and up to three more of `0..i-1` picked by a fixed
/// pseudo-random rule (the same in every run).
pub fn peers(i: usize) -> Vec<usize> {
    let Some(prev) = i.checked_sub(1) else {
        return Vec::new();
    };
    let mut out = vec![prev];
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for _ in 0..12 {
        if out.len() == 4 || out.len() == i {
            break;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let j = usize::try_from(x % prev.max(1) as u64).unwrap_or(0);
        if j < prev && !out.contains(&j) {
            out.push(j);
        }
    }
    out
}

/// How many nodes of `n` node `i` is connected to: those it dials and those that dial it.
fn degree(i: usize, n: usize) -> usize {
    peers(i).len() + (i + 1..n).filter(|&j| peers(j).contains(&i)).count()
}

/// The gossip-node binary: `given` (--gossip-node) if there is one, else built from the source
/// tree chat-bench was built from, with cargo, into `$CARGO_TARGET_DIR/gossip-node` (or the
/// tree's `target/gossip-node`). Errors are the reason to print for a skipped row.
pub async fn binary(given: Option<&Path>, say: impl Fn(String)) -> Result<PathBuf, String> {
    if let Some(p) = given {
        return if p.exists() {
            Ok(p.to_owned())
        } else {
            Err(format!("{} (--gossip-node) does not exist", p.display()))
        };
    }
    let bench = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = bench.join("gossip-node/Cargo.toml");
    if !manifest.exists() {
        return Err(format!(
            "{} not found (chat-bench was built elsewhere): pass --gossip-node PATH",
            manifest.display()
        ));
    }
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) => PathBuf::from(t).join("gossip-node"),
        None => bench.join("../../target/gossip-node"),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.args(["build", "--release", "--quiet", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target);
    say(format!(
        "building gossip-node: cargo build --release --manifest-path {} --target-dir {} …",
        manifest.display(),
        target.display()
    ));
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .map_err(|e| format!("building gossip-node: {e}"))?
        .map_err(|e| format!("running {}: {e}", cargo.to_string_lossy()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let start = err.len().saturating_sub(1500);
        return Err(format!(
            "building gossip-node failed ({}): {}",
            out.status,
            err.get(start..).unwrap_or_default()
        ));
    }
    Ok(target.join("release/gossip-node"))
}

/// The command line of node `i`.
fn command(bin: &Path, i: usize, net: u8) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("--listen")
        .arg(SocketAddr::from((ip(net, i), QUIC_PORT)).to_string())
        .arg("--control")
        .arg(SocketAddr::from((ip(net, i), CONTROL_PORT)).to_string())
        .arg("--seed")
        .arg(i.to_string());
    for j in peers(i) {
        cmd.arg("--peer")
            .arg(SocketAddr::from((ip(net, j), QUIC_PORT)).to_string());
    }
    cmd
}

type Writer = Arc<tokio::sync::Mutex<OwnedWriteHalf>>;

/// The next line from a node, without its line break.
async fn next_line(reader: &mut BufReader<OwnedReadHalf>) -> Result<String> {
    let mut buf = Vec::new();
    let limit = u64::try_from(MAX_LINE + 1).unwrap_or(u64::MAX);
    let n = reader.take(limit).read_until(b'\n', &mut buf).await?;
    if n == 0 {
        bail!("the node closed the connection");
    }
    if buf.last() != Some(&b'\n') {
        bail!("a line of more than {MAX_LINE} bytes from the node");
    }
    buf.pop();
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Connects to `server`, sends `hello` and reads until a line starting with `until`.
async fn client(
    server: SocketAddr,
    hello: &str,
    until: &str,
) -> Result<(BufReader<OwnedReadHalf>, Writer, String)> {
    let stream = super::connect(server, CLIENT_DEADLINE).await?;
    let (r, mut w) = stream.into_split();
    let mut reader = BufReader::new(r);
    w.write_all(hello.as_bytes()).await?;
    let answer = tokio::time::timeout(CLIENT_DEADLINE, async {
        loop {
            let l = next_line(&mut reader).await?;
            if l.starts_with(until) {
                return Ok::<_, anyhow::Error>(l);
            }
            if let Some(e) = l.strip_prefix("ERR ") {
                bail!("the node said ERR {e}");
            }
        }
    })
    .await
    .with_context(|| format!("{server}: no {until:?} within {CLIENT_DEADLINE:?}"))??;
    Ok((reader, Arc::new(tokio::sync::Mutex::new(w)), answer))
}

/// Parses `MESH <mesh> <peers>`.
fn parse_mesh(line: &str) -> Option<(usize, usize)> {
    let mut w = line.strip_prefix("MESH ")?.split(' ');
    let mesh = w.next()?.parse().ok()?;
    let peers = w.next()?.parse().ok()?;
    w.next().is_none().then_some((mesh, peers))
}

/// Waits until every node is connected to all its peers (subscribed to the topic) and has a
/// mesh of at least min([`MESH_LOW`], peers).
async fn await_mesh(procs: &mut Procs, n: usize, net: u8) -> Result<()> {
    let end = Instant::now() + ANCHOR_DEADLINE;
    loop {
        procs.check_running()?;
        let mut short = Vec::new();
        for i in 0..n {
            let addr = SocketAddr::from((ip(net, i), CONTROL_PORT));
            let (_, _, answer) = client(addr, "MESH\n", "MESH ").await?;
            let (mesh, subscribed) =
                parse_mesh(&answer).with_context(|| format!("node {i} said {answer:?}"))?;
            let want = degree(i, n);
            if subscribed < want || mesh < MESH_LOW.min(want) {
                short.push(format!(
                    "node {i}: mesh {mesh}, {subscribed} of {want} peers"
                ));
            }
        }
        if short.is_empty() {
            return Ok(());
        }
        if Instant::now() >= end {
            bail!("no mesh within {ANCHOR_DEADLINE:?}: {}", short.join("; "));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Reads a client's connection until it fails, recording the benchmark's messages in `seen`.
/// Holds `_writer` meanwhile: dropping it would half-close the connection, which the node
/// takes for the client's end.
async fn follow(mut reader: BufReader<OwnedReadHalf>, _writer: Writer, seen: Option<Seen>) {
    while let Ok(l) = next_line(&mut reader).await {
        let at = Instant::now();
        if let (Some(text), Some(seen)) = (l.strip_prefix("MSG "), &seen)
            && let Some((step, seq)) = load::parse_text(text)
        {
            super::lock(seen).push((step, seq, at));
        }
    }
}

fn publish(text: &str) -> String {
    format!("PUB {text}\n")
}

/// Starts `n` nodes of `bin`, waits for the mesh, subscribes one client to each and the
/// publisher to node 0, and measures the step; stops every node before returning.
pub async fn measure(bin: &Path, n: usize, net: u8, rate: f64, seconds: u64) -> Result<StepReport> {
    let mut procs = Procs::new()?;
    for i in 0..n {
        procs.spawn(&format!("gossip{i}"), command(bin, i, net))?;
        let addr = SocketAddr::from((ip(net, i), CONTROL_PORT));
        procs.await_listening(addr, Duration::from_secs(10)).await?;
    }
    await_mesh(&mut procs, n, net).await?;
    let mut tasks = Tasks::default();
    let mut subs = Vec::with_capacity(n);
    for i in 0..n {
        let addr = SocketAddr::from((ip(net, i), CONTROL_PORT));
        let (reader, writer, _) = client(addr, "SUB\n", "OK").await?;
        let seen = Seen::default();
        tasks
            .0
            .push(tokio::spawn(follow(reader, writer, Some(seen.clone()))));
        subs.push(seen);
    }
    let (reader, writer, _) = client(
        SocketAddr::from((ip(net, 0), CONTROL_PORT)),
        "MESH\n",
        "MESH ",
    )
    .await?;
    let publisher = Publisher {
        writer: writer.clone(),
        frame: publish,
        reader: tokio::spawn(follow(reader, writer, None)),
    };
    procs.check_running()?;
    let step = super::anchor_step(&publisher, &subs, &procs.pids(), rate, seconds).await;
    procs.check_running()?;
    drop(publisher);
    drop(tasks);
    drop(procs);
    step
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_node_reaches_node_zero_and_dials_at_most_four() {
        assert!(peers(0).is_empty());
        assert_eq!(peers(1), vec![0]);
        for i in 1..200 {
            let p = peers(i);
            assert_eq!(p[0], i - 1, "node {i} dials its predecessor first");
            assert!(p.len() <= 4 && p.iter().all(|&j| j < i), "node {i}: {p:?}");
            let mut sorted = p.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(
                sorted.len(),
                p.len(),
                "node {i} dials each peer once: {p:?}"
            );
        }
        assert!(peers(10).len() == 4, "{:?}", peers(10));
        // The graph has the links the degrees count, both ways.
        let total: usize = (0..30).map(|i| degree(i, 30)).sum();
        let links: usize = (0..30).map(|i| peers(i).len()).sum();
        assert_eq!(total, 2 * links);
    }

    #[test]
    fn the_graph_has_a_small_diameter() {
        let n = 30;
        let mut adj = vec![Vec::new(); n];
        for i in 0..n {
            for j in peers(i) {
                adj[i].push(j);
                adj[j].push(i);
            }
        }
        let mut dist = vec![usize::MAX; n];
        dist[0] = 0;
        let mut queue = std::collections::VecDeque::from([0]);
        while let Some(u) = queue.pop_front() {
            for &v in &adj[u] {
                if dist[v] == usize::MAX {
                    dist[v] = dist[u] + 1;
                    queue.push_back(v);
                }
            }
        }
        let far = dist.iter().copied().max().unwrap_or(usize::MAX);
        assert!(far <= 5, "node 0 reaches every node within {far} hops");
    }

    #[test]
    fn mesh_answers_and_commands_are_framed() {
        assert_eq!(parse_mesh("MESH 6 8"), Some((6, 8)));
        assert_eq!(parse_mesh("MESH 6"), None);
        assert_eq!(parse_mesh("MESH 6 8 1"), None);
        assert_eq!(parse_mesh("OK"), None);
        assert_eq!(publish("bench 1 2"), "PUB bench 1 2\n");
        let cmd = command(Path::new("gossip-node"), 2, 93);
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "--listen",
                "127.0.93.12:19093",
                "--control",
                "127.0.93.12:14093",
                "--seed",
                "2",
                "--peer",
                "127.0.93.11:19093",
                "--peer",
                "127.0.93.10:19093"
            ]
        );
    }
}
