//! `/metrics`: the node's numbers in the Prometheus (OpenMetrics) text format, with
//! `prometheus-client`.
//!
//! The counters `chatctl status` shows are read at each scrape from the same place
//! (`crate::status::NodeStatus::report`, which `NodeService.GetStatus` answers with), so the
//! two always agree; the histograms and
//! the delivery counter live in [`crate::metrics::Metrics`]. Peers' round-trip times are
//! sampled every [`RTT_EVERY`] while the web view runs.
//!
//! The private-message counters (`chatd_private_sent_total`, `chatd_private_received_total`)
//! say when this node's people talk privately: they are exported only to a scrape that
//! presents the bearer token of `control.token_file`, never to any local user who can reach
//! a loopback web view.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chat_proto::v1::GetStatusResponse;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::listener::Client;
use super::{AppState, MAX_CLIENTS, Shared};
use crate::chat::Chat;
use crate::node::Node;
use crate::people::Presence;

/// How often the open connections' round-trip times are sampled.
pub const RTT_EVERY: Duration = Duration::from_secs(5);

/// The OpenMetrics content type.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub(super) async fn metrics(
    State(s): AppState,
    ConnectInfo(from): ConnectInfo<Client>,
    headers: HeaderMap,
) -> Response {
    let private = match s.admit_metrics(&headers, &from) {
        Ok(token) => token.then(|| s.node.activity().private_counts()),
        Err(r) => return super::refusal(r),
    };
    let status = s.status.report(None).await;
    let mut body = String::new();
    match encode(&mut body, &registry(&s, &status, private)) {
        Ok(()) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "encoding failed\n").into_response(),
    }
}

fn counter(r: &mut Registry, name: &str, help: &str, v: u64) {
    let c: Counter = Counter::default();
    c.inc_by(v);
    r.register(name, help, c);
}

fn gauge(r: &mut Registry, name: &str, help: &str, v: u64) {
    let g: Gauge = Gauge::default();
    g.set(i64::try_from(v).unwrap_or(i64::MAX));
    r.register(name, help, g);
}

