//! End-to-end tests of the foundation: chatd and chatctl as processes, talking over a Unix
//! socket in a temporary directory.

mod support;

#[path = "foundation/config.rs"]
mod config;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::process::Signal;
use support::{Sandbox, wait_until};

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .expect("exists")
        .permissions()
        .mode()
        & 0o777
}

pub(crate) fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn status_json(sandbox: &Sandbox, socket: &Path) -> serde_json::Value {
    let out = sandbox.chatctl_at(socket, &["status", "--json"]);
    assert!(
        out.status.success(),
        "chatctl status --json failed: {}",
        stderr(&out)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

#[test]
fn chatctl_status_human_and_json() {
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.chatd();
    cmd.args(["--nick", "alice"]);
    let daemon = sandbox.start(cmd, &sandbox.socket());

    let json = status_json(&sandbox, &sandbox.socket());
    let object = json.as_object().expect("an object");
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "bootstrap_retry_at_unix_ms",
            "bootstrap_retry_reason",
            "control_connections",
            "dropped",
            "file_store",
            "joined",
            "listen_addr",
            "messages_forwarded",
            "messages_received",
            "messages_sent",
            "nickname",
            "nickname_note",
            "node_id",
            "peers_connected",
            "predecessor",
            "presence",
            "private_received",
            "private_sent",
            "records_bytes",
            "records_held",
            "ring_size_estimate",
            "ring_size_exact",
            "subscriptions",
            "successor",
            "uptime_seconds",
            "user_id",
            "version",
            "web_clients"
        ]
    );
    let node_id = json["node_id"].as_str().expect("node_id is a string");
    assert_eq!(node_id.len(), 64);
    assert!(node_id.parse::<chat_overlay::NodeId>().is_ok());
    // The nickname is claimed on the network just after the node founds its ring.
    let claimed = support::poll(Duration::from_secs(20), Duration::from_millis(100), || {
        let s = status_json(&sandbox, &sandbox.socket());
        (s["nickname"] == "alice").then_some(s)
    });
    let claimed = claimed.expect("the nickname alice is claimed");
    assert_eq!(claimed["nickname_note"], "");
    assert_eq!(claimed["presence"], "online");
    assert_eq!(claimed["user_id"].as_str().map(str::len), Some(64));
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    assert!(json["uptime_seconds"].as_u64().is_some());
    let listen: std::net::SocketAddr = json["listen_addr"]
        .as_str()
        .expect("string")
        .parse()
        .expect("an address");
    assert_eq!(listen.ip().to_string(), "127.0.0.1");
    assert_ne!(listen.port(), 0, "the real bound port is reported");
    // Clients connected: this very call, and nobody subscribed.
    assert!(json["control_connections"].as_u64() >= Some(1), "{json}");
    assert_eq!(json["subscriptions"], 0);
    assert_eq!(json["private_sent"], 0);
    // The blob store: empty, within its bounds.
    let store = &json["file_store"];
    assert_eq!(store["files"], 0, "{json}");
    assert_eq!(store["pinned_files"], 0, "{json}");
    assert!(store["quota_bytes"].as_u64() > Some(0), "{json}");
    assert!(store["max_file_bytes"].as_u64() > Some(0), "{json}");

    let out = sandbox.chatctl_at(&sandbox.socket(), &["status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        node_id,
        "alice",
        &listen.to_string(),
        env!("CARGO_PKG_VERSION"),
        "uptime",
        "0 sent, 0 received",
        "subscriptions",
        "control connections",
        "0 held, 0 B of ",
        "0 pinned (0 B)",
        "0 B served, 0 B fetched, 0 failed fetches, 0 released",
    ] {
        assert!(text.contains(want), "human output lacks {want:?}:\n{text}");
    }

    // CHATCTL_SOCKET works as well as --socket.
    let out = sandbox
        .chatctl()
        .env("CHATCTL_SOCKET", sandbox.socket())
        .arg("status")
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    drop(daemon);
}

#[test]
fn chatctl_finds_chatd_at_the_shared_default_socket() {
    let sandbox = Sandbox::new();
    let socket = sandbox.default_socket();
    assert!(!socket.parent().expect("dir").exists());
    let mut cmd = sandbox.chatd_bare();
    cmd.arg("--config")
        .arg(sandbox.config())
        .args(["--listen", "127.0.0.1:0"]);
    let daemon = sandbox.start(cmd, &socket);
    assert_eq!(
        mode(socket.parent().expect("dir")),
        0o700,
        "socket directory created 0700"
    );
    assert_eq!(mode(&socket), 0o660);
    let key = sandbox.home().join(".local/share/chatd/node.key");
    assert_eq!(
        mode(&key),
        0o600,
        "key created in the default data directory"
    );

    let out = sandbox
        .chatctl()
        .args(["status", "--json"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "no --socket: {}", stderr(&out));
    drop(daemon);
}

#[test]
fn chatctl_without_daemon_says_so() {
    let sandbox = Sandbox::new();
    let out = sandbox.chatctl().arg("status").output().expect("runs");
    assert_eq!(out.status.code(), Some(3));
    let want = format!(
        "cannot reach chatd at {} — is it running?",
        sandbox.default_socket().display()
    );
    assert!(stderr(&out).contains(&want), "{}", stderr(&out));
}

#[test]
fn identity_persists_across_restarts() {
    let sandbox = Sandbox::new();
    let mut first = sandbox.start(sandbox.chatd(), &sandbox.socket());
    let id1 = status_json(&sandbox, &sandbox.socket())["node_id"].clone();
    first.signal(Signal::TERM);
    assert!(
        first
            .wait_exit(Duration::from_secs(2))
            .is_some_and(|s| s.success())
    );
    let key = sandbox.data_dir().join("node.key");
    let key_bytes = std::fs::read(&key).expect("key file");
    assert_eq!(mode(&key), 0o600);

    let _second = sandbox.start(sandbox.chatd(), &sandbox.socket());
    let id2 = status_json(&sandbox, &sandbox.socket())["node_id"].clone();
    assert_eq!(id1, id2, "same node id after a restart");
    assert_eq!(
        std::fs::read(&key).expect("key file"),
        key_bytes,
        "key file unchanged"
    );
}

#[test]
fn bad_key_files_are_refused_and_left_alone() {
    // A corrupt key.
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(sandbox.data_dir()).expect("data dir");
    let key = sandbox.data_dir().join("node.key");
    std::fs::write(&key, "chatd-node-key v1\nsecret zz\n").expect("write");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let out = sandbox.run(sandbox.chatd());
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("key file {} is corrupt", key.display())),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&key).expect("read"),
        b"chatd-node-key v1\nsecret zz\n"
    );
    assert!(!sandbox.socket().exists(), "no socket left behind");

    // A valid key readable by others.
    let sandbox = Sandbox::new();
    drop(sandbox.start(sandbox.chatd(), &sandbox.socket()));
    let key = sandbox.data_dir().join("node.key");
    let before = std::fs::read(&key).expect("read");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = sandbox.run(sandbox.chatd());
    assert_eq!(out.status.code(), Some(77), "EX_NOPERM");
    let err = stderr(&out);
    assert!(
        err.contains("has mode 0644") && err.contains("chmod 600"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert_eq!(std::fs::read(&key).expect("read"), before);
    assert_eq!(mode(&key), 0o644);
}

#[test]
fn signals_stop_chatd_cleanly_and_remove_the_socket() {
    for signal in [Signal::TERM, Signal::INT] {
        let sandbox = Sandbox::new();
        let mut daemon = sandbox.start(sandbox.chatd(), &sandbox.socket());
        let sent = Instant::now();
        daemon.signal(signal);
        let status = daemon.wait_exit(Duration::from_secs(2));
        assert!(
            status.is_some(),
            "{signal:?}: still running after 2 s; log:\n{}",
            daemon.log()
        );
        assert!(
            status.is_some_and(|s| s.success()),
            "{signal:?}: {status:?}; log:\n{}",
            daemon.log()
        );
        assert!(sent.elapsed() < Duration::from_secs(2));
        assert!(!sandbox.socket().exists(), "{signal:?}: socket removed");
    }
}

#[test]
fn a_stale_socket_is_replaced() {
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(sandbox.socket().parent().expect("dir")).expect("dir");
    drop(std::os::unix::net::UnixListener::bind(sandbox.socket()).expect("bind"));
    assert!(sandbox.socket().exists());
    let _daemon = sandbox.start(sandbox.chatd(), &sandbox.socket());
    status_json(&sandbox, &sandbox.socket());
}

#[test]
fn a_second_chatd_is_refused() {
    let sandbox = Sandbox::new();
    let _first = sandbox.start(sandbox.chatd(), &sandbox.socket());
    let id = status_json(&sandbox, &sandbox.socket())["node_id"].clone();

    // Same socket, other data directory.
    let mut cmd = sandbox.chatd();
    cmd.arg("--data-dir").arg(sandbox.path().join("data2"));
    let out = sandbox.run(cmd);
    assert_eq!(out.status.code(), Some(1));
    let want = format!(
        "control socket {} is in use: another chatd is already serving on it",
        sandbox.socket().display()
    );
    assert!(stderr(&out).contains(&want), "{}", stderr(&out));

    // Same data directory, other socket.
    let mut cmd = sandbox.chatd();
    cmd.arg("--control").arg(sandbox.path().join("other.sock"));
    let out = sandbox.run(cmd);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is in use by another chatd"),
        "{}",
        stderr(&out)
    );

    assert_eq!(
        status_json(&sandbox, &sandbox.socket())["node_id"],
        id,
        "first chatd unharmed"
    );
}

