//! First contact with the `--bootstrap` addresses and the remembered peers
//! (`crate::discovery::cache`), whose NodeIds are not known yet.
//!
//! A bootstrap given by name (`host:port`) is resolved again at every round, so a name that
//! moves or comes up later is followed; every address it resolves to is tried. While a round
//! finds nobody, the node's [`Membership`] says why and when the next round starts (shown by
//! `chatctl status` and systemd's STATUS= line).
//!
//! Each address is dialled (all at once) accepting any valid self-signed ed25519 certificate;
//! the NodeId the certificate proves is learned from it, and from then on that peer is bound
//! to it like any other (see "First contact" in docs/protocol.md). Once one address has
//! answered, the others get `ANSWER_GRACE` more (a stopped node's address that does not
//! refuse would hold the join up for a whole handshake timeout). While no address answers at
//! all, this task retries with exponential backoff (0.5 s doubling to `MAX_DELAY`, jittered
//! per node so that nodes restarted together do not retry in lockstep). An address that turns
//! out to be this node is skipped; if every address is this node, the node founds a ring. A
//! node with no bootstrap configured founds a ring if nobody answers in the first round.
//!
//! The peers that answer are handed to the overlay as `Input::JoinOrFound`, configured
//! bootstrap or not: any of them may be waiting for a ring itself (nodes started together on
//! one LAN, or a whole network restarted after a power cut, each finding the others through
//! its remembered peers while the configured bootstrap is dead). The overlay joins through
//! whichever is a member; when a whole round finds every one of them not a member, the one
//! with the lowest NodeId founds the ring the others join, so joiners never wait on each other
//! for ever. The remembered peers that did not answer go first as `Input::Lost`: the overlay
//! probes them once it is a member, so a ring one of them comes back in later (it remembered
//! nobody who was up) merges with ours.
//!
//! With LAN discovery on (`crate::discovery::mdns`), the peers seen on the LAN are tried too;
//! a node with no bootstrap first listens for announcements for up to [`LAN_WINDOW`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chat_overlay::{Input, Message, NodeId, Peer};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::DriverCommand;
use super::LanPeers;
use super::membership::{Membership, Retry};
use crate::config::PeerAddr;
use crate::transport::{Transport, TransportError};

/// How long resolving one name may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);
/// Addresses tried per name at most.
const MAX_PER_NAME: usize = 8;

/// How long a node with no bootstrap listens for LAN announcements before its first round.
pub const LAN_WINDOW: Duration = Duration::from_secs(3);
/// Once a first LAN peer is seen, how long to wait for more (the rest of a LAN answers a query
/// within about a second).
const LAN_GRACE: Duration = Duration::from_millis(1200);

const FIRST_DELAY: Duration = Duration::from_millis(500);
/// How long the rest of a round's addresses may still answer once one has: those that answer
/// later are probed as lost peers rather than waited for.
const ANSWER_GRACE: Duration = Duration::from_millis(1000);
/// Longest wait between two rounds: short, so that a node whose configured bootstrap is dead
/// finds the peers restarted after it within seconds (a round is one dial per address).
const MAX_DELAY: Duration = Duration::from_secs(8);

/// Where to look for the ring.
#[derive(Debug, Clone)]
pub struct Contacts {
    /// Addresses to try: the configured bootstrap first, then the remembered peers.
    pub addrs: Vec<PeerAddr>,
    /// Found a ring if nobody answers the first round (no bootstrap was configured).
    pub found_if_silent: bool,
    /// The remembered peers, with their ids: those that do not answer are probed later.
    pub remembered: Vec<Peer>,
    /// This node, for the retry jitter.
    pub me: NodeId,
    /// Where the retry state is shown.
    pub membership: Arc<Membership>,
    /// Peers seen on the LAN, when discovery is on.
    pub lan: Option<Arc<dyn LanPeers>>,
}

/// Waits until the LAN has had time to answer: [`LAN_GRACE`] after the first peer is seen, at
/// most [`LAN_WINDOW`] in all.
async fn listen_to_lan(lan: &dyn LanPeers) {
    let start = tokio::time::Instant::now();
    let mut changed = lan.watch();
    while lan.peer_addrs().is_empty() && start.elapsed() < LAN_WINDOW {
        let left = LAN_WINDOW.saturating_sub(start.elapsed());
        let _ = tokio::time::timeout(left, changed.changed()).await;
    }
    if !lan.peer_addrs().is_empty() {
        let left = LAN_WINDOW.saturating_sub(start.elapsed()).min(LAN_GRACE);
        tokio::time::sleep(left).await;
    }
    info!(
        peers = lan.peer_addrs().len(),
        "listened for peers on the LAN"
    );
}

