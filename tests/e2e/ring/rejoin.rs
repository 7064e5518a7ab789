//! Finding the ring again after a restart: a node whose configured bootstrap is down rejoins
//! through the peers it remembered (`peers` in its data directory), and a founder restarted
//! without a bootstrap rejoins its old ring instead of founding a second one.

use std::time::Duration;

use crate::cluster::{Cluster, poll};

/// Waits until member `i` has written the ids of `others` to its remembered peers.
pub fn remembers(c: &Cluster, i: usize, others: &[usize]) {
    let file = c.members[i].dir.join("data/peers");
    let ok = poll(Duration::from_secs(30), Duration::from_millis(200), || {
        let text = std::fs::read_to_string(&file).ok()?;
        others
            .iter()
            .all(|o| text.contains(&c.members[*o].id))
            .then_some(())
    });
    assert!(ok.is_some(), "member {i} did not remember {others:?}");
}

#[test]
fn a_restarted_node_rejoins_through_remembered_peers() {
    let mut c = Cluster::new(9);
    let a = c.add(&[]);
    let b = c.add(&[c.addr(a)]);
    let d = c.add(&[c.addr(a)]);
    c.await_ring(Duration::from_secs(60));
    remembers(&c, d, &[a, b]);
    remembers(&c, a, &[b, d]);
    // The bootstrap (a) and d go down; d comes back with only a as its bootstrap.
    c.kill(d);
    c.kill(a);
    let bootstrap = c.addr(a);
    c.restart(d, &[bootstrap]);
    c.await_ring(Duration::from_secs(60));
    // a, the founder, comes back without any bootstrap: it rejoins b and d rather than
    // founding a ring of its own.
    c.restart(a, &[]);
    c.await_ring(Duration::from_secs(60));
    assert_eq!(c.live().len(), 3);
}

#[test]
fn a_bootstrap_by_host_name_works() {
    let mut c = Cluster::new(10);
    let dir = c.sandbox.path().join("named-a");
    let a = c.start_at(dir, "127.0.0.1:0".parse().expect("addr"), &[], Vec::new());
    let port = c.addr(a).port();
    let name = format!("localhost:{port}");
    c.add_with_env(&[], &[("CHATD_NODE__BOOTSTRAP", name.as_str())]);
    c.await_ring(Duration::from_secs(60));
}

#[test]
fn an_unreachable_bootstrap_is_retried_and_says_so() {
    let mut c = Cluster::new(11);
    // Nothing listens there (loopback only).
    let nobody: std::net::SocketAddr = "127.0.11.99:9".parse().expect("addr");
    let i = c.add(&[nobody]);
    let status = poll(Duration::from_secs(20), Duration::from_millis(200), || {
        c.status(i)
            .filter(|s| s["bootstrap_retry_at_unix_ms"].as_u64().unwrap_or(0) > 0)
    })
    .expect("the status names the retry");
    assert!(!status["joined"].as_bool().unwrap_or(true));
    let reason = status["bootstrap_retry_reason"].as_str().unwrap_or("");
    assert!(reason.contains("127.0.11.99:9"), "{reason}");
    let out = c
        .sandbox
        .chatctl_at(&c.members[i].dir.join("run/control.sock"), &["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("unreachable, retrying in"), "{text}");
}
