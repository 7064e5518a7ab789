//! DHT records: signed, expiring values that live at the successor of `blake3(kind ‖ key)`
//! and are replicated on the next `k − 1` successors, plus, with [`RecordsConfig::witness`],
//! one copy at the successor after them, which breaks a tie among the holders' votes on a
//! disputed name (`docs/protocol.md`, "Records").
//!
//! A sub-protocol of the overlay ([`Records`], `node.rs`). A [`Record`] carries its kind, key,
//! value, the owner's ed25519 public key, a version, a creation and an expiry time and the
//! owner's signature; every store verifies it ([`Record::verify`]) and applies its kind's
//! policy (`policy.rs`: *claim*, *latest*, *set*) before it accepts it, within the bounds of
//! [`RecordsConfig`] (`store.rs`). Clients put and get through a lookup and the ring's RPC
//! engine (`ops.rs`); holders keep `k` copies by comparing range digests with their successors
//! (`sync.rs`), hand their records over when they leave, and owners re-put their records
//! periodically, so a record whose every replica died comes back.

#[cfg(test)]
mod echo_tests;
#[cfg(test)]
mod leave_tests;
mod node;
mod ops;
pub mod policy;
mod service;
mod settle;
mod store;
mod sync;
#[cfg(test)]
mod tests;
pub mod wire;
#[cfg(test)]
mod young_tests;

pub use node::Records;
pub use policy::Policy;
pub use store::Store;

use std::fmt;
use std::time::Duration;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::id::NodeId;
use crate::time::Time;

/// Largest value of a record.
pub const MAX_VALUE: usize = 4 * 1024;
/// Longest key of a record.
pub const MAX_KEY: usize = 64;
/// Most item hashes one removal names.
pub const MAX_REMOVED: usize = 128;

/// A record's hash: blake3 of its signed bytes and signature. Names a version (and a mailbox
/// item) everywhere.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Hash(#[serde(with = "serde_bytes")] pub [u8; 32]);

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", hex::encode(&self.0[..4]))
    }
}

/// The kinds of record this build knows, each with its policy ([`Kind::policy`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Kind {
    /// A nickname: key = the normalised name, owner = the account claiming it (*claim*).
    Nick = 1,
    /// An account's public profile: key = the owner's key (*latest*).
    Profile = 2,
    /// An account's presence: key = the owner's key (*latest*).
    Presence = 3,
    /// An account's end-to-end key bundle: key = the owner's key (*latest*).
    Keys = 4,
    /// An offline mailbox: key = the recipient's key; items by anyone (*set*).
    Mailbox = 5,
    /// Providers of a blob: key = the blob's BLAKE3 hash; items by the nodes that hold it,
    /// each signed by the providing node's key (*set*).
    Provider = 6,
}

impl Kind {
    /// The kind numbered `n`, if this build knows it.
    pub fn from_u8(n: u8) -> Option<Kind> {
        Some(match n {
            1 => Kind::Nick,
            2 => Kind::Profile,
            3 => Kind::Presence,
            4 => Kind::Keys,
            5 => Kind::Mailbox,
            6 => Kind::Provider,
            _ => return None,
        })
    }

    /// How records of this kind are validated and merged.
    pub fn policy(self) -> Policy {
        match self {
            Kind::Nick => Policy::Claim,
            Kind::Profile | Kind::Presence | Kind::Keys => Policy::Latest,
            Kind::Mailbox | Kind::Provider => Policy::Set,
        }
    }

    /// The kind's name (config, CLI, docs).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Nick => "nick",
            Kind::Profile => "profile",
            Kind::Presence => "presence",
            Kind::Keys => "keys",
            Kind::Mailbox => "mailbox",
            Kind::Provider => "provider",
        }
    }

    /// The kind called `s`.
    pub fn from_name(s: &str) -> Option<Kind> {
        (1..=6).filter_map(Kind::from_u8).find(|k| k.name() == s)
    }
}

