//! [`Records`]: one node's part of the DHT — its store, the requests it answers (put, get,
//! digest, fetch), the copies it accepts, and its timers. Client operations are in `ops.rs`,
//! the holders' comparison in `sync.rs`.

use std::collections::BTreeMap;

use super::ops::Op;
use super::policy::Via;
use super::settle::Dispute;
use super::store::{Offered, Store};
use super::sync::SyncTask;
use super::wire::{self as rwire, RecordsNotice, RecordsRequest, RecordsResponse};
use super::{
    Hash, Kind, Record, RecordError, RecordsConfig, RecordsEvent, RecordsInput, RecordsStats,
    RecordsTimer, policy,
};
use crate::common::rate::RateLimiter;
use crate::id::NodeId;
use crate::overlay::Event;
use crate::protocol::{Ctx, Reply, RingEvent};
use crate::wire::{Message, Notice, Peer};

/// A leaving node hands its records to this many times the successors that keep them
/// ([`Records::on_leave`]).
pub(super) const LEAVE_SPARE: usize = 2;

/// Tokens of lookups and requests: the top byte says what they belong to.
pub(super) const OP: u64 = 1 << 56;
pub(super) const SYNC: u64 = 2 << 56;
pub(super) const FETCH: u64 = 3 << 56;
pub(super) const STRAY: u64 = 4 << 56;
const TAG: u64 = 0xff << 56;

/// A record this node re-puts for its owner.
#[derive(Debug)]
pub(super) struct Owned {
    pub record: Record,
    /// [`RecordsEvent::Expiring`] was raised for it.
    pub told: bool,
}

/// The records sub-protocol of one node.
#[derive(Debug)]
pub struct Records {
    pub(super) cfg: RecordsConfig,
    pub(super) store: Store,
    pub(super) ops: BTreeMap<u64, Op>,
    pub(super) next_op: u64,
    pub(super) owned: BTreeMap<Hash, Owned>,
    pub(super) syncs: BTreeMap<u64, SyncTask>,
    pub(super) fetches: BTreeMap<u64, Peer>,
    pub(super) next_sync: u64,
    limiter: RateLimiter,
    readers: RateLimiter,
    pub(super) soon_armed: bool,
    /// Ranges other holders compared with this node lately: `(from, to]` and when.
    pub(super) covered: std::collections::VecDeque<(NodeId, NodeId, crate::time::Time)>,
    /// Lookups of the holders of records this node holds but nobody compares with it.
    pub(super) strays: BTreeMap<u64, NodeId>,
    /// Names whose held claim a copy disputed, by location: settled by asking the holders.
    pub(super) disputes: BTreeMap<NodeId, Dispute>,
    /// When the node became a member.
    pub(super) joined_at: Option<crate::time::Time>,
    /// The predecessor at the last stray check.
    pub(super) last_pred: Option<NodeId>,
    started: bool,
    pub(super) stats: RecordsStats,
}

impl Records {
    /// A node's records part with `cfg`.
    pub fn new(cfg: RecordsConfig) -> Records {
        Records {
            limiter: RateLimiter::new(cfg.put_rate_per_sec, cfg.put_burst, 4096),
            readers: RateLimiter::new(cfg.read_rate_per_sec, cfg.read_burst, 4096),
            cfg,
            store: Store::default(),
            ops: BTreeMap::new(),
            next_op: 0,
            owned: BTreeMap::new(),
            syncs: BTreeMap::new(),
            fetches: BTreeMap::new(),
            next_sync: 0,
            soon_armed: false,
            covered: std::collections::VecDeque::new(),
            strays: BTreeMap::new(),
            disputes: BTreeMap::new(),
            joined_at: None,
            last_pred: None,
            started: false,
            stats: RecordsStats::default(),
        }
    }

    /// Plants `r` in this node's store with no policy, as a modified node would
    /// ([`Store::plant`]); for the adversarial tests and the simulator only.
    #[doc(hidden)]
    pub fn plant(&mut self, r: Record) {
        self.store.plant(r);
    }

