//! Merge candidates (issue 37): a bounded table of members' addresses that are not in our
//! routing state, learned from the random sample a state answer carries or from peers that
//! spoke to us directly. A node cut off with only a few peers (a ring split in its first
//! seconds) probes them, while it has lost peers, to find the rest of its side of the
//! partition.
//!
//! Trust: an address learned second-hand is only a candidate. It is probed, never routed to, and
//! never passed on in our own samples until it has answered with its own identity. One source
//! holds at most `sample_size` unconfirmed entries (a new sample from it replaces its oldest);
//! when the table is full an unconfirmed entry of the source holding the most is evicted first,
//! and a confirmed entry is evicted only for another confirmed one (least recently heard first).
//! An unconfirmed entry that does not answer its probe is dropped.
//!
//! A joiner can also spread word of itself (`JoinNews`; `door_sample` and `announce`, off by
//! default for now): it asks the peer its join lookup started at
//! (its bootstrap, which in a young ring has heard of nearly everyone) for a sample too, and pings
//! up to `announce` peers drawn at random from its join samples, once per join. A ping proves
//! its sender, so each receiver keeps the new member as a confirmed candidate: the nodes that
//! know of a young member are then not all on one side of a cut (issue 37).

use std::time::Duration;

use super::wire::{MAX_SAMPLE, RingRequest};
use super::{Phase, Purpose, Ring, RingConfig};
use crate::id::NodeId;
use crate::time::Time;
use crate::wire::Peer;

/// Failed probes after which a confirmed candidate is dropped.
const CONFIRMED_FAILURES: u8 = 3;

/// One merge candidate.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Candidate {
    pub peer: Peer,
    /// Who named it; the peer itself once it spoke to us directly.
    source: NodeId,
    /// It spoke to us directly (its identity is proven by the transport).
    pub confirmed: bool,
    /// When it was learned, or last heard from once confirmed.
    seen: Time,
    pub next_probe: Time,
    backoff: Duration,
    failures: u8,
}

/// A joiner's news of itself: the door it joined through and who has heard of it.
#[derive(Debug, Default)]
pub(crate) struct JoinNews {
    /// The peer the current join lookup started at.
    pub door: Option<Peer>,
    /// The door was asked for a sample (once per join).
    asked_door: bool,
    /// Join samples still to come: the first of two takes half the pushes.
    pending: usize,
    /// Peers that know of us already (the successor, the door, those we pinged); at most
    /// 2 + `announce`.
    told: Vec<NodeId>,
    /// Pings sent (at most `announce` per join).
    sent: usize,
}

/// The bounded candidate table.
#[derive(Debug, Default)]
pub(crate) struct Candidates {
    v: Vec<Candidate>,
}