/// What a record says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Value {
    /// Data (at most [`MAX_VALUE`] bytes).
    Data(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The owner deleted the record (a tombstone, kept until it expires so that older copies
    /// do not come back).
    Deleted,
    /// In a mailbox: the recipient's signed acknowledgement of these items, which removes
    /// them (and keeps them from coming back until the removal expires).
    Removed(Vec<Hash>),
}

/// A signed DHT record.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The kind's number ([`Kind`]).
    pub kind: u8,
    /// The key within the kind.
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
    /// The value.
    pub value: Value,
    /// The owner's ed25519 public key.
    #[serde(with = "serde_bytes")]
    pub owner: [u8; 32],
    /// The owner's version number (higher wins for *latest*; a mailbox item's nonce).
    pub version: u64,
    /// When the owner first made it (Unix milliseconds; a claim keeps it across renewals).
    pub created: u64,
    /// When it expires (Unix milliseconds).
    pub expires: u64,
    /// The owner's signature over everything above.
    #[serde(with = "serde_bytes")]
    pub sig: Vec<u8>,
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values may be private (a mailbox item is ciphertext, but a profile is not ours to
        // print either): show sizes only.
        let value = match &self.value {
            Value::Data(d) => format!("{} bytes", d.len()),
            Value::Deleted => "deleted".into(),
            Value::Removed(h) => format!("removes {}", h.len()),
        };
        f.debug_struct("Record")
            .field("kind", &self.kind)
            .field("key", &hex::encode(&self.key[..self.key.len().min(8)]))
            .field("value", &value)
            .field("owner", &hex::encode(&self.owner[..4]))
            .field("version", &self.version)
            .field("expires", &self.expires)
            .finish()
    }
}

/// Where a record lives on the ring: blake3 of its kind and key.
pub fn location(kind: u8, key: &[u8]) -> NodeId {
    let mut h = blake3::Hasher::new();
    h.update(&[kind]);
    h.update(key);
    NodeId(*h.finalize().as_bytes())
}

impl Record {
    /// A record signed by `signer`.
    #[allow(clippy::too_many_arguments)]
    pub fn sign(
        kind: Kind,
        key: Vec<u8>,
        value: Value,
        signer: &SigningKey,
        version: u64,
        created: u64,
        expires: u64,
    ) -> Record {
        let mut r = Record {
            kind: kind as u8,
            key,
            value,
            owner: signer.verifying_key().to_bytes(),
            version,
            created,
            expires,
            sig: Vec::new(),
        };
        r.sig = signer.sign(&r.signed_bytes()).to_bytes().to_vec();
        r
    }

    /// The bytes the owner signs: a domain tag and every field, length-prefixed.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(96 + self.key.len() + self.value_len());
        b.extend_from_slice(b"chatd/record/v1\0");
        b.push(self.kind);
        b.extend_from_slice(&(self.key.len() as u32).to_be_bytes());
        b.extend_from_slice(&self.key);
        match &self.value {
            Value::Data(d) => {
                b.push(0);
                b.extend_from_slice(&(d.len() as u32).to_be_bytes());
                b.extend_from_slice(d);
            }
            Value::Deleted => b.push(1),
            Value::Removed(hs) => {
                b.push(2);
                b.extend_from_slice(&(hs.len() as u32).to_be_bytes());
                for h in hs {
                    b.extend_from_slice(&h.0);
                }
            }
        }
        b.extend_from_slice(&self.owner);
        b.extend_from_slice(&self.version.to_be_bytes());
        b.extend_from_slice(&self.created.to_be_bytes());
        b.extend_from_slice(&self.expires.to_be_bytes());
        b
    }

    /// Whether the signature is the owner's over [`Record::signed_bytes`] (strict ed25519
    /// verification: no malleable or small-order forms).
    pub fn verify(&self) -> bool {
        let Ok(key) = VerifyingKey::from_bytes(&self.owner) else {
            return false;
        };
        let Ok(sig) = Signature::from_slice(&self.sig) else {
            return false;
        };
        key.verify_strict(&self.signed_bytes(), &sig).is_ok()
    }

    /// The record's hash (names this version).
    pub fn hash(&self) -> Hash {
        let mut h = blake3::Hasher::new();
        h.update(&self.signed_bytes());
        h.update(&self.sig);
        Hash(*h.finalize().as_bytes())
    }

    /// Where it lives on the ring.
    pub fn location(&self) -> NodeId {
        location(self.kind, &self.key)
    }

    /// Bytes of value data (0 for tombstones; 32 per removed item).
    pub fn value_len(&self) -> usize {
        match &self.value {
            Value::Data(d) => d.len(),
            Value::Deleted => 0,
            Value::Removed(h) => 32 * h.len(),
        }
    }

    /// What it costs a store: value, key and a fixed overhead for the rest.
    pub fn size(&self) -> usize {
        self.value_len() + self.key.len() + 160
    }

    /// Whether it is a mailbox removal (the recipient's acknowledgement).
    pub fn is_removal(&self) -> bool {
        matches!(self.value, Value::Removed(_))
    }
}