    /// Counters.
    pub fn stats(&self) -> &RecordsStats {
        &self.stats
    }

    /// The records held.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The configuration in force.
    pub fn config(&self) -> &RecordsConfig {
        &self.cfg
    }

    /// Records this node re-puts for its owners.
    pub fn owned(&self) -> impl Iterator<Item = &Record> {
        self.owned.values().map(|o| &o.record)
    }

    /// Operations in flight.
    pub fn ops_in_flight(&self) -> usize {
        self.ops.len()
    }

    pub(super) fn now_ms(&self, cx: &Ctx<'_>) -> u64 {
        self.cfg.wall_ms(cx.now())
    }

    pub(super) fn event(cx: &mut Ctx<'_>, e: RecordsEvent) {
        cx.event(Event::Records(e));
    }

    /// An application request.
    pub fn on_input(&mut self, cx: &mut Ctx<'_>, input: RecordsInput) {
        match input {
            RecordsInput::Put { token, record, own } => {
                self.start_put(cx, Some(token), record, own)
            }
            RecordsInput::Get { token, kind, key } => self.start_get(cx, Some(token), kind, key),
            RecordsInput::Restore(records) => {
                let now_ms = self.now_ms(cx);
                for r in records {
                    let h = r.hash();
                    let kept = match policy::validate(&r, &self.cfg, now_ms) {
                        // A second claim of one name in the file is not kept: the holders'
                        // answers settle the name once this node is back on the ring.
                        Ok(kind) => matches!(
                            self.store.offer(r, kind, Via::Copy, now_ms, &self.cfg),
                            Offered::Stored { .. } | Offered::Same
                        ),
                        Err(_) => false,
                    };
                    if !kept {
                        Self::event(cx, RecordsEvent::Released(h));
                    }
                }
            }
        }
    }

    /// What the ring did.
    pub fn on_ring_event(&mut self, cx: &mut Ctx<'_>, ev: &RingEvent) {
        match ev {
            RingEvent::Joined if !self.started => {
                self.started = true;
                let now = cx.now();
                self.joined_at = Some(now);
                let d = cx.jittered(self.cfg.sync_interval);
                cx.set_timer(now + d, RecordsTimer::Sync.into());
                let d = cx.jittered(self.cfg.renew_interval);
                cx.set_timer(now + d, RecordsTimer::Renew.into());
            }
            RingEvent::NeighboursChanged if self.started && !self.soon_armed => {
                // Copies may have to move: compare soon, once the ring's answers are in.
                self.soon_armed = true;
                let at = cx.now() + self.cfg.sync_interval / 6;
                cx.set_timer(at, RecordsTimer::SyncSoon.into());
            }
            _ => {}
        }
    }

    /// One of records' timers fired.
    pub fn on_timer(&mut self, cx: &mut Ctx<'_>, t: RecordsTimer) {
        match t {
            RecordsTimer::Sync => {
                self.sync_round(cx);
                let d = cx.jittered(self.cfg.sync_interval);
                let at = cx.now() + d;
                cx.set_timer(at, RecordsTimer::Sync.into());
            }
            RecordsTimer::SyncSoon => {
                if self.soon_armed {
                    self.soon_armed = false;
                    self.sync_round(cx);
                }
            }
            RecordsTimer::Retry(id) => self.retry_due(cx, id),
            RecordsTimer::Renew => {
                self.renew(cx);
                let d = cx.jittered(self.cfg.renew_interval);
                let at = cx.now() + d;
                cx.set_timer(at, RecordsTimer::Renew.into());
            }
        }
    }

    /// Whether timer `t` would act now.
    pub fn wants_timer(&self, t: &RecordsTimer) -> bool {
        match t {
            RecordsTimer::SyncSoon => self.soon_armed,
            RecordsTimer::Retry(id) => self.ops.get(id).is_some_and(|o| o.pending_retry),
            RecordsTimer::Sync | RecordsTimer::Renew => true,
        }
    }

