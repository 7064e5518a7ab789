//! The policy of each kind of record: what makes a record valid on its own, and how a record
//! meets the version already held (`docs/protocol.md`, "Records").
//!
//! - *claim* (nicknames): the first valid claim of a name wins; a later claim by another key
//!   is refused with the holder's key. A held, live claim is never replaced on the strength
//!   of anything its claimer chose (its `created`, its key): a copy from another holder, a
//!   stray hand-over or a restore that names another owner is a *dispute*, which the holder
//!   settles by asking the key's current holders ([`elect`]): every holder is one vote, the
//!   owner most holders name wins, the same on every node that hears the same answers.
//! - *latest* (profile, presence, key bundle): the key is the owner's key; the highest
//!   version wins (ties: the larger hash), so only the owner can write and every copy
//!   converges.
//! - *set* (mailboxes, blob providers): items by anyone, within the mailbox's quota; the
//!   recipient's signed removal deletes items and keeps them from coming back until it
//!   expires (a blob has no recipient: its provider items only expire).

use std::collections::BTreeMap;

use super::{
    Hash, Kind, MAX_KEY, MAX_REMOVED, MAX_VALUE, Record, RecordError, RecordsConfig, Value,
};
use crate::id::NodeId;

/// How a kind validates and merges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// First valid claim wins.
    Claim,
    /// The owner's highest version wins.
    Latest,
    /// Items appended by anyone, removed by the recipient.
    Set,
}

/// Longest nickname.
pub const MAX_NICK: usize = 32;

/// Whether `name` is a normalised nickname: 1–32 bytes of `a-z`, `0-9`, `.`, `_`, `-`,
/// starting with a letter or digit.
pub fn valid_nick(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NICK
        && name[0].is_ascii_alphanumeric()
        && name
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(c))
}

/// Checks everything a record must satisfy on its own at wall time `now_ms`: a known kind,
/// its key rule, value bounds, times, and last (it costs most) the owner's signature.
pub fn validate(r: &Record, cfg: &RecordsConfig, now_ms: u64) -> Result<Kind, RecordError> {
    check_shape(r, cfg, now_ms)?;
    if !r.verify() {
        return Err(RecordError::BadSignature);
    }
    Kind::from_u8(r.kind).ok_or(RecordError::UnknownKind(r.kind))
}

/// [`validate`] without the signature.
pub fn check_shape(r: &Record, cfg: &RecordsConfig, now_ms: u64) -> Result<Kind, RecordError> {
    let kind = Kind::from_u8(r.kind).ok_or(RecordError::UnknownKind(r.kind))?;
    if r.key.len() > MAX_KEY {
        return Err(RecordError::BadKey(format!("longer than {MAX_KEY} bytes")));
    }
    match kind.policy() {
        Policy::Claim if !valid_nick(&r.key) => {
            return Err(RecordError::BadKey(
                "a name is 1-32 of a-z 0-9 . _ - starting with a letter or digit".into(),
            ));
        }
        Policy::Latest if r.key != r.owner => {
            return Err(RecordError::BadKey(
                "the key must be the owner's key".into(),
            ));
        }
        Policy::Set if r.key.len() != 32 => {
            return Err(RecordError::BadKey(
                "a mailbox's or a blob's key is 32 bytes".into(),
            ));
        }
        _ => {}
    }
    match (&r.value, kind.policy()) {
        (Value::Data(d), _) if d.len() > MAX_VALUE => {
            return Err(RecordError::TooLarge { max: MAX_VALUE });
        }
        (Value::Removed(h), Policy::Set) => {
            if h.is_empty() || h.len() > MAX_REMOVED {
                return Err(RecordError::TooLarge {
                    max: MAX_REMOVED * 32,
                });
            }
            if r.key != r.owner {
                return Err(RecordError::BadKey(
                    "only the mailbox's recipient removes items".into(),
                ));
            }
        }
        (Value::Removed(_), _) => {
            return Err(RecordError::BadKey("only mailboxes have removals".into()));
        }
        (Value::Deleted, Policy::Set) => {
            return Err(RecordError::BadKey(
                "mailbox items are removed, not deleted".into(),
            ));
        }
        _ => {}
    }
    if r.expires <= now_ms {
        return Err(RecordError::Expired);
    }
    let ttl = cfg.max_ttl.as_millis() as u64;
    let skew = cfg.max_skew.as_millis() as u64;
    if r.expires > now_ms.saturating_add(ttl).saturating_add(skew)
        || r.created > now_ms.saturating_add(skew)
        || r.created > r.expires
    {
        return Err(RecordError::ExpiryTooFar {
            max_secs: cfg.max_ttl.as_secs(),
        });
    }
    Ok(kind)
}

