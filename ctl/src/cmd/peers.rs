//! `chatctl peers`: the peers chatd holds a QUIC connection to, with address and RTT.

use crate::client::Target;

use chat_proto::v1::{ListPeersRequest, ListPeersResponse};

use crate::Error;
use crate::client;
use crate::output::Printer;

/// Asks chatd at `socket` for its peers and prints them.
pub async fn run(socket: &Target, printer: Printer) -> Result<(), Error> {
    let mut api = client::node_service(socket).await?;
    let resp = api
        .list_peers(ListPeersRequest {})
        .await
        .map_err(|s| client::call_error(socket, s))?
        .into_inner();
    printer.table(&resp, &render(&resp)).map_err(Error::Output)
}

/// One line per peer: NodeId, address, RTT in milliseconds.
pub fn render(resp: &ListPeersResponse) -> String {
    if resp.peers.is_empty() {
        return "no connected peers\n".to_owned();
    }
    let width = resp
        .peers
        .iter()
        .map(|p| p.address.len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for p in &resp.peers {
        out.push_str(&format!(
            "{}  {:<width$}  {:.1} ms\n",
            p.node_id,
            p.address,
            p.rtt_micros as f64 / 1000.0
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_proto::v1::PeerInfo;

    #[test]
    fn lines_show_id_address_and_rtt() {
        assert_eq!(
            render(&ListPeersResponse { peers: vec![] }),
            "no connected peers\n"
        );
        let resp = ListPeersResponse {
            peers: vec![PeerInfo {
                node_id: "ab".repeat(32),
                address: "127.0.0.2:7400".into(),
                rtt_micros: 1500,
            }],
        };
        assert_eq!(
            render(&resp),
            format!("{}  127.0.0.2:7400  1.5 ms\n", "ab".repeat(32))
        );
    }
}
