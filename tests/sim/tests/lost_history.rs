//! The simulator's lost-history scenario: on a 20-node ring with random latencies, four
//! origins broadcast, crash, and come back with nothing (the same ids, empty memories); each
//! waits until its overlay admits a broadcast, numbers from `Overlay::own_seq_floor` as the
//! daemon does, and broadcasts again. Every host holds every message of theirs exactly once
//! (`docs/protocol.md`, "Own sequence numbers").

use std::time::Duration;

use std::collections::BTreeMap;

use chat_overlay::broadcast::{MsgId, NUMBERING_WAIT};
use chat_overlay::sim::{Sim, SimConfig};
use chat_overlay::{BroadcastEvent, Event};

const N: u32 = 20;
const ORIGINS: [u32; 4] = [3, 7, 12, 18];
const EACH: u64 = 3;

fn send(sim: &mut Sim, i: u32, seq: u64, sent: &mut Vec<(MsgId, u32)>) {
    let id = sim
        .broadcast(i, seq, format!("{i}/{seq}").into_bytes())
        .expect("the origin is up");
    sent.push((id, i));
}

/// How often each host was delivered each message (from the recorded events).
fn deliveries(sim: &Sim) -> BTreeMap<(MsgId, u32), usize> {
    let mut m = BTreeMap::new();
    for (host, e) in &sim.events {
        if let Event::Broadcast(BroadcastEvent::Deliver { id, .. }) = e {
            *m.entry((*id, *host)).or_insert(0) += 1;
        }
    }
    m
}

#[test]
fn origins_that_lost_everything_number_on_and_lose_nothing() {
    let mut cfg = SimConfig {
        seed: 37,
        checks: true,
        ..SimConfig::default()
    };
    cfg.chord.broadcast.numbering_wait = NUMBERING_WAIT;
    let mut sim = Sim::new(cfg);
    for _ in 0..N {
        sim.add_host();
    }
    sim.form_ring(N, true);
    let mut old = Vec::new();
    for &o in &ORIGINS {
        for seq in 1..=EACH {
            send(&mut sim, o, seq, &mut old);
        }
    }
    let mut new = Vec::new();
    sim.run_for(Duration::from_secs(20));
    for &o in &ORIGINS {
        sim.crash(o);
    }
    sim.run_for(Duration::from_secs(10));
    for &o in &ORIGINS {
        sim.join(o, 0);
    }
    // Each numbers as the daemon does: once admitted, above the floor.
    let deadline = sim.now() + Duration::from_secs(30);
    let mut pending: Vec<u32> = ORIGINS.to_vec();
    while !pending.is_empty() {
        assert!(
            sim.now() < deadline,
            "origins {pending:?} never admitted a broadcast"
        );
        sim.run_for(Duration::from_millis(50));
        let now = sim.now();
        let mut still = Vec::new();
        for o in pending {
            let id = sim.hosts[o as usize].peer.id;
            let floor = match sim.node(&id) {
                Some(n) if n.ring().is_member() && n.admits_broadcast(now).is_ok() => {
                    n.own_seq_floor()
                }
                _ => {
                    still.push(o);
                    continue;
                }
            };
            assert_eq!(floor, EACH, "origin {o} learnt its highest number");
            for seq in floor + 1..=floor + EACH {
                send(&mut sim, o, seq, &mut new);
            }
        }
        pending = still;
    }
    sim.run_for(Duration::from_secs(60));
    let got = deliveries(&sim);
    // Every other host exactly once; the origin holds it from its send.
    for (id, origin) in &new {
        for h in (0..N).filter(|h| h != origin) {
            let n = got.get(&(*id, h)).copied().unwrap_or(0);
            assert_eq!(
                n, 1,
                "new message {id:?} of {origin} reached host {h} {n} times"
            );
        }
    }
    // The old ones too, and the restarted origin got its own back once (anti-entropy).
    for (id, _) in &old {
        for h in 0..N {
            let n = got.get(&(*id, h)).copied().unwrap_or(0);
            let crashed = ORIGINS.contains(&h);
            assert!(
                n == 1 || (crashed && n == 2),
                "old message {id:?} reached host {h} {n} times"
            );
        }
    }
}
