//! A partition of real daemons heals fast (issue 37): twelve nodes in two network namespaces,
//! six on each side of a veth pair, form one ring and let it settle (every successor list
//! full); a blackhole route in each namespace cuts the link for 60 s; both sides go on as
//! rings of their own; after the heal every node's successor and predecessor are right for
//! one ring of twelve again within 10 s (the peers lost at the cut used to back off in step,
//! and the merge waited up to 28 s for a probe).
//!
//! A ring cut young (issue 37): the same twelve, cut the moment their ring first looks right
//! (nodes that joined a second ago know few others, and every one joined through node 0, on
//! side 0); each side must close into one ring within 30 s of the cut and still be one at its
//! end, and the whole one ring within 10 s of the heal.
//!
//! Default configuration (the ring's real timers). Needs root (`ip netns`); skipped with a
//! printed reason otherwise, failed instead when `CHATD_TEST_STRICT=1` (CI). The two tests run
//! one at a time (twelve daemons each).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::cluster::poll;
use crate::netns::{Netns, netns_or_skip};
use crate::support::{Daemon, Sandbox};

const NODES: usize = 12;
const CUT: Duration = Duration::from_secs(60);
/// The bound after the heal (issue 37).
const MERGE: Duration = Duration::from_secs(10);
/// A young cut: each side is one ring within this long of the cut, and the cut lasts this long.
const YOUNG_SIDE: Duration = Duration::from_secs(30);

/// Twelve daemons per test: the tests of this file run one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct Node {
    daemon: Daemon,
    socket: PathBuf,
}

fn side(i: usize) -> usize {
    usize::from(i >= NODES / 2)
}

fn start(sandbox: &Sandbox, ns: &Netns, i: usize, bootstrap: Option<SocketAddr>) -> Node {
    let dir = sandbox.path().join(format!("p{i}"));
    let socket = dir.join("run/control.sock");
    let mut cmd = sandbox.chatd_bare();
    cmd.arg("--config")
        .arg(sandbox.config())
        .args(["--listen", &format!("{}:0", ns.addrs[side(i)])])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--control")
        .arg(&socket);
    if let Some(b) = bootstrap {
        cmd.args(["--bootstrap", &b.to_string()]);
    }
    let daemon = sandbox.start(ns.wrap(side(i), &cmd), &socket);
    Node { daemon, socket }
}

fn json(sandbox: &Sandbox, node: &Node, args: &[&str]) -> Option<serde_json::Value> {
    let out = sandbox.chatctl_at(&node.socket, args);
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// Whether every node of `nodes` has the right successor and predecessor for one ring of
/// exactly them; otherwise what each node sees (for the failure message).
fn one_ring(sandbox: &Sandbox, nodes: &[&Node]) -> Result<(), String> {
    let mut views = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let Some(r) = json(sandbox, n, &["ring", "--json"]) else {
            return Err(format!("node {i}: `chatctl ring --json` failed"));
        };
        let id = r["node_id"].as_str().unwrap_or_default().to_owned();
        let succ = r["successors"][0]["node_id"].as_str().map(str::to_owned);
        let pred = r["predecessor"]["node_id"].as_str().map(str::to_owned);
        views.push((id, succ, pred));
    }
    let mut ids: Vec<String> = views.iter().map(|v| v.0.clone()).collect();
    ids.sort();
    let n = ids.len();
    let right = views.iter().all(|(id, succ, pred)| {
        let Some(me) = ids.iter().position(|x| x == id) else {
            return false;
        };
        succ.as_deref() == Some(ids[(me + 1) % n].as_str())
            && pred.as_deref() == Some(ids[(me + n - 1) % n].as_str())
    });
    if right {
        return Ok(());
    }
    let short = |s: &Option<String>| {
        s.as_deref()
            .map_or("-".into(), |s| s[..8.min(s.len())].to_owned())
    };
    Err(views
        .iter()
        .map(|(id, succ, pred)| {
            format!(
                "{} succ {} pred {}",
                &id[..8.min(id.len())],
                short(succ),
                short(pred)
            )
        })
        .collect::<Vec<_>>()
        .join("; "))
}

/// Polls [`one_ring`] for `nodes` up to `deadline`: the time it took, or what was wrong last.
fn await_one_ring(
    sandbox: &Sandbox,
    nodes: &[&Node],
    deadline: Duration,
    every: Duration,
) -> Result<Duration, String> {
    let start = Instant::now();
    let mut last = String::new();
    poll(deadline, every, || match one_ring(sandbox, nodes) {
        Ok(()) => Some(start.elapsed()),
        Err(e) => {
            last = e;
            None
        }
    })
    .ok_or(last)
}

/// The twelve, formed, in their namespaces. Fields drop in this order: the daemons, the
/// sandbox, the namespaces, then the other test's turn.
struct Twelve {
    nodes: Vec<Node>,
    sandbox: Sandbox,
    ns: Netns,
    /// From the first start until they first formed one ring.
    formed: Duration,
    _one: MutexGuard<'static, ()>,
}

/// Waits its turn, makes the namespaces (or skips with the reason), starts the twelve, the
/// first six in namespace 0 and the rest in 1, every one joining through node 0, and waits
/// (polling every `every`) until they first form one ring.
fn twelve(test: &str, tag: &str, subnet: u8, every: Duration) -> Option<Twelve> {
    let one = one_at_a_time();
    let ns = netns_or_skip(test, tag, subnet)?;
    let sandbox = Sandbox::new();
    // The ring's default timers; no web view or IRC door (six daemons share a loopback).
    sandbox.write_config("[web]\nlisten = \"\"\n[irc]\nlisten = \"\"\n");
    let started = Instant::now();
    let first = start(&sandbox, &ns, 0, None);
    let listen: SocketAddr = json(&sandbox, &first, &["status", "--json"])
        .and_then(|s| s["listen_addr"].as_str()?.parse().ok())
        .expect("the first node's address");
    let mut nodes = vec![first];
    for i in 1..NODES {
        nodes.push(start(&sandbox, &ns, i, Some(listen)));
    }
    let all: Vec<&Node> = nodes.iter().collect();
    if let Err(e) = await_one_ring(&sandbox, &all, Duration::from_secs(90), every) {
        panic!("twelve nodes do not form one ring: {e}");
    }
    let formed = started.elapsed();
    Some(Twelve {
        nodes,
        sandbox,
        ns,
        formed,
        _one: one,
    })
}

