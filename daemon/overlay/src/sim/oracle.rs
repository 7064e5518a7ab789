//! The simulator's global view: compares every node's routing state with the true ring.

use std::collections::BTreeSet;

use crate::NodeId;

use super::Sim;

/// How close the ring is to correct.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RingCheck {
    /// Live members checked.
    pub members: usize,
    /// Every member's successor and predecessor are the true ones.
    pub ring_correct: bool,
    /// Members whose successor is wrong.
    pub wrong_successors: usize,
    /// Members whose predecessor is wrong.
    pub wrong_predecessors: usize,
    /// Fraction of successor-list entries equal to the true ones (0–1).
    pub successor_lists_correct: f64,
    /// Fraction of the true distinct fingers present in the finger tables (0–1).
    pub fingers_correct: f64,
}

fn next_of(set: &BTreeSet<NodeId>, id: &NodeId) -> Option<NodeId> {
    use std::ops::Bound::{Excluded, Unbounded};
    set.range((Excluded(id), Unbounded))
        .next()
        .or_else(|| set.iter().next())
        .copied()
        .filter(|n| n != id)
}

fn prev_of(set: &BTreeSet<NodeId>, id: &NodeId) -> Option<NodeId> {
    set.range(..id)
        .next_back()
        .or_else(|| set.iter().next_back())
        .copied()
        .filter(|n| n != id)
}

fn successor_of_key(set: &BTreeSet<NodeId>, key: &NodeId) -> Option<NodeId> {
    set.range(key..)
        .next()
        .or_else(|| set.iter().next())
        .copied()
}

/// Checks the ring formed by `members` (all of them, or one side of a partition).
pub fn check_ring(sim: &Sim, members: &BTreeSet<NodeId>, r: usize) -> RingCheck {
    let mut c = RingCheck {
        members: members.len(),
        ..RingCheck::default()
    };
    let (mut succ_ok, mut succ_total) = (0usize, 0usize);
    let (mut fing_ok, mut fing_total) = (0usize, 0usize);
    for id in members {
        let Some(node) = sim.node(id) else { continue };
        let succs = node.ring().successors();
        let true_succ = next_of(members, id);
        if succs.first().map(|p| p.id) != true_succ {
            c.wrong_successors += 1;
        }
        if node.ring().predecessor().map(|p| p.id) != prev_of(members, id) {
            c.wrong_predecessors += 1;
        }
        // Successor list: the next min(r, n-1) members.
        let mut cur = *id;
        for k in 0..r.min(members.len().saturating_sub(1)) {
            let Some(n) = next_of(members, &cur) else {
                break;
            };
            succ_total += 1;
            if succs.get(k).map(|p| p.id) == Some(n) {
                succ_ok += 1;
            }
            cur = n;
        }
        // Fingers: the true distinct chain, entry by entry.
        let mut bit = 0u32;
        while bit < crate::ID_BITS {
            let start = id.add_pow2(bit);
            let Some(f) = successor_of_key(members, &start) else {
                break;
            };
            if f == *id {
                break;
            }
            fing_total += 1;
            if node
                .ring()
                .fingers()
                .iter()
                .any(|e| u32::from(e.bit) == bit && e.peer.id == f)
            {
                fing_ok += 1;
            }
            match id.distance_to(&f).log2() {
                Some(b) => bit = b + 1,
                None => break,
            }
        }
    }
    c.ring_correct = c.wrong_successors == 0 && c.wrong_predecessors == 0;
    c.successor_lists_correct = ratio(succ_ok, succ_total);
    c.fingers_correct = ratio(fing_ok, fing_total);
    c
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

/// Checks the whole ring of live members.
pub fn check(sim: &Sim) -> RingCheck {
    check_ring(sim, sim.members(), sim.cfg.chord.ring.successors)
}
