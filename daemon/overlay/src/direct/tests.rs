//! Tests of direct delivery: the receiver's checks on one node, the wire format, then sends on
//! simulated rings — to a live target, to itself, to a crashed one, to an id nobody has, over
//! the target's rate, too large — and a thousand-node ring with two thousand sends.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use proptest::prelude::*;
use rand::Rng;

use super::wire::{DirectRequest, DirectResponse, VERSION};
use super::*;
use crate::sim::{Sim, SimConfig, oracle};
use crate::wire::{self, DIRECT, Message, Notice, Opaque, Request, Response};
use crate::{ChordConfig, Event, Input, Output, Overlay, Time};

fn peer(i: u8) -> Peer {
    Peer {
        id: NodeId([i; 32]),
        addr: SocketAddr::from((Ipv4Addr::new(10, 0, 0, i), 7400)),
    }
}

fn deliver(id: u64, body: Vec<u8>) -> Message {
    Message::Request {
        id,
        body: Request::Direct(DirectRequest::Deliver { body }),
    }
}

/// A one-node ring: what it answers and raises for one request from `from`.
fn answer(node: &mut Overlay, now: Time, from: Peer, msg: Message) -> (Response, Vec<DirectEvent>) {
    let mut response = None;
    let mut events = Vec::new();
    for o in node.handle(now, Input::Message { from, msg }) {
        match o {
            Output::Send {
                msg: Message::Response { body, .. },
                ..
            } => response = Some(body),
            Output::Event(Event::Direct(e)) => events.push(e),
            _ => {}
        }
    }
    (response.expect("an answer"), events)
}

fn founded(cfg: ChordConfig) -> Overlay {
    let mut node = Overlay::new(peer(1), cfg, 7);
    node.handle(Time::ZERO, Input::Create);
    assert!(node.is_member());
    node
}

#[test]
fn the_receiver_delivers_once_per_request_and_refuses_oversized_bodies() {
    let mut node = founded(ChordConfig::default());
    let t = Time::ZERO + Duration::from_secs(1);
    let (r, ev) = answer(&mut node, t, peer(2), deliver(5, b"sealed".to_vec()));
    assert_eq!(r, Response::Direct(DirectResponse::Accepted));
    assert_eq!(
        ev,
        vec![DirectEvent::Received {
            from: peer(2),
            body: b"sealed".to_vec()
        }]
    );
    // A resend of the same request (its answer was lost) is acknowledged, not delivered again;
    // the same id from another origin is another request.
    let (r, ev) = answer(&mut node, t, peer(2), deliver(5, b"sealed".to_vec()));
    assert_eq!(
        (r, ev.len()),
        (Response::Direct(DirectResponse::Accepted), 0)
    );
    let (_, ev) = answer(&mut node, t, peer(3), deliver(5, b"other".to_vec()));
    assert_eq!(ev.len(), 1);
    let (r, ev) = answer(&mut node, t, peer(2), deliver(6, vec![0; MAX_BODY + 1]));
    assert_eq!(
        (r, ev.len()),
        (
            Response::Direct(DirectResponse::TooLarge {
                max: MAX_BODY as u64
            }),
            0
        )
    );
    let s = node.direct().stats();
    assert_eq!(
        (s.received, s.duplicates, s.refused_size),
        (2, 1, 1),
        "{s:?}"
    );
    node.check_invariants().expect("invariants");
}

