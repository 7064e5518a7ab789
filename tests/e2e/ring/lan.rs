//! LAN discovery (`chatd --lan`, mDNS) with real daemons in two network namespaces the test
//! creates and joined by a veth pair, so that no multicast leaves the test's own namespaces.
//! Nodes started with no bootstrap find each other and form one ring; a message sent on one
//! shows on the other; forged announcements (a malformed TXT record, a spoofed node id) are
//! counted and refused without disturbing the ring.
//!
//! The same isolation lets a node try a bootstrap host name that cannot be resolved: inside a
//! namespace with only loopback, no DNS query can leave.
//!
//! Needs root (`ip netns`) and iproute2; skipped with a printed reason otherwise, and failed
//! instead when `CHATD_TEST_STRICT=1` (CI).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::cluster::{CONFIG, poll};
use crate::netns::{Netns, netns_or_skip};
use crate::support::{Daemon, Sandbox, chatd_bin};

struct Node {
    daemon: Daemon,
    socket: PathBuf,
}

fn start(sandbox: &Sandbox, ns: &Netns, i: usize) -> Node {
    let dir = sandbox.path().join(format!("lan{i}"));
    let socket = dir.join("run/control.sock");
    let mut cmd = sandbox.chatd_bare();
    cmd.arg("--config")
        .arg(sandbox.config())
        .arg("--lan")
        .args(["--listen", "0.0.0.0:0"])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--control")
        .arg(&socket);
    assert_eq!(cmd.get_program(), chatd_bin().as_os_str());
    let daemon = sandbox.start(ns.wrap(i, &cmd), &socket);
    Node { daemon, socket }
}

fn json(sandbox: &Sandbox, socket: &Path, args: &[&str]) -> Option<serde_json::Value> {
    let out = sandbox.chatctl_at(socket, args);
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// The node's id and its first successor's id.
fn ring_of(sandbox: &Sandbox, socket: &Path) -> Option<(String, String)> {
    let ring = json(sandbox, socket, &["ring", "--json"])?;
    Some((
        ring["node_id"].as_str()?.to_owned(),
        ring["successors"][0]["node_id"].as_str()?.to_owned(),
    ))
}

/// Both nodes have each other as successor: one ring of two.
fn one_ring(sandbox: &Sandbox, nodes: &[Node; 2]) -> bool {
    let (Some(a), Some(b)) = (
        ring_of(sandbox, &nodes[0].socket),
        ring_of(sandbox, &nodes[1].socket),
    ) else {
        return false;
    };
    a.1 == b.0 && b.1 == a.0
}

/// Sends forged announcements from namespace `i` (raw mDNS packets from Python): one whose TXT
/// `id=` is not a node id, one claiming a random node id at `victim`'s address.
fn forge(ns: &Netns, i: usize, victim: std::net::SocketAddr) {
    const SCRIPT: &str = r#"
import socket, struct, sys
src, vip, vport, fake = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def name(n):
    return b"".join(bytes([len(p)]) + p.encode() for p in n.split(".")) + b"\0"
def rr(n, t, cls, data):
    return name(n) + struct.pack("!HHIH", t, cls, 120, len(data)) + data
def service(inst, host, ip, port, txt):
    full = inst + "._chatd._udp.local"
    txtdata = b"".join(bytes([len(s)]) + s.encode() for s in txt)
    return [rr("_chatd._udp.local", 12, 1, name(full)),
            rr(full, 33, 0x8001, struct.pack("!HHH", 0, 0, port) + name(host)),
            rr(full, 16, 0x8001, txtdata),
            rr(host, 1, 0x8001, socket.inet_aton(ip))]
recs = service("forged-garbage", "forged-g.local", vip, vport, ["id=not-a-node-id", "v=1"])
recs += service("forged-spoof", "forged-s.local", vip, vport, ["id=" + fake, "v=1"])
msg = struct.pack("!HHHHHH", 0, 0x8400, 0, len(recs), 0, 0) + b"".join(recs)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(src))
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
for _ in range(3):
    s.sendto(msg, ("224.0.0.251", 5353))
"#;
    let fake = "5a".repeat(32);
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.names[i], "python3", "-c", SCRIPT])
        .arg(ns.addrs[i].to_string())
        .arg(victim.ip().to_string())
        .arg(victim.port().to_string())
        .arg(&fake)
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "forging failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn nodes_on_one_lan_find_each_other_and_shrug_off_forged_announcements() {
    let Some(ns) = netns_or_skip("LAN discovery test", "d", 1) else {
        return;
    };
    let sandbox = Sandbox::new();
    sandbox.write_config(CONFIG);
    // Started together, neither with a bootstrap: they must end in one ring, not two.
    let nodes = [start(&sandbox, &ns, 0), start(&sandbox, &ns, 1)];
    let formed = poll(Duration::from_secs(30), Duration::from_millis(200), || {
        one_ring(&sandbox, &nodes).then_some(())
    });
    assert!(
        formed.is_some(),
        "no single ring; logs:\n{}\n---\n{}",
        nodes[0].daemon.log(),
        nodes[1].daemon.log()
    );
    // Each lists the other as seen on the LAN, and connected.
    let (b_id, _) = ring_of(&sandbox, &nodes[1].socket).expect("ring");
    let seen = json(&sandbox, &nodes[0].socket, &["discover", "--json"]).expect("discover");
    assert_eq!(seen["enabled"], true);
    let peers = seen["peers"].as_array().expect("peers");
    assert!(
        peers
            .iter()
            .any(|p| p["node_id"] == b_id.as_str() && p["connected"] == true),
        "{seen}"
    );
    // A message sent on one shows on the other.
    let sent = sandbox.chatctl_at(&nodes[0].socket, &["send", "hello across the veth"]);
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let shown = poll(Duration::from_secs(15), Duration::from_millis(200), || {
        let out = sandbox.chatctl_at(&nodes[1].socket, &["tail", "--json"]);
        String::from_utf8_lossy(&out.stdout)
            .contains("hello across the veth")
            .then_some(())
    });
    assert!(
        shown.is_some(),
        "the message did not reach the other namespace"
    );

    // Forged announcements from b's namespace: garbage is counted, the spoofed id (at b's
    // real address) is listed but refused on contact (b's certificate proves another id).
    let b_addr = json(&sandbox, &nodes[1].socket, &["status", "--json"]).expect("status");
    let port: u16 = b_addr["listen_addr"]
        .as_str()
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .expect("port");
    let victim = std::net::SocketAddr::new(ns.addrs[1].into(), port);
    let fake = "5a".repeat(32);
    let counted = poll(Duration::from_secs(15), Duration::from_millis(300), || {
        forge(&ns, 1, victim);
        let d = json(&sandbox, &nodes[0].socket, &["discover", "--json"])?;
        let spoof_listed = d["peers"]
            .as_array()?
            .iter()
            .any(|p| p["node_id"] == fake.as_str());
        (d["ignored_announcements"].as_u64()? >= 1 && spoof_listed).then_some(d)
    });
    assert!(counted.is_some(), "the forged announcements were not seen");
    // The spoofed id is offered to the overlay as a merge hint within a few hint periods; the
    // dial fails the certificate check, and the ring stays as it was.
    let refused = poll(Duration::from_secs(40), Duration::from_millis(300), || {
        let s = json(&sandbox, &nodes[0].socket, &["status", "--json"])?;
        (s["dropped"]["peer_id_mismatch"].as_u64()? >= 1).then_some(())
    });
    assert!(
        refused.is_some(),
        "the spoofed peer was never refused:\n{}",
        nodes[0].daemon.log()
    );
    assert!(
        one_ring(&sandbox, &nodes),
        "the ring changed after forged announcements"
    );
    let status = json(&sandbox, &nodes[0].socket, &["status", "--json"]).expect("status");
    assert_eq!(status["joined"], true);
}

