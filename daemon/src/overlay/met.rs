//! The nodes this node has met: a bounded table of every peer it held a connection to or had
//! in its routing state lately, with the address it was last seen at. The driver feeds it on
//! its heartbeat (from the transport's connections and the overlay's routing state, so the
//! message path pays nothing); `GetRing` reads it for maps of the ring.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chat_overlay::{NodeId, Peer};

/// Nodes remembered at most; past it the one seen longest ago makes room.
pub const MAX_MET: usize = 256;
/// A node not seen for this long is forgotten.
pub const FORGET_AFTER: Duration = Duration::from_secs(600);

/// One node met.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetNode {
    /// The node and the address it was last seen at.
    pub peer: Peer,
    /// When it was last seen, Unix milliseconds.
    pub seen_unix_ms: u64,
}

#[derive(Clone, Copy, Debug)]
struct Seen {
    peer: Peer,
    at: Instant,
    unix_ms: u64,
}

/// The table.
#[derive(Debug, Default)]
pub struct Met {
    nodes: HashMap<NodeId, Seen>,
}

impl Met {
    /// `peer` was seen at `at` (Unix time `unix_ms`).
    pub fn saw(&mut self, peer: Peer, at: Instant, unix_ms: u64) {
        let seen = Seen { peer, at, unix_ms };
        if let Some(s) = self.nodes.get_mut(&peer.id) {
            *s = seen;
            return;
        }
        if self.nodes.len() >= MAX_MET {
            self.expire(at);
        }
        if self.nodes.len() >= MAX_MET
            && let Some(oldest) = self.nodes.values().min_by_key(|s| s.at).map(|s| s.peer.id)
        {
            self.nodes.remove(&oldest);
        }
        self.nodes.insert(peer.id, seen);
    }

    /// Forgets the nodes not seen for [`FORGET_AFTER`] before `now`.
    pub fn expire(&mut self, now: Instant) {
        self.nodes
            .retain(|_, s| now.saturating_duration_since(s.at) < FORGET_AFTER);
    }

    /// The nodes remembered, ordered by node id.
    pub fn list(&self) -> Vec<MetNode> {
        let mut v: Vec<MetNode> = self
            .nodes
            .values()
            .map(|s| MetNode {
                peer: s.peer,
                seen_unix_ms: s.unix_ms,
            })
            .collect();
        v.sort_by_key(|m| m.peer.id);
        v
    }
}

/// A peer for tests: node id `v` (in the id's high bits) at loopback port `port`.
#[cfg(test)]
pub(crate) fn loopback_peer(v: u64, port: u16) -> Peer {
    Peer {
        id: NodeId::from_high_u64(v),
        addr: std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port)),
    }
}

#[cfg(test)]
mod tests {
    use super::loopback_peer as peer;
    use super::*;

    #[test]
    fn bounded_newest_address_and_forgotten_when_old() {
        let t0 = Instant::now();
        let mut m = Met::default();
        m.saw(peer(2, 1), t0, 10);
        m.saw(peer(1, 1), t0, 10);
        m.saw(peer(2, 7), t0 + Duration::from_secs(1), 11);
        let list = m.list();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].peer.id, NodeId::from_high_u64(1), "ordered by id");
        assert_eq!(
            (list[1].peer.addr.port(), list[1].seen_unix_ms),
            (7, 11),
            "the latest sighting counts"
        );
        for v in 0..(MAX_MET as u64 + 10) {
            m.saw(peer(1000 + v, 1), t0 + Duration::from_secs(2 + v), 12 + v);
        }
        assert_eq!(m.list().len(), MAX_MET);
        assert!(
            !m.list()
                .iter()
                .any(|n| n.peer.id == NodeId::from_high_u64(1)),
            "the one seen longest ago made room"
        );
        m.expire(t0 + FORGET_AFTER + Duration::from_secs(MAX_MET as u64));
        let left = m.list().len();
        assert!(left > 0 && left < MAX_MET, "{left}");
    }
}
