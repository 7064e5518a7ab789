//! Ring maintenance rules: create, join, stabilize, notify/rectify, check-predecessor,
//! fix-fingers, graceful leave, and the probing of lost peers that merges partitions.

use super::lookup::LookupFor as LookupPurpose;
use super::wire::{ErrorCode, RingNotice, RingRequest, RingResponse};
use super::{Event, Phase, Purpose, Ring, RingTimer, Up};
use crate::id::NodeId;
use crate::protocol::RingEvent;
use crate::time::Time;
use crate::wire::{MAX_PEER_LIST, Message, Notice, Peer, Response};

/// Most predecessors a node walks back through in one stabilize round.
const MAX_WALK: u8 = 16;

/// Most successor-candidate checks in flight at once.
const MAX_CANDIDATE_CHECKS: usize = 2;

/// Steps a finger check may walk back through predecessors before it falls back to a lookup.
const MAX_FINGER_WALK: u8 = 4;

impl Ring {
    // ---- founding and joining ----------------------------------------------------------------

    pub(crate) fn create(&mut self, now: Time) {
        if self.phase != Phase::Idle {
            return;
        }
        self.become_member(now);
    }

    pub(crate) fn join(&mut self, now: Time, mut via: Vec<Peer>) {
        if self.phase != Phase::Idle {
            return;
        }
        via.retain(|p| p.id != self.t.me.id);
        via.truncate(MAX_PEER_LIST);
        self.join_via = via;
        self.phase = Phase::Joining;
        self.retry_join(now);
    }

    /// Like [`Ring::join`], but when every peer of `via` answers that it is not a member
    /// either (nodes started together, each trying the others) and this node's id is lower than
    /// all of theirs, this node founds the ring the others then join. Every node that sees the
    /// same peers picks the same founder; one that sees a lower waiting peer keeps trying.
    pub(crate) fn join_or_found(&mut self, now: Time, via: Vec<Peer>) {
        if self.phase != Phase::Idle {
            return;
        }
        self.found_if_waiting = true;
        self.join(now, via);
    }

    /// `peers` (known from an earlier run, or waiting with us) are buried as lost peers, probed
    /// once this node is a member: a ring any of them is in merges with ours.
    pub(crate) fn lost(&mut self, now: Time, peers: Vec<Peer>) {
        for p in peers.into_iter().take(self.cfg.graveyard_size) {
            if p.id != self.t.me.id && !self.t.routes_to(&p.id) {
                self.t.bury_lost(p, now, &self.cfg);
            }
        }
    }

    /// A peer asked during a join answered that it is not a member.
    pub(super) fn join_peer_waiting(&mut self, peer: NodeId) {
        if self.join_via.iter().any(|p| p.id == peer) {
            self.join_waiting.insert(peer, self.join_attempt);
        }
    }

    /// Whether, in the last round over `join_via`, every peer said it was not a member, and
    /// every one of them has a higher id than ours.
    fn founder_among_waiting(&self) -> bool {
        let n = self.join_via.len() as u32;
        self.found_if_waiting
            && n > 0
            && self.join_via.iter().all(|p| {
                p.id > self.t.me.id
                    && self
                        .join_waiting
                        .get(&p.id)
                        .is_some_and(|at| at.saturating_add(n) >= self.join_attempt)
            })
    }

    pub(super) fn retry_join(&mut self, now: Time) {
        if self.phase != Phase::Joining {
            return;
        }
        if self.join_via.is_empty() {
            self.join_failed(now);
            return;
        }
        if self.founder_among_waiting() {
            // The peers that waited join this ring by their own retries; should one of them
            // end in another ring instead (it saw a lower waiting peer we did not), probing
            // it as a lost peer merges the two.
            let waited = std::mem::take(&mut self.join_via);
            self.join_waiting.clear();
            self.become_member(now);
            self.lost(now, waited);
            return;
        }
        // Rotate through the bootstrap peers, one per attempt.
        let i = self.join_attempt as usize % self.join_via.len();
        self.join_attempt = self.join_attempt.saturating_add(1);
        let first = self.join_via[i];
        let key = self.t.me.id;
        self.news.door = Some(first);
        self.start_lookup(now, key, LookupPurpose::Join, Some(vec![first]));
    }