/// One scrape's registry: fresh values from `status`, the long-lived histograms by handle,
/// and the private-message counts (sent, received) if the scrape may see them.
fn registry(s: &Shared, status: &GetStatusResponse, private: Option<(u64, u64)>) -> Registry {
    let mut r = Registry::with_prefix("chatd");
    counter(
        &mut r,
        "messages_sent",
        "Chat messages this node originated",
        status.messages_sent,
    );
    counter(
        &mut r,
        "messages_received",
        "Chat messages received from the ring and accepted",
        status.messages_received,
    );
    counter(
        &mut r,
        "messages_forwarded",
        "Broadcast payloads this node sent to other nodes",
        status.messages_forwarded,
    );
    let m = s.chat.metrics();
    r.register(
        "deliveries",
        "Messages handed to local subscribers (API streams and web pages)",
        m.deliveries.clone(),
    );
    r.register(
        "store_queue_waits",
        "Times the overlay driver waited for room in the chat store thread's queue",
        m.store_queue_waits.clone(),
    );
    r.register(
        "shown_not_stored",
        "Messages shown before they were stored that the store did not take as new",
        m.shown_not_stored.clone(),
    );
    let dropped = Family::<Vec<(String, String)>, Counter>::default();
    for (reason, n) in &status.dropped {
        dropped
            .get_or_create(&vec![("reason".to_owned(), reason.clone())])
            .inc_by(*n);
    }
    r.register(
        "dropped",
        "Things dropped because they were malformed, unauthenticated or over a limit",
        dropped,
    );
    let restarts = Family::<Vec<(String, String)>, Counter>::default();
    for (what, n) in crate::supervise::restarts() {
        restarts
            .get_or_create(&vec![("what".to_owned(), what.to_owned())])
            .inc_by(n);
    }
    r.register(
        "restarts",
        "Supervised threads restarted after a panic (the WAL checkpointer, the search indexer, \
         the event log and record file writers, mDNS browsing)",
        restarts,
    );
    gauge(
        &mut r,
        "ring_size_estimate",
        "Estimated ring members",
        status.ring_size_estimate,
    );
    gauge(
        &mut r,
        "ring_size_exact",
        "Ring members counted exactly (the successor list runs round to this node); 0 when unknown",
        status.ring_size_exact,
    );
    gauge(
        &mut r,
        "peers",
        "Peers with an open connection",
        u64::from(status.peers_connected),
    );
    gauge(
        &mut r,
        "joined",
        "1 once the node is a ring member",
        u64::from(status.joined),
    );
    gauge(
        &mut r,
        "uptime_seconds",
        "Seconds since the daemon started",
        status.uptime_seconds,
    );
    gauge(
        &mut r,
        "subscribers",
        "Open subscriptions (API streams and web pages)",
        u64::from(status.subscriptions),
    );
    gauge(
        &mut r,
        "control_connections",
        "Open control API connections (Unix socket and TCP)",
        u64::from(status.control_connections),
    );
    if let Some((sent, received)) = private {
        counter(
            &mut r,
            "private_sent",
            "Private messages sent by the accounts this node hosts",
            sent,
        );
        counter(
            &mut r,
            "private_received",
            "Private messages received for the accounts this node hosts",
            received,
        );
    }
    gauge(
        &mut r,
        "web_clients",
        "Web pages connected over /ws",
        (MAX_CLIENTS - s.clients.available_permits()) as u64,
    );
    counter(
        &mut r,
        "web_connections_refused",
        "Web connections closed for being over the limit",
        s.refused(),
    );
    gauge(
        &mut r,
        "bulk_streams_open",
        "Incoming bulk streams (file transfers) open now",
        s.node
            .overlay()
            .map_or(0, |ring| ring.transport().bulk_open() as u64),
    );
    if let Some(files) = s.node.files() {
        use std::sync::atomic::Ordering::Relaxed;
        let st = files.stats();
        counter(
            &mut r,
            "files_served_bytes",
            "Bytes of verified file ranges served to other nodes",
            st.bytes_served.load(Relaxed),
        );
        counter(
            &mut r,
            "files_fetched_bytes",
            "Bytes of files fetched from other nodes and verified",
            st.bytes_fetched.load(Relaxed),
        );
        counter(
            &mut r,
            "files_bad_providers",
            "Providers dropped from a fetch for bytes that did not verify",
            st.bad_providers.load(Relaxed),
        );
        counter(
            &mut r,
            "files_bad_requests",
            "File range requests refused as malformed",
            st.bad_requests.load(Relaxed),
        );
        counter(
            &mut r,
            "files_corrupt",
            "Stored files found damaged while serving them (removed)",
            st.corrupt.load(Relaxed),
        );
        counter(
            &mut r,
            "files_fetch_failures",
            "Fetches that ended without the file (no provider left, the store failed)",
            st.fetch_failures.load(Relaxed),
        );
        counter(
            &mut r,
            "files_fetches_joined",
            "Fetches that waited for a running fetch of the same file instead of starting one",
            st.fetches_joined.load(Relaxed),
        );
        counter(
            &mut r,
            "files_released",
            "Files removed from the store because their messages were deleted or expired",
            st.released.load(Relaxed),
        );
    }
    if let Some(fs) = &status.file_store {
        gauge(
            &mut r,
            "files_store_bytes",
            "Bytes the blob store uses (files and verification trees, complete and partial)",
            fs.used_bytes,
        );
        gauge(
            &mut r,
            "files_store_quota_bytes",
            "The blob store's quota (files.store_mb)",
            fs.quota_bytes,
        );
        gauge(
            &mut r,
            "files_held",
            "Complete files in the blob store",
            fs.files,
        );
        gauge(
            &mut r,
            "files_pinned_bytes",
            "Bytes of the pinned files (this node's own sent files)",
            fs.pinned_bytes,
        );
    }
    gauge(
        &mut r,
        "records_held",
        "DHT records this node holds",
        status.records_held,
    );
    gauge(
        &mut r,
        "records_bytes",
        "Bytes of the DHT records this node holds",
        status.records_bytes,
    );
    gauge(
        &mut r,
        "mailbox_items",
        "Presence mailbox items held for broadcasting",
        s.people.presence_items_held() as u64,
    );
    let users = Family::<Vec<(String, String)>, Gauge>::default();
    for p in [Presence::Online, Presence::Away, Presence::Offline] {
        let _ = users.get_or_create(&vec![("presence".to_owned(), p.as_str().to_owned())]);
    }
    for (_, u) in s.people.list() {
        users
            .get_or_create(&vec![(
                "presence".to_owned(),
                u.presence.as_str().to_owned(),
            )])
            .inc();
    }
    r.register("users", "People in the user directory, by presence", users);
    r.register(
        "delivery_latency_seconds",
        "From a message's timestamp (its sender's clock) to its acceptance here",
        m.delivery_latency.clone(),
    );
    r.register(
        "store_commit_seconds",
        "Time of one group commit of the message history",
        m.commit_seconds.clone(),
    );
    r.register(
        "peer_rtt_seconds",
        "Round-trip times of the open peer connections, sampled every 5 s",
        m.peer_rtt.clone(),
    );
    r
}

/// Samples every open connection's round-trip time into the histogram, forever.
pub(super) async fn sample_rtt(node: Arc<Node>, chat: Chat) {
    let mut every = tokio::time::interval(RTT_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Some(ring) = node.overlay() {
            for p in ring.peers() {
                chat.metrics().peer_rtt.observe(p.rtt.as_secs_f64());
            }
        }
    }
}
