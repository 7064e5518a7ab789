//! Tests of the *echo*: a node that holds nothing for a held name (a joiner that just became
//! one of its holders, a node that replaced a crashed holder) must not take the first claim
//! copy pushed to it as its own vote, or a lying holder plus its echo would be two votes of
//! three and even the honest holders' settlements would elect the liar's claim.

use std::time::Duration;

use super::policy;
use super::tests::{copies, get_done, key, nick, put_done, run_lying, wait, wall};
use super::*;
use crate::sim::{Sim, SimConfig};

/// What happens among the name's holders while the liar starts lying.
#[derive(Clone, Copy, Debug)]
enum Churn {
    /// An honest node joins at this place among the holders: 0 before the key's primary (it
    /// becomes the primary), 1 between the first and the second holder, 2 between the second
    /// and the third; the third is displaced (it still holds the honest copy until the stray
    /// rule drops it).
    Join(usize),
    /// The honest holder at this index crashes; the node after the holders replaces it, with
    /// an empty store.
    Crash(usize),
}

/// A settled ring of `n` (every successor list complete), keeping a witness copy or not
/// ([`RecordsConfig::witness`]).
fn ring(seed: u64, n: u32, witness: bool) -> Sim {
    let mut sim = Sim::new(SimConfig {
        seed,
        checks: true,
        wire: true,
        ..SimConfig::default()
    });
    sim.cfg.chord.records.witness = witness;
    for _ in 0..n {
        sim.add_host();
    }
    sim.form_ring(n, true);
    sim
}

/// The midpoint of the arc from `a` clockwise to `b`.
fn between(a: &NodeId, b: &NodeId) -> NodeId {
    a.wrapping_add(&NodeId::from_high_u64(a.distance_to(b).high_u64() / 2))
}

/// A settled ring of `n` holds alice's claim at its three holders (and the witness after
/// them); the holder at `lying`
/// (0 = the primary) plants a backdated claim by mallory and keeps it planted, and at that
/// moment `churn` happens. Returns what went wrong (nothing when the honest holders all end
/// with alice's claim and every honest read names her).
fn echo_attack(seed: u64, n: u32, lying: usize, churn: Churn, witness: bool) -> Vec<String> {
    let mut sim = ring(seed, n, witness);
    let now = wall(&sim);
    let alice = nick("alice", 1, 1, now);
    let forged = Record::sign(
        Kind::Nick,
        b"alice".to_vec(),
        Value::Data(b"profile".to_vec()),
        &key(9),
        1,
        1,
        alice.expires,
    );
    sim.put_record(0, 1, alice.clone(), true);
    assert!(wait(&mut sim, Duration::from_secs(10), |s| put_done(s, 1)).is_ok());
    let loc = alice.location();
    // Settled: the three holders (and the witness after them) hold alice's claim.
    let truth = sim.true_holders(&loc, 3 + usize::from(witness));
    wait(&mut sim, Duration::from_secs(10), |s| {
        truth
            .iter()
            .all(|id| copies(s, &alice).contains(id))
            .then_some(())
    });
    let liar = sim.host_of(&truth[lying]).expect("a holder's host");
    sim.plant_record(liar, forged.clone());
    let mut gone = None;
    match churn {
        Churn::Join(slot) => {
            let id = match slot {
                0 => between(&loc, &truth[0]),
                s => between(&truth[s - 1], &truth[s]),
            };
            let j = sim.add_host_with_id(id);
            sim.join(j, (liar + 1) % n);
        }
        Churn::Crash(c) => {
            let h = sim.host_of(&truth[c]).expect("a holder's host");
            sim.crash(h);
            gone = Some(h);
        }
    }
    run_lying(&mut sim, Duration::from_secs(30), &[liar], &forged);
    let what = format!("seed {seed}, liar {lying}, {churn:?}, witness {witness}");
    let mut wrong = Vec::new();
    let holders = sim.true_holders(&loc, 3);
    for id in &holders {
        if *id != truth[lying] && !copies(&sim, &alice).contains(id) {
            let held = sim.node(id).map(|o| {
                o.records()
                    .store()
                    .get(&loc, alice.kind, &alice.key, wall(&sim))
                    .iter()
                    .map(|r| hex::encode(&r.owner[..2]))
                    .collect::<Vec<_>>()
            });
            wrong.push(format!(
                "{what}: honest holder {} holds {held:?}, not alice's claim",
                id.short()
            ));
        }
    }
    let hosts = sim.hosts.len() as u32;
    let readers: Vec<u32> = (0..hosts)
        .filter(|h| *h != liar && Some(*h) != gone)
        .collect();
    for (t, h) in readers.iter().enumerate() {
        sim.get_record(*h, 100 + t as u64, alice.kind, alice.key.clone());
    }
    run_lying(&mut sim, Duration::from_secs(10), &[liar], &forged);
    for (t, h) in readers.iter().enumerate() {
        let got = get_done(&sim, 100 + t as u64);
        if got != Some(Ok(vec![alice.clone()])) {
            let names = match &got {
                Some(Ok(rs)) => format!(
                    "{:?}",
                    rs.iter()
                        .map(|r| r.owner == forged.owner)
                        .collect::<Vec<_>>()
                ),
                other => format!("{other:?}"),
            };
            wrong.push(format!("{what}: read at host {h}: mallory's? {names}"));
        }
    }
    wrong
}

