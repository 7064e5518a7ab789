//! Tests of a young claim: one taken while its node was alone, before the ring grew around
//! it, reaches the key's holders promptly, and a holder that planted a backdated claim soon
//! after does not take it.

use std::time::Duration;

use super::tests::{copies, get_done, key, nick, put_done, run_lying, wait, wall};
use super::*;
use crate::sim::{Sim, SimConfig};

/// A ring that grows around a claim: host 0 founds the ring and claims alice while alone,
/// the others join through it 50 ms apart (as the nodes of a new site start). Returns the
/// ring, alice's claim and when the ring was correct.
fn grown_around_a_claim(seed: u64, n: u32) -> (Sim, Record, crate::time::Time) {
    let mut sim = Sim::new(SimConfig {
        seed,
        checks: true,
        wire: true,
        ..SimConfig::default()
    });
    for _ in 0..n {
        sim.add_host();
    }
    sim.create(0);
    sim.run_for(Duration::from_millis(500));
    let alice = nick("alice", 1, 1, wall(&sim));
    sim.put_record(0, 1, alice.clone(), true);
    assert!(wait(&mut sim, Duration::from_secs(5), |s| put_done(s, 1)).is_ok());
    for i in 1..n {
        sim.join(i, 0);
        sim.run_for(Duration::from_millis(50));
    }
    wait(&mut sim, Duration::from_secs(60), |s| {
        (s.members().len() == n as usize && crate::sim::oracle::check(s).ring_correct).then_some(())
    });
    let formed = sim.now();
    (sim, alice, formed)
}

/// A record held only by a node the ring grew past (the founder that took a claim while
/// alone) reaches the key's holders within two sync periods of the ring forming, not only
/// when the stray rule drops it there.
#[test]
fn a_claim_taken_before_the_ring_grew_reaches_its_holders_promptly() {
    for seed in [61, 62, 63, 64, 65, 66] {
        let (mut sim, alice, formed) = grown_around_a_claim(seed, 8);
        let loc = alice.location();
        let period = sim.cfg.chord.records.sync_interval;
        wait(&mut sim, period * 2, |s| {
            s.true_holders(&loc, 3)
                .iter()
                .all(|id| copies(s, &alice).contains(id))
                .then_some(())
        });
        assert!(sim.now().since(formed) <= period * 2, "seed {seed}");
    }
}

/// The e2e attack on a young claim: a modified node that is one of the key's holders
/// restarts with a backdated claim of alice planted soon after the ring formed around it.
/// The honest holders keep alice's claim and every honest read names her.
#[test]
fn a_claim_taken_before_the_ring_grew_is_not_taken_by_a_holder_that_planted_one() {
    for (seed, lying) in [(71, 0), (72, 1), (73, 2), (74, 0), (75, 1), (76, 2)] {
        let (mut sim, alice, _) = grown_around_a_claim(seed, 6);
        let forged = Record::sign(
            Kind::Nick,
            b"alice".to_vec(),
            Value::Data(b"profile".to_vec()),
            &key(9),
            1,
            1,
            alice.expires,
        );
        let loc = alice.location();
        sim.run_for(sim.cfg.chord.records.sync_interval * 2);
        let truth = sim.true_holders(&loc, 3);
        let liar = sim.host_of(&truth[lying]).expect("a holder's host");
        run_lying(&mut sim, Duration::from_secs(30), &[liar], &forged);
        for id in sim.true_holders(&loc, 3) {
            if id != truth[lying] {
                assert!(
                    copies(&sim, &alice).contains(&id),
                    "seed {seed}: honest holder {} lost alice's claim",
                    id.short()
                );
            }
        }
        let n = sim.hosts.len() as u32;
        let readers: Vec<u32> = (0..n).filter(|h| *h != liar).collect();
        for (t, h) in readers.iter().enumerate() {
            sim.get_record(*h, 100 + t as u64, alice.kind, alice.key.clone());
        }
        run_lying(&mut sim, Duration::from_secs(10), &[liar], &forged);
        for t in 0..readers.len() as u64 {
            assert_eq!(
                get_done(&sim, 100 + t),
                Some(Ok(vec![alice.clone()])),
                "seed {seed}: read {t}"
            );
        }
    }
}
