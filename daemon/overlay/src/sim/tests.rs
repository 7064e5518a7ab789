//! Tests of the simulator's own inputs: nodes built with and without a service mixed on the
//! wire, `Unreachable` for messages to the dead, and the validator against forgeries.

use std::time::Duration;

use super::*;
use crate::testing::Echo;
use crate::wire::TEST_ECHO;

/// `n` hosts joined into one ring through host 0, settled until the oracle finds it correct
/// (at most `deadline` of virtual time).
fn ring(cfg: SimConfig, n: u32, with_echo: impl Fn(u32) -> bool) -> Sim {
    let mut sim = Sim::new(cfg);
    for _ in 0..n {
        let h = sim.add_host();
        if with_echo(h) {
            sim.add_extension(h, || Box::new(Echo::default()));
        }
    }
    sim.create(0);
    for i in 1..n {
        sim.join(i, 0);
        sim.run_for(Duration::from_millis(50));
    }
    let deadline = sim.now() + Duration::from_secs(120);
    while !(sim.members().len() == n as usize && oracle::check(&sim).ring_correct) {
        assert!(sim.now() < deadline, "the ring did not form");
        sim.run_for(Duration::from_millis(500));
    }
    sim
}

fn all_delivered(sim: &Sim) -> bool {
    let alive: Vec<u32> = (0..sim.hosts.len() as u32)
        .filter(|i| sim.is_up(*i))
        .collect();
    sim.tracker.deliveries(&alive) == (sim.tracker.broadcasts() * alive.len()) as u64
}

/// Broadcasts `count` messages from random members, `gap` apart, then runs until every live
/// host has every one (or `settle` passes).
fn broadcast_all(sim: &mut Sim, count: u64, gap: Duration, settle: Duration) -> bool {
    for seq in 1..=count {
        let origin = sim.random_member().expect("members");
        // One sequence number per message over the whole run keeps every origin's numbers
        // unique; gaps in one origin's numbers are allowed.
        sim.broadcast(origin, seq, format!("message {seq}").into_bytes());
        sim.run_for(gap);
    }
    let deadline = sim.now() + settle;
    while !all_delivered(sim) && sim.now() < deadline {
        sim.run_for(Duration::from_millis(100));
    }
    all_delivered(sim)
}

fn echo(sim: &Sim, i: u32) -> Option<&crate::testing::EchoStats> {
    let node = sim.hosts[i as usize].node.as_ref()?;
    node.extension(TEST_ECHO)?
        .as_any()
        .downcast_ref::<Echo>()
        .map(Echo::stats)
}

#[test]
fn nodes_with_and_without_a_new_service_keep_one_ring_and_lose_no_broadcast() {
    let cfg = SimConfig {
        seed: 11,
        wire: true,
        checks: true,
        ..SimConfig::default()
    };
    // Every other host runs the newer build with the echo service.
    let mut sim = ring(cfg, 40, |h| h % 2 == 0);
    sim.run_for(Echo::PERIOD * 10);
    assert!(broadcast_all(
        &mut sim,
        60,
        Duration::from_millis(30),
        Duration::from_secs(30)
    ));
    assert_eq!(sim.tracker.duplicates_delivered, 0);
    assert!(oracle::check(&sim).ring_correct);
    let (mut answered, mut unsupported, mut unknown_at_old) = (0, 0, 0);
    for i in 0..40u32 {
        let node = sim.hosts[i as usize].node.as_ref().expect("up");
        match echo(&sim, i) {
            Some(e) => {
                answered += e.answered;
                unsupported += e.unsupported;
                assert_eq!(e.failed, 0, "host {i}: an echo request timed out");
            }
            None => unknown_at_old += node.ring().stats().unknown,
        }
    }
    // New nodes talked to each other, old nodes said "unsupported" instead of timing out,
    // and counted what they could not read.
    assert!(answered > 0 && unsupported > 0 && unknown_at_old > 0);
    // Nobody took a node for dead.
    assert!(
        !sim.events
            .iter()
            .any(|(_, e)| matches!(e, Event::PeerSuspected(_))),
        "a peer was suspected"
    );
}

