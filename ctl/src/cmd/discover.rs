//! `chatctl discover`: the peers chatd's LAN discovery (mDNS, `chatd --lan`) has seen.

use crate::client::Target;

use chat_proto::v1::{ListDiscoveredRequest, ListDiscoveredResponse};

use crate::Error;
use crate::client;
use crate::output::Printer;
use crate::time;

/// Asks chatd at `socket` what it has seen on the LAN and prints it.
pub async fn run(socket: &Target, printer: Printer) -> Result<(), Error> {
    let mut api = client::node_service(socket).await?;
    let resp = api
        .list_discovered(ListDiscoveredRequest {})
        .await
        .map_err(|s| client::call_error(socket, s))?
        .into_inner();
    printer.table(&resp, &render(&resp)).map_err(Error::Output)
}

/// One line per peer: NodeId, addresses, last seen, connected or not; then the counters.
pub fn render(resp: &ListDiscoveredResponse) -> String {
    if !resp.enabled {
        return "LAN discovery is off (start chatd with --lan, or set discovery.mdns = true)\n"
            .to_owned();
    }
    let mut out = String::new();
    if resp.peers.is_empty() {
        out.push_str("no peers seen on the LAN yet\n");
    }
    for p in &resp.peers {
        out.push_str(&format!(
            "{}  {}  last seen {} UTC{}\n",
            p.node_id,
            p.addresses.join(","),
            time::short(i64::try_from(p.last_seen_unix_ms).unwrap_or(i64::MAX)),
            if p.connected { "  connected" } else { "" }
        ));
    }
    if resp.ignored_announcements + resp.dropped_announcements > 0 {
        out.push_str(&format!(
            "announcements ignored (malformed): {}, dropped (over the bounds): {}\n",
            resp.ignored_announcements, resp.dropped_announcements
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_proto::v1::DiscoveredPeer;

    #[test]
    fn off_empty_and_seen_are_told_apart() {
        let off = ListDiscoveredResponse::default();
        assert!(render(&off).starts_with("LAN discovery is off"));
        let empty = ListDiscoveredResponse {
            enabled: true,
            ..Default::default()
        };
        assert_eq!(render(&empty), "no peers seen on the LAN yet\n");
        let seen = ListDiscoveredResponse {
            enabled: true,
            peers: vec![DiscoveredPeer {
                node_id: "ab".repeat(32),
                addresses: vec!["10.1.0.2:7400".into()],
                instance: "chatd-abababababababab._chatd._udp.local.".into(),
                first_seen_unix_ms: 0,
                last_seen_unix_ms: 86_400_000,
                connected: true,
            }],
            ignored_announcements: 2,
            dropped_announcements: 0,
        };
        assert_eq!(
            render(&seen),
            format!(
                "{}  10.1.0.2:7400  last seen 1970-01-02 00:00:00 UTC  connected\n\
                 announcements ignored (malformed): 2, dropped (over the bounds): 0\n",
                "ab".repeat(32)
            )
        );
    }
}
