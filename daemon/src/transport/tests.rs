//! In-process tests of the transport: two endpoints on loopback.

use std::time::Duration;

use chat_overlay::ring::RingNotice;
use chat_overlay::wire::{Message, Notice};
use ed25519_dalek::SigningKey;
use tokio::sync::mpsc;

use super::*;

fn node(
    seed: u8,
) -> (
    Transport<Message>,
    mpsc::Receiver<Inbound<Message>>,
    SigningKey,
) {
    let key = SigningKey::from_bytes(&[seed; 32]);
    let (tx, rx) = mpsc::channel(64);
    let cfg = Config::new("127.0.0.1:0".parse().expect("addr"), 8);
    let t = Transport::bind(&key, cfg, tx).expect("binds");
    (t, rx, key)
}

fn peer_of(t: &Transport<Message>) -> Peer {
    Peer {
        id: t.me(),
        addr: t.local_addr().expect("addr"),
    }
}

async fn next(rx: &mut mpsc::Receiver<Inbound<Message>>) -> Inbound<Message> {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("in time")
        .expect("open")
}

#[tokio::test]
async fn messages_carry_the_certified_sender_both_ways_on_one_connection() {
    let (a, mut a_rx, _) = node(1);
    let (b, mut b_rx, _) = node(2);
    a.send(
        peer_of(&b),
        &Message::Notice(Notice::Ring(RingNotice::Notify)),
    );
    match next(&mut b_rx).await {
        Inbound::Message { from, msg, .. } => {
            assert_eq!(from.id, a.me());
            assert_eq!(from.addr, a.local_addr().expect("addr"));
            assert_eq!(msg, Message::Notice(Notice::Ring(RingNotice::Notify)));
        }
        other => panic!("unexpected {other:?}"),
    }
    b.send(
        peer_of(&a),
        &Message::Notice(Notice::Ring(RingNotice::Notify)),
    );
    assert!(matches!(next(&mut a_rx).await, Inbound::Message { from, .. } if from.id == b.me()));
    assert_eq!(a.peers().len(), 1, "one connection, reused");
    assert_eq!(b.peers().len(), 1);
    assert_eq!(a.peers()[0].id, b.me());
}

#[tokio::test]
async fn a_peer_with_another_key_than_expected_is_refused() {
    let (a, mut a_rx, _) = node(3);
    let (b, _b_rx, _) = node(4);
    let (c, _c_rx, _) = node(5);
    // A believes C lives at B's address: B's certificate proves B, not C.
    let wrong = Peer {
        id: c.me(),
        addr: b.local_addr().expect("addr"),
    };
    a.send(wrong, &Message::Notice(Notice::Ring(RingNotice::Notify)));
    assert!(matches!(next(&mut a_rx).await, Inbound::Unreachable(id) if id == c.me()));
    assert_eq!(a.drops().get(Reason::PeerIdMismatch), 1);
    assert!(a.peers().is_empty());
    // First contact learns B's real id.
    let learned = a
        .first_contact(b.local_addr().expect("addr"))
        .await
        .expect("contact");
    assert_eq!(learned.id, b.me());
    // Dialling oneself is recognised.
    let me = a.first_contact(a.local_addr().expect("addr")).await;
    assert!(matches!(me, Err(TransportError::SelfDial { .. })), "{me:?}");
}

#[tokio::test]
async fn bad_frames_close_only_the_offending_connection() {
    let (a, mut a_rx, _) = node(6);
    let (bad, _bad_rx, _) = node(7);
    let (good, _good_rx, _) = node(8);
    let target = a.local_addr().expect("addr");
    for (payload, reason) in [
        (u32::MAX.to_be_bytes().to_vec(), Reason::OversizedFrame),
        (
            [&3u32.to_be_bytes()[..], &[0xff, 0xff, 0xff]].concat(),
            Reason::UndecodableFrame,
        ),
        (vec![0, 0, 0, 9, 1], Reason::TruncatedFrame),
    ] {
        let conn = bad
            .dial_raw(target, Expect::Id(a.me()))
            .await
            .expect("dial");
        let mut s = conn.open_uni().await.expect("stream");
        s.write_all(&payload).await.expect("write");
        s.finish().expect("finish");
        let closed = tokio::time::timeout(Duration::from_secs(10), conn.closed())
            .await
            .expect("closed by the peer");
        assert!(
            matches!(closed, quinn::ConnectionError::ApplicationClosed(ref c) if c.error_code == quinn::VarInt::from_u32(close::PROTOCOL)),
            "{closed:?}"
        );
        assert_eq!(a.drops().get(reason), 1, "{reason:?}");
    }
    good.send(
        peer_of(&a),
        &Message::Notice(Notice::Ring(RingNotice::Notify)),
    );
    assert!(matches!(next(&mut a_rx).await, Inbound::Message { from, .. } if from.id == good.me()));
}

#[tokio::test]
async fn a_full_pool_evicts_an_idle_unproven_peer_to_admit_a_new_one() {
    let key = SigningKey::from_bytes(&[20; 32]);
    let (tx, _a_rx) = mpsc::channel(64);
    let mut cfg = Config::new("127.0.0.1:0".parse().expect("addr"), 2);
    cfg.evict_grace = Duration::from_millis(1500);
    let a: Transport<Message> = Transport::bind(&key, cfg, tx).expect("binds");
    let target = a.local_addr().expect("addr");
    let (x, _x_rx, _) = node(21);
    let (y, _y_rx, _) = node(22);
    let (z, _z_rx, _) = node(23);
    // Two peers take both places and idle; X is in the ring's routing state, Y only connected.
    x.first_contact(target).await.expect("x connects");
    y.first_contact(target).await.expect("y connects");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    // A registers each once its side of the handshake is done too.
    while a.peers().len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "A holds {:?}",
            a.peers()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let full_at = std::time::Instant::now();
    a.set_routing([x.me()]);
    // Within the grace period nobody is evicted: Z is refused.
    let early = z.first_contact(target).await;
    if full_at.elapsed() < Duration::from_millis(1500) {
        assert!(early.is_err(), "admitted within the grace period");
        assert!(a.drops().get(Reason::ConnectionLimit) >= 1);
    }
    // Then Z gets in, in Y's place (X is protected as a routing peer).
    while z.first_contact(target).await.is_err() {
        assert!(std::time::Instant::now() < deadline, "Z never got in");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut want = vec![x.me(), z.me()];
    want.sort();
    loop {
        // A registers Z once its side of the handshake is done too.
        let ids: Vec<NodeId> = a.peers().iter().map(|p| p.id).collect();
        if ids == want {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "A holds {ids:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(a.drops().get(Reason::Evicted), 1);
}
