//! How holders keep `k` copies: every sync period (and soon after the neighbours change) a
//! node compares the digest of its primary range `(predecessor, self]` with each of its next
//! `k − 1` successors (and the *witness* after them if `RecordsConfig::witness`: its copy
//! breaks a tie among the holders' votes and makes it a holder with a copy already when one of
//! them fails). Equal digests end the exchange; otherwise the successor lists its
//! hashes in the range, the node pushes what the successor lacks and fetches what it lacks
//! itself, and both merge by policy — so a new successor gets its copies, a joiner gets the
//! range it took over, a node back from a crash, restart or partition converges, and two
//! claims that met are settled by the holders' answers (`settle.rs`) the same way everywhere. Expired records are swept first.
//!
//! A record no holder has compared with this node for a few periods is a stray: the node is
//! not among its holders any more (the ring moved past it, a partition healed, the node
//! restarted with old records). It looks up the key's successor, hands the record over (which
//! settles a claim that lost there) and drops its copy.

use std::collections::BTreeSet;

use super::node::{FETCH, Records, STRAY, SYNC};
use super::wire::{self as rwire, MAX_HASHES, RecordsRequest, RecordsResponse};
use super::{Hash, Record, RecordsEvent};
use crate::id::NodeId;
use crate::protocol::{Ctx, Reply};
use crate::time::Time;
use crate::wire::{Peer, RECORDS, Request, Response};

/// Follow-up comparisons of one range when the successor's list was cut.
const MAX_CHAIN: u8 = 16;
/// Records pushed to one successor per comparison.
const MAX_PUSH: usize = 256;
/// A successor's list is cut after this many hashes (at the next location).
const CUT: usize = 512;
/// Lookups for strays in flight.
pub(super) const MAX_STRAYS: usize = 32;
/// Compared ranges remembered.
pub(super) const MAX_COVERED: usize = 64;
/// A record not compared for this many sync periods is a stray.
const STRAY_PERIODS: u32 = 4;
/// Hashes per fetch request.
const FETCH_BATCH: usize = 16;

/// A comparison in flight.
#[derive(Debug)]
pub(super) struct SyncTask {
    peer: Peer,
    from: NodeId,
    to: NodeId,
    chain: u8,
}

impl Records {
    /// Sweeps expired records and starts the comparisons of this node's primary range.
    pub(super) fn sync_round(&mut self, cx: &mut Ctx<'_>) {
        let now_ms = self.now_ms(cx);
        for h in self.store.sweep(now_ms) {
            self.stats.expired += 1;
            Self::event(cx, RecordsEvent::Released(h));
        }
        self.hand_off_strays(cx);
        self.settle_due(cx);
        let ring = cx.ring();
        let (Some(pred), true) = (ring.predecessor(), ring.is_member()) else {
            return;
        };
        let me = ring.me().id;
        let now = cx.now();
        let copies = self.copies_after();
        let peers: Vec<Peer> = ring
            .successors()
            .iter()
            .filter(|p| !ring.is_suspect(&p.id, now))
            .take(copies)
            .copied()
            .collect();
        for p in peers {
            // One comparison per successor at a time.
            if self.syncs.values().any(|t| t.peer.id == p.id) {
                continue;
            }
            self.start_sync(cx, p, pred.id, me, 0);
        }
    }

    fn start_sync(&mut self, cx: &mut Ctx<'_>, peer: Peer, from: NodeId, to: NodeId, chain: u8) {
        if self.syncs.len() >= 16 * self.cfg.replicas.max(1) {
            return;
        }
        let (digest, count) = self.store.digest(from, to);
        let id = self.next_sync;
        self.next_sync = (self.next_sync + 1) & ((1 << 56) - 1);
        let body = Request::Records(RecordsRequest::Sync {
            from,
            to,
            digest,
            count,
        });
        if cx.request(peer, body, RECORDS, SYNC | id) {
            self.stats.syncs += 1;
            self.syncs.insert(
                id,
                SyncTask {
                    peer,
                    from,
                    to,
                    chain,
                },
            );
        }
    }

    /// Answers a comparison of `(from, to]`.
    pub(super) fn answer_sync(
        &self,
        from: NodeId,
        to: NodeId,
        digest: [u8; 32],
        count: u32,
    ) -> RecordsResponse {
        if self.store.digest(from, to) == (digest, count) {
            return RecordsResponse::Sync {
                hashes: None,
                upto: None,
            };
        }
        let mut hashes = Vec::new();
        let mut upto = None;
        let mut last: Option<NodeId> = None;
        for (loc, h, _) in self.store.range(from, to) {
            // Cut only between locations (a mailbox's items stay together), and in any case
            // at the wire's bound.
            if (hashes.len() >= CUT && last != Some(*loc)) || hashes.len() >= MAX_HASHES {
                upto = last;
                break;
            }
            hashes.push(*h);
            last = Some(*loc);
        }
        RecordsResponse::Sync {
            hashes: Some(hashes),
            upto,
        }
    }

