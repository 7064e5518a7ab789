//! Message traces as people read them: find a public message's origin and number in the
//! history, ask the ring how it travelled ([`crate::overlay::OverlayHandle::trace`], the overlay's
//! `broadcast/trace.rs`), and turn the answers into a tree with per-hop times, each node's
//! latency and the slowest path. `chatctl trace`, the API's `ChatService.Trace` and the web
//! view all read this one analysis.

use std::collections::{BTreeMap, BTreeSet};

use chat_overlay::broadcast::trace::{TraceOutcome, TraceResult};
use chat_overlay::{BroadcastError, NodeId, Peer};

use super::{Chat, ChatError, MessageId};
use crate::overlay::OverlayHandle;

/// Why a trace could not run.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The message is not in this node's history.
    #[error("no message {0} in this node's history (never seen, or expired)")]
    NotFound(MessageId),
    /// This node is not a ring member (or its driver stopped).
    #[error("this node has not joined a ring")]
    NotJoined,
    /// Too many traces are running on this node.
    #[error("too many traces are running on this node; try again in a few seconds")]
    Busy,
    /// The history could not be read.
    #[error(transparent)]
    Store(#[from] ChatError),
    /// The history read did not finish (its task failed).
    #[error("reading the history failed: {0}")]
    Task(String),
}

/// One node of a traced message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TracedNode {
    /// The node.
    pub peer: Peer,
    /// What it said.
    pub outcome: TraceOutcome,
    /// Its arrival minus its parent's (when both answered).
    pub hop_us: Option<u64>,
    /// Its arrival minus the origin's broadcast time (when the origin answered).
    pub latency_us: Option<u64>,
    /// How long it held the message before sending it on.
    pub wait_us: Option<u64>,
}

/// A traced message: every node asked, and the slowest path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Traced {
    /// The message.
    pub id: MessageId,
    /// Its origin and number there.
    pub origin: NodeId,
    pub seq: u64,
    /// Every node asked, ordered by node id.
    pub nodes: Vec<TracedNode>,
    /// The walk stopped at its bound.
    pub truncated: bool,
    /// Origin first, to the node reached last; empty when the origin did not answer.
    pub slowest_path: Vec<NodeId>,
    /// The last node's latency.
    pub slowest_latency_us: u64,
}

impl Traced {
    /// Tree edges (parent, child) among the nodes that answered.
    pub fn edges(&self) -> Vec<(NodeId, NodeId)> {
        self.nodes
            .iter()
            .filter_map(|n| match &n.outcome {
                TraceOutcome::Hop(h) => h.from.map(|f| (f.id, n.peer.id)),
                _ => None,
            })
            .collect()
    }
}

/// Traces public message `id`.
pub async fn trace_message(
    chat: &Chat,
    ring: Option<&OverlayHandle>,
    id: MessageId,
) -> Result<Traced, TraceError> {
    let reader = chat.clone();
    let stored = tokio::task::spawn_blocking(move || reader.find(&id))
        .await
        .map_err(|e| TraceError::Task(e.to_string()))??
        .ok_or(TraceError::NotFound(id))?;
    let origin = crate::identity::node_id(&stored.message.origin);
    let seq = stored.message.seq;
    let ring = ring.ok_or(TraceError::NotJoined)?;
    match ring.trace(origin, seq).await {
        None | Some(Err(BroadcastError::NotMember)) => Err(TraceError::NotJoined),
        Some(Err(_)) => Err(TraceError::Busy),
        Some(Ok(result)) => Ok(analyse(id, result)),
    }
}

/// Per-hop times, latencies and the slowest path of a walk's result.
pub fn analyse(id: MessageId, result: TraceResult) -> Traced {
    let received: BTreeMap<NodeId, u64> = result
        .nodes
        .iter()
        .filter_map(|(p, o)| match o {
            TraceOutcome::Hop(h) => Some((p.id, h.received_us)),
            _ => None,
        })
        .collect();
    let origin_at = received.get(&result.origin).copied();
    let nodes: Vec<TracedNode> = result
        .nodes
        .into_iter()
        .map(|(peer, outcome)| {
            let (hop_us, latency_us, wait_us) = match &outcome {
                TraceOutcome::Hop(h) => (
                    h.from
                        .and_then(|f| received.get(&f.id))
                        .map(|p| h.received_us.saturating_sub(*p)),
                    origin_at.map(|o| h.received_us.saturating_sub(o)),
                    h.forwarded_us.map(|f| f.saturating_sub(h.received_us)),
                ),
                _ => (None, None, None),
            };
            TracedNode {
                peer,
                outcome,
                hop_us,
                latency_us,
                wait_us,
            }
        })
        .collect();
    let (slowest_path, slowest_latency_us) = slowest(&nodes, result.origin);
    Traced {
        id,
        origin: result.origin,
        seq: result.seq,
        nodes,
        truncated: result.truncated,
        slowest_path,
        slowest_latency_us,
    }
}

