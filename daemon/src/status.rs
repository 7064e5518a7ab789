//! The node's status, assembled in one place: what `GetStatus` answers, what `/metrics` and
//! the web view's status frame show, and what the event log's statistics line writes. The
//! gRPC handler, the web view and the event feed all call [`NodeStatus::report`]; none of
//! them calls another's handler.
//!
//! A service-level module: it reads the node (its facts, its ring, its services' drop
//! counters, the activity counters) and the people service, and names no API type but the
//! `chat.v1` message it fills.

use std::sync::Arc;

use chat_proto::v1::GetStatusResponse;

use crate::client::{ClientInfo, is_operator};
use crate::node::Node;
use crate::people::People;

/// How many web pages are connected now (the web view gives it; the status names no web
/// type).
pub type WebPages = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Reads the node's status.
#[derive(Clone)]
pub struct NodeStatus {
    node: Arc<Node>,
    people: Arc<People>,
    web_pages: Option<WebPages>,
}

impl std::fmt::Debug for NodeStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeStatus")
            .field("node", &self.node.id().short())
            .field("web", &self.web_pages.is_some())
            .finish()
    }
}

impl NodeStatus {
    /// The status of `node` (and of its user, from `people`).
    pub fn new(node: Arc<Node>, people: Arc<People>) -> NodeStatus {
        NodeStatus {
            node,
            people,
            web_pages: None,
        }
    }

    /// Counts the web view's pages too (`web_clients`).
    pub fn with_web_pages(mut self, pages: WebPages) -> NodeStatus {
        self.web_pages = Some(pages);
        self
    }

    /// The status as `client` sees it (its account, its nickname; the private-message counts
    /// only for the operator). `None`: an in-process reader that is not the operator.
    pub async fn report(&self, client: Option<&ClientInfo>) -> GetStatusResponse {
        let who = self.people.who(client);
        let status = self.node.status();
        let ring = self.node.overlay();
        let view = match ring {
            Some(r) => r.view().await,
            None => None,
        };
        let (nickname, nickname_note) = self.people.nickname(who);
        let presence = self.people.presence(who);
        let mut resp = GetStatusResponse {
            node_id: status.id.to_hex(),
            nickname: nickname.unwrap_or_default(),
            nickname_note,
            user_id: self
                .people
                .account_of(who)
                .map(hex::encode)
                .unwrap_or_default(),
            presence: presence.as_str().to_owned(),
            listen_addr: status.listen_addr.to_string(),
            version: status.version.to_owned(),
            uptime_seconds: status.uptime.as_secs(),
            joined: self.node.is_joined(),
            ..Default::default()
        };
        if let Some(v) = &view {
            resp.predecessor = v.predecessor.map(|p| p.id.to_hex()).unwrap_or_default();
            resp.successor = v
                .successors
                .first()
                .map(|p| p.id.to_hex())
                .unwrap_or_default();
            resp.ring_size_estimate = if v.member { v.size_estimate } else { 0 };
            resp.ring_size_exact = v.size_exact.unwrap_or(0);
            resp.messages_sent = v.broadcast.originated;
            resp.messages_received = v.broadcast.delivered;
            resp.messages_forwarded = v.broadcast.payload_sends;
            resp.records_held = v.records_held as u64;
            resp.records_bytes = v.records_bytes as u64;
        }
        if let Some(retry) = self.node.membership().retry() {
            resp.bootstrap_retry_reason = retry.reason;
            resp.bootstrap_retry_at_unix_ms = retry.next_unix_ms;
        }
        if let Some(r) = ring {
            resp.peers_connected = u32::try_from(r.peers().len()).unwrap_or(u32::MAX);
            resp.dropped = r.dropped(view.as_ref()).into_iter().collect();
        }
        resp.dropped.extend(self.node.private_drops());
        let activity = self.node.activity();
        // Node-wide private-message counts say when this node's people talk privately: the
        // operator's to see, zero for everyone else.
        let own_uid = rustix::process::geteuid().as_raw();
        if is_operator(client, own_uid) {
            (resp.private_sent, resp.private_received) = activity.private_counts();
        }
        let count = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        resp.subscriptions = count(activity.subscriptions());
        resp.control_connections = count(activity.control_connections());
        resp.web_clients = count(self.web_pages.as_ref().map_or(0, |pages| pages()));
        if let Some(log) = self.node.event_log() {
            resp.dropped.extend(log.drops());
        }
        if let Some(files) = self.node.files()
            && let Ok(s) = files.summary().await
        {
            use std::sync::atomic::Ordering::Relaxed;
            let st = files.stats();
            resp.file_store = Some(chat_proto::v1::FileStoreStatus {
                files: s.files,
                used_bytes: s.used_bytes,
                quota_bytes: s.quota_bytes,
                max_file_bytes: s.max_file_bytes,
                pinned_files: s.pinned_files,
                pinned_bytes: s.pinned_bytes,
                evictable_bytes: s.evictable_bytes,
                bytes_served: st.bytes_served.load(Relaxed),
                bytes_fetched: st.bytes_fetched.load(Relaxed),
                fetch_failures: st.fetch_failures.load(Relaxed),
                files_released: st.released.load(Relaxed),
            });
        }
        resp
    }
}