/// Why a record operation was refused: shown to the origin's user, so each says what to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum RecordError {
    /// The kind number is not one this node knows.
    #[error("unknown record kind {0}")]
    UnknownKind(u8),
    /// The key does not follow its kind's rule.
    #[error("the key does not fit its kind: {0}")]
    BadKey(String),
    /// The signature does not verify against the owner's key.
    #[error("the signature does not verify")]
    BadSignature,
    /// The value or the removal list is over its bound.
    #[error("the value is over its bound of {max} bytes")]
    TooLarge { max: usize },
    /// The record expired already.
    #[error("the record has expired")]
    Expired,
    /// The expiry (or creation time) lies too far in the future.
    #[error("the expiry lies more than {max_secs} s ahead")]
    ExpiryTooFar { max_secs: u64 },
    /// A newer (or the same) version is held.
    #[error("a newer version ({have}) is held")]
    Stale { have: u64 },
    /// The name is claimed by another key.
    #[error("the name is taken by {}", hex::encode(holder))]
    Taken {
        #[serde(with = "serde_bytes")]
        holder: [u8; 32],
    },
    /// The mailbox item was removed by its recipient.
    #[error("the item was removed by its recipient")]
    Removed,
    /// A mailbox, owner or node quota is full.
    #[error("quota full: {0}")]
    Quota(String),
    /// The node asked is not responsible for the key (its ring view moved).
    #[error("this node is not responsible for the key")]
    NotResponsible,
    /// The origin sends puts faster than its rate.
    #[error("too many record writes; retry in {retry_after_ms} ms")]
    RateLimited { retry_after_ms: u64 },
    /// This node is not a ring member (yet).
    #[error("this node is not a ring member")]
    NotMember,
    /// No holder of the key could be reached.
    #[error("no holder of the key could be reached")]
    Unavailable,
    /// Too many operations are in flight on this node.
    #[error("too many record operations in flight")]
    Busy,
}

/// Records' tunables (defaults in `docs/protocol.md`, "Records").
#[derive(Clone, Debug)]
pub struct RecordsConfig {
    /// Holders of every record, `k`: its primary (the key's successor) and the next `k − 1`
    /// successors.
    pub replicas: usize,
    /// Keep one more copy at the successor after the holders, the *witness*: it breaks a tie
    /// among the holders' votes on a disputed name and is a holder with a copy already when
    /// one of them fails. Off by default: its comparisons (one more per node and round) made
    /// a ring that all went down and came back converge late or not at all in the simulator
    /// (`chat-sim --scenario revive`, 2 seeds of 80), which is the ring's to fix first.
    pub witness: bool,
    /// Longest lifetime of a record (its expiry at most this far ahead).
    pub max_ttl: Duration,
    /// How far ahead of this node's clock a creation time may lie.
    pub max_skew: Duration,
    /// Records one owner may have on this node.
    pub max_per_owner: usize,
    /// Bytes of records this node holds.
    pub max_bytes: usize,
    /// Items (and removals) in one mailbox.
    pub mailbox_items: usize,
    /// Bytes in one mailbox.
    pub mailbox_bytes: usize,
    /// Record writes (puts) accepted per second from one origin node.
    pub put_rate_per_sec: u32,
    /// Burst of writes accepted from one origin node.
    pub put_burst: u32,
    /// Reads, comparisons and fetches answered per second for one origin node.
    pub read_rate_per_sec: u32,
    /// Burst of those.
    pub read_burst: u32,
    /// Period of the digest comparison with the successors.
    pub sync_interval: Duration,
    /// Period at which an owner's node re-puts the records it owns.
    pub renew_interval: Duration,
    /// An owned record this close to its expiry is reported for re-signing.
    pub renew_before: Duration,
    /// Operations (puts, gets, renewals) in flight at once.
    pub max_ops: usize,
    /// Records this node re-puts for its owners.
    pub max_owned: usize,
    /// Unix time (milliseconds) at the driver's epoch ([`Time::ZERO`]): records' times are
    /// wall-clock times.
    pub epoch_unix_ms: u64,
}

impl Default for RecordsConfig {
    fn default() -> Self {
        RecordsConfig {
            replicas: 3,
            witness: false,
            max_ttl: Duration::from_secs(90 * 24 * 3600),
            max_skew: Duration::from_secs(300),
            max_per_owner: 1024,
            max_bytes: 64 * 1024 * 1024,
            mailbox_items: 512,
            mailbox_bytes: 1024 * 1024,
            put_rate_per_sec: 20,
            put_burst: 200,
            read_rate_per_sec: 200,
            read_burst: 1000,
            sync_interval: Duration::from_secs(3),
            renew_interval: Duration::from_secs(120),
            renew_before: Duration::from_secs(3600),
            max_ops: 1024,
            max_owned: 4096,
            epoch_unix_ms: 1_800_000_000_000,
        }
    }
}