    pub(super) fn join_found(&mut self, now: Time, succ: Peer) {
        if succ.id == self.t.me.id {
            self.join_failed(now);
            return;
        }
        // Rule 1 and 5: confirm the successor is alive and copy its full list before we count
        // as a member.
        if self
            .request(
                now,
                succ,
                RingRequest::GetState {
                    fingers: true,
                    sample: self.join_sample_size(),
                },
                Purpose::JoinState,
            )
            .is_none()
        {
            self.join_failed(now);
            return;
        }
        self.ask_door(now, succ);
    }

    pub(super) fn join_failed(&mut self, now: Time) {
        if self.phase != Phase::Joining {
            return;
        }
        // A round over peers that may all be waiting asks them one after the other at once and
        // backs off between rounds, not between peers.
        let per = if self.found_if_waiting {
            self.join_via.len().max(1) as u32
        } else {
            1
        };
        let retry_at = if !self.join_attempt.is_multiple_of(per) {
            now
        } else {
            let exp = (self.join_attempt.saturating_sub(1) / per).min(16);
            let delay = self
                .cfg
                .join_retry_min
                .saturating_mul(1 << exp)
                .min(self.cfg.join_retry_max);
            now + self.jittered(delay)
        };
        self.set_timer(retry_at, RingTimer::JoinRetry);
        self.event(Event::JoinFailed { retry_at });
    }

    pub(super) fn join_state_response(&mut self, now: Time, from: Peer, body: RingResponse) {
        if self.phase != Phase::Joining {
            return;
        }
        let RingResponse::State {
            pred,
            succs,
            fingers,
            ..
        } = body
        else {
            self.join_failed(now);
            return;
        };
        self.t.set_successors(from, &succs, now, &self.cfg);
        let mut known = fingers;
        known.extend(succs);
        known.push(from);
        self.t.seed_fingers(&known, now, &self.cfg);
        self.become_member(now);
        // If another node joined between us and the successor we found, walk back to it now.
        self.walk_back_or_notify(now, from, pred, 0);
    }

    /// `succ` (just confirmed alive) reports predecessor `pred`. If `pred` lies between us and
    /// `succ`, it is a closer successor: check it (rule 1) and keep walking back, up to
    /// [`MAX_WALK`] steps per round. Otherwise propose ourselves to `succ`.
    fn walk_back_or_notify(&mut self, now: Time, succ: Peer, pred: Option<Peer>, steps: u8) {
        let me = self.t.me.id;
        match pred {
            Some(p) if steps < MAX_WALK && p.id != me && p.id.in_open(&me, &succ.id) => {
                let sent = self.request(
                    now,
                    p,
                    RingRequest::GetState {
                        fingers: false,
                        sample: 0,
                    },
                    Purpose::Candidate { steps: steps + 1 },
                );
                if sent.is_none() {
                    self.notify_successor();
                }
            }
            // `succ` already knows us as its predecessor: nothing to propose.
            Some(p) if p.id == me => {}
            _ => self.notify_successor(),
        }
    }

    fn become_member(&mut self, now: Time) {
        self.phase = Phase::Member;
        self.young_until = now + self.cfg.sample_interval;
        self.event(Event::Joined);
        self.up.push_back(Up::Ring(RingEvent::Joined));
        let s = self.jittered(self.cfg.stabilize_interval);
        self.set_timer(now + s, RingTimer::Stabilize);
        let f = self.jittered(self.cfg.fix_fingers_min);
        self.set_timer(now + f, RingTimer::FixFingers);
        let c = self.jittered(self.cfg.check_predecessor_interval);
        self.set_timer(now + c, RingTimer::CheckPredecessor);
        let p = self.jittered(self.cfg.probe_interval);
        self.set_timer(now + p, RingTimer::Probe);
    }

    // ---- leaving -----------------------------------------------------------------------------

    pub(crate) fn leave(&mut self) {
        if self.phase == Phase::Member {
            let notice = RingNotice::Leaving {
                pred: self.t.pred,
                succs: self.t.succs.clone(),
            };
            let mut to: Vec<Peer> = self.t.pred.into_iter().collect();
            if let Some(s) = self.t.successor()
                && !to.iter().any(|p| p.id == s.id)
            {
                to.push(s);
            }
            for p in to {
                self.send(p, Message::Notice(Notice::Ring(notice.clone())));
            }
        }
        self.phase = Phase::Left;
        self.rpcs.clear();
        self.lookups.clear();
        self.event(Event::Left);
    }

