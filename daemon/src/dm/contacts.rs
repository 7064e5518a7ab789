//! Conversations bound to keys (trust on first use) and safety numbers.
//!
//! Once an account of this node and another have talked — a direct message sent, or one
//! received from an account the DHT names as holder of its nickname — the conversation is
//! bound to the other's account key under that nickname (table `contact` of `dm.sqlite3`).
//! When the name later stands for another key, a message to it is refused until the sender
//! accepts the new key ([`check`]); messages from a key other than the bound one are marked.
//!
//! A safety number ([`safety_number`]) is derived from both account keys, the same for both
//! sides: people compare it out of band and mark the contact verified.

use rusqlite::{OptionalExtension, params};

use super::store::{Store, StoreError};

/// Names bound per account by messages received, at most (a name the account writes to is
/// always bound).
pub const MAX_CONTACTS: i64 = 10_000;

/// Domain separation of the safety number's hash.
const SAFETY_CONTEXT: &str = "chatd 2026 safety number v1";
/// Groups of five digits in a safety number.
const GROUPS: usize = 12;

/// The safety number of accounts `a` and `b`: 60 digits in 12 groups of five, from BLAKE3
/// (key derivation mode, [`SAFETY_CONTEXT`]) of both keys in sorted order, so both sides
/// compute the same number.
pub fn safety_number(a: &[u8; 32], b: &[u8; 32]) -> String {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut h = blake3::Hasher::new_derive_key(SAFETY_CONTEXT);
    h.update(lo);
    h.update(hi);
    let mut out = [0u8; GROUPS * 5];
    h.finalize_xof().fill(&mut out);
    out.chunks_exact(5)
        .map(|c| {
            let n = c.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            format!("{:05}", n % 100_000)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A conversation's binding: the key a name stands for to one of this node's accounts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contact {
    /// The normalised nickname.
    pub name: String,
    /// The account key the conversation is bound to.
    pub peer: [u8; 32],
    /// Since when (Unix milliseconds).
    pub since_ms: u64,
    /// The person compared the safety number and confirmed it for this key.
    pub verified: bool,
    /// The key bound before, when a new one was accepted.
    pub previous: Option<[u8; 32]>,
}

/// How a key stands against the binding of its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Binding {
    /// The name is not bound yet: the first use binds it.
    New,
    /// The name is bound to this very key.
    Same,
    /// The name is bound to another key (the bound one).
    Changed([u8; 32]),
}

/// How `key` stands against `bound`, the binding of its name.
pub fn check(bound: Option<&Contact>, key: &[u8; 32]) -> Binding {
    match bound {
        None => Binding::New,
        Some(c) if &c.peer == key => Binding::Same,
        Some(c) => Binding::Changed(c.peer),
    }
}

/// The marks shown next to a person or a message from them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Marks {
    /// The conversation is bound to this key and its safety number was confirmed (✓).
    pub verified: bool,
    /// The person's name is bound to another key (⚠).
    pub key_changed: bool,
}

/// One account's bindings, for marking many people at once.
#[derive(Clone, Debug, Default)]
pub struct Contacts {
    by_name: std::collections::HashMap<String, Contact>,
}

impl Contacts {
    /// The marks of `key`, shown with the normalised nickname `name`.
    pub fn marks(&self, name: Option<&str>, key: &[u8; 32]) -> Marks {
        match name.and_then(|n| self.by_name.get(n)) {
            None => Marks::default(),
            Some(c) if &c.peer == key => Marks {
                verified: c.verified,
                key_changed: false,
            },
            Some(_) => Marks {
                verified: false,
                key_changed: true,
            },
        }
    }

    /// The binding of `name`.
    pub fn get(&self, name: &str) -> Option<&Contact> {
        self.by_name.get(name)
    }
}

fn key32(v: Option<Vec<u8>>) -> Option<[u8; 32]> {
    v.and_then(|v| v.try_into().ok())
}

/// Creates the table (in [`Store::open`]).
pub(super) fn create(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS contact (
             account BLOB NOT NULL, name TEXT NOT NULL, peer BLOB NOT NULL,
             since_ms INTEGER NOT NULL, verified INTEGER NOT NULL DEFAULT 0, previous BLOB,
             PRIMARY KEY (account, name));",
    )
}

