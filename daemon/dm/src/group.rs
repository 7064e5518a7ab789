//! Group conversations. A group is named by `blake3(creator ‖ nonce)`; its membership is a
//! [`GroupState`] signed by the creator's account key, versioned, and sent to every member
//! (old and new) through the pairwise encrypted streams. Only the creator adds or removes
//! members; anyone may leave. A group message is encrypted pairwise to every other member
//! (no shared group key): a removed member receives nothing more, and every message keeps
//! Olm's per-message forward secrecy (`docs/security.md` argues this against Megolm).

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::MAX_GROUP_MEMBERS;

/// Longest group name, in bytes.
pub const MAX_NAME: usize = 64;
const SIG_DOMAIN: &[u8] = b"chatd group v1";

/// A group's membership.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupState {
    #[serde(with = "serde_bytes")]
    pub id: [u8; 16],
    #[serde(with = "serde_bytes")]
    pub nonce: [u8; 16],
    #[serde(with = "serde_bytes")]
    pub creator: [u8; 32],
    pub version: u64,
    pub name: String,
    /// Sorted, without duplicates; the creator is one while it has not left.
    pub members: Vec<serde_bytes::ByteArray<32>>,
}

/// A group state with the creator's signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedGroup {
    #[serde(with = "serde_bytes")]
    pub state: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub sig: Vec<u8>,
}

/// The id of the group `creator` makes with `nonce`.
pub fn group_id(creator: &[u8; 32], nonce: &[u8; 16]) -> [u8; 16] {
    let mut h = blake3::Hasher::new();
    h.update(b"chatd group id v1");
    h.update(creator);
    h.update(nonce);
    let mut id = [0u8; 16];
    id.copy_from_slice(&h.finalize().as_bytes()[..16]);
    id
}

impl GroupState {
    /// Whether `who` is a member.
    pub fn has(&self, who: &[u8; 32]) -> bool {
        self.members.iter().any(|m| m.as_ref() == who)
    }

    /// The members as keys.
    pub fn member_keys(&self) -> Vec<[u8; 32]> {
        self.members.iter().map(|m| m.into_array()).collect()
    }

    /// Sets the members (sorted, deduplicated).
    pub fn set_members(&mut self, mut members: Vec<[u8; 32]>) {
        members.sort_unstable();
        members.dedup();
        self.members = members
            .into_iter()
            .map(serde_bytes::ByteArray::new)
            .collect();
    }

    /// Signs it with the creator's key.
    pub fn sign(&self, creator: &SigningKey) -> SignedGroup {
        let mut state = Vec::new();
        // Writing CBOR into a Vec cannot fail.
        ciborium::into_writer(self, &mut state).expect("CBOR into a Vec");
        let sig = creator.sign(&signed(&state)).to_bytes().to_vec();
        SignedGroup { state, sig }
    }
}

impl SignedGroup {
    /// The state, if it is well formed and the creator signed it.
    pub fn open(&self) -> Option<GroupState> {
        if self.state.len() > 4096 {
            return None;
        }
        let mut s: GroupState = ciborium::from_reader(&self.state[..]).ok()?;
        if s.id != group_id(&s.creator, &s.nonce)
            || s.name.len() > MAX_NAME
            || s.members.len() > MAX_GROUP_MEMBERS
            || s.members.windows(2).any(|w| w[0] >= w[1])
        {
            return None;
        }
        let key = VerifyingKey::from_bytes(&s.creator).ok()?;
        let sig = Signature::from_slice(&self.sig).ok()?;
        key.verify(&signed(&self.state), &sig).ok()?;
        // The creator's engine refuses control characters in a name; another's may not.
        s.name = crate::text::sanitize(&s.name).into_owned();
        Some(s)
    }
}

fn signed(state: &[u8]) -> Vec<u8> {
    let mut b = SIG_DOMAIN.to_vec();
    b.extend_from_slice(state);
    b
}
