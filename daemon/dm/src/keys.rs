//! One account's end-to-end keys: its Olm account (vodozemac: identity keys and the fallback
//! key senders start sessions with) and its seal keys (current and previous). Rotation makes a
//! new fallback key and a new seal key; the previous ones keep working until the next
//! rotation, so a message sealed to keys read from an older bundle still opens.

use serde::{Deserialize, Serialize};
use vodozemac::olm::{Account, AccountPickle};

use crate::Dropped;
use crate::bundle::{Bundle, VERSION};
use crate::seal::{Inner, SealKey};

/// An account's keys.
pub struct Keys {
    olm: Account,
    fallback: [u8; 32],
    seal: SealKey,
    seal_prev: Option<SealKey>,
    rotated_ms: u64,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("curve25519", &hex::encode(&self.curve25519()[..4]))
            .field("rotated_ms", &self.rotated_ms)
            .finish_non_exhaustive()
    }
}

/// What is stored of [`Keys`] (secret: the daemon keeps it in a file of mode 0600).
#[derive(Serialize, Deserialize)]
pub struct StoredKeys {
    olm: AccountPickle,
    #[serde(with = "serde_bytes")]
    fallback: [u8; 32],
    #[serde(with = "serde_bytes")]
    seal: [u8; 32],
    seal_prev: Option<serde_bytes::ByteArray<32>>,
    rotated_ms: u64,
}

impl Keys {
    /// New keys, made at `now_ms`.
    pub fn generate(now_ms: u64) -> Keys {
        let mut olm = Account::new();
        olm.generate_fallback_key();
        let fallback = current_fallback(&olm);
        olm.mark_keys_as_published();
        Keys {
            olm,
            fallback,
            seal: SealKey::generate(),
            seal_prev: None,
            rotated_ms: now_ms,
        }
    }

    /// The keys stored before.
    pub fn restore(s: StoredKeys) -> Option<Keys> {
        Some(Keys {
            olm: Account::from_pickle(s.olm),
            fallback: s.fallback,
            seal: SealKey::from_secret(s.seal)?,
            seal_prev: match s.seal_prev {
                Some(k) => Some(SealKey::from_secret(k.into_array())?),
                None => None,
            },
            rotated_ms: s.rotated_ms,
        })
    }

    /// What to store.
    pub fn store(&self) -> StoredKeys {
        StoredKeys {
            olm: self.olm.pickle(),
            fallback: self.fallback,
            seal: self.seal.secret(),
            seal_prev: self
                .seal_prev
                .as_ref()
                .map(|k| serde_bytes::ByteArray::new(k.secret())),
            rotated_ms: self.rotated_ms,
        }
    }

    /// A new fallback key and a new seal key; the previous ones stay usable.
    pub fn rotate(&mut self, now_ms: u64) {
        self.olm.generate_fallback_key();
        self.fallback = current_fallback(&self.olm);
        self.olm.mark_keys_as_published();
        let next = SealKey::generate();
        self.seal_prev = Some(std::mem::replace(&mut self.seal, next));
        self.rotated_ms = now_ms;
    }

    /// When the keys were last rotated.
    pub fn rotated_ms(&self) -> u64 {
        self.rotated_ms
    }

    /// Olm's curve25519 identity key.
    pub fn curve25519(&self) -> [u8; 32] {
        self.olm.curve25519_key().to_bytes()
    }

    /// The bundle to publish for `account`.
    pub fn bundle(&self, account: [u8; 32]) -> Bundle {
        let ids = self.olm.identity_keys();
        let mut b = Bundle {
            v: VERSION,
            account,
            olm_ed25519: *ids.ed25519.as_bytes(),
            olm_curve25519: ids.curve25519.to_bytes(),
            fallback: self.fallback,
            seal: self.seal.public(),
            rotated_ms: self.rotated_ms,
            olm_sig: Vec::new(),
        };
        b.olm_sig = self.olm.sign(b.signed_bytes()).to_bytes().to_vec();
        b
    }

    /// Opens an envelope sealed to this account (`me`) under the current or previous key.
    pub fn open(&self, sealed: &[u8], me: &[u8; 32]) -> Result<Inner, Dropped> {
        let key = [Some(&self.seal), self.seal_prev.as_ref()]
            .into_iter()
            .flatten()
            .find(|k| k.matches(sealed))
            .ok_or(Dropped::Unsealable)?;
        key.open(sealed, me)
    }

    /// The Olm account.
    pub(crate) fn olm(&mut self) -> &mut Account {
        &mut self.olm
    }
}

fn current_fallback(olm: &Account) -> [u8; 32] {
    olm.fallback_key()
        .values()
        .next()
        .map(|k| k.to_bytes())
        // `generate_fallback_key` was just called: there is an unpublished one.
        .unwrap_or_default()
}
