//! Which provider is asked for which chunks: a pure function over ranges and a small state
//! machine per fetch, without I/O.
//!
//! The missing chunks (all chunks minus verified minus those asked of someone) are split
//! into contiguous pieces of about equal size, cut at chunk group boundaries, one per idle
//! provider; the first piece also holds the blob's last chunk group, the one that proves the
//! blob's size. A provider whose response failed gets its unfinished chunks taken back (the
//! next [`FetchPlan::assign`] gives them to others); one that sent bytes that do not verify
//! is never asked again; one that failed otherwise (gone, truncated, not found) is asked
//! again up to [`MAX_FAILURES`] times, but only while no provider that failed less is left.

use bao_tree::{ChunkNum, ChunkRanges};
use range_collections::range_set::RangeSetRange;

use crate::hash::{self, GROUP_CHUNKS};
use crate::wire::MAX_BOUNDARIES;

/// A provider that failed this many times (without lying) is not asked again.
pub const MAX_FAILURES: u32 = 3;

/// Splits the chunks of `missing` below `end` into at most `parts` pieces of about equal
/// size, each a set of whole chunk groups (but the blob's last, short one) with at most
/// [`MAX_BOUNDARIES`] boundaries. Pieces are disjoint, in order, and none is empty. When
/// `missing` is too fragmented for the bound, the pieces cover only a prefix of it; the
/// rest is planned once those arrive.
pub fn split(missing: &ChunkRanges, end: ChunkNum, parts: usize) -> Vec<ChunkRanges> {
    let missing = missing & &ChunkRanges::from(ChunkNum(0)..end);
    let total = hash::count_chunks(&missing, end);
    if parts == 0 || total == 0 {
        return Vec::new();
    }
    let groups = total.div_ceil(GROUP_CHUNKS);
    let per_part = groups.div_ceil(parts as u64).max(1) * GROUP_CHUNKS;
    let max_ranges = MAX_BOUNDARIES / 2;
    let mut pieces = Vec::new();
    let mut piece = ChunkRanges::empty();
    let mut piece_chunks = 0u64;
    let mut piece_ranges = 0usize;
    for r in missing.iter() {
        let (mut start, stop) = match r {
            RangeSetRange::Range(r) => (r.start.0, r.end.0),
            RangeSetRange::RangeFrom(r) => (r.start.0, end.0),
        };
        while start < stop {
            if piece_ranges == max_ranges || piece_chunks >= per_part {
                pieces.push(std::mem::take(&mut piece));
                piece_chunks = 0;
                piece_ranges = 0;
                if pieces.len() == parts {
                    return pieces;
                }
            }
            // Cut at a chunk group boundary so no group is split between providers.
            let room = per_part - piece_chunks;
            let mut cut = stop.min(start + room);
            if cut < stop {
                cut = cut.div_ceil(GROUP_CHUNKS) * GROUP_CHUNKS;
                cut = cut.min(stop);
            }
            piece |= ChunkRanges::from(ChunkNum(start)..ChunkNum(cut));
            piece_chunks += cut - start;
            piece_ranges += 1;
            start = cut;
        }
    }
    if !piece.is_empty() {
        pieces.push(piece);
    }
    pieces
}

/// The chunks of the last chunk group of a blob of `end` chunks.
fn last_group(end: ChunkNum) -> ChunkRanges {
    if end.0 == 0 {
        return ChunkRanges::empty();
    }
    let start = (end.0 - 1) / GROUP_CHUNKS * GROUP_CHUNKS;
    ChunkRanges::from(ChunkNum(start)..end)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Idle { failures: u32 },
    Busy { ranges: ChunkRanges, failures: u32 },
    Bad,
}

/// One fetch's providers and what each was asked for.
#[derive(Debug, Clone)]
pub struct FetchPlan<P> {
    end: ChunkNum,
    providers: Vec<(P, State)>,
}

/// How a provider's response ended badly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Its bytes did not verify: never ask it again.
    Lied,
    /// Gone, cut short, or it does not have the blob: ask it again later, a few times.
    Unavailable,
}

impl<P: Clone + PartialEq> FetchPlan<P> {
    /// A plan for a blob of `size` bytes over `providers`.
    pub fn new(size: u64, providers: impl IntoIterator<Item = P>) -> Self {
        let mut plan = FetchPlan {
            end: ChunkNum::chunks(size),
            providers: Vec::new(),
        };
        for p in providers {
            plan.add_provider(p);
        }
        plan
    }

    /// Adds a provider (found later in the DHT); a known one is left as it is.
    pub fn add_provider(&mut self, p: P) {
        if !self.providers.iter().any(|(q, _)| *q == p) {
            self.providers.push((p, State::Idle { failures: 0 }));
        }
    }

    /// The chunks asked of some provider and not answered yet.
    pub fn in_flight(&self) -> ChunkRanges {
        let mut all = ChunkRanges::empty();
        for (_, s) in &self.providers {
            if let State::Busy { ranges, .. } = s {
                all |= ranges.clone();
            }
        }
        all
    }

