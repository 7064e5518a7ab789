//! `chatctl trace ID`: how one public message travelled through the ring. Prints the
//! broadcast tree from the origin, each node with the time its hop took (its parent's wait
//! plus the transit), its latency from the origin and how long it held the message before
//! sending it on; then the slowest path and the nodes that did not answer. `--json` prints
//! the daemon's `TraceResponse` as one JSON object.

use std::collections::{BTreeMap, BTreeSet};

use chat_proto::v1::{TraceNode, TraceRequest, TraceResponse, TraceState, TraceVia};

use crate::Error;
use crate::client::{self, Target};
use crate::output::Printer;

/// Traces message `id` (a whole id or a unique prefix) and prints the tree.
pub async fn run(socket: &Target, printer: Printer, id: String) -> Result<(), Error> {
    let id = super::edit::public_id(socket, &id).await?;
    let mut api = client::chat_service(socket).await?;
    let resp = api
        .trace(TraceRequest { id })
        .await
        .map_err(|s| client::call_error(socket, s))?
        .into_inner();
    printer.table(&resp, &render(&resp)).map_err(Error::Output)
}

fn short(id: &str) -> &str {
    &id[..8.min(id.len())]
}

fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

fn state(n: &TraceNode) -> TraceState {
    TraceState::try_from(n.state).unwrap_or(TraceState::Unspecified)
}

/// The human-readable form.
pub fn render(r: &TraceResponse) -> String {
    let by_id: BTreeMap<&str, &TraceNode> =
        r.nodes.iter().map(|n| (n.node_id.as_str(), n)).collect();
    let answered: Vec<&TraceNode> = r
        .nodes
        .iter()
        .filter(|n| state(n) == TraceState::Answered)
        .collect();
    // Children by parent, each list in arrival order.
    let mut kids: BTreeMap<&str, Vec<&TraceNode>> = BTreeMap::new();
    for n in &answered {
        if !n.from_node_id.is_empty() {
            kids.entry(n.from_node_id.as_str()).or_default().push(n);
        }
    }
    for list in kids.values_mut() {
        list.sort_by_key(|n| (n.received_unix_us, n.node_id.clone()));
    }
    let depth = answered.iter().filter_map(|n| n.depth).max().unwrap_or(0);
    let edges = answered
        .iter()
        .filter(|n| !n.from_node_id.is_empty())
        .count();
    let mut out = format!(
        "message {}  from node {} (its message {})\n{} nodes answered, {} edges, depth {}",
        short(&r.id),
        short(&r.origin_node_id),
        r.seq,
        answered.len(),
        edges,
        depth,
    );
    if !r.slowest_path.is_empty() {
        out.push_str(&format!(
            ", last reached after {}",
            ms(r.slowest_latency_us)
        ));
    }
    out.push_str("\n\n");
    let mut shown = BTreeSet::new();
    match by_id.get(r.origin_node_id.as_str()) {
        Some(o) if state(o) == TraceState::Answered => {
            tree(&mut out, o, &kids, "", "", &mut shown);
        }
        _ => out.push_str(&format!(
            "origin {} did not answer: the tree below it is shown from each answering node\n",
            short(&r.origin_node_id)
        )),
    }
    // Answering nodes not reached from the origin (their parent did not answer).
    for n in &answered {
        if !shown.contains(n.node_id.as_str()) && !by_id.contains_key(n.from_node_id.as_str())
            || by_id.get(n.from_node_id.as_str()).is_some_and(|p| {
                state(p) != TraceState::Answered && !shown.contains(n.node_id.as_str())
            })
        {
            tree(&mut out, n, &kids, "", "", &mut shown);
        }
    }
    if !r.slowest_path.is_empty() {
        let path: Vec<&str> = r.slowest_path.iter().map(|id| short(id)).collect();
        out.push_str(&format!(
            "\nslowest path  {}  ({})\n",
            path.join(" → "),
            ms(r.slowest_latency_us)
        ));
    }
    for (label, st) in [
        ("no answer", TraceState::NoAnswer),
        ("not received", TraceState::NotReceived),
        ("busy", TraceState::Busy),
    ] {
        let list: Vec<String> = r
            .nodes
            .iter()
            .filter(|n| state(n) == st)
            .map(|n| format!("{} ({})", short(&n.node_id), n.address))
            .collect();
        if !list.is_empty() {
            out.push_str(&format!("{label:<13}{}\n", list.join(", ")));
        }
    }
    if r.truncated {
        out.push_str("(the walk stopped at its bound: more nodes were not asked)\n");
    }
    out
}