/// Where a record offered to a store comes from: the rule for two claims of one name depends
/// on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// A client's put at the primary holder: a claim for a name held by another key is
    /// refused ([`RecordError::Taken`]).
    Put,
    /// A copy from another holder, a hand-over, a stray or a restore: a claim for a name held
    /// live by another key is a [`Merge::Disputed`], never a replacement.
    Copy,
    /// The winner of a settled dispute ([`elect`]): it replaces a live claim of another key.
    Settle,
}

/// What a store does with an incoming record of a *claim* or *latest* kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Merge {
    /// Nothing is held: keep it.
    Insert,
    /// It replaces the held version (this hash).
    Replace(Hash),
    /// It is the held version.
    Same,
    /// It is refused.
    Refuse(RecordError),
    /// A settled dispute's winner replaces another key's claim (this hash).
    Won(Hash),
    /// A copy names another owner than the live claim held: the held one stays until the
    /// holders' answers settle it ([`elect`]).
    Disputed,
}

/// `a` is a newer version than `b` of the same owner's record.
pub fn newer(a: &Record, b: &Record) -> bool {
    (a.version, a.hash()) > (b.version, b.hash())
}

/// Merges `new` into `held` for a *claim* or *latest* kind at wall time `now_ms`, arriving
/// `via` a put, a copy or a settled dispute.
pub fn merge(policy: Policy, held: Option<&Record>, new: &Record, via: Via, now_ms: u64) -> Merge {
    let Some(h) = held else {
        return Merge::Insert;
    };
    let hh = h.hash();
    if hh == new.hash() {
        return Merge::Same;
    }
    if h.expires <= now_ms {
        return Merge::Replace(hh);
    }
    if policy != Policy::Claim || h.owner == new.owner {
        return if newer(new, h) {
            Merge::Replace(hh)
        } else {
            Merge::Refuse(RecordError::Stale { have: h.version })
        };
    }
    // Two keys, one name. A released name (its owner's tombstone) is free.
    if matches!(h.value, Value::Deleted) && !matches!(new.value, Value::Deleted) {
        return Merge::Replace(hh);
    }
    match via {
        Via::Put => Merge::Refuse(RecordError::Taken { holder: h.owner }),
        Via::Copy => Merge::Disputed,
        Via::Settle => Merge::Won(hh),
    }
}

/// Which node answered which copy in a claim's read, split by the nodes' rank from the key
/// ([`ranked_votes`]): `holders` are the votes of the key's `k` holders, `next` those of the
/// `k` nodes after them (they only break a tie among the holders).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ballot {
    /// Votes of the `k` nodes nearest the key.
    pub holders: Vec<(NodeId, Hash)>,
    /// Votes of the next `k` nodes (a node the ring moved past the holders still keeps its
    /// copy until it hands it over; the node a joiner displaced is one).
    pub next: Vec<(NodeId, Hash)>,
}

/// One live vote per node (its first answer), tombstones not counted.
fn live_votes<'a>(
    answers: impl IntoIterator<Item = (NodeId, &'a Record)>,
) -> BTreeMap<NodeId, [u8; 32]> {
    let mut voted: BTreeMap<NodeId, [u8; 32]> = BTreeMap::new();
    for (node, r) in answers {
        if !matches!(r.value, Value::Deleted) {
            voted.entry(node).or_insert(r.owner);
        }
    }
    voted
}

/// The owners among `among` (all if `None`) that most of `voted` name.
fn most_named(voted: &BTreeMap<NodeId, [u8; 32]>, among: Option<&[[u8; 32]]>) -> Vec<[u8; 32]> {
    let mut counts: BTreeMap<[u8; 32], usize> = BTreeMap::new();
    for owner in voted.values() {
        if among.is_none_or(|a| a.contains(owner)) {
            *counts.entry(*owner).or_insert(0) += 1;
        }
    }
    let Some(top) = counts.values().copied().max() else {
        return Vec::new();
    };
    counts
        .into_iter()
        .filter(|(_, n)| *n == top)
        .map(|(o, _)| o)
        .collect()
}

