//! What a node remembers of broadcasts, all of it bounded: which sequence numbers of each
//! origin it has seen (de-duplication), the recent messages themselves (served to neighbours by
//! anti-entropy), and how far each message's arc has been covered from here.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use super::{Envelope, MsgId};
use crate::id::NodeId;
use crate::time::Time;

/// Sequence numbers seen from one origin: everything up to `high`, plus those in `above`.
#[derive(Clone, Debug, Default)]
struct Seen {
    high: u64,
    above: BTreeSet<u64>,
    touched: Time,
}

/// A stored message.
#[derive(Clone, Debug)]
pub struct Remembered {
    /// The message.
    pub env: Envelope,
    /// Its id.
    pub id: MsgId,
    /// When it arrived.
    pub at: Time,
    /// The farthest limit this node has forwarded it up to (`None`: not forwarded).
    pub covered: Option<NodeId>,
}

/// Bounded broadcast memory.
#[derive(Debug)]
pub struct Memory {
    seen: BTreeMap<NodeId, Seen>,
    msgs: BTreeMap<(NodeId, u64), Remembered>,
    order: VecDeque<(NodeId, u64)>,
    max_stored: usize,
    max_origins: usize,
    max_out_of_order: usize,
}

impl Memory {
    /// An empty store with these bounds.
    pub fn new(max_stored: usize, max_origins: usize, max_out_of_order: usize) -> Memory {
        Memory {
            seen: BTreeMap::new(),
            msgs: BTreeMap::new(),
            order: VecDeque::new(),
            max_stored: max_stored.max(1),
            max_origins: max_origins.max(1),
            max_out_of_order: max_out_of_order.max(1),
        }
    }

    /// Whether `(origin, seq)` was seen before.
    pub fn is_seen(&self, origin: &NodeId, seq: u64) -> bool {
        self.seen
            .get(origin)
            .is_some_and(|s| seq <= s.high || s.above.contains(&seq))
    }

    /// The highest sequence number of `origin` seen (0: none, or the origin is forgotten).
    pub fn highest(&self, origin: &NodeId) -> u64 {
        self.seen
            .get(origin)
            .map_or(0, |s| s.above.last().copied().unwrap_or(0).max(s.high))
    }

    /// Records a new message (the caller checked [`Memory::is_seen`]) and keeps it for
    /// anti-entropy, evicting the oldest beyond the bound.
    pub fn insert(&mut self, now: Time, env: Envelope, id: MsgId) {
        let key = (env.origin, env.seq);
        self.mark_seen(now, env.origin, env.seq);
        self.msgs.insert(
            key,
            Remembered {
                env,
                id,
                at: now,
                covered: None,
            },
        );
        self.order.push_back(key);
        while self.order.len() > self.max_stored {
            if let Some(old) = self.order.pop_front() {
                self.msgs.remove(&old);
            }
        }
    }

    fn mark_seen(&mut self, now: Time, origin: NodeId, seq: u64) {
        if !self.seen.contains_key(&origin) && self.seen.len() >= self.max_origins {
            // Forget the origin quiet for longest.
            if let Some(k) = self
                .seen
                .iter()
                .min_by_key(|(_, s)| s.touched)
                .map(|(k, _)| *k)
            {
                self.seen.remove(&k);
            }
        }
        let s = self.seen.entry(origin).or_default();
        s.touched = now;
        if seq <= s.high {
            return;
        }
        s.above.insert(seq);
        if s.above.len() > self.max_out_of_order {
            // The gap below will not be filled any more: give it up.
            if let Some(first) = s.above.first().copied() {
                s.high = first - 1;
            }
        }
        while s.above.first() == Some(&(s.high + 1)) {
            s.above.pop_first();
            s.high += 1;
        }
    }

    /// Forgets that `(origin, seq)` was seen, so that anti-entropy brings it back: the
    /// application could not keep it (its store failed). The contiguous high drops below it;
    /// the numbers seen above it stay seen while they fit the out-of-order bound (past that
    /// they are given up and may come back as duplicates, which the application drops). The
    /// stored copy is kept (it is still served to neighbours).
    pub fn forget(&mut self, origin: &NodeId, seq: u64) {
        let Some(s) = self.seen.get_mut(origin) else {
            return;
        };
        if seq == 0 {
            return;
        }
        if seq > s.high {
            s.above.remove(&seq);
            return;
        }
        let old = s.high;
        s.high = seq - 1;
        let room = self.max_out_of_order.saturating_sub(s.above.len());
        let count = usize::try_from(old - seq).unwrap_or(usize::MAX);
        if count <= room {
            s.above.extend(seq + 1..=old);
        }
    }

    /// The stored message `(origin, seq)`.
    pub fn get(&self, origin: &NodeId, seq: u64) -> Option<&Remembered> {
        self.msgs.get(&(*origin, seq))
    }

    /// The stored message `(origin, seq)`, mutable.
    pub fn get_mut(&mut self, origin: &NodeId, seq: u64) -> Option<&mut Remembered> {
        self.msgs.get_mut(&(*origin, seq))
    }