#[test]
fn a_busy_listen_port_is_reported() {
    let sandbox = Sandbox::new();
    let busy = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = busy.local_addr().expect("addr");
    let mut cmd = sandbox.chatd();
    cmd.arg("--listen").arg(addr.to_string());
    let out = sandbox.run(cmd);
    assert_eq!(out.status.code(), Some(75), "EX_TEMPFAIL");
    assert!(
        stderr(&out).contains(&format!("node.listen: cannot bind UDP {addr}")),
        "{}",
        stderr(&out)
    );
    assert!(
        !sandbox.socket().exists(),
        "socket removed on a failed start"
    );
}

#[test]
fn socket_in_a_missing_directory_is_created_private() {
    let sandbox = Sandbox::new();
    let socket = sandbox.path().join("a/b/c/control.sock");
    let mut cmd = sandbox.chatd();
    cmd.arg("--control").arg(&socket);
    let mut daemon = sandbox.start(cmd, &socket);
    for dir in ["a", "a/b", "a/b/c"] {
        assert_eq!(mode(&sandbox.path().join(dir)), 0o700, "{dir}");
    }
    assert_eq!(mode(&socket), 0o660);
    daemon.signal(Signal::TERM);
    assert!(
        daemon
            .wait_exit(Duration::from_secs(2))
            .is_some_and(|s| s.success())
    );
    assert!(wait_until(Duration::from_secs(1), || !socket.exists()));
}
