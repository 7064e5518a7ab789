//! The envelope of a private message: `0x01 ‖ hint[4] ‖ enc[32] ‖ HPKE ciphertext`.
//!
//! Inside is [`Inner`]: the sending account and its Olm message, padded to a multiple of
//! [`PAD`] bytes. It is sealed with HPKE (RFC 9180, base mode, DHKEM(X25519, HKDF-SHA256),
//! HKDF-SHA256, ChaCha20-Poly1305 — the `hpke` crate vodozemac itself builds on) to the
//! recipient's *seal* key from its bundle, with the recipient's account as associated data.
//! Olm alone would not do: its pre-key messages carry the sender's identity key in clear.
//! `hint` is the first four bytes of the seal key used, so the recipient knows which of its
//! current and previous seal keys opens it.

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use serde::{Deserialize, Serialize};

use crate::Dropped;

/// Envelope format this build writes.
pub const FORMAT: u8 = 1;
/// Inner contents are padded to a multiple of this many bytes.
pub const PAD: usize = 256;
/// Largest sealed envelope accepted (the DHT's value bound).
pub const MAX_SEALED: usize = 4096;
const INFO: &[u8] = b"chatd dm seal v1";
const HEADER: usize = 1 + 4 + 32;

type Kem = X25519HkdfSha256;

/// What the seal hides.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inner {
    /// The sending account.
    #[serde(with = "serde_bytes")]
    pub sender: [u8; 32],
    /// Olm's message type (0: pre-key, 1: normal).
    pub olm_type: u8,
    /// Olm's message bytes.
    #[serde(with = "serde_bytes")]
    pub olm: Vec<u8>,
}

/// A seal key pair (X25519).
#[derive(Clone)]
pub struct SealKey {
    secret: [u8; 32],
    public: [u8; 32],
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealKey({})", hex::encode(&self.public[..4]))
    }
}

impl SealKey {
    /// A new random key.
    pub fn generate() -> SealKey {
        let (sk, pk) = Kem::gen_keypair();
        let mut secret = [0u8; 32];
        secret.copy_from_slice(&sk.to_bytes());
        let mut public = [0u8; 32];
        public.copy_from_slice(&pk.to_bytes());
        SealKey { secret, public }
    }

    /// The key whose secret is `secret` (from storage).
    pub fn from_secret(secret: [u8; 32]) -> Option<SealKey> {
        let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(&secret).ok()?;
        let pk = Kem::sk_to_pk(&sk);
        let mut public = [0u8; 32];
        public.copy_from_slice(&pk.to_bytes());
        Some(SealKey { secret, public })
    }

    /// The secret (for storage only).
    pub fn secret(&self) -> [u8; 32] {
        self.secret
    }

    /// The public key (published in the bundle).
    pub fn public(&self) -> [u8; 32] {
        self.public
    }

    /// Whether `sealed` names this key.
    pub fn matches(&self, sealed: &[u8]) -> bool {
        sealed.len() > HEADER && sealed[1..5] == self.public[..4]
    }

    /// Opens an envelope sealed to this key for `recipient`.
    pub fn open(&self, sealed: &[u8], recipient: &[u8; 32]) -> Result<Inner, Dropped> {
        if sealed.len() <= HEADER || sealed.len() > MAX_SEALED || sealed[0] != FORMAT {
            return Err(Dropped::Malformed);
        }
        let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(&self.secret)
            .map_err(|_| Dropped::Unsealable)?;
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&sealed[5..HEADER])
            .map_err(|_| Dropped::Malformed)?;
        let padded = hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
            &OpModeR::Base,
            &sk,
            &enc,
            INFO,
            &sealed[HEADER..],
            recipient,
        )
        .map_err(|_| Dropped::Unsealable)?;
        unpad(&padded)
    }
}

/// Seals `inner` to the seal key `to` of account `recipient`.
pub fn seal(inner: &Inner, to: &[u8; 32], recipient: &[u8; 32]) -> Result<Vec<u8>, Dropped> {
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(to).map_err(|_| Dropped::NoBundle)?;
    let padded = pad(inner);
    let (enc, ct) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeS::Base,
        &pk,
        INFO,
        &padded,
        recipient,
    )
    .map_err(|_| Dropped::NoBundle)?;
    let mut out = Vec::with_capacity(HEADER + ct.len());
    out.push(FORMAT);
    out.extend_from_slice(&to[..4]);
    out.extend_from_slice(&enc.to_bytes());
    out.extend_from_slice(&ct);
    Ok(out)
}

/// `len[2] ‖ CBOR(inner) ‖ zeros`, a multiple of [`PAD`] bytes.
fn pad(inner: &Inner) -> Vec<u8> {
    let mut body = Vec::new();
    // Writing CBOR into a Vec cannot fail.
    ciborium::into_writer(inner, &mut body).expect("CBOR into a Vec");
    let mut out = Vec::with_capacity(body.len() + 2 + PAD);
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(&body);
    let total = out.len().div_ceil(PAD) * PAD;
    out.resize(total, 0);
    out
}

fn unpad(padded: &[u8]) -> Result<Inner, Dropped> {
    if padded.len() < 2 || !padded.len().is_multiple_of(PAD) {
        return Err(Dropped::Malformed);
    }
    let len = u16::from_be_bytes([padded[0], padded[1]]) as usize;
    let body = padded.get(2..2 + len).ok_or(Dropped::Malformed)?;
    if padded[2 + len..].iter().any(|b| *b != 0) {
        return Err(Dropped::Malformed);
    }
    ciborium::from_reader(body).map_err(|_| Dropped::Malformed)
}

impl Drop for SealKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.secret);
    }
}
