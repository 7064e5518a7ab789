//! The running node's shared state, as the API layer (control, web, IRC) and the status see it.
//!
//! A [`Node`] holds the identity-derived facts (id, nickname, listen address, start time), the
//! overlay driver's [`Membership`] (joined, ring size, the driver's heartbeat), the handles of what
//! runs (the overlay driver, LAN discovery, private conversations, the event log), and a stop
//! request that the control API's `Leave` uses to end the daemon. The app builds it in order,
//! after what it holds (`Node::new(..).with_overlay(..)..`): the driver holds only the
//! `Membership`, never the `Node` (the node holds the driver's handle, so the other way round
//! would keep the driver's command channel open for ever), and no service depends on this
//! module.

use std::net::SocketAddr;

use crate::config::PeerAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_overlay::NodeId;
use ed25519_dalek::VerifyingKey;
use tokio::sync::watch;

use crate::nickname::Nickname;
use crate::overlay::OverlayHandle;
pub use crate::overlay::membership::{Membership, Retry};

/// The daemon's version, as reported by `GetStatus`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Facts about the running node and the handles of what runs on it, shared (behind an `Arc`)
/// with the API layer. Built in order by [`Node::new`] and the `with_*` steps before it is
/// shared: nothing is attached later, so nothing is half-built.
#[derive(Debug)]
pub struct Node {
    id: NodeId,
    public_key: VerifyingKey,
    nickname: Option<Nickname>,
    listen_addr: SocketAddr,
    bootstrap: Vec<PeerAddr>,
    started: Instant,
    /// What the overlay driver reports: joined (drives READY=1 and gRPC health), ring size,
    /// heartbeat.
    membership: Arc<Membership>,
    /// The overlay driver (`None` only in tests that run no ring).
    overlay: Option<OverlayHandle>,
    /// LAN discovery, when on.
    lan: Option<Arc<crate::discovery::mdns::Lan>>,
    /// The private-conversations service (its drop counters join the node's).
    private: Option<Arc<crate::dm::Dm>>,
    /// The files service (its counters for the metrics).
    files: Option<Arc<crate::files::Files>>,
    /// The voice runner (transcription helper), when files run.
    voice: Option<Arc<crate::voice::Voice>>,
    /// The event log, when `log.events` is on.
    event_log: Option<crate::eventlog::EventLog>,
    /// Clients connected and private messages, for the status.
    activity: Arc<crate::eventlog::stats::Activity>,
    /// Set when something (the `Leave` RPC) asks the daemon to stop.
    stop: watch::Sender<bool>,
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
    /// A node that started now, with its own [`Membership`] and nothing running yet; the
    /// `with_*` steps add what runs, before the node is shared.
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
            overlay: None,
            lan: None,
            private: None,
            files: None,
            voice: None,
            event_log: None,
            activity: Arc::default(),
            stop: watch::Sender::new(false),
        }
    }

    /// The membership the overlay driver was started with.
    pub fn with_membership(mut self, membership: Arc<Membership>) -> Node {
        self.membership = membership;
        self
    }

    /// The activity counters the services were given.
    pub fn with_activity(mut self, activity: Arc<crate::eventlog::stats::Activity>) -> Node {
        self.activity = activity;
        self
    }

    /// The running overlay driver.
    pub fn with_overlay(mut self, overlay: OverlayHandle) -> Node {
        self.overlay = Some(overlay);
        self
    }

    /// LAN discovery, when on.
    pub fn with_lan(mut self, lan: Option<Arc<crate::discovery::mdns::Lan>>) -> Node {
        self.lan = lan;
        self
    }

    /// The private-conversations service.
    pub fn with_private(mut self, dm: Arc<crate::dm::Dm>) -> Node {
        self.private = Some(dm);
        self
    }

    /// The event log, when on.
    pub fn with_event_log(mut self, log: Option<crate::eventlog::EventLog>) -> Node {
        self.event_log = log;
        self
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

    /// What the overlay driver reports (the driver holds a clone).
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
        self.membership.subscribe_joined()
    }

    /// The overlay's driver, if it runs.
    pub fn overlay(&self) -> Option<&OverlayHandle> {
        self.overlay.as_ref()
    }

    /// LAN discovery, if it runs.
    pub fn lan(&self) -> Option<&Arc<crate::discovery::mdns::Lan>> {
        self.lan.as_ref()
    }

    /// The private-conversations service, when it runs.
    pub fn private(&self) -> Option<Arc<crate::dm::Dm>> {
        self.private.clone()
    }

    /// The files service.
    pub fn with_files(mut self, files: Arc<crate::files::Files>) -> Node {
        self.files = Some(files);
        self
    }

    /// The files service, when it runs.
    pub fn files(&self) -> Option<&Arc<crate::files::Files>> {
        self.files.as_ref()
    }

    /// The voice runner.
    pub fn with_voice(mut self, voice: Arc<crate::voice::Voice>) -> Node {
        self.voice = Some(voice);
        self
    }

    /// The voice runner, when files run.
    pub fn voice(&self) -> Option<&Arc<crate::voice::Voice>> {
        self.voice.as_ref()
    }

    /// Private-message input dropped from the network, by reason (`dm_` and the reason).
    pub fn private_drops(&self) -> Vec<(String, u64)> {
        self.private.as_ref().map_or_else(Vec::new, |dm| {
            dm.drops()
                .into_iter()
                .map(|(r, n)| (format!("dm_{r}"), n))
                .collect()
        })
    }

    /// The event log, when it runs.
    pub fn event_log(&self) -> Option<&crate::eventlog::EventLog> {
        self.event_log.as_ref()
    }

    /// Clients connected and private messages counted since the start.
    pub fn activity(&self) -> &Arc<crate::eventlog::stats::Activity> {
        &self.activity
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