    /// A notice arrived.
    pub fn on_notice(&mut self, cx: &mut Ctx<'_>, from: Peer, n: RecordsNotice) {
        if n.validate().is_err() {
            cx.count_invalid();
            return;
        }
        let RecordsNotice::Store(records) = n;
        let _ = from;
        for r in records {
            self.accept_copy(cx, r);
        }
    }

    /// A request arrived; the answer goes back at once.
    pub fn on_request(
        &mut self,
        cx: &mut Ctx<'_>,
        from: Peer,
        req: RecordsRequest,
    ) -> RecordsResponse {
        if req.validate().is_err() {
            self.stats.refused_invalid += 1;
            cx.count_invalid();
            return RecordsResponse::Refused(RecordError::TooLarge {
                max: rwire::MAX_HASHES,
            });
        }
        let now = cx.now();
        if !matches!(req, RecordsRequest::Put(_)) && !self.readers.allow(&from.id, now) {
            self.stats.refused_rate += 1;
            let wait = self.readers.wait(&from.id, now);
            return RecordsResponse::Refused(RecordError::RateLimited {
                retry_after_ms: wait.as_millis().max(1) as u64,
            });
        }
        match req {
            RecordsRequest::Put(r) => RecordsResponse::Put(self.put_here(cx, from.id, r)),
            RecordsRequest::Get { kind, key, after } => self.get_here(cx, kind, &key, after),
            RecordsRequest::Sync {
                from: a,
                to: b,
                digest,
                count,
            } => {
                self.note_covered(cx.now(), a, b);
                self.answer_sync(a, b, digest, count)
            }
            RecordsRequest::Fetch(hashes) => {
                let found: Vec<Record> = hashes
                    .iter()
                    .filter_map(|h| self.store.by_hash(h).cloned())
                    .collect();
                let first = rwire::batches(found).into_iter().next();
                RecordsResponse::Fetched(first.unwrap_or_default())
            }
        }
    }

    /// The outcome of a request records made.
    pub fn on_reply(&mut self, cx: &mut Ctx<'_>, token: u64, reply: Reply) {
        let id = token & !TAG;
        match token & TAG {
            OP => self.op_reply(cx, id, reply),
            SYNC => self.sync_reply(cx, id, reply),
            FETCH => self.fetch_reply(cx, id, reply),
            _ => {}
        }
    }

    /// The outcome of a lookup records started.
    pub fn on_lookup(&mut self, cx: &mut Ctx<'_>, token: u64, result: Option<Peer>) {
        match token & TAG {
            OP => self.op_lookup(cx, token & !TAG, result),
            STRAY => self.stray_found(cx, token & !TAG, result),
            _ => {}
        }
    }

    /// The node leaves: hand every held record to the next `k` successors (the `k`-th
    /// becomes a holder when this node is gone), and to the witness after them — and to as
    /// many successors again after those ([`LEAVE_SPARE`]): a node often leaves while its
    /// neighbours churn, and successors that died moments before (not yet noticed) would
    /// otherwise take the last copies with them. A spare that is no holder hands its copy on
    /// like any stray.
    pub fn on_leave(&mut self, cx: &mut Ctx<'_>) {
        let all: Vec<Record> = self.store.iter().cloned().collect();
        let to = Self::successors(cx, (self.copies_after() + 1) * LEAVE_SPARE);
        self.push(cx, &to, all);
    }