    /// Number of stored messages.
    pub fn len(&self) -> usize {
        self.msgs.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    /// `(origin, contiguous high)` of the `max` most recently active origins, and whether that
    /// is every origin we know.
    pub fn digest(&self, max: usize) -> (Vec<(NodeId, u64)>, bool) {
        let mut v: Vec<(&NodeId, &Seen)> = self.seen.iter().collect();
        let complete = v.len() <= max;
        if !complete {
            v.sort_by(|a, b| b.1.touched.cmp(&a.1.touched).then(a.0.cmp(b.0)));
            v.truncate(max);
        }
        (v.into_iter().map(|(o, s)| (*o, s.high)).collect(), complete)
    }

    /// Remembered messages, at least `grace` old, that a neighbour with this digest lacks (at most
    /// `max`). Origins missing from a complete digest are unknown to the neighbour.
    pub fn missing_for(
        &self,
        heads: &[(NodeId, u64)],
        complete: bool,
        now: Time,
        grace: Duration,
        max: usize,
    ) -> Vec<&Remembered> {
        let theirs: BTreeMap<&NodeId, u64> = heads.iter().map(|(o, h)| (o, *h)).collect();
        let mut out = Vec::new();
        for ((origin, seq), m) in &self.msgs {
            if out.len() >= max {
                break;
            }
            let lacks = match theirs.get(origin) {
                Some(h) => seq > h,
                None => complete,
            };
            if lacks && now.since(m.at) >= grace {
                out.push(m);
            }
        }
        out
    }

    /// Whether a neighbour with this digest has seen something we have not.
    pub fn lacks_any(&self, heads: &[(NodeId, u64)]) -> bool {
        heads
            .iter()
            .any(|(o, h)| self.seen.get(o).is_none_or(|s| s.high < *h))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(o: u8, seq: u64) -> Envelope {
        Envelope {
            origin: NodeId([o; 32]),
            seq,
            payload: vec![o, seq as u8],
        }
    }

    fn put(s: &mut Memory, t: u64, e: Envelope) {
        let id = e.id();
        s.insert(Time::ZERO + Duration::from_secs(t), e, id);
    }

    #[test]
    fn dedup_tracks_gaps() {
        let mut s = Memory::new(100, 10, 10);
        let o = NodeId([1; 32]);
        put(&mut s, 0, env(1, 1));
        put(&mut s, 0, env(1, 3));
        assert!(s.is_seen(&o, 1) && !s.is_seen(&o, 2) && s.is_seen(&o, 3));
        assert_eq!(s.digest(10).0, vec![(o, 1)]);
        put(&mut s, 0, env(1, 2));
        assert_eq!(s.digest(10).0, vec![(o, 3)]);
        // The highest number seen counts the out-of-order ones.
        put(&mut s, 0, env(1, 7));
        assert_eq!((s.highest(&o), s.highest(&NodeId([2; 32]))), (7, 0));
    }

    #[test]
    fn bounds_hold() {
        let mut s = Memory::new(5, 3, 4);
        for i in 1..=20u8 {
            put(&mut s, u64::from(i), env(i, 1));
        }
        assert_eq!(s.len(), 5);
        assert_eq!(s.seen.len(), 3);
        // A long gap is given up rather than remembered forever.
        for seq in 10..20 {
            put(&mut s, 30, env(99, seq));
        }
        assert!(s.seen[&NodeId([99; 32])].above.len() <= 4);
    }

    #[test]
    fn anti_entropy_offers_what_the_neighbour_lacks() {
        let mut s = Memory::new(100, 10, 10);
        put(&mut s, 0, env(1, 1));
        put(&mut s, 0, env(1, 2));
        put(&mut s, 0, env(2, 1));
        put(&mut s, 9, env(3, 1));
        let now = Time::ZERO + Duration::from_secs(10);
        let grace = Duration::from_secs(5);
        let heads = vec![(NodeId([1; 32]), 1)];
        let m = s.missing_for(&heads, true, now, grace, 10);
        // (1,2) and (2,1); (3,1) is too recent.
        assert_eq!(m.len(), 2);
        assert!(s.missing_for(&heads, false, now, grace, 10).len() == 1);
        assert!(s.lacks_any(&[(NodeId([1; 32]), 5)]));
        assert!(!s.lacks_any(&[(NodeId([1; 32]), 2)]));
    }

    #[test]
    fn a_forgotten_message_is_asked_for_again() {
        let mut s = Memory::new(100, 10, 10);
        let o = NodeId([1; 32]);
        for seq in 1..=5 {
            put(&mut s, 0, env(1, seq));
        }
        s.forget(&o, 3);
        assert!(!s.is_seen(&o, 3) && s.is_seen(&o, 2) && s.is_seen(&o, 4));
        assert_eq!(s.digest(10).0, vec![(o, 2)]);
        // A neighbour holding 1..=5 now offers 3 (and 4, 5, which are dropped as seen).
        assert!(s.lacks_any(&[(o, 5)]));
        put(&mut s, 1, env(1, 3));
        assert_eq!(s.digest(10).0, vec![(o, 5)]);
        // Past the out-of-order bound the numbers above are given up rather than kept.
        for seq in 6..=40 {
            put(&mut s, 2, env(1, seq));
        }
        s.forget(&o, 10);
        assert_eq!(s.digest(10).0, vec![(o, 9)]);
        assert!(s.seen[&o].above.len() <= 10);
        assert!(!s.is_seen(&o, 10) && !s.is_seen(&o, 11));
    }
}
