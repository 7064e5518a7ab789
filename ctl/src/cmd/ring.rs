//! `chatctl ring`: the node's routing state — predecessor, successor list and fingers — its
//! ring size, and every node it has met, with connection, round-trip time, failure and
//! nicknames (`--json` carries all of it, for tools and maps).

use crate::client::Target;

use chat_proto::v1::{GetRingRequest, GetRingResponse, KnownNode, RingPeer};

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
    out.push_str(&format!(
        "ring size    {}\n",
        super::status::ring_size(r.ring_size_exact, r.ring_size_estimate)
    ));
    if !r.nicknames.is_empty() {
        out.push_str(&format!("hosts        {}\n", r.nicknames.join(", ")));
    }
    out.push_str(&format!("\nnodes met ({}", r.known.len()));
    if r.known_omitted > 0 {
        out.push_str(&format!(", {} more left out", r.known_omitted));
    }
    out.push_str(")\n");
    if !r.known.is_empty() {
        out.push_str(&format!(
            "{:<16}  {:<21}  {:<9}  {:<17}  {}\n",
            "NODE", "ADDRESS", "RTT", "ROLE", "NICKNAMES"
        ));
    }
    for n in &r.known {
        out.push_str(&known(n));
    }
    out
}

/// One row of the nodes met.
fn known(n: &KnownNode) -> String {
    let rtt = if n.connected {
        format!("{:.1} ms", n.rtt_micros as f64 / 1000.0)
    } else {
        "-".to_owned()
    };
    let mut roles: Vec<&str> = [
        (n.predecessor, "pred"),
        (n.successor, "succ"),
        (n.finger, "finger"),
        (n.failed, "FAILED"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, r)| *r)
    .collect();
    if roles.is_empty() {
        roles.push("met");
    }
    format!(
        "{:<16}  {:<21}  {:<9}  {:<17}  {}\n",
        n.node_id.get(..16).unwrap_or(&n.node_id),
        n.address,
        rtt,
        roles.join(" "),
        n.nicknames.join(", ")
    )
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
            known: vec![
                KnownNode {
                    node_id: "a".repeat(64),
                    address: "127.0.0.3:1".into(),
                    connected: true,
                    rtt_micros: 1240,
                    successor: true,
                    nicknames: vec!["alice".into(), "*guest".into()],
                    ..Default::default()
                },
                KnownNode {
                    node_id: "d".repeat(64),
                    failed: true,
                    ..Default::default()
                },
            ],
            known_omitted: 3,
            ring_size_exact: 4,
            ring_size_estimate: 6,
            nicknames: vec!["me".into()],
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
        assert!(text.contains("ring size    4\n"), "{text}");
        assert!(text.contains("hosts        me\n"), "{text}");
        assert!(text.contains("nodes met (2, 3 more left out)"), "{text}");
        let alice = text.lines().find(|l| l.contains("alice")).expect("row");
        assert!(alice.starts_with(&"a".repeat(16)), "{alice}");
        assert!(
            alice.contains("1.2 ms") && alice.contains("succ"),
            "{alice}"
        );
        assert!(alice.contains("alice, *guest"), "{alice}");
        let failed = text.lines().find(|l| l.starts_with("dddd")).expect("row");
        assert!(
            failed.contains("FAILED") && failed.contains(" - "),
            "{failed}"
        );
    }
}