    pub(super) fn on_notice(&mut self, now: Time, from: Peer, notice: RingNotice) {
        if self.phase != Phase::Member {
            return;
        }
        match notice {
            RingNotice::Notify => self.on_notify(now, from),
            RingNotice::Leaving { pred, succs } => self.on_leaving(now, from, pred, succs),
        }
    }

    fn on_leaving(&mut self, now: Time, from: Peer, pred: Option<Peer>, succs: Vec<Peer>) {
        let was_succ = self.t.successor().is_some_and(|s| s.id == from.id);
        let was_pred = self.t.pred.is_some_and(|p| p.id == from.id);
        // A goodbye: forget the peer everywhere, but do not bury it (no probing).
        self.t.remove(&from.id);
        self.t.forget(&from.id);
        if was_succ {
            // Its list continues ours; adopt it only through stabilize, which checks liveness.
            let mut merged = self.t.succs.clone();
            merged.extend(succs);
            merged.sort_by_key(|p| self.t.dist(&p.id));
            merged.dedup_by_key(|p| p.id);
            merged.retain(|p| p.id != from.id);
            if let Some((first, tail)) = merged.split_first() {
                self.t.set_successors(*first, tail, now, &self.cfg);
            }
            self.stabilizing = false;
            self.stabilize(now);
        }
        if was_pred {
            // Rule 1: the proposed predecessor is adopted once it answers a ping.
            if let Some(p) = pred.filter(|p| p.id != self.t.me.id) {
                self.request(now, p, RingRequest::Ping, Purpose::PredCandidate);
            }
        }
    }

    pub(super) fn pred_candidate_alive(&mut self, now: Time, p: Peer) {
        let me = self.t.me.id;
        let better = match self.t.pred {
            None => true,
            Some(cur) => p.id.in_open(&cur.id, &me),
        };
        if better
            && self.phase == Phase::Member
            && let Some(old) = self.t.pred.replace(p)
        {
            self.t.displaced(old, now, &self.cfg);
        }
    }

    // ---- stabilize and notify ----------------------------------------------------------------

    pub(super) fn tick_stabilize(&mut self, now: Time) {
        if self.phase != Phase::Member {
            return;
        }
        self.t.expire(now, &self.cfg);
        self.stabilize(now);
        let s = self.jittered(self.cfg.stabilize_interval);
        self.set_timer(now + s, RingTimer::Stabilize);
    }

    pub(super) fn stabilize(&mut self, now: Time) {
        if self.phase != Phase::Member || self.stabilizing {
            return;
        }
        match self.t.successor() {
            Some(s) => {
                let sample = self.wants_sample(now);
                let sent = self.request(
                    now,
                    s,
                    RingRequest::GetState {
                        fingers: false,
                        sample,
                    },
                    Purpose::Stabilize,
                );
                self.stabilizing = sent.is_some();
            }
            None => self.recover_alone(now),
        }
    }

    /// No successor left: take the predecessor as a candidate, or find our place again through
    /// any peer we still know.
    fn recover_alone(&mut self, now: Time) {
        if let Some(p) = self.t.pred {
            self.check_candidate(now, p);
            return;
        }
        let known: Vec<Peer> = self.t.fingers.iter().map(|f| f.peer).collect();
        if !known.is_empty() {
            self.start_merge(now, known);
        }
    }

    pub(super) fn stabilize_response(&mut self, now: Time, from: Peer, body: RingResponse) {
        self.stabilizing = false;
        let RingResponse::State { pred, succs, .. } = body else {
            // The successor is alive but no longer a member: drop it without suspicion.
            self.t.remove(&from.id);
            self.stabilize(now);
            return;
        };
        if self.t.successor().is_some_and(|s| s.id == from.id) {
            self.t.set_successors(from, &succs, now, &self.cfg);
        }
        // A node joined between us: check it is alive before adopting it (rule 1).
        self.walk_back_or_notify(now, from, pred, 0);
    }

    pub(super) fn candidate_response(
        &mut self,
        now: Time,
        from: Peer,
        body: RingResponse,
        steps: u8,
    ) {
        if self.phase != Phase::Member {
            return;
        }
        if let RingResponse::State { pred, succs, .. } = body
            && self.t.closer_than_successor(&from.id)
        {
            self.t.set_successors(from, &succs, now, &self.cfg);
            self.walk_back_or_notify(now, from, pred, steps);
            return;
        }
        self.notify_successor();
    }

