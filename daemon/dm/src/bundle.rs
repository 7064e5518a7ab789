//! An account's key bundle: what a sender needs to start an end-to-end session with it. It is
//! the value of the account's `keys` record (kind 4, key = the account's public key), so the
//! DHT checks the account's signature over it; the bundle itself carries a signature by the
//! Olm identity key over the account and the keys, so an account cannot adopt somebody else's
//! Olm keys (and the Olm keys cannot be moved under another account).

use serde::{Deserialize, Serialize};
use vodozemac::{Ed25519PublicKey, Ed25519Signature};

/// The bundle format this build writes and reads.
pub const VERSION: u8 = 1;
/// Largest encoded bundle accepted.
pub const MAX_BYTES: usize = 1024;
const SIG_DOMAIN: &[u8] = b"chatd keys v1";

/// A published key bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    /// Format version.
    pub v: u8,
    /// The chatd account (ed25519) the keys belong to.
    #[serde(with = "serde_bytes")]
    pub account: [u8; 32],
    /// Olm's ed25519 identity key (signs the bundle).
    #[serde(with = "serde_bytes")]
    pub olm_ed25519: [u8; 32],
    /// Olm's curve25519 identity key.
    #[serde(with = "serde_bytes")]
    pub olm_curve25519: [u8; 32],
    /// The current Olm fallback key (senders start sessions with it).
    #[serde(with = "serde_bytes")]
    pub fallback: [u8; 32],
    /// The X25519 key items are sealed to.
    #[serde(with = "serde_bytes")]
    pub seal: [u8; 32],
    /// When the keys were last rotated (Unix ms).
    pub rotated_ms: u64,
    /// Olm's ed25519 signature over the fields above.
    #[serde(with = "serde_bytes")]
    pub olm_sig: Vec<u8>,
}

/// Why a bundle was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BundleError {
    #[error("the bundle does not decode")]
    Malformed,
    #[error("unknown bundle version {0}")]
    Version(u8),
    #[error("the bundle names another account")]
    WrongAccount,
    #[error("the bundle's Olm signature does not verify")]
    BadSignature,
}

impl Bundle {
    /// The bytes the Olm identity key signs.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(SIG_DOMAIN.len() + 32 * 5 + 8);
        b.extend_from_slice(SIG_DOMAIN);
        b.push(self.v);
        for k in [
            &self.account,
            &self.olm_ed25519,
            &self.olm_curve25519,
            &self.fallback,
            &self.seal,
        ] {
            b.extend_from_slice(k);
        }
        b.extend_from_slice(&self.rotated_ms.to_be_bytes());
        b
    }

    /// Encodes it (CBOR).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Writing CBOR into a Vec cannot fail.
        ciborium::into_writer(self, &mut out).expect("CBOR into a Vec");
        out
    }

    /// Decodes a bundle published by `account` and checks it.
    pub fn decode(bytes: &[u8], account: &[u8; 32]) -> Result<Bundle, BundleError> {
        if bytes.len() > MAX_BYTES {
            return Err(BundleError::Malformed);
        }
        let b: Bundle = ciborium::from_reader(bytes).map_err(|_| BundleError::Malformed)?;
        if b.v != VERSION {
            return Err(BundleError::Version(b.v));
        }
        if &b.account != account {
            return Err(BundleError::WrongAccount);
        }
        let key =
            Ed25519PublicKey::from_slice(&b.olm_ed25519).map_err(|_| BundleError::BadSignature)?;
        let sig =
            Ed25519Signature::from_slice(&b.olm_sig).map_err(|_| BundleError::BadSignature)?;
        key.verify(&b.signed_bytes(), &sig)
            .map_err(|_| BundleError::BadSignature)?;
        Ok(b)
    }
}