impl Candidates {
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.v.len()
    }

    /// The entries, for sampling and probing.
    pub fn iter(&self) -> impl Iterator<Item = &Candidate> {
        self.v.iter()
    }

    fn fresh(
        peer: Peer,
        source: NodeId,
        confirmed: bool,
        now: Time,
        cfg: &RingConfig,
    ) -> Candidate {
        Candidate {
            peer,
            source,
            confirmed,
            seen: now,
            next_probe: now,
            backoff: cfg.probe_interval,
            failures: 0,
        }
    }

    /// `peer` spoke to us directly: it is a confirmed candidate (its address and identity as
    /// the transport saw them).
    pub fn confirm(&mut self, peer: Peer, now: Time, cfg: &RingConfig) {
        if cfg.candidates == 0 {
            return;
        }
        if let Some(c) = self.v.iter_mut().find(|c| c.peer.id == peer.id) {
            if !c.confirmed {
                c.confirmed = true;
                c.failures = 0;
            }
            c.peer = peer;
            c.source = peer.id;
            c.seen = now;
            return;
        }
        if self.v.len() >= cfg.candidates && !self.evict_unconfirmed() {
            // Full of confirmed entries: the least recently heard makes room.
            if let Some(i) = (0..self.v.len()).min_by_key(|i| self.v[*i].seen) {
                self.v.swap_remove(i);
            }
        }
        self.v.push(Self::fresh(peer, peer.id, true, now, cfg));
    }

    /// `source` named `peers` in a sample: each unknown one becomes an unconfirmed candidate,
    /// within the per-source and total bounds. `source` holds at most `quota` unconfirmed
    /// entries (`sample_size`; the join's larger sample, up to [`MAX_SAMPLE`]); only the first
    /// `quota` peers are read.
    pub fn learn(
        &mut self,
        me: NodeId,
        source: NodeId,
        peers: &[Peer],
        quota: usize,
        now: Time,
        cfg: &RingConfig,
    ) {
        if cfg.candidates == 0 {
            return;
        }
        let quota = quota.min(MAX_SAMPLE);
        for p in peers.iter().take(quota) {
            if p.id == me || p.id == source || self.v.iter().any(|c| c.peer.id == p.id) {
                continue;
            }
            let from_source = self
                .v
                .iter()
                .filter(|c| !c.confirmed && c.source == source)
                .count();
            if from_source >= quota {
                // The source's quota is used: its oldest entry makes room.
                if let Some(i) = (0..self.v.len())
                    .filter(|i| !self.v[*i].confirmed && self.v[*i].source == source)
                    .min_by_key(|i| self.v[*i].seen)
                {
                    self.v.swap_remove(i);
                }
            } else if self.v.len() >= cfg.candidates && !self.evict_unconfirmed() {
                // Only confirmed entries: they are worth more than a hearsay address.
                return;
            }
            self.v.push(Self::fresh(*p, source, false, now, cfg));
        }
    }

    /// Evicts the oldest unconfirmed entry of the source holding the most; false if none.
    fn evict_unconfirmed(&mut self) -> bool {
        let count = |s: &NodeId| {
            self.v
                .iter()
                .filter(|c| !c.confirmed && c.source == *s)
                .count()
        };
        let victim = (0..self.v.len())
            .filter(|i| !self.v[*i].confirmed)
            .max_by_key(|i| {
                (
                    count(&self.v[*i].source),
                    std::cmp::Reverse(self.v[*i].seen),
                )
            });
        match victim {
            Some(i) => {
                self.v.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// A probe of `id` was sent: the next waits its backoff.
    pub fn probed(&mut self, id: &NodeId, now: Time) {
        if let Some(c) = self.v.iter_mut().find(|c| c.peer.id == *id) {
            c.next_probe = now + c.backoff;
        }
    }

    /// `id` answered its probe: confirmed, and probed less often (it is most likely in our
    /// ring already; if not, the merge its answer starts brings it in).
    pub fn answered(&mut self, peer: Peer, now: Time, cfg: &RingConfig) {
        self.confirm(peer, now, cfg);
        if let Some(c) = self.v.iter_mut().find(|c| c.peer.id == peer.id) {
            c.backoff = c.backoff.saturating_mul(2).min(cfg.probe_backoff_max);
            c.next_probe = now + c.backoff;
        }
    }

    /// `id` did not answer its probe: an unconfirmed entry is dropped, a confirmed one backs off
    /// and is dropped after [`CONFIRMED_FAILURES`] failures in a row.
    pub fn failed(&mut self, id: &NodeId, now: Time, cfg: &RingConfig) {
        let Some(i) = self.v.iter().position(|c| c.peer.id == *id) else {
            return;
        };
        let c = &mut self.v[i];
        c.failures = c.failures.saturating_add(1);
        if !c.confirmed || c.failures >= CONFIRMED_FAILURES {
            self.v.swap_remove(i);
            return;
        }
        c.backoff = c.backoff.saturating_mul(2).min(cfg.probe_backoff_max);
        c.next_probe = now + c.backoff;
    }

    /// Checks the bounds: at most `candidates` entries, at most [`MAX_SAMPLE`] unconfirmed ones
    /// per source, no repeats.
    pub fn check(&self, cfg: &RingConfig) -> Result<(), String> {
        if self.v.len() > cfg.candidates {
            return Err(format!("{} merge candidates", self.v.len()));
        }
        for (i, c) in self.v.iter().enumerate() {
            if self.v[..i].iter().any(|d| d.peer.id == c.peer.id) {
                return Err("a merge candidate twice".into());
            }
            let n = self
                .v
                .iter()
                .filter(|d| !d.confirmed && d.source == c.source)
                .count();
            if !c.confirmed && n > MAX_SAMPLE {
                return Err(format!("{n} unconfirmed merge candidates from one source"));
            }
        }
        Ok(())
    }
}

// ---- the rules -------------------------------------------------------------------------------

impl Ring {
    /// How many peers this stabilize asks for: `sample_size` at every round during the first
    /// `sample_interval` of membership (a young node learns its ring quickly), then every
    /// `sample_interval`; none while our successor list runs round the whole ring (we know
    /// every member already).
    pub(super) fn wants_sample(&mut self, now: Time) -> u8 {
        if self.cfg.sample_size == 0 || self.cfg.candidates == 0 || self.t.exact_size().is_some() {
            return 0;
        }
        if now < self.next_sample && now >= self.young_until {
            return 0;
        }
        let us = self.cfg.sample_interval.as_micros() as u64;
        let jitter = self.sample_rng.below((us / 2).max(1));
        self.next_sample = now + Duration::from_micros(us - us / 4 + jitter);
        self.cfg.sample_size.min(MAX_SAMPLE) as u8
    }

    /// How many peers a joiner asks its successor for: up to [`MAX_SAMPLE`], once (it knows
    /// nobody yet; a ring cut seconds later needs every address it can get).
    pub(super) fn join_sample_size(&self) -> u8 {
        if self.cfg.sample_size == 0 || self.cfg.candidates == 0 {
            return 0;
        }
        MAX_SAMPLE.min(self.cfg.candidates) as u8
    }

    /// Up to `want` (at most [`MAX_SAMPLE`]) peers drawn at random from our routing state and
    /// our confirmed candidates, never `to` itself nor an unconfirmed (second-hand) address.
    pub(super) fn sample_for(&mut self, to: NodeId, want: usize) -> Vec<Peer> {
        if want == 0 {
            return Vec::new();
        }
        let mut pool = self.known_peers();
        pool.extend(self.cands.iter().filter(|c| c.confirmed).map(|c| c.peer));
        pool.retain(|p| p.id != to && p.id != self.t.me.id);
        pool.sort_by_key(|p| p.id);
        pool.dedup_by_key(|p| p.id);
        let k = want.min(MAX_SAMPLE).min(pool.len());
        for i in 0..k {
            let j = i + self.sample_rng.below((pool.len() - i) as u64) as usize;
            pool.swap(i, j);
        }
        pool.truncate(k);
        pool
    }

    /// A state answer to our request carried a sample (at most what we asked for is read: the
    /// join's larger one, or `sample_size`).
    pub(super) fn learn_sample(&mut self, now: Time, from: NodeId, sample: &[Peer], asked: usize) {
        if sample.is_empty() || !matches!(self.phase, Phase::Member | Phase::Joining) {
            return;
        }
        let me = self.t.me.id;
        let fresh: Vec<Peer> = sample
            .iter()
            .take(asked)
            .filter(|p| !self.t.routes_to(&p.id))
            .copied()
            .collect();
        // A source holds at most what we asked it for: `sample_size`, or a join's larger
        // sample (the successor's, the door's).
        self.cands.learn(me, from, &fresh, asked, now, &self.cfg);
    }

    /// The join lookup found `succ`: the door it started at (when another peer) is asked for a
    /// sample as well, once per join. In a young ring the bootstrap has heard of nearly every
    /// member, the successor perhaps of a few neighbours.
    pub(super) fn ask_door(&mut self, now: Time, succ: Peer) {
        let want = self.join_sample_size();
        self.news.told = vec![succ.id];
        self.news.pending = 1;
        let Some(door) = self.news.door.filter(|d| d.id != succ.id) else {
            return;
        };
        self.news.told.push(door.id);
        if !self.cfg.door_sample || want == 0 || self.news.asked_door {
            return;
        }
        self.news.asked_door = true;
        let body = RingRequest::GetState {
            fingers: false,
            sample: want,
        };
        if self.request(now, door, body, Purpose::DoorSample).is_some() {
            self.news.pending = 2;
        }
    }

    /// A join sample arrived from `from`: ping up to `announce` of its peers (in all, over the
    /// join's samples; the first of two takes half) at random, none that knows of us already.
    /// The receivers keep us as a confirmed merge candidate.
    pub(super) fn announce(&mut self, now: Time, from: NodeId, sample: &[Peer], asked: usize) {
        let left = self
            .cfg
            .announce
            .min(MAX_SAMPLE)
            .saturating_sub(self.news.sent);
        let share = left.div_ceil(self.news.pending.max(1));
        self.news.pending = self.news.pending.saturating_sub(1);
        if share == 0 || self.cfg.sample_size == 0 || self.cfg.candidates == 0 {
            return;
        }
        let me = self.t.me.id;
        let mut pool: Vec<Peer> = sample
            .iter()
            .take(asked)
            .filter(|p| p.id != me && p.id != from)
            .copied()
            .collect();
        for i in 0..pool.len() {
            let j = i + self.sample_rng.below((pool.len() - i) as u64) as usize;
            pool.swap(i, j);
        }
        let mut left = share;
        for p in pool {
            if left == 0 {
                break;
            }
            if self.news.told.contains(&p.id) {
                continue;
            }
            left -= 1;
            self.news.told.push(p.id);
            self.news.sent += 1;
            self.request(now, p, RingRequest::Ping, Purpose::Announce);
        }
    }

    /// A peer we announced ourselves to answered: it is alive and knows of us.
    pub(super) fn announce_answered(&mut self, now: Time, peer: Peer) {
        if !self.t.routes_to(&peer.id) {
            self.cands.confirm(peer, now, &self.cfg);
        }
    }

    /// `peer` spoke to us: outside our routing state, it is a confirmed candidate.
    pub(super) fn heard_directly(&mut self, now: Time, peer: Peer) {
        if self.phase == Phase::Member && !self.t.routes_to(&peer.id) {
            self.cands.confirm(peer, now, &self.cfg);
        }
    }

    /// Within `candidate_window` of a peer's failure (we may be cut off from part of the
    /// ring), probes up to `candidate_probes` due candidates outside our routing state, one
    /// merge at a time. Peers merely displaced while the ring forms do not count.
    pub(super) fn probe_candidates(&mut self, now: Time) {
        let recent = self
            .last_failure
            .is_some_and(|t| now.since(t) < self.cfg.candidate_window);
        if self.merge_inflight || !recent {
            return;
        }
        let mut due: Vec<(Time, bool, Peer)> = self
            .cands
            .iter()
            .filter(|c| {
                c.next_probe <= now
                    && !self.t.routes_to(&c.peer.id)
                    && !self.t.is_suspect(&c.peer.id, now)
                    && !self.t.graveyard.iter().any(|l| l.peer.id == c.peer.id)
            })
            .map(|c| (c.next_probe, !c.confirmed, c.peer))
            .collect();
        // Longest waiting first; among equals, confirmed ones first.
        due.sort_by_key(|(at, hearsay, p)| (*at, *hearsay, p.id));
        due.truncate(self.cfg.candidate_probes);
        for (_, _, peer) in due {
            self.cands.probed(&peer.id, now);
            self.request(now, peer, RingRequest::Ping, Purpose::Sample);
        }
    }

    /// A candidate answered its probe: it may be a member of another ring on our side; a merge
    /// lookup through it finds out (and joins the rings if so).
    pub(super) fn candidate_answered(&mut self, now: Time, peer: Peer) {
        self.cands.answered(peer, now, &self.cfg);
        if self.phase == Phase::Member && !self.t.routes_to(&peer.id) {
            self.start_merge(now, vec![peer]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overlay::Output;
    use crate::ring::wire::RingResponse;
    use crate::wire::{Message, Request, Response};
    use std::net::{Ipv4Addr, SocketAddr};

    fn peer(v: u8) -> Peer {
        Peer {
            id: NodeId([v; 32]),
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 4000 + u16::from(v))),
        }
    }

    fn cfg() -> RingConfig {
        RingConfig {
            candidates: 8,
            sample_size: 3,
            ..RingConfig::default()
        }
    }

    #[test]
    fn one_source_cannot_hold_more_than_its_quota() {
        let (cfg, me, now) = (cfg(), NodeId([0; 32]), Time::from_micros(0));
        let mut t = Candidates::default();
        let liar = NodeId([200; 32]);
        // A hostile node sends sample after sample of fresh addresses.
        for round in 0..20u8 {
            let names: Vec<Peer> = (0..10).map(|k| peer(1 + (round * 10 + k) % 190)).collect();
            t.learn(me, liar, &names, cfg.sample_size, now, &cfg);
            t.check(&cfg).expect("bounds");
        }
        assert_eq!(t.len(), cfg.sample_size);
        // Honest sources still get their share.
        t.learn(
            me,
            NodeId([201; 32]),
            &[peer(191), peer(192)],
            cfg.sample_size,
            now,
            &cfg,
        );
        t.learn(
            me,
            NodeId([202; 32]),
            &[peer(193), peer(194)],
            cfg.sample_size,
            now,
            &cfg,
        );
        assert_eq!(t.len(), cfg.sample_size + 4);
        t.check(&cfg).expect("bounds");
    }

    #[test]
    fn confirmed_entries_are_kept_over_hearsay_and_hearsay_never_evicts_them() {
        let (cfg, me, now) = (cfg(), NodeId([0; 32]), Time::from_micros(0));
        let mut t = Candidates::default();
        for v in 1..=8 {
            t.confirm(peer(v), now, &cfg);
        }
        t.learn(
            me,
            NodeId([100; 32]),
            &[peer(50), peer(51)],
            cfg.sample_size,
            now,
            &cfg,
        );
        assert_eq!(t.len(), 8);
        assert!(
            t.iter().all(|c| c.confirmed),
            "hearsay displaced a confirmed entry"
        );
        // A hearsay entry is evicted first when a confirmed one needs room.
        let mut t = Candidates::default();
        for v in 1..=7 {
            t.confirm(peer(v), now, &cfg);
        }
        t.learn(
            me,
            NodeId([100; 32]),
            &[peer(50)],
            cfg.sample_size,
            now,
            &cfg,
        );
        t.confirm(peer(60), now, &cfg);
        assert_eq!(t.len(), 8);
        assert!(t.iter().all(|c| c.confirmed));
    }

    #[test]
    fn our_own_id_and_the_source_are_not_candidates_and_a_silent_hearsay_entry_goes() {
        let (cfg, me, now) = (cfg(), NodeId([0; 32]), Time::from_micros(0));
        let mut t = Candidates::default();
        let src = NodeId([9; 32]);
        t.learn(
            me,
            src,
            &[peer(0), peer(9), peer(3)],
            cfg.sample_size,
            now,
            &cfg,
        );
        assert_eq!(t.len(), 1);
        t.failed(&peer(3).id, now, &cfg);
        assert_eq!(t.len(), 0);
        // A confirmed one survives two failures, not three.
        t.confirm(peer(4), now, &cfg);
        t.failed(&peer(4).id, now, &cfg);
        t.failed(&peer(4).id, now, &cfg);
        assert_eq!(t.len(), 1);
        t.failed(&peer(4).id, now, &cfg);
        assert_eq!(t.len(), 0);
    }

    /// Joins node 50 through door 10 (successor 60), every peer answering at once: the door's
    /// `GetState` sample is `door_sample` (empty: a v0.1.0 door, which ignores the field);
    /// returns the ring, the peers asked for a sample, and the peers pinged.
    fn join_through(door_sample: &[u8]) -> (Ring, Vec<NodeId>, Vec<NodeId>) {
        let cfg = RingConfig {
            door_sample: true,
            announce: 4,
            ..RingConfig::default()
        };
        let mut ring = Ring::new(peer(50), cfg, 3);
        let (door, succ) = (peer(10), peer(60));
        let mut now = Time::from_micros(0);
        ring.join(now, vec![door]);
        let (mut asked, mut pinged) = (Vec::new(), Vec::new());
        for _ in 0..20 {
            now = now + Duration::from_millis(1);
            for o in ring.take_outputs() {
                let Output::Send {
                    to,
                    msg: Message::Request { id, body },
                } = o
                else {
                    continue;
                };
                let Request::Ring(req) = body else { continue };
                let answer = match req {
                    RingRequest::Ping => {
                        pinged.push(to.id);
                        RingResponse::Pong
                    }
                    RingRequest::FindSuccessor { .. } => RingResponse::Found { succs: vec![succ] },
                    RingRequest::GetState { sample, .. } => {
                        if sample > 0 {
                            asked.push(to.id);
                        }
                        let names: &[u8] = if to.id == door.id {
                            door_sample
                        } else {
                            &[70, 80, 10]
                        };
                        RingResponse::State {
                            pred: Some(peer(40)).filter(|p| p.id != to.id),
                            succs: vec![peer(70), peer(80)],
                            fingers: Vec::new(),
                            sample: names
                                .iter()
                                .map(|v| peer(*v))
                                .filter(|p| p.id != to.id)
                                .take(usize::from(sample))
                                .collect(),
                        }
                    }
                };
                let msg = Message::Response {
                    id,
                    body: Response::Ring(answer),
                };
                ring.on_message(now, to, msg);
            }
        }
        assert!(ring.is_member(), "the join completed");
        ring.check_invariants().expect("invariants");
        (ring, asked, pinged)
    }

    #[test]
    fn a_joiner_asks_its_door_once_and_announces_itself_to_at_most_four_sampled_peers() {
        let door_knows = [20, 30, 40, 60, 70, 80, 90, 100, 110];
        let (ring, asked, pinged) = join_through(&door_knows);
        assert_eq!(
            asked.iter().filter(|id| **id == peer(10).id).count(),
            1,
            "the door is asked for a sample once: {asked:?}"
        );
        // Half the pushes from the successor's sample (70, 80), the rest from the door's.
        let mut p = pinged.clone();
        p.sort();
        p.dedup();
        assert_eq!(p.len(), pinged.len(), "nobody is pinged twice: {pinged:?}");
        assert_eq!(pinged.len(), 4, "{pinged:?}");
        assert!(pinged.contains(&peer(70).id) && pinged.contains(&peer(80).id));
        assert!(
            pinged
                .iter()
                .all(|id| *id != peer(10).id && *id != peer(60).id),
            "the door and the successor know of us already: {pinged:?}"
        );
        // Each one that answered is kept as a confirmed candidate (unless we route to it).
        let confirmed: Vec<NodeId> = ring
            .merge_candidates()
            .iter()
            .filter(|(_, c)| *c)
            .map(|(p, _)| p.id)
            .collect();
        for id in &pinged {
            assert!(
                confirmed.contains(id) || ring.known_peers().iter().any(|p| p.id == *id),
                "{id:?} answered and is neither a confirmed candidate nor in our tables"
            );
        }
    }

    #[test]
    fn a_v010_door_answers_without_a_sample_and_the_join_goes_on() {
        // A v0.1.0 door ignores the `sample` field and answers with a plain state.
        let (_ring, asked, pinged) = join_through(&[]);
        assert_eq!(
            asked.len(),
            2,
            "successor and door asked once each: {asked:?}"
        );
        assert_eq!(pinged.len(), 2, "only the successor's sample: {pinged:?}");
        // And with the news off, a join asks only its successor and pings nobody.
        let mut ring = Ring::new(
            peer(50),
            RingConfig {
                door_sample: false,
                announce: 0,
                ..RingConfig::default()
            },
            3,
        );
        ring.join(Time::from_micros(0), vec![peer(10)]);
        ring.join_found(Time::from_micros(0), peer(60));
        let gets = ring
            .take_outputs()
            .into_iter()
            .filter(|o| {
                matches!(
                    o,
                    Output::Send {
                        msg: Message::Request {
                            body: Request::Ring(RingRequest::GetState { .. }),
                            ..
                        },
                        ..
                    }
                )
            })
            .count();
        assert_eq!(gets, 1);
    }
}
