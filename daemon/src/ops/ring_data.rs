//! The map data of `GetRing`: every node this node has met — its routing state, its
//! connections, the peers the ring suspects and the nodes met lately — merged into one
//! bounded list with each node's address, connection, round-trip time, failure and nicknames.

use std::collections::{BTreeMap, HashMap, HashSet};

use chat_overlay::NodeId;
use chat_proto::v1::KnownNode;

use crate::overlay::RingView;
use crate::transport::PeerInfo;

/// Nodes listed at most (the proto says so).
pub const MAX_KNOWN: usize = 256;
/// Nicknames listed per node at most.
pub const MAX_NAMES: usize = 4;

/// Every node id the list may name, this node's included: the nodes whose nicknames to look up.
pub fn ids(view: &RingView, connected: &[PeerInfo]) -> HashSet<[u8; 32]> {
    let mut ids: HashSet<[u8; 32]> = view.met.iter().map(|m| m.peer.id.0).collect();
    ids.extend(connected.iter().map(|p| p.id.0));
    ids.extend(view.successors.iter().map(|p| p.id.0));
    ids.extend(view.fingers.iter().map(|f| f.peer.id.0));
    ids.extend(view.predecessor.iter().map(|p| p.id.0));
    ids.extend(view.suspects.iter().map(|id| id.0));
    ids.insert(view.me.id.0);
    ids
}

/// The known nodes, ordered by node id, at most [`MAX_KNOWN`] (the ones seen longest ago
/// left out first), and how many were left out. `names` maps node ids to the nicknames they
/// host; `now_ms` is the time of the connections and routing state (Unix milliseconds).
pub fn known_nodes(
    view: &RingView,
    connected: &[PeerInfo],
    names: &HashMap<[u8; 32], Vec<String>>,
    now_ms: u64,
) -> (Vec<KnownNode>, u32) {
    let me = view.me.id;
    let mut all: BTreeMap<NodeId, KnownNode> = BTreeMap::new();
    for m in &view.met {
        upsert(&mut all, m.peer.id, m.peer.addr.to_string(), m.seen_unix_ms);
    }
    for id in &view.suspects {
        upsert(&mut all, *id, String::new(), 0).failed = true;
    }
    for p in connected {
        let n = upsert(&mut all, p.id, p.addr.to_string(), now_ms);
        n.connected = true;
        n.rtt_micros = u64::try_from(p.rtt.as_micros()).unwrap_or(u64::MAX).max(1);
    }
    if let Some(p) = &view.predecessor {
        upsert(&mut all, p.id, p.addr.to_string(), now_ms).predecessor = true;
    }
    for p in &view.successors {
        upsert(&mut all, p.id, p.addr.to_string(), now_ms).successor = true;
    }
    for f in &view.fingers {
        upsert(&mut all, f.peer.id, f.peer.addr.to_string(), now_ms).finger = true;
    }
    all.remove(&me);
    let mut list: Vec<(NodeId, KnownNode)> = all.into_iter().collect();
    let omitted = list.len().saturating_sub(MAX_KNOWN);
    if omitted > 0 {
        // Keep the newest: routing state and connections are "seen" now, so they stay.
        list.sort_by_key(|(_, n)| std::cmp::Reverse(n.last_seen_unix_ms));
        list.truncate(MAX_KNOWN);
        list.sort_by_key(|(id, _)| *id);
    }
    let list = list
        .into_iter()
        .map(|(id, mut n)| {
            if let Some(v) = names.get(&id.0) {
                n.nicknames = v.iter().take(MAX_NAMES).cloned().collect();
            }
            n
        })
        .collect();
    (list, u32::try_from(omitted).unwrap_or(u32::MAX))
}

