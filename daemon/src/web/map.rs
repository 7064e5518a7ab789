//! The page's `ring` frame: the map data of `GetRing` (this node, its ring size, every node it
//! has met with roles, connection, round-trip time, failure and nicknames), in the short
//! field names the page's Network view reads. Bounded as `GetRing` is (at most 256 nodes).

use chat_proto::v1::GetRingResponse;
use serde_json::{Value, json};

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