    /// A client's put at this node (the primary holder): rate, responsibility, validity,
    /// policy; then the copies go to the successors.
    pub(super) fn put_here(
        &mut self,
        cx: &mut Ctx<'_>,
        origin: NodeId,
        r: Record,
    ) -> Result<u8, RecordError> {
        let now = cx.now();
        if !self.limiter.allow(&origin, now) {
            self.stats.refused_rate += 1;
            let wait = self.limiter.wait(&origin, now);
            return Err(RecordError::RateLimited {
                retry_after_ms: wait.as_millis().max(1) as u64,
            });
        }
        if !cx.ring().is_member() {
            return Err(RecordError::NotMember);
        }
        if !cx.ring().owns(&r.location()) {
            self.stats.refused_range += 1;
            return Err(RecordError::NotResponsible);
        }
        let copies = (cx.ring().successors().len() + 1).min(self.cfg.replicas) as u8;
        if self.offer(cx, r.clone(), Via::Put)? {
            self.replicate(cx, vec![r]);
        }
        Ok(copies)
    }

    /// Validates and offers `r`, arriving `via` a put, a copy or a settled dispute;
    /// `Ok(true)`: newly stored (events raised), `Ok(false)`: already held. A copy that
    /// disputes a held claim starts the holders' settlement ([`Records::dispute`]).
    pub(super) fn offer(
        &mut self,
        cx: &mut Ctx<'_>,
        r: Record,
        via: Via,
    ) -> Result<bool, RecordError> {
        let now_ms = self.now_ms(cx);
        if self.store.contains(&r.hash()) {
            self.stats.duplicates += 1;
            return Ok(false);
        }
        let kind = match policy::validate(&r, &self.cfg, now_ms) {
            Ok(k) => k,
            Err(e) => {
                self.stats.refused_invalid += 1;
                cx.count_invalid();
                return Err(e);
            }
        };
        let key = r.key.clone();
        let held = r.clone();
        match self.store.offer(r, kind, via, now_ms, &self.cfg) {
            Offered::Stored { released, conflict } => {
                self.stats.stored += 1;
                for h in released {
                    Self::event(cx, RecordsEvent::Released(h));
                }
                if let Some((winner, loser)) = conflict {
                    self.stats.conflicts += 1;
                    Self::event(cx, RecordsEvent::Conflict { key, winner, loser });
                }
                Self::event(cx, RecordsEvent::Held(held));
                Ok(true)
            }
            Offered::Same => {
                self.stats.duplicates += 1;
                Ok(false)
            }
            Offered::Disputed(holder) => {
                self.dispute(cx, &held);
                Err(RecordError::Taken { holder })
            }
            Offered::Refused(e) => {
                match e {
                    RecordError::Quota(_) => self.stats.refused_quota += 1,
                    _ => self.stats.refused_policy += 1,
                }
                Err(e)
            }
        }
    }

    /// A copy from another holder (a push, a fetch, a hand-over): kept if this node may hold
    /// its key and it passes the policy. A live claim of a name this node holds nothing for is
    /// tentative: the node settles the name first ([`Records::confirm`]).
    pub(super) fn accept_copy(&mut self, cx: &mut Ctx<'_>, r: Record) {
        if !self.may_hold(cx, &r.location()) {
            self.stats.refused_range += 1;
            cx.count_invalid();
            return;
        }
        if self.tentative(cx, &r) {
            self.stats.tentative += 1;
            self.confirm(cx, &r);
            return;
        }
        let _ = self.offer(cx, r, Via::Copy);
    }

    /// Whether `r` is a valid, live claim of a name this node holds nothing live for (not even
    /// a tombstone).
    fn tentative(&self, cx: &Ctx<'_>, r: &Record) -> bool {
        let now_ms = self.now_ms(cx);
        let claim = Kind::from_u8(r.kind).is_some_and(|k| k.policy() == policy::Policy::Claim);
        claim
            && !matches!(r.value, super::Value::Deleted)
            && !self.store.contains(&r.hash())
            && self
                .store
                .get(&r.location(), r.kind, &r.key, now_ms)
                .is_empty()
            && policy::validate(r, &self.cfg, now_ms).is_ok()
    }