/// Heals the cut and checks the whole is one ring within [`MERGE`]: how long it took.
fn heal_into_one_ring(sandbox: &Sandbox, ns: &Netns, all: &[&Node]) -> Duration {
    ns.cut(false).expect("heal");
    let healed = Instant::now();
    match await_one_ring(sandbox, all, MERGE, Duration::from_millis(250)) {
        Ok(took) => took,
        Err(e) => {
            let later = await_one_ring(
                sandbox,
                all,
                Duration::from_secs(60),
                Duration::from_millis(500),
            )
            .map(|_| healed.elapsed());
            panic!("not one ring {MERGE:?} after the heal: {e} (one ring after {later:?})");
        }
    }
}

/// Panics with what each node of `half` sees and its log's tail.
fn side_failed(half: &[&Node], k: usize, what: &str, e: &str) -> ! {
    let logs: Vec<String> = half.iter().map(|n| n.daemon.log_tail(30)).collect();
    panic!(
        "side {k} {what}: {e}\nits logs (newest first):\n{}",
        logs.join("\n---\n")
    );
}

#[test]
fn twelve_nodes_cut_in_two_for_a_minute_are_one_ring_again_within_ten_seconds_of_the_heal() {
    let Some(t) = twelve("partition test", "p", 3, Duration::from_millis(300)) else {
        return;
    };
    let (sandbox, ns) = (&t.sandbox, &t.ns);
    let all: Vec<&Node> = t.nodes.iter().collect();
    // A settled ring: every node lists the other eleven as successors (the young cut is the
    // next test's).
    let settled = poll(Duration::from_secs(60), Duration::from_millis(300), || {
        all.iter()
            .all(|n| {
                json(sandbox, n, &["ring", "--json"])
                    .and_then(|r| r["successors"].as_array().map(Vec::len))
                    .is_some_and(|len| len >= NODES - 1)
            })
            .then_some(())
    });
    assert!(
        settled.is_some(),
        "every node lists the other eleven as successors"
    );

    ns.cut(true).expect("cut");
    let cut = Instant::now();
    let (a, b) = all.split_at(NODES / 2);
    for (k, half) in [a, b].into_iter().enumerate() {
        if let Err(e) = await_one_ring(sandbox, half, CUT, Duration::from_millis(500)) {
            side_failed(
                half,
                k,
                &format!("is not a ring of its own {CUT:?} after the cut"),
                &e,
            );
        }
    }
    std::thread::sleep(CUT.saturating_sub(cut.elapsed()));
    let merged = heal_into_one_ring(sandbox, ns, &all);
    eprintln!("one ring {merged:?} after the heal");
}

/// Cut seconds after the ring forms, a node may know of no one on its side but a neighbour or
/// two (its bootstrap peer is across the cut): seen once before issue 37's sample, side 1
/// stayed a ring of 4 and a ring of 2 for a whole minute. The sample (`ring/sample.rs`; and a
/// joiner's news of itself, when on) gives each side the addresses to close by.
#[test]
fn twelve_nodes_cut_the_moment_their_ring_forms_close_each_side_and_heal() {
    // Polled as fast as twelve `chatctl ring` calls go: the cut comes at most a round later.
    let Some(t) = twelve("young partition test", "y", 4, Duration::from_millis(50)) else {
        return;
    };
    let (sandbox, ns, formed) = (&t.sandbox, &t.ns, t.formed);
    let all: Vec<&Node> = t.nodes.iter().collect();
    ns.cut(true).expect("cut");
    let cut = Instant::now();
    let halves = all.split_at(NODES / 2);
    let halves = [halves.0, halves.1];
    let mut took: [Option<Duration>; 2] = [None, None];
    let mut last = [String::new(), String::new()];
    poll(YOUNG_SIDE, Duration::from_millis(250), || {
        for k in 0..2 {
            if took[k].is_none() {
                match one_ring(sandbox, halves[k]) {
                    Ok(()) => took[k] = Some(cut.elapsed()),
                    Err(e) => last[k] = e,
                }
            }
        }
        took.iter().all(Option::is_some).then_some(())
    });
    for k in 0..2 {
        if took[k].is_none() {
            side_failed(
                halves[k],
                k,
                &format!("is not one ring {YOUNG_SIDE:?} after a young cut"),
                &last[k],
            );
        }
    }
    // Still one ring each at the end of the cut (a few seconds' grace for the checks).
    std::thread::sleep(YOUNG_SIDE.saturating_sub(cut.elapsed()));
    for (k, half) in halves.into_iter().enumerate() {
        if let Err(e) = await_one_ring(
            sandbox,
            half,
            Duration::from_secs(3),
            Duration::from_millis(250),
        ) {
            side_failed(half, k, "split again before the heal", &e);
        }
    }
    let merged = heal_into_one_ring(sandbox, ns, &all);
    eprintln!(
        "young cut: one ring {formed:?} after the first start; sides one ring {:?} and {:?} \
         after the cut; one ring {merged:?} after the heal",
        took[0].unwrap_or_default(),
        took[1].unwrap_or_default()
    );
}
