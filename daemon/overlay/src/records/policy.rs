//! The policy of each kind of record: what makes a record valid on its own, and how a record
//! meets the version already held (`docs/protocol.md`, "Records").
//!
//! - *claim* (nicknames): the first valid claim of a name wins; a later claim by another key
//!   is refused with the holder's key. Where two claims meet after a partition, the one
//!   created first wins (ties: the smaller `blake3(owner)`), the same on every node.
//! - *latest* (profile, presence, key bundle): the key is the owner's key; the highest
//!   version wins (ties: the larger hash), so only the owner can write and every copy
//!   converges.
//! - *set* (mailboxes): items by anyone, within the mailbox's quota; the recipient's signed
//!   removal deletes items and keeps them from coming back until it expires.

use std::collections::BTreeMap;

use super::{
    Hash, Kind, MAX_KEY, MAX_REMOVED, MAX_VALUE, Record, RecordError, RecordsConfig, Value,
};

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
            return Err(RecordError::BadKey("a mailbox key is a 32-byte key".into()));
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
    /// Two claims met and the incoming one won (replaces this hash).
    Won(Hash),
    /// Two claims met and the held one won.
    Lost,
}

/// `a` is a newer version than `b` of the same owner's record.
pub fn newer(a: &Record, b: &Record) -> bool {
    (a.version, a.hash()) > (b.version, b.hash())
}

/// `a` beats `b` where two owners' claims of one name meet: a live claim beats a deleted
/// one; then the one created first; then the smaller `blake3(owner)`.
pub fn claim_beats(a: &Record, b: &Record) -> bool {
    let deleted = |r: &Record| matches!(r.value, Value::Deleted);
    if deleted(a) != deleted(b) {
        return deleted(b);
    }
    let rank = |r: &Record| (r.created, *blake3::hash(&r.owner).as_bytes());
    rank(a) < rank(b)
}

/// `a` is preferred to `b` (one kind, one key) by `policy` — the order reads use.
pub fn better(policy: Policy, a: &Record, b: &Record) -> bool {
    match policy {
        Policy::Claim if a.owner != b.owner => claim_beats(a, b),
        _ => newer(a, b),
    }
}

/// Merges `new` into `held` for a *claim* or *latest* kind at wall time `now_ms`. `fresh`:
/// a client's put (a claim for a taken name is refused) rather than a copy between holders
/// (where two claims meeting are settled by [`claim_beats`]).
pub fn merge(
    policy: Policy,
    held: Option<&Record>,
    new: &Record,
    fresh: bool,
    now_ms: u64,
) -> Merge {
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
    // Two keys, one name.
    if matches!(h.value, Value::Deleted) && !matches!(new.value, Value::Deleted) {
        return Merge::Replace(hh);
    }
    if fresh {
        return Merge::Refuse(RecordError::Taken { holder: h.owner });
    }
    if claim_beats(new, h) {
        Merge::Won(hh)
    } else {
        Merge::Lost
    }
}

/// What a reader returns from the copies it gathered of one kind and key: for *claim* and
/// *latest* the best record (none if it is a tombstone); for *set* every item no removal
/// names, in hash order. Every input must have been verified.
pub fn resolve(policy: Policy, copies: Vec<Record>) -> Vec<Record> {
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
        _ => {
            let best = copies
                .into_iter()
                .reduce(|a, b| if better(policy, &b, &a) { b } else { a });
            best.into_iter()
                .filter(|r| !matches!(r.value, Value::Deleted))
                .collect()
        }
    }
}