    pub(super) fn notify_successor(&mut self) {
        if let Some(s) = self.t.successor() {
            self.send(s, Message::Notice(Notice::Ring(RingNotice::Notify)));
        }
    }

    /// Rule 4: a notify only proposes; adopt the sender if we have no predecessor or it lies
    /// between the current one and us.
    fn on_notify(&mut self, now: Time, from: Peer) {
        let me = self.t.me.id;
        let better = match self.t.pred {
            None => true,
            Some(p) => from.id.in_open(&p.id, &me),
        };
        if better && let Some(old) = self.t.pred.replace(from) {
            self.t.displaced(old, now, &self.cfg);
        }
        if self.t.succs.is_empty() {
            // We were alone: the notifier is also our successor candidate.
            self.stabilize(now);
        }
    }

    pub(super) fn on_successor_changed(&mut self) {
        // New neighbourhood: refresh fingers quickly again.
        self.fix_interval = self.cfg.fix_fingers_min;
    }

    pub(super) fn state_response(&mut self, to: NodeId, fingers: bool, sample: u8) -> RingResponse {
        if self.phase != Phase::Member {
            return RingResponse::Error(ErrorCode::NotMember);
        }
        RingResponse::State {
            pred: self.t.pred,
            succs: self.t.succs.clone(),
            fingers: if fingers {
                self.t.fingers.iter().map(|f| f.peer).collect()
            } else {
                Vec::new()
            },
            sample: self.sample_for(to, usize::from(sample)),
        }
    }

    // ---- check predecessor -------------------------------------------------------------------

    pub(super) fn tick_check_predecessor(&mut self, now: Time) {
        if self.phase != Phase::Member {
            return;
        }
        if let Some(p) = self.t.pred {
            self.request(now, p, RingRequest::Ping, Purpose::CheckPred);
        }
        let c = self.jittered(self.cfg.check_predecessor_interval);
        self.set_timer(now + c, RingTimer::CheckPredecessor);
    }

    // ---- fix fingers -------------------------------------------------------------------------

    pub(super) fn tick_fix_fingers(&mut self, now: Time) {
        if self.phase != Phase::Member {
            return;
        }
        self.fix_fingers(now);
        let f = self.jittered(self.fix_interval);
        self.set_timer(now + f, RingTimer::FixFingers);
    }

    /// Refreshes the next finger of the chain. Fingers that fall inside the successor list are
    /// filled from it at no cost; the first one beyond needs a lookup.
    fn fix_fingers(&mut self, now: Time) {
        if self.fix_inflight {
            return;
        }
        for _ in 0..crate::id::ID_BITS {
            let k = self.fix_next;
            let Some(bit) = self.t.finger_bit(k) else {
                self.finish_finger_cycle(now, k);
                return;
            };
            if self.t.succs.is_empty() {
                self.finish_finger_cycle(now, 0);
                return;
            }
            let start = self.t.me.id.add_pow2(bit);
            if let Some(i) = self.t.successor_index(&start) {
                let s = self.t.succs[i];
                self.finger_found(now, k, bit, s);
                continue;
            }
            self.fix_inflight = true;
            // A finger we already hold is checked with one request: it is still right when
            // its predecessor lies before the finger's start. Only a new or failed one needs
            // a lookup.
            let held = self
                .t
                .fingers
                .get(k)
                .filter(|f| u32::from(f.bit) == bit && !self.t.is_suspect(&f.peer.id, now))
                .map(|f| f.peer);
            match held {
                Some(f) => self.check_finger(now, f, k, bit, 0),
                None => self.start_lookup(now, start, LookupPurpose::Finger { k, bit }, None),
            }
            return;
        }
    }

    fn check_finger(&mut self, now: Time, peer: Peer, k: usize, bit: u32, steps: u8) {
        let purpose = Purpose::FingerCheck { k, bit, steps };
        if self
            .request(
                now,
                peer,
                RingRequest::GetState {
                    fingers: false,
                    sample: 0,
                },
                purpose,
            )
            .is_none()
        {
            self.fix_inflight = false;
        }
    }