#[test]
fn the_receiver_limits_each_origin_and_names_when_to_retry() {
    let mut cfg = ChordConfig::default();
    cfg.direct.rate_per_sec = 10;
    cfg.direct.rate_burst = 3;
    let mut node = founded(cfg);
    let t = Time::ZERO + Duration::from_secs(1);
    for id in 0..3 {
        let (r, _) = answer(&mut node, t, peer(2), deliver(id, vec![1]));
        assert_eq!(r, Response::Direct(DirectResponse::Accepted));
    }
    let (r, ev) = answer(&mut node, t, peer(2), deliver(3, vec![1]));
    assert_eq!(
        (r, ev.len()),
        (
            Response::Direct(DirectResponse::RateLimited {
                retry_after_ms: 100
            }),
            0
        )
    );
    // Another origin has its own bucket; the first one has a token again 100 ms later.
    let (r, _) = answer(&mut node, t, peer(3), deliver(3, vec![1]));
    assert_eq!(r, Response::Direct(DirectResponse::Accepted));
    let later = t + Duration::from_millis(100);
    let (r, _) = answer(&mut node, later, peer(2), deliver(4, vec![1]));
    assert_eq!(r, Response::Direct(DirectResponse::Accepted));
    assert_eq!(node.direct().stats().refused_rate, 1);
}

#[test]
fn bodies_are_refused_while_the_application_asks_and_delivered_after() {
    let mut node = founded(ChordConfig::default());
    let t = Time::ZERO + Duration::from_secs(1);
    let refuse = Input::Direct(DirectInput::Refuse {
        duration: Duration::from_secs(10),
        reason: "cannot store".into(),
    });
    node.handle(t, refuse);
    assert!(node.direct().refusing(t));
    let (r, ev) = answer(&mut node, t, peer(2), deliver(1, vec![1]));
    assert_eq!(
        (r, ev.len()),
        (
            Response::Direct(DirectResponse::Refused("cannot store".into())),
            0
        ),
        "refused, nothing delivered"
    );
    // A body to this node itself is refused too.
    let outs = node.handle(
        t,
        Input::Direct(DirectInput::Send {
            token: 5,
            to: peer(1).id,
            body: vec![1],
        }),
    );
    assert!(outs.iter().any(|o| matches!(
        o,
        Output::Event(Event::Direct(DirectEvent::Done {
            token: 5,
            result: Err(DirectError::Refused(_))
        }))
    )));
    assert!(!outs.iter().any(|o| matches!(
        o,
        Output::Event(Event::Direct(DirectEvent::Received { .. }))
    )));
    // The resend of the refused request, after the period: delivered (it was not taken as
    // seen).
    let later = t + Duration::from_secs(10);
    assert!(!node.direct().refusing(later));
    let (r, ev) = answer(&mut node, later, peer(2), deliver(1, vec![1]));
    assert_eq!(
        (r, ev.len()),
        (Response::Direct(DirectResponse::Accepted), 1)
    );
    // Accept ends a refusal early.
    node.handle(
        later,
        Input::Direct(DirectInput::Refuse {
            duration: Duration::from_secs(60),
            reason: "x".into(),
        }),
    );
    node.handle(later, Input::Direct(DirectInput::Accept));
    let (r, _) = answer(&mut node, later, peer(2), deliver(2, vec![1]));
    assert_eq!(r, Response::Direct(DirectResponse::Accepted));
    assert_eq!(node.direct().stats().refused_app, 2);
}

#[test]
fn a_body_over_the_bound_fails_at_once_without_a_message() {
    let mut node = founded(ChordConfig::default());
    let outs = node.handle(
        Time::ZERO,
        Input::Direct(DirectInput::Send {
            token: 9,
            to: NodeId([2; 32]),
            body: vec![0; MAX_BODY + 1],
        }),
    );
    assert!(outs.iter().all(|o| !matches!(o, Output::Send { .. })));
    assert!(outs.iter().any(|o| matches!(
        o,
        Output::Event(Event::Direct(DirectEvent::Done {
            token: 9,
            result: Err(DirectError::TooLarge { max: MAX_BODY })
        }))
    )));
}

