//! `chatctl ring`: the node's routing state — predecessor, successor list and fingers.

use crate::client::Target;

use chat_proto::v1::{GetRingRequest, GetRingResponse, RingPeer};

use crate::Error;
use crate::client;
use crate::output::Printer;

/// Asks chatd at `socket` for its ring state and prints it.
pub async fn run(socket: &Target, printer: Printer) -> Result<(), Error> {
    let mut api = client::node_service(socket).await?;
    let resp = api
        .get_ring(GetRingRequest {})
        .await
        .map_err(|s| client::call_error(socket, s))?
        .into_inner();
    printer.table(&resp, &render(&resp)).map_err(Error::Output)
}

fn peer(p: &RingPeer) -> String {
    format!("{}  {}", p.node_id, p.address)
}

/// The human-readable form.
pub fn render(r: &GetRingResponse) -> String {
    let mut out = format!("node         {}\n", r.node_id);
    match &r.predecessor {
        Some(p) => out.push_str(&format!("predecessor  {}\n", peer(p))),
        None => out.push_str("predecessor  (none)\n"),
    }
    if r.successors.is_empty() {
        out.push_str("successors   (none)\n");
    }
    for (i, s) in r.successors.iter().enumerate() {
        let label = if i == 0 { "successors" } else { "" };
        out.push_str(&format!("{label:<11}  {}\n", peer(s)));
    }
    for f in &r.fingers {
        if let Some(p) = &f.peer {
            out.push_str(&format!("finger {:<4}  {}\n", f.index, peer(p)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_proto::v1::Finger;

    #[test]
    fn shows_every_part() {
        let p = |c: &str| RingPeer {
            node_id: c.repeat(64),
            address: "127.0.0.3:1".into(),
        };
        let r = GetRingResponse {
            node_id: "0".repeat(64),
            predecessor: None,
            successors: vec![p("a"), p("b")],
            fingers: vec![Finger {
                index: 255,
                peer: Some(p("c")),
            }],
        };
        let text = render(&r);
        assert!(text.contains("predecessor  (none)"), "{text}");
        assert!(
            text.contains(&format!("successors   {}  127.0.0.3:1", "a".repeat(64))),
            "{text}"
        );
        assert!(
            text.contains(&format!("             {}", "b".repeat(64))),
            "{text}"
        );
        assert!(
            text.contains(&format!("finger 255   {}", "c".repeat(64))),
            "{text}"
        );
    }
}