    /// Gives every idle provider a piece of what is neither `verified` nor in flight, and
    /// returns the new requests.
    pub fn assign(&mut self, verified: &ChunkRanges) -> Vec<(P, ChunkRanges)> {
        let open = ChunkRanges::from(ChunkNum(0)..self.end) - verified - self.in_flight();
        // Work goes to the providers that failed least: one that failed (gone, say) is
        // asked again only when no provider with fewer failures is left, so a dead one does
        // not hold pieces that a healthy one, busy or idle, would deliver.
        let least = self
            .providers
            .iter()
            .filter_map(|(_, s)| match s {
                State::Idle { failures } | State::Busy { failures, .. } => Some(*failures),
                State::Bad => None,
            })
            .min();
        let idle: Vec<usize> = self
            .providers
            .iter()
            .enumerate()
            .filter(|(_, (_, s))| matches!(s, State::Idle { failures } if Some(*failures) == least))
            .map(|(i, _)| i)
            .collect();
        // The blob's last chunk group goes first (with the first piece): only it proves the
        // size the reference gave, which shapes the whole tree.
        let last = last_group(self.end);
        let lead = !idle.is_empty() && !last.is_empty() && last.is_subset(&open);
        let rest = if lead { &open - &last } else { open };
        let mut pieces = split(&rest, self.end, idle.len());
        if lead {
            match pieces.first_mut() {
                Some(p) if p.boundaries().len() + 2 <= MAX_BOUNDARIES => *p |= last,
                Some(_) => {}
                None => pieces.push(last),
            }
        }
        let mut out = Vec::with_capacity(pieces.len());
        for (i, piece) in idle.into_iter().zip(pieces) {
            let (p, s) = &mut self.providers[i];
            let failures = match s {
                State::Idle { failures } => *failures,
                _ => 0,
            };
            *s = State::Busy {
                ranges: piece.clone(),
                failures,
            };
            out.push((p.clone(), piece));
        }
        out
    }

    /// The provider's response ended well; it may be given more.
    pub fn done(&mut self, p: &P) {
        if let Some((_, s)) = self.providers.iter_mut().find(|(q, _)| q == p)
            && let State::Busy { failures, .. } = s
        {
            *s = State::Idle {
                failures: *failures,
            };
        }
    }

    /// The provider's response failed; its unfinished chunks go back to the plan.
    pub fn failed(&mut self, p: &P, how: Failure) {
        if let Some((_, s)) = self.providers.iter_mut().find(|(q, _)| q == p) {
            let failures = match s {
                State::Idle { failures } | State::Busy { failures, .. } => *failures + 1,
                State::Bad => return,
            };
            *s = if how == Failure::Lied || failures >= MAX_FAILURES {
                State::Bad
            } else {
                State::Idle { failures }
            };
        }
    }

    /// Whether the provider was found lying or failed too often.
    pub fn is_bad(&self, p: &P) -> bool {
        self.providers
            .iter()
            .any(|(q, s)| q == p && *s == State::Bad)
    }