#[test]
fn a_node_outside_the_ring_refuses_and_a_body_to_itself_is_delivered_here() {
    let mut node = Overlay::new(peer(1), ChordConfig::default(), 7);
    let send = |token, to| {
        Input::Direct(DirectInput::Send {
            token,
            to,
            body: b"x".to_vec(),
        })
    };
    let events = |outs: Vec<Output>| -> Vec<DirectEvent> {
        outs.into_iter()
            .filter_map(|o| match o {
                Output::Event(Event::Direct(e)) => Some(e),
                _ => None,
            })
            .collect()
    };
    let ev = events(node.handle(Time::ZERO, send(1, NodeId([2; 32]))));
    assert_eq!(
        ev,
        vec![DirectEvent::Done {
            token: 1,
            result: Err(DirectError::NotMember)
        }]
    );
    let ev = events(node.handle(Time::ZERO, send(2, peer(1).id)));
    assert_eq!(
        ev,
        vec![
            DirectEvent::Received {
                from: peer(1),
                body: b"x".to_vec()
            },
            DirectEvent::Done {
                token: 2,
                result: Ok(())
            }
        ]
    );
}

#[test]
fn debug_output_never_shows_a_body() {
    let secret = b"attack at dawn".to_vec();
    let shown = format!(
        "{:?} {:?} {:?}",
        DirectInput::Send {
            token: 1,
            to: NodeId([2; 32]),
            body: secret.clone()
        },
        DirectEvent::Received {
            from: peer(2),
            body: secret.clone()
        },
        deliver(1, secret.clone())
    );
    assert!(!shown.contains("97, 116"), "{shown}");
    assert!(shown.contains("body_len: 14"), "{shown}");
}

// ---- the wire --------------------------------------------------------------------------------

fn cbor<T: serde::Serialize>(v: &T) -> Vec<u8> {
    let mut b = Vec::new();
    ciborium::into_writer(v, &mut b).expect("encodes");
    b
}

#[test]
fn the_largest_direct_messages_fit_the_bound_and_round_trip() {
    let msgs = [
        deliver(u64::MAX, vec![0xa5; MAX_BODY]),
        Message::Response {
            id: 1,
            body: Response::Direct(DirectResponse::Accepted),
        },
        Message::Response {
            id: 2,
            body: Response::Direct(DirectResponse::RateLimited {
                retry_after_ms: 250,
            }),
        },
        Message::Response {
            id: 3,
            body: Response::Direct(DirectResponse::TooLarge {
                max: MAX_BODY as u64,
            }),
        },
        Message::Response {
            id: 4,
            body: Response::Direct(DirectResponse::Refused("x".repeat(MAX_REASON))),
        },
    ];
    for m in msgs {
        let bytes = wire::encode(&m).expect("encodes");
        assert!(
            bytes.len() <= wire::MAX_MESSAGE_BYTES,
            "{} bytes",
            bytes.len()
        );
        assert_eq!(wire::decode(&bytes).expect("decodes"), m);
    }
}

#[test]
fn other_versions_and_notices_of_direct_stay_opaque() {
    let body = cbor(&DirectRequest::Deliver { body: vec![1, 2] });
    let opaque = |version| Opaque {
        service: DIRECT,
        version,
        body: body.clone(),
    };
    let round = |m: Message| wire::decode(&wire::encode(&m).expect("encodes")).expect("decodes");
    // The current version, written by hand, is read.
    assert_eq!(
        round(Message::Request {
            id: 1,
            body: Request::Other(opaque(VERSION)),
        }),
        deliver(1, vec![1, 2])
    );
    assert!(matches!(
        round(Message::Request {
            id: 1,
            body: Request::Other(opaque(VERSION + 1)),
        }),
        Message::Request {
            body: Request::Other(Opaque {
                service: DIRECT,
                ..
            }),
            ..
        }
    ));
    assert!(matches!(
        round(Message::Notice(Notice::Other(opaque(VERSION)))),
        Message::Notice(Notice::Other(Opaque {
            service: DIRECT,
            ..
        }))
    ));
}

