//! The page's `ring` frame: the map data of `GetRing` (this node, its ring size, every node it
//! has met with roles, connection, round-trip time, failure and nicknames), in the short
//! field names the page's Network view reads. Bounded as `GetRing` is (at most 256 nodes).
//! And the page's message traces: a `{"t":"trace","id":ID}` request, answered by a `trace`
//! frame that the map draws (`edges` of `from`, `to`, `ms`).

use chat_overlay::broadcast::trace::TraceOutcome;
use chat_proto::v1::GetRingResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::chat::MessageId;
use crate::chat::trace::Traced;

/// The id of a page's trace request, if `text` is one (`Err`: a trace request whose id is
/// not a message id).
pub fn trace_request(text: &str) -> Option<Result<MessageId, String>> {
    #[derive(Deserialize)]
    struct Ask {
        t: String,
        #[serde(default)]
        id: String,
    }
    let ask: Ask = serde_json::from_str(text).ok()?;
    (ask.t == "trace").then(|| {
        ask.id
            .parse::<MessageId>()
            .map_err(|e| format!("not a public message's id: {e}"))
    })
}

/// The `trace` frame for `t`: its tree's edges with each hop's time, the nodes that did not
/// answer, the depth and when the last node had it.
pub fn trace_frame(t: &Traced) -> Value {
    let edges: Vec<Value> = t
        .nodes
        .iter()
        .filter_map(|n| match &n.outcome {
            TraceOutcome::Hop(h) => h.from.map(|f| {
                json!({"from": f.id.to_hex(), "to": n.peer.id.to_hex(),
                    "ms": n.hop_us.map(|us| us as f64 / 1000.0)})
            }),
            _ => None,
        })
        .collect();
    let answered = t
        .nodes
        .iter()
        .filter(|n| matches!(n.outcome, TraceOutcome::Hop(_)))
        .count();
    let silent: Vec<String> = t
        .nodes
        .iter()
        .filter(|n| matches!(n.outcome, TraceOutcome::NoAnswer))
        .map(|n| n.peer.id.to_hex())
        .collect();
    let depth = t
        .nodes
        .iter()
        .filter_map(|n| match &n.outcome {
            TraceOutcome::Hop(h) => h.depth,
            _ => None,
        })
        .max()
        .unwrap_or(0);
    json!({
        "t": "trace", "id": t.id.to_hex(), "edges": edges, "answered": answered,
        "silent": silent, "depth": depth, "truncated": t.truncated,
        "slowest_ms": (!t.slowest_path.is_empty()).then(|| t.slowest_latency_us as f64 / 1000.0),
    })
}

/// The `trace` frame of a trace that could not run.
pub fn trace_error(id: &str, why: &str) -> Value {
    json!({"t": "trace", "id": id, "error": why})
}

/// The `ring` frame for `r`.
pub fn ring_frame(r: &GetRingResponse) -> Value {
    let nodes: Vec<Value> = r
        .known
        .iter()
        .map(|n| {
            json!({
                "id": n.node_id, "addr": n.address, "live": n.connected, "rtt_us": n.rtt_micros,
                "failed": n.failed, "pred": n.predecessor, "succ": n.successor,
                "finger": n.finger, "nicks": n.nicknames,
            })
        })
        .collect();
    json!({
        "t": "ring", "node_id": r.node_id, "nicks": r.nicknames,
        "exact": r.ring_size_exact, "estimate": r.ring_size_estimate,
        "omitted": r.known_omitted, "nodes": nodes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_proto::v1::KnownNode;

    #[test]
    fn carries_every_node_and_the_sizes() {
        let r = GetRingResponse {
            node_id: "a".repeat(64),
            known: vec![KnownNode {
                node_id: "b".repeat(64),
                address: "127.0.0.1:9".into(),
                connected: true,
                rtt_micros: 700,
                successor: true,
                nicknames: vec!["bob".into()],
                ..Default::default()
            }],
            ring_size_exact: 2,
            ring_size_estimate: 8,
            nicknames: vec!["alice".into()],
            ..Default::default()
        };
        let f = ring_frame(&r);
        assert_eq!(f["t"], "ring");
        assert_eq!((&f["exact"], &f["estimate"]), (&json!(2), &json!(8)));
        assert_eq!(f["nicks"], json!(["alice"]));
        let b = &f["nodes"][0];
        assert_eq!(b["id"], "b".repeat(64));
        assert_eq!(
            (&b["live"], &b["rtt_us"], &b["succ"]),
            (&json!(true), &json!(700), &json!(true))
        );
        assert_eq!((&b["failed"], &b["finger"]), (&json!(false), &json!(false)));
        assert_eq!(b["nicks"], json!(["bob"]));
    }
}
