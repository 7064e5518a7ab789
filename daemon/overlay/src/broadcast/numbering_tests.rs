//! Simulated tests of a node's own numbering after a lost history (`numbering.rs`): a node
//! that restarts with nothing learns from its neighbours the highest number of its own they
//! hold before it broadcasts, numbers above every own message it meets later, a node alone
//! waits for the deadline, and a number the ring holds is refused at the origin.

use std::time::Duration;

use super::numbering::MAX_PLAUSIBLE;
use super::wire::BroadcastResponse;
use super::{BroadcastError, BroadcastEvent, Envelope, MsgId, NUMBERING_WAIT};
use crate::ChordConfig;
use crate::overlay::{Event, Input};
use crate::ring::tests::{Net, build_with};

const IDS: [u64; 5] = [10, 900, 50, 7000, 300];

fn config(wait: Duration) -> ChordConfig {
    let mut c = ChordConfig::default();
    c.broadcast.numbering_wait = wait;
    c
}

fn run(net: &mut Net, d: Duration) {
    let t = net.now() + d;
    net.run_until(t);
}

fn send(net: &mut Net, i: usize, seq: u64, payload: &[u8]) -> MsgId {
    net.input(
        i,
        Input::Broadcast {
            seq,
            payload: payload.to_vec(),
        },
    );
    Envelope {
        origin: net.peers[i].id,
        seq,
        payload: payload.to_vec(),
    }
    .id()
}

/// The hosts that were delivered `id`, with repeats.
fn receivers(net: &Net, id: MsgId) -> Vec<u32> {
    let mut v: Vec<u32> = net
        .events
        .iter()
        .filter_map(|(i, e)| match e {
            Event::Broadcast(BroadcastEvent::Deliver { id: d, .. }) if *d == id => Some(*i),
            _ => None,
        })
        .collect();
    v.sort_unstable();
    v
}

fn refused(net: &Net, i: u32, seq: u64) -> Option<BroadcastError> {
    net.events.iter().find_map(|(h, e)| match e {
        Event::Broadcast(BroadcastEvent::Refused { seq: s, error }) if *h == i && *s == seq => {
            Some(*error)
        }
        _ => None,
    })
}

fn member(net: &Net, i: usize) -> bool {
    net.node(i).is_some_and(|n| n.ring().is_member())
}

#[test]
fn a_restarted_node_numbers_above_what_the_ring_holds() {
    let mut net = build_with(&IDS, &config(NUMBERING_WAIT));
    let old: Vec<MsgId> = (1..=3)
        .map(|seq| send(&mut net, 0, seq, format!("old {seq}").as_bytes()))
        .collect();
    run(&mut net, Duration::from_secs(10));
    for id in &old {
        assert_eq!(receivers(&net, *id), vec![1, 2, 3, 4]);
    }
    // Node 0 loses everything and comes back with the same id.
    net.crash(0);
    run(&mut net, Duration::from_secs(10));
    net.events.clear();
    net.sim.join(0, 1);
    let deadline = net.now() + Duration::from_secs(30);
    while !member(&net, 0) {
        assert!(net.now() < deadline, "node 0 did not rejoin");
        run(&mut net, Duration::from_millis(10));
    }
    run(&mut net, Duration::from_secs(1));
    let node = net.node(0).expect("up");
    assert_eq!(
        node.own_seq_floor(),
        3,
        "the neighbours told it its highest number"
    );
    assert_eq!(node.admits_broadcast(net.now()), Ok(()));
    // A number the ring holds is refused; the next ones reach everybody once.
    send(&mut net, 0, 2, b"reused");
    assert_eq!(refused(&net, 0, 2), Some(BroadcastError::SeqUsed));
    let new: Vec<MsgId> = (4..=5)
        .map(|seq| send(&mut net, 0, seq, format!("new {seq}").as_bytes()))
        .collect();
    run(&mut net, Duration::from_secs(30));
    for id in &new {
        assert_eq!(
            receivers(&net, *id),
            vec![1, 2, 3, 4],
            "a new message once each"
        );
    }
    // Its old messages came back to it by anti-entropy, once each.
    for id in &old {
        assert_eq!(receivers(&net, *id), vec![0]);
    }
}

