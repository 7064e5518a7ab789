//! The routing state of one node: predecessor, successor list, finger chain, suspects and the
//! graveyard of lost peers. Pure data and queries; the protocol rules live in `maintain.rs`.

use std::collections::BTreeMap;
use std::time::Duration;

use super::RingConfig;
use crate::id::{ID_BITS, NodeId};
use crate::time::Time;
use crate::wire::Peer;

/// One distinct finger: `peer` is (our best knowledge of) the successor of `me + 2^bit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Finger {
    /// The finger's exponent.
    pub bit: u16,
    /// The node at that finger.
    pub peer: Peer,
}

/// A peer lost without a goodbye, probed now and then so that partitions merge after a heal.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lost {
    pub peer: Peer,
    pub since: Time,
    pub next_probe: Time,
    pub backoff: Duration,
    /// When it last spoke to us while buried: the rediscovery it started may fail as well, so
    /// it stays buried (and probed) until it is back in our tables.
    pub heard: Option<Time>,
}

/// Routing state.
#[derive(Debug)]
pub(crate) struct Table {
    pub me: Peer,
    pub pred: Option<Peer>,
    pub succs: Vec<Peer>,
    /// Whether the successor list, as last built, ran all the way round to us: then it holds
    /// every other live member and the ring's size is known exactly ([`Table::exact_size`]).
    wrapped: bool,
    pub fingers: Vec<Finger>,
    suspects: BTreeMap<NodeId, Time>,
    /// Consecutive timeouts per peer since we last heard from it (bounded like suspects).
    strikes: BTreeMap<NodeId, u8>,
    pub graveyard: Vec<Lost>,
}

impl Table {
    pub fn new(me: Peer) -> Table {
        Table {
            me,
            pred: None,
            succs: Vec::new(),
            wrapped: false,
            fingers: Vec::new(),
            suspects: BTreeMap::new(),
            strikes: BTreeMap::new(),
            graveyard: Vec::new(),
        }
    }

    /// Clockwise distance from us.
    pub fn dist(&self, id: &NodeId) -> NodeId {
        self.me.id.distance_to(id)
    }

    pub fn successor(&self) -> Option<Peer> {
        self.succs.first().copied()
    }

    /// Whether we are the successor of `key`: we are alone, or `key ∈ (pred, us]`.
    pub fn owns(&self, key: &NodeId) -> bool {
        self.succs.is_empty()
            || self
                .pred
                .is_some_and(|p| key.in_half_open(&p.id, &self.me.id))
    }

    /// Whether `id` lies between us and our successor (any id does when we have none).
    pub fn closer_than_successor(&self, id: &NodeId) -> bool {
        match self.successor() {
            None => *id != self.me.id,
            Some(s) => id.in_open(&self.me.id, &s.id),
        }
    }

    /// The suspects whose suspicion lasts past `now`.
    pub fn suspects(&self, now: Time) -> Vec<NodeId> {
        self.suspects
            .iter()
            .filter(|(_, until)| **until > now)
            .map(|(id, _)| *id)
            .collect()
    }

    pub fn is_suspect(&self, id: &NodeId, now: Time) -> bool {
        self.suspects.get(id).is_some_and(|until| *until > now)
    }

    /// Marks `peer` as failed: it leaves every routing structure and joins the graveyard.
    pub fn suspect(&mut self, peer: Peer, now: Time, cfg: &RingConfig) {
        if self.suspects.len() >= cfg.max_suspects && !self.suspects.contains_key(&peer.id) {
            self.suspects.retain(|_, until| *until > now);
            if self.suspects.len() >= cfg.max_suspects {
                // Drop the suspicion that expires first.
                if let Some(k) = self
                    .suspects
                    .iter()
                    .min_by_key(|(_, t)| **t)
                    .map(|(k, _)| *k)
                {
                    self.suspects.remove(&k);
                }
            }
        }
        self.suspects.insert(peer.id, now + cfg.suspect_ttl);
        self.strikes.remove(&peer.id);
        self.remove(&peer.id);
        self.bury(peer, now, cfg);
    }

    /// Counts `n` more timeouts of `id`; returns the count since we last heard from it.
    pub fn strike(&mut self, id: NodeId, n: u8) -> u8 {
        if self.strikes.len() >= 1024 && !self.strikes.contains_key(&id) {
            self.strikes.clear();
        }
        let s = self.strikes.entry(id).or_insert(0);
        *s = s.saturating_add(n);
        *s
    }