    /// Whether this node may be one of the `k` holders of `loc`: it is the key's successor,
    /// or `loc` lies within a generous number of average node gaps before it (a node knows
    /// only its predecessor, so a replica's range is judged from the ring-size estimate).
    pub(super) fn may_hold(&self, cx: &Ctx<'_>, loc: &NodeId) -> bool {
        let ring = cx.ring();
        if !ring.is_member() {
            return false;
        }
        if ring.owns(loc) {
            return true;
        }
        let n = ring.ring_size_estimate().max(1) as f64;
        let frac = loc.distance_to(&ring.me().id).high_u64() as f64 / 18_446_744_073_709_551_616.0;
        frac * n <= (8 * self.cfg.replicas).max(32) as f64
    }

    /// The successors that keep copies of this node's primary range: the other `k − 1`
    /// holders, and the witness if [`super::RecordsConfig::witness`].
    pub(super) fn copies_after(&self) -> usize {
        self.cfg.replicas.saturating_sub(1) + usize::from(self.cfg.witness)
    }

    /// Sends copies of `records` to the successors that keep them ([`Records::copies_after`]).
    pub(super) fn replicate(&mut self, cx: &mut Ctx<'_>, records: Vec<Record>) {
        let to = Self::successors(cx, self.copies_after());
        self.push(cx, &to, records);
    }

    /// The first `n` successors.
    fn successors(cx: &Ctx<'_>, n: usize) -> Vec<Peer> {
        cx.ring().successors().iter().take(n).copied().collect()
    }

    /// Sends `records` to each of `to`, in bounded batches ([`rwire::batches`]).
    pub(super) fn push(&mut self, cx: &mut Ctx<'_>, to: &[Peer], records: Vec<Record>) {
        for batch in rwire::batches(records) {
            for p in to {
                self.stats.pushed += batch.len() as u64;
                cx.send(
                    *p,
                    Message::Notice(Notice::Records(RecordsNotice::Store(batch.clone()))),
                );
            }
        }
    }

    /// Answers a get: what is held of `kind` and `key` after `after`, a batch at a time, and
    /// the next `k` successors.
    pub(super) fn get_here(
        &self,
        cx: &Ctx<'_>,
        kind: u8,
        key: &[u8],
        after: Option<Hash>,
    ) -> RecordsResponse {
        let loc = super::location(kind, key);
        let now_ms = self.now_ms(cx);
        let mut held: Vec<Record> = self
            .store
            .get(&loc, kind, key, now_ms)
            .into_iter()
            .filter(|r| after.is_none_or(|a| r.hash() > a))
            .cloned()
            .collect();
        held.sort_by_key(Record::hash);
        let total = held.len();
        let records = rwire::batches(held).into_iter().next().unwrap_or_default();
        let more = (records.len() < total)
            .then(|| records.last().map(Record::hash))
            .flatten();
        // The reader asks these too: the other holders when this node is the primary, and
        // where the ring moved, the nodes that held the key before.
        let replicas = cx
            .ring()
            .successors()
            .iter()
            .take(self.cfg.replicas)
            .copied()
            .collect();
        RecordsResponse::Got {
            records,
            replicas,
            more,
            primary: cx.ring().owns(&loc),
        }
    }

    /// Checks the store's accounting and the bounds of what is in flight.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.store.check(&self.cfg)?;
        if self.ops.len() > self.cfg.max_ops {
            return Err(format!("{} record operations in flight", self.ops.len()));
        }
        if self.owned.len() > self.cfg.max_owned {
            return Err(format!("{} owned records", self.owned.len()));
        }
        if self.syncs.len() > 64 * self.cfg.replicas.max(1)
            || self.fetches.len() > 1024
            || self.strays.len() > super::sync::MAX_STRAYS
            || self.covered.len() > super::sync::MAX_COVERED
            || self.disputes.len() > super::settle::MAX_DISPUTES
        {
            return Err("too many digest comparisons in flight".into());
        }
        Ok(())
    }
}
