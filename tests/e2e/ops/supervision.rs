//! Supervision of the work chatd starts beside the overlay driver (daemon/src/supervise.rs): a
//! supervised task that dies stops the daemon with exit status 1 (systemd restarts it), and a
//! supervised thread that panics is restarted and counted on `/metrics`. Faults are injected
//! by test builds through `CHAT_TEST_FAULT`.

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::{START_DEADLINE, Sandbox, wait_until};

fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// Starts chatd with the fault `what` injected and asserts it stops with status 1, logging
/// `line`.
fn a_fault_ends_the_daemon(what: &str, line: &str) {
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.chatd();
    cmd.env("CHAT_TEST_FAULT", what);
    let mut daemon = sandbox.spawn(cmd, &sandbox.socket());
    let status = daemon.wait_exit(START_DEADLINE);
    let log = daemon.log();
    let status = status.unwrap_or_else(|| panic!("chatd kept running:\n{log}"));
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains(line), "{log}");
}

/// The task taking private messages delivered directly dies: without supervision the overlay
/// would keep acknowledging bodies nobody reads; with it the daemon stops with status 1.
#[test]
fn a_dead_direct_delivery_intake_ends_the_daemon_with_an_error() {
    a_fault_ends_the_daemon(
        "direct-intake",
        "the private direct deliveries panicked unexpectedly",
    );
}

/// The chat store's thread dies: the driver would wait for room that never comes and shown
/// messages would never be stored; instead the daemon stops with status 1.
#[test]
fn a_dead_chat_store_thread_ends_the_daemon_with_an_error() {
    a_fault_ends_the_daemon(
        "chat-store",
        "the chat store thread panicked; stopping the daemon",
    );
}

/// The WAL checkpointer panics: it is restarted (the log stays bounded), the daemon runs on,
/// and `/metrics` counts the restart.
#[test]
fn a_panicking_checkpointer_is_restarted_and_counted() {
    let sandbox = Sandbox::new();
    let web = free_port();
    sandbox.write_config(&format!("[web]\nlisten = \"{web}\"\n"));
    let mut cmd = sandbox.chatd();
    cmd.env("CHAT_TEST_FAULT", "checkpointer");
    let mut daemon = sandbox.start(cmd, &sandbox.socket());
    let line = "chatd_restarts_total{what=\"the WAL checkpointer\"} 1";
    let mut metrics = String::new();
    let counted = wait_until(START_DEADLINE, || {
        metrics = http_get(web, "/metrics");
        metrics.contains(line)
    });
    let log = daemon.log();
    assert!(counted, "no {line} in /metrics:\n{metrics}\n{log}");
    assert!(
        log.contains("the WAL checkpointer panicked; restarting it"),
        "{log}"
    );
    assert!(
        daemon.wait_exit(Duration::ZERO).is_none(),
        "chatd stopped:\n{log}"
    );
    // Still serving.
    let out = sandbox.chatctl_at(&sandbox.socket(), &["status"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