impl Store {
    /// `account`'s binding of `name`.
    pub fn contact(&self, account: &[u8; 32], name: &str) -> Result<Option<Contact>, StoreError> {
        let c = self
            .conn
            .query_row(
                "SELECT peer, since_ms, verified, previous FROM contact
                 WHERE account = ?1 AND name = ?2",
                params![&account[..], name],
                |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, bool>(2)?,
                        r.get::<_, Option<Vec<u8>>>(3)?,
                    ))
                },
            )
            .optional()?;
        Ok(c.and_then(|(peer, since, verified, previous)| {
            Some(Contact {
                name: name.to_owned(),
                peer: peer.try_into().ok()?,
                since_ms: u64::try_from(since).unwrap_or(0),
                verified,
                previous: key32(previous),
            })
        }))
    }

    /// Every binding of `account`.
    pub fn contacts(&self, account: &[u8; 32]) -> Result<Contacts, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT name, peer, since_ms, verified, previous FROM contact WHERE account = ?1",
        )?;
        let by_name = stmt
            .query_map(params![&account[..]], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, bool>(3)?,
                    r.get::<_, Option<Vec<u8>>>(4)?,
                ))
            })?
            .filter_map(Result::ok)
            .filter_map(|(name, peer, since, verified, previous)| {
                let c = Contact {
                    name: name.clone(),
                    peer: peer.try_into().ok()?,
                    since_ms: u64::try_from(since).unwrap_or(0),
                    verified,
                    previous: key32(previous),
                };
                Some((name, c))
            })
            .collect();
        Ok(Contacts { by_name })
    }

    /// Binds `account`'s conversation under `name` to `peer` (replacing another key, which
    /// is remembered as the previous one; `verified`: the safety number was confirmed).
    /// Binding the same key again keeps its `since` and only ever sets `verified`.
    pub fn bind(
        &self,
        account: &[u8; 32],
        name: &str,
        peer: &[u8; 32],
        now_ms: u64,
        verified: bool,
    ) -> Result<(), StoreError> {
        let old = self.contact(account, name)?;
        match old {
            Some(c) if &c.peer == peer => {
                if verified && !c.verified {
                    self.conn.execute(
                        "UPDATE contact SET verified = 1 WHERE account = ?1 AND name = ?2",
                        params![&account[..], name],
                    )?;
                }
            }
            old => {
                self.conn.execute(
                    "INSERT OR REPLACE INTO contact
                         (account, name, peer, since_ms, verified, previous)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        &account[..],
                        name,
                        &peer[..],
                        i64::try_from(now_ms).unwrap_or(i64::MAX),
                        verified,
                        old.map(|c| c.peer.to_vec()),
                    ],
                )?;
            }
        }
        Ok(())
    }

    /// Binds `name` to `peer` for `account` only if the name is not bound yet and the account
    /// has fewer than [`MAX_CONTACTS`] bindings (a message received); whether it bound it.
    pub fn bind_if_new(
        &self,
        account: &[u8; 32],
        name: &str,
        peer: &[u8; 32],
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let n: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM contact WHERE account = ?1",
            params![&account[..]],
            |r| r.get(0),
        )?;
        if n >= MAX_CONTACTS {
            return Ok(false);
        }
        let changed = self.conn.execute(
            "INSERT OR IGNORE INTO contact (account, name, peer, since_ms, verified)
             VALUES (?1, ?2, ?3, ?4, 0)",
            params![
                &account[..],
                name,
                &peer[..],
                i64::try_from(now_ms).unwrap_or(i64::MAX)
            ],
        )?;
        Ok(changed > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_safety_number_is_the_same_for_both_sides_and_differs_for_other_keys() {
        let (a, b, c) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        let ab = safety_number(&a, &b);
        assert_eq!(ab, safety_number(&b, &a), "order-independent");
        let groups: Vec<&str> = ab.split(' ').collect();
        assert_eq!(groups.len(), 12, "{ab}");
        assert!(
            groups
                .iter()
                .all(|g| g.len() == 5 && g.bytes().all(|d| d.is_ascii_digit())),
            "{ab}"
        );
        assert_ne!(ab, safety_number(&a, &c));
        assert_ne!(ab, safety_number(&c, &b));
        // One bit of one key changes it.
        let mut a2 = a;
        a2[31] ^= 1;
        assert_ne!(ab, safety_number(&a2, &b));
    }

    #[test]
    fn a_changed_key_is_told_apart_until_bound_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("opens");
        let (me, alice, mallory) = ([9u8; 32], [1u8; 32], [6u8; 32]);
        assert_eq!(
            check(store.contact(&me, "alice").expect("reads").as_ref(), &alice),
            Binding::New
        );
        assert!(store.bind_if_new(&me, "alice", &alice, 10).expect("binds"));
        // A message received from another key does not rebind the name.
        assert!(
            !store
                .bind_if_new(&me, "alice", &mallory, 11)
                .expect("reads")
        );
        let bound = store.contact(&me, "alice").expect("reads");
        assert_eq!(check(bound.as_ref(), &alice), Binding::Same);
        assert_eq!(check(bound.as_ref(), &mallory), Binding::Changed(alice));
        let marks = store.contacts(&me).expect("reads");
        assert_eq!(
            marks.marks(Some("alice"), &mallory),
            Marks {
                verified: false,
                key_changed: true
            }
        );
        assert_eq!(marks.marks(Some("alice"), &alice), Marks::default());
        assert_eq!(marks.marks(Some("bob"), &alice), Marks::default());
        // Confirmed: verified, for this key only.
        store.bind(&me, "alice", &alice, 12, true).expect("binds");
        let marks = store.contacts(&me).expect("reads");
        assert_eq!(
            marks.marks(Some("alice"), &alice),
            Marks {
                verified: true,
                key_changed: false
            }
        );
        // The new key accepted: bound, not verified, the old one remembered; survives reopening.
        store
            .bind(&me, "alice", &mallory, 13, false)
            .expect("binds");
        drop(store);
        let store = Store::open(dir.path()).expect("reopens");
        let c = store.contact(&me, "alice").expect("reads").expect("bound");
        assert_eq!(
            (c.peer, c.verified, c.previous),
            (mallory, false, Some(alice))
        );
        assert_eq!(check(Some(&c), &alice), Binding::Changed(mallory));
        // Other accounts of the node have bindings of their own.
        assert_eq!(store.contact(&[8; 32], "alice").expect("reads"), None);
    }
}