/// The owner whose claim of one name the holders' `answers` elect: `(holder, its claim)`, one
/// answer counted per holder, tombstones not counted (a released name is nobody's). The owner
/// most holders name wins. A tie goes to `incumbent` if it is among the tied (a holder keeps
/// what it holds until the answers say otherwise); else to the tied owner most of the `next`
/// nodes past the holders name (a holder that joined or replaced a crashed one holds nothing
/// yet, so a lying holder and one honest holder can tie; the node the joiner displaced still
/// holds the honest copy); else to the tied owner named by the holder nearest `loc` clockwise
/// (the key's primary first) — so nodes that hear the same answers elect the same owner.
/// Nothing a claimer chooses (its `created`, its key) counts; a node that lies is one vote.
pub fn elect<'a>(
    loc: &NodeId,
    answers: impl IntoIterator<Item = (NodeId, &'a Record)>,
    next: impl IntoIterator<Item = (NodeId, &'a Record)>,
    incumbent: Option<[u8; 32]>,
) -> Option<[u8; 32]> {
    let voted = live_votes(answers);
    let mut tied = most_named(&voted, None);
    if tied.len() <= 1 {
        return tied.first().copied();
    }
    if let Some(i) = incumbent.filter(|i| tied.contains(i)) {
        return Some(i);
    }
    let seconds = most_named(&live_votes(next), Some(&tied));
    if !seconds.is_empty() {
        tied = seconds;
    }
    if tied.len() == 1 {
        return tied.first().copied();
    }
    voted
        .iter()
        .filter(|(_, o)| tied.contains(o))
        .min_by(|(a, _), (b, _)| loc.cmp_from(a, b))
        .map(|(_, o)| *o)
}

/// Splits the `votes` of a claim's read by rank ([`Ballot`]): the `replicas` nodes nearest
/// `loc` clockwise among the nodes the reader knows of — `known` (its own view of the ring,
/// itself included) and every node that answered — are the holders, the next `replicas` the
/// tie-breakers; the rest are no vote. A node that answers for a key it does not hold as a
/// holder (an honest node still keeping a stray copy until it hands it over, or one that
/// accepted a liar's push) is then no holder's vote wherever the reader knows of, or heard
/// from, `replicas` nodes nearer the key; and no node can make itself nearer the key by saying
/// so.
pub fn ranked_votes(
    loc: &NodeId,
    replicas: usize,
    known: &[NodeId],
    votes: &[(NodeId, Hash)],
) -> Ballot {
    let k = replicas.max(1);
    let mut nodes: Vec<NodeId> = known
        .iter()
        .chain(votes.iter().map(|(v, _)| v))
        .copied()
        .collect();
    nodes.sort_by(|a, b| loc.cmp_from(a, b));
    nodes.dedup();
    nodes.truncate(2 * k);
    let rank = |v: &NodeId| nodes.iter().position(|n| n == v);
    let pick = |lo: usize, hi: usize| -> Vec<(NodeId, Hash)> {
        votes
            .iter()
            .filter(|(v, _)| rank(v).is_some_and(|r| (lo..hi).contains(&r)))
            .copied()
            .collect()
    };
    Ballot {
        holders: pick(0, k),
        next: pick(k, 2 * k),
    }
}

/// The holders' votes of [`ranked_votes`].
pub fn holders_votes(
    loc: &NodeId,
    replicas: usize,
    known: &[NodeId],
    votes: &[(NodeId, Hash)],
) -> Vec<(NodeId, Hash)> {
    ranked_votes(loc, replicas, known, votes).holders
}

/// The newest of `copies` (one kind, one key, one owner) by [`newer`].
pub fn newest(copies: impl IntoIterator<Item = Record>) -> Option<Record> {
    copies
        .into_iter()
        .reduce(|a, b| if newer(&b, &a) { b } else { a })
}

/// [`elect`] over the copies a read gathered: `ballot` names which node answered which copy.
pub fn elect_read(
    loc: &NodeId,
    copies: &[Record],
    ballot: &Ballot,
    incumbent: Option<[u8; 32]>,
) -> Option<[u8; 32]> {
    let by_hash: BTreeMap<Hash, &Record> = copies.iter().map(|r| (r.hash(), r)).collect();
    let answers = |vs: &[(NodeId, Hash)]| -> Vec<(NodeId, &Record)> {
        vs.iter()
            .filter_map(|(node, h)| by_hash.get(h).map(|r| (*node, *r)))
            .collect()
    };
    elect(
        loc,
        answers(&ballot.holders),
        answers(&ballot.next),
        incumbent,
    )
}

/// What a reader returns from the copies it gathered of one kind and key: for *latest* the
/// newest record (none if it is a tombstone); for *claim* the newest record of the owner the
/// holders elect ([`elect`]: `ballot` names which node answered which copy) or, if no live
/// claim was answered, none; for *set* every item no removal names, in hash order. Every input
/// must have been verified.
pub fn resolve(policy: Policy, loc: &NodeId, copies: Vec<Record>, ballot: &Ballot) -> Vec<Record> {
    match policy {
        Policy::Set => {
            let mut items: BTreeMap<Hash, Record> = BTreeMap::new();
            let mut removed = std::collections::BTreeSet::new();
            for r in copies {
                match &r.value {
                    Value::Removed(hs) => removed.extend(hs.iter().copied()),
                    _ => {
                        items.insert(r.hash(), r);
                    }
                }
            }
            items
                .into_iter()
                .filter(|(h, _)| !removed.contains(h))
                .map(|(_, r)| r)
                .collect()
        }
        Policy::Claim => {
            let Some(winner) = elect_read(loc, &copies, ballot, None) else {
                return Vec::new();
            };
            newest(copies.into_iter().filter(|r| r.owner == winner))
                .into_iter()
                .filter(|r| !matches!(r.value, Value::Deleted))
                .collect()
        }
        Policy::Latest => newest(copies)
            .into_iter()
            .filter(|r| !matches!(r.value, Value::Deleted))
            .collect(),
    }
}