/// The entry of `id` in `all`, made if new, with `addr` if it is the newest sighting.
fn upsert(
    all: &mut BTreeMap<NodeId, KnownNode>,
    id: NodeId,
    addr: String,
    seen: u64,
) -> &mut KnownNode {
    let n = all.entry(id).or_insert_with(|| KnownNode {
        node_id: id.to_hex(),
        ..Default::default()
    });
    if seen >= n.last_seen_unix_ms && !addr.is_empty() {
        n.address = addr;
    }
    n.last_seen_unix_ms = n.last_seen_unix_ms.max(seen);
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overlay::met::{MetNode, loopback_peer as peer};
    use chat_overlay::Peer;
    use chat_overlay::ring::Finger;
    use std::time::Duration;

    fn view(me: Peer) -> RingView {
        RingView {
            me,
            member: true,
            predecessor: None,
            successors: Vec::new(),
            fingers: Vec::new(),
            size_estimate: 1,
            size_exact: Some(1),
            suspects: Vec::new(),
            met: Vec::new(),
            stats: Default::default(),
            broadcast: Default::default(),
            records: Default::default(),
            records_held: 0,
            records_bytes: 0,
            direct: Default::default(),
        }
    }

    #[test]
    fn merges_roles_connections_failures_and_names() {
        let mut v = view(peer(1, 1));
        v.predecessor = Some(peer(9, 9));
        v.successors = vec![peer(2, 2), peer(3, 3)];
        v.fingers = vec![Finger {
            bit: 0,
            peer: peer(2, 2),
        }];
        v.suspects = vec![NodeId::from_high_u64(5)];
        v.met = vec![
            MetNode {
                peer: peer(5, 5),
                seen_unix_ms: 100,
            },
            MetNode {
                peer: peer(1, 1),
                seen_unix_ms: 100,
            },
            MetNode {
                peer: peer(3, 30),
                seen_unix_ms: 100,
            },
        ];
        let connected = vec![PeerInfo {
            id: NodeId::from_high_u64(2),
            addr: peer(2, 2).addr,
            rtt: Duration::from_micros(1500),
        }];
        let names: HashMap<[u8; 32], Vec<String>> = [(
            NodeId::from_high_u64(2).0,
            vec!["a".into(), "b".into(), "c".into(), "d".into(), "e".into()],
        )]
        .into_iter()
        .collect();
        assert!(ids(&v, &connected).contains(&NodeId::from_high_u64(9).0));
        let (list, omitted) = known_nodes(&v, &connected, &names, 200);
        assert_eq!(omitted, 0);
        let ids: Vec<String> = list.iter().map(|n| n.node_id.clone()).collect();
        let want: Vec<String> = [2, 3, 5, 9]
            .iter()
            .map(|v| NodeId::from_high_u64(*v).to_hex())
            .collect();
        assert_eq!(ids, want, "ordered, without this node");
        let two = &list[0];
        assert!(two.connected && two.successor && two.finger && !two.predecessor);
        assert_eq!(two.rtt_micros, 1500);
        assert_eq!(two.nicknames.len(), MAX_NAMES);
        let three = &list[1];
        assert!(!three.connected && three.successor && three.rtt_micros == 0);
        assert_eq!(
            three.address, "127.0.0.1:3",
            "the routing state's address is newer"
        );
        let five = &list[2];
        assert!(five.failed && !five.successor);
        assert_eq!(
            (five.address.as_str(), five.last_seen_unix_ms),
            ("127.0.0.1:5", 100)
        );
        assert!(list[3].predecessor);
    }

    #[test]
    fn bounded_keeping_the_newest() {
        let mut v = view(peer(0, 1));
        v.met = (1..=(MAX_KNOWN as u64 + 5))
            .map(|i| MetNode {
                peer: peer(i, 1),
                seen_unix_ms: i,
            })
            .collect();
        v.successors = vec![peer(1, 1)];
        let (list, omitted) = known_nodes(&v, &[], &HashMap::new(), 10_000);
        assert_eq!((list.len(), omitted), (MAX_KNOWN, 5));
        let kept: Vec<&str> = list.iter().map(|n| n.node_id.as_str()).collect();
        let hex = |v: u64| NodeId::from_high_u64(v).to_hex();
        assert!(kept.contains(&hex(1).as_str()), "the successor stays");
        assert!(!kept.contains(&hex(2).as_str()), "the oldest go");
        assert!(kept.windows(2).all(|w| w[0] < w[1]), "ordered by id");
    }
}
