//! The records a node holds, by ring location, within its bounds: bytes per node, records per
//! owner, items and bytes per mailbox. It applies each kind's merge ([`super::policy`]),
//! answers range digests for the holders' comparison, and drops what expires.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use super::policy::{self, Merge, Policy, Via};
use super::{Hash, Kind, Record, RecordError, RecordsConfig, Value};
use crate::id::NodeId;

/// One kind and key: a single record (*claim*, *latest*) or a mailbox's items and removals.
#[derive(Debug, Default)]
struct Slot {
    items: BTreeMap<Hash, Record>,
    /// Mailbox items removed by the recipient: hash → until when (ms) they stay out.
    removed: BTreeMap<Hash, u64>,
    bytes: usize,
}

/// What became of a record offered to the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Offered {
    /// Stored; these hashes were released (replaced, or removed by a removal).
    Stored {
        released: Vec<Hash>,
        /// Two claims met: (winner's owner, loser's owner).
        conflict: Option<([u8; 32], [u8; 32])>,
    },
    /// Already held.
    Same,
    /// Refused.
    Refused(RecordError),
    /// A copy names another owner than the live claim held, which stays until the holders
    /// settle it ([`policy::elect`]): the held claim's owner.
    Disputed([u8; 32]),
}

/// A node's held records.
#[derive(Debug, Default)]
pub struct Store {
    slots: BTreeMap<NodeId, Slot>,
    locs: BTreeMap<Hash, NodeId>,
    per_owner: BTreeMap<[u8; 32], usize>,
    bytes: usize,
}

impl Store {
    /// Records held.
    pub fn len(&self) -> usize {
        self.locs.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.locs.is_empty()
    }

    /// Bytes held (as [`Record::size`] counts them).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The record with hash `h`.
    pub fn by_hash(&self, h: &Hash) -> Option<&Record> {
        let loc = self.locs.get(h)?;
        self.slots.get(loc)?.items.get(h)
    }

    /// Whether the record with hash `h` is held.
    pub fn contains(&self, h: &Hash) -> bool {
        self.locs.contains_key(h)
    }

    /// Every record at `loc` of `kind` and `key` that has not expired at `now_ms`.
    pub fn get(&self, loc: &NodeId, kind: u8, key: &[u8], now_ms: u64) -> Vec<&Record> {
        self.slots.get(loc).map_or_else(Vec::new, |s| {
            s.items
                .values()
                .filter(|r| r.kind == kind && r.key == key && r.expires > now_ms)
                .collect()
        })
    }

    /// The records held at `loc`.
    pub fn at(&self, loc: &NodeId) -> impl Iterator<Item = &Record> {
        self.slots
            .get(loc)
            .into_iter()
            .flat_map(|s| s.items.values())
    }

    /// Drops the record with hash `h`; whether it was held.
    pub fn remove(&mut self, h: &Hash) -> bool {
        match self.locs.get(h).copied() {
            Some(loc) => self.take(&loc, h).is_some(),
            None => false,
        }
    }

    /// Every held record, in location order.
    pub fn iter(&self) -> impl Iterator<Item = &Record> {
        self.slots.values().flat_map(|s| s.items.values())
    }

