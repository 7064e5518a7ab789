//! The running node's shared state: what the control services report and, later, the seam
//! where the overlay driver plugs in.
//!
//! A [`Node`] holds the identity-derived facts (id, nickname, listen address, start time), the
//! ring driver's [`Membership`] (joined, ring size, the driver's heartbeat), a handle to the ring
//! driver once it runs ([`Node::ring`]), and a stop request that the control API's `Leave` uses
//! to end the daemon. The driver holds only the `Membership`, never the `Node`: the node holds
//! the driver's handle, so the other way round would keep the driver's command channel open
//! for ever.

use std::net::SocketAddr;

use crate::config::PeerAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use chat_overlay::NodeId;
use ed25519_dalek::VerifyingKey;
use tokio::sync::watch;

use crate::nickname::Nickname;
use crate::ring::RingHandle;

/// The daemon's version, as reported by `GetStatus`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Facts about the running node, shared (behind an `Arc`) with every control service.
#[derive(Debug)]
pub struct Node {
    id: NodeId,
    public_key: VerifyingKey,
    nickname: Option<Nickname>,
    listen_addr: SocketAddr,
    bootstrap: Vec<PeerAddr>,
    started: Instant,
    /// What the ring driver reports: joined (drives READY=1 and gRPC health), ring size,
    /// heartbeat.
    membership: Arc<Membership>,
    /// The ring driver, once started.
    ring: OnceLock<RingHandle>,
    /// LAN discovery, when on.
    lan: OnceLock<Arc<crate::discovery::mdns::Lan>>,
    web: OnceLock<crate::web::WebLink>,
    irc: OnceLock<crate::irc::IrcLink>,
    /// The private-conversations service (its drop counters join the node's).
    private: OnceLock<std::sync::Arc<crate::dm::Dm>>,
    /// The event log, when `log.events` is on.
    event_log: OnceLock<crate::eventlog::EventLog>,
    /// Clients connected and private messages, for the status.
    activity: Arc<crate::eventlog::stats::Activity>,
    /// Set when something (the `Leave` RPC) asks the daemon to stop.
    stop: watch::Sender<bool>,
}

/// What the ring driver tells the rest of the daemon: whether the node is a member, the ring
/// size, and a heartbeat that moves while the driver's loop turns (the watchdog pings only
/// then).
#[derive(Debug)]
pub struct Membership {
    joined: watch::Sender<bool>,
    ring_size: AtomicU64,
    ring_exact: std::sync::atomic::AtomicBool,
    turns: AtomicU64,
    retry: std::sync::Mutex<Option<Retry>>,
}

/// The first contact is waiting to try the bootstrap peers again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    /// Why the last round failed (each address's error, shortened).
    pub reason: String,
    /// When the next round starts, Unix milliseconds.
    pub next_unix_ms: u64,
}

impl Default for Membership {
    fn default() -> Self {
        Membership {
            joined: watch::Sender::new(false),
            ring_size: AtomicU64::new(0),
            ring_exact: std::sync::atomic::AtomicBool::new(false),
            turns: AtomicU64::new(0),
            retry: std::sync::Mutex::new(None),
        }
    }
}

impl Membership {
    /// Sets the `joined` flag (subscribers hear of a change).
    pub fn set_joined(&self, joined: bool) {
        self.joined
            .send_if_modified(|j| std::mem::replace(j, joined) != joined);
    }

    /// Whether the node is a ring member.
    pub fn is_joined(&self) -> bool {
        *self.joined.borrow()
    }

    /// Records the driver's ring size: the exact count (`exact`) or the estimate.
    pub fn set_ring_size(&self, n: u64, exact: bool) {
        self.ring_size.store(n, Ordering::Relaxed);
        self.ring_exact.store(exact, Ordering::Relaxed);
    }

    /// Whether [`Membership::ring_size`] is the exact count rather than an estimate.
    pub fn ring_size_is_exact(&self) -> bool {
        self.ring_exact.load(Ordering::Relaxed)
    }

    /// The ring size, exact or estimated ([`Membership::ring_size_is_exact`]); 0 while not a
    /// member.
    pub fn ring_size(&self) -> u64 {
        if self.is_joined() {
            self.ring_size.load(Ordering::Relaxed)
        } else {
            0
        }
    }

    /// Records that the bootstrap is retried (`None`: it is not, or no longer).
    pub fn set_retry(&self, retry: Option<Retry>) {
        *self.retry.lock().unwrap_or_else(|p| p.into_inner()) = retry;
    }

    /// Whether (and why, and until when) the bootstrap is being retried.
    pub fn retry(&self) -> Option<Retry> {
        self.retry.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The driver's loop turned once more.
    pub fn turned(&self) {
        self.turns.fetch_add(1, Ordering::Relaxed);
    }

    /// Turns of the driver's loop so far.
    pub fn turns(&self) -> u64 {
        self.turns.load(Ordering::Relaxed)
    }
}

/// A point-in-time view of the node, as the control API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The node's id on the ring.
    pub id: NodeId,
    /// The user's nickname, if set.
    pub nickname: Option<Nickname>,
    /// The UDP address bound for QUIC.
    pub listen_addr: SocketAddr,
    /// chatd's version.
    pub version: &'static str,
    /// Time since start.
    pub uptime: Duration,
}

impl Node {
    /// A node that started now.
    pub fn new(
        public_key: VerifyingKey,
        nickname: Option<Nickname>,
        listen_addr: SocketAddr,
        bootstrap: Vec<PeerAddr>,
    ) -> Node {
        Node {
            id: crate::identity::node_id(&public_key),
            public_key,
            nickname,
            listen_addr,
            bootstrap,
            started: Instant::now(),
            membership: Arc::new(Membership::default()),
            ring: OnceLock::new(),
            lan: OnceLock::new(),
            web: OnceLock::new(),
            irc: OnceLock::new(),
            private: OnceLock::new(),
            event_log: OnceLock::new(),
            activity: Arc::default(),
            stop: watch::Sender::new(false),
        }
    }

