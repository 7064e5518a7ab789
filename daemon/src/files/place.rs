//! Which nodes keep a private file's ciphertext for an offline recipient (docs/protocol.md,
//! "Holding ciphertext"): the `k` successors of its hash on the ring (`k` =
//! `ring.record_replicas`), as the overlay's lookup finds them — the same lookup that places
//! DHT records ([`crate::overlay::OverlayHandle::successors`]): the hash's successor, confirmed
//! alive, and the successor list it reports.
//!
//! Bounds and fallbacks:
//! - Candidates are the hash's first [`MAX_CANDIDATES`] successors other than this node (the
//!   sender keeps its own pinned copy anyway). The first `k` are asked at once; each that
//!   refuses or cannot be reached is replaced by the next candidate, until `k` hold it or the
//!   candidates run out. Fewer than `k` holders is a success with what it got; none is
//!   [`FilesError::Hold`] naming every refusal.
//! - When the lookup fails (this node is not a ring member yet, no route, its deadline of
//!   [`LOOKUP_WAIT`]), the candidates are the connected peers nearest clockwise from the hash
//!   (the hash's successors as far as this node knows them), at most [`MAX_CANDIDATES`].

use std::time::Duration;

use chat_blobs::Hash;
use chat_overlay::{NodeId, Peer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

use super::hold::{ANSWER_WAIT, HEADER, MAX_REASON, REQUEST, refused};
use super::{Files, FilesError};

/// Holders asked for one file at most: the first `k`, then one more for each that refused
/// or could not be reached.
pub const MAX_CANDIDATES: usize = 8;
/// How long the sender waits for the lookup of the hash's successors.
pub const LOOKUP_WAIT: Duration = Duration::from_secs(20);

/// Where the candidates came from (logged, and for tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The ring's lookup of the hash's successors.
    Lookup,
    /// The connected peers nearest clockwise from the hash (the lookup failed).
    Peers,
}

/// The candidates from a lookup's answer: this node left out, no node twice, at most
/// [`MAX_CANDIDATES`], in the order the ring has them.
pub fn from_successors(me: NodeId, succs: Vec<Peer>) -> Vec<Peer> {
    let mut out: Vec<Peer> = Vec::new();
    for p in succs {
        if p.id != me && !out.iter().any(|q| q.id == p.id) {
            out.push(p);
        }
        if out.len() == MAX_CANDIDATES {
            break;
        }
    }
    out
}

/// The fallback candidates: the `peers` nearest clockwise from `hash`, without this node.
pub fn nearest_clockwise(me: NodeId, hash: &Hash, peers: Vec<Peer>) -> Vec<Peer> {
    let at = NodeId(hash.0);
    let mut peers: Vec<Peer> = peers.into_iter().filter(|p| p.id != me).collect();
    peers.sort_by(|a, b| at.cmp_from(&a.id, &b.id));
    peers.dedup_by(|a, b| a.id == b.id);
    peers.truncate(MAX_CANDIDATES);
    peers
}

impl Files {
    /// The candidates to hold `hash`, nearest first, and where they came from.
    pub async fn holder_candidates(&self, hash: &Hash) -> (Vec<Peer>, Source) {
        let me = self.transport.me();
        let ring = self.dht.as_ref().and_then(|(r, _)| r.ring());
        if let Some(ring) = ring {
            match tokio::time::timeout(LOOKUP_WAIT, ring.successors(NodeId(hash.0))).await {
                Ok(Some(Ok(succs))) => {
                    let c = from_successors(me, succs);
                    if !c.is_empty() {
                        return (c, Source::Lookup);
                    }
                    tracing::debug!(blob = %hash, "the hash's successors are this node only");
                }
                Ok(Some(Err(e))) => {
                    tracing::debug!(blob = %hash, error = %e, "looking up the hash's successors")
                }
                Ok(None) => tracing::debug!(blob = %hash, "the overlay driver has stopped"),
                Err(_) => {
                    tracing::debug!(blob = %hash, "the lookup of the hash's successors timed out")
                }
            }
        }
        let peers = self
            .transport
            .peers()
            .into_iter()
            .map(|p| Peer {
                id: p.id,
                addr: p.addr,
            })
            .collect();
        (nearest_clockwise(me, hash, peers), Source::Peers)
    }

    /// Has the blob `hash` (`size` bytes, held here) kept for an offline recipient by up to
    /// `k` other nodes (the hash's successors, module docs) for `ttl`; returns how many hold
    /// it. `Ok(0)`: over `files.offline_max_mb`, served only while this node is up. An error
    /// when no node would hold it.
    pub async fn place(&self, hash: Hash, size: u64, ttl: Duration) -> Result<usize, FilesError> {
        let cfg = self.offline();
        if size > cfg.max_bytes {
            return Ok(0);
        }
        let (candidates, source) = self.holder_candidates(&hash).await;
        tracing::debug!(blob = %hash, candidates = candidates.len(), ?source, "placing a private file");
        self.place_with(hash, size, ttl, candidates, cfg.replicas.max(1))
            .await
            .map(|held| held.len())
    }

