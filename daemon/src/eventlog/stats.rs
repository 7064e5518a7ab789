//! What the node counts about its clients and its users' private messages, for
//! `chatctl status`, `/metrics` and the periodic summary line.
//!
//! [`Activity`] lives in the [`crate::node::Node`]: the control server holds a
//! [`Connection`] guard per open connection (Unix socket or TCP), the feed counts the private
//! messages the private-conversations service shows (sent by, or received for, an account
//! this node hosts), and the chat core's subscriber count gives the open subscriptions (API
//! streams and web pages), less the feed's own watcher of the hub. [`summary`] is the
//! one-line form of a status, written every `log.stats_interval_secs`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use chat_proto::v1::GetStatusResponse;

use crate::chat::Chat;

/// The node's activity counters; shared by `Arc`.
#[derive(Debug, Default)]
pub struct Activity {
    control_open: AtomicU64,
    private_sent: AtomicU64,
    private_received: AtomicU64,
    /// Hub watchers that are not clients (the event log's feed).
    internal_watchers: AtomicU64,
    chat: OnceLock<Chat>,
}

/// One open control connection; counted until dropped.
#[derive(Debug)]
pub struct Connection(Arc<Activity>);

impl Drop for Connection {
    fn drop(&mut self) {
        self.0.control_open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Activity {
    /// Counts a control connection while the guard lives.
    pub fn connection(self: &Arc<Self>) -> Connection {
        self.control_open.fetch_add(1, Ordering::Relaxed);
        Connection(self.clone())
    }

    /// Open control connections.
    pub fn control_connections(&self) -> u64 {
        self.control_open.load(Ordering::Relaxed)
    }

    /// Counts a private message shown to an account of this node.
    pub fn private_message(&self, outgoing: bool) {
        let c = if outgoing {
            &self.private_sent
        } else {
            &self.private_received
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Private messages sent by and received for this node's accounts since the start.
    pub fn private_counts(&self) -> (u64, u64) {
        (
            self.private_sent.load(Ordering::Relaxed),
            self.private_received.load(Ordering::Relaxed),
        )
    }

    /// Where open subscriptions are counted (once).
    pub fn attach_chat(&self, chat: Chat) {
        let _ = self.chat.set(chat);
    }

    /// A hub watcher that is not a client starts (`true`) or stops.
    pub fn internal_watcher(&self, on: bool) {
        if on {
            self.internal_watchers.fetch_add(1, Ordering::Relaxed);
        } else {
            self.internal_watchers.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Open message subscriptions of clients (API streams and web pages).
    pub fn subscriptions(&self) -> u64 {
        let all = self.chat.get().map_or(0, |c| c.subscribers() as u64);
        all.saturating_sub(self.internal_watchers.load(Ordering::Relaxed))
    }
}

/// The numbers of a status, by name, as the `stats` record's `counts` holds them.
pub fn counts(s: &GetStatusResponse) -> BTreeMap<String, u64> {
    let dropped: u64 = s.dropped.values().sum();
    [
        ("ring_size", s.ring_size_estimate),
        ("peers", u64::from(s.peers_connected)),
        ("messages_sent", s.messages_sent),
        ("messages_received", s.messages_received),
        ("messages_forwarded", s.messages_forwarded),
        ("private_sent", s.private_sent),
        ("private_received", s.private_received),
        ("subscriptions", u64::from(s.subscriptions)),
        ("control_connections", u64::from(s.control_connections)),
        ("web_clients", u64::from(s.web_clients)),
        ("dropped", dropped),
        ("uptime_seconds", s.uptime_seconds),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// A status as one line, e.g. `ring 5, peers 4; messages sent 3, received 10, forwarded 12;
/// private sent 1, received 2; clients: 2 subscriptions, 1 control, 0 web; dropped 0`.
pub fn summary(s: &GetStatusResponse) -> String {
    let dropped: u64 = s.dropped.values().sum();
    format!(
        "ring {}, peers {}; messages sent {}, received {}, forwarded {}; private sent {}, \
         received {}; clients: {} subscriptions, {} control, {} web; dropped {dropped}",
        s.ring_size_estimate,
        s.peers_connected,
        s.messages_sent,
        s.messages_received,
        s.messages_forwarded,
        s.private_sent,
        s.private_received,
        s.subscriptions,
        s.control_connections,
        s.web_clients,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_counted_while_open() {
        let a = Arc::new(Activity::default());
        let one = a.connection();
        let two = a.connection();
        assert_eq!(a.control_connections(), 2);
        drop(one);
        assert_eq!(a.control_connections(), 1);
        drop(two);
        assert_eq!(a.control_connections(), 0);
    }

    #[test]
    fn private_messages_by_direction_and_subscriptions_without_the_feed() {
        let a = Activity::default();
        a.private_message(true);
        a.private_message(false);
        a.private_message(false);
        assert_eq!(a.private_counts(), (1, 2));
        let chat = Chat::in_memory(
            ed25519_dalek::SigningKey::from_bytes(&[1; 32]),
            None,
            &crate::chat::ChatConfig::default(),
        )
        .expect("chat");
        a.attach_chat(chat.clone());
        assert_eq!(a.subscriptions(), 0);
        let _feed = chat.hub_subscribe();
        a.internal_watcher(true);
        assert_eq!(a.subscriptions(), 0, "the feed is no client");
        let _client = chat.hub_subscribe();
        assert_eq!(a.subscriptions(), 1);
    }

    #[test]
    fn the_summary_names_every_number() {
        let mut s = GetStatusResponse {
            ring_size_estimate: 5,
            peers_connected: 4,
            messages_sent: 3,
            messages_received: 10,
            messages_forwarded: 12,
            private_sent: 1,
            private_received: 2,
            subscriptions: 2,
            control_connections: 1,
            web_clients: 0,
            ..Default::default()
        };
        s.dropped.insert("eventlog_full".into(), 2);
        s.dropped.insert("bad_signature".into(), 1);
        assert_eq!(
            summary(&s),
            "ring 5, peers 4; messages sent 3, received 10, forwarded 12; private sent 1, \
             received 2; clients: 2 subscriptions, 1 control, 0 web; dropped 3"
        );
        let c = counts(&s);
        assert_eq!(c["messages_received"], 10);
        assert_eq!(c["dropped"], 3);
        assert_eq!(c["control_connections"], 1);
    }
}