    pub(super) fn finger_check_response(
        &mut self,
        now: Time,
        from: Peer,
        body: RingResponse,
        k: usize,
        bit: u32,
        steps: u8,
    ) {
        let start = self.t.me.id.add_pow2(bit);
        let pred = match body {
            RingResponse::State { pred, .. } => pred,
            _ => None,
        };
        match pred {
            // `from` is the first node at or after the start: the finger is right.
            Some(p) if self.t.dist(&p.id) < self.t.dist(&start) => {
                self.finger_lookup_done(now, k, bit, Some(from))
            }
            // Someone joined between the start and `from`: walk back to it.
            Some(p)
                if steps < MAX_FINGER_WALK
                    && p.id != self.t.me.id
                    && self.t.dist(&p.id) < self.t.dist(&from.id)
                    && !self.t.is_suspect(&p.id, now) =>
            {
                self.check_finger(now, p, k, bit, steps + 1)
            }
            // No predecessor, a refusal or a long walk: ask the ring.
            _ => self.start_lookup(now, start, LookupPurpose::Finger { k, bit }, None),
        }
    }

    pub(super) fn finger_check_failed(&mut self, now: Time, k: usize, bit: u32) {
        let start = self.t.me.id.add_pow2(bit);
        self.start_lookup(now, start, LookupPurpose::Finger { k, bit }, None);
    }

    pub(super) fn finger_found(&mut self, now: Time, k: usize, bit: u32, peer: Peer) {
        if peer.id == self.t.me.id {
            // Nothing between the finger's start and us: the chain ends before `k`.
            self.finish_finger_cycle(now, k);
            return;
        }
        if self.t.finger_bit(k) != Some(bit) {
            // The chain changed while the lookup ran: this answer is for a finger that no
            // longer exists. Start the cycle over.
            self.fix_next = 0;
            return;
        }
        let start = self.t.dist(&self.t.me.id.add_pow2(bit));
        if self.t.dist(&peer.id) < start {
            // A stale answer: the successor of the start cannot precede it. Retry next cycle.
            self.fix_next = k + 1;
            return;
        }
        if self.t.set_finger(k, bit, peer, now, &self.cfg) {
            self.fix_cycle_changed = true;
            self.fix_interval = self.cfg.fix_fingers_min;
        }
        self.fix_next = k + 1;
    }

    pub(super) fn finger_lookup_done(&mut self, now: Time, k: usize, bit: u32, r: Option<Peer>) {
        self.fix_inflight = false;
        match r {
            Some(p) => {
                self.finger_found(now, k, bit, p);
                // Keep going while the next fingers can be filled locally.
                if self.fix_next != 0 {
                    self.fix_fingers(now);
                }
            }
            None => self.fix_next = k,
        }
    }

    fn finish_finger_cycle(&mut self, now: Time, len: usize) {
        if self.t.fingers.len() > len {
            self.t.truncate_fingers(len, now, &self.cfg);
            self.fix_cycle_changed = true;
        }
        self.fix_next = 0;
        self.fix_interval = if self.fix_cycle_changed {
            self.cfg.fix_fingers_min
        } else {
            self.fix_interval
                .saturating_mul(2)
                .min(self.cfg.fix_fingers_max)
        };
        self.fix_cycle_changed = false;
    }

    // ---- lost peers and partition merge ------------------------------------------------------

    pub(super) fn tick_probe(&mut self, now: Time) {
        if self.phase != Phase::Member {
            return;
        }
        self.t.expire(now, &self.cfg);
        let me = self.t.me.id;
        let mut due: Vec<usize> = (0..self.t.graveyard.len())
            .filter(|i| self.t.graveyard[*i].next_probe <= now)
            .collect();
        // Closest lost peers first: they are the likeliest lost successors.
        due.sort_by_key(|i| me.distance_to(&self.t.graveyard[*i].peer.id));
        due.truncate(self.cfg.probe_batch);
        // Backing off, every lost peer of one partition can wait its next probe at once (they
        // were lost together): with nothing due, the one waiting longest is probed anyway, so
        // a healed partition is found within a round, for one ping a round.
        if due.is_empty()
            && let Some(i) =
                (0..self.t.graveyard.len()).min_by_key(|i| self.t.graveyard[*i].next_probe)
        {
            due.push(i);
        }
        for i in due {
            let lost = &mut self.t.graveyard[i];
            lost.next_probe = now + lost.backoff;
            let peer = lost.peer;
            self.request(now, peer, RingRequest::Ping, Purpose::Probe);
        }
        self.probe_candidates(now);
        let p = self.jittered(self.cfg.probe_interval);
        self.set_timer(now + p, RingTimer::Probe);
    }