    /// The node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The node's public key.
    pub fn public_key(&self) -> &VerifyingKey {
        &self.public_key
    }

    /// The peers this node was told to join through (empty: it founds a ring).
    pub fn bootstrap(&self) -> &[PeerAddr] {
        &self.bootstrap
    }

    /// What the ring driver reports (the driver holds a clone).
    pub fn membership(&self) -> Arc<Membership> {
        self.membership.clone()
    }

    /// The ring size, exact when the node can know it, else estimated (0 while not a member).
    pub fn ring_size(&self) -> u64 {
        self.membership.ring_size()
    }

    /// Whether the node is a ring member.
    pub fn is_joined(&self) -> bool {
        self.membership.is_joined()
    }

    /// Follows the `joined` flag.
    pub fn subscribe_joined(&self) -> watch::Receiver<bool> {
        self.membership.joined.subscribe()
    }

    /// Attaches the running ring driver (once; later calls are ignored).
    pub fn attach_ring(&self, ring: RingHandle) {
        let _ = self.ring.set(ring);
    }

    /// The ring driver, if it runs.
    pub fn ring(&self) -> Option<&RingHandle> {
        self.ring.get()
    }

    /// Attaches LAN discovery (once).
    pub fn attach_lan(&self, lan: Arc<crate::discovery::mdns::Lan>) {
        let _ = self.lan.set(lan);
    }

    /// LAN discovery, if it runs.
    pub fn lan(&self) -> Option<&Arc<crate::discovery::mdns::Lan>> {
        self.lan.get()
    }

    /// Records that the web view runs, and how to make login links for it.
    pub fn attach_web(&self, link: crate::web::WebLink) {
        let _ = self.web.set(link);
    }

    /// Records that the IRC front door runs, and how to tell accounts their passwords.
    pub fn attach_irc(&self, link: crate::irc::IrcLink) {
        let _ = self.irc.set(link);
    }

    /// The IRC front door's passwords and address, if it runs.
    pub fn irc(&self) -> Option<&crate::irc::IrcLink> {
        self.irc.get()
    }

    /// Connects the private-conversations service (once).
    pub fn attach_private(&self, dm: std::sync::Arc<crate::dm::Dm>) {
        let _ = self.private.set(dm);
    }

    /// The private-conversations service, once attached.
    pub fn private(&self) -> Option<std::sync::Arc<crate::dm::Dm>> {
        self.private.get().cloned()
    }

    /// Private-message input dropped from the network, by reason (`dm_` and the reason).
    pub fn private_drops(&self) -> Vec<(String, u64)> {
        self.private.get().map_or_else(Vec::new, |dm| {
            dm.drops()
                .into_iter()
                .map(|(r, n)| (format!("dm_{r}"), n))
                .collect()
        })
    }

    /// Connects the event log (once).
    pub fn attach_event_log(&self, log: crate::eventlog::EventLog) {
        let _ = self.event_log.set(log);
    }

    /// The event log, when it runs.
    pub fn event_log(&self) -> Option<&crate::eventlog::EventLog> {
        self.event_log.get()
    }

    /// Clients connected and private messages counted since the start.
    pub fn activity(&self) -> &Arc<crate::eventlog::stats::Activity> {
        &self.activity
    }

    /// The web view's login links, if it runs.
    pub fn web(&self) -> Option<&crate::web::WebLink> {
        self.web.get()
    }

    /// Asks the daemon to stop (it leaves the ring first).
    pub fn request_stop(&self) {
        self.stop.send_replace(true);
    }

    /// Whether a stop has been requested.
    pub fn is_stop_requested(&self) -> bool {
        *self.stop.borrow()
    }

    /// Resolves once a stop has been requested.
    pub async fn stop_requested(&self) {
        let mut rx = self.stop.subscribe();
        let _ = rx.wait_for(|&s| s).await;
    }

    /// The current status.
    pub fn status(&self) -> Status {
        Status {
            id: self.id,
            nickname: self.nickname.clone(),
            listen_addr: self.listen_addr,
            version: VERSION,
            uptime: self.started.elapsed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_reports_what_the_node_was_built_with() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]).verifying_key();
        let addr: SocketAddr = "127.0.0.1:7400".parse().expect("addr");
        let node = Node::new(key, "alice".parse().ok(), addr, vec![]);
        let status = node.status();
        assert_eq!(status.id, crate::identity::node_id(&key));
        assert_eq!(
            status.nickname.map(|n| n.to_string()).as_deref(),
            Some("alice")
        );
        assert_eq!(status.listen_addr, addr);
        assert_eq!(status.version, VERSION);
        assert!(status.uptime < Duration::from_secs(60));
        assert!(node.bootstrap().is_empty());
    }
}

#[cfg(test)]
mod joined_tests {
    use super::*;

    #[test]
    fn joined_changes_are_seen_once() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]).verifying_key();
        let node = Node::new(key, None, "127.0.0.1:9".parse().expect("addr"), vec![]);
        let mut rx = node.subscribe_joined();
        assert!(!node.is_joined());
        node.membership().set_joined(false);
        assert!(!rx.has_changed().expect("open"));
        node.membership().set_joined(true);
        assert!(rx.has_changed().expect("open"));
        assert!(*rx.borrow_and_update());
        assert!(node.is_joined());
    }
}
