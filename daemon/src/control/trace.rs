//! The API form of a traced message (`ChatService.Trace`): [`crate::chat::trace::Traced`]
//! as a `TraceResponse`.

use chat_overlay::broadcast::trace::{TraceOutcome, Via};
use chat_proto::v1::{TraceNode, TraceResponse, TraceState, TraceVia};

use crate::chat::trace::{Traced, TracedNode};

/// `t` as the API sends it.
pub fn response(t: &Traced) -> TraceResponse {
    TraceResponse {
        id: t.id.to_hex(),
        origin_node_id: t.origin.to_hex(),
        seq: t.seq,
        nodes: t.nodes.iter().map(node).collect(),
        truncated: t.truncated,
        slowest_path: t.slowest_path.iter().map(|id| id.to_hex()).collect(),
        slowest_latency_us: t.slowest_latency_us,
    }
}

fn node(n: &TracedNode) -> TraceNode {
    let mut out = TraceNode {
        node_id: n.peer.id.to_hex(),
        address: n.peer.addr.to_string(),
        hop_us: n.hop_us,
        latency_us: n.latency_us,
        wait_us: n.wait_us,
        ..Default::default()
    };
    let state = match &n.outcome {
        TraceOutcome::Hop(h) => {
            out.from_node_id = h.from.map(|f| f.id.to_hex()).unwrap_or_default();
            out.via = match h.via {
                Via::Origin => TraceVia::Origin,
                Via::Tree => TraceVia::Tree,
                Via::Repair => TraceVia::Repair,
            } as i32;
            out.depth = h.depth.map(u32::from);
            out.received_unix_us = h.received_us;
            out.forwarded_unix_us = h.forwarded_us.unwrap_or(0);
            out.children = h.children.iter().map(|c| c.id.to_hex()).collect();
            TraceState::Answered
        }
        TraceOutcome::Unknown => TraceState::NotReceived,
        TraceOutcome::NoAnswer => TraceState::NoAnswer,
        TraceOutcome::Busy => TraceState::Busy,
    };
    out.state = state as i32;
    out
}
