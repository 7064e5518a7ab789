//! Scripted tests of the broadcast: exactly-once delivery over a small ring, a crashed child's
//! arc re-routed, anti-entropy catching a node up (one that missed messages, one restarted, one
//! whose application lost messages), and every kind of bad broadcast dropped,
//! counted and never forwarded.

use std::time::Duration;

use super::wire::Bcast;
use super::{BroadcastError, BroadcastEvent, Envelope, MsgId};
use crate::overlay::{Event, Input, Output};
use crate::ring::tests::{Net, build};
use crate::wire::{Message, Notice};
use crate::{ChordConfig, NodeId};

const IDS: [u64; 8] = [10, 900, 50, 7000, 300, 2, 65000, 12345];

fn delivered(net: &Net, id: MsgId) -> Vec<usize> {
    let mut v: Vec<usize> = net
        .events
        .iter()
        .filter_map(|(i, e)| match e {
            Event::Broadcast(BroadcastEvent::Deliver { id: d, .. }) if *d == id => {
                Some(*i as usize)
            }
            _ => None,
        })
        .collect();
    v.sort_unstable();
    v
}

fn env_of(net: &Net, origin: usize, seq: u64, payload: &[u8]) -> Envelope {
    Envelope {
        origin: net.peers[origin].id,
        seq,
        payload: payload.to_vec(),
    }
}

fn run(net: &mut Net, secs: u64) {
    let t = net.now() + Duration::from_secs(secs);
    net.run_until(t);
}

fn stats(net: &Net, i: usize) -> crate::broadcast::BroadcastStats {
    net.node(i)
        .map(|n| n.broadcast().stats().clone())
        .unwrap_or_default()
}

#[test]
fn stable_ring_delivers_once_everywhere_with_n_minus_1_sends() {
    let mut net = build(&IDS);
    net.events.clear();
    let env = env_of(&net, 3, 1, b"hello");
    net.input(
        3,
        Input::Broadcast {
            seq: 1,
            payload: b"hello".to_vec(),
        },
    );
    // Every hop is answered (after the reply delay) long before its deadline, so the deadlines
    // are armed and none is wanted any more (a driver need not wake up for them).
    let t = net.now() + Duration::from_millis(100);
    net.run_until(t);
    assert_eq!(net.hop_timers(), (IDS.len() - 1, 0), "(armed, wanted)");
    run(&mut net, 3);
    let got = delivered(&net, env.id());
    assert_eq!(got, vec![0, 1, 2, 4, 5, 6, 7], "every other node once");
    let sends: u64 = (0..IDS.len()).map(|i| stats(&net, i).payload_sends).sum();
    assert_eq!(sends, IDS.len() as u64 - 1);
    assert!(
        net.events
            .iter()
            .any(|(i, e)| *i == 3 && *e == Event::Broadcast(BroadcastEvent::Done(env.id())))
    );
    // The same sequence number again is refused at the origin.
    net.input(
        3,
        Input::Broadcast {
            seq: 1,
            payload: b"other".to_vec(),
        },
    );
    assert!(net.events.iter().any(|(i, e)| *i == 3
        && matches!(
            e,
            Event::Broadcast(BroadcastEvent::Refused {
                seq: 1,
                error: BroadcastError::SeqUsed
            })
        )));
}

/// Broadcasts `count` messages from node 3, one every `gap`, and returns the answers sent
/// to parents and the groups they left in, summed over the ring.
fn replies_for_burst(cfg: &ChordConfig, count: u64, gap: Duration) -> (u64, u64) {
    let mut net = crate::ring::tests::build_with(&IDS, cfg);
    net.events.clear();
    let before: Vec<_> = (0..IDS.len()).map(|i| stats(&net, i)).collect();
    for seq in 1..=count {
        net.input(
            3,
            Input::Broadcast {
                seq,
                payload: vec![seq as u8],
            },
        );
        let t = net.now() + gap;
        net.run_until(t);
    }
    run(&mut net, 5);
    for seq in 1..=count {
        let id = env_of(&net, 3, seq, &[seq as u8]).id();
        assert_eq!(
            delivered(&net, id),
            vec![0, 1, 2, 4, 5, 6, 7],
            "message {seq}"
        );
        assert!(
            net.events
                .contains(&(3, Event::Broadcast(BroadcastEvent::Done(id))))
        );
    }
    assert_eq!(net.hop_timers().1, 0, "no hop waits");
    let sum = |f: fn(&crate::broadcast::BroadcastStats) -> u64| -> u64 {
        (0..IDS.len())
            .map(|i| f(&stats(&net, i)) - f(&before[i]))
            .sum()
    };
    (sum(|s| s.replies), sum(|s| s.reply_batches))
}