    /// [`Files::place`] with the candidates given: asks the first `k` at once, and the next
    /// candidate for each that refuses or fails; returns the nodes that hold it.
    pub(super) async fn place_with(
        &self,
        hash: Hash,
        size: u64,
        ttl: Duration,
        candidates: Vec<Peer>,
        k: usize,
    ) -> Result<Vec<Peer>, FilesError> {
        if candidates.is_empty() {
            return Err(FilesError::Hold(
                "no other node is connected to keep it for an offline recipient".into(),
            ));
        }
        let mut request = Vec::with_capacity(REQUEST);
        request.push(1);
        request.extend_from_slice(&hash.0);
        request.extend_from_slice(&size.to_le_bytes());
        request.extend_from_slice(&ttl.as_secs().to_le_bytes());
        let mut rest = candidates.into_iter().take(MAX_CANDIDATES);
        let mut asks = JoinSet::new();
        for peer in rest.by_ref().take(k.max(1)) {
            asks.spawn(ask(self.transport.clone(), peer, request.clone()));
        }
        let (mut held, mut reasons) = (Vec::new(), Vec::new());
        while let Some(joined) = asks.join_next().await {
            let Ok((peer, res)) = joined else { continue };
            match res {
                Ok(()) => held.push(peer),
                Err(reason) => {
                    tracing::debug!(peer = %peer.id.short(), blob = %hash, %reason, "a holder refused");
                    reasons.push(format!("{}: {reason}", peer.id.short()));
                    if let Some(next) = rest.next() {
                        asks.spawn(ask(self.transport.clone(), next, request.clone()));
                    }
                }
            }
        }
        if held.is_empty() {
            return Err(FilesError::Hold(format!(
                "no node would keep it for an offline recipient ({})",
                reasons.join("; ")
            )));
        }
        Ok(held)
    }
}

/// Asks `peer` to hold the file of `request`; its refusal's reason, or why it could not be
/// asked.
async fn ask(
    transport: crate::transport::Transport<chat_overlay::wire::Message>,
    peer: Peer,
    request: Vec<u8>,
) -> (Peer, Result<(), String>) {
    let work = async {
        let mut s = transport
            .open_bulk(peer, HEADER)
            .await
            .map_err(|e| e.to_string())?;
        s.write_all(&request).await.map_err(|e| e.to_string())?;
        s.finish().map_err(|e| e.to_string())?;
        let mut answer = Vec::new();
        (&mut s)
            .take(1 + MAX_REASON as u64)
            .read_to_end(&mut answer)
            .await
            .map_err(|e| e.to_string())?;
        match answer.split_first() {
            Some((0, _)) => Ok(()),
            Some((_, reason)) => Err(refused(reason)),
            None => Err("no answer".into()),
        }
    };
    let res = tokio::time::timeout(ANSWER_WAIT, work)
        .await
        .unwrap_or_else(|_| Err("no answer in time".into()));
    (peer, res)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    fn peer(high: u64) -> Peer {
        Peer {
            id: NodeId::from_high_u64(high),
            addr: SocketAddr::from(([127, 0, 0, 1], 7000 + (high % 1000) as u16)),
        }
    }

    #[test]
    fn the_lookups_successors_are_the_candidates_without_this_node() {
        let me = NodeId::from_high_u64(30);
        let succs: Vec<Peer> = [20, 30, 40, 40, 50, 60, 70, 80, 90, 100, 110, 120]
            .into_iter()
            .map(peer)
            .collect();
        let c: Vec<NodeId> = from_successors(me, succs).iter().map(|p| p.id).collect();
        let want: Vec<NodeId> = [20, 40, 50, 60, 70, 80, 90, 100]
            .into_iter()
            .map(NodeId::from_high_u64)
            .collect();
        assert_eq!(
            c, want,
            "in ring order, once each, bounded, never this node"
        );
        assert!(from_successors(me, vec![peer(30)]).is_empty());
    }

    #[test]
    fn the_fallback_is_the_peers_nearest_clockwise_from_the_hash() {
        let me = NodeId::from_high_u64(5);
        let mut h = [0u8; 32];
        h[..8].copy_from_slice(&1000u64.to_be_bytes());
        let peers: Vec<Peer> = [10, 5, 2000, 1500, 999, 1000]
            .into_iter()
            .map(peer)
            .collect();
        let c: Vec<NodeId> = nearest_clockwise(me, &Hash(h), peers)
            .iter()
            .map(|p| p.id)
            .collect();
        let want: Vec<NodeId> = [1000, 1500, 2000, 10, 999]
            .into_iter()
            .map(NodeId::from_high_u64)
            .collect();
        assert_eq!(c, want);
    }
}
