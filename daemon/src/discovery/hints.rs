//! Once this node is in a ring, the peers seen on the LAN become the overlay's
//! `Input::Discovered` hints: a peer that is in another ring (two groups that founded rings of
//! their own on one LAN, or a LAN split and healed) leads the rings to merge. The overlay
//! ignores peers already in its routing state and runs one merge lookup at a time; this task
//! offers one peer per [`PERIOD`], in turn, and the same peer at most once per [`AGAIN`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chat_overlay::{Input, NodeId, Peer};
use tokio::time::Instant;

use super::mdns::Lan;
use crate::overlay::OverlayHandle;

/// One hint per period at most.
pub const PERIOD: Duration = Duration::from_secs(2);
/// The same peer is offered again after this long.
pub const AGAIN: Duration = Duration::from_secs(30);

/// Runs until the overlay driver stops.
pub async fn run(ring: OverlayHandle, lan: Arc<Lan>) {
    let mut offered: BTreeMap<NodeId, Instant> = BTreeMap::new();
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = Instant::now();
        let seen = lan.seen();
        offered
            .retain(|id, at| now.duration_since(*at) < AGAIN && seen.iter().any(|s| s.id == *id));
        // The peer offered longest ago (or never) goes first.
        let next = seen
            .iter()
            .filter(|s| !offered.contains_key(&s.id))
            .find_map(|s| s.addrs.first().map(|a| Peer { id: s.id, addr: *a }));
        let Some(peer) = next else { continue };
        offered.insert(peer.id, now);
        if ring.is_closed() {
            return;
        }
        // A full queue only delays the hint to a later round.
        ring.submit(Input::Discovered(peer));
    }
}