/// The path from the origin to the node with the highest latency, following each answer's
/// parent (answers are the nodes' own word: a loop or a gap ends the path empty).
fn slowest(nodes: &[TracedNode], origin: NodeId) -> (Vec<NodeId>, u64) {
    let Some(last) = nodes
        .iter()
        .filter(|n| n.latency_us.is_some())
        .max_by_key(|n| (n.latency_us, n.peer.id))
    else {
        return (Vec::new(), 0);
    };
    let parent = |id: NodeId| {
        nodes
            .iter()
            .find(|n| n.peer.id == id)
            .and_then(|n| match &n.outcome {
                TraceOutcome::Hop(h) => h.from.map(|f| f.id),
                _ => None,
            })
    };
    let mut path = vec![last.peer.id];
    let mut seen = BTreeSet::from([last.peer.id]);
    let mut at = last.peer.id;
    while at != origin {
        match parent(at) {
            Some(p) if seen.insert(p) => {
                path.push(p);
                at = p;
            }
            _ => return (Vec::new(), 0),
        }
    }
    path.reverse();
    (path, last.latency_us.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_overlay::broadcast::trace::{TraceHop, Via};

    fn peer(n: u8) -> Peer {
        Peer {
            id: NodeId([n; 32]),
            addr: format!("127.0.0.1:{}", 7000 + u16::from(n))
                .parse()
                .unwrap(),
        }
    }

    fn hop(from: Option<u8>, at: u64, fwd: Option<u64>, children: &[u8]) -> TraceOutcome {
        TraceOutcome::Hop(TraceHop {
            from: from.map(peer),
            via: if from.is_some() {
                Via::Tree
            } else {
                Via::Origin
            },
            depth: Some(0),
            received_us: at,
            forwarded_us: fwd,
            children: children.iter().map(|c| peer(*c)).collect(),
        })
    }

    #[test]
    fn times_add_up_along_the_slowest_path() {
        // 1 → 2 → 3, 1 → 4; 5 did not answer.
        let result = TraceResult {
            origin: NodeId([1; 32]),
            seq: 7,
            nodes: vec![
                (peer(1), hop(None, 1_000, Some(1_010), &[2, 4])),
                (peer(2), hop(Some(1), 1_300, Some(1_350), &[3])),
                (peer(3), hop(Some(2), 1_900, None, &[])),
                (peer(4), hop(Some(1), 1_200, None, &[])),
                (peer(5), TraceOutcome::NoAnswer),
            ],
            truncated: false,
        };
        let t = analyse(MessageId([9; 32]), result);
        assert_eq!(
            t.slowest_path,
            vec![NodeId([1; 32]), NodeId([2; 32]), NodeId([3; 32])]
        );
        assert_eq!(t.slowest_latency_us, 900);
        let n3 = &t.nodes[2];
        assert_eq!(
            (n3.hop_us, n3.latency_us, n3.wait_us),
            (Some(600), Some(900), None)
        );
        assert_eq!(t.nodes[1].wait_us, Some(50));
        // The per-hop times along the path add up to the last node's latency.
        let sum: u64 = t.slowest_path[1..]
            .iter()
            .map(|id| {
                t.nodes
                    .iter()
                    .find(|n| n.peer.id == *id)
                    .unwrap()
                    .hop_us
                    .unwrap()
            })
            .sum();
        assert_eq!(sum, t.slowest_latency_us);
        assert_eq!(t.edges().len(), 3);
        assert_eq!(t.nodes[4].latency_us, None);
    }

    #[test]
    fn a_lying_loop_gives_no_path() {
        // 2 and 3 name each other as parent; the origin answered, so they have latencies.
        let result = TraceResult {
            origin: NodeId([1; 32]),
            seq: 1,
            nodes: vec![
                (peer(1), hop(None, 1_000, None, &[])),
                (peer(2), hop(Some(3), 5_000, None, &[])),
                (peer(3), hop(Some(2), 6_000, None, &[])),
            ],
            truncated: false,
        };
        let t = analyse(MessageId([9; 32]), result);
        assert!(t.slowest_path.is_empty());
        assert_eq!(t.slowest_latency_us, 0);
    }
}
