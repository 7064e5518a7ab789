//! The simulator's stand-in for the chat layer's signatures, so that every simulated node runs
//! a validator as every daemon does: [`sign`] appends a keyed tag of origin, sequence number and
//! body; [`verify`] checks it.

use crate::NodeId;
use crate::broadcast::Envelope;

/// The stand-in for the chat layer's signature: an 8-byte keyed hash of origin, sequence
/// number and body, appended to the body.
pub fn sign(origin: &NodeId, seq: u64, mut body: Vec<u8>) -> Vec<u8> {
    let tag = tag(origin, seq, &body);
    body.extend_from_slice(&tag);
    body
}

/// The validator every simulated node installs: the payload carries [`sign`]'s tag.
pub fn verify(env: &Envelope) -> bool {
    let Some(split) = env.payload.len().checked_sub(8) else {
        return false;
    };
    let (body, t) = env.payload.split_at(split);
    tag(&env.origin, env.seq, body) == t
}

fn tag(origin: &NodeId, seq: u64, body: &[u8]) -> [u8; 8] {
    let mut h = blake3::Hasher::new_derive_key("chatd sim signature");
    h.update(&origin.0);
    h.update(&seq.to_be_bytes());
    h.update(body);
    let mut t = [0u8; 8];
    t.copy_from_slice(&h.finalize().as_bytes()[..8]);
    t
}
