//! `chatctl trace` with real daemons: in a 10-node ring a message's trace names every node
//! once, with N−1 edges and a depth of at most ⌈log2 N⌉; each parent names its child; each
//! node's latency by the trace is at most what a subscriber on that node measured (and not
//! far below it); the per-hop times along the slowest path add up to its latency. A killed
//! node is shown as not answering, a private id and an unknown id get clear errors.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use chat_proto::v1::{SendRequest, SubscribeRequest, subscribe_response};
use serde_json::Value;
use tokio_stream::StreamExt;

use crate::client;
use crate::cluster::{Cluster, poll};

const FORM: Duration = Duration::from_secs(90);
const N: usize = 10;

/// Subscribes on every node, sends one message from `from`, and returns its id with the
/// latency each node's subscriber measured (from just before the `Send` call).
fn send_and_time(c: &Cluster, from: usize, text: &str) -> (String, BTreeMap<usize, Duration>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut streams = Vec::new();
        for m in &c.members {
            let mut api = client::chat(client::unix(&m.dir.join("run/control.sock")).await);
            let s = api
                .subscribe(SubscribeRequest::default())
                .await
                .expect("subscribe")
                .into_inner();
            streams.push(s);
        }
        let mut api =
            client::chat(client::unix(&c.members[from].dir.join("run/control.sock")).await);
        let start = Instant::now();
        let sent = api
            .send(SendRequest {
                room: String::new(),
                text: text.to_owned(),
                ..Default::default()
            })
            .await
            .expect("send")
            .into_inner()
            .message
            .expect("message");
        let mut set = tokio::task::JoinSet::new();
        for (i, mut s) in streams.into_iter().enumerate() {
            let want = sent.id.clone();
            set.spawn(async move {
                let seen = tokio::time::timeout(Duration::from_secs(30), async {
                    while let Some(Ok(ev)) = s.next().await {
                        if let Some(subscribe_response::Event::Message(m)) = ev.event
                            && m.id == want
                        {
                            return Some(start.elapsed());
                        }
                    }
                    None
                })
                .await
                .ok()
                .flatten();
                (i, seen)
            });
        }
        let mut times = BTreeMap::new();
        while let Some(r) = set.join_next().await {
            let (i, seen) = r.expect("subscriber");
            times.insert(
                i,
                seen.unwrap_or_else(|| panic!("node {i} never showed it")),
            );
        }
        (sent.id, times)
    })
}

fn trace(c: &Cluster, i: usize, id: &str) -> Option<Value> {
    poll(Duration::from_secs(20), Duration::from_millis(300), || {
        c.json(&c.members[i].dir, &["trace", id, "--json"])
    })
}

fn us(v: &Value) -> Option<u64> {
    v.as_u64()
}