    /// The peer spoke to us: its suspicion is over. Returns whether it was suspected, or lost
    /// and not already heard from in the last `probe_interval` — whether to rediscover it. A lost
    /// peer stays buried until it is back in our tables ([`Table::expire`]): if the messages
    /// that would bring it back are lost too, probing it is our only way to it.
    pub fn heard_from(&mut self, id: &NodeId, now: Time, cfg: &RingConfig) -> bool {
        self.strikes.remove(id);
        let was = self.suspects.remove(id).is_some();
        let lost = match self.graveyard.iter_mut().find(|l| l.peer.id == *id) {
            Some(l) if l.heard.is_none_or(|t| now.since(t) >= cfg.probe_interval) => {
                l.heard = Some(now);
                true
            }
            _ => false,
        };
        was || lost
    }

    /// Forgets everything about a peer's failures: it said goodbye.
    pub fn forget(&mut self, id: &NodeId) {
        self.strikes.remove(id);
        self.suspects.remove(id);
        self.graveyard.retain(|l| l.peer.id != *id);
    }

    /// Whether `id` is our predecessor, a successor or a finger.
    pub fn routes_to(&self, id: &NodeId) -> bool {
        self.pred.is_some_and(|p| p.id == *id)
            || self.succs.iter().any(|p| p.id == *id)
            || self.fingers.iter().any(|f| f.peer.id == *id)
    }

    /// Removes `id` from predecessor, successor list and fingers (not from suspects).
    pub fn remove(&mut self, id: &NodeId) {
        if self.pred.is_some_and(|p| p.id == *id) {
            self.pred = None;
        }
        self.succs.retain(|p| p.id != *id);
        self.fingers.retain(|f| f.peer.id != *id);
    }

    /// Buries `peer` (not known to have failed here: remembered from elsewhere) to be probed.
    pub fn bury_lost(&mut self, peer: Peer, now: Time, cfg: &RingConfig) {
        self.bury(peer, now, cfg);
    }

    fn bury(&mut self, peer: Peer, now: Time, cfg: &RingConfig) {
        if cfg.graveyard_size == 0 {
            return;
        }
        let fresh = Lost {
            peer,
            since: now,
            next_probe: now + cfg.probe_interval,
            backoff: cfg.probe_interval,
            heard: None,
        };
        if let Some(l) = self.graveyard.iter_mut().find(|l| l.peer.id == peer.id) {
            // Lost again (after it spoke to us): buried afresh, so the next message from it
            // rediscovers it at once and probing starts over.
            if l.heard.is_some() {
                *l = fresh;
            }
            return;
        }
        if self.graveyard.len() >= cfg.graveyard_size {
            // Evict the peer lost longest ago.
            if let Some(i) = (0..self.graveyard.len()).min_by_key(|i| self.graveyard[*i].since) {
                self.graveyard.swap_remove(i);
            }
        }
        self.graveyard.push(fresh);
    }

    /// Rule 3: successor list = `first` + `first`'s list, without us, in ring order, truncated.
    /// Old entries the new list drops are buried (probed later) when the new list skips them
    /// inside its span — the successor believes them gone — or when the new list is short of
    /// `r`: then they may be our last lifelines. Entries pushed off the end of a full list by
    /// closer nodes are simply forgotten.
    pub fn set_successors(&mut self, first: Peer, tail: &[Peer], now: Time, cfg: &RingConfig) {
        let old = std::mem::take(&mut self.succs);
        self.build_successors(first, tail, now, cfg.successors);
        let span = self.succs.last().map(|p| self.dist(&p.id));
        let short = self.succs.len() < cfg.successors;
        for p in old {
            let inside = short || span.is_none_or(|s| self.dist(&p.id) < s);
            if inside && !self.succs.iter().any(|q| q.id == p.id) {
                self.bury(p, now, cfg);
            }
        }
    }

    fn build_successors(&mut self, first: Peer, tail: &[Peer], now: Time, r: usize) {
        let mut list = Vec::with_capacity(r);
        let mut last = NodeId::ZERO;
        let mut wrapped = false;
        let mut chain = std::iter::once(&first).chain(tail.iter());
        while let Some(p) = chain.next() {
            let d = self.dist(&p.id);
            if d == NodeId::ZERO {
                // Wrapped around to us: the list holds every other member.
                wrapped = !list.is_empty();
                break;
            }
            if d <= last {
                // Out of order: the list ends here.
                break;
            }
            last = d;
            if p.id != first.id && self.is_suspect(&p.id, now) {
                continue;
            }
            list.push(*p);
            if list.len() >= r {
                // Full: it covers the whole ring only if we come right after it.
                wrapped = chain.next().is_some_and(|p| p.id == self.me.id);
                break;
            }
        }
        self.succs = list;
        self.wrapped = wrapped;
    }

