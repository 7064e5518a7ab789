//! A full inbound QUIC pool: fresh keys that connect and then only idle (QUIC keepalives
//! hold their connections open) take every place of a node's connection pool. A real node
//! must still be able to join through that node: the pool evicts an idle connection that is
//! not in the ring's routing state rather than refusing everyone new.

use std::time::Duration;

use chat_overlay::wire::Message;
use chatd::transport::{self, Transport};
use ed25519_dalek::SigningKey;

use crate::cluster::{Cluster, poll};

/// The pool's size on the attacked node (the smallest `transport.max_connections` allowed).
const POOL: usize = 8;

#[test]
fn fresh_keys_holding_the_pool_do_not_keep_a_real_node_out() {
    let mut c = Cluster::new(31);
    let pool = POOL.to_string();
    let a = c.add_with_env(&[], &[("CHATD_TRANSPORT__MAX_CONNECTIONS", &pool)]);
    let target = c.addr(a);

    // The holders: POOL fresh keys, each from its own endpoint, connect and idle until told
    // to stop (their runtime keeps answering keepalives meanwhile).
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let holders = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let mut keep = Vec::new();
            let mut connected = 0;
            for i in 0..POOL {
                let key = SigningKey::from_bytes(&[200 - i as u8; 32]);
                let (tx, rx) = tokio::sync::mpsc::channel(8);
                let cfg = transport::Config::new("127.0.31.200:0".parse().expect("addr"), 4);
                let t: Transport<Message> = Transport::bind(&key, cfg, tx).expect("bind");
                if t.first_contact(target).await.is_ok() {
                    connected += 1;
                }
                keep.push((t, rx));
            }
            let _ = ready_tx.send(connected);
            let _ = stop_rx.await;
            drop(keep);
        });
    });
    let held = ready_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the holders connected");
    assert_eq!(held, POOL, "every holder got a place");
    let full = poll(Duration::from_secs(20), Duration::from_millis(200), || {
        let peers = c.json(&c.members[a].dir, &["peers", "--json"])?;
        let n = peers["peers"].as_array().map_or(0, Vec::len);
        (n == POOL).then_some(())
    });
    assert!(full.is_some(), "the holders fill node a's pool");

    // A real node joins through the full node: it is refused while the holders are within
    // their grace period, then admitted in an idle holder's place.
    let b = c.add(&[target]);
    c.await_ring(Duration::from_secs(90));
    assert!(
        c.dropped(a, "evicted_idle") >= 1,
        "{:?}",
        c.status(a).map(|s| s["dropped"].clone())
    );
    // Node a keeps its connection to node b (a routing peer now, never evicted for an inbound
    // connection).
    let peers = c
        .json(&c.members[a].dir, &["peers", "--json"])
        .expect("peers");
    assert!(
        peers.to_string().contains(&c.members[b].id),
        "node a lists node b: {peers}"
    );
    let _ = stop_tx.send(());
    holders.join().expect("holders");
}