    pub(super) fn probe_failed(&mut self, now: Time, peer: Peer) {
        let max = self.cfg.probe_backoff_max;
        if let Some(l) = self.t.graveyard.iter_mut().find(|l| l.peer.id == peer.id) {
            l.backoff = l.backoff.saturating_mul(2).min(max);
            l.next_probe = now + l.backoff;
        }
    }

    /// Any message from `peer` proves it alive. A peer we had lost is rediscovered: it may be
    /// the successor we lost in a partition, or a door into a ring that split from ours.
    pub(super) fn heard_from(&mut self, now: Time, peer: Peer) {
        if !self.t.heard_from(&peer.id, now, &self.cfg) || self.phase != Phase::Member {
            return;
        }
        if self.t.closer_than_successor(&peer.id) {
            self.check_candidate(now, peer);
        }
        self.start_merge(now, vec![peer]);
    }

    /// Every peer a message names (and its sender) may be a member lying between us and our
    /// successor, which stabilize alone would never find when joins interleave. Such a peer is
    /// checked as a successor candidate (rule 1: `GetState` first; non-members refuse it).
    pub(super) fn observe_message(&mut self, now: Time, from: Peer, msg: &Message) {
        if self.phase != Phase::Member {
            return;
        }
        let Some(succ) = self.t.successor() else {
            return;
        };
        let me = self.t.me.id;
        let mut best: Option<Peer> = None;
        let mut consider = |p: &Peer| {
            if p.id.in_open(&me, &succ.id)
                && best.is_none_or(|b| me.distance_to(&p.id) < me.distance_to(&b.id))
            {
                best = Some(*p);
            }
        };
        consider(&from);
        if let Message::Response {
            body: Response::Ring(body),
            ..
        } = msg
        {
            match body {
                RingResponse::State {
                    pred,
                    succs,
                    fingers,
                    ..
                } => pred
                    .iter()
                    .chain(succs)
                    .chain(fingers)
                    .for_each(&mut consider),
                RingResponse::Found { succs } => succs.iter().for_each(&mut consider),
                RingResponse::Closer { peers } => peers.iter().for_each(&mut consider),
                RingResponse::Pong | RingResponse::Error(_) => {}
            }
        }
        let Some(c) = best else { return };
        if self.t.is_suspect(&c.id, now) {
            return;
        }
        let checking = self
            .rpcs
            .values()
            .filter(|p| matches!(p.purpose, Purpose::Candidate { .. }))
            .count();
        if checking < MAX_CANDIDATE_CHECKS {
            self.check_candidate(now, c);
        }
    }

    /// Rule 1: a possible closer successor is adopted only after it answers `GetState`.
    fn check_candidate(&mut self, now: Time, peer: Peer) {
        self.request(
            now,
            peer,
            RingRequest::GetState {
                fingers: false,
                sample: 0,
            },
            Purpose::Candidate { steps: 0 },
        );
    }

    /// A peer found by LAN discovery: unless it is already in our routing state, it may be a
    /// door into another ring (two nodes that founded rings of their own on one LAN).
    pub(crate) fn discovered(&mut self, now: Time, peer: Peer) {
        if self.phase != Phase::Member || peer.id == self.t.me.id || self.t.routes_to(&peer.id) {
            return;
        }
        self.start_merge(now, vec![peer]);
    }

    /// Looks our own id up through `via`: in another ring, that finds our successor there.
    pub(super) fn start_merge(&mut self, now: Time, via: Vec<Peer>) {
        if self.merge_inflight {
            return;
        }
        self.merge_inflight = true;
        let key = self.t.me.id;
        self.start_lookup(now, key, LookupPurpose::Merge, Some(via));
    }

    pub(super) fn merge_done(&mut self, now: Time, found: Option<Peer>) {
        self.merge_inflight = false;
        let Some(s) = found else { return };
        if s.id == self.t.me.id || self.t.routes_to(&s.id) {
            // Our own ring: nothing to merge.
            return;
        }
        if self.t.closer_than_successor(&s.id) {
            self.check_candidate(now, s);
        }
        // In the other ring we lie between `s` and its predecessor: propose ourselves to `s`
        // (rule 4), so that its ring's stabilize walks back to us too. Without it a ring whose
        // nodes all have closer successors at home would never take the first step.
        self.send(s, Message::Notice(Notice::Ring(RingNotice::Notify)));
    }
}