    /// The number of ring members, when this node can know it: its successor list ran round
    /// to itself (every other member is in it), or it is alone and has lost nobody.
    pub fn exact_size(&self) -> Option<u64> {
        if self.succs.is_empty() {
            return self.graveyard.is_empty().then_some(1);
        }
        self.wrapped.then_some(self.succs.len() as u64 + 1)
    }

    /// Index of the first successor `s_i` with `key ∈ (s_{i-1}, s_i]` (`s_{-1}` = us).
    pub fn successor_index(&self, key: &NodeId) -> Option<usize> {
        let dk = self.dist(key);
        if dk == NodeId::ZERO {
            return None;
        }
        self.succs.iter().position(|s| dk <= self.dist(&s.id))
    }

    /// Known live peers strictly between us and `key`, closest to `key` first, at most `n`.
    pub fn closest_preceding(&self, key: &NodeId, n: usize, now: Time) -> Vec<Peer> {
        let dk = self.dist(key);
        let mut out: Vec<Peer> = Vec::with_capacity(n + 1);
        let known = self
            .fingers
            .iter()
            .map(|f| &f.peer)
            .chain(self.succs.iter())
            .chain(self.pred.iter());
        for p in known {
            let d = self.dist(&p.id);
            if d == NodeId::ZERO || d >= dk || self.is_suspect(&p.id, now) {
                continue;
            }
            if out.iter().any(|q| q.id == p.id) {
                continue;
            }
            // Insert keeping descending distance from us (= closest to the key first).
            let pos = out.partition_point(|q| self.dist(&q.id) > d);
            if pos < n {
                out.insert(pos, *p);
                out.truncate(n);
            }
        }
        out
    }

    /// A peer leaves our routing state without having failed (displaced by a closer one).
    /// While the successor list is short of `r`, every peer we know may be a lifeline back to
    /// the rest of the ring, so it is remembered and probed rather than forgotten.
    pub fn displaced(&mut self, peer: Peer, now: Time, cfg: &RingConfig) {
        if self.succs.len() < cfg.successors && peer.id != self.me.id && !self.routes_to(&peer.id) {
            self.bury(peer, now, cfg);
        }
    }

    /// Drops fingers from `len` on.
    pub fn truncate_fingers(&mut self, len: usize, now: Time, cfg: &RingConfig) {
        let gone: Vec<Finger> = self.fingers.drain(len.min(self.fingers.len())..).collect();
        for f in gone {
            self.displaced(f.peer, now, cfg);
        }
    }

    /// Installs finger `k` and drops later entries it overtakes (in distance or in exponent:
    /// after a ring grows, e.g. by a merge, finger `k` may cover a larger exponent than the
    /// old finger `k + 1`), keeping the chain distinct and ordered.
    /// Returns whether anything changed.
    pub fn set_finger(
        &mut self,
        k: usize,
        bit: u32,
        peer: Peer,
        now: Time,
        cfg: &RingConfig,
    ) -> bool {
        let f = Finger {
            bit: bit as u16,
            peer,
        };
        let d = self.dist(&peer.id);
        if k > self.fingers.len()
            || (k > 0 && self.dist(&self.fingers[k - 1].peer.id) >= d)
            || (k > 0 && u32::from(self.fingers[k - 1].bit) >= bit)
            || d == NodeId::ZERO
        {
            // Would break the chain's order; the caller's view is stale.
            return false;
        }
        let changed = self.fingers.get(k) != Some(&f);
        let mut gone = Vec::new();
        if k < self.fingers.len() {
            gone.push(std::mem::replace(&mut self.fingers[k], f).peer);
        } else {
            self.fingers.push(f);
        }
        let mut j = k + 1;
        while j < self.fingers.len() {
            if self.dist(&self.fingers[j].peer.id) <= d || u32::from(self.fingers[j].bit) <= bit {
                gone.push(self.fingers.remove(j).peer);
            } else {
                j += 1;
            }
        }
        for p in gone {
            self.displaced(p, now, cfg);
        }
        changed
    }

