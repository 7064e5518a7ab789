//! Tests of a ring cut in its first seconds (issue 37): every node joined through one
//! bootstrap, and the partition comes as soon as the ring first looks right, with the
//! bootstrap on one side. Each side must close into one ring during the cut (no side may stay
//! split into rings that do not know each other), and the whole must be one ring soon after the
//! heal.

use std::collections::BTreeSet;
use std::time::Duration;

use rand::seq::SliceRandom;

use super::*;

/// Within this long of the cut, each side is one correct ring.
const SIDE_DEADLINE: Duration = Duration::from_secs(30);
/// Within this long of the heal, the whole is one correct ring.
const HEAL_DEADLINE: Duration = Duration::from_secs(10);

/// What happened to one young cut.
#[derive(Debug)]
struct Outcome {
    /// Per side: seconds from the cut until it was one correct ring (`None`: never, within
    /// [`SIDE_DEADLINE`]).
    sides: [Option<f64>; 2],
    /// Seconds from the heal until the whole was one correct ring (`None`: not within
    /// [`HEAL_DEADLINE`]).
    healed: Option<f64>,
}

fn side(sim: &Sim, g: u8) -> BTreeSet<NodeId> {
    sim.hosts
        .iter()
        .filter(|h| h.group == g && h.node.is_some())
        .map(|h| h.peer.id)
        .collect()
}

/// `n` hosts join through host 0, 50 ms apart; the moment (100 ms steps) the ring is correct
/// it is cut in two halves of random members, host 0 on side 0, for `cut` of virtual time.
fn young_cut(seed: u64, n: u32, cut: Duration) -> Outcome {
    let mut sim = Sim::new(SimConfig {
        seed,
        ..SimConfig::default()
    });
    for _ in 0..n {
        sim.add_host();
    }
    sim.create(0);
    for i in 1..n {
        sim.join(i, 0);
        sim.run_for(Duration::from_millis(50));
    }
    let deadline = sim.now() + Duration::from_secs(120);
    while !(sim.members().len() == n as usize && oracle::check(&sim).ring_correct) {
        assert!(sim.now() < deadline, "seed {seed}: the ring did not form");
        sim.run_for(Duration::from_millis(100));
    }
    let mut others: Vec<u32> = (1..n).collect();
    others.shuffle(sim.rng());
    let mut groups = vec![0u8; n as usize];
    for h in &others[(n as usize / 2 - 1)..] {
        groups[*h as usize] = 1;
    }
    sim.partition(&groups);
    let cut_at = sim.now();
    let sides = [side(&sim, 0), side(&sim, 1)];
    let r = sim.cfg.chord.ring.successors;
    let mut took: [Option<f64>; 2] = [None, None];
    while sim.now().since(cut_at) < cut {
        sim.run_for(Duration::from_millis(250));
        for g in 0..2 {
            if took[g].is_none() && oracle::check_ring(&sim, &sides[g], r).ring_correct {
                let t = sim.now().since(cut_at);
                took[g] = (t <= SIDE_DEADLINE).then_some(t.as_secs_f64());
            }
        }
    }
    // A side that was one ring once must still be one at the end of the cut.
    for g in 0..2 {
        if !oracle::check_ring(&sim, &sides[g], r).ring_correct {
            took[g] = None;
        }
    }
    sim.heal();
    let healed_at = sim.now();
    let mut healed = None;
    while sim.now().since(healed_at) <= HEAL_DEADLINE {
        if oracle::check(&sim).ring_correct {
            healed = Some(sim.now().since(healed_at).as_secs_f64());
            break;
        }
        sim.run_for(Duration::from_millis(250));
    }
    Outcome {
        sides: took,
        healed,
    }
}

impl Outcome {
    fn sound(&self) -> bool {
        self.sides.iter().all(Option::is_some) && self.healed.is_some()
    }
}

/// Runs the young cut over `seeds` with `n` nodes and fails naming every unsound seed.
fn across_seeds(seeds: std::ops::RangeInclusive<u64>, n: u32) {
    let mut bad = Vec::new();
    for seed in seeds {
        let o = young_cut(seed, n, Duration::from_secs(60));
        eprintln!("{n} nodes, seed {seed}: {o:?}");
        if !o.sound() {
            bad.push((seed, o));
        }
    }
    assert!(
        bad.is_empty(),
        "{n} nodes: {} seeds unsound (sides: seconds to one ring after the cut, at most {} s; \
         healed: seconds to one ring after the heal, at most {} s): {bad:?}",
        bad.len(),
        SIDE_DEADLINE.as_secs(),
        HEAL_DEADLINE.as_secs()
    );
}

#[test]
fn each_side_of_a_ring_of_twelve_cut_young_closes_into_one_ring_and_heals() {
    across_seeds(1..=20, 12);
}