#[test]
fn truncated_direct_frames_are_errors_not_panics() {
    let bytes = wire::encode(&deliver(77, vec![9; 300])).expect("encodes");
    for cut in 0..bytes.len() {
        assert!(
            wire::decode(&bytes[..cut]).is_err(),
            "a prefix of {cut} bytes decoded"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_body_round_trips(id in any::<u64>(), body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let m = deliver(id, body);
        prop_assert_eq!(wire::decode(&wire::encode(&m).expect("encodes")).expect("decodes"), m);
    }

    #[test]
    fn any_bytes_after_a_direct_header_decode_or_fail_without_panic(
        call in 0u8..4,
        junk in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        // `[service, version, call, id, body]` with garbage for the direct body.
        let frame = cbor(&(DIRECT, VERSION, call, 1u64, serde_bytes::ByteBuf::from(junk.clone())));
        let _ = wire::decode(&frame);
        let _ = wire::decode(&junk);
    }
}

// ---- on a simulated ring ---------------------------------------------------------------------

fn ring(seed: u64, n: u32, chord: ChordConfig) -> Sim {
    let mut sim = Sim::new(SimConfig {
        seed,
        checks: true,
        wire: true,
        chord,
        ..SimConfig::default()
    });
    for _ in 0..n {
        sim.add_host();
    }
    sim.form_ring(n, true);
    sim
}

fn id_of(sim: &Sim, i: u32) -> NodeId {
    sim.hosts[i as usize].peer.id
}

fn done(sim: &mut Sim, i: u32, token: u64, limit: Duration) -> Result<(), DirectError> {
    let deadline = sim.now() + limit;
    loop {
        if let Some(r) = sim.direct_done(i, token) {
            return r;
        }
        assert!(sim.now() < deadline, "no outcome within {limit:?}");
        sim.run_for(Duration::from_millis(50));
    }
}

#[test]
fn a_body_reaches_exactly_its_target_once_and_the_sender_hears_ok() {
    let mut sim = ring(31, 16, ChordConfig::default());
    let to = id_of(&sim, 9);
    sim.send_direct(3, 1, to, b"first".to_vec());
    assert_eq!(done(&mut sim, 3, 1, Duration::from_secs(5)), Ok(()));
    // The second send finds the target in the cache.
    sim.send_direct(3, 2, to, b"second".to_vec());
    assert_eq!(done(&mut sim, 3, 2, Duration::from_secs(5)), Ok(()));
    sim.run_for(Duration::from_secs(2));
    let from = id_of(&sim, 3);
    assert_eq!(
        sim.direct_received(9),
        vec![(from, &b"first"[..]), (from, &b"second"[..])]
    );
    let elsewhere = sim
        .direct_events
        .iter()
        .filter(|(h, e)| *h != 9 && matches!(e, DirectEvent::Received { .. }))
        .count();
    assert_eq!(elsewhere, 0);
    let node = sim.node(&id_of(&sim, 3)).expect("up");
    assert_eq!(
        (node.direct().stats().sent_ok, node.direct().cached()),
        (2, 1)
    );
}

#[test]
fn a_crashed_target_fails_within_a_bounded_time() {
    let mut sim = ring(32, 16, ChordConfig::default());
    let to = id_of(&sim, 9);
    // One sender knows the target's address from an earlier send, another does not.
    sim.send_direct(3, 1, to, b"before".to_vec());
    assert_eq!(done(&mut sim, 3, 1, Duration::from_secs(5)), Ok(()));
    sim.crash(9);
    sim.send_direct(3, 2, to, b"cached".to_vec());
    sim.send_direct(5, 3, to, b"looked up".to_vec());
    for (i, token) in [(3, 2), (5, 3)] {
        let r = done(&mut sim, i, token, Duration::from_secs(30));
        assert!(
            matches!(r, Err(DirectError::Unreachable | DirectError::NotInRing)),
            "{r:?}"
        );
    }
    // Once the ring has routed around it, the id is simply not in the ring.
    sim.run_for(Duration::from_secs(20));
    sim.send_direct(7, 4, to, b"later".to_vec());
    assert_eq!(
        done(&mut sim, 7, 4, Duration::from_secs(30)),
        Err(DirectError::NotInRing)
    );
}

#[test]
fn an_id_nobody_has_is_not_in_the_ring() {
    let mut sim = ring(33, 12, ChordConfig::default());
    let stranger = NodeId([0x42; 32]);
    assert!(!sim.members().contains(&stranger));
    sim.send_direct(2, 1, stranger, b"hello?".to_vec());
    assert_eq!(
        done(&mut sim, 2, 1, Duration::from_secs(10)),
        Err(DirectError::NotInRing)
    );
}

#[test]
fn over_the_targets_rate_a_send_is_refused_then_accepted_later() {
    let mut chord = ChordConfig::default();
    chord.direct.rate_per_sec = 2;
    chord.direct.rate_burst = 3;
    let mut sim = ring(34, 10, chord);
    let to = id_of(&sim, 6);
    for token in 1..=4 {
        sim.send_direct(1, token, to, vec![token as u8]);
    }
    let results: Vec<_> = (1..=4)
        .map(|t| done(&mut sim, 1, t, Duration::from_secs(5)))
        .collect();
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        3,
        "{results:?}"
    );
    let wait = results.iter().find_map(|r| match r {
        Err(DirectError::RateLimited { retry_after_ms }) => Some(*retry_after_ms),
        _ => None,
    });
    let wait = wait.expect("one send was rate limited");
    assert!(wait > 0 && wait <= 500, "{wait}");
    sim.run_for(Duration::from_millis(wait));
    sim.send_direct(1, 5, to, vec![5]);
    assert_eq!(done(&mut sim, 1, 5, Duration::from_secs(5)), Ok(()));
    assert_eq!(sim.direct_received(6).len(), 4);
}

#[test]
fn a_thousand_nodes_deliver_two_thousand_bodies_each_exactly_once() {
    const N: u32 = 1000;
    const SENDS: u64 = 2000;
    let mut sim = Sim::new(SimConfig {
        seed: 35,
        wire: true,
        ..SimConfig::default()
    });
    let first = sim.add_host();
    sim.create(first);
    for _ in 1..N {
        sim.run_for(Duration::from_millis(20));
        let i = sim.add_host();
        let via = sim.random_member().unwrap_or(first);
        sim.join(i, via);
    }
    // Formed: a correct ring whose successor lists are complete (a lookup routed by a list
    // that still misses a node can end at the node after it: `NotInRing`).
    let deadline = sim.now() + Duration::from_secs(300);
    while !(sim.members().len() == N as usize && {
        let c = oracle::check(&sim);
        c.ring_correct && c.successor_lists_correct == 1.0
    }) {
        assert!(sim.now() < deadline, "the ring did not form");
        sim.run_for(Duration::from_secs(1));
    }
    // Random pairs of distinct members, each body naming its send.
    let mut expected: HashMap<Vec<u8>, (u32, u32)> = HashMap::new();
    for token in 0..SENDS {
        let a = sim.rng().random_range(0..N);
        let b = (a + sim.rng().random_range(1..N)) % N;
        let body = format!("body {token} from {a} to {b}").into_bytes();
        expected.insert(body.clone(), (a, b));
        let to = id_of(&sim, b);
        sim.send_direct(a, token, to, body);
    }
    sim.run_for(Duration::from_secs(30));
    let mut ok = 0;
    let mut seen: HashMap<&[u8], u32> = HashMap::new();
    for (h, e) in &sim.direct_events {
        match e {
            DirectEvent::Done { result, token } => {
                assert_eq!(result, &Ok(()), "send {token}");
                ok += 1;
            }
            DirectEvent::Received { from, body } => {
                let (a, b) = expected.get(body.as_slice()).expect("a body that was sent");
                assert_eq!((*h, from.id), (*b, id_of(&sim, *a)));
                *seen.entry(body.as_slice()).or_default() += 1;
            }
        }
    }
    assert_eq!(ok, SENDS);
    assert_eq!(seen.len(), SENDS as usize);
    assert!(seen.values().all(|n| *n == 1));
}