    /// The exponent of finger `k`, derived from finger `k-1` (distinct-entry chain), or `None`
    /// when the chain is complete.
    pub fn finger_bit(&self, k: usize) -> Option<u32> {
        if k == 0 {
            return Some(0);
        }
        let prev = self.fingers.get(k - 1)?;
        let bit = self.dist(&prev.peer.id).log2()? + 1;
        (bit < ID_BITS).then_some(bit)
    }

    /// Seeds the finger chain from peers we heard of (a joining node copies its successor's
    /// fingers): each finger becomes the first known peer at or after its start.
    pub fn seed_fingers(&mut self, known: &[Peer], now: Time, cfg: &RingConfig) {
        let mut sorted: Vec<Peer> = known
            .iter()
            .copied()
            .filter(|p| p.id != self.me.id)
            .collect();
        sorted.sort_by_key(|p| self.dist(&p.id));
        sorted.dedup_by_key(|p| p.id);
        self.fingers.clear();
        let mut k = 0;
        while let Some(bit) = self.finger_bit(k) {
            let start = self.dist(&self.me.id.add_pow2(bit));
            let Some(p) = sorted.iter().find(|p| self.dist(&p.id) >= start) else {
                break;
            };
            self.set_finger(k, bit, *p, now, cfg);
            k += 1;
        }
    }

    /// Ring size estimated from the arc our successor list covers.
    pub fn size_estimate(&self) -> u64 {
        let Some(last) = self.succs.last() else {
            return 1;
        };
        let span = self.dist(&last.id).high_u64().max(1) as f64;
        let n = self.succs.len() as f64 * (u64::MAX as f64 / span);
        (n.round() as u64).max(self.succs.len() as u64 + 1)
    }

    /// Drops suspicions and lost peers past their time, and lost peers back in our tables.
    pub fn expire(&mut self, now: Time, cfg: &RingConfig) {
        self.suspects.retain(|_, until| *until > now);
        let mut graveyard = std::mem::take(&mut self.graveyard);
        graveyard.retain(|l| now.since(l.since) < cfg.graveyard_ttl && !self.routes_to(&l.peer.id));
        self.graveyard = graveyard;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddr};

