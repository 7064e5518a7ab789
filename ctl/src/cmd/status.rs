//! `chatctl status`: the node's id, nickname, listen address, version, uptime, ring
//! neighbours, peers, message counters (public and private), clients connected, drops and the
//! blob store.

use crate::client::Target;
use std::time::Duration;

use chat_proto::v1::{GetStatusRequest, GetStatusResponse};

use crate::Error;
use crate::client::{self, ClientError};
use crate::cmd::tail::human_size as human_bytes;
use crate::output::{Printer, human_duration};

/// Asks chatd at `socket` for its status and prints it.
pub async fn run(socket: &Target, printer: Printer) -> Result<(), Error> {
    let mut api = client::node_service(socket).await?;
    let status = api
        .get_status(GetStatusRequest {})
        .await
        .map_err(|s| client::call_error(socket, s))?
        .into_inner();
    printer
        .record(&status, &fields(&status))
        .map_err(Error::Output)
}

/// The human-readable lines.
pub fn fields(s: &GetStatusResponse) -> Vec<(&'static str, String)> {
    let nickname = match (s.nickname.is_empty(), s.nickname_note.is_empty()) {
        (true, _) => "(not claimed yet)".to_owned(),
        (false, true) => s.nickname.clone(),
        (false, false) => format!("{} ({})", s.nickname, s.nickname_note),
    };
    let mut fields = vec![
        ("node id", s.node_id.clone()),
        ("nickname", nickname),
        ("presence", or_none(&s.presence)),
        ("listening on", s.listen_addr.clone()),
        ("version", s.version.clone()),
        (
            "uptime",
            human_duration(Duration::from_secs(s.uptime_seconds)),
        ),
        ("joined", if s.joined { "yes" } else { "no" }.to_owned()),
        ("predecessor", or_none(&s.predecessor)),
        ("successor", or_none(&s.successor)),
        (
            "ring size",
            ring_size(s.ring_size_exact, s.ring_size_estimate),
        ),
        ("peers connected", s.peers_connected.to_string()),
        ("messages sent", s.messages_sent.to_string()),
        ("messages received", s.messages_received.to_string()),
        ("messages forwarded", s.messages_forwarded.to_string()),
        (
            "private messages",
            format!("{} sent, {} received", s.private_sent, s.private_received),
        ),
        (
            "clients",
            format!(
                "{} subscriptions, {} control connections, {} web pages",
                s.subscriptions, s.control_connections, s.web_clients
            ),
        ),
        (
            "records held",
            format!("{} ({} bytes)", s.records_held, s.records_bytes),
        ),
        ("dropped", dropped(s)),
    ];
    if let Some(f) = &s.file_store {
        fields.push(("files", file_store(f)));
        fields.push((
            "file transfers",
            format!(
                "{} served, {} fetched, {} failed fetches, {} released",
                human_bytes(f.bytes_served),
                human_bytes(f.bytes_fetched),
                f.fetch_failures,
                f.files_released
            ),
        ));
    }
    if s.bootstrap_retry_at_unix_ms > 0 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let wait = s.bootstrap_retry_at_unix_ms.saturating_sub(now);
        fields.insert(
            5,
            (
                "bootstrap",
                format!(
                    "unreachable, retrying in {}: {}",
                    human_duration(Duration::from_millis(wait)),
                    s.bootstrap_retry_reason
                ),
            ),
        );
    }
    fields
}

/// The ring size as a person should read it: the exact count when the node knows it, else
/// the estimate, marked as one (`≈ 8 (estimate)`); `(not in a ring)` for 0.
pub fn ring_size(exact: u64, estimate: u64) -> String {
    match (exact, estimate) {
        (0, 0) => "(not in a ring)".to_owned(),
        (0, n) => format!("≈ {n} (estimate)"),
        (n, _) => n.to_string(),
    }
}

/// The store line: `3 held, 2.4 MB of 1.0 GB used, 1 pinned (2.1 MB), 2 evictable (300.0 kB),
/// files up to 100.0 MB` (pinned: kept while their messages are; evictable: least recently
/// used first when the quota needs room).
pub fn file_store(f: &chat_proto::v1::FileStoreStatus) -> String {
    format!(
        "{} held, {} of {} used, {} pinned ({}), {} evictable ({}), files up to {}",
        f.files,
        human_bytes(f.used_bytes),
        human_bytes(f.quota_bytes),
        f.pinned_files,
        human_bytes(f.pinned_bytes),
        f.files.saturating_sub(f.pinned_files),
        human_bytes(f.evictable_bytes),
        human_bytes(f.max_file_bytes)
    )
}

fn or_none(s: &str) -> String {
    if s.is_empty() {
        "(none)".to_owned()
    } else {
        s.to_owned()
    }
}

/// Non-zero drop counters as `reason=n, …`, or `none`.
fn dropped(s: &GetStatusResponse) -> String {
    let mut v: Vec<(&String, &u64)> = s.dropped.iter().filter(|(_, n)| **n > 0).collect();
    v.sort();
    if v.is_empty() {
        return "none".to_owned();
    }
    v.iter()
        .map(|(k, n)| format!("{k}={n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl From<ClientError> for Error {
    fn from(e: ClientError) -> Error {
        Error::Client(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_size_is_exact_or_says_it_is_an_estimate() {
        assert_eq!(ring_size(2, 8), "2");
        assert_eq!(ring_size(0, 8), "≈ 8 (estimate)");
        assert_eq!(ring_size(0, 0), "(not in a ring)");
        let s = GetStatusResponse {
            ring_size_exact: 2,
            ring_size_estimate: 8,
            ..Default::default()
        };
        assert!(fields(&s).contains(&("ring size", "2".to_owned())));
        assert!(!fields(&s).iter().any(|(k, _)| *k == "files"));
    }

    #[test]
    fn the_store_line_says_what_is_held_used_pinned_and_evictable() {
        let s = GetStatusResponse {
            file_store: Some(chat_proto::v1::FileStoreStatus {
                files: 3,
                used_bytes: 2_400_000,
                quota_bytes: 1_000_000_000,
                max_file_bytes: 100_000_000,
                pinned_files: 1,
                pinned_bytes: 512,
                evictable_bytes: 300_000,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(fields(&s).contains(&(
            "files",
            "3 held, 2.4 MB of 1.0 GB used, 1 pinned (512 B), 2 evictable (300.0 kB), files up to 100.0 MB"
                .to_owned()
        )));
    }
}
