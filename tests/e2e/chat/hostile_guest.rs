//! A hostile TCP guest (the holder of `control.token_file`'s token) and a connection flood on
//! `control.tcp_listen`, against a real chatd: the guest cannot stop the node, cannot write
//! the records chatd's services own, and writes name claims only as its own account; the
//! private-message counters of `/metrics` need the token; thousands of idle TCP connections
//! leave the Unix socket answering and the daemon's descriptors bounded.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chat_proto::v1::node_service_client::NodeServiceClient;
use chat_proto::v1::record_service_client::RecordServiceClient;
use chat_proto::v1::{GetStatusRequest, LeaveRequest, PutRecordRequest};
use tonic::Code;
use tonic::transport::Channel;

use crate::client::{self, Bearer};
use crate::support::{Daemon, Sandbox, poll, wait_until};

const TOKEN: &str = "correct-horse-battery-staple";
const DEADLINE: Duration = Duration::from_secs(30);

fn free_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// A node with the control API on TCP (and the web view on `web`, if given).
fn node(sandbox: &Sandbox, web: Option<SocketAddr>) -> (Daemon, SocketAddr, PathBuf) {
    let token_file = sandbox.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("token");
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let addr = free_port();
    let mut config = format!(
        "[control]\ntcp_listen = \"{addr}\"\ntoken_file = \"{}\"\n",
        token_file.display()
    );
    if let Some(w) = web {
        config.push_str(&format!("[web]\nlisten = \"{w}\"\n"));
    }
    sandbox.write_config(&config);
    let daemon = sandbox.start(sandbox.chatd(), &sandbox.socket());
    assert!(
        wait_until(DEADLINE, || std::net::TcpStream::connect(addr).is_ok()),
        "TCP listener up"
    );
    (daemon, addr, token_file)
}

type Intercepted = tonic::service::interceptor::InterceptedService<Channel, Bearer>;

fn guest_node(channel: Channel) -> NodeServiceClient<Intercepted> {
    NodeServiceClient::with_interceptor(channel, Bearer(Some(TOKEN.into())))
}

fn guest_records(channel: Channel) -> RecordServiceClient<Intercepted> {
    RecordServiceClient::with_interceptor(channel, Bearer(Some(TOKEN.into())))
}

/// `chatctl status --json` on the Unix socket, and how long it took.
fn local_status(sandbox: &Sandbox) -> (Option<serde_json::Value>, Duration) {
    let started = Instant::now();
    let out = sandbox.chatctl_at(&sandbox.socket(), &["status", "--json"]);
    let took = started.elapsed();
    let json = out
        .status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten();
    (json, took)
}

/// A plain HTTP/1.1 GET of `path` on `addr`: the whole response.
fn http_get(addr: SocketAddr, path: &str, token: Option<&str>) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_guest_cannot_stop_the_node_or_write_what_services_own() {
    let sandbox = Sandbox::new();
    let web = free_port();
    let (mut daemon, addr, _) = node(&sandbox, Some(web));
    let channel = client::tcp(addr).await;

    // Leave: refused, and the node runs on.
    let err = guest_node(channel.clone())
        .leave(LeaveRequest {})
        .await
        .expect_err("a guest's Leave is refused");
    assert_eq!(err.code(), Code::PermissionDenied, "{}", err.message());
    assert!(
        daemon.wait_exit(Duration::from_secs(2)).is_none(),
        "chatd stopped after a guest's Leave: {}",
        daemon.log_tail(20)
    );
    let (status, _) = local_status(&sandbox);
    let status = status.expect("the Unix socket still answers");
    assert_eq!(status["joined"], true, "{status}");

    // Records a service owns: refused whatever the key (a presence epoch's included).
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    let epoch = chat_people::epoch::epoch_key(chat_people::epoch::epoch_of(now_ms));
    let mut records = guest_records(channel.clone());
    for (kind, key) in [
        ("mailbox", epoch.to_vec()),
        ("mailbox", vec![7; 32]),
        ("profile", Vec::new()),
        ("presence", Vec::new()),
        ("keys", Vec::new()),
    ] {
        let err = records
            .put_record(PutRecordRequest {
                kind: kind.into(),
                key,
                value: b"forged".to_vec(),
                ttl_seconds: 60,
            })
            .await
            .expect_err("refused");
        assert_eq!(
            err.code(),
            Code::PermissionDenied,
            "{kind}: {}",
            err.message()
        );
    }

    // A name claim is the guest's own: signed by its account, not by the node.
    let guest_id = guest_node(channel.clone())
        .get_status(GetStatusRequest {})
        .await
        .expect("guest status")
        .into_inner()
        .user_id;
    let put = records
        .put_record(PutRecordRequest {
            kind: "nick".into(),
            key: b"guest-claim".to_vec(),
            value: b"mine".to_vec(),
            ttl_seconds: 60,
        })
        .await
        .expect("a guest may claim a name")
        .into_inner();
    let owner = hex::encode(put.record.expect("record").owner);
    assert_eq!(
        owner, guest_id,
        "the claim is signed by the guest's account"
    );
    assert_ne!(owner, status["node_id"].as_str().unwrap_or_default());

    // /metrics on loopback: the private-message counters only with the token.
    let open = http_get(web, "/metrics", None);
    assert!(open.starts_with("HTTP/1.1 200"), "{open}");
    assert!(open.contains("chatd_messages_sent_total"), "{open}");
    assert!(!open.contains("chatd_private_sent"), "{open}");
    let with_token = http_get(web, "/metrics", Some(TOKEN));
    assert!(
        with_token.contains("chatd_private_sent_total"),
        "{with_token}"
    );
    assert!(with_token.contains("chatd_private_received_total"));
}

