//! Tests of a leaving node's hand-over while its successors churn: successors that died
//! moments before it left (not yet noticed) must not take the last copies with them.

use std::time::Duration;

use super::tests::{copies, put_done, ring, signed_profile, wait};

#[test]
fn a_leaving_primary_whose_next_successors_just_died_still_hands_its_records_on() {
    // What the e2e offline test `..._when_the_sender_is_gone_by_then` met once under load:
    // a mailbox item's primary replicated it to its next successors, those were killed, and
    // the primary stopped (a graceful leave) before the ring noticed; its hand-over went
    // only to the dead successors, and nobody alive held the item.
    let mut sim = ring(31, 12);
    let r = signed_profile(&sim, 3, 1);
    sim.put_record(0, 1, r.clone(), false);
    let put = wait(&mut sim, Duration::from_secs(10), |s| put_done(s, 1));
    assert!(put.is_ok(), "{put:?}");
    let k = sim.cfg.chord.records.replicas;
    // The primary and its next k successors (the k - 1 copies and the next holder-to-be).
    let line = sim.true_holders(&r.location(), k + 1);
    let hosts: Vec<u32> = line
        .iter()
        .map(|id| sim.host_of(id).expect("a host"))
        .collect();
    for &h in &hosts[1..] {
        sim.crash(h);
    }
    sim.leave(hosts[0]);
    // Once the ring has repaired, every true holder among the survivors has the record.
    let held = wait(&mut sim, Duration::from_secs(60), |s| {
        let t = s.true_holders(&r.location(), k);
        let c = copies(s, &r);
        (t.len() == k && t.iter().all(|id| c.contains(id))).then_some(c)
    });
    assert!(held.len() >= k, "{held:?}");
}