/// The socket addresses of `addrs` now: IPs as they are, names resolved (errors collected).
async fn resolve(addrs: &[PeerAddr], errors: &mut Vec<String>) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for a in addrs {
        match a {
            PeerAddr::Ip(ip) => out.push(*ip),
            PeerAddr::Name { host, port } => {
                let lookup = tokio::net::lookup_host((host.as_str(), *port));
                match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
                    Ok(Ok(found)) => {
                        let before = out.len();
                        out.extend(found.take(MAX_PER_NAME));
                        if out.len() == before {
                            errors.push(format!("{a}: the name has no address"));
                        }
                    }
                    Ok(Err(e)) => errors.push(format!("{a}: cannot resolve: {e}")),
                    Err(_) => errors.push(format!("{a}: resolving took over {RESOLVE_TIMEOUT:?}")),
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Runs until the join has been handed to the driver (or the driver is gone).
pub async fn run(
    transport: Transport<Message>,
    contacts: Contacts,
    driver: mpsc::Sender<DriverCommand>,
) {
    let mut delay = FIRST_DELAY;
    let mut round: u64 = 0;
    if let Some(lan) = &contacts.lan
        && contacts.found_if_silent
    {
        listen_to_lan(lan.as_ref()).await;
    }
    loop {
        let mut errors = Vec::new();
        let mut addrs = resolve(&contacts.addrs, &mut errors).await;
        if let Some(lan) = &contacts.lan {
            addrs.extend(lan.peer_addrs().into_iter().flatten());
            addrs.sort();
            addrs.dedup();
        }
        let mut tries = tokio::task::JoinSet::new();
        for &addr in &addrs {
            let t = transport.clone();
            tries.spawn(async move { (addr, t.first_contact(addr).await) });
        }
        let mut via = Vec::new();
        let mut only_self = true;
        // Once a peer answered, the others get ANSWER_GRACE more: a dead address that does not
        // refuse (a stopped node's port) would hold the join up for a whole handshake timeout.
        let mut grace: Option<tokio::time::Instant> = None;
        loop {
            let next = match grace {
                Some(until) => match tokio::time::timeout_at(until, tries.join_next()).await {
                    Ok(next) => next,
                    Err(_) => {
                        tries.abort_all();
                        break;
                    }
                },
                None => tries.join_next().await,
            };
            let Some(done) = next else { break };
            let Ok((addr, result)) = done else { continue };
            match result {
                Ok(peer) => {
                    info!(%addr, peer = %peer.id.short(), "bootstrap peer answered");
                    only_self = false;
                    grace.get_or_insert_with(|| tokio::time::Instant::now() + ANSWER_GRACE);
                    if !via.iter().any(|p: &Peer| p.id == peer.id) {
                        via.push(peer);
                    }
                }
                Err(TransportError::SelfDial { .. }) => {}
                Err(e) => {
                    only_self = false;
                    warn!(%addr, error = %e, "bootstrap peer unreachable");
                    errors.push(format!("{addr}: {e}"));
                }
            }
        }
        if !errors.is_empty() {
            only_self = false;
        }
        let input = if !via.is_empty() {
            // Any of them may be waiting for a ring too (see the module's comment).
            Some(Input::JoinOrFound { via: via.clone() })
        } else if only_self && addrs.is_empty() {
            info!(
                "no peer to try (none configured, remembered or on the LAN): founding a new ring"
            );
            Some(Input::Create)
        } else if only_self {
            info!("every bootstrap address is this node: founding a new ring");
            Some(Input::Create)
        } else if contacts.found_if_silent {
            info!("no remembered or LAN peer answered: founding a new ring");
            Some(Input::Create)
        } else {
            None
        };
        if let Some(input) = input {
            contacts.membership.set_retry(None);
            let silent: Vec<Peer> = contacts
                .remembered
                .iter()
                .filter(|r| r.id != contacts.me && !via.iter().any(|p| p.id == r.id))
                .copied()
                .collect();
            if !silent.is_empty() {
                let lost = Input::Lost { peers: silent };
                let _ = driver.send(DriverCommand::Input(lost)).await;
            }
            let _ = driver.send(DriverCommand::Input(input)).await;
            return;
        }
        if driver.is_closed() {
            return;
        }
        round += 1;
        let wait = jittered(delay, contacts.me, round);
        info!(retry_in = ?wait, "no bootstrap peer reachable yet");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        errors.truncate(8);
        contacts.membership.set_retry(Some(Retry {
            reason: if errors.is_empty() {
                "no bootstrap peer answered".to_owned()
            } else {
                errors.join("; ")
            },
            next_unix_ms: now + wait.as_millis() as u64,
        }));
        tokio::time::sleep(wait).await;
        delay = (delay * 2).min(MAX_DELAY);
    }
}

/// `delay` ±25 %, from this node's id and the round number (no global RNG): nodes restarted
/// together spread their retries.
fn jittered(delay: Duration, me: NodeId, round: u64) -> Duration {
    let spread = (delay.as_millis() as u64 / 2).max(1);
    let x = (me.high_u64() ^ round).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let jitter = (x >> 32) % spread;
    delay - delay / 4 + Duration::from_millis(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_jittered_per_node_within_a_quarter() {
        let d = Duration::from_secs(8);
        let waits: Vec<Duration> = (1..=20u64)
            .map(|n| jittered(d, NodeId::from_high_u64(n * 7919), 1))
            .collect();
        assert!(waits.iter().all(|w| *w >= d * 3 / 4 && *w <= d * 5 / 4));
        let mut distinct = waits.clone();
        distinct.sort();
        distinct.dedup();
        assert!(distinct.len() > 10, "nodes retry in lockstep: {waits:?}");
    }
}