#[test]
fn a_message_to_a_crashed_host_makes_its_sender_unreachable_and_the_ring_repairs() {
    let mut sim = ring(SimConfig::default(), 12, |_| true);
    let before: Vec<(u64, u64)> = (0..12u32)
        .map(|i| echo(&sim, i).map_or((0, 0), |e| (e.neighbours_changed, e.suspected)))
        .collect();
    let crashed = sim.hosts[5].peer.id;
    sim.crash(5);
    let deadline = sim.now() + Duration::from_secs(60);
    while !oracle::check(&sim).ring_correct {
        assert!(sim.now() < deadline, "the ring did not repair");
        sim.run_for(Duration::from_millis(500));
    }
    assert!(sim.net.unreachable > 0);
    // The crashed host's ring neighbours told their sub-protocols: it was suspected and
    // their neighbourhood changed.
    let pred = (0..12u32)
        .filter(|i| *i != 5)
        .find(|i| {
            sim.hosts[*i as usize].node.as_ref().is_some_and(|n| {
                n.ring()
                    .successor()
                    .is_some_and(|succ| crashed.in_open(&n.me().id, &succ.id))
            })
        })
        .expect("the crashed host's predecessor");
    let e = echo(&sim, pred).expect("echo");
    assert!(e.neighbours_changed > before[pred as usize].0);
    assert!(e.suspected > before[pred as usize].1);
    assert!(broadcast_all(
        &mut sim,
        10,
        Duration::from_millis(50),
        Duration::from_secs(20)
    ));
}

#[test]
fn an_unsigned_broadcast_is_refused_by_every_validator() {
    let cfg = SimConfig {
        checks: true,
        ..SimConfig::default()
    };
    let mut sim = ring(cfg, 8, |_| false);
    // Host 3 broadcasts a payload without the signature tag: its own node takes it (it
    // does not validate its own messages), every other node drops it.
    sim.input(
        3,
        Input::Broadcast {
            seq: 1,
            payload: b"forged".to_vec(),
        },
    );
    sim.run_for(Duration::from_secs(10));
    let delivered = sim
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::Broadcast(BroadcastEvent::Deliver { .. })))
        .count();
    assert_eq!(delivered, 0);
    let invalid: u64 = (0..8u32)
        .filter_map(|i| sim.hosts[i as usize].node.as_ref())
        .map(|n| n.broadcast().stats().dropped_invalid)
        .sum();
    assert!(invalid > 0);
}

#[test]
fn lookups_are_exact_while_successor_lists_still_fill_in() {
    // Right after the joins the ring is correct (successors and predecessors) but most
    // successor lists still miss the newest nodes; a list with such a gap must not make a
    // lookup answer a node past the key's successor.
    let mut sim = Sim::new(SimConfig {
        seed: 21,
        checks: true,
        ..SimConfig::default()
    });
    for _ in 0..24 {
        sim.add_host();
    }
    sim.create(0);
    for i in 1..24 {
        sim.join(i, 0);
        sim.run_for(Duration::from_millis(50));
    }
    let deadline = sim.now() + Duration::from_secs(120);
    while !(sim.members().len() == 24 && oracle::check(&sim).ring_correct) {
        assert!(sim.now() < deadline, "the ring did not form");
        sim.run_for(Duration::from_millis(100));
    }
    let lists = oracle::check(&sim).successor_lists_correct;
    assert!(
        lists < 1.0,
        "the lists were already complete ({lists}): no gap to test"
    );
    sim.take_lookups();
    let now = sim.now();
    for k in 0..200u64 {
        let key = NodeId::from_high_u64(k.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        sim.lookup_at(now, (k % 24) as u32, key);
    }
    sim.run_for(Duration::from_secs(5));
    let done = sim.take_lookups();
    assert_eq!(done.len(), 200);
    let wrong = done.iter().filter(|l| !l.ok).count();
    assert_eq!(wrong, 0, "{wrong} of 200 lookups named the wrong node");
}

#[test]
fn a_node_restarting_at_once_rejoins_where_its_successor_still_names_it() {
    // Its successor still has the old incarnation as predecessor when the join's lookup asks
    // for its state: the joiner must take that successor, not itself.
    let mut sim = ring(
        SimConfig {
            seed: 31,
            checks: true,
            ..SimConfig::default()
        },
        16,
        |_| false,
    );
    sim.run_for(Duration::from_secs(20));
    for victim in [3u32, 7, 11] {
        sim.crash(victim);
        sim.join(victim, 0);
        let deadline = sim.now() + Duration::from_secs(60);
        while !(sim.members().len() == 16 && oracle::check(&sim).ring_correct) {
            assert!(
                sim.now() < deadline,
                "host {victim} did not rejoin a correct ring"
            );
            sim.run_for(Duration::from_millis(200));
        }
    }
}
