//! Tests of the test-only ping service: one exchange between two nodes driven by hand (through
//! the wire encoding), its deadline timer, its notice, a malformed request, and a simulated
//! ring where every member pings others and a crashed peer is reported.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::*;
use crate::id::NodeId;
use crate::services::AddServiceError;
use crate::sim::{Sim, SimConfig};
use crate::wire::{self, Opaque};
use crate::{ChordConfig, Input, Output, Overlay};

fn peer(i: u8) -> Peer {
    Peer {
        id: NodeId([i; 32]),
        addr: SocketAddr::from((Ipv4Addr::new(10, 0, 0, i), 7400)),
    }
}

fn founded(i: u8) -> Overlay {
    let mut node = Overlay::new(peer(i), ChordConfig::default(), u64::from(i));
    node.handle(Time::ZERO, Input::Create);
    assert!(node.is_member());
    node
}

/// The messages `outs` sends, through the wire encoding (what a peer would decode).
fn sent(outs: &[Output]) -> Vec<(Peer, Message)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Send { to, msg } => {
                let bytes = wire::encode(msg).expect("encodes");
                Some((*to, wire::decode(&bytes).expect("decodes")))
            }
            _ => None,
        })
        .collect()
}

fn ping_events(outs: &[Output]) -> Vec<PingEvent> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Event(Event::Service(e)) if e.service == PING => {
                e.downcast_ref::<PingEvent>().cloned()
            }
            _ => None,
        })
        .collect()
}