#[test]
fn an_unresolvable_bootstrap_name_is_retried_with_a_clear_status() {
    let Some(ns) = netns_or_skip("LAN discovery test", "u", 2) else {
        return;
    };
    let sandbox = Sandbox::new();
    sandbox.write_config(CONFIG);
    let dir = sandbox.path().join("unresolvable");
    let socket = dir.join("run/control.sock");
    let mut cmd = sandbox.chatd_bare();
    cmd.arg("--config")
        .arg(sandbox.config())
        .args(["--listen", "127.0.0.1:0"])
        .args(["--bootstrap", "no-such-host.invalid:7400"])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--control")
        .arg(&socket);
    let daemon = sandbox.start(ns.wrap(0, &cmd), &socket);
    // The status names the name and when it is tried again; later rounds resolve it again.
    let mut retries = Vec::new();
    let seen = poll(Duration::from_secs(20), Duration::from_millis(200), || {
        let s = json(&sandbox, &socket, &["status", "--json"])?;
        let at = s["bootstrap_retry_at_unix_ms"].as_u64()?;
        let reason = s["bootstrap_retry_reason"].as_str()?.to_owned();
        if at > 0 && !retries.contains(&at) {
            retries.push(at);
        }
        (retries.len() >= 2 && s["joined"] == false).then_some(reason)
    });
    let reason = seen.unwrap_or_else(|| panic!("no retry status; log:\n{}", daemon.log()));
    assert!(
        reason.contains("no-such-host.invalid:7400") && reason.contains("resolve"),
        "{reason}"
    );
    let out = sandbox.chatctl_at(&socket, &["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("no-such-host.invalid:7400"), "{text}");
}