    /// The successor's answer to a comparison.
    pub(super) fn sync_reply(&mut self, cx: &mut Ctx<'_>, id: u64, reply: Reply) {
        let Some(task) = self.syncs.remove(&id) else {
            return;
        };
        let Reply::Answer {
            body: Response::Records(RecordsResponse::Sync { hashes, upto }),
            ..
        } = reply
        else {
            return;
        };
        let Some(theirs) = hashes else {
            self.stats.syncs_equal += 1;
            return;
        };
        if theirs.len() > MAX_HASHES || upto.is_some_and(|u| !u.in_half_open(&task.from, &task.to))
        {
            cx.count_invalid();
            return;
        }
        let covered = upto.unwrap_or(task.to);
        let theirs_set: BTreeSet<Hash> = theirs.iter().copied().collect();
        let push: Vec<Record> = self
            .store
            .range(task.from, covered)
            .filter(|(_, h, _)| !theirs_set.contains(h))
            .take(MAX_PUSH)
            .map(|(_, _, r)| r.clone())
            .collect();
        self.push(cx, &[task.peer], push);
        let want: Vec<Hash> = theirs
            .into_iter()
            .filter(|h| !self.store.contains(h))
            .collect();
        for chunk in want.chunks(FETCH_BATCH) {
            if self.fetches.len() >= 1024 {
                break;
            }
            let fid = self.next_sync;
            self.next_sync = (self.next_sync + 1) & ((1 << 56) - 1);
            let body = Request::Records(RecordsRequest::Fetch(chunk.to_vec()));
            if cx.request(task.peer, body, RECORDS, FETCH | fid) {
                self.fetches.insert(fid, task.peer);
            }
        }
        if let Some(u) = upto
            && u != task.to
            && task.chain < MAX_CHAIN
        {
            self.start_sync(cx, task.peer, u, task.to, task.chain + 1);
        }
    }

    /// Records fetched from a successor.
    pub(super) fn fetch_reply(&mut self, cx: &mut Ctx<'_>, id: u64, reply: Reply) {
        if self.fetches.remove(&id).is_none() {
            return;
        }
        if let Reply::Answer {
            body: Response::Records(RecordsResponse::Fetched(records)),
            ..
        } = reply
        {
            if records.len() > rwire::MAX_BATCH {
                cx.count_invalid();
                return;
            }
            for r in records {
                self.stats.fetched += 1;
                self.accept_copy(cx, r);
            }
        }
    }
}

impl Records {
    /// Remembers that a holder compared `(from, to]` with this node at `now`.
    pub(super) fn note_covered(&mut self, now: Time, from: NodeId, to: NodeId) {
        if self.covered.len() >= MAX_COVERED {
            self.covered.pop_front();
        }
        self.covered.push_back((from, to, now));
    }

    /// Starts the hand-over of strays: records located outside this node's primary range and
    /// outside every range a holder compared with it lately.
    fn hand_off_strays(&mut self, cx: &mut Ctx<'_>) {
        let now = cx.now();
        let window = self.cfg.sync_interval * STRAY_PERIODS;
        let ring = cx.ring();
        // A node joined just before this one: the range it took over, `(old, new]`, was this
        // node's, and this node is its first replica now, not a stray's keeper (else it would
        // drop its copies before the joiner's first comparison covers them, and the joiner
        // would be the range's only copy). Counted as compared now.
        let pred = ring.predecessor().map(|p| p.id);
        if let (Some(old), Some(new)) = (self.last_pred, pred)
            && new.in_open(&old, &ring.me().id)
        {
            self.note_covered(now, old, new);
        }
        self.last_pred = pred;
        if !ring.is_member() || self.joined_at.is_none_or(|t| now.since(t) < window) {
            return;
        }
        self.covered.retain(|(_, _, at)| now.since(*at) < window);
        let mut locs: Vec<NodeId> = Vec::new();
        for r in self.store.iter() {
            let loc = r.location();
            if locs.last() == Some(&loc)
                || ring.owns(&loc)
                || self.strays.values().any(|l| *l == loc)
                || self.covered.iter().any(|(a, b, _)| loc.in_half_open(a, b))
            {
                continue;
            }
            locs.push(loc);
            if locs.len() + self.strays.len() >= MAX_STRAYS {
                break;
            }
        }
        for loc in locs {
            let id = self.next_sync;
            self.next_sync = (self.next_sync + 1) & ((1 << 56) - 1);
            self.strays.insert(id, loc);
            cx.lookup(loc, RECORDS, STRAY | id);
        }
    }

    /// The holder of a stray was found: hand the records over and drop them here.
    pub(super) fn stray_found(&mut self, cx: &mut Ctx<'_>, id: u64, result: Option<Peer>) {
        let Some(loc) = self.strays.remove(&id) else {
            return;
        };
        let Some(p) = result else { return };
        if p.id == cx.me().id {
            return;
        }
        let here: Vec<Record> = self.store.at(&loc).cloned().collect();
        self.push(cx, &[p], here.clone());
        for r in here {
            self.stats.handed_off += 1;
            let h = r.hash();
            if self.store.remove(&h) {
                Self::event(cx, RecordsEvent::Released(h));
            }
        }
    }
}