/// A tie among the holders' votes (a liar and one honest holder, the third holding nothing
/// yet) goes to the owner most of the next nodes past the holders name, before the nearest
/// holder's; an incumbent still keeps a tie.
#[test]
fn the_next_nodes_break_a_tie_among_the_holders_before_their_position() {
    let a = nick("erin", 1, 1, super::tests::NOW);
    let m = nick("erin", 2, 1, 1);
    let loc = a.location();
    let at = |n: u8| loc.wrapping_add(&NodeId::from_high_u64(u64::from(n) << 40));
    // Holders 1 (lies, nearest the key), 2 (honest), 3 (holds nothing); the witness 4 and a
    // displaced node 5 hold alice's claim.
    let votes = [
        (at(1), m.hash()),
        (at(2), a.hash()),
        (at(4), a.hash()),
        (at(5), a.hash()),
    ];
    let known = [at(1), at(2), at(3), at(4), at(5)];
    let ballot = policy::ranked_votes(&loc, 3, &known, &votes);
    assert_eq!(ballot.holders, votes[..2].to_vec());
    assert_eq!(ballot.next, votes[2..].to_vec());
    let copies = [a.clone(), m.clone()];
    assert_eq!(
        policy::elect_read(&loc, &copies, &ballot, None),
        Some(a.owner)
    );
    // Without them the nearest holder's answer wins the tie; the incumbent keeps it anyway.
    let bare = policy::Ballot {
        holders: ballot.holders.clone(),
        next: Vec::new(),
    };
    assert_eq!(
        policy::elect_read(&loc, &copies, &bare, None),
        Some(m.owner)
    );
    assert_eq!(
        policy::elect_read(&loc, &copies, &ballot, Some(m.owner)),
        Some(m.owner)
    );
    // The next nodes never outvote the holders: 2 to 1 among the holders wins.
    let votes = [
        (at(1), m.hash()),
        (at(2), m.hash()),
        (at(3), a.hash()),
        (at(4), a.hash()),
        (at(5), a.hash()),
    ];
    let ballot = policy::ranked_votes(&loc, 3, &known, &votes);
    assert_eq!(
        policy::elect_read(&loc, &copies, &ballot, None),
        Some(m.owner)
    );
}

/// An honest node joins among a held name's holders just as one of them starts lying: the
/// joiner holds nothing, and the liar's copy may reach it first.
#[test]
fn a_joiner_among_the_holders_is_no_echo_of_a_lying_holder() {
    let mut wrong = Vec::new();
    for seed in [81, 82] {
        for lying in 0..3 {
            for slot in 0..3 {
                wrong.extend(echo_attack(seed, 12, lying, Churn::Join(slot), false));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// An honest holder crashes just as another starts lying: the node that replaces it holds
/// nothing, and the liar's copy may reach it first. The liar and the other honest holder tie;
/// with a witness copy the node after the holders breaks the tie (and the replacement, the
/// former witness, holds a copy already).
#[test]
fn a_crashed_holders_replacement_is_no_echo_of_a_lying_holder_with_a_witness() {
    let mut wrong = Vec::new();
    for seed in [91, 92] {
        for lying in 0..3 {
            for crashed in (0..3).filter(|c| *c != lying) {
                wrong.extend(echo_attack(seed, 12, lying, Churn::Crash(crashed), true));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Without the witness (the default), the crash case is the known limit: the liar and the
/// surviving honest holder tie with nothing past the holders to break it, and the tie goes to
/// the holder nearest the key. Where that is the honest holder, the name stays alice's.
#[test]
fn without_a_witness_a_crash_is_survived_where_the_honest_holder_is_nearer_the_key() {
    let mut wrong = Vec::new();
    for seed in [91, 92] {
        // The liar is the last holder; either other holder crashes, the survivor is nearer.
        for crashed in 0..2 {
            wrong.extend(echo_attack(seed, 12, 2, Churn::Crash(crashed), false));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 8, ..Default::default() })]
    /// Any seed, ring size, lying holder and churn among the holders (a crash with the
    /// witness kept).
    #[test]
    fn no_churn_among_the_holders_makes_an_echo_of_a_lying_holder(
        seed in 100u64..10_000,
        n in 8u32..20,
        lying in 0usize..3,
        join in proptest::bool::ANY,
        place in 0usize..3,
        witness in proptest::bool::ANY,
    ) {
        // A crash needs the witness (the known limit otherwise); a join does not.
        let (churn, witness) = if join {
            (Churn::Join(place), witness)
        } else {
            // An honest holder crashes: one of the two that do not lie.
            (Churn::Crash(if place == lying { (place + 1) % 3 } else { place }), true)
        };
        let wrong = echo_attack(seed, n, lying, churn, witness);
        proptest::prop_assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}