    /// Whether no provider is left to ask (all bad) while chunks are still missing.
    pub fn is_stuck(&self, verified: &ChunkRanges) -> bool {
        let missing = ChunkRanges::from(ChunkNum(0)..self.end) - verified;
        !missing.is_empty() && self.providers.iter().all(|(_, s)| *s == State::Bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(a: u64, b: u64) -> ChunkRanges {
        ChunkRanges::from(ChunkNum(a)..ChunkNum(b))
    }

    fn check_pieces(missing: &ChunkRanges, end: u64, pieces: &[ChunkRanges]) {
        let mut union = ChunkRanges::empty();
        for p in pieces {
            assert!(!p.is_empty());
            assert!(p.boundaries().len() <= MAX_BOUNDARIES);
            assert!((&union & p).is_empty(), "pieces overlap");
            for b in p.boundaries() {
                assert!(
                    b.0 % GROUP_CHUNKS == 0 || b.0 == end,
                    "cut inside a group: {b:?}"
                );
            }
            union |= p.clone();
        }
        assert!(union.is_subset(missing));
    }

    #[test]
    fn split_is_balanced_aligned_and_complete() {
        for (end, parts) in [
            (1u64, 1usize),
            (1000, 3),
            (1000, 1),
            (17, 4),
            (4096, 7),
            (33, 2),
        ] {
            let missing = r(0, end);
            let pieces = split(&missing, ChunkNum(end), parts);
            check_pieces(&missing, end, &pieces);
            assert!(pieces.len() <= parts);
            let union = pieces
                .iter()
                .fold(ChunkRanges::empty(), |a, p| a | p.clone());
            assert_eq!(union, missing, "end {end} parts {parts}");
            let sizes: Vec<u64> = pieces
                .iter()
                .map(|p| hash::count_chunks(p, ChunkNum(end)))
                .collect();
            let (min, max) = (sizes.iter().min(), sizes.iter().max());
            if let (Some(min), Some(max)) = (min, max) {
                assert!(
                    max - min <= end.min(GROUP_CHUNKS * parts as u64),
                    "{sizes:?}"
                );
            }
        }
        assert!(split(&r(0, 10), ChunkNum(10), 0).is_empty());
        assert!(split(&ChunkRanges::empty(), ChunkNum(10), 3).is_empty());
        // Nothing past the end is planned.
        let pieces = split(&ChunkRanges::all(), ChunkNum(40), 2);
        assert_eq!(pieces, vec![r(0, 32), r(32, 40)]);
    }

    #[test]
    fn fragmented_missing_stays_within_the_bound() {
        // 100 separate groups missing: more ranges than one request may hold.
        let mut missing = ChunkRanges::empty();
        for i in 0..100u64 {
            missing |= r(i * 32, i * 32 + 16);
        }
        let end = 100 * 32;
        let pieces = split(&missing, ChunkNum(end), 1);
        check_pieces(&missing, end, &pieces);
        assert_eq!(pieces.len(), 1);
        assert_eq!(pieces[0].boundaries().len(), MAX_BOUNDARIES);
        let pieces = split(&missing, ChunkNum(end), 4);
        check_pieces(&missing, end, &pieces);
        let union = pieces
            .iter()
            .fold(ChunkRanges::empty(), |a, p| a | p.clone());
        assert_eq!(union, missing);
    }

    #[test]
    fn replans_after_a_liar_and_an_outage() {
        let end = 64 * 16; // 64 groups
        let mut plan = FetchPlan::new(end * 1024, ["a", "b", "c"]);
        let mut verified = ChunkRanges::empty();
        let first = plan.assign(&verified);
        assert_eq!(first.len(), 3);
        let all = first
            .iter()
            .fold(ChunkRanges::empty(), |a, (_, p)| a | p.clone());
        assert_eq!(all, r(0, end));
        assert!(
            first[0].1.contains(&ChunkNum(end - 1)),
            "the last group leads"
        );
        assert!(first[0].1.contains(&ChunkNum(0)));
        // Nothing more to hand out while all is in flight.
        assert!(plan.assign(&verified).is_empty());

        // "a" delivers; "b" lies after half its piece verified; "c" goes away.
        verified |= first[0].1.clone();
        plan.done(&"a");
        let b_piece = first[1].1.clone();
        let b_half = split(&b_piece, ChunkNum(end), 2)[0].clone();
        verified |= b_half.clone();
        plan.failed(&"b", Failure::Lied);
        plan.failed(&"c", Failure::Unavailable);
        assert!(plan.is_bad(&"b"));
        assert!(!plan.is_bad(&"c"));

        let second = plan.assign(&verified);
        let names: Vec<&str> = second.iter().map(|(p, _)| *p).collect();
        assert_eq!(
            names,
            vec!["a"],
            "neither the liar nor, while a healthy one is left, the gone one"
        );
        assert_eq!(second[0].1, r(0, end) - verified.clone(), "the remainder");

        // "a" is cut short after part of it: both failed once now, so both are asked.
        verified |= split(&second[0].1, ChunkNum(end), 2)[0].clone();
        plan.failed(&"a", Failure::Unavailable);
        let third = plan.assign(&verified);
        let names: Vec<&str> = third.iter().map(|(p, _)| *p).collect();
        assert_eq!(names, vec!["a", "c"]);
        let again = third
            .iter()
            .fold(ChunkRanges::empty(), |a, (_, p)| a | p.clone());
        assert_eq!(again, r(0, end) - verified.clone(), "exactly the remainder");

        // "c" keeps failing: after MAX_FAILURES it is out; "a" finishes the rest.
        plan.done(&"a");
        verified |= third[0].1.clone();
        plan.failed(&"c", Failure::Unavailable);
        plan.failed(&"c", Failure::Unavailable);
        assert!(plan.is_bad(&"c"));
        let fourth = plan.assign(&verified);
        assert_eq!(fourth.len(), 1);
        assert_eq!(fourth[0].0, "a");
        verified |= fourth[0].1.clone();
        assert_eq!(verified, r(0, end));
        assert!(!plan.is_stuck(&verified));
    }

    #[test]
    fn stuck_when_every_provider_is_bad() {
        let mut plan = FetchPlan::new(5000, [1u8, 2]);
        let v = ChunkRanges::empty();
        plan.assign(&v);
        plan.failed(&1, Failure::Lied);
        assert!(!plan.is_stuck(&v));
        plan.failed(&2, Failure::Lied);
        assert!(plan.is_stuck(&v));
        assert!(plan.assign(&v).is_empty());
        plan.add_provider(3);
        assert!(!plan.is_stuck(&v));
        assert_eq!(plan.assign(&v).len(), 1);
    }
}
