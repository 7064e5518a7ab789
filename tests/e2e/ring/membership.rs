//! Forming a ring of twelve nodes, a graceful leave, crashes of a quarter, and a rejoin.

use std::time::Duration;

use rustix::process::Signal;

use crate::cluster::{Cluster, poll};

const FORM: Duration = Duration::from_secs(60);

#[test]
fn twelve_nodes_form_a_ring_leave_crash_and_rejoin() {
    let mut c = Cluster::new(1);
    let first = c.add(&[]);
    let seed = [c.addr(first)];
    for _ in 1..12 {
        c.add(&seed);
    }
    c.await_ring(FORM);
    for i in c.live() {
        let s = c.status(i).expect("status");
        assert_eq!(s["joined"], true, "node {i} reports joined");
        assert!(
            s["peers_connected"].as_u64().unwrap_or(0) >= 2,
            "node {i}: {s}"
        );
        assert!(!s["successor"].as_str().unwrap_or("").is_empty());
    }

    // SIGTERM: the node leaves gracefully, and its neighbours point at each other at once.
    let leaver = 5;
    let daemon = c.members[leaver].daemon.as_mut().expect("running");
    daemon.signal(Signal::TERM);
    let exit = daemon.wait_exit(Duration::from_secs(10)).expect("exits");
    assert!(exit.success(), "clean exit: {exit}");
    c.members[leaver].daemon = None;
    assert!(
        poll(Duration::from_secs(2), Duration::from_millis(50), || c
            .ring_error()
            .is_none()
            .then_some(()))
        .is_some(),
        "ring not repaired at once after a graceful leave: {:?}",
        c.ring_error()
    );

    // kill -9 of a quarter of the remaining nodes: the ring repairs.
    let crashed = [1, 4, 8];
    for &i in &crashed {
        c.members[i].daemon = None; // Daemon's drop kills with SIGKILL and reaps
    }
    c.await_ring(FORM);

    // A restarted node rejoins with the same NodeId.
    let old = c.members[4].id.clone();
    let back = c.restart(4, &[c.addr(0)]);
    assert_eq!(back, old, "same NodeId after a restart");
    c.await_ring(FORM);
}
