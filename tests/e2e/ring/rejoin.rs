//! Finding the ring again after a restart: a node whose configured bootstrap is down rejoins
//! through the peers it remembered (`peers` in its data directory), and a founder restarted
//! without a bootstrap rejoins its old ring instead of founding a second one.

use std::time::Duration;

use rustix::process::Signal;

use crate::cluster::{Cluster, poll};

fn kill(c: &mut Cluster, i: usize) {
    let d = c.members[i].daemon.as_mut().expect("running");
    d.signal(Signal::KILL);
    d.wait_exit(Duration::from_secs(10)).expect("killed");
    c.members[i].daemon = None;
}

/// Waits until member `i` has written the ids of `others` to its remembered peers.
fn remembers(c: &Cluster, i: usize, others: &[usize]) {
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
    kill(&mut c, d);
    kill(&mut c, a);
    let bootstrap = c.addr(a);
    c.restart(d, &[bootstrap]);
    c.await_ring(Duration::from_secs(60));
    // a, the founder, comes back without any bootstrap: it rejoins b and d rather than
    // founding a ring of its own.
    c.restart(a, &[]);
    c.await_ring(Duration::from_secs(60));
    assert_eq!(c.live().len(), 3);
}
