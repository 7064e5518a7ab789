//! The ring as a client sees it (`GetRing`, the web view's Network map): this node's routing
//! state and every node it has met ([`super::ring_data`]), with the nicknames they host.

use chat_overlay::Peer;
use chat_proto::v1::{Finger, GetRingResponse, RingPeer};

use super::{ApiError, ring_data};
use crate::node::Node;
use crate::people::People;

/// The ring as `node` sees it; empty but for the node's id while it runs no ring.
pub async fn ring_map(node: &Node, people: &People) -> Result<GetRingResponse, ApiError> {
    let mut resp = GetRingResponse {
        node_id: node.id().to_hex(),
        ..Default::default()
    };
    let Some(ring) = node.overlay() else {
        return Ok(resp);
    };
    let view = ring
        .view()
        .await
        .ok_or_else(|| ApiError::Unavailable("the overlay driver has stopped".into()))?;
    let connected = ring.peers();
    let names = people.names_by_node(&ring_data::ids(&view, &connected), ring_data::MAX_NAMES);
    (resp.known, resp.known_omitted) =
        ring_data::known_nodes(&view, &connected, &names, crate::records::unix_ms());
    resp.nicknames = names.get(&view.me.id.0).cloned().unwrap_or_default();
    resp.ring_size_exact = view.size_exact.unwrap_or(0);
    resp.ring_size_estimate = if view.member { view.size_estimate } else { 0 };
    resp.predecessor = view.predecessor.as_ref().map(ring_peer);
    resp.successors = view.successors.iter().map(ring_peer).collect();
    resp.fingers = view
        .fingers
        .iter()
        .map(|f| Finger {
            index: u32::from(f.bit),
            peer: Some(ring_peer(&f.peer)),
        })
        .collect();
    Ok(resp)
}

/// A peer as the API names it.
pub fn ring_peer(p: &Peer) -> RingPeer {
    RingPeer {
        node_id: p.id.to_hex(),
        address: p.addr.to_string(),
    }
}