#[test]
fn answers_to_a_parent_leave_together() {
    let mut cfg = ChordConfig::default();
    cfg.broadcast.rate_per_sec = 1000;
    // Two successors: the tree has inner nodes (with 16, the origin reaches all 7 directly).
    cfg.ring.successors = 2;
    // At once: one group per answer; the 7 hops of each message need 7 `Done`s and an
    // `Ack` per inner node of the tree.
    cfg.broadcast.reply_delay = Duration::ZERO;
    let (replies, batches) = replies_for_burst(&cfg, 8, Duration::from_millis(2));
    assert_eq!(replies, batches);
    assert!(replies > 8 * 7, "inner nodes also ack: {replies}");
    // Held for 20 ms: messages 2 ms apart share groups, and an inner node whose children
    // finished within the wait answers with `Done` alone.
    cfg.broadcast.reply_delay = Duration::from_millis(20);
    let (held, held_batches) = replies_for_burst(&cfg, 8, Duration::from_millis(2));
    assert!(held >= 8 * 7 && held <= replies, "{held} answers");
    assert!(
        held_batches * 3 <= held,
        "{held} answers in {held_batches} groups"
    );
}

#[test]
fn leaving_sends_held_answers_first() {
    let mut net = build(&IDS);
    net.events.clear();
    net.set_hold(true);
    net.input(
        3,
        Input::Broadcast {
            seq: 1,
            payload: b"bye".to_vec(),
        },
    );
    // Deliver the data only: every child now holds its answer.
    while let Some((to, from, msg)) = net.held.pop_front() {
        net.input(to as usize, Input::Message { from, msg });
    }
    let leaver = 7;
    assert_eq!(
        stats(&net, leaver).reply_batches,
        0,
        "the leaver holds its answer"
    );
    net.input(leaver, Input::Leave);
    assert!(
        net.held
            .iter()
            .any(|(to, from, m)| *from == net.peers[leaver]
                && *to as usize != leaver
                && matches!(
                    m,
                    Message::Notice(Notice::Broadcast(Bcast::Done { .. } | Bcast::Ack { .. }))
                )),
        "the leaver's answers went out with its goodbye"
    );
}

#[test]
fn a_crashed_child_loses_nothing() {
    let mut net = build(&IDS);
    net.events.clear();
    // Crash the origin's successor: the origin's first child.
    net.crash(1); // id 900; origin id 300 (index 4) has 900 as successor
    let env = env_of(&net, 4, 1, b"x");
    net.input(
        4,
        Input::Broadcast {
            seq: 1,
            payload: b"x".to_vec(),
        },
    );
    run(&mut net, 20);
    let got = delivered(&net, env.id());
    assert_eq!(got, vec![0, 2, 3, 5, 6, 7]);
    assert!(stats(&net, 4).reroutes >= 1);
}

#[test]
fn anti_entropy_catches_up_a_node_that_missed_messages() {
    let mut net = build(&IDS);
    net.events.clear();
    // Node 6 drops everything addressed to it while two messages go out.
    net.set_hold(true);
    for seq in 1..=2 {
        net.input(
            0,
            Input::Broadcast {
                seq,
                payload: vec![seq as u8],
            },
        );
        while let Some((to, from, msg)) = net.held.pop_front() {
            if to == 6 {
                continue;
            }
            net.input(to as usize, Input::Message { from, msg });
        }
    }
    net.set_hold(false);
    assert!(delivered(&net, env_of(&net, 0, 1, &[1]).id()).len() < IDS.len() - 1);
    run(&mut net, 30);
    for seq in 1..=2u64 {
        let id = env_of(&net, 0, seq, &[seq as u8]).id();
        assert!(
            delivered(&net, id).contains(&6),
            "message {seq} reached node 6"
        );
        assert_eq!(
            delivered(&net, id).len(),
            IDS.len() - 1,
            "exactly once each"
        );
    }
}

/// Feeds one `Data` from node `from` to node `to` and returns what came out.
fn feed(
    net: &mut Net,
    to: usize,
    from: usize,
    limit: NodeId,
    id: MsgId,
    env: Envelope,
) -> Vec<Output> {
    let now = net.now();
    let m = Message::Notice(Notice::Broadcast(Bcast::Data {
        hop: 77,
        limit,
        depth: 1,
        id,
        env,
    }));
    let from = net.peers[from];
    net.sim.hosts[to]
        .node
        .as_mut()
        .expect("up")
        .handle(now, Input::Message { from, msg: m })
}

fn forwarded(outs: &[Output]) -> bool {
    outs.iter().any(|o| {
        matches!(
            o,
            Output::Send {
                msg: Message::Notice(Notice::Broadcast(Bcast::Data { .. })),
                ..
            }
        ) || matches!(
            o,
            Output::Event(Event::Broadcast(BroadcastEvent::Deliver { .. }))
        )
    })
}