fn timers(outs: &[Output]) -> Vec<(Time, Timer)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::SetTimer { at, timer } if timer.service() == PING => Some((*at, *timer)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_ping_is_answered_through_the_wire_and_reported_with_its_round_trip() {
    let (mut a, mut b) = (founded(1), founded(2));
    let t0 = Time::ZERO + Duration::from_secs(1);
    let (token, outs) = a
        .call(t0, |p: &mut Ping, cx| p.ping(cx, peer(2)))
        .expect("every test node runs ping");
    let token = token.expect("sent");
    let msgs = sent(&outs);
    assert_eq!(msgs.len(), 1, "one request: {outs:?}");
    let (to, req) = msgs[0].clone();
    assert_eq!(to, peer(2));
    let armed = timers(&outs);
    assert_eq!(armed.len(), 1, "one deadline timer");
    assert_eq!(armed[0].0, t0 + PingConfig::default().deadline);
    assert!(a.wants_timer(&armed[0].1));

    let t1 = t0 + Duration::from_millis(10);
    let outs = b.handle(
        t1,
        Input::Message {
            from: peer(1),
            msg: req,
        },
    );
    let answers = sent(&outs);
    assert_eq!(answers.len(), 1, "one answer: {outs:?}");
    assert!(matches!(
        &answers[0].1,
        Message::Response {
            body: Response::Other(o),
            ..
        } if o.service == PING
    ));
    assert_eq!(b.service_ref::<Ping>().map(|p| p.stats().served), Some(1));

    let t2 = t0 + Duration::from_millis(30);
    let outs = a.handle(
        t2,
        Input::Message {
            from: peer(2),
            msg: answers[0].1.clone(),
        },
    );
    assert_eq!(
        ping_events(&outs),
        vec![PingEvent::Pong {
            token,
            from: peer(2),
            rtt: Duration::from_millis(30),
        }]
    );
    // The deadline is no longer wanted, and does nothing if it fires.
    assert!(!a.wants_timer(&armed[0].1));
    assert!(ping_events(&a.handle(armed[0].0, Input::Timer(armed[0].1))).is_empty());
    assert_eq!(a.service_ref::<Ping>().map(|p| p.outstanding()), Some(0));
    a.check_invariants().expect("invariants");
    b.check_invariants().expect("invariants");
}

#[test]
fn an_unanswered_ping_times_out_at_its_deadline() {
    let mut a = founded(1);
    let t0 = Time::ZERO + Duration::from_secs(1);
    let (token, outs) = a
        .call(t0, |p: &mut Ping, cx| p.ping(cx, peer(9)))
        .expect("ping runs");
    let token = token.expect("sent");
    let (at, timer) = timers(&outs)[0];
    assert_eq!(
        ping_events(&a.handle(at, Input::Timer(timer))),
        vec![PingEvent::TimedOut { token, to: peer(9) }]
    );
    assert_eq!(
        a.service_ref::<Ping>().map(|p| p.stats().timed_out),
        Some(1)
    );
}

#[test]
fn a_hello_is_heard_and_a_malformed_ping_is_refused() {
    let (mut a, mut b) = (founded(1), founded(2));
    let t = Time::ZERO + Duration::from_secs(1);
    let (r, outs) = a
        .call(t, |p: &mut Ping, cx| p.hello(cx, peer(2)))
        .expect("ping runs");
    r.expect("sent");
    let (_, hello) = sent(&outs).remove(0);
    let outs = b.handle(
        t,
        Input::Message {
            from: peer(1),
            msg: hello,
        },
    );
    assert_eq!(ping_events(&outs), vec![PingEvent::Heard { from: peer(1) }]);

    let before = b.ring().stats().invalid;
    let junk = Message::Request {
        id: 77,
        body: Request::Other(Opaque {
            service: PING,
            version: VERSION,
            body: b"not cbor of a ping".to_vec(),
        }),
    };
    let outs = b.handle(
        t,
        Input::Message {
            from: peer(1),
            msg: junk,
        },
    );
    assert!(sent(&outs).iter().any(|(_, m)| matches!(
        m,
        Message::Response {
            id: 77,
            body: Response::Unsupported
        }
    )));
    assert_eq!(b.ring().stats().invalid, before + 1);
}

#[test]
fn registered_services_cannot_be_replaced_at_run_time() {
    let mut a = founded(1);
    assert_eq!(
        a.add_service(Box::new(Ping::new(PingConfig::default()))),
        Err(AddServiceError::Reserved(PING))
    );
}

#[test]
fn in_a_simulated_ring_every_ping_is_answered_and_a_crashed_peer_is_reported() {
    let mut sim = Sim::new(SimConfig {
        seed: 34,
        wire: true,
        checks: true,
        ..SimConfig::default()
    });
    let n = 24;
    for _ in 0..n {
        sim.add_host();
    }
    sim.form_ring(n, false);
    let peers: Vec<Peer> = (0..n).map(|i| sim.hosts[i as usize].peer).collect();
    let mut tokens = Vec::new();
    for i in 0..n {
        let to = peers[((i + 7) % n) as usize];
        let token = sim
            .call(i, |p: &mut Ping, cx| p.ping(cx, to))
            .expect("host up, ping runs")
            .expect("sent");
        tokens.push((i, token, to));
    }
    sim.run_for(Duration::from_secs(2));
    for (i, token, to) in &tokens {
        let got = sim
            .service_events
            .iter()
            .find_map(|(h, e)| match e.downcast_ref() {
                Some(PingEvent::Pong { token: t, from, .. }) if h == i && t == token => Some(*from),
                _ => None,
            });
        assert_eq!(
            got,
            Some(*to),
            "host {i}'s ping {token} was answered by its target"
        );
    }

    // A crashed target: the asker hears of it (its deadline, or the RPC engine's failure).
    sim.crash(5);
    let to = peers[5];
    let token = sim
        .call(3, |p: &mut Ping, cx| p.ping(cx, to))
        .expect("host up")
        .expect("sent");
    sim.run_for(Duration::from_secs(3));
    assert!(sim.service_events.iter().any(|(h, e)| *h == 3
        && matches!(
            e.downcast_ref(),
            Some(PingEvent::TimedOut { token: t, .. } | PingEvent::Failed { token: t, .. }) if *t == token
        )));
    assert_eq!(
        sim.call(5, |p: &mut Ping, cx| p.ping(cx, to)),
        None,
        "a crashed host runs nothing"
    );
}
