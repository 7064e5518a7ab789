//! Hostile peers: a certificate for another key than expected, random UDP datagrams, and
//! malformed or oversized frames inside an authenticated connection.

use std::time::Duration;

use chat_overlay::wire::Message;
use chatd::transport::{self, Expect, Transport};

use crate::cluster::{Cluster, poll};

const FORM: Duration = Duration::from_secs(45);

#[test]
fn a_peer_with_another_key_at_a_known_address_is_refused() {
    let mut c = Cluster::new(2);
    let a = c.add(&[]);
    for _ in 0..3 {
        c.add(&[c.addr(a)]);
    }
    c.await_ring(FORM);
    // Node 3 crashes; an impostor with a new key takes its address. The others still try to
    // reach node 3's NodeId there, and must refuse the impostor's certificate.
    let victim = 3;
    c.members[victim].daemon = None;
    let listen = c.addr(victim);
    let dir = c.sandbox.path().join("impostor");
    let impostor = c.start_at(dir, listen, &[c.addr(a)], Vec::new());
    assert_ne!(c.members[impostor].id, c.members[victim].id);
    let refused = poll(Duration::from_secs(30), Duration::from_millis(200), || {
        let n: u64 = (0..3).map(|i| c.dropped(i, "peer_id_mismatch")).sum();
        (n > 0).then_some(n)
    });
    assert!(
        refused.is_some(),
        "no node refused the impostor's certificate"
    );
    c.await_ring(FORM);
    // Stale fingers and list entries age out within a few refresh rounds.
    let gone = poll(FORM, Duration::from_millis(250), || {
        let ring = c.json(&c.members[0].dir, &["ring", "--json"])?;
        // The routing state only: `known` lists every node met lately, the old one included.
        let routing = [&ring["predecessor"], &ring["successors"], &ring["fingers"]];
        (!routing
            .iter()
            .any(|v| v.to_string().contains(&c.members[victim].id)))
        .then_some(())
    });
    assert!(
        gone.is_some(),
        "the old NodeId is still in node 0's ring state"
    );
}

#[test]
fn garbage_and_bad_frames_close_only_that_connection() {
    let mut c = Cluster::new(3);
    let a = c.add(&[]);
    c.add(&[c.addr(a)]);
    c.add(&[c.addr(a)]);
    c.await_ring(FORM);
    let target = c.addr(a);

    // Random datagrams: QUIC discards them.
    let udp = std::net::UdpSocket::bind("127.0.3.200:0").expect("udp");
    let mut x: u64 = 0x1234_5678;
    for len in [1usize, 20, 1200, 1500, 3] {
        let junk: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        udp.send_to(&junk, target).expect("send");
    }

    // An authenticated peer that sends an oversized frame, then one that sends garbage CBOR.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let key = ed25519_dalek::SigningKey::from_bytes(&[42; 32]);
        let (tx, _rx) = tokio::sync::mpsc::channel(8);
        let cfg = transport::Config::new("127.0.3.201:0".parse().expect("addr"), 8);
        let t: Transport<Message> = Transport::bind(&key, cfg, tx).expect("bind");
        let bad_frames: [Vec<u8>; 2] = [
            u32::MAX.to_be_bytes().to_vec(),
            [&4u32.to_be_bytes()[..], &[0xff, 0xfe, 0xfd, 0xfc]].concat(),
        ];
        for frame in bad_frames {
            let conn = t.dial_raw(target, Expect::Any).await.expect("handshake");
            let mut s = conn.open_uni().await.expect("stream");
            s.write_all(&frame).await.expect("write");
            s.finish().expect("finish");
            let closed = tokio::time::timeout(Duration::from_secs(10), conn.closed())
                .await
                .expect("the node closes the connection");
            assert!(
                matches!(closed, quinn::ConnectionError::ApplicationClosed(ref e)
                    if e.error_code == quinn::VarInt::from_u32(transport::close::PROTOCOL)),
                "{closed:?}"
            );
        }
    });

    let s = c.status(a).expect("node a still answers");
    assert!(
        s["dropped"]["oversized_frame"].as_u64().unwrap_or(0) >= 1,
        "{s}"
    );
    assert!(
        s["dropped"]["undecodable_frame"].as_u64().unwrap_or(0) >= 1,
        "{s}"
    );
    assert_eq!(s["joined"], true);
    // The other peers are unaffected: the ring is still correct and node a still talks to them.
    c.await_ring(Duration::from_secs(5));
    let peers = c
        .json(&c.members[a].dir, &["peers", "--json"])
        .expect("peers");
    let listed = peers["peers"].as_array().map(Vec::len).unwrap_or(0);
    assert!(listed >= 2, "node a keeps its ring peers: {peers}");
}