impl RecordsConfig {
    /// Wall-clock milliseconds at `now`.
    pub fn wall_ms(&self, now: Time) -> u64 {
        self.epoch_unix_ms.saturating_add(now.as_micros() / 1000)
    }
}

/// Records' timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordsTimer {
    /// Periodic digest comparison with the successors (and expiry sweep).
    Sync,
    /// An extra comparison soon after the neighbours changed.
    SyncSoon,
    /// Periodic re-put of owned records.
    Renew,
    /// Operation `id` looks its key up again.
    Retry(u64),
}

impl From<RecordsTimer> for crate::overlay::Timer {
    fn from(t: RecordsTimer) -> Self {
        crate::overlay::Timer::Records(t)
    }
}

/// What the application asks of records.
#[derive(Clone, Debug)]
pub enum RecordsInput {
    /// Store `record` at its holders; answered by [`RecordsEvent::PutDone`] with `token`.
    /// `own`: this node re-puts it every renewal period until it expires or is replaced.
    Put {
        token: u64,
        record: Record,
        own: bool,
    },
    /// Read the record(s) of `kind` and `key`; answered by [`RecordsEvent::GetDone`].
    Get { token: u64, kind: u8, key: Vec<u8> },
    /// Records this node held before it restarted (from the daemon's store): each is
    /// verified again and kept if still valid.
    Restore(Vec<Record>),
}

/// What records tell the application.
#[derive(Clone, Debug, PartialEq)]
pub enum RecordsEvent {
    /// A put finished: `Ok(copies)` once the primary holder stored it (it pushes the copies).
    PutDone {
        token: u64,
        result: Result<u8, RecordError>,
    },
    /// A get finished: the winning record (*claim*, *latest*) or the items (*set*), every
    /// one verified; empty when there is none.
    GetDone {
        token: u64,
        result: Result<Vec<Record>, RecordError>,
    },
    /// This node now holds `record` (persist it).
    Held(Record),
    /// This node no longer holds the record with this hash (replaced, removed or expired).
    Released(Hash),
    /// Two claims for one name met here (after a partition healed, or a copy from a lying
    /// node) and the holders' answers settled it ([`policy::elect`]): `winner` keeps it.
    Conflict {
        key: Vec<u8>,
        winner: [u8; 32],
        loser: [u8; 32],
    },
    /// An owned record expires within [`RecordsConfig::renew_before`]: sign a new version.
    Expiring(Record),
    /// An owned claim was refused at renewal: `holder` has the name now.
    Lost {
        kind: u8,
        key: Vec<u8>,
        holder: [u8; 32],
    },
}

/// Records' counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordsStats {
    /// Puts this node's clients finished successfully.
    pub puts_ok: u64,
    /// Puts this node's clients saw refused or failed.
    pub puts_failed: u64,
    /// Gets this node's clients finished successfully.
    pub gets_ok: u64,
    /// Gets that reached no holder.
    pub gets_failed: u64,
    /// Records accepted into this node's store (new or newer).
    pub stored: u64,
    /// Copies of records already held.
    pub duplicates: u64,
    /// Refused: bad signature, bad key, unknown kind, oversized, expired, expiry too far.
    pub refused_invalid: u64,
    /// Refused: stale version, taken name, removed item.
    pub refused_policy: u64,
    /// Refused: a quota or the node's byte bound.
    pub refused_quota: u64,
    /// Refused: the key is not this node's to hold.
    pub refused_range: u64,
    /// Refused: the origin is over its rate.
    pub refused_rate: u64,
    /// Disputes over a name settled here (two keys' claims met).
    pub conflicts: u64,
    /// Copies of a claim that came to a node holding nothing for the name, settled before
    /// they were kept (tentative copies).
    pub tentative: u64,
    /// Records dropped at expiry.
    pub expired: u64,
    /// Digest comparisons started.
    pub syncs: u64,
    /// Of those, found equal.
    pub syncs_equal: u64,
    /// Records pushed to another holder (replication, repair, hand-over).
    pub pushed: u64,
    /// Records fetched from another holder (repair).
    pub fetched: u64,
    /// Re-puts of owned records.
    pub renewals: u64,
    /// Records handed to their holders and dropped here (strays).
    pub handed_off: u64,
}