#[test]
fn a_node_alone_numbers_only_after_the_deadline() {
    let net = build_with(&IDS[..1], &config(NUMBERING_WAIT));
    // `build_with` ran 30 s: long past the deadline of the founder.
    assert_eq!(net.node(0).expect("up").admits_broadcast(net.now()), Ok(()));
    let mut net = Net::new(&IDS[..1], &config(NUMBERING_WAIT));
    net.sim.create(0);
    run(&mut net, Duration::from_millis(100));
    assert!(member(&net, 0));
    let start = net.now();
    let node = net.node(0).expect("up");
    assert_eq!(
        node.admits_broadcast(start),
        Err(BroadcastError::Numbering),
        "nobody to ask yet: wait"
    );
    send(&mut net, 0, 1, b"early");
    assert_eq!(refused(&net, 0, 1), Some(BroadcastError::Numbering));
    run(&mut net, NUMBERING_WAIT);
    let node = net.node(0).expect("up");
    assert_eq!(node.admits_broadcast(net.now()), Ok(()));
    assert_eq!(node.own_seq_floor(), 0);
}

#[test]
fn an_own_message_met_later_raises_the_floor() {
    // Without asking (wait zero): the restarted node starts at 0 and its old messages, pushed
    // back by anti-entropy, move its floor above them.
    let mut net = build_with(&IDS, &config(Duration::ZERO));
    for seq in 1..=4 {
        send(&mut net, 0, seq, &[seq as u8]);
    }
    run(&mut net, Duration::from_secs(10));
    net.crash(0);
    run(&mut net, Duration::from_secs(10));
    net.sim.join(0, 1);
    let deadline = net.now() + Duration::from_secs(30);
    while !member(&net, 0) {
        assert!(net.now() < deadline, "node 0 did not rejoin");
        run(&mut net, Duration::from_millis(10));
    }
    assert_eq!(net.node(0).expect("up").own_seq_floor(), 0);
    run(&mut net, Duration::from_secs(30));
    assert_eq!(net.node(0).expect("up").own_seq_floor(), 4);
}

#[test]
fn answers_count_once_and_a_lie_past_the_plausible_is_ignored() {
    use crate::protocol::Reply;
    use crate::wire::Response;
    let mut net = Net::new(&IDS[..3], &config(NUMBERING_WAIT));
    net.sim.create(0);
    run(&mut net, Duration::from_millis(100));
    let (me, a, b) = (net.peers[0], net.peers[1], net.peers[2]);
    let mut bc = super::Broadcast::new(config(NUMBERING_WAIT).broadcast, 1);
    // Asking two neighbours (as `numbering_ask` records them).
    bc.numbering
        .start_asking(net.now() + NUMBERING_WAIT, [a.id, b.id]);
    let answer = |from, h| Reply::Answer {
        from,
        body: Response::Broadcast(BroadcastResponse::Head(h)),
    };
    bc.numbering_reply(answer(a, MAX_PLAUSIBLE + 1));
    assert_eq!(bc.own_floor(), 0, "a lie past the plausible is ignored");
    assert!(bc.numbering.learning(net.now()));
    bc.numbering_reply(answer(a, 50));
    assert_eq!(bc.own_floor(), 0, "one answer per neighbour asked");
    bc.numbering_reply(answer(me, 60));
    assert_eq!(bc.own_floor(), 0, "nobody else's answer counts");
    bc.numbering_reply(answer(b, 7));
    assert_eq!(bc.own_floor(), 7);
    assert!(
        !bc.numbering.learning(net.now()),
        "every neighbour asked answered"
    );
}