/// The daemon's open file descriptors.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn remote_status(sandbox: &Sandbox, addr: SocketAddr, token_file: &Path) -> bool {
    sandbox
        .chatctl()
        .args(["--remote", &addr.to_string(), "--token-file"])
        .arg(token_file)
        .args(["status", "--json"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_connection_flood_leaves_the_socket_answering() {
    /// Source addresses the flood comes from, and connections from each.
    const SOURCES: u8 = 40;
    const EACH: usize = 75;
    let sandbox = Sandbox::new();
    let (daemon, addr, token_file) = node(&sandbox, None);
    assert!(
        remote_status(&sandbox, addr, &token_file),
        "TCP works first"
    );
    let before = fds(daemon.pid());
    assert!(before > 0, "cannot count chatd's descriptors");

    // Idle connections that never send a byte, from 127.0.0.2.. (all loopback).
    let flood_began = Instant::now();
    let mut flood = Vec::new();
    for s in 0..SOURCES {
        let from = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 2 + s), 0));
        for _ in 0..EACH {
            let socket = tokio::net::TcpSocket::new_v4().expect("socket");
            socket.bind(from).expect("bind a loopback source");
            if let Ok(Ok(c)) =
                tokio::time::timeout(Duration::from_secs(2), socket.connect(addr)).await
            {
                flood.push(c);
            }
        }
    }
    assert!(
        flood.len() > 2000,
        "only {} connections opened",
        flood.len()
    );
    let opened = flood_began.elapsed();

    // The daemon holds at most its cap of them (the rest were closed on accept) — seen before
    // the first-request timeout could have closed any of them.
    let cap = chatd::control::tcp::MAX_CONNECTIONS;
    let early = chatd::control::tcp::FIRST_REQUEST_TIMEOUT - Duration::from_secs(2);
    assert!(
        opened < early,
        "opening the flood took {opened:?}: too slow to tell the cap from the timeout"
    );
    let bounded = poll(
        early - flood_began.elapsed().min(early),
        Duration::from_millis(100),
        || {
            let n = fds(daemon.pid());
            (n <= before + cap + 16).then_some(n)
        },
    );
    assert!(
        bounded.is_some(),
        "chatd holds {} descriptors with {} flood connections open (had {before})",
        fds(daemon.pid()),
        flood.len()
    );
    // ... and the Unix socket answers at once.
    let (status, took) = local_status(&sandbox);
    assert!(status.is_some(), "chatctl status failed during the flood");
    assert!(
        took < Duration::from_secs(5),
        "chatctl status took {took:?}"
    );

    // Once the flood is gone, a client with the token gets in again.
    drop(flood);
    assert!(
        wait_until(DEADLINE, || remote_status(&sandbox, addr, &token_file)),
        "TCP with the token did not work again after the flood"
    );
    assert!(
        wait_until(DEADLINE, || fds(daemon.pid()) <= before + 16),
        "descriptors not given back: {} (had {before})",
        fds(daemon.pid())
    );
}