fn tree<'a>(
    out: &mut String,
    n: &'a TraceNode,
    kids: &BTreeMap<&str, Vec<&'a TraceNode>>,
    lead: &str,
    branch: &str,
    shown: &mut BTreeSet<&'a str>,
) {
    if !shown.insert(n.node_id.as_str()) {
        return;
    }
    let mut line = format!("{lead}{branch}{}", short(&n.node_id));
    let via = TraceVia::try_from(n.via).unwrap_or(TraceVia::Unspecified);
    match (via, n.hop_us) {
        (TraceVia::Origin, _) => line.push_str("  origin"),
        (_, Some(h)) => line.push_str(&format!("  +{}", ms(h))),
        _ => {}
    }
    if let Some(l) = n.latency_us.filter(|_| via != TraceVia::Origin) {
        line.push_str(&format!("  at {}", ms(l)));
    }
    if via == TraceVia::Repair {
        line.push_str("  (anti-entropy)");
    } else if let Some(d) = n.depth.filter(|d| *d > 0) {
        line.push_str(&format!("  depth {d}"));
    }
    if let Some(w) = n.wait_us {
        line.push_str(&format!("  held {}", ms(w)));
    }
    out.push_str(&line);
    out.push('\n');
    let Some(children) = kids.get(n.node_id.as_str()) else {
        return;
    };
    let next_lead = format!(
        "{lead}{}",
        match branch {
            "" => "",
            "└─ " => "   ",
            _ => "│  ",
        }
    );
    for (i, c) in children.iter().enumerate() {
        let b = if i + 1 == children.len() {
            "└─ "
        } else {
            "├─ "
        };
        tree(out, c, kids, &next_lead, b, shown);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: char, from: Option<char>, at: u64, hop: u64, lat: u64) -> TraceNode {
        TraceNode {
            node_id: id.to_string().repeat(64),
            address: "127.0.0.1:1".into(),
            state: TraceState::Answered as i32,
            from_node_id: from.map(|f| f.to_string().repeat(64)).unwrap_or_default(),
            via: if from.is_some() {
                TraceVia::Tree
            } else {
                TraceVia::Origin
            } as i32,
            depth: Some(u32::from(from.is_some())),
            received_unix_us: at,
            hop_us: from.map(|_| hop),
            latency_us: Some(lat),
            ..Default::default()
        }
    }

    #[test]
    fn draws_the_tree_and_the_silent() {
        let mut dead = node('d', None, 0, 0, 0);
        dead.state = TraceState::NoAnswer as i32;
        dead.latency_us = None;
        let r = TraceResponse {
            id: "f".repeat(64),
            origin_node_id: "a".repeat(64),
            seq: 3,
            nodes: vec![
                node('a', None, 100, 0, 0),
                node('b', Some('a'), 700, 600, 600),
                node('c', Some('b'), 1_900, 1_200, 1_800),
                dead,
            ],
            truncated: false,
            slowest_path: vec!["a".repeat(64), "b".repeat(64), "c".repeat(64)],
            slowest_latency_us: 1_800,
        };
        let text = render(&r);
        assert!(
            text.contains("3 nodes answered, 2 edges, depth 1"),
            "{text}"
        );
        assert!(text.contains("aaaaaaaa  origin"), "{text}");
        assert!(text.contains("└─ bbbbbbbb  +0.60 ms  at 0.60 ms"), "{text}");
        assert!(
            text.contains("   └─ cccccccc  +1.20 ms  at 1.80 ms"),
            "{text}"
        );
        assert!(
            text.contains("slowest path  aaaaaaaa → bbbbbbbb → cccccccc  (1.80 ms)"),
            "{text}"
        );
        assert!(
            text.contains("no answer    dddddddd (127.0.0.1:1)"),
            "{text}"
        );
    }
}
