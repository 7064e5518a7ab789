//! A whole network that stopped comes back by itself (issue 37): after every node of a ring
//! has stopped, the nodes that start again find each other through their remembered peers and
//! form one ring within 30 s — with the configured bootstrap dead, and with none configured.
//! Without the rule that the lowest waiting id founds, each asks the other to let it join and
//! neither ever is a member.

use std::time::{Duration, Instant};

use crate::cluster::Cluster;
use crate::rejoin::remembers;

/// How long a restarted subset may take to form one ring.
const BOUND: Duration = Duration::from_secs(30);

/// Stops member `i` with SIGTERM (a graceful leave) and waits for it to exit.
fn stop(c: &mut Cluster, i: usize) {
    if let Some(mut d) = c.members[i].daemon.take() {
        d.signal(rustix::process::Signal::TERM);
        d.wait_exit(Duration::from_secs(20)).expect("stopped");
    }
}

/// Three nodes: `a` founds on 127.0.0.1, `b` and `c` join through it by `localhost:PORT`;
/// returned once the ring is correct and each remembers the other two.
fn three(net: u8) -> Cluster {
    let mut c = Cluster::new(net);
    let dir = c.sandbox.path().join("a");
    let a = c.start_at(dir, "127.0.0.1:0".parse().expect("addr"), &[], Vec::new());
    let name = format!("localhost:{}", c.addr(a).port());
    let b = c.add_with_env(&[], &[("CHATD_NODE__BOOTSTRAP", name.as_str())]);
    let d = c.add_with_env(&[], &[("CHATD_NODE__BOOTSTRAP", name.as_str())]);
    c.await_ring(Duration::from_secs(60));
    remembers(&c, a, &[b, d]);
    remembers(&c, b, &[a, d]);
    remembers(&c, d, &[a, b]);
    c
}

#[test]
fn two_of_three_stopped_nodes_restarted_with_a_dead_bootstrap_form_one_ring() {
    let mut c = three(137);
    for i in 0..3 {
        stop(&mut c, i);
    }
    // b and c come back as they were configured: through a's address, now dead.
    let t = Instant::now();
    c.restart(1, &[]);
    c.restart(2, &[]);
    c.await_ring(BOUND);
    eprintln!(
        "2 of 3 restarted (dead bootstrap): one ring after {:?}",
        t.elapsed()
    );
    for i in [1, 2] {
        let s = c.status(i).expect("status");
        assert_eq!(s["joined"], true, "node {i}: {s}");
    }
}

#[test]
fn three_killed_nodes_restarted_without_a_bootstrap_form_one_ring() {
    let mut c = three(138);
    for i in 0..3 {
        c.kill(i);
    }
    // Nothing configured: each has only its remembered peers.
    let t = Instant::now();
    for i in [2, 0, 1] {
        c.members[i].env.clear();
        c.restart(i, &[]);
    }
    c.await_ring(BOUND);
    eprintln!(
        "3 of 3 restarted (no bootstrap): one ring after {:?}",
        t.elapsed()
    );
}