    /// The held records located in `(from, to]` clockwise (the whole ring if `from == to`).
    pub fn range(
        &self,
        from: NodeId,
        to: NodeId,
    ) -> Box<dyn Iterator<Item = (&NodeId, &Hash, &Record)> + '_> {
        let slots: Box<dyn Iterator<Item = (&NodeId, &Slot)>> = if from < to {
            Box::new(
                self.slots
                    .range((Bound::Excluded(from), Bound::Included(to))),
            )
        } else {
            Box::new(
                self.slots
                    .range((Bound::Excluded(from), Bound::Unbounded))
                    .chain(self.slots.range((Bound::Unbounded, Bound::Included(to)))),
            )
        };
        Box::new(slots.flat_map(|(loc, s)| s.items.iter().map(move |(h, r)| (loc, h, r))))
    }

    /// The digest of `(from, to]`: XOR of the held hashes and their count.
    pub fn digest(&self, from: NodeId, to: NodeId) -> ([u8; 32], u32) {
        let mut x = [0u8; 32];
        let mut n = 0u32;
        for (_, h, _) in self.range(from, to) {
            for (a, b) in x.iter_mut().zip(h.0) {
                *a ^= b;
            }
            n += 1;
        }
        (x, n)
    }

    /// Offers `r` (already validated as `kind`) at wall time `now_ms`, arriving `via` a put,
    /// a copy or a settled dispute ([`policy::merge`]).
    pub fn offer(
        &mut self,
        r: Record,
        kind: Kind,
        via: Via,
        now_ms: u64,
        cfg: &RecordsConfig,
    ) -> Offered {
        let h = r.hash();
        if self.locs.contains_key(&h) {
            return Offered::Same;
        }
        let loc = r.location();
        let slot = self.slots.get(&loc);
        if let Some(s) = slot
            && s.items
                .values()
                .next()
                .is_some_and(|o| o.kind != r.kind || o.key != r.key)
        {
            // Two keys hashing to one location: not going to happen with blake3.
            return Offered::Refused(RecordError::Quota("location in use".into()));
        }
        let mut conflict = None;
        let released: Vec<Hash> = match kind.policy() {
            Policy::Set => {
                let s = slot;
                if s.is_some_and(|s| s.removed.contains_key(&h)) {
                    return Offered::Refused(RecordError::Removed);
                }
                match &r.value {
                    Value::Removed(hs) => hs
                        .iter()
                        .filter(|x| s.is_some_and(|s| s.items.contains_key(x)))
                        .copied()
                        .collect(),
                    _ => Vec::new(),
                }
            }
            p => {
                let held = slot.and_then(|s| s.items.values().next());
                match policy::merge(p, held, &r, via, now_ms) {
                    Merge::Insert => Vec::new(),
                    Merge::Replace(old) => vec![old],
                    Merge::Won(old) => {
                        conflict = held.map(|o| (r.owner, o.owner));
                        vec![old]
                    }
                    Merge::Same => return Offered::Same,
                    Merge::Refuse(e) => return Offered::Refused(e),
                    Merge::Disputed => {
                        return Offered::Disputed(held.map_or([0; 32], |o| o.owner));
                    }
                }
            }
        };
        if let Err(e) = self.room_for(&r, kind, &released, cfg) {
            return Offered::Refused(e);
        }
        for old in &released {
            self.take(&loc, old);
        }
        let slot = self.slots.entry(loc).or_default();
        if let Value::Removed(hs) = &r.value {
            for x in hs {
                let until = slot.removed.entry(*x).or_insert(0);
                *until = (*until).max(r.expires);
            }
        }
        let size = r.size();
        slot.bytes += size;
        self.bytes += size;
        *self.per_owner.entry(r.owner).or_insert(0) += 1;
        self.locs.insert(h, loc);
        slot.items.insert(h, r);
        Offered::Stored { released, conflict }
    }

    /// Puts `r` in place of whatever is held for its kind and key, with no policy: what a
    /// modified node does to its own store. For the adversarial tests and the simulator only;
    /// returns the released hashes.
    #[doc(hidden)]
    pub fn plant(&mut self, r: Record) -> Vec<Hash> {
        let loc = r.location();
        let old: Vec<Hash> = self
            .slots
            .get(&loc)
            .map(|s| s.items.keys().copied().collect())
            .unwrap_or_default();
        for h in &old {
            self.take(&loc, h);
        }
        let size = r.size();
        let slot = self.slots.entry(loc).or_default();
        slot.bytes += size;
        self.bytes += size;
        *self.per_owner.entry(r.owner).or_insert(0) += 1;
        let h = r.hash();
        self.locs.insert(h, loc);
        slot.items.insert(h, r);
        old
    }

    /// Whether `r` fits once `released` are gone.
    fn room_for(
        &self,
        r: &Record,
        kind: Kind,
        released: &[Hash],
        cfg: &RecordsConfig,
    ) -> Result<(), RecordError> {
        let freed: Vec<&Record> = released.iter().filter_map(|x| self.by_hash(x)).collect();
        let freed_bytes: usize = freed.iter().map(|x| x.size()).sum();
        let same_owner = freed.iter().filter(|x| x.owner == r.owner).count();
        let owned = self.per_owner.get(&r.owner).copied().unwrap_or(0);
        if owned + 1 > cfg.max_per_owner + same_owner {
            return Err(RecordError::Quota(format!(
                "{} records per owner on a node",
                cfg.max_per_owner
            )));
        }
        if self.bytes + r.size() > cfg.max_bytes + freed_bytes {
            return Err(RecordError::Quota("this holder is full".into()));
        }
        if kind.policy() == Policy::Set {
            let s = self.slots.get(&r.location());
            let items = s.map_or(0, |s| s.items.len());
            let bytes = s.map_or(0, |s| s.bytes);
            if items + 1 > cfg.mailbox_items + freed.len() {
                return Err(RecordError::Quota(format!(
                    "the mailbox holds {} items",
                    cfg.mailbox_items
                )));
            }
            if bytes + r.size() > cfg.mailbox_bytes + freed_bytes {
                return Err(RecordError::Quota(format!(
                    "the mailbox holds {} bytes",
                    cfg.mailbox_bytes
                )));
            }
        }
        Ok(())
    }

    /// Removes the record `h` at `loc`; returns it.
    fn take(&mut self, loc: &NodeId, h: &Hash) -> Option<Record> {
        let slot = self.slots.get_mut(loc)?;
        let r = slot.items.remove(h)?;
        let size = r.size();
        slot.bytes -= size;
        self.bytes -= size;
        self.locs.remove(h);
        if let Some(n) = self.per_owner.get_mut(&r.owner) {
            *n -= 1;
            if *n == 0 {
                self.per_owner.remove(&r.owner);
            }
        }
        if slot.items.is_empty() && slot.removed.is_empty() {
            self.slots.remove(loc);
        }
        Some(r)
    }

    /// Drops every record expired at `now_ms` (and removal marks past their time); returns
    /// the dropped hashes.
    pub fn sweep(&mut self, now_ms: u64) -> Vec<Hash> {
        let expired: Vec<(NodeId, Hash)> = self
            .slots
            .iter()
            .flat_map(|(loc, s)| {
                s.items
                    .iter()
                    .filter(|(_, r)| r.expires <= now_ms)
                    .map(|(h, _)| (*loc, *h))
            })
            .collect();
        for (loc, h) in &expired {
            self.take(loc, h);
        }
        let mut empty = Vec::new();
        for (loc, s) in &mut self.slots {
            s.removed.retain(|_, until| *until > now_ms);
            if s.items.is_empty() && s.removed.is_empty() {
                empty.push(*loc);
            }
        }
        for loc in empty {
            self.slots.remove(&loc);
        }
        expired.into_iter().map(|(_, h)| h).collect()
    }

    /// Checks the accounting against the contents and the bounds.
    pub fn check(&self, cfg: &RecordsConfig) -> Result<(), String> {
        let mut bytes = 0;
        let mut owners: BTreeMap<[u8; 32], usize> = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for (loc, s) in &self.slots {
            let b: usize = s.items.values().map(Record::size).sum();
            if b != s.bytes {
                return Err(format!("slot bytes {} != {}", s.bytes, b));
            }
            bytes += b;
            let kind = s.items.values().next().and_then(|r| Kind::from_u8(r.kind));
            if kind.is_some_and(|k| k.policy() != Policy::Set) && s.items.len() > 1 {
                return Err("a single-record slot holds several".into());
            }
            for (h, r) in &s.items {
                if r.location() != *loc || r.hash() != *h || self.locs.get(h) != Some(loc) {
                    return Err("a record is filed under the wrong location or hash".into());
                }
                *owners.entry(r.owner).or_insert(0) += 1;
                seen.insert(*h);
            }
        }
        if bytes != self.bytes || bytes > cfg.max_bytes {
            return Err(format!("store bytes {} (counted {bytes})", self.bytes));
        }
        if owners != self.per_owner || seen.len() != self.locs.len() {
            return Err("per-owner counts or the hash index disagree".into());
        }
        if owners.values().any(|n| *n > cfg.max_per_owner) {
            return Err("an owner is over its quota".into());
        }
        Ok(())
    }
}