    fn peer(v: u64) -> Peer {
        Peer {
            id: NodeId::from_high_u64(v),
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 1)),
        }
    }

    #[test]
    fn successor_list_stops_at_self_and_skips_order_breaks() {
        let mut t = Table::new(peer(100));
        let cfg = RingConfig::default();
        t.set_successors(
            peer(200),
            &[peer(300), peer(50), peer(100), peer(150)],
            Time::ZERO,
            &cfg,
        );
        let ids: Vec<_> = t.succs.iter().map(|p| p.id.high_u64()).collect();
        assert_eq!(ids, vec![200, 300, 50]);
        assert_eq!(t.exact_size(), Some(4), "the list came round to us");
        assert_eq!(t.successor_index(&NodeId::from_high_u64(250)), Some(1));
        assert_eq!(t.successor_index(&NodeId::from_high_u64(40)), Some(2));
        assert_eq!(t.successor_index(&NodeId::from_high_u64(60)), None);
        // 300 vanishes from inside the new span, 50 falls off a list shorter than r: both are
        // remembered for probing.
        t.set_successors(peer(200), &[peer(350)], Time::ZERO, &cfg);
        let buried: Vec<_> = t.graveyard.iter().map(|l| l.peer.id.high_u64()).collect();
        assert_eq!(buried, vec![300, 50]);
        // With r = 2 the list is full: 350 pushed off the end by 250 is not buried.
        let cfg2 = RingConfig {
            successors: 2,
            ..cfg
        };
        t.set_successors(peer(200), &[peer(250), peer(350)], Time::ZERO, &cfg2);
        assert_eq!(t.graveyard.len(), 2);
    }

    #[test]
    fn closest_preceding_orders_by_closeness_to_key() {
        let mut t = Table::new(peer(0));
        t.succs = vec![peer(10), peer(20)];
        t.fingers = vec![
            Finger {
                bit: 0,
                peer: peer(10),
            },
            Finger {
                bit: 200,
                peer: peer(1 << 20),
            },
            Finger {
                bit: 250,
                peer: peer(1 << 40),
            },
        ];
        let got: Vec<_> = t
            .closest_preceding(&NodeId::from_high_u64(1 << 30), 3, Time::ZERO)
            .iter()
            .map(|p| p.id.high_u64())
            .collect();
        assert_eq!(got, vec![1 << 20, 20, 10]);
    }

    #[test]
    fn suspect_removes_everywhere_and_buries() {
        let cfg = RingConfig::default();
        let mut t = Table::new(peer(0));
        t.succs = vec![peer(10), peer(20)];
        t.pred = Some(peer(10));
        t.fingers = vec![Finger {
            bit: 0,
            peer: peer(10),
        }];
        t.suspect(peer(10), Time::ZERO, &cfg);
        assert_eq!(t.succs, vec![peer(20)]);
        assert!(t.pred.is_none() && t.fingers.is_empty());
        assert!(t.is_suspect(&peer(10).id, Time::ZERO));
        assert_eq!(t.graveyard.len(), 1);
        assert!(t.heard_from(&peer(10).id, Time::ZERO, &cfg));
        assert!(!t.is_suspect(&peer(10).id, Time::ZERO));
        // Still buried until it is back in the tables; heard again soon after: nothing new.
        assert_eq!(t.graveyard.len(), 1);
        assert!(!t.heard_from(&peer(10).id, Time::from_micros(1000), &cfg));
        t.expire(Time::from_micros(1000), &cfg);
        assert_eq!(t.graveyard.len(), 1);
        t.succs.insert(0, peer(10));
        t.expire(Time::from_micros(2000), &cfg);
        assert!(t.graveyard.is_empty());
        t.suspect(peer(10), Time::ZERO, &cfg);
        t.forget(&peer(10).id);
        assert!(t.graveyard.is_empty() && !t.is_suspect(&peer(10).id, Time::ZERO));
    }

    #[test]
    fn finger_chain_stays_distinct() {
        let mut t = Table::new(peer(0));
        let cfg = RingConfig::default();
        t.seed_fingers(
            &[peer(5), peer(9), peer(1 << 10), peer(1 << 40)],
            Time::ZERO,
            &cfg,
        );
        let ids: Vec<_> = t.fingers.iter().map(|f| f.peer.id.high_u64()).collect();
        assert_eq!(ids, vec![5, 9, 1 << 10, 1 << 40]);
        for w in t.fingers.windows(2) {
            assert!(t.dist(&w[0].peer.id) < t.dist(&w[1].peer.id));
            assert!(w[0].bit < w[1].bit);
        }
        // Overtaking an entry removes the overtaken ones.
        assert!(t.set_finger(1, t.finger_bit(1).unwrap(), peer(1 << 20), Time::ZERO, &cfg));
        let ids: Vec<_> = t.fingers.iter().map(|f| f.peer.id.high_u64()).collect();
        assert_eq!(ids, vec![5, 1 << 20, 1 << 40]);
    }

    #[test]
    fn the_size_is_exact_only_when_the_list_comes_round() {
        let cfg = RingConfig::default();
        let mut t = Table::new(peer(100));
        assert_eq!(t.exact_size(), Some(1), "alone, nobody lost");
        // Two nodes: the successor's list is us.
        t.set_successors(peer(200), &[peer(100)], Time::ZERO, &cfg);
        assert_eq!(t.exact_size(), Some(2));
        // A successor that does not list us yet (it has not heard of us): unknown.
        t.set_successors(peer(200), &[peer(300)], Time::ZERO, &cfg);
        assert_eq!(t.exact_size(), None);
        // A list that stops out of order, past us without naming us: unknown.
        t.set_successors(peer(200), &[peer(300), peer(150)], Time::ZERO, &cfg);
        assert_eq!(t.exact_size(), None);
        // A full list of r that we follow at once: r + 1 members.
        let cfg3 = RingConfig {
            successors: 3,
            ..cfg.clone()
        };
        t.set_successors(
            peer(200),
            &[peer(300), peer(400), peer(100)],
            Time::ZERO,
            &cfg3,
        );
        assert_eq!(t.succs.len(), 3);
        assert_eq!(t.exact_size(), Some(4));
        // A full list with more members after it: unknown.
        t.set_successors(
            peer(200),
            &[peer(300), peer(400), peer(500), peer(100)],
            Time::ZERO,
            &cfg3,
        );
        assert_eq!(t.exact_size(), None);
        // A dead member removed from a list that came round: one fewer.
        t.set_successors(peer(200), &[peer(300), peer(100)], Time::ZERO, &cfg);
        assert_eq!(t.exact_size(), Some(3));
        t.suspect(peer(300), Time::ZERO, &cfg);
        assert_eq!(t.exact_size(), Some(2));
        // Everyone lost: alone, but not knowingly.
        t.suspect(peer(200), Time::ZERO, &cfg);
        assert!(t.succs.is_empty());
        assert_eq!(t.exact_size(), None);
    }
}