#[test]
fn bad_broadcasts_are_dropped_counted_and_never_forwarded() {
    let mut net = build(&IDS);
    // Receiver: index 2 (id 50); sender and origin: index 0 (id 10), which precedes it.
    let (rx, tx) = (2, 0);
    let origin_env = env_of(&net, tx, 1, b"ok");
    let limit_ok = net.peers[tx].id; // whole ring except the origin: fine
    // Bad id.
    let mut bad = origin_env.id();
    bad.0[0] ^= 0xff;
    assert!(!forwarded(&feed(
        &mut net,
        rx,
        tx,
        limit_ok,
        bad,
        origin_env.clone()
    )));
    assert_eq!(stats(&net, rx).dropped_bad_id, 1);
    // Limit equal to the receiver: the whole ring, which only the origin may claim.
    let me = net.peers[rx].id;
    assert!(!forwarded(&feed(
        &mut net,
        rx,
        tx,
        me,
        origin_env.id(),
        origin_env.clone()
    )));
    // Limit past the origin (from the receiver's side): out of range.
    // Clockwise from 50 the arc to 20 would wrap past the origin (10).
    let past = NodeId::from_high_u64(20);
    assert!(!forwarded(&feed(
        &mut net,
        rx,
        tx,
        past,
        origin_env.id(),
        origin_env.clone()
    )));
    assert_eq!(stats(&net, rx).dropped_out_of_range, 2);
    // A validator that refuses (bad signature, unknown origin).
    net.sim.hosts[rx]
        .node
        .as_mut()
        .expect("up")
        .set_validator(Box::new(|e: &Envelope| e.payload != b"forged"));
    let forged = env_of(&net, tx, 2, b"forged");
    assert!(!forwarded(&feed(
        &mut net,
        rx,
        tx,
        limit_ok,
        forged.id(),
        forged
    )));
    assert_eq!(stats(&net, rx).dropped_invalid, 1);
    // Oversized payload.
    let big = env_of(&net, tx, 3, &vec![0; crate::broadcast::MAX_PAYLOAD + 1]);
    assert!(!forwarded(&feed(&mut net, rx, tx, limit_ok, big.id(), big)));
    assert_eq!(stats(&net, rx).dropped_oversized, 1);
    // A good one is delivered and forwarded once; its replay is not.
    assert!(forwarded(&feed(
        &mut net,
        rx,
        tx,
        limit_ok,
        origin_env.id(),
        origin_env.clone()
    )));
    assert!(!forwarded(&feed(
        &mut net,
        rx,
        tx,
        limit_ok,
        origin_env.id(),
        origin_env.clone()
    )));
    assert_eq!(stats(&net, rx).duplicates, 1);
    // An origin over its rate: the burst passes, the rest is dropped.
    let burst = crate::broadcast::BroadcastConfig::default().rate_burst as u64;
    let mut passed = 0;
    for seq in 10..10 + burst + 20 {
        let e = env_of(&net, tx, seq, b"flood");
        if forwarded(&feed(&mut net, rx, tx, limit_ok, e.id(), e)) {
            passed += 1;
        }
    }
    assert!(
        passed < burst + 20 && passed >= burst - 2,
        "passed {passed}"
    );
    assert!(stats(&net, rx).dropped_rate >= 20);
}

#[test]
fn a_restarted_node_gets_what_was_broadcast_while_it_was_down() {
    let mut net = build(&IDS);
    let payload = |seq: u64| vec![seq as u8; 4];
    let send = |net: &mut Net, seq: u64| {
        net.input(
            0,
            Input::Broadcast {
                seq,
                payload: payload(seq),
            },
        );
    };
    for seq in 1..=3 {
        send(&mut net, seq);
    }
    run(&mut net, 10);
    net.crash(6);
    for seq in 4..=8 {
        send(&mut net, seq);
    }
    run(&mut net, 20);
    net.events.clear();
    net.sim.join(6, 1);
    run(&mut net, 10);
    send(&mut net, 9);
    run(&mut net, 60);
    for seq in 4..=9u64 {
        let id = env_of(&net, 0, seq, &payload(seq)).id();
        assert!(
            delivered(&net, id).contains(&6),
            "message {seq} reached the restarted node"
        );
    }
}

#[test]
fn a_message_the_application_could_not_keep_comes_back() {
    let mut net = build(&IDS);
    for seq in 1..=4 {
        net.input(
            0,
            Input::Broadcast {
                seq,
                payload: vec![seq as u8],
            },
        );
    }
    run(&mut net, 10);
    let ids: Vec<MsgId> = (1..=4u64)
        .map(|seq| env_of(&net, 0, seq, &[seq as u8]).id())
        .collect();
    assert!(ids.iter().all(|id| delivered(&net, *id).contains(&6)));
    // Node 6's store failed on messages 2 and 3 (disk full): the daemon makes it forget them.
    net.events.clear();
    let origin = net.peers[0].id;
    for seq in [2, 3] {
        net.sim.hosts[6]
            .node
            .as_mut()
            .expect("up")
            .forget_broadcast(&origin, seq);
    }
    run(&mut net, 30);
    assert_eq!(
        delivered(&net, ids[1]),
        vec![6],
        "message 2 came back to node 6 only"
    );
    assert_eq!(
        delivered(&net, ids[2]),
        vec![6],
        "message 3 came back to node 6 only"
    );
    assert!(delivered(&net, ids[0]).is_empty() && delivered(&net, ids[3]).is_empty());
}