#[test]
fn a_traced_message_is_a_tree_of_n_minus_1_edges_whose_times_add_up() {
    let names: Vec<String> = (0..N).map(|i| format!("tracer{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut c = Cluster::named(83, &refs, FORM);
    let (id, seen) = send_and_time(&c, 2, "which way did I go?");
    // Traced from another node, by a prefix.
    let t = trace(&c, 5, &id[..12]).expect("chatctl trace --json");
    assert_eq!(t["id"], id.as_str(), "{t}");
    assert_eq!(t["origin_node_id"], c.members[2].id.as_str(), "{t}");
    let nodes = t["nodes"].as_array().expect("nodes");
    let by_id: BTreeMap<&str, &Value> = nodes
        .iter()
        .map(|n| (n["node_id"].as_str().expect("id"), n))
        .collect();
    // Every node answered (state 1 = ANSWERED), each once.
    for (i, m) in c.members.iter().enumerate() {
        let n = by_id
            .get(m.id.as_str())
            .unwrap_or_else(|| panic!("node {i} not in the trace: {t}"));
        assert_eq!(n["state"], 1, "node {i}: {n}");
    }
    assert_eq!(nodes.len(), N, "{t}");
    // A tree: one origin, N−1 edges, each parent names its child, depth ≤ ⌈log2 N⌉.
    let edges: Vec<(&str, &str)> = nodes
        .iter()
        .filter(|n| n["from_node_id"] != "")
        .map(|n| {
            (
                n["from_node_id"].as_str().expect("from"),
                n["node_id"].as_str().expect("id"),
            )
        })
        .collect();
    assert_eq!(edges.len(), N - 1, "{t}");
    for (parent, child) in &edges {
        let p = by_id.get(parent).expect("parent answered");
        assert!(
            p["children"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c == *child)),
            "{parent} does not name {child}: {t}"
        );
    }
    let bound = (N as f64).log2().ceil() as u64;
    for n in nodes {
        let depth = n["depth"]
            .as_u64()
            .expect("depth (no repair on a calm ring)");
        assert!(depth <= bound, "depth {depth} > {bound}: {n}");
    }
    // Latencies: the trace's is the overlay's arrival, the subscriber's comes after the store
    // and the stream, so it is at least the trace's, and not far above it.
    let mut at_origin = None;
    for (i, m) in c.members.iter().enumerate() {
        let n = by_id[m.id.as_str()];
        let traced = Duration::from_micros(us(&n["latency_us"]).expect("latency"));
        if i == 2 {
            at_origin = Some(n["received_unix_us"].clone());
            assert_eq!(traced, Duration::ZERO, "{n}");
            continue;
        }
        let tail = seen[&i];
        assert!(
            traced <= tail + Duration::from_millis(2),
            "node {i}: trace says {traced:?}, its subscriber saw it after {tail:?}"
        );
        assert!(
            tail < traced + Duration::from_millis(500),
            "node {i}: trace says {traced:?}, its subscriber saw it after {tail:?}"
        );
    }
    // Times are Unix microseconds (this machine's clock, within the minute of the test).
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_micros() as u64;
    let sent_us = at_origin.and_then(|v| v.as_u64()).expect("origin's time");
    assert!(
        now_us.abs_diff(sent_us) < 60_000_000,
        "origin's time {sent_us}, now {now_us}"
    );
    // The slowest path runs from the origin, and its hop times add up to its latency.
    let path: Vec<&str> = t["slowest_path"]
        .as_array()
        .expect("path")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(path.first().copied(), Some(c.members[2].id.as_str()), "{t}");
    let sum: u64 = path[1..]
        .iter()
        .map(|id| us(&by_id[id]["hop_us"]).expect("hop"))
        .sum();
    assert_eq!(Some(sum), us(&t["slowest_latency_us"]), "{t}");
    let last = path.last().expect("last");
    assert_eq!(by_id[last]["latency_us"], t["slowest_latency_us"], "{t}");

    // The human form: the tree and its figures.
    let sock = c.members[5].dir.join("run/control.sock");
    let out = c.sandbox.chatctl_at(&sock, &["trace", &id]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    eprintln!("{text}");
    assert!(
        text.contains(&format!("{N} nodes answered, {} edges", N - 1)),
        "{text}"
    );
    assert!(text.contains("slowest path"), "{text}");

    // Bad ids get clear errors, and no walk.
    let out = c.sandbox.chatctl_at(&sock, &["trace", &"0".repeat(64)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("no message"), "{err}");
    let out = c.sandbox.chatctl_at(&sock, &["trace", &"ab".repeat(16)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("only public messages"),
        "{err}"
    );

    // A node that is gone is shown as not answering (state 3), the others still answer.
    let dead = c.members[7].id.clone();
    c.kill(7);
    let t = trace(&c, 5, &id).expect("trace after the kill");
    let nodes = t["nodes"].as_array().expect("nodes");
    let states: BTreeSet<(String, u64)> = nodes
        .iter()
        .map(|n| {
            (
                n["node_id"].as_str().unwrap_or("").to_owned(),
                n["state"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert!(states.contains(&(dead.clone(), 3)), "{t}");
    let answered = states.iter().filter(|(_, s)| *s == 1).count();
    assert_eq!(answered, N - 1, "{t}");
}
